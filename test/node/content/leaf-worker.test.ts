/**
 * Leaves cut and hashed on a worker thread (node/content/leaf-chunker.ts):
 * an import through the worker makes the very same DAG (same leaves, same
 * CIDs) as one on the calling thread, for every chunker and any piece
 * sizes; a worker that dies mid-import fails that import with a typed error
 * and the next import starts a new one; a source that fails stops the
 * stream without leaving it hanging; leaves hashed in batches are not held
 * back waiting for bytes a slow upload has not sent.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { importContent, parseChunker, readContent } from '../../../node/content/index.js'
import { LeafWorker } from '../../../node/content/leaf-chunker.js'
import { serveStream, type HashMany, type StreamOutput } from '../../../node/content/leaf-worker.js'
import { MessageChannel } from 'node:worker_threads'
import { setTimeout as sleep } from 'node:timers/promises'
import { collectBytes, randomBytes, toAsync } from '../../helpers/bytes.js'
import { defer, openBlockStore } from '../../helpers/temp.js'
import type { CleanupContext } from '../../helpers/temp.js'
import { settlesWithin } from '../../helpers/processes.js'

const MiB = 1024 * 1024

/** `bytes` in pieces of 1 byte to 300 KiB, varying. */
function * oddPieces (bytes: Uint8Array): Generator<Uint8Array> {
  let at = 0
  for (let i = 0; at < bytes.byteLength; i++) {
    const size = [1, 65_536, 300 * 1024, 4096, 123_457][i % 5]
    yield bytes.subarray(at, at + size)
    at += size
  }
}

function workerOf (t: CleanupContext): LeafWorker {
  const worker = new LeafWorker()
  defer(t, async () => { await worker.close() })
  return worker
}

describe('leaves cut and hashed on a worker thread', () => {
  for (const chunker of ['fastcdc', 'size-262144', 'fastcdc-1024-4096-16384']) {
    it(`makes the same DAG as the calling thread (${chunker})`, async (t) => {
      const worker = workerOf(t)
      const bytes = randomBytes(9 * MiB + 777, 21)
      const here = await openBlockStore(t)
      const there = await openBlockStore(t)
      const local = await importContent(here, toAsync(oddPieces(bytes)), { chunker: parseChunker(chunker) })
      const leaves: string[] = []
      const remote = await importContent(there, toAsync(oddPieces(bytes)), {
        chunker: parseChunker(chunker),
        leafWorker: worker,
        onLeaf: leaf => { leaves.push(leaf.cid.toString()) }
      })
      assert.equal(remote.cid.toString(), local.cid.toString())
      assert.equal(remote.size, bytes.byteLength)
      assert.equal(new Set(leaves).size, leaves.length, 'every leaf reaches onLeaf once')
      assert.deepEqual(await collectBytes(readContent(there, remote.cid)), bytes)
    })
  }

  it('a slow upload\'s leaves reach the import before the next bytes come (a batch is not held for them)', async (t) => {
    const worker = workerOf(t)
    const store = await openBlockStore(t)
    // 1 MiB: four leaves of 256 KiB, fewer than a batch of leaves hashed side by side holds
    const first = randomBytes(MiB, 5)
    let leavesSeen = 0
    let sawLeaf: (() => void) | undefined
    const seen = new Promise<void>(resolve => { sawLeaf = resolve })
    async function * slow (): AsyncGenerator<Uint8Array> {
      yield first
      // the rest only once the import has had a leaf of the first MiB
      await settlesWithin(seen, 'a leaf of the first MiB', 10_000)
      yield randomBytes(MiB, 6)
    }
    const added = await importContent(store, slow(), {
      chunker: parseChunker('size-262144'),
      leafWorker: worker,
      onLeaf: () => { leavesSeen++; sawLeaf?.() }
    })
    assert.equal(added.size, 2 * MiB)
    assert.equal(leavesSeen, 8)
  })

  it('a batch whose hash fails ends its stream with the error at once, though the main thread sends no more', async () => {
    for (const [what, hashMany] of [
      // late, once the worker has cut every piece it was sent and waits for more
      ['rejected', async () => { await sleep(300); throw new Error('the pool is gone') }],
      ['thrown at the call', () => { throw new TypeError('cannot start the job') }]
    ] as Array<[string, HashMany]>) {
      const { port1, port2 } = new MessageChannel()
      try {
        const answered = new Promise<StreamOutput>(resolve => { port1.on('message', (message: StreamOutput) => { if (!('bytes' in message)) resolve(message) }) })
        serveStream({ port: port2, spec: parseChunker('size-262144') }, { hashMany })
        // more than a batch, then nothing: the main thread's window is full, it waits for leaves
        for (let i = 0; i < 20; i++) port1.postMessage({ piece: randomBytes(MiB, 40 + i) })
        const message = await settlesWithin(answered, `the stream's answer (${what})`, 10_000)
        assert.ok('error' in message, `${what}: ${JSON.stringify(message)}`)
        assert.match(message.error, what === 'rejected' ? /the pool is gone/ : /cannot start the job/)
      } finally {
        port1.close()
      }
    }
  })

  it('an empty file and a one-leaf file import the same way', async (t) => {
    const worker = workerOf(t)
    for (const bytes of [new Uint8Array(0), randomBytes(1000, 3)]) {
      const a = await importContent(await openBlockStore(t), toAsync([bytes]), { chunker: parseChunker('fastcdc') })
      const b = await importContent(await openBlockStore(t), toAsync([bytes]), { chunker: parseChunker('fastcdc'), leafWorker: worker })
      assert.equal(b.cid.toString(), a.cid.toString())
    }
  })

  it('a worker that dies mid-import fails that import with LeafWorkerError; the next import starts a new worker', async (t) => {
    const worker = workerOf(t)
    const store = await openBlockStore(t)
    async function * slow (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 64; i++) {
        yield randomBytes(MiB, 100 + i)
        // the worker goes away after a few MiB
        if (i === 4) await worker.close()
      }
    }
    await assert.rejects(importContent(store, slow(), { chunker: parseChunker('fastcdc'), leafWorker: worker }),
      (err: any) => err.name === 'LeafWorkerError' && /leaf worker stopped/.test(err.message))
    const bytes = randomBytes(3 * MiB, 9)
    const again = await importContent(store, toAsync([bytes]), { chunker: parseChunker('fastcdc'), leafWorker: worker })
    assert.deepEqual(await collectBytes(readContent(store, again.cid)), bytes)
  })

  it('a source that fails stops the import with its error, and the worker serves the next one', async (t) => {
    const worker = workerOf(t)
    const store = await openBlockStore(t)
    async function * failing (): AsyncGenerator<Uint8Array> {
      yield randomBytes(5 * MiB, 1)
      throw new Error('the upload broke')
    }
    await assert.rejects(importContent(store, failing(), { chunker: parseChunker('fastcdc'), leafWorker: worker }), /the upload broke/)
    const bytes = randomBytes(4 * MiB, 2)
    const next = await importContent(store, toAsync([bytes]), { chunker: parseChunker('fastcdc'), leafWorker: worker })
    assert.deepEqual(await collectBytes(readContent(store, next.cid)), bytes)
  })
})
