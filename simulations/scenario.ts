/**
 * Scenarios: a list of steps (writes on chosen replicas, waits, partitions,
 * heals) that a {@link NamespaceSim} plays in order. Property tests generate
 * them (and shrink them); `run.ts` draws one from a seed.
 *
 * @module
 */
import { randomOp, showOp, type SimOp } from './namespace-ops.js'
import type { NamespaceSim, RestartDisk } from './namespace-sim.js'
import type { Prng } from './prng.js'

/** One step of a scenario. */
export type Step =
  | { t: 'op', node: number, op: SimOp }
  | { t: 'wait', ms: number }
  /** Split the nodes into `groups` groups, chosen by `salt`. */
  | { t: 'split', groups: number, salt: number }
  | { t: 'heal' }
  /** Node lifecycle: crash (store kept), restart (store kept, lost, or from the last backup), backup, join, leave, clock skew, a full disk. */
  | { t: 'crash', node: number }
  | { t: 'restart', node: number, disk: RestartDisk }
  | { t: 'backup', node: number }
  | { t: 'join' }
  | { t: 'leave', node: number }
  | { t: 'skew', node: number, ms: number }
  /** Storage fault: the node's disk is full for `ms` virtual ms (its writes fail). */
  | { t: 'full', node: number, ms: number }
  /** Power loss: the node's disk stops flushing for `ms` virtual ms, then the machine loses power (the unsynced writes undone) and restarts with its store. */
  | { t: 'power', node: number, ms: number }

/**
 * The groups of a split: node i goes to group hash(i, salt) mod `groups`;
 * when that leaves everyone in one group, node `salt mod nodes` is cut off
 * alone (a split always splits).
 */
export function splitGroups (nodes: number, groups: number, salt: number): number[][] {
  const out: number[][] = Array.from({ length: Math.max(2, groups) }, () => [])
  for (let i = 0; i < nodes; i++) {
    let h = Math.imul(i + 1, 0x9E3779B1) ^ Math.imul(salt | 0, 0x85EBCA77)
    h = Math.imul(h ^ (h >>> 15), 0x2C1B3C6D) >>> 0
    out[h % out.length].push(i)
  }
  const used = out.filter(g => g.length > 0)
  if (used.length > 1 || nodes < 2) return used
  const alone = Math.abs(salt | 0) % nodes
  return [used[0].filter(i => i !== alone), [alone]]
}

/** Play `steps` on `sim`, in order. */
export async function runSteps (sim: NamespaceSim, steps: readonly Step[]): Promise<void> {
  for (const step of steps) {
    switch (step.t) {
      case 'op': await sim.apply(step.node % sim.nodes.length, step.op); break
      case 'wait': await sim.advance(step.ms); break
      case 'split': sim.partition(splitGroups(sim.nodes.length, step.groups, step.salt)); break
      case 'heal': sim.heal(); break
      case 'crash': await sim.crash(step.node % sim.nodes.length); break
      case 'restart': await sim.restart(step.node % sim.nodes.length, step.disk); break
      case 'backup': await sim.backup(step.node % sim.nodes.length); break
      case 'join': await sim.join(); break
      case 'leave':
        // at least two nodes stay
        if (sim.nodes.filter(n => n.status !== 'gone').length > 2) await sim.leave(step.node % sim.nodes.length)
        break
      case 'skew': sim.skew(step.node % sim.nodes.length, step.ms); break
      case 'full': sim.fill(step.node % sim.nodes.length, step.ms); break
      case 'power': await sim.powerCut(step.node % sim.nodes.length, step.ms); break
    }
  }
}

/** A one-line form of a step (failure reports). */
export function showStep (step: Step): string {
  switch (step.t) {
    case 'op': return `node ${step.node}: ${showOp(step.op)}`
    case 'wait': return `wait ${step.ms}`
    case 'split': return `split ${step.groups} salt ${step.salt}`
    case 'heal': return 'heal'
    case 'crash': return `crash ${step.node}`
    case 'restart': return `restart ${step.node} (${step.disk})`
    case 'backup': return `backup ${step.node}`
    case 'join': return 'join'
    case 'leave': return `leave ${step.node}`
    case 'skew': return `skew ${step.node} ${step.ms} ms`
    case 'full': return `disk of ${step.node} full for ${step.ms} ms`
    case 'power': return `power of ${step.node} lost after ${step.ms} ms unflushed`
  }
}

/** A random scenario: `ops` writes with waits, a partition after the first third, healed at the end. */
export function randomScenario (rng: Prng, nodes: number, ops: number, maxWait = 200): Step[] {
  const steps: Step[] = []
  for (let i = 0; i < ops; i++) {
    if (i === Math.floor(ops / 3)) steps.push({ t: 'split', groups: rng.int(2, 3), salt: rng.int(0, 1 << 30) })
    steps.push({ t: 'op', node: rng.int(0, nodes - 1), op: randomOp(rng) })
    steps.push({ t: 'wait', ms: rng.int(0, maxWait) })
  }
  steps.push({ t: 'heal' })
  return steps
}
