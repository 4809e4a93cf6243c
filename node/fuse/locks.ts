/**
 * Per-path mutual exclusion for the operations that change what a path is
 * (create, write-open, truncate, unlink, rename…). Reads take no lock.
 *
 * @module
 */

/** Locks keyed by string; `run` holds every key it is given, taken in sorted order (no deadlock). */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>()

  /** Run `fn` holding `keys`. */
  async run<T> (keys: string[], fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)].sort()
    const releases: Array<() => void> = []
    try {
      for (const key of unique) releases.push(await this.acquire(key))
      return await fn()
    } finally {
      for (const release of releases.reverse()) release()
    }
  }

  private async acquire (key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const tail = previous.then(async () => await mine)
    this.tails.set(key, tail)
    await previous
    return () => {
      release()
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }
}
