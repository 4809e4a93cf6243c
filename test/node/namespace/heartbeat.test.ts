/**
 * Heartbeats of namespace sync: a round publishes the clock only when the
 * node holds entries no gossip announced, or when a liveness heartbeat is
 * due. Real replicas and real `NamespaceSync` on the simulation's virtual
 * network and clock, so rounds and their counts are deterministic.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { weight } from '../../../node/namespace/clock.js'
import type { NamespaceSim } from '../../../simulations/namespace-sim.js'
import { withSim } from '../../simulations/namespace-sim-helpers.js'

/** Published messages and heartbeat counters of every node, now. */
function counters (sim: NamespaceSim): Array<{ published: number, heartbeats: number, skipped: number }> {
  return sim.nodes.map(n => ({ published: n.sync.stats.published, heartbeats: n.sync.stats.heartbeats, skipped: n.sync.stats.heartbeatsSkipped }))
}

describe('namespace heartbeats', () => {
  it('a quiet swarm publishes nothing but liveness heartbeats, at most one per heartbeatEvery per node', async () => {
    // rounds every 1 s (jittered 0.5–1.5 s); a liveness heartbeat after 600 rounds
    await withSim({ nodes: 5, seed: 21, sync: { heartbeatEvery: 600_000 } }, async sim => {
      for (const i of [0, 1, 2]) assert.ok((await sim.apply(i, { kind: 'put', path: `/w${i}` })).ok)
      assert.ok(await sim.converge())
      const before = counters(sim)
      await sim.advance(60_000)
      const quiet = counters(sim)
      for (const [i, c] of quiet.entries()) {
        assert.equal(c.published, before[i].published, `node ${i} published while nothing changed`)
        assert.ok(c.skipped - before[i].skipped >= 30, `node ${i} skipped ${c.skipped - before[i].skipped} heartbeats in 60 rounds`)
      }
      // past heartbeatEvery: every node says it is alive, once
      await sim.advance(600_000)
      for (const [i, c] of counters(sim).entries()) {
        const beats = c.heartbeats - quiet[i].heartbeats
        assert.ok(beats >= 1 && beats <= 2, `node ${i} published ${beats} liveness heartbeats in 600 s`)
        assert.equal(c.published - quiet[i].published, beats, `node ${i} published something else`)
      }
      // a write is still published at once, and spreads by that gossip alone
      const published = sim.nodes[3].sync.stats.published
      assert.ok((await sim.apply(3, { kind: 'put', path: '/late' })).ok)
      assert.equal(sim.nodes[3].sync.stats.published, published + 1)
      assert.ok(await sim.converge())
    })
  })

  it('entries a node applied outside gossip are announced by its next round, and peers that did not pull fetch them', async () => {
    // no timed rounds and no liveness heartbeats within the test: rounds run by hand
    await withSim({ nodes: 3, seed: 22, sync: { interval: 1e9, heartbeatEvery: 1e15 } }, async sim => {
      const [a, b, c] = sim.nodes
      const written: Uint8Array[] = []
      // a node that has heard no trusted gossip since it started publishes (it cannot know what the others were told)
      await b.sync.round()
      assert.deepEqual([b.sync.stats.heartbeats, b.sync.stats.heartbeatsSkipped], [1, 0])
      // b and c hear each other's gossip
      for (const i of [1, 2]) assert.ok((await sim.apply(i, { kind: 'put', path: `/w${i}` })).ok)
      assert.ok(await sim.converge())
      a.replica.onLocalEntries(entries => written.push(...entries))
      sim.partition([[0], [1, 2]])
      assert.ok((await sim.apply(0, { kind: 'put', path: '/from-a' })).ok)
      await sim.advance(1000)
      assert.equal(await b.replica.lookup('/from-a'), undefined, 'the partition held the gossip')
      // b applies a's entry as a pull does; c has heard nothing of it
      assert.equal((await b.replica.receive(written, a.id)).applied, 1)
      await b.sync.round()
      assert.equal(b.sync.stats.heartbeats, 2, 'b announced what it applied')
      await sim.time.runUntil(() => c.replica.state().clock[a.id] === 1, { deadline: sim.time.now() + 10_000 })
      assert.equal((await c.replica.lookup('/from-a'))?.type, 'file', 'c fetched the entry after b\'s heartbeat')
      // nothing new since: neither b nor c (which heard b's clock) publishes
      const published = [b.sync.stats.published, c.sync.stats.published]
      await b.sync.round()
      await c.sync.round()
      await sim.advance(1000)
      assert.deepEqual([b.sync.stats.published, c.sync.stats.published], published)
      assert.deepEqual([b.sync.stats.heartbeatsSkipped, c.sync.stats.heartbeatsSkipped], [1, 1])
    })
  })

  it('a quiet swarm still learns every member\'s clock and compacts', async () => {
    // compaction needs every member's clock; members that only received gossip tell theirs by pulls and liveness heartbeats
    await withSim({ nodes: 6, seed: 23, replica: { compactAfter: 20 }, sync: { heartbeatEvery: 30_000 } }, async sim => {
      for (let k = 0; k < 15; k++) {
        for (const i of [0, 1]) assert.ok((await sim.apply(i, { kind: 'put', path: `/c/${i}-${k}` })).ok)
      }
      assert.ok(await sim.converge())
      const publishedBefore = sim.syncStats().published
      // compactAfter 20 of the 30 entries: each node compacts once every member is heard past 20 of them
      const compacted = (): boolean => sim.nodes.every(n => weight(n.replica.state().pruned) >= 20)
      await sim.time.runUntil(compacted, { deadline: sim.time.now() + 120_000, pollEvery: 500 })
      for (const n of sim.nodes) {
        assert.ok(weight(n.replica.state().pruned) >= 20, `node ${n.index} did not compact: pruned ${JSON.stringify(n.replica.state().pruned)}`)
      }
      assert.ok(sim.nodes.every(n => n.sync.stats.heartbeatsSkipped > 0), 'rounds skipped heartbeats meanwhile')
      assert.ok(sim.syncStats().published - publishedBefore < sim.nodes.length * 10, 'the quiet swarm published little')
      // and it still converges on a later write
      assert.ok((await sim.apply(5, { kind: 'put', path: '/after' })).ok)
      assert.ok(await sim.converge())
    })
  })
})
