/**
 * Timers as the node's parts take them (injected, so that simulations run
 * them on virtual time), the real ones, and the drawn waits of periodic work.
 *
 * Why drawn waits: work that every node repeats on a period (sync rounds,
 * repair passes, re-dials of a peer that went away) stays in step across
 * nodes that started together, or that saw the same event at once, when
 * each wait is the period itself: every peer then meets the whole swarm's
 * requests in the same instant, every period. A wait drawn around the period
 * spreads them and keeps the mean (docs/decisions.md, "Repair passes at a
 * drawn phase", "Re-dials at drawn waits").
 *
 * @module
 */

/** Timers (virtual in simulations). */
export interface Timers {
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

/**
 * Longest wait Node's timers take (2^31 − 1 ms, ~24.8 days): a longer one
 * fires after 1 ms instead, so a periodic pass set to a long period ran in a
 * busy loop.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** The process's timers, unref'd: a pending wait never keeps a process alive. A wait past {@link MAX_TIMER_MS} ends at it (early, never at once). */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, Math.min(ms, MAX_TIMER_MS)).unref(),
  clearTimeout: (handle) => { clearTimeout(handle as NodeJS.Timeout) }
}

/** `ms` times a factor drawn uniformly in [1 − `spread`, 1 + `spread`) from `random` (uniform in [0, 1)). */
export function jittered (ms: number, spread: number, random: () => number): number {
  return ms * (1 - spread + 2 * spread * random())
}
