/**
 * The parts of the FUSE layer that need no mount: the per-handle reader
 * (one stream for a sequential read, late requests served from what it
 * kept, a seek restarts), the bounded commit queue, write staging (memory
 * first, disk past a bound), and errno mapping.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CommitQueue, ContentCache, ERRNO, ErrnoError, HandleReader, ReadBudget, StagingArea, errnoOf, type StagedFile } from '../../../node/fuse/index.js'
import { tempDir } from '../../helpers/temp.js'
import { DirectoryNotEmptyError, IsADirectoryError, NotFoundError } from '../../../node/errors.js'

/** A file served in pieces of `piece` bytes from `offset`, counting the streams opened. */
function source (bytes: Uint8Array, piece: number): { open: (offset: number) => AsyncIterable<Uint8Array>, opened: number[] } {
  const opened: number[] = []
  return {
    opened,
    open: (offset: number) => {
      opened.push(offset)
      return (async function * () {
        for (let at = offset; at < bytes.length; at += piece) yield bytes.subarray(at, Math.min(at + piece, bytes.length))
      })()
    }
  }
}

describe('HandleReader', () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 77)

  it('reads a file front to back in 128 KiB requests through one stream', async () => {
    const src = source(bytes, 250_000)
    const reader = new HandleReader(bytes.length, src.open)
    const out = Buffer.alloc(bytes.length)
    for (let at = 0; at < bytes.length; at += 131072) {
      const n = await reader.read(out.subarray(at), 131072, at)
      assert.equal(n, Math.min(131072, bytes.length - at))
    }
    assert.deepEqual(out, bytes)
    assert.deepEqual(src.opened, [0])
    assert.equal(await reader.read(Buffer.alloc(10), 10, bytes.length), 0, 'nothing past the end')
  })

  it('serves read-ahead requests that arrive out of order without a new stream', async () => {
    const src = source(bytes, 100_000)
    const reader = new HandleReader(bytes.length, src.open)
    const K = 131072
    const order = [0, 2, 1, 3, 5, 4, 6, 7]
    const outs = await Promise.all(order.map(async i => {
      const buf = Buffer.alloc(K)
      const n = await reader.read(buf, K, i * K)
      return { i, data: buf.subarray(0, n) }
    }))
    for (const { i, data } of outs) assert.deepEqual(data, bytes.subarray(i * K, (i + 1) * K))
    assert.deepEqual(src.opened, [0])
  })

  it('a stream that fails fails its read, and the next read starts a new stream rather than taking the dead one for the end', async () => {
    const opened: number[] = []
    let failAt: number | undefined = 1024 * 1024
    const open = (offset: number): AsyncIterable<Uint8Array> => {
      opened.push(offset)
      return (async function * () {
        for (let at = offset; at < bytes.length; at += 65536) {
          if (failAt !== undefined && at >= failAt) throw new Error('a block failed its check')
          yield bytes.subarray(at, Math.min(at + 65536, bytes.length))
        }
      })()
    }
    const reader = new HandleReader(bytes.length, open)
    const buf = Buffer.alloc(131072)
    assert.equal(await reader.read(buf, 131072, 0), 131072)
    await assert.rejects(reader.read(buf, 131072, 1024 * 1024), /failed its check/)
    await assert.rejects(reader.read(buf, 131072, 1024 * 1024), /failed its check/, 'the same read fails again: it is never an empty answer (end of file)')
    failAt = undefined
    assert.equal(await reader.read(buf, 131072, 1024 * 1024), 131072, 'once the block reads, so does the file')
    assert.deepEqual(buf, bytes.subarray(1024 * 1024, 1024 * 1024 + 131072))
    assert.deepEqual(opened, [0, 1024 * 1024, 1024 * 1024])
    reader.close()
  })

  it('a stream that ends before the file\'s size fails the read with EIO, not a short answer', async () => {
    const reader = new HandleReader(bytes.length, () => (async function * () { yield bytes.subarray(0, 1000) })())
    const buf = Buffer.alloc(4096)
    await assert.rejects(reader.read(buf, 4096, 0), (err: unknown) => errnoOf(err) === ERRNO.EIO)
    reader.close()
  })

  it('starts a new stream on a real seek, backwards or far ahead', async () => {
    const src = source(bytes, 64 * 1024)
    const reader = new HandleReader(bytes.length, src.open, { skipAhead: 1024 * 1024, keep: 256 * 1024 })
    const buf = Buffer.alloc(4096)
    await reader.read(buf, 4096, 0)
    await reader.read(buf, 4096, 2_900_000)
    assert.deepEqual(buf.subarray(0, 4096), bytes.subarray(2_900_000, 2_904_096))
    await reader.read(buf, 4096, 10)
    assert.deepEqual(buf, bytes.subarray(10, 4106))
    assert.deepEqual(src.opened, [0, 2_900_000, 10])
    reader.close()
  })
})

