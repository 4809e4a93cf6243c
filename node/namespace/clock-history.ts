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
 * the current one. Arrivals closer together than {@link RECORD_GAP_MS}
 * share a record (a copy of the clock is O(authors): at most four a
 * second), and a moment between them is answered with the older clock,
 * which can only call a version "arrived after" that came a moment before
 * (a conflict too many, never a version replaced unseen); the clock after
 * such a burst is recorded when the next entries arrive
 * ({@link ClockHistory.arriving}, told before they apply), so a moment
 * after the burst sees it. Records older
 * than {@link HISTORY_MS}, and beyond {@link HISTORY_RECORDS} or
 * {@link HISTORY_COUNTERS} counters in all (a swarm of many authors keeps
 * fewer), are dropped: a moment before the oldest record kept, or more
 * than a minute ago, has no answer (the caller then replaces what the path
 * shows, as before).
 *
 * @module
 */
import type { VectorClock } from './clock.js'
import type { WallClock } from './api.js'

/** How far back {@link ClockHistory.at} answers (ms). */
export const HISTORY_MS = 60_000

/** Most records kept (a busy swarm's arrivals within {@link HISTORY_MS}: the oldest go first). */
export const HISTORY_RECORDS = 1024

/** Counters kept in all the records at most: a swarm of many authors keeps fewer records (at least {@link MIN_RECORDS}). */
export const HISTORY_COUNTERS = 1_000_000

/** Records kept however many authors there are. */
export const MIN_RECORDS = 8

/**
 * A new record is taken at most this often (ms): arrivals closer together
 * share one. A moment between them is answered with the clock before the
 * first (older than the truth: a version that arrived just before the
 * moment counts as arrived after it, a conflict too many, never a version
 * replaced unseen).
 */
export const RECORD_GAP_MS = 250

/** What a {@link ClockHistory} is built from. */
export interface ClockHistoryComponents {
  clock: WallClock
  /** The replica's clock now, as a record that never changes (a copy when it changed: O(authors)). */
  seen: () => Readonly<VectorClock>
  /** How many of other replicas' entries the replica has applied (cheap: unchanged means the clock {@link seen} gives is). */
  others: () => number
}

/** The replica's clocks of the last minute (see the module comment). */
export class ClockHistory {
  /** The clocks that held before the current one, oldest first, each with the time it stopped holding. */
  private readonly past: Array<{ until: number, clock: Readonly<VectorClock> }> = []
  /** The clock recorded last, and since when it held. */
  private current: Readonly<VectorClock> | undefined
  private currentFrom = 0
  /** Arrivals since {@link current} was recorded, not recorded (closer than {@link RECORD_GAP_MS}): the last at {@link lastChange}. */
  private unrecorded = false
  private lastChange = 0
  /** {@link ClockHistoryComponents.others} when {@link changed} was last told. */
  private othersAtChange = -1
  /** Since when the records answer: before it, nothing is known. */
  private since = 0
  private maxRecords = HISTORY_RECORDS

  constructor (private readonly components: ClockHistoryComponents) {}

  /** Other replicas' entries changed the clock (or the replica opened): the clock before is kept, with the time. */
  changed (): void {
    const now = this.components.clock.now()
    this.othersAtChange = this.components.others()
    if (this.current === undefined) {
      this.record(now)
      this.since = now
      return
    }
    this.lastChange = now
    if (now - this.currentFrom < RECORD_GAP_MS) {
      this.unrecorded = true
      return
    }
    this.keep(now)
  }

  /**
   * Other replicas' entries are about to change the clock (called before
   * they are applied): when earlier arrivals shared the current record (a
   * burst closer than {@link RECORD_GAP_MS}) and the burst is over, the
   * clock after it is recorded now, as holding since its last arrival.
   * Without it, the next record kept the clock before the burst for every
   * moment until this arrival: a version that arrived in the burst counted
   * as arrived after a moment long past it (an add seconds later kept it
   * beside its own, a conflict too many).
   */
  arriving (): void {
    if (!this.unrecorded || this.components.clock.now() - this.lastChange < RECORD_GAP_MS) return
    // entries applied since the last change told (a batch applied while this one waited for the store's lock, told
    // after it): the clock now is newer than what held since then, and must not answer for it (a version that
    // arrived after a moment would count as seen then). The older clock answers instead, as before
    if (this.components.others() !== this.othersAtChange) return
    this.keep(this.lastChange)
  }

  /** Take the clock now as the current one from `at`, the one before it kept as holding until then. */
  private keep (at: number): void {
    const before = this.current
    if (!this.record(at)) return
    this.past.push({ until: at, clock: before as Readonly<VectorClock> })
    while (this.past.length > this.maxRecords || (this.past.length > 0 && at - this.past[0].until > HISTORY_MS)) {
      this.since = this.past[0].until
      this.past.shift()
    }
  }

  /**
   * The clock the replica had applied at `time` (ms on its wall clock), as
   * far as other replicas' entries go, or an older one (see
   * {@link RECORD_GAP_MS}); undefined when `time` is more than
   * {@link HISTORY_MS} ago or before what is kept. A time still to come is now.
   */
  at (time: number): Readonly<VectorClock> | undefined {
    if (this.current === undefined || !Number.isFinite(time) || time < this.since || time < this.components.clock.now() - HISTORY_MS) return undefined
    // the first record that stopped holding after `time`
    let lo = 0
    let hi = this.past.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (time < this.past[mid].until) hi = mid
      else lo = mid + 1
    }
    if (lo < this.past.length) return this.past[lo].clock
    return this.unrecorded && time < this.lastChange ? this.current : this.components.seen()
  }

  /** Take the clock now as the current one; false when it is the one recorded already. */
  private record (now: number): boolean {
    const next = this.components.seen()
    this.unrecorded = false
    if (next === this.current) return false
    this.current = next
    this.currentFrom = now
    let authors = 0
    for (const _ in next) authors++
    this.maxRecords = Math.max(MIN_RECORDS, Math.min(HISTORY_RECORDS, Math.floor(HISTORY_COUNTERS / Math.max(1, authors))))
    return true
  }
}
