/**
 * importContent → readContent round trips on a real LevelDB block store:
 * edge sizes, ranged reads (and the blocks they touch), a 200 MiB stream in
 * bounded memory, and durability across a reopen.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Counter, Registry } from 'prom-client'
import { importContent, readContent, parseChunker } from '../../../node/content/index.js'
import { READ_AHEAD } from '../../../node/content/ranged-reader.js'
import { assertBytesEqual, collectBytes, randomBytes, randomPieces, sha256OfStream, toAsync } from '../../helpers/bytes.js'
import { openBlockStore, tempDir } from '../../helpers/temp.js'
import type { CleanupContext } from '../../helpers/temp.js'
import type { BlockStoreMetrics, LevelBlockStore } from '../../../node/blocks/index.js'
import type { CID } from 'multiformats/cid'

const KiB = 1024
const MiB = 1024 * KiB
const CHUNK = 262144
const RAW = 0x55
const DAG_PB = 0x70

const CHUNKERS = ['fastcdc', 'size-262144'] as const

/** Cut `bytes` into pieces of awkward, varying sizes (1 byte up to ~300 KB). */
function * oddPieces (bytes: Uint8Array): Generator<Uint8Array> {
  const sizes = [1, 7, 4093, 65537, 299993, 3, 131071, 262145]
  let at = 0
  for (let i = 0; at < bytes.byteLength; i++) {
    const end = Math.min(bytes.byteLength, at + sizes[i % sizes.length])
    yield bytes.slice(at, end)
    at = end
  }
}

function newMetrics (): BlockStoreMetrics {
  const registers = [new Registry()]
  return {
    blocksWritten: new Counter({ name: 'test_blocks_written_total', help: 'blocks written', registers }),
    bytesWritten: new Counter({ name: 'test_bytes_written_total', help: 'bytes written', registers }),
    blocksRead: new Counter({ name: 'test_blocks_read_total', help: 'blocks read', registers })
  }
}

async function counterValue (counter: Counter): Promise<number> {
  return (await counter.get()).values.reduce((sum, { value }) => sum + value, 0)
}

/**
 * Peak growth allowed while 200 MiB (210 MB) are imported, and again while
 * they are read back; both bounds fail if the file were held in memory at
 * once. Measured on Linux / Node 20 / 2 cores (see the test's diagnostic
 * lines): resident 60–85 MB importing and 25–100 MB exporting, live JS
 * 30–65 MB. Resident memory adds LevelDB's memtables and what glibc malloc
 * keeps after frees (it varies, so that bound has a wide margin); live JS
 * memory is the pieces, the leaves in flight, the write-behind batches and
 * the exporter's read-ahead (up to 174 sibling leaves).
 */
const RESIDENT_BOUND = 160 * 1e6
const LIVE_BOUND = 120 * 1e6

function mb (bytes: number): string {
  return (bytes / 1e6).toFixed(0)
}

/**
 * Anonymous resident memory (heap, malloc, buffers) from /proc/self/status
 * where available, else RSS. RSS also counts the file pages LevelDB maps to
 * read its tables (as much as the data read back: 200 MB here), which are
 * page cache, not memory the process holds.
 */
function residentMemory (): { kind: string, bytes: number } {
  try {
    const match = /^RssAnon:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    if (match !== null) return { kind: 'RssAnon', bytes: Number(match[1]) * 1024 }
  } catch {}
  return { kind: 'rss', bytes: process.memoryUsage().rss }
}

/** Bytes V8 keeps alive: the JS heap plus ArrayBuffers (chunk and block buffers). */
function liveJsMemory (): number {
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return heapUsed + arrayBuffers
}

/**
 * A full garbage collection, so samples count live memory rather than the
 * dropped buffers V8 has not collected yet (up to ~90 MB here, depending on
 * GC timing).
 */
const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

/** Peak growth, in bytes, of resident and of live JS memory. */
interface MemoryGrowth { resident: number, live: number }

/**
 * Samples memory every 50 ms, each time after a full GC, from now until
 * `stop()`, which returns the peak growth over the baseline (idempotent).
 */
function memoryMeter (): { kind: string, baseline: number, stop: () => MemoryGrowth } {
  collectGarbage()
  const { kind, bytes: baseline } = residentMemory()
  const liveBaseline = liveJsMemory()
  let resident = baseline
  let live = liveBaseline
  const sample = (): void => {
    collectGarbage()
    resident = Math.max(resident, residentMemory().bytes)
    live = Math.max(live, liveJsMemory())
  }
  let timer: NodeJS.Timeout | undefined = setInterval(sample, 50)
  return {
    kind,
    baseline,
    stop: () => {
      if (timer !== undefined) {
        clearInterval(timer)
        timer = undefined
        sample()
      }
      return { resident: resident - baseline, live: live - liveBaseline }
    }
  }
}

async function rejectsWithName (fn: () => Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(fn, (err: any) => {
    assert.equal(err?.name, name, `expected ${name}, got ${String(err?.name)}: ${String(err?.message)}`)
    return true
  })
}