describe('ReadBudget: what a mount\'s read handles keep', () => {
  const MiB = 1024 * 1024
  const bytes = randomBytes(4 * MiB)

  /** A source as above that also counts the streams still open (a shed handle's stream is ended). */
  function counted (): { open: (offset: number) => AsyncIterable<Uint8Array>, opened: number[], live: () => number } {
    const opened: number[] = []
    let live = 0
    return {
      opened,
      live: () => live,
      open: (offset: number) => {
        opened.push(offset)
        return (async function * () {
          live++
          try {
            for (let at = offset; at < bytes.length; at += 256 * 1024) yield bytes.subarray(at, Math.min(at + 256 * 1024, bytes.length))
          } finally { live-- }
        })()
      }
    }
  }

  it('handles left open after a read give up their bytes and streams, oldest first, once the mount passes its bound; read again, they read right', async () => {
    const budget = new ReadBudget(4 * MiB)
    const src = counted()
    const readers = Array.from({ length: 12 }, () => new HandleReader(bytes.length, src.open, { keep: 1 * MiB, budget }))
    const buf = Buffer.alloc(131072)
    for (const r of readers) {
      // 2 MiB into each file: each keeps its 1 MiB bound and a paused stream
      for (let at = 0; at < 2 * MiB; at += buf.length) assert.equal(await r.read(buf, buf.length, at), buf.length)
      assert.ok(budget.bytes <= budget.limit, `${budget.bytes} bytes kept`)
    }
    // without the budget: 12 MiB kept and 12 streams; with it: 4 handles' worth
    assert.equal(budget.handles, 4)
    assert.equal(src.live(), 4, 'the shed handles\' streams were ended')
    // the first handle, shed, reads on where it stopped: a new stream at that offset
    assert.equal(await readers[0].read(buf, buf.length, 2 * MiB), buf.length)
    assert.deepEqual(buf, bytes.subarray(2 * MiB, 2 * MiB + buf.length))
    assert.equal(src.opened.filter(o => o === 2 * MiB).length, 1)
    assert.ok(budget.bytes <= budget.limit)
    for (const r of readers) r.close()
    assert.equal(budget.bytes, 0)
    assert.equal(budget.handles, 0)
    await new Promise(resolve => setImmediate(resolve)) // a generator's return() ends it a turn later
    assert.equal(src.live(), 0)
  })

  it('a handle with a request in flight is not shed: its read completes from the stream it had', async () => {
    const budget = new ReadBudget(2 * MiB)
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const opened: number[] = []
    const slow = (offset: number): AsyncIterable<Uint8Array> => {
      opened.push(offset)
      return (async function * () {
        for (let at = offset; at < bytes.length; at += 256 * 1024) {
          if (at >= 1 * MiB) await gate
          yield bytes.subarray(at, Math.min(at + 256 * 1024, bytes.length))
        }
      })()
    }
    const waiting = new HandleReader(bytes.length, slow, { keep: 2 * MiB, budget })
    const first = Buffer.alloc(1 * MiB)
    assert.equal(await waiting.read(first, first.length, 0), first.length)
    let shedWhileReading = 0
    const shed = waiting.shed.bind(waiting)
    waiting.shed = () => { shedWhileReading++; shed() }
    // a read of several pieces that waits on the stream, while other handles fill the budget
    const out = Buffer.alloc(512 * 1024)
    const pending = waiting.read(out, out.length, 1 * MiB)
    const src = counted()
    const others = Array.from({ length: 4 }, () => new HandleReader(bytes.length, src.open, { keep: 1 * MiB, budget }))
    const buf = Buffer.alloc(131072)
    for (const r of others) for (let at = 0; at < 1 * MiB; at += buf.length) await r.read(buf, buf.length, at)
    assert.equal(shedWhileReading, 0, 'the handle reading was never shed')
    // the others were shed instead: what is left is the reading handle's 1 MiB and the last other's
    assert.equal(budget.handles, 2)
    assert.equal(budget.bytes, 2 * MiB)
    release()
    assert.equal(await pending, out.length)
    assert.deepEqual(out, bytes.subarray(1 * MiB, 1 * MiB + out.length))
    assert.deepEqual(opened, [0], 'the waiting handle kept its stream')
    waiting.close()
    for (const r of others) r.close()
    assert.equal(budget.bytes, 0)
  })

  it('a handle closed while it reads keeps nothing in the budget once the read ends', async () => {
    const budget = new ReadBudget(8 * MiB)
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const reader = new HandleReader(bytes.length, () => (async function * () {
      yield bytes.subarray(0, 256 * 1024)
      await gate
      yield bytes.subarray(256 * 1024, 512 * 1024)
    })(), { budget })
    const pending = reader.read(Buffer.alloc(512 * 1024), 512 * 1024, 0)
    await new Promise(resolve => setImmediate(resolve))
    reader.close() // a forced unmount releases its handles while their reads run
    release()
    await pending.catch(() => {})
    assert.equal(budget.handles, 0)
    assert.equal(budget.bytes, 0)
  })
})


