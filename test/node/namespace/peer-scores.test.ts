/**
 * Peer scores for bad input (node/namespace/peer-scores.ts): offences add
 * up and decay on the injected clock; a peer past the threshold is shunned
 * until its score has decayed to half of it; memory is bounded. And in
 * NamespaceSync, over an in-process network with real replicas: a peer
 * whose gossip does not decode is shunned — its gossip, even valid, is
 * dropped unread and it is not pulled from — until its score decays.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { PENALTIES, OffenceScores } from '../../../node/namespace/peer-scores.js'
import { NamespaceSync, type SyncHandlers, type SyncNetwork } from '../../../node/namespace/sync.js'
import { encodeHeadsMessage } from '../../../protocol/namespace.js'
import { VirtualTime } from '../../../simulations/virtual-time.js'
import { file, replica, silent, type Sim } from './helpers.js'

const MINUTE = 60_000

describe('peer scores', () => {
  it('offences add up, halve every half-life, and shun from the threshold until the score is half of it', () => {
    const clock = { now: 0 }
    const scores = new OffenceScores({ now: () => clock.now }, { threshold: 10, halfLife: 5 * MINUTE })
    for (let i = 0; i < 9; i++) assert.equal(scores.penalize('p', 'invalidMessage'), false)
    assert.equal(scores.shunned('p'), false, '9 is under the threshold')
    assert.equal(scores.penalize('p', 'invalidMessage'), true, 'the tenth offence shuns it')
    assert.equal(scores.penalize('p', 'invalidMessage'), false, 'already shunned: said once')
    assert.equal(scores.stats.shunnings, 1)
    assert.equal(scores.stats.penalties, 11)
    clock.now += 5 * MINUTE
    assert.ok(Math.abs(scores.score('p') - 5.5) < 1e-9, `halved: ${scores.score('p')}`)
    assert.equal(scores.shunned('p'), true, 'still shunned above half the threshold')
    clock.now += MINUTE
    assert.equal(scores.shunned('p'), false, 'under half the threshold: taken again')
    assert.equal(scores.penalize('p', 'invalidMessage'), false, 'one more offence does not shun it again at once')
    assert.equal(scores.shunned('other'), false)
    assert.equal(scores.score('other'), 0)
  })

  it('a snapshot that fails its checks weighs five malformed messages; two shun a peer', () => {
    const scores = new OffenceScores({ now: () => 0 })
    assert.equal(PENALTIES.invalidSnapshot, 5 * PENALTIES.invalidMessage)
    scores.penalize('p', 'invalidSnapshot')
    assert.equal(scores.penalize('p', 'invalidSnapshot'), true)
    assert.deepEqual(scores.shunnedPeers(), ['p'])
  })

  it('keeps at most maxPeers scores, dropping the lowest', () => {
    const scores = new OffenceScores({ now: () => 0 }, { maxPeers: 3 })
    scores.penalize('a', 'invalidSnapshot')
    scores.penalize('b', 'invalidMessage')
    scores.penalize('c', 'rejectedEntries')
    scores.penalize('d', 'rejectedEntries')
    assert.equal(scores.score('b'), 0, 'the lowest was dropped')
    for (const p of ['a', 'c', 'd']) assert.ok(scores.score(p) > 0, p)
  })
})

/** Two endpoints wired to each other; requests are counted by target. */
function wire (): { endpoint: (self: string, peer: string) => SyncNetwork, handlers: Map<string, SyncHandlers>, asked: Map<string, number> } {
  const handlers = new Map<string, SyncHandlers>()
  const asked = new Map<string, number>()
  const endpoint = (self: string, peer: string): SyncNetwork => ({
    handle: async h => { handlers.set(self, h) },
    unhandle: async () => { handlers.delete(self) },
    publish: async () => {},
    request: async (to, data) => {
      asked.set(to, (asked.get(to) ?? 0) + 1)
      const h = handlers.get(to)
      if (h === undefined) throw new Error(`${to} is not reachable`)
      return await h.request(self, data)
    },
    peers: () => [peer]
  })
  return { endpoint, handlers, asked }
}

describe('namespace sync scores peers down for bad input', () => {
  it('a peer whose gossip does not decode is shunned: its valid gossip is then dropped unread and it is not pulled from, until its score decays', async () => {
    const sim: Sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    const net = wire()
    const clock = { now: () => sim.now }
    const syncA = new NamespaceSync({ replica: a, network: net.endpoint(a.id, b.id), timers: new VirtualTime(), random: () => 0.5, logger: silent, clock }, { interval: 1e9 })
    const syncB = new NamespaceSync({ replica: b, network: net.endpoint(b.id, a.id), timers: new VirtualTime(), random: () => 0.5, logger: silent, clock }, { interval: 1e9 })
    await syncB.start()
    await syncA.start()
    try {
      await syncA.idle()
      const deliver = (data: Uint8Array): void => { net.handlers.get(a.id)?.message(b.id, data) }
      for (let i = 0; i < 10; i++) deliver(new Uint8Array([0xff, i]))
      assert.equal(syncA.stats.invalidMessages, 10)
      assert.equal(syncA.scores.shunned(b.id), true)
      // b writes; its gossip (a valid message announcing the write) is dropped unread, and a does not pull from b
      await b.putFile('/b.txt', file('b'))
      const announced = encodeHeadsMessage({ v: 1, type: 'heads', clock: b.state().clock, heads: b.state().heads, entries: [] })
      const askedBefore = net.asked.get(b.id) ?? 0
      deliver(announced)
      syncA.pullFrom(b.id)
      await syncA.idle()
      assert.equal(syncA.stats.shunned, 1, 'the valid message was dropped unread')
      assert.equal(net.asked.get(b.id) ?? 0, askedBefore, 'b was not asked for anything')
      assert.equal(await a.lookup('/b.txt'), undefined)
      // ten minutes later the score has decayed under half the threshold: b's gossip is taken again and a pulls
      sim.now += 10 * MINUTE
      deliver(announced)
      await syncA.idle()
      assert.equal(syncA.scores.shunned(b.id), false)
      assert.equal((await a.lookup('/b.txt'))?.type, 'file')
    } finally {
      await syncA.stop()
      await syncB.stop()
    }
  })
})
