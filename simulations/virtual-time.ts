/**
 * Virtual time: a discrete-event scheduler with a virtual clock. It
 * implements the `Timers` of namespace sync and the `WallClock` of the
 * replica, so the real code runs against it unchanged; {@link VirtualTime.runUntil}
 * advances the clock event by event and lets the promise work each event
 * starts (replica writes on a `MemoryKV`, signing, sync tasks) settle
 * before the next one, which keeps runs deterministic for a given seed.
 *
 * @module
 */
import { setImmediate as immediate } from 'node:timers/promises'
import type { Timers } from '../node/namespace/sync.js'
import type { WallClock } from '../node/namespace/replica.js'

/** A scheduled callback; it is its own handle (no id → event map to keep). */
interface Event extends VirtualTimer {
  time: number
  seq: number
  fn: () => void
  /** Cancelled, or already run. */
  cancelled: boolean
  /** The scheduler it belongs to (a foreign handle is ignored). */
  owner: VirtualTime
}

/** The handle {@link VirtualTime.setTimeout} returns. */
export interface VirtualTimer { readonly id: number }

/** Bounds of one {@link VirtualTime.runUntil}. */
export interface RunOptions {
  /** Stop after this many events (a safety net against livelock). @default 1_000_000 */
  maxEvents?: number
  /** Stop when virtual time would pass this (absolute ms). @default Infinity */
  deadline?: number
  /** Check the predicate at most once per this much virtual time (ms). @default 0 (after every event) */
  pollEvery?: number
}

/** Why {@link VirtualTime.runUntil} returned. */
export type RunResult = 'done' | 'deadline' | 'max-events' | 'idle'

/** Binary min-heap of events by (time, insertion order). */
class EventHeap {
  private readonly items: Event[] = []

  get size (): number { return this.items.length }

  push (e: Event): void {
    const a = this.items
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(a[i], a[p])) break
      ;[a[i], a[p]] = [a[p], a[i]]
      i = p
    }
  }

  peek (): Event | undefined { return this.items[0] }

  pop (): Event | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && before(a[l], a[m])) m = l
        if (r < a.length && before(a[r], a[m])) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m], a[i]]
        i = m
      }
    }
    return top
  }

  clear (): void {
    for (const e of this.items) e.cancelled = true
    this.items.length = 0
  }
}

function before (a: Event, b: Event): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}

/** A virtual clock with a discrete-event scheduler. */
export class VirtualTime implements Timers, WallClock {
  private current: number
  private seq = 0
  private readonly heap = new EventHeap()
  /** Timers scheduled and neither run nor cancelled. */
  private live = 0
  /** Events run since creation. */
  events = 0

  /** The default virtual time at creation: 2025-01-01T00:00:00Z. */
  static readonly START = Date.UTC(2025, 0, 1)

  /** @param start the virtual time at creation (ms since the epoch) */
  constructor (start = VirtualTime.START) {
    this.current = start
  }

  /** The virtual time (ms). */
  now (): number { return this.current }

  /** Run `fn` once the virtual clock reaches now + `ms` (rounded up to a whole ms). */
  setTimeout (fn: () => void, ms: number): VirtualTimer {
    // whole milliseconds: entry times and mtimes must be integers
    const delay = Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : 0
    const seq = this.seq++
    const event: Event = { id: seq, time: this.current + delay, seq, fn, cancelled: false, owner: this }
    this.heap.push(event)
    this.live++
    return event
  }

  /** Cancel a timer (unknown or fired handles are ignored). */
  clearTimeout (handle: unknown): void {
    const event = handle as Partial<Event> | undefined
    if (typeof event?.id !== 'number' || event.cancelled !== false || event.owner !== this) return
    event.cancelled = true
    this.live--
  }

  /** Number of timers waiting to fire. */
  get pending (): number { return this.live }

  /**
   * Let the promise work started so far finish: wait for event-loop turns
   * until a turn schedules no new timer (bounded). All simulated work is
   * promise-based, so one turn normally drains it.
   */
  async settle (maxTurns = 64): Promise<void> {
    for (let turn = 0; turn < maxTurns; turn++) {
      const before = this.seq
      await immediate()
      if (this.seq === before) return
    }
  }

  /** Run the events due at the earliest pending time; false when none are left. */
  private async step (limit: number): Promise<boolean> {
    let next = this.heap.peek()
    while (next !== undefined && next.cancelled) {
      this.heap.pop()
      next = this.heap.peek()
    }
    if (next === undefined || next.time > limit) return false
    const time = next.time
    this.current = Math.max(this.current, time)
    while (next !== undefined && next.time === time) {
      this.heap.pop()
      if (!next.cancelled) {
        next.cancelled = true
        this.live--
        this.events++
        next.fn()
      }
      next = this.heap.peek()
    }
    await this.settle()
    return true
  }

  /**
   * Advance virtual time event by event until `until` holds (a predicate,
   * checked after the work of each event settled), or until the absolute
   * virtual time `until` (a number) is reached — whichever form is given —
   * within the bounds of `options`.
   */
  async runUntil (until: (() => boolean) | number, options: RunOptions = {}): Promise<RunResult> {
    const maxEvents = options.maxEvents ?? 1_000_000
    const deadline = typeof until === 'number' ? until : (options.deadline ?? Infinity)
    const predicate = typeof until === 'function' ? until : undefined
    const pollEvery = options.pollEvery ?? 0
    await this.settle()
    if (predicate?.() === true) return 'done'
    let lastPoll = this.current
    const first = this.events
    while (this.events - first < maxEvents) {
      if (!await this.step(deadline)) {
        if (deadline !== Infinity && this.current < deadline) this.current = deadline
        if (predicate === undefined) return 'done'
        return predicate() ? 'done' : (deadline === Infinity ? 'idle' : 'deadline')
      }
      if (predicate !== undefined && this.current - lastPoll >= pollEvery) {
        lastPoll = this.current
        if (predicate()) return 'done'
      }
    }
    return predicate?.() === true ? 'done' : 'max-events'
  }

  /** Advance virtual time by `ms`, running every event due meanwhile. */
  async advance (ms: number, options: Omit<RunOptions, 'deadline'> = {}): Promise<RunResult> {
    return await this.runUntil(this.current + ms, options)
  }

  /** Drop every pending timer (end of a simulation). */
  clear (): void {
    this.heap.clear()
    this.live = 0
  }
}