describe('CommitQueue', () => {
  it('runs at most `concurrency` batches; room() waits while `maxPending` items are queued', async () => {
    let running = 0
    let most = 0
    const gates: Array<() => void> = []
    const q = new CommitQueue<number>(async items => {
      running++
      most = Math.max(most, running)
      await new Promise<void>(resolve => gates.push(resolve))
      running--
      return items.map(() => undefined)
    }, { concurrency: 2, maxPending: 3, lingerMs: 0 })
    const done = [q.enqueue(1), q.enqueue(2), q.enqueue(3)]
    assert.equal(q.pending, 3)
    let roomy = false
    const room = q.room().then(() => { roomy = true })
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(roomy, false, 'full: room() waits')
    assert.equal(running, 2)
    gates.shift()?.()
    await room
    assert.equal(roomy, true)
    while (gates.length > 0 || q.pending > 0) { gates.shift()?.(); await new Promise(resolve => setImmediate(resolve)) }
    await Promise.all(done)
    await q.drain()
    assert.equal(most, 2)
  })

  it('takes what queued while a batch ran as one batch, in order, and fails only the items that failed', async () => {
    const seen: number[][] = []
    let open: (() => void) | undefined
    const q = new CommitQueue<number>(async items => {
      seen.push(items)
      if (seen.length === 1) await new Promise<void>(resolve => { open = resolve })
      return items.map(n => n === 5 ? new Error('five') : undefined)
    }, { concurrency: 1, maxPending: 100, maxBatch: 3, lingerMs: 0 })
    const results = [1, 2, 3, 4, 5, 6].map(async n => await q.enqueue(n).then(() => 'ok', (err: Error) => err.message))
    await new Promise(resolve => setImmediate(resolve))
    open?.()
    assert.deepEqual(await Promise.all(results), ['ok', 'ok', 'ok', 'ok', 'five', 'ok'])
    assert.deepEqual(seen, [[1], [2, 3, 4], [5, 6]])
    assert.equal(q.batches, 3)
  })

  it('lets items closed in quick succession gather into one batch', async () => {
    const seen: number[][] = []
    const q = new CommitQueue<number>(async items => { seen.push(items); return items.map(() => undefined) }, { lingerMs: 30, minBatch: 100 })
    const done = [q.enqueue(1)]
    await new Promise(resolve => setTimeout(resolve, 5))
    done.push(q.enqueue(2), q.enqueue(3))
    await Promise.all(done)
    assert.deepEqual(seen, [[1, 2, 3]])
  })
})

