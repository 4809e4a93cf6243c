/**
 * Attributes looked up in the namespace, kept for a short while: `ls -l`
 * stats every name a listing just returned, and a listing fills this cache
 * so those stats cost no store lookup. Cleared whenever another node's
 * changes arrive.
 *
 * @module
 */

/** What `getattr` needs of a path. */
export interface Attr {
  type: 'file' | 'dir'
  size: number
  /** Permission bits. */
  mode: number
  /** Modification time (ms). */
  mtime: number
}

/** Entries kept at most; past it the cache starts over. */
const MAX_ENTRIES = 200_000

/**
 * Path → attributes, each valid for `ttlMs`; `null` records a path known to
 * be absent (a program creating files looks each new name up first).
 */
export class AttrCache {
  private readonly map = new Map<string, { attr: Attr | null, until: number }>()

  /** @param ttlMs how long an entry is used (0: no caching) */
  constructor (private readonly ttlMs: number) {}

  /** The attributes kept for `path`, `null` when it is known absent, undefined when unknown. */
  get (path: string): Attr | null | undefined {
    const hit = this.map.get(path)
    if (hit === undefined) return undefined
    if (hit.until < Date.now()) { this.map.delete(path); return undefined }
    return hit.attr
  }

  /** Keep `attr` for `path`; returns it. */
  set<A extends Attr | null> (path: string, attr: A): A {
    if (this.ttlMs <= 0) return attr
    if (this.map.size >= MAX_ENTRIES) this.map.clear()
    this.map.set(path, { attr, until: Date.now() + this.ttlMs })
    return attr
  }

  delete (path: string): void {
    this.map.delete(path)
  }

  clear (): void {
    this.map.clear()
  }
}
