/**
 * Where an entry stands in causal order: what it depends on, and whether
 * everything it depends on is applied. Pure functions of an entry and a
 * clock, shared by receiving (log.ts: when an entry is ready), applying
 * (apply.ts: which untrusted dependencies were skipped) and members
 * (members.ts: what an author had seen when it wrote).
 *
 * A v1 entry carries its author's whole vector clock; a v2 entry only its
 * parents' dots, each standing for its author's chain up to it.
 *
 * @module
 */
import type { LogEntry } from '../../protocol/namespace.js'
import type { VectorClock } from './clock.js'
import type { TrustPolicy } from './trust.js'

/**
 * True when it is its author's next entry and everything it depends on by
 * trusted authors is in `clock`. Dependencies on authors `trust` refuses are
 * ignored: their entries never arrive here (a writer trusted by more nodes
 * than this one), and waiting for them would hold back every later entry of
 * the trusted writers who saw them.
 */
export function ready (entry: LogEntry, clock: VectorClock, trust: TrustPolicy): boolean {
  if ((clock[entry.author] ?? 0) + 1 !== entry.seq) return false
  return everyDependency(entry, (author, n) => (clock[author] ?? 0) >= n || !trust.trusts(author))
}

/**
 * Whether `visit` holds for everything `entry` depends on by other authors,
 * as (author, seq): a v1 entry's clock, a v2 entry's parent dots (each
 * stands for its author's chain up to it; what those parents depended on
 * was checked when they were applied) and the (author, seq) each of its
 * retire ops names. Stops at the first `false`. A visitor rather than an
 * iterator: it runs for every entry received and applied, where a
 * generator's steps and pairs were ~1.3 KB of garbage an entry.
 */
export function everyDependency (entry: LogEntry, visit: (author: string, seq: number) => boolean): boolean {
  if (entry.v === 1) {
    for (const author in entry.clock) if (author !== entry.author && !visit(author, entry.clock[author])) return false
    return true
  }
  for (const [author, n] of entry.deps) if (author !== entry.author && !visit(author, n)) return false
  // a retirement of (X, c) speaks of X's entries up to c: they are in its past (never applied before them)
  for (const op of entry.ops) if (op.op === 'retire' && !visit(op.author, op.seq)) return false
  return true
}

/** The dependencies of `entry` on other authors that `applied` does not cover (untrusted ones, see {@link ready}); undefined when none. */
export function skippedDeps (entry: LogEntry, applied: VectorClock): VectorClock | undefined {
  let out: VectorClock | undefined
  everyDependency(entry, (author, n) => {
    if ((applied[author] ?? 0) < n && (out?.[author] ?? 0) < n) (out ??= {})[author] = n
    return true
  })
  return out
}
