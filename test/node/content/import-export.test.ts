/**
 * importContent → readContent round trips on a real LevelDB block store:
 * edge sizes, ranged reads (and the blocks they touch), a 200 MiB stream in
 * bounded memory, and durability across a reopen.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Counter, Registry } from 'prom-client'
import { importContent, readContent, parseChunker } from '../../../node/content/index.js'
import { assertBytesEqual, collectBytes, randomBytes, randomPieces, sha256OfStream, toAsync } from '../../helpers/bytes.js'
import { openBlockStore, tempDir } from '../../helpers/temp.js'
import type { CleanupContext } from '../../helpers/temp.js'
import type { BlockStoreMetrics } from '../../../node/blocks/index.js'

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

function newMetrics (): BlockStoreMetrics & { registry: Registry } {
  const registry = new Registry()
  const registers = [registry]
  return {
    registry,
    blocksWritten: new Counter({ name: 'test_blocks_written_total', help: 'blocks written', registers }),
    bytesWritten: new Counter({ name: 'test_bytes_written_total', help: 'bytes written', registers }),
    blocksRead: new Counter({ name: 'test_blocks_read_total', help: 'blocks read', registers })
  }
}

async function counterValue (counter: Counter): Promise<number> {
  return (await counter.get()).values.reduce((sum, { value }) => sum + value, 0)
}

async function rejectsWithName (fn: () => Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(fn, (err: any) => {
    assert.equal(err?.name, name, `expected ${name}, got ${String(err?.name)}: ${String(err?.message)}`)
    return true
  })
}

async function importBytes (t: CleanupContext, bytes: Uint8Array, chunker: string, pieces: Iterable<Uint8Array> = [bytes]) {
  const metrics = newMetrics()
  const blockstore = await openBlockStore(t, undefined, { metrics })
  const { cid, size } = await importContent(blockstore, toAsync(pieces), { chunker: parseChunker(chunker) })
  assert.equal(size, bytes.byteLength, 'imported size')
  return { blockstore, cid, metrics }
}

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
            // fits one leaf: the root is that raw leaf
            assert.equal(cid.code, RAW)
            assert.equal(await counterValue(metrics.blocksWritten), 1)
          } else {
            assert.equal(cid.code, DAG_PB)
          }
          if (chunker === 'size-262144') {
            const leaves = Math.max(1, Math.ceil(length / CHUNK))
            assert.equal(await counterValue(metrics.blocksWritten), leaves === 1 ? 1 : leaves + 1)
          }
          assert.equal(await counterValue(metrics.bytesWritten) >= length, true)
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

  it('streams 200 MiB in and out in bounded memory', async (t) => {
    const total = 200 * MiB
    const blockstore = await openBlockStore(t)
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 50)
    t.after(() => { clearInterval(sampler) })

    const { cid, size } = await importContent(blockstore, toAsync(randomPieces(total, 200)), { chunker: parseChunker('fastcdc') })
    assert.equal(size, total)
    const expected = await sha256OfStream(randomPieces(total, 200))
    assert.equal(await sha256OfStream(readContent(blockstore, cid)), expected)

    clearInterval(sampler)
    peak = Math.max(peak, process.memoryUsage().rss)
    const growth = peak - baseline
    t.diagnostic(`rss baseline ${(baseline / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB, growth ${(growth / MiB).toFixed(0)} MiB`)
    assert.ok(growth < 160 * 1e6, `rss grew by ${(growth / 1e6).toFixed(0)} MB`)
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
