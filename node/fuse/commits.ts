/**
 * Background commits of staged files, bounded: at most `concurrency` run at
 * once, and a writer that closes a file while `maxPending` commits wait or
 * run is held in `close(2)` until there is room again (backpressure instead
 * of an unbounded backlog of staged files).
 *
 * The room is waited for in FUSE's `flush` (what `close(2)` waits for), not
 * in `release`: the kernel sends `release` after `close(2)` has returned, so
 * holding it back would hold back nobody.
 *
 * @module
 */

/** Options of {@link CommitQueue}. */
export interface CommitQueueOptions {
  /** Commits running at once. @default 2 */
  concurrency?: number
  /** Commits waiting or running before {@link CommitQueue.room} waits. @default 256 */
  maxPending?: number
}

/** A bounded queue of commit tasks. */
export class CommitQueue {
  private readonly concurrency: number
  private readonly maxPending: number
  private running = 0
  private pendingCount = 0
  private readonly ready: Array<() => void> = []
  private readonly roomWaiters: Array<() => void> = []
  private readonly idle: Array<() => void> = []

  constructor (options: CommitQueueOptions = {}) {
    this.concurrency = Math.max(1, options.concurrency ?? 2)
    this.maxPending = Math.max(1, options.maxPending ?? 256)
  }

  /** Tasks waiting or running. */
  get pending (): number { return this.pendingCount }

  /** Resolves at once while fewer than `maxPending` tasks wait or run, else when one finishes. */
  async room (): Promise<void> {
    while (this.pendingCount >= this.maxPending) await new Promise<void>(resolve => this.roomWaiters.push(resolve))
  }

  /** Queue `task` (never waits: callers hold writers back with {@link room}); returns its completion. */
  async enqueue (task: () => Promise<void>): Promise<void> {
    this.pendingCount++
    if (this.running >= this.concurrency) await new Promise<void>(resolve => this.ready.push(resolve))
    else this.running++
    try {
      await task()
    } finally {
      // a finishing task hands its slot to the next one (no overtaking)
      const next = this.ready.shift()
      if (next !== undefined) next(); else this.running--
      this.pendingCount--
      if (this.pendingCount < this.maxPending) for (const fn of this.roomWaiters.splice(0)) fn()
      if (this.pendingCount === 0) for (const fn of this.idle.splice(0)) fn()
    }
  }

  /** Resolves when nothing waits or runs. */
  async drain (): Promise<void> {
    while (this.pendingCount > 0) await new Promise<void>(resolve => this.idle.push(resolve))
  }
}
