/**
 * 1,000 real replicas (Replica + NamespaceSync) on the bounded virtual
 * network: writes from many nodes, a partition with writes on both sides,
 * cut and one-way links, a heal; every replica converges and holds every
 * acknowledged write. About 50 s on a shared 2-core machine.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runScale } from '../../simulations/scale-sim.js'

test('1,000 replicas on a bounded network converge after a partition with no write lost', async () => {
  const nodes = 1000
  const r = await runScale({ nodes, seed: 1, writers: 10, interval: 20_000, partitionFor: 5000, convergeWithin: 120_000 })
  if (process.env.SIM_VERBOSE !== undefined) console.log(r)
  assert.equal(r.writes, 20)
  assert.ok(r.converged, `not converged ${r.convergeMs} virtual ms after the heal`)
  assert.deepEqual(r.lost, [], `${r.replicasMissing} replicas miss writes`)
  // the network was the bounded one: few links per node, gossip over many hops
  assert.ok(r.network.links <= nodes * 5, `${r.network.links} links`)
  assert.ok(r.network.maxHops >= 3, `gossip took at most ${r.network.maxHops} hops`)
  assert.ok(r.network.seen > 0 && r.network.dropped > 0 && r.network.duplicated > 0)
})
