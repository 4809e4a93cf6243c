/**
 * A seed campaign: many seeds, each through the simulations with its fault
 * schedule derived from the seed — the namespace simulation with random
 * lifecycle faults ({@link lifecycleSteps}), the bounded-network scale run
 * ({@link runScale}) and the real-service durability simulation with a
 * random fault schedule ({@link runRandomDurability}; a failure prints its
 * schedule). Each failure is reported as one command line
 * that replays it exactly, plus a short reason; the campaign goes on to the
 * next seed unless told to stop. Every run is bounded (steps, virtual time),
 * so a campaign stops by itself.
 *
 * @module
 */
import { NamespaceSim } from './namespace-sim.js'
import { LIFECYCLE_NETWORK, lifecycleProblems, lifecycleSteps, playLifecycle } from './lifecycle-steps.js'
import { Prng } from './prng.js'
import { runScale } from './scale-sim.js'
import { runRandomDurability } from './durability-faults.js'

/** The simulations a campaign runs. */
export type SimKind = 'namespace' | 'scale' | 'durability'

/** Every kind, in the order a campaign runs them per seed. */
export const SIM_KINDS: readonly SimKind[] = ['namespace', 'scale', 'durability']

/** The parameters of one run of one kind: with its kind and seed they replay it exactly. */
export interface RunParams {
  kind: SimKind
  seed: number
  /** Nodes of this run. */
  nodes: number
  /** Namespace: lifecycle steps. */
  steps: number
  /** Namespace: replicas skip disk-loss recovery (the old bug; such runs must fail). */
  skipRecovery: boolean
  /** Scale: virtual ms the partition lasts. Durability: virtual ms during which faults are drawn. */
  duration: number
  /** Scale: links per node. */
  degree: number
  /** Scale: nodes that write. */
  writers: number
  /** Scale: sync interval (virtual ms). */
  interval: number
  /** Durability: files placed. */
  files: number
}

/** The outcome of one run. */
export interface RunOutcome {
  params: RunParams
  ok: boolean
  /** Why it failed (first problems, one line). */
  reason: string
  /** A one-line account of what ran. */
  detail: string
  /** Durability: the fault schedule, one line per fault (printed under a failure). */
  schedule?: string[]
}

/** Defaults of the per-kind parameters. */
export const RUN_DEFAULTS = { steps: 30, duration: 20_000, degree: 8, writers: 100, interval: 10_000, files: 4, namespaceNodes: 6, durabilityNodes: 12, durabilityDuration: 1_800_000 }

/** The command line that replays one run exactly. */
export function reproLine (p: RunParams): string {
  const head = `npm run sim -- --kind ${p.kind} --seed ${p.seed} --nodes ${p.nodes}`
  switch (p.kind) {
    case 'namespace': return `${head} --steps ${p.steps}${p.skipRecovery ? ' --skip-recovery' : ''}`
    case 'scale': return `${head} --duration ${p.duration} --degree ${p.degree} --writers ${p.writers} --interval ${p.interval}`
    case 'durability': return `${head} --files ${p.files} --duration ${p.duration}`
  }
}

/** Run one simulation and judge it. */
export async function runOne (p: RunParams): Promise<RunOutcome> {
  try {
    switch (p.kind) {
      case 'namespace': return await runNamespace(p)
      case 'scale': return await runScaleKind(p)
      case 'durability': return await runDurability(p)
    }
  } catch (err: any) {
    // a run that throws is a failing seed like any other: reported with its reproduction line, the campaign goes on
    const where = String(err?.stack ?? '').split('\n').slice(1, 3).map(l => l.trim()).join(' ')
    return { params: p, ok: false, reason: `threw ${String(err?.name ?? 'Error')}: ${String(err?.message ?? err)} ${where}`.slice(0, 400), detail: 'the run threw' }
  }
}