async function importBytes (t: CleanupContext, bytes: Uint8Array, chunker: string, pieces: Iterable<Uint8Array> = [bytes]): Promise<{ blockstore: LevelBlockStore, cid: CID, metrics: BlockStoreMetrics }> {
  const metrics = newMetrics()
  const blockstore = await openBlockStore(t, undefined, { metrics })
  const { cid, size } = await importContent(blockstore, toAsync(pieces), { chunker: parseChunker(chunker) })
  assert.equal(size, bytes.byteLength, 'imported size')
  return { blockstore, cid, metrics }
}

// first in the file: memory that earlier tests free is kept by malloc and
// could be reused here, hiding growth
describe('streaming import / export', () => {
  it('streams 200 MiB in and out in bounded memory', async (t) => {
    const total = 200 * MiB
    // LevelDB's own buffers are sized down so they cannot hide a leak: with
    // the defaults (64 MiB memtable, twice while one is compacted, 64 MiB
    // block cache, 16 MiB write-behind batch) the store alone may use ~200 MB.
    const blockstore = await openBlockStore(t, undefined, { writeBufferSize: 8 * MiB, cacheSize: 8 * MiB, flushBytes: 4 * MiB })

    // import and export are metered separately, each from the memory in use
    // when it starts: holding the file in either phase exceeds the bounds
    const importing = memoryMeter()
    t.after(() => { importing.stop() })
    // fixed-size leaves: FastCDC's varying 0.25–2 MiB buffers make glibc
    // malloc keep up to ~80 MB more of freed memory, noise that would eat
    // the resident margin
    const { cid, size } = await importContent(blockstore, toAsync(randomPieces(total, 200)), { chunker: parseChunker('size-262144') })
    assert.equal(size, total)
    const imported = importing.stop()

    const expected = await sha256OfStream(randomPieces(total, 200))
    const exporting = memoryMeter()
    t.after(() => { exporting.stop() })
    assert.equal(await sha256OfStream(readContent(blockstore, cid)), expected)
    const exported = exporting.stop()

    t.diagnostic(`peak growth importing: ${importing.kind} ${mb(imported.resident)} MB (from ${mb(importing.baseline)} MB), live JS ${mb(imported.live)} MB`)
    t.diagnostic(`peak growth exporting: ${exporting.kind} ${mb(exported.resident)} MB (from ${mb(exporting.baseline)} MB), live JS ${mb(exported.live)} MB`)
    for (const [phase, growth] of [['importing', imported], ['exporting', exported]] as const) {
      assert.ok(growth.live < LIVE_BOUND, `live JS memory grew by ${mb(growth.live)} MB ${phase} ${mb(total)} MB (bound ${mb(LIVE_BOUND)} MB)`)
      assert.ok(growth.resident < RESIDENT_BOUND, `${importing.kind} grew by ${mb(growth.resident)} MB ${phase} ${mb(total)} MB (bound ${mb(RESIDENT_BOUND)} MB)`)
    }
  })
})

