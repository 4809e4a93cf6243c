/**
 * A set of strings bounded to the most recently added: what a read session
 * remembers of the blocks it fetched, and what a reader remembers of the
 * files it warned about, without growing with a long read or a long life.
 *
 * @module
 */

/** A set that keeps only the `size` most recently added keys. */
export class RecentKeys {
  private readonly keys = new Set<string>()
  constructor (private readonly size: number) {}
  has (key: string): boolean { return this.keys.has(key) }
  add (key: string): void {
    this.keys.delete(key)
    this.keys.add(key)
    if (this.keys.size > this.size) this.keys.delete(this.keys.values().next().value as string)
  }
}