async function runNamespace (p: RunParams): Promise<RunOutcome> {
  const steps = lifecycleSteps({ seed: p.seed, steps: p.steps })
  const sim = await NamespaceSim.create({
    nodes: p.nodes,
    seed: p.seed,
    network: LIFECYCLE_NETWORK,
    trace: false,
    replica: p.skipRecovery ? { skipRecovery: true } : undefined
  })
  try {
    await playLifecycle(sim, steps)
    const found = await lifecycleProblems(sim)
    const faults = steps.filter(s => s.t !== 'op' && s.t !== 'wait').length
    const undone = sim.powerLosses.reduce((a, b) => a + b, 0)
    const power = sim.powerLosses.length === 0 ? '' : `, ${sim.powerLosses.length} power losses undid ${undone} unsynced writes`
    return { params: p, ok: found.length === 0, reason: brief(found), detail: `${p.nodes} nodes, ${p.steps} steps (${faults} faults), ${sim.ops.ok} ops acknowledged, ${sim.ops.failed} refused${power}` }
  } finally {
    await sim.stop()
  }
}

/**
 * The lifecycle faults of a campaign's scale run, drawn from its seed (so
 * the reproduction line needs no more than the seed): up to a twenty-fifth
 * of the nodes each crash, lose their disk, are restored from a backup,
 * join and leave; every other seed loses and restores its stores all at
 * once.
 */
export function scaleFaultsFor (seed: number, nodes: number): { crashes: number, diskLosses: number, restores: number, joins: number, leaves: number, lossesTogether: boolean } {
  const rng = new Prng(seed ^ 0x5ca1e)
  const most = Math.floor(nodes / 25)
  return { crashes: rng.int(0, most), diskLosses: rng.int(0, most), restores: rng.int(0, most), joins: rng.int(0, most), leaves: rng.int(0, most), lossesTogether: rng.next() < 0.5 }
}

async function runScaleKind (p: RunParams): Promise<RunOutcome> {
  const faults = scaleFaultsFor(p.seed, p.nodes)
  const r = await runScale({ nodes: p.nodes, seed: p.seed, partitionFor: p.duration, writers: p.writers, interval: p.interval, network: { degree: p.degree }, ...faults })
  const found: string[] = []
  if (!r.converged) found.push(`not converged ${r.convergeMs} virtual ms after the heal (or ${r.lifecycle.convergeMs} after the losses)`)
  if (r.lost.length > 0) found.push(`${r.replicasMissing} replicas miss writes: ${r.lost.join(' ')}`)
  if (r.lifecycle.seqReused > 0) found.push(`${r.lifecycle.seqReused} seqs reused by lost or restored writers`)
  if (r.rejected > 0) found.push(`${r.rejected} entries rejected`)
  const l = r.lifecycle
  const life = `${r.crashed} crashed, ${l.diskLosses} disks lost and ${l.restored} restored (${faults.lossesTogether ? 'at once' : 'one at a time'}), ${l.joined} joined, ${l.left} left`
  return { params: p, ok: found.length === 0, reason: brief(found), detail: `${r.nodes} nodes, ${r.writes} writes, ${life}, converged ${(r.convergeMs / 1000).toFixed(1)} s after the heal, ${r.network.sent} legs` }
}

async function runDurability (p: RunParams): Promise<RunOutcome> {
  const r = await runRandomDurability({ seed: p.seed, nodes: p.nodes, files: p.files, faultMs: p.duration })
  const found = [...r.violations]
  if (r.convergedAfterMs === undefined && found.length === 0) found.push('never back to full redundancy')
  const faults = Object.values(r.injected).reduce((sum, n) => sum + n, 0)
  const whole = r.convergedAfterMs === undefined ? 'never whole again' : `whole ${(r.convergedAfterMs / 60_000).toFixed(0)} min after the faults`
  return { params: p, ok: found.length === 0, reason: brief(found), schedule: r.schedule, detail: `${r.nodes} nodes, ${r.stripes} stripes, ${faults} faults, ${r.destroyed} shards destroyed, ${r.atRisk} at risk, ${r.rebuilt} rebuilt, ${r.pushes} pushes, ${r.collections} gc, ${whole}, ${r.checks} invariant checks, ${(r.virtualMs / 60_000).toFixed(0)} virtual min` }
}

