/**
 * Background commits of staged files, bounded and grouped: items queued
 * while commits run are taken together as one batch (group commit: one
 * block-store fsync and one namespace entry for all of them), at most
 * `concurrency` batches run at once, and a writer that closes a file while
 * `maxPending` items wait or run is held in `close(2)` until there is room
 * again (backpressure instead of an unbounded backlog of staged files).
 *
 * The room is waited for in FUSE's `flush` (what `close(2)` waits for), not
 * in `release`: the kernel sends `release` after `close(2)` has returned, so
 * holding it back would hold back nobody.
 *
 * @module
 */

/** Options of {@link CommitQueue}. */
export interface CommitQueueOptions {
  /** Batches running at once. @default 2 */
  concurrency?: number
  /** Items waiting or running before {@link CommitQueue.room} waits. @default 256 */
  maxPending?: number
  /** Most items in one batch. @default 1024 */
  maxBatch?: number
  /**
   * A batch starts once this many items wait, or once the first of them has
   * waited {@link lingerMs}: files closed in quick succession gather into one
   * batch instead of many small ones (each batch costs a few fsyncs and a
   * signed entry, whatever its size). @default 256
   */
  minBatch?: number
  /** See {@link minBatch}; 0 starts batches at once. @default 50 */
  lingerMs?: number
}

/**
 * Commits a batch; resolves with one outcome per item, in order: `undefined`
 * for an item committed, its error otherwise. A rejection fails every item.
 */
export type CommitBatch<T> = (items: T[]) => Promise<Array<Error | undefined>>

interface Waiting<T> { item: T, at: number, resolve: () => void, reject: (err: unknown) => void }

/** A bounded queue of items committed in batches. */
export class CommitQueue<T> {
  private readonly concurrency: number
  private readonly maxPending: number
  private readonly maxBatch: number
  private readonly minBatch: number
  private readonly lingerMs: number
  private timer?: NodeJS.Timeout
  private running = 0
  private pendingCount = 0
  private readonly waiting: Array<Waiting<T>> = []
  private readonly roomWaiters: Array<() => void> = []
  private readonly idle: Array<() => void> = []
  /** Batches run so far. */
  batches = 0

  constructor (private readonly run: CommitBatch<T>, options: CommitQueueOptions = {}) {
    this.concurrency = Math.max(1, options.concurrency ?? 2)
    this.maxPending = Math.max(1, options.maxPending ?? 256)
    this.maxBatch = Math.max(1, options.maxBatch ?? 1024)
    this.minBatch = Math.max(1, options.minBatch ?? 256)
    this.lingerMs = Math.max(0, options.lingerMs ?? 50)
  }

  /** Items waiting or running. */
  get pending (): number { return this.pendingCount }

  /** Resolves at once while fewer than `maxPending` items wait or run, else when a batch finishes. */
  async room (): Promise<void> {
    while (this.pendingCount >= this.maxPending) await new Promise<void>(resolve => this.roomWaiters.push(resolve))
  }

  /** Queue `item` (never waits: callers hold writers back with {@link room}); resolves when its batch committed it. */
  async enqueue (item: T): Promise<void> {
    this.pendingCount++
    const done = new Promise<void>((resolve, reject) => { this.waiting.push({ item, at: performance.now(), resolve, reject }) })
    this.pump()
    await done
  }

  /** Resolves when nothing waits or runs. */
  async drain (): Promise<void> {
    while (this.pendingCount > 0) await new Promise<void>(resolve => this.idle.push(resolve))
  }

  /** Start batches while there are free slots: each takes everything waiting (up to `maxBatch`), in order. */
  private pump (): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      if (this.waiting.length < this.minBatch) {
        const wait = this.waiting[0].at + this.lingerMs - performance.now()
        if (wait > 0) {
          // let more gather; look again when the first has waited long enough
          if (this.timer === undefined) this.timer = setTimeout(() => { this.timer = undefined; this.pump() }, Math.ceil(wait))
          return
        }
      }
      const batch = this.waiting.splice(0, this.maxBatch)
      this.running++
      this.batches++
      this.runBatch(batch).finally(() => {
        this.running--
        this.pendingCount -= batch.length
        if (this.pendingCount < this.maxPending) for (const fn of this.roomWaiters.splice(0)) fn()
        if (this.pendingCount === 0) for (const fn of this.idle.splice(0)) fn()
        this.pump()
      }).catch(() => {})
    }
  }

  private async runBatch (batch: Array<Waiting<T>>): Promise<void> {
    let outcomes: Array<Error | undefined>
    try {
      outcomes = await this.run(batch.map(w => w.item))
    } catch (err) {
      for (const w of batch) w.reject(err)
      return
    }
    batch.forEach((w, i) => { const err = outcomes[i]; if (err === undefined) w.resolve(); else w.reject(err) })
  }
}
