/**
 * Closing a read session ends what it has under way: a `cat` whose reader
 * went away (`| head`), a gateway request that ended, a ranged read that is
 * done close their session, and its fetches from peers stop then, not when
 * they would have timed out, and their request slots are freed about a
 * second later (a stream whose every request was given up is reset). Two
 * real nodes on 127.0.0.1; the holder's disk hangs (its store's reads wait
 * until the test lets them go) or is slow (one read at a time): faults a
 * test cannot make real.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { once, swarmOf, until } from '../../helpers/swarm.js'
import { defer } from '../../helpers/temp.js'
import { settlesWithin } from '../../helpers/processes.js'
import { GIVE_UP_MS } from '../../../node/exchange/channel.js'
import type { ShoalNode } from '../../../node/node.js'
import type { ReadSession } from '../../../node/reads/api.js'

const MiB = 1024 * 1024

describe('closing a read session', () => {
  it('ends the fetches it has under way: a read waiting on a stalled holder fails at once, and its request slots are free at once', { timeout: 120_000 }, async t => {
    const { reader, root, session: first, leaves, asked, release } = await hungHolder(t)
    const exchange = reader.components.exchange
    const before = exchange.stats()
    // two reads of the same file, each in a session of its own, both waiting on the stalled holder
    const second = reader.components.blocks.session({ root })
    const waitingFirst = first.getBytes(leaves[0])
    const waitingSecond = second.getBytes(leaves[1])
    waitingFirst.catch(() => {})
    waitingSecond.catch(() => {})
    await until('the holder is asked for a leaf', async () => asked() > 0)
    await until('both wants are in flight', async () => exchange.stats().requestsInFlight === 2, 10_000)

    // one session closes: its read fails at once, the other read still waits, on the same stream
    first.close()
    await assert.rejects(within(waitingFirst, 'the first read'), (err: Error) => err.name === 'AbortedError', 'the read of the closed session fails as aborted')
    let stats = exchange.stats()
    assert.equal(stats.requestsInFlight, 2, 'a request another read still waits for keeps the stream: both responses are still expected on it')
    assert.equal(stats.streamsGivenUp - before.streamsGivenUp, 0, 'the stream was not reset')
    assert.equal(await Promise.race([waitingSecond.then(() => 'settled', () => 'settled'), Promise.resolve('waiting')]), 'waiting', 'the other read still waits')

    // the other closes too: nothing on the stream is wanted any more; a second later (GIVE_UP_MS) it is reset and every slot freed, well before the 15 s request timeout
    second.close()
    await assert.rejects(within(waitingSecond, 'the second read'), (err: Error) => err.name === 'AbortedError')
    await until('no fetch and no request left in flight', async () => {
      const s = exchange.stats()
      return s.fetchesPending === 0 && s.requestsInFlight === 0
    }, 5_000)
    stats = exchange.stats()
    assert.equal(stats.streamsGivenUp - before.streamsGivenUp, 1, 'the stream was reset once, given up')
    assert.equal(stats.streamFailures - before.streamFailures, 1, 'the holder, silent all along, counted as failed once, as its request timeout would have counted it')

    // the holder recovers: a new read opens a new stream and gets the leaf
    release()
    const third = reader.components.blocks.session({ root })
    try {
      const bytes = await within(third.getBytes(leaves[2]), 'a read after the reset')
      assert.ok(bytes.length > 0)
    } finally {
      third.close()
    }
  })

  it('a request whose caller gave up on its own timeout still waits for its answer: the stream is not given up, the late answers drain it', { timeout: 120_000 }, async t => {
    const { reader, session, leaves, asked, release } = await hungHolder(t)
    const exchange = reader.components.exchange
    const before = exchange.stats()
    const waiting = session.getBytes(leaves[0])
    waiting.catch(() => {})
    await until('the holder is asked for the leaf', async () => asked() > 0)
    // a have on the same stream, behind the stalled want: its own 3 s timeout gives up on it
    const haves = await exchange.askHave([leaves[1]])
    assert.deepEqual(haves, { peers: [], heldByNone: 1 }, 'the stalled holder did not answer the have in time')
    session.close()
    await assert.rejects(within(waiting, 'the read'), (err: Error) => err.name === 'AbortedError')
    // the want was given up, the have timed out: the have's answer is still expected, the stream stays
    await sleep(GIVE_UP_MS + 500)
    let stats = exchange.stats()
    assert.equal(stats.streamsGivenUp - before.streamsGivenUp, 0, 'the stream was not given up')
    assert.equal(stats.requestsInFlight, 2, 'both responses are still expected')
    // the disk comes back: the holder answers both, late, and the slots are freed by the answers
    release()
    await until('no request left in flight', async () => exchange.stats().requestsInFlight === 0, 10_000)
    stats = exchange.stats()
    assert.equal(stats.streamsGivenUp - before.streamsGivenUp, 0)
    assert.equal(stats.streamFailures - before.streamFailures, 0, 'the stream lived on')
  })

  it('a slow holder still sending when every read on its stream closed is cut off without blame', { timeout: 120_000 }, async t => {
    // the holder's disk answers one read at a time, 300 ms each
    const { reader, session, leaves, served } = await hungHolder(t, { slowMs: 300 })
    const exchange = reader.components.exchange
    const before = exchange.stats()
    const reads = leaves.slice(0, 8).map(leaf => session.getBytes(leaf))
    for (const r of reads) r.catch(() => {})
    await within(reads[0], 'the first leaf')
    // the reader goes away with seven answers due: the holder keeps sending them, one every 300 ms
    session.close()
    await until('no request left in flight', async () => exchange.stats().requestsInFlight === 0, 5_000)
    const stats = exchange.stats()
    assert.ok(served() < 8, `the stream was cut before the holder had read every leaf asked for (${served()} read)`)
    assert.equal(stats.streamsGivenUp - before.streamsGivenUp, 1, 'the stream was reset once, given up')
    assert.equal(stats.streamFailures - before.streamFailures, 0, 'the holder, sending all along, was not blamed')
  })
})

/**
 * Two nodes; a 4 MiB file of 16 leaves added on the first (the holder); a
 * read session on the second (the reader) that has read the file's root.
 * From then on the holder's disk hangs: its store's reads wait until
 * `release()`, then go on; with `slowMs`, they do not hang but take turns,
 * `slowMs` each.
 */