/** The first problems, on one line. */
function brief (found: readonly string[]): string {
  if (found.length === 0) return ''
  const head = found.slice(0, 3).map(s => s.split('\n')[0].slice(0, 160)).join('; ')
  return found.length > 3 ? `${head}; … (${found.length} problems)` : head
}

/** How a campaign is run. */
export interface CampaignOptions {
  /** The seeds to run. */
  seeds: readonly number[]
  /** Which kinds to run for each seed. */
  kinds: readonly SimKind[]
  /** Nodes of the scale run (namespace and durability runs use at most 6 and 12 unless they are the only kind; the durability run's fault time is its default then too). */
  nodes: number
  /** Namespace steps, scale duration, etc. (defaults: {@link RUN_DEFAULTS}). */
  params?: Partial<Omit<RunParams, 'kind' | 'seed' | 'nodes'>>
  /** Stop at the first failure. @default false */
  stopOnFailure?: boolean
  /** Where lines go (one call per line). @default nothing */
  print?: (line: string) => void
}

/** What a campaign found. */
export interface CampaignResult {
  /** Seeds run (fully or up to a stopping failure). */
  seedsRun: number
  /** Runs (seed × kind). */
  runs: number
  failures: RunOutcome[]
}

/** The parameters of the run of `kind` for `seed` in a campaign. */
export function paramsFor (kind: SimKind, seed: number, options: Pick<CampaignOptions, 'kinds' | 'nodes' | 'params'>): RunParams {
  const only = options.kinds.length === 1
  const d = RUN_DEFAULTS
  const nodes = kind === 'scale' || only
    ? options.nodes
    : Math.min(options.nodes, kind === 'namespace' ? d.namespaceNodes : d.durabilityNodes)
  const params: RunParams = {
    steps: d.steps,
    skipRecovery: false,
    duration: kind === 'durability' ? d.durabilityDuration : d.duration,
    degree: d.degree,
    writers: d.writers,
    interval: d.interval,
    files: d.files,
    ...options.params,
    kind,
    seed,
    nodes
  }
  // with several kinds, --duration is the scale run's
  if (kind === 'durability' && !only) params.duration = d.durabilityDuration
  return params
}

/**
 * Run every seed through every selected kind; print one line per run — its
 * reproduction command, prefixed `ok` or `FAIL`, then `#` and what it did
 * or why it failed.
 */
export async function runCampaign (options: CampaignOptions): Promise<CampaignResult> {
  const print = options.print ?? (() => {})
  const failures: RunOutcome[] = []
  let seedsRun = 0
  let runs = 0
  for (const seed of options.seeds) {
    seedsRun++
    for (const kind of options.kinds) {
      const outcome = await runOne(paramsFor(kind, seed, options))
      runs++
      if (outcome.ok) {
        print(`ok   ${reproLine(outcome.params)}  # ${outcome.detail}`)
        continue
      }
      failures.push(outcome)
      print(`FAIL ${reproLine(outcome.params)}  # ${outcome.reason}`)
      if (outcome.schedule !== undefined) {
        print('     schedule:')
        for (const line of outcome.schedule) print(`       ${line}`)
      }
      if (options.stopOnFailure === true) return { seedsRun, runs, failures }
    }
  }
  return { seedsRun, runs, failures }
}

/** `count` seeds: `from`..`from + count - 1`, or drawn from `campaign` when `from` is undefined. */
export function campaignSeeds (count: number, source: { from?: number, campaign: number }): number[] {
  if (source.from !== undefined) return Array.from({ length: count }, (_, i) => (source.from as number) + i)
  const rng = new Prng(source.campaign)
  return Array.from({ length: count }, () => rng.int(0, 2 ** 31 - 1))
}
