/**
 * 1,000 real replicas (Replica + NamespaceSync) on the bounded virtual
 * network: writes from 200 of them (200 authors), a partition with writes
 * on both sides, cut and one-way links, a heal; every replica converges and
 * holds every acknowledged write. 110 s alone on a 2-core machine of
 * docs/benchmarks.md ("Simulation scale", "Parent links checked in memory").
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { runScaleInChild } from '../../simulations/scale-child.js'

test('1,000 replicas, 200 of them writers, on a bounded network converge after a partition with no write lost', { timeout: 600_000 }, async () => {
  const nodes = 1000
  const writers = 200
  const r = await runScaleInChild({ nodes, seed: 3, writers, interval: 20_000, partitionFor: 5000, convergeWithin: 120_000 }, { timeoutMs: 540_000 })
  if (process.env.SIM_VERBOSE !== undefined) console.log(r)
  assert.equal(r.writes, 2 * writers, 'every writer wrote before and during the partition')
  assert.ok(r.converged, `not converged ${r.convergeMs} virtual ms after the heal`)
  assert.deepEqual(r.lost, [], `${r.replicasMissing} replicas miss writes`)
  // the network was the bounded one: few links per node, gossip over many hops
  assert.ok(r.network.links <= nodes * 5, `${r.network.links} links`)
  assert.ok(r.network.maxHops >= 3, `gossip took at most ${r.network.maxHops} hops`)
  assert.ok(r.network.seen > 0 && r.network.dropped > 0 && r.network.duplicated > 0)
})

test('300 replicas of which 60 crash during a partition and restart with their stores (half before the heal, half after): every write on every replica', { timeout: 300_000 }, async () => {
  const r = await runScaleInChild({ nodes: 300, seed: 5, writers: 40, interval: 20_000, partitionFor: 5000, convergeWithin: 120_000, crashes: 60 }, { timeoutMs: 240_000 })
  assert.equal(r.crashed, 60)
  assert.equal(r.writes, 80)
  assert.ok(r.converged, `not converged ${r.convergeMs} virtual ms after the heal`)
  assert.deepEqual(r.lost, [], `${r.replicasMissing} replicas miss writes`)
})

test('a scale run in a child process that outlasts its limit fails with a typed error and leaves no process behind', async () => {
  await assert.rejects(runScaleInChild({ nodes: 300, seed: 1, writers: 10 }, { timeoutMs: 200 }), (err: Error) => err.name === 'ScaleChildError' && /still running after 200 ms/.test(err.message))
  const children = readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim()
  assert.equal(children, '', `child processes left: ${children}`)
})
