/**
 * Node lifecycle faults on a simulated swarm (real Replica and NamespaceSync
 * on the virtual network and clock): crash and restart with the store kept,
 * restart with the disk lost (same key, empty store), restore of an old
 * backup (written at once: the check after a restart), join, leave, clock
 * skew, a full disk. The checker compares materialized trees
 * (paths, types, CIDs, conflicts) and every acknowledged write, and counts
 * rejected entries (an honest swarm rejects none).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { SimOp } from '../../simulations/namespace-ops.js'
import type { NamespaceSim } from '../../simulations/namespace-sim.js'
import { withSim } from './namespace-sim-helpers.js'
import { showStep, type Step } from '../../simulations/scenario.js'
import { LIFECYCLE_NETWORK, lifecycleProblems as problems, lifecycleStepArb as stepArb, playLifecycle } from '../../simulations/lifecycle-steps.js'

const RUN = { includeErrorInReport: true, endOnFailure: process.env.SIM_SHRINK === undefined }

function report (sim: NamespaceSim, found: string[], steps: readonly Step[] = []): string {
  return [...found.slice(0, 30), `seed ${sim.options.seed} nodes ${sim.nodes.length}`,
    'steps:', ...steps.map(s => '  ' + showStep(s)), 'trace (last 60):', ...sim.trace.slice(-60).map(l => '  ' + l)].join('\n')
}


const put = (path: string): SimOp => ({ kind: 'put', path })

/** Nothing wrong once the swarm had time to converge: same views, every acknowledged write, nothing rejected. */
async function assertWhole (sim: NamespaceSim): Promise<void> {
  const found = await problems(sim)
  assert.deepEqual(found, [], report(sim, found))
}

/**
 * The disk-loss scenario of issue 17: node 0 writes, everyone syncs, node 0
 * restarts with the same key and an empty store and writes at once.
 */
async function diskLossThenWrite (sim: NamespaceSim): Promise<void> {
  await sim.apply(0, put('/a'))
  await sim.apply(0, put('/b.txt'))
  await sim.apply(1, put('/f'))
  assert.ok(await sim.converge(30_000))
  await sim.restart(0, 'lost')
  const outcome = await sim.apply(0, put('/d/x'))
  assert.equal(outcome.ok, true, `the write after recovery is acknowledged (${outcome.error ?? ''})`)
}

