/**
 * The durability simulation on the real DurabilityService (placement,
 * repair, scrub on virtual time, per-node liveness, a virtual shard
 * network): after a partition, a crash and restart within the grace
 * period, a departure for good and corrupt shards, no file is lost, repair
 * moves at most 1.2 × k shards per rebuilt shard and rebuilds no more
 * shards than were lost, and every stripe is whole again with no node
 * holding or storing more shards of a stripe than its share (after gc).
 * Files placed before their writers saw a peer are placed again, and the
 * writers release what they no longer hold. Runs are seeded and replay
 * exactly.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { runRealDurability } from '../../simulations/durability-real-check.js'

const verbose = process.env.SIM_VERBOSE === '1'

describe('durability simulation, real service', () => {
  it('20 nodes, ec:4+2: faults cost no file, no repair storm, full redundancy again', { timeout: 120_000 }, async () => {
    for (const seed of [1, 2]) {
      const result = await runRealDurability({ seed, nodes: 20 })
      if (verbose) console.log(JSON.stringify(result))
      assert.deepEqual(result.violations, [], `seed ${seed}`)
      assert.ok(result.lostShards > 0, 'the faults lost shards')
      assert.equal(result.rebuilt, result.lostShards, 'every lost shard rebuilt once, nothing else')
      assert.ok(result.repairBytes <= result.repairBound)
      assert.notEqual(result.convergedAfterMs, undefined)
      // nothing rebuilt before the grace period of the departure ran out
      assert.ok((result.convergedAfterMs as number) >= 10 * 60_000)
    }
  })

  it('files placed while their writers saw no peer: placed again, each writer keeps only its share', { timeout: 120_000 }, async () => {
    for (const seed of [1, 2]) {
      const result = await runRealDurability({ seed, nodes: 12, files: 4, placeAtStart: true })
      if (verbose) console.log(JSON.stringify(result))
      assert.deepEqual(result.violations, [], `seed ${seed}`)
      assert.equal(result.extraShards, 0)
      assert.equal(result.rebuilt, result.lostShards, 'every lost shard rebuilt once, nothing else')
    }
  })

  it('a run replays exactly from its seed', { timeout: 60_000 }, async () => {
    const a = await runRealDurability({ seed: 7, nodes: 12, files: 3 })
    const b = await runRealDurability({ seed: 7, nodes: 12, files: 3 })
    assert.deepEqual(a, b)
  })
})
