/**
 * Vector clocks: author (peer id) → highest sequence number seen.
 *
 * @module
 */
import type { Dot, VectorClock } from '../../protocol/namespace.js'

export type { Dot, VectorClock }

/** True when `clock` has seen the write `dot`. */
export function covers (clock: VectorClock, dot: Dot): boolean {
  return (clock[dot[0]] ?? 0) >= dot[1]
}

/**
 * True when a version (all its dots: the same bytes written by several
 * authors) was seen by `clock`: one dot it covers, or one of `self`'s
 * (a replica's own writes), is enough.
 */
export function versionSeen (dots: readonly Dot[], clock: Readonly<VectorClock>, self: string): boolean {
  return dots.some(dot => dot[0] === self || covers(clock, dot))
}

/** True when `a` has seen everything `b` has (a ≥ b pointwise). */
export function dominates (a: VectorClock, b: VectorClock): boolean {
  for (const [author, n] of Object.entries(b)) {
    if ((a[author] ?? 0) < n) return false
  }
  return true
}

/** Pointwise maximum. */
export function merge (a: VectorClock, b: VectorClock): VectorClock {
  const out: VectorClock = { ...a }
  for (const [author, n] of Object.entries(b)) {
    if ((out[author] ?? 0) < n) out[author] = n
  }
  return out
}

/** Pointwise minimum over several clocks (authors missing from one count as 0 and are dropped). */
export function meet (clocks: VectorClock[]): VectorClock {
  if (clocks.length === 0) return {}
  const out: VectorClock = {}
  for (const [author, n] of Object.entries(clocks[0])) {
    let min = n
    for (let i = 1; i < clocks.length && min > 0; i++) min = Math.min(min, clocks[i][author] ?? 0)
    if (min > 0) out[author] = min
  }
  return out
}

/** Sum of all counters: strictly grows along causality, so sorting by it gives a causal order. */
export function weight (clock: VectorClock): number {
  let sum = 0
  for (const n of Object.values(clock)) sum += n
  return sum
}

/** Number of writes in `a` that `b` has not seen. */
export function missing (a: VectorClock, b: VectorClock): number {
  let n = 0
  for (const [author, count] of Object.entries(a)) n += Math.max(0, count - (b[author] ?? 0))
  return n
}

/** A clock with sorted keys (canonical for comparisons in tests and logs). */
export function canonical (clock: VectorClock): VectorClock {
  const out: VectorClock = {}
  for (const key of Object.keys(clock).sort()) out[key] = clock[key]
  return out
}
