/**
 * The parts of the FUSE layer that need no mount: the per-handle reader
 * (one stream for a sequential read, late requests served from what it
 * kept, a seek restarts), the bounded commit queue, and errno mapping.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CommitQueue, ERRNO, ErrnoError, HandleReader, errnoOf } from '../../../node/fuse/index.js'
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

describe('CommitQueue', () => {
  it('runs at most `concurrency` tasks; room() waits while `maxPending` are queued', async () => {
    const q = new CommitQueue({ concurrency: 2, maxPending: 3 })
    let running = 0
    let most = 0
    const gates: Array<() => void> = []
    const task = async (): Promise<void> => {
      running++
      most = Math.max(most, running)
      await new Promise<void>(resolve => gates.push(resolve))
      running--
    }
    const done = [q.enqueue(task), q.enqueue(task), q.enqueue(task)]
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
