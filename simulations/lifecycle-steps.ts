/**
 * Random node-lifecycle scenarios for the namespace simulation, shared by
 * the lifecycle property test (which lets fast-check generate and shrink
 * them) and the seed campaign (which draws one from a seed): writes, waits,
 * partitions, heals, crashes, restarts with the store kept / lost / from a
 * backup, backups, joins, leaves, clock skew, full disks and power losses; how such a scenario is
 * played; and what is wrong afterwards.
 *
 * @module
 */
import fc from 'fast-check'
import { SIM_PATHS, type SimOp } from './namespace-ops.js'
import type { NamespaceSim } from './namespace-sim.js'
import type { NetworkConditions } from './virtual-network.js'
import { runSteps, type Step } from './scenario.js'

/** Network conditions of lifecycle runs: drops, duplicates, up to 50 ms per leg. */
export const LIFECYCLE_NETWORK: Partial<NetworkConditions> = { drop: 0.05, duplicate: 0.05, maxDelay: 50 }

const pathArb = fc.constantFrom(...SIM_PATHS)
/** One random namespace operation over {@link SIM_PATHS} (puts weigh most). */
export const simOpArb: fc.Arbitrary<SimOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), path: pathArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('mkdir' as const), path: pathArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('move' as const), from: pathArb, to: pathArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), path: pathArb, recursive: fc.boolean() }) }
)
const node = fc.nat(9)

/** One random lifecycle step (node numbers are taken modulo the swarm size when played). */
export const lifecycleStepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('op' as const), node, op: simOpArb }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 1500 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('split' as const), groups: fc.integer({ min: 2, max: 3 }), salt: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: 'heal' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crash' as const), node }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('restart' as const), node, disk: fc.constantFrom('keep' as const, 'lost' as const, 'backup' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('backup' as const), node }) },
  { weight: 1, arbitrary: fc.constant({ t: 'join' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('leave' as const), node }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('skew' as const), node, ms: fc.integer({ min: -3_600_000, max: 3_600_000 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('full' as const), node, ms: fc.integer({ min: 0, max: 5_000 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('power' as const), node, ms: fc.integer({ min: 0, max: 3_000 }) }) }
)

/** Options of {@link lifecycleSteps}. */
export interface LifecycleDraw {
  /** Seed of the draw (the same seed and count give the same steps). */
  seed: number
  /** Number of steps. */
  steps: number
}

/** Exactly `steps` random lifecycle steps drawn from `seed` by {@link lifecycleStepArb}. */
export function lifecycleSteps (draw: LifecycleDraw): Step[] {
  const arb = fc.array(lifecycleStepArb, { minLength: draw.steps, maxLength: draw.steps })
  return fc.sample(arb, { seed: draw.seed | 0, numRuns: 1 })[0]
}

/**
 * Play lifecycle `steps` on `sim`, then heal and restart every crashed node.
 * A store is lost or restored only while the rest of the swarm is whole and
 * in sync (docs/namespace.md, the limit of recovery), so each such restart
 * is preceded by a heal, a restart of the crashed nodes and a convergence,
 * and a restore from a backup is followed by a convergence (the check after
 * a restart needs a peer: cut off at once, the node writes after its
 * timeout and may reuse a seq, the documented limit).
 */
export async function playLifecycle (sim: NamespaceSim, steps: readonly Step[]): Promise<void> {
  for (const step of steps) {
    if (step.t === 'restart' && step.disk !== 'keep') {
      // the rest of the swarm whole: a crashed node may be the only one that holds the writes this node is about to lose
      sim.heal()
      await sim.restartCrashed()
      await sim.converge(30_000)
    }
    await runSteps(sim, [step])
    // a restored backup is checked with a peer after the restart; one cut off at once writes after the check times out (the limit)
    if (step.t === 'restart' && step.disk === 'backup') await sim.converge(30_000)
  }
  sim.heal()
  await sim.restartCrashed()
}

/** Everything that is wrong after the swarm had `maxTime` virtual ms to converge (empty when nothing is). */
export async function lifecycleProblems (sim: NamespaceSim, maxTime = 60_000): Promise<string[]> {
  const out: string[] = []
  if (!await sim.converge(maxTime)) out.push(`views did not converge within ${maxTime} virtual ms`)
  out.push(...await sim.differences())
  out.push(...await sim.lostWrites())
  if (sim.rejections() > 0) out.push(`${sim.rejections()} entries rejected in an honest swarm`)
  return out
}
