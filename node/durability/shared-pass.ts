/**
 * One pass at a time: concurrent callers share the pass under way.
 *
 * @module
 */

/** A pass (repair, scrub) that concurrent calls share while it runs. */
export class SharedPass<T> {
  private current?: Promise<T>

  /** The pass under way, else a new one of `fn`. */
  async run (fn: () => Promise<T>): Promise<T> {
    this.current ??= fn().finally(() => { this.current = undefined })
    return await this.current
  }

  /** Resolves when no pass is under way (whatever its outcome). */
  async settled (): Promise<void> {
    await this.current?.catch(() => {})
  }
}
