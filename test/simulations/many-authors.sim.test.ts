/**
 * Many authors: 200 real replicas on the bounded virtual network, every one
 * of them a writer (two writes each, before and during a partition), so the
 * clocks name 200 authors. The swarm converges after the heal with every
 * acknowledged write on every replica, and what gossip carries per message
 * does not grow with the number of authors: a push names its own dots, not
 * the writer's whole clock (at 200 authors that clock alone is ~11 kB).
 * About 50 CPU-seconds on a shared 2-core machine.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runScaleInChild } from '../../simulations/scale-child.js'

test('200 replicas that all write converge after a partition, with gossip messages that do not grow with the authors', { timeout: 600_000 }, async () => {
  const nodes = 200
  const r = await runScaleInChild({ nodes, seed: 3, writers: nodes, interval: 20_000, partitionFor: 5000, convergeWithin: 300_000 }, { timeoutMs: 540_000 })
  if (process.env.SIM_VERBOSE !== undefined) console.log(r)
  assert.equal(r.writes, 2 * nodes, 'every node wrote twice')
  assert.ok(r.converged, `not converged ${r.convergeMs} virtual ms after the heal`)
  assert.deepEqual(r.lost, [], `${r.replicasMissing} replicas miss writes`)
  assert.ok(r.gossip.messages >= nodes * r.writes / 2, `${r.gossip.messages} gossip messages: the writes were gossiped`)
  const perMessage = r.gossip.bytes / r.gossip.messages
  // one entry (~400 B) and its dots, framing and an occasional heartbeat; a writer's 200-author clock would add ~11 kB
  assert.ok(perMessage < 2500, `${perMessage.toFixed(0)} bytes per gossip message at ${nodes} authors`)
})