describe('ContentCache', () => {
  it('serves kept versions by CID, drops the least recently used past its bound, and keeps open handles readable', async t => {
    const dir = await tempDir(t)
    const cache = new ContentCache(join(dir, 'cache'), 10_000)
    const put = async (name: string, bytes: Uint8Array): Promise<boolean> => {
      const from = join(dir, name)
      await writeFile(from, bytes)
      return await cache.adopt(name, from, bytes.byteLength)
    }
    const a = randomBytes(4000)
    const b = randomBytes(4000)
    assert.equal(await put('a', a), true)
    assert.equal(await put('b', b), true)
    assert.equal(await put('huge', randomBytes(20_000)), false, 'larger than the whole cache')
    const reading = await cache.open('a') // a is now the most recently used
    assert.ok(reading !== undefined)
    assert.equal(await put('c', randomBytes(4000)), true)
    assert.equal(cache.has('b'), false, 'the least recently used went')
    assert.equal(cache.has('a') && cache.has('c'), true)
    assert.ok(cache.size <= 10_000)
    const buf = Buffer.alloc(5000)
    assert.equal(await reading.read(buf, 5000, 1000), 3000)
    assert.deepEqual(buf.subarray(0, 3000), a.subarray(1000))
    await cache.clear()
    assert.equal(await reading.read(buf, 100, 0), 100, 'an open handle reads on after its file went')
    await reading.close()
    assert.equal(await cache.open('a'), undefined)
    // cleared for good (the mount is going): a committed file offered afterwards is not kept, and left where it is
    assert.equal(await put('d', randomBytes(4000)), false)
    assert.equal(cache.has('d'), false)
    assert.equal((await readFile(join(dir, 'd'))).byteLength, 4000)
  })

  it('a clear while adopts are moving files in ends with nothing kept and no error', async t => {
    const dir = await tempDir(t)
    const cache = new ContentCache(join(dir, 'cache'), 1_000_000)
    const names = Array.from({ length: 40 }, (_, i) => `f${i}`)
    for (const name of names) await writeFile(join(dir, name), randomBytes(1000))
    // the first adopts made the folder; the rest race with its removal
    const adopts = names.map(async (name, i) => await (i < 5 ? cache.adopt(name, join(dir, name), 1000) : new Promise<boolean>(resolve => setImmediate(() => { resolve(cache.adopt(name, join(dir, name), 1000)) }))))
    await Promise.all([...adopts.slice(0, 5), cache.clear(), ...adopts.slice(5)])
    assert.equal(cache.size, 0)
    for (const name of names) assert.equal(cache.has(name), false, name)
    const left = await readdir(join(dir, 'cache')).catch(() => [])
    assert.deepEqual(left, [], 'nothing left in the cache folder')
  })
  it('a kept copy cut short on disk is not served, and a handle already open fails its read past the cut with EIO', async t => {
    const dir = await tempDir(t)
    const cache = new ContentCache(join(dir, 'cache'), 10_000_000)
    const bytes = randomBytes(100_000)
    await writeFile(join(dir, 'f'), bytes)
    assert.equal(await cache.adopt('f', join(dir, 'f'), bytes.byteLength), true)
    const open = await cache.open('f')
    assert.ok(open !== undefined)
    const kept = (await readdir(join(dir, 'cache'))).map(name => join(dir, 'cache', name))
    assert.equal(kept.length, 1)
    await truncate(kept[0], 60_000)
    const buf = Buffer.alloc(50_000)
    assert.equal(await open.read(buf, 50_000, 0), 50_000, 'bytes before the cut read')
    await assert.rejects(open.read(buf, 50_000, 50_000), (err: unknown) => errnoOf(err) === ERRNO.EIO, 'never a short answer (an end of file)')
    await open.close()
    assert.equal(await cache.open('f'), undefined, 'the cut copy is not served again')
    assert.equal(cache.has('f'), false)
  })
})