describe('namespace simulation: node lifecycle', () => {
  it('a node restarted with its disk lost writes only after it recovered its own writes: same trees, no write lost, nothing rejected', async () => {
    await withSim({ nodes: 3, seed: 17 }, async sim => {
      await diskLossThenWrite(sim)
      await assertWhole(sim)
      assert.equal(sim.nodes[0].replica.recovering, false)
    })
  })

  it('the checker catches the divergence when recovery is skipped (the bug as it was)', async () => {
    await withSim({ nodes: 3, seed: 17, replicaFor: i => i === 0 ? { skipRecovery: true } : undefined }, async sim => {
      await diskLossThenWrite(sim)
      const found = await problems(sim, 20_000)
      // trees differ, writes are lost, rejections counted. (With entries that carried clocks, the clocks even
      // agreed — what fooled the old checker; now the node's later entries also fail their parent links, so
      // clocks differ too: the checker must not depend on either.)
      assert.ok(found.some(p => p.startsWith('tree:')), `tree differences reported:\n${found.join('\n')}`)
      assert.ok(found.some(p => p.includes(' lacks ')), `lost writes reported:\n${found.join('\n')}`)
      assert.ok(sim.rejections() > 0, 'rejections counted')
    })
  })

  it('a lone node that lost its disk refuses writes with NamespaceRecoveringError until a peer answers', async () => {
    await withSim({ nodes: 3, seed: 5 }, async sim => {
      await sim.apply(0, put('/a'))
      assert.ok(await sim.converge(30_000))
      sim.isolate(0)
      await sim.restart(0, 'lost')
      assert.deepEqual(await sim.apply(0, put('/f')), { ok: false, error: 'NamespaceRecoveringError' })
      sim.heal()
      await sim.advance(5_000)
      assert.equal((await sim.apply(0, put('/f'))).ok, true)
      await assertWhole(sim)
    })
  })

  it('a node restored from an old backup recovers the writes made after it before writing', async () => {
    await withSim({ nodes: 4, seed: 9 }, async sim => {
      await sim.apply(2, put('/a'))
      assert.ok(await sim.converge(30_000))
      await sim.backup(2)
      await sim.apply(2, put('/b.txt'))
      await sim.apply(2, put('/d/y.txt'))
      assert.ok(await sim.converge(30_000))
      await sim.restart(2, 'backup')
      await sim.advance(3_000)
      assert.equal((await sim.apply(2, put('/f'))).ok, true)
      await assertWhole(sim)
    })
  })

  it('a node restored from an old backup that writes at once waits for a peer\'s word on its own seq: it recovers first and reuses none', async () => {
    await withSim({ nodes: 4, seed: 23 }, async sim => {
      await sim.apply(1, put('/a'))
      await sim.apply(2, put('/d/x'))
      assert.ok(await sim.converge(30_000))
      await sim.backup(2)
      await sim.apply(2, put('/b.txt'))
      assert.ok(await sim.converge(30_000))
      await sim.restart(2, 'backup')
      assert.equal(sim.nodes[2].replica.recovering, true, 'the restored store checks with a peer before writing')
      // no time passes between the restore and the write
      const outcome = await sim.apply(2, put('/f'))
      assert.equal(outcome.ok, true, `the write is acknowledged once checked (${outcome.error ?? ''})`)
      await assertWhole(sim)
    })
  })

  it('a restarted node whose peers are all away writes after the check times out, with no refusal', async () => {
    await withSim({ nodes: 3, seed: 29 }, async sim => {
      await sim.apply(0, put('/a'))
      await sim.apply(1, put('/b.txt'))
      assert.ok(await sim.converge(30_000))
      sim.isolate(0)
      await sim.restart(0, 'keep')
      assert.equal(sim.nodes[0].replica.recovering, true)
      const before = sim.time.now()
      const outcome = await sim.apply(0, put('/f'))
      assert.equal(outcome.ok, true, `a lone restart still writes (${outcome.error ?? ''})`)
      assert.ok(sim.time.now() - before >= 10_000, 'it waited for the check first')
      sim.heal()
      await assertWhole(sim)
    })
  })

  it('a node whose disk fills up refuses its writes, stores nothing half, restarts on the full disk and converges once it has room', async () => {
    await withSim({ nodes: 3, seed: 31 }, async sim => {
      await sim.apply(0, put('/a'))
      assert.ok(await sim.converge(30_000))
      sim.fill(1, 5_000)
      const refused = await sim.apply(1, put('/b.txt'))
      assert.equal(refused.ok, false, 'a write on a full disk is refused')
      await sim.apply(0, put('/d/x'))
      await sim.advance(1_000)
      // crash and restart while the disk is still full: close and open must not need a write
      await sim.restart(1, 'keep')
      assert.ok(sim.nodes[1].kv.refused > 0, 'the store did refuse writes')
      await assertWhole(sim)
      assert.equal(sim.nodes[1].kv.full, false)
    })
  })

  it('a machine whose disk stops flushing applies nothing it could not make durable, loses power, comes back whole and catches up; its waiting write is not acknowledged', async () => {
    await withSim({ nodes: 4, seed: 37 }, async sim => {
      await sim.apply(0, put('/a'))
      await sim.apply(2, put('/b.txt'))
      assert.ok(await sim.converge(30_000))
      const kv = sim.nodes[2].kv
      kv.recordUnsynced = true
      kv.stallSyncs = true
      const before = sim.nodes[2].replica.state().clock
      // what others write reaches node 2, whose commits wait for an fsync that never comes: nothing is applied
      await sim.apply(0, put('/d/x'))
      await sim.apply(1, put('/f'))
      await sim.advance(2_000)
      const node2 = sim.nodes[2].replica
      assert.equal(await node2.lookup('/f'), undefined, 'a received write is applied only once it is durable')
      assert.deepEqual(node2.state().clock, before)
      // its own write waits behind them
      const own = sim.apply(2, put('/d/y.txt'))
      await sim.advance(100)
      await sim.losePower(2)
      assert.deepEqual(await own, { ok: false, error: 'Error' }, 'the write that never reached the disk is not acknowledged')

      await sim.restart(2, 'keep')
      assert.deepEqual(sim.nodes[2].replica.state().clock, before, 'back on what was durable')
      // it pulls what it missed; everything acknowledged is everywhere, nothing rejected, and it writes again
      await assertWhole(sim)
      assert.equal((await sim.apply(2, put('/d/z'))).ok, true)
      await assertWhole(sim)
    })
  })

  it('3–8 replicas with random crashes, disk losses, backups, joins, leaves and clock skew: same trees, no acknowledged write lost, nothing rejected', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 3, max: 8 }), fc.nat(), fc.array(stepArb, { minLength: 10, maxLength: 40 }),
      async (nodes, seed, steps) => {
        await withSim({ nodes, seed, network: LIFECYCLE_NETWORK }, async sim => {
          await playLifecycle(sim, steps)
          const found = await problems(sim)
          if (found.length > 0) throw new assert.AssertionError({ message: report(sim, found, steps) })
        })
      }), { numRuns: 25, seed: 1717, ...RUN })
  })
})
