/**
 * Announcing roots in the background, bounded: a DHT `provide` is a network
 * query (closest peers, then a record on each), far costlier than writing a
 * small file, and a burst of small writes must not start thousands of them
 * at once. Roots wait in a first-in, first-out set (a root queued twice is
 * announced once), at most `concurrency` announce at a time; past `maxQueued`
 * new roots are dropped with a warning (repair and reads still find content
 * through placement records and connected peers' `have`).
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import type { Logger } from '../logger.js'

/** Options of {@link AnnounceQueue}. */
export interface AnnounceQueueOptions {
  /** Announces running at once. @default 2 */
  concurrency?: number
  /** Roots waiting before new ones are dropped. @default 100000 */
  maxQueued?: number
}

/** A bounded background queue of roots to announce. */
export class AnnounceQueue {
  private readonly waiting = new Map<string, CID>()
  private running = 0
  private stopped = false
  private dropped = 0
  private readonly concurrency: number
  private readonly maxQueued: number

  constructor (private readonly announce: (root: CID) => Promise<void>, private readonly log: Logger, options: AnnounceQueueOptions = {}) {
    this.concurrency = Math.max(1, options.concurrency ?? 2)
    this.maxQueued = Math.max(1, options.maxQueued ?? 100_000)
  }

  /** Queue `root`; never waits, never throws. */
  add (root: CID): void {
    if (this.stopped) return
    const key = root.toString()
    if (this.waiting.has(key)) return
    if (this.waiting.size >= this.maxQueued) {
      if (this.dropped++ % 1000 === 0) this.log.warn({ queued: this.waiting.size, dropped: this.dropped }, 'too many roots waiting to be announced; dropping new ones')
      return
    }
    this.waiting.set(key, root)
    this.pump()
  }

  /** Drop what waits; announces under way finish on their own. */
  stop (): void {
    this.stopped = true
    this.waiting.clear()
  }

  private pump (): void {
    while (this.running < this.concurrency && this.waiting.size > 0) {
      const [key, root] = this.waiting.entries().next().value as [string, CID]
      this.waiting.delete(key)
      this.running++
      this.announce(root).catch(() => {}).finally(() => {
        this.running--
        if (!this.stopped) this.pump()
      })
    }
  }
}