describe('CachedContent', () => {
  it('reads a kept file front to back, slightly out of order, and at random offsets, byte for byte', async t => {
    const dir = await tempDir(t)
    const cache = new ContentCache(join(dir, 'cache'), 64 * 1024 * 1024)
    const bytes = randomBytes(5 * 1024 * 1024 + 12_345)
    await writeFile(join(dir, 'f'), bytes)
    assert.equal(await cache.adopt('f', join(dir, 'f'), bytes.byteLength), true)
    const content = await cache.open('f')
    assert.ok(content !== undefined)
    const piece = 128 * 1024
    const out = Buffer.alloc(bytes.byteLength)
    // as the kernel's read-ahead asks: in order but for pairs swapped
    const offsets: number[] = []
    for (let at = 0; at < bytes.byteLength; at += piece) offsets.push(at)
    for (let i = 0; i + 1 < offsets.length; i += 4) [offsets[i], offsets[i + 1]] = [offsets[i + 1], offsets[i]]
    for (const at of offsets) {
      const n = await content.read(out.subarray(at), piece, at)
      assert.equal(n, Math.min(piece, bytes.byteLength - at))
    }
    assert.ok(out.equals(bytes), 'the whole file, byte for byte')
    // random reads, then sequential again from elsewhere
    for (const at of [4_000_000, 17, 5 * 1024 * 1024, 2_500_000, 2_500_000 + piece]) {
      const buf = Buffer.alloc(piece)
      const n = await content.read(buf, piece, at)
      assert.ok(buf.subarray(0, n).equals(bytes.subarray(at, at + piece)), `at ${at}`)
    }
    assert.equal(await content.read(Buffer.alloc(10), 10, bytes.byteLength), 0, 'nothing past the end')
    await content.close()
  })
})

/** Everything a staged file holds, read back through its stream. */
async function contentOf (file: StagedFile): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const part of file.stream()) parts.push(part)
  return Buffer.concat(parts)
}

