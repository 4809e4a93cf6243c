/**
 * What a replica had applied at a moment of the last minute: the clock a
 * writer who began then had seen.
 *
 * Why: a `shoal add` takes, as the version it replaces, what the path shows
 * when the daemon starts serving it, some 300 ms after the user started the
 * command (the CLI's own start). Another node's version of the path that
 * arrived within that window was replaced unseen: two adds of one new path
 * started together on two nodes kept one version in 6 of 8 tries. The CLI
 * now says when it began; the add asks {@link ClockHistory.at} for the
 * clock of that moment, and a version that arrived after it
 * (`Namespace.arrivedSince`) stays beside the new one, a conflict.
 *
 * Mechanism: the replica tells {@link ClockHistory.changed} after each
 * change other replicas' entries made (and at open): each record is a
 * frozen clock (shared with `Replica.seen`) and the time it stopped being
 * the current one. Records older than {@link HISTORY_MS}, and beyond
 * {@link HISTORY_RECORDS}, are dropped: a moment before the oldest record
 * kept has no answer (the caller then replaces what the path shows, as
 * before).
 *
 * @module
 */
import type { VectorClock } from './clock.js'
import type { WallClock } from './api.js'

/** How far back {@link ClockHistory.at} answers (ms). */
export const HISTORY_MS = 60_000

/** Most records kept (a busy swarm's arrivals within {@link HISTORY_MS}: the oldest go first). */
export const HISTORY_RECORDS = 1024

/** What a {@link ClockHistory} is built from. */
export interface ClockHistoryComponents {
  clock: WallClock
  /** The replica's clock now, as a record that never changes. */
  seen: () => Readonly<VectorClock>
}

/** The replica's clocks of the last minute (see the module comment). */
export class ClockHistory {
  /** The clocks that held before the current one, oldest first, each with the time it stopped holding. */
  private readonly past: Array<{ until: number, clock: Readonly<VectorClock> }> = []
  private current: Readonly<VectorClock> | undefined
  /** Since when the records answer: before it, nothing is known. */
  private since: number

  constructor (private readonly components: ClockHistoryComponents) {
    this.since = components.clock.now()
  }

  /** Other replicas' entries changed the clock (or the replica opened): the clock before is kept, with the time. */
  changed (): void {
    const now = this.components.clock.now()
    const next = this.components.seen()
    if (this.current === undefined) {
      this.current = next
      this.since = now
      return
    }
    if (next === this.current) return
    this.past.push({ until: now, clock: this.current })
    this.current = next
    while (this.past.length > HISTORY_RECORDS || (this.past.length > 0 && now - this.past[0].until > HISTORY_MS)) {
      this.since = this.past[0].until
      this.past.shift()
    }
  }

  /**
   * The clock the replica had applied at `time` (ms on its wall clock), as
   * far as other replicas' entries go; undefined when `time` is before what
   * is kept. A time still to come is now.
   */
  at (time: number): Readonly<VectorClock> | undefined {
    if (this.current === undefined || !Number.isFinite(time) || time < this.since) return undefined
    for (const record of this.past) if (time < record.until) return record.clock
    return this.components.seen()
  }
}
