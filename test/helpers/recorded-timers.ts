/**
 * Timers that only record what is asked: the test runs each callback itself
 * (for code whose waits are under test, such as the peer manager's re-dials).
 */
import type { Timers } from '../../node/timers.js'

/** One timer asked for. */
export interface RecordedTimer { fn: () => void, ms: number, cleared: boolean, fired: boolean }

/** See the module doc. */
export class RecordedTimers implements Timers {
  readonly asked: RecordedTimer[] = []

  setTimeout (fn: () => void, ms: number): unknown {
    const t = { fn, ms, cleared: false, fired: false }
    this.asked.push(t)
    return t
  }

  clearTimeout (handle: unknown): void { (handle as RecordedTimer).cleared = true }

  /** Run every timer neither cleared nor fired yet; how many ran. */
  fireAll (): number {
    const due = this.asked.filter(t => !t.cleared && !t.fired)
    for (const t of due) { t.fired = true; t.fn() }
    return due.length
  }

  /** Timers neither cleared nor fired yet. */
  get pending (): number { return this.asked.filter(t => !t.cleared && !t.fired).length }
}
