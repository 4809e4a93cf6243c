/**
 * Honest stripe health: a stripe is healthy only when its k+m shards sit on
 * k+m distinct live nodes, so that losing any m nodes loses at most m
 * shards. Shards that exist but share nodes (a lone node holding all six
 * shards of an `ec:4+2` stripe, say) make the stripe `at-risk`: one lost disk
 * can take several shards with it.
 *
 * The spread of a stripe is the largest number of its shards that can each
 * be given a different node that holds it (a maximum bipartite matching of
 * shards to holders; k+m ≤ 24, so augmenting paths are cheap). Zero shards
 * (the missing data shards of a short last stripe) are known without being
 * stored and need no node.
 *
 * @module
 */
import { stripeHealth, type StripeHealth } from './repair-plan.js'

/** One shard as seen: `undefined` for a zero shard, else the live nodes that hold it. */
export type ShardHolders = readonly string[] | undefined

/** What {@link assessStripe} found. */
export interface StripeAssessment {
  health: StripeHealth
  /** Shards held somewhere (zero shards included). */
  live: number
  /** Shards on distinct nodes (zero shards included): k+m when healthy. */
  spread: number
}

/** The largest number of shards that sit on pairwise distinct nodes. */
export function spreadOf (shards: readonly ShardHolders[]): number {
  return matchShards(shards).spread
}

/** A maximum matching of shards to distinct nodes: its size (zero shards included) and node → shard. */
function matchShards (shards: readonly ShardHolders[]): { spread: number, owner: Map<string, number> } {
  const owner = new Map<string, number>()
  let spread = 0
  for (let i = 0; i < shards.length; i++) {
    if (shards[i] === undefined) { spread++; continue }
    if (augment(i, shards, owner, new Set())) spread++
  }
  return { spread, owner }
}

/** Try to give shard `i` a node of its own, moving earlier shards along an augmenting path. */
function augment (i: number, shards: readonly ShardHolders[], owner: Map<string, number>, visited: Set<string>): boolean {
  for (const node of shards[i] ?? []) {
    if (visited.has(node)) continue
    visited.add(node)
    const current = owner.get(node)
    if (current === undefined || augment(current, shards, owner, visited)) {
      owner.set(node, i)
      return true
    }
  }
  return false
}

/**
 * Health of a k+m stripe from where its shards are: `lost` under k shards,
 * `degraded` under k+m, `at-risk` when all exist but on fewer than k+m
 * distinct nodes — or, with `zoneOf`, with more than m of them in one zone —
 * else `healthy`.
 */
export function assessStripe (k: number, m: number, shards: readonly ShardHolders[], zoneOf?: (node: string) => string | undefined): StripeAssessment {
  const live = shards.filter(s => s === undefined || s.length > 0).length
  const { spread, owner } = matchShards(shards)
  const byCount = stripeHealth(live, k, m)
  if (byCount !== 'healthy') return { health: byCount, live, spread }
  if (spread < k + m) return { health: 'at-risk', live, spread }
  return { health: zoneOf !== undefined && crowdedZone(owner, m, zoneOf) ? 'at-risk' : 'healthy', live, spread }
}

/** True when more than m of the matched nodes share a zone (nodes without a zone share none). */
function crowdedZone (owner: Map<string, number>, m: number, zoneOf: (node: string) => string | undefined): boolean {
  const counts = new Map<string, number>()
  for (const node of owner.keys()) {
    const zone = zoneOf(node)
    if (zone === undefined) continue
    const n = (counts.get(zone) ?? 0) + 1
    if (n > m) return true
    counts.set(zone, n)
  }
  return false
}

/** Stripe counts by health, as `pin status` and `repair` report them. */
export interface HealthSummary { healthy: number, atRisk: number, degraded: number, lost: number }

/** An empty {@link HealthSummary}. */
export function emptySummary (): HealthSummary {
  return { healthy: 0, atRisk: 0, degraded: 0, lost: 0 }
}