async function hungHolder (t: TestContext, options: { slowMs?: number } = {}): Promise<{ reader: ShoalNode, root: CID, session: ReadSession, leaves: CID[], asked: () => number, served: () => number, release: () => void }> {
  const swarm = await swarmOf(t, 2)
  const [holder, reader] = swarm.nodes as ShoalNode[]
  const { cid } = await holder.components.files.add('/f.bin', once(randomBytes(4 * MiB)), { chunker: parseChunker('size-262144'), pin: 'none' })
  const root = CID.parse(cid)
  const session = reader.components.blocks.session({ root })
  const leaves = dagPb.decode(await session.getBytes(root)).Links.map(l => l.Hash)
  const store = holder.components.blockstore
  const original = store.getBytes.bind(store)
  let release: () => void = () => {}
  let turn: Promise<unknown> = options.slowMs === undefined ? new Promise<void>(resolve => { release = resolve }) : Promise.resolve()
  let asked = 0
  let served = 0
  store.getBytes = async (...args) => {
    asked++
    const mine = turn.then(async () => {
      if (options.slowMs !== undefined) await sleep(options.slowMs)
      served++
      return await original(...args)
    })
    if (options.slowMs !== undefined) turn = mine.catch(() => {})
    return await mine
  }
  defer(t, async () => { release(); store.getBytes = original })
  return { reader, root, session, leaves, asked: () => asked, served: () => served, release }
}

/** `promise`, or an error naming `what` once it has waited 10 s. */
async function within<T> (promise: Promise<T>, what: string): Promise<T> {
  return await settlesWithin(promise, what, 10_000)
}