describe('importContent / readContent round trips', () => {
  for (const chunker of CHUNKERS) {
    describe(chunker, () => {
      const cases: Array<[string, number]> = [
        ['empty file', 0],
        ['1 byte', 1],
        ['exactly one chunk (262144 bytes)', CHUNK],
        ['one chunk + 1 byte', CHUNK + 1],
        ['a few MiB fed in odd-sized pieces', 5 * MiB + 12345]
      ]
      for (const [name, length] of cases) {
        it(name, async (t) => {
          const bytes = randomBytes(length, length)
          const { blockstore, cid, metrics } = await importBytes(t, bytes, chunker, oddPieces(bytes))
          assertBytesEqual(await collectBytes(readContent(blockstore, cid)), bytes)
          if (length <= CHUNK) {
            // fits one leaf (FastCDC's minimum is 256 KiB too): the root is that raw leaf
            assert.equal(cid.code, RAW)
            assert.equal(await counterValue(metrics.blocksWritten), 1)
          }
          if (chunker === 'size-262144') {
            const leaves = Math.max(1, Math.ceil(length / CHUNK))
            assert.equal(cid.code, leaves === 1 ? RAW : DAG_PB)
            assert.equal(await counterValue(metrics.blocksWritten), leaves === 1 ? 1 : leaves + 1)
          }
          assert.ok(await counterValue(metrics.bytesWritten) >= length)
        })
      }

      it('the same bytes give the same CID whatever the piece sizes', async (t) => {
        const bytes = randomBytes(3 * MiB + 17, 99)
        const whole = await importBytes(t, bytes, chunker)
        const odd = await importBytes(t, bytes, chunker, oddPieces(bytes))
        assert.equal(odd.cid.toString(), whole.cid.toString())
      })

      it('ranged reads return the matching slice', async (t) => {
        const size = 20 * CHUNK + 1000
        const bytes = randomBytes(size, 20)
        const { blockstore, cid } = await importBytes(t, bytes, chunker)
        const ranges: Array<[number, number | undefined]> = [
          [0, 10], // start
          [0, CHUNK], // exactly the first fixed-size chunk
          [0, size], // everything
          [0, undefined], // everything, no length
          [7 * CHUNK + 12345, 10], // middle
          [CHUNK - 5, 10], // crossing a chunk boundary
          [3 * CHUNK - 1, 2 * CHUNK + 2], // spanning several chunks
          [CHUNK, CHUNK], // aligned on a boundary
          [size - 10, 10], // end
          [size - 10, undefined], // to the end
          [size - 5, 100], // length past the end is clipped
          [size - 1, 1], // last byte
          [1234567, 0], // zero length
          [size, undefined], // at the end: empty
          [size, 10] // at the end: empty
        ]
        for (const [offset, length] of ranges) {
          const expected = bytes.subarray(offset, length === undefined ? size : offset + length)
          const got = await collectBytes(readContent(blockstore, cid, { offset, length }))
          assertBytesEqual(got, expected, `range offset=${offset} length=${String(length)}`)
        }
        await rejectsWithName(async () => await collectBytes(readContent(blockstore, cid, { offset: size + 1 })), 'InvalidArgumentError')
        await rejectsWithName(async () => await collectBytes(readContent(blockstore, cid, { offset: size + 1, length: 1 })), 'InvalidArgumentError')
        await rejectsWithName(async () => await collectBytes(readContent(blockstore, cid, { offset: -1 })), 'InvalidArgumentError')
      })
    })
  }

  it('a raw-leaf file: offset == size is empty, offset > size throws InvalidArgumentError', async (t) => {
    const bytes = randomBytes(1000, 3)
    const { blockstore, cid } = await importBytes(t, bytes, 'size-262144')
    assert.equal(cid.code, RAW)
    assertBytesEqual(await collectBytes(readContent(blockstore, cid, { offset: 990, length: 5 })), bytes.subarray(990, 995))
    assert.equal((await collectBytes(readContent(blockstore, cid, { offset: 1000 }))).byteLength, 0)
    await rejectsWithName(async () => await collectBytes(readContent(blockstore, cid, { offset: 1001 })), 'InvalidArgumentError')
  })

  it('a ranged read touches only the blocks that hold the range', async (t) => {
    const bytes = randomBytes(20 * CHUNK, 21) // 20 leaves under one root
    const { blockstore, cid, metrics } = await importBytes(t, bytes, 'size-262144')
    const before = await counterValue(metrics.blocksRead)
    const offset = 10 * CHUNK + 100
    const got = await collectBytes(readContent(blockstore, cid, { offset, length: 10 }))
    assertBytesEqual(got, bytes.subarray(offset, offset + 10))
    const read = await counterValue(metrics.blocksRead) - before
    assert.ok(read >= 2 && read <= 3, `read ${read} blocks for 10 bytes (root + leaf expected)`)

    // and a whole read touches every block once
    const beforeAll = await counterValue(metrics.blocksRead)
    await collectBytes(readContent(blockstore, cid))
    assert.equal(await counterValue(metrics.blocksRead) - beforeAll, 21)
  })

  it('a paused reader holds the read back: only a small window of leaves is read ahead', async (t) => {
    const bytes = randomBytes(200 * CHUNK, 22) // 200 leaves: two levels under the root
    const { blockstore, cid, metrics } = await importBytes(t, bytes, 'size-262144')
    const before = await counterValue(metrics.blocksRead)
    const reader = readContent(blockstore, cid)
    const first = await reader.next()
    assert.equal(first.done, false)
    // the consumer stalls; a reader without backpressure keeps loading leaves
    await new Promise(resolve => setTimeout(resolve, 300))
    const read = await counterValue(metrics.blocksRead) - before
    assert.ok(read <= READ_AHEAD + 4, `read ${read} blocks while the consumer held one piece`)
    await reader.return(undefined)
  })

  it('a read aborted after its first piece stops with AbortedError, even when the leaves after it were read ahead already', async (t) => {
    const bytes = randomBytes(4 * CHUNK, 23) // 4 leaves: all within the read-ahead window
    const { blockstore, cid } = await importBytes(t, bytes, 'size-262144')
    const controller = new AbortController()
    const reader = readContent(blockstore, cid, { signal: controller.signal })
    assert.equal((await reader.next()).done, false)
    // the window's reads of the local store are done by now
    await new Promise(resolve => setTimeout(resolve, 100))
    controller.abort()
    await rejectsWithName(async () => await reader.next(), 'AbortedError')
  })

  it('content imported, closed and reopened reads back the same bytes', async (t) => {
    const dir = await tempDir(t)
    const bytes = randomBytes(3 * MiB + 333, 4)
    const first = await openBlockStore(t, dir)
    const { cid } = await importContent(first, toAsync(oddPieces(bytes)), { chunker: parseChunker('fastcdc') })
    await first.close()

    const again = await openBlockStore(t, dir)
    assertBytesEqual(await collectBytes(readContent(again, cid)), bytes)
    assertBytesEqual(await collectBytes(readContent(again, cid, { offset: MiB, length: MiB })), bytes.subarray(MiB, 2 * MiB))
  })
})