/** Count one stripe of `health` in `summary`. */
export function countHealth (summary: HealthSummary, health: StripeHealth): void {
  if (health === 'at-risk') summary.atRisk++
  else summary[health]++
}

/**
 * A pinned file's state, as the metrics count files: the worst health of
 * its stripes, except that a file whose coding or placement is not final
 * yet is `pending` unless a stripe is degraded or lost, and one whose
 * shards this node is pushing now is `placing`. `unknown`: the repair pass
 * could not check it (its manifest root or stripes could not be read: a
 * failure to read is not proof of loss, so it is not `lost`), or a pass
 * stopped before reaching a file it had no earlier state for.
 */
export type FileState = 'pending' | 'placing' | 'healthy' | 'at_risk' | 'degraded' | 'lost' | 'unknown'

/** The state of a file from the counts of its stripes' health, and whether its placement is final: {@link stripeState} of its worst stripe. */
export function fileState (stripes: HealthSummary, pending: boolean): Exclude<FileState, 'placing' | 'unknown'> {
  const state = stripeState(worstHealth(stripes), pending ? 'pending' : undefined)
  return state === 'at-risk' ? 'at_risk' : state
}

/** The worst health counted in `stripes` (`healthy` for none). */
function worstHealth (stripes: HealthSummary): StripeHealth {
  if (stripes.lost > 0) return 'lost'
  if (stripes.degraded > 0) return 'degraded'
  return stripes.atRisk > 0 ? 'at-risk' : 'healthy'
}

/**
 * Work under way on a stripe, as far as this node knows: `placing` (this
 * node pushes its shards now) or `pending` (its placement is not final, or
 * waits for live peers).
 */
export type StripeWork = 'placing' | 'pending'

/** Where one stripe stands: its health, or the work under way on it (see {@link stripeState}). */
export type StripeState = StripeWork | StripeHealth

/** Stripe states, worst first: the order in which a file's state follows its stripes'. */
const WORST_FIRST: readonly StripeState[] = ['lost', 'degraded', 'placing', 'pending', 'at-risk', 'healthy']

/**
 * A stripe's state: missing shards first (`lost`, `degraded`, whatever is
 * under way), then the work under way (`placing`, `pending`), then its
 * health (`at-risk`, `healthy`).
 */
export function stripeState<W extends StripeWork> (health: StripeHealth, work: W | undefined): W | StripeHealth {
  if (health === 'lost' || health === 'degraded' || work === undefined) return health
  return work
}

/** The worst of `states` (the state of a file from its stripes'), undefined for none. */
export function worstState (states: Iterable<StripeState>): StripeState | undefined {
  let worst: number | undefined
  for (const state of states) {
    const rank = WORST_FIRST.indexOf(state)
    if (worst === undefined || rank < worst) worst = rank
  }
  return worst === undefined ? undefined : WORST_FIRST[worst]
}

/** What `after` counted beyond `before` (the stripes of one file, counted into a pass's totals). */
export function summaryDelta (after: HealthSummary, before: HealthSummary): HealthSummary {
  return { healthy: after.healthy - before.healthy, atRisk: after.atRisk - before.atRisk, degraded: after.degraded - before.degraded, lost: after.lost - before.lost }
}

/**
 * Files by state: each file of `states` (manifest → state, from a repair
 * pass) once, those in `placing` (manifests placed now) as `placing`, the
 * files not coded yet (`uncoded.uncoded`: coding deferred for want of live
 * nodes) as `pending`, and those lost before their coding (`uncoded.lost`)
 * as `lost`.
 */
export function countFileStates (states: ReadonlyMap<string, FileState>, uncoded: { uncoded: number, lost: number }, placing: Iterable<string>): Record<FileState, number> {
  const counts: Record<FileState, number> = { pending: uncoded.uncoded, placing: 0, healthy: 0, at_risk: 0, degraded: 0, lost: uncoded.lost, unknown: 0 }
  const now = new Set(placing)
  for (const [manifest, state] of states) if (!now.has(manifest)) counts[state]++
  counts.placing += now.size
  return counts
}