describe('StagingArea', () => {
  it('keeps a staged file as a file of its own: one on disk by a rename (nothing left in staging), one in memory by a write; the budget is given back', async t => {
    const root = await tempDir(t)
    const dir = join(root, 'staging')
    const area = new StagingArea(dir, { memoryPerFile: 64 * 1024, memoryTotal: 256 * 1024 })
    const bytes = randomBytes(100_000)
    const onDisk = await area.create()
    await onDisk.write(bytes, bytes.length, 0)
    assert.equal(onDisk.onDisk, true)
    const inMemory = await area.create()
    await inMemory.write(bytes, 1000, 0)
    assert.equal(inMemory.onDisk, false)
    await onDisk.keepAs(join(root, 'a'))
    await inMemory.keepAs(join(root, 'b'))
    assert.deepEqual(await readFile(join(root, 'a')), bytes)
    assert.deepEqual(await readFile(join(root, 'b')), bytes.subarray(0, 1000))
    assert.deepEqual(await readdir(dir), [], 'the staged file moved, not copied')
    assert.equal(area.memoryUsed, 0)
    await assert.rejects(inMemory.keepAs(join(root, 'c')), /disposed/, 'kept once')
    const other = await area.create()
    await other.write(bytes, 10, 0)
    await assert.rejects(other.keepAs(join(root, 'a')), { code: 'EEXIST' }, 'never over an existing file')
    assert.deepEqual(await readFile(join(root, 'a')), bytes)
    await other.dispose()
  })

  it('keeps small files in memory, moves a file that grows past the per-file bound to disk, and gives the budget back', async t => {
    const dir = join(await tempDir(t), 'staging')
    const area = new StagingArea(dir, { memoryPerFile: 64 * 1024, memoryTotal: 256 * 1024 })
    const small = await area.create()
    const bytes = randomBytes(100_000)
    await small.write(bytes, 4096, 0)
    await small.write(bytes.subarray(8192), 100, 8192) // a hole, zero-filled
    assert.equal(small.onDisk, false)
    assert.equal(small.size, 8292)
    assert.ok(area.memoryUsed > 0)
    assert.deepEqual(await contentOf(small), Buffer.concat([bytes.subarray(0, 4096), Buffer.alloc(4096), bytes.subarray(8192, 8292)]))
    // growing past 64 KiB: the bytes move to a file, and later writes go there
    const big = await area.create()
    await big.write(bytes, 60_000, 0)
    assert.equal(big.onDisk, false)
    await big.write(bytes.subarray(60_000), 40_000, 60_000)
    assert.equal(big.onDisk, true)
    assert.equal((await readdir(dir)).length, 1)
    assert.deepEqual(await contentOf(big), bytes)
    const buf = Buffer.alloc(10)
    assert.equal(await big.read(buf, 10, 59_995), 10)
    assert.deepEqual(buf, bytes.subarray(59_995, 60_005))
    await big.truncate(50)
    assert.deepEqual(await contentOf(big), bytes.subarray(0, 50))
    const path = await big.handOver()
    assert.ok(path !== undefined && path.startsWith(dir), 'a file on disk is handed over')
    assert.equal(await small.handOver(), undefined, 'a file in memory has nothing to hand over')
    assert.equal(area.memoryUsed, 0, 'every byte of the budget is back')
  })

  it('stages on disk once the memory budget is spent, and a spill keeps writes made while it runs', async t => {
    const dir = join(await tempDir(t), 'staging')
    const area = new StagingArea(dir, { memoryPerFile: 32 * 1024, memoryTotal: 64 * 1024 })
    const files = await Promise.all([0, 1, 2].map(async () => await area.create()))
    const bytes = randomBytes(32 * 1024)
    for (const f of files) await f.write(bytes, bytes.byteLength, 0)
    assert.deepEqual(files.map(f => f.onDisk), [false, false, true], 'the third did not fit the budget')
    // writes racing with the spill of the file they write to: none lost
    const racing = files[0]
    await Promise.all([racing.write(bytes, 1000, 40_000), racing.write(bytes.subarray(1000), 2000, 2000)])
    assert.equal(racing.onDisk, true)
    const expected = Buffer.alloc(41_000)
    bytes.copy(expected, 0)
    bytes.copy(expected, 2000, 1000, 3000)
    bytes.copy(expected, 40_000, 0, 1000)
    assert.deepEqual(await contentOf(racing), expected)
    for (const f of files) await f.dispose()
    assert.equal(area.memoryUsed, 0)
    assert.deepEqual(await readdir(dir), [], 'disposed files are deleted')
  })
})

describe('errnoOf', () => {
  it('maps Shoal errors by name, system errors by code, the rest to EIO', () => {
    assert.equal(errnoOf(new NotFoundError('x')), ERRNO.ENOENT)
    assert.equal(errnoOf(new IsADirectoryError('x')), ERRNO.EISDIR)
    assert.equal(errnoOf(new DirectoryNotEmptyError('x')), ERRNO.ENOTEMPTY)
    assert.equal(errnoOf(new ErrnoError(ERRNO.EBADF, 'x')), ERRNO.EBADF)
    assert.equal(errnoOf(Object.assign(new Error('disk'), { code: 'ENOSPC' })), ERRNO.ENOSPC)
    assert.equal(errnoOf(new Error('what')), ERRNO.EIO)
    assert.equal(errnoOf(undefined), ERRNO.EIO)
  })
})
