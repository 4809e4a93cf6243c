/**
 * Closing a read session ends what it has under way: a `cat` whose reader
 * went away (`| head`), a gateway request that ended, a ranged read that is
 * done close their session, and its fetches from peers stop then, not when
 * they would have timed out. Two real nodes on 127.0.0.1; the holder's disk
 * hangs (its store's reads never return: a fault a test cannot make real).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { once, swarmOf, until } from '../../helpers/swarm.js'
import { defer } from '../../helpers/temp.js'
import type { ShoalNode } from '../../../node/node.js'

const MiB = 1024 * 1024

describe('closing a read session', () => {
  it('ends the fetches it has under way: a read waiting on a stalled holder fails at once, and its request slots are free at once', { timeout: 120_000 }, async t => {
    const swarm = await swarmOf(t, 2)
    const [writer, reader] = swarm.nodes as ShoalNode[]
    const { cid } = await writer.components.files.add('/f.bin', once(randomBytes(4 * MiB)), { chunker: parseChunker('size-262144'), pin: 'none' })
    const root = CID.parse(cid)
    const first = reader.components.blocks.session({ root })
    const leaves = dagPb.decode(await first.getBytes(root)).Links.map(l => l.Hash)
    // from now on the holder's disk hangs
    const store = writer.components.blockstore
    const original = store.getBytes.bind(store)
    let asked = 0
    store.getBytes = async () => { asked++; return await new Promise<never>(() => {}) }
    defer(t, async () => { store.getBytes = original })
    const exchange = reader.components.exchange
    const before = exchange.stats()
    // two reads of the same file, each in a session of its own, both waiting on the stalled holder
    const second = reader.components.blocks.session({ root })
    const waitingFirst = first.getBytes(leaves[0])
    const waitingSecond = second.getBytes(leaves[1])
    waitingFirst.catch(() => {})
    waitingSecond.catch(() => {})
    await until('the holder is asked for a leaf', async () => asked > 0)
    await until('both wants are in flight', async () => exchange.stats().requestsInFlight === 2, 10_000)

    // one session closes: its read fails at once, the other read still waits, on the same stream
    first.close()
    await assert.rejects(within(waitingFirst, 'the first read'), (err: Error) => err.name === 'AbortedError', 'the read of the closed session fails as aborted')
    let stats = exchange.stats()
    assert.equal(stats.requestsInFlight, 2, 'a request another read still waits for keeps the stream: both responses are still expected on it')
    assert.equal(stats.streamsGivenUp - before.streamsGivenUp, 0, 'the stream was not reset')
    assert.equal(await Promise.race([waitingSecond.then(() => 'settled', () => 'settled'), Promise.resolve('waiting')]), 'waiting', 'the other read still waits')

    // the other closes too: nothing on the stream is wanted any more, it is reset and every slot freed, well before the 15 s request timeout
    second.close()
    await assert.rejects(within(waitingSecond, 'the second read'), (err: Error) => err.name === 'AbortedError')
    await until('no fetch and no request left in flight', async () => {
      const s = exchange.stats()
      return s.fetchesPending === 0 && s.requestsInFlight === 0
    }, 5_000)
    stats = exchange.stats()
    assert.equal(stats.streamsGivenUp - before.streamsGivenUp, 1, 'the stream was reset once, given up')
    assert.equal(stats.streamFailures - before.streamFailures, 0, 'the holder was not blamed: the readers gave up, it did not fail')

    // the holder recovers: a new read opens a new stream and gets the leaf
    store.getBytes = original
    const third = reader.components.blocks.session({ root })
    try {
      const bytes = await within(third.getBytes(leaves[2]), 'a read after the reset')
      assert.ok(bytes.length > 0)
    } finally {
      third.close()
    }
  })
})

/** `promise`, or an error once it has waited 10 s. */
async function within<T> (promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} still waits after 10 s`)) }, 10_000) })
  try {
    return await Promise.race([promise, bound])
  } finally {
    clearTimeout(timer)
  }
}
