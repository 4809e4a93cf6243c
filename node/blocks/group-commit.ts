/**
 * Group commit: many writers wait for one commit of the block store
 * (`PackBlockStore.commit` runs through it).
 *
 * Why: a block a peer pushed is acknowledged only once it is durable here
 * (docs/blockstore.md: "nothing is acknowledged before" a commit). The
 * exchange server had acknowledged each pushed block as soon as `put`
 * returned — from the pack's memory segment — and nothing committed it
 * until something else on the holder did: a holder that crashed (or lost
 * power) in that window lost shards the writer counted as placed, and
 * after a re-placement the writer had already released its own copies. A
 * commit per block would cost an fdatasync and a synced index write per
 * 256 KiB; a placement keeps a window of blocks in flight, and they can
 * share one. So can every other burst of callers (a mount's commit
 * batches, adds at once): the store's own commit is shared, not the
 * exchange's alone.
 *
 * How: {@link GroupCommit.durable} resolves after a commit that began after
 * the call. Callers that arrive while no commit is waiting to begin start
 * one, queued behind the commit that runs (the store runs them one at a
 * time); callers that arrive while one waits to begin join it. So each
 * commit covers every write made before it began (what a commit promises
 * its caller), and a burst of writes costs a commit or two, not one each.
 *
 * @module
 */

/** Commits shared by the writers that wait at once; see the module comment. */
export class GroupCommit {
  /** The commit that runs (or ran last). */
  private running: Promise<void> = Promise.resolve()
  /** A commit asked for that has not begun: writers arriving now join it. */
  private waiting?: Promise<void>

  /** @param commit - the store's commit (`BlockStore.commit`) */
  constructor (private readonly commit: () => Promise<void>) {}

  /**
   * Resolves once every write made before the call is durable: after a
   * commit that began after it. Rejects with that commit's error.
   */
  async durable (): Promise<void> {
    this.waiting ??= this.running.catch(() => {}).then(async () => {
      // from here on, a new writer needs the next commit: this one may have snapshotted before its write
      this.waiting = undefined
      const run = this.commit()
      this.running = run
      await run
    })
    await this.waiting
  }
}
