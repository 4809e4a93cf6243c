/**
 * A bound on the bytes the open read handles of a daemon's mounts keep in
 * memory (its mounts share one file system object, and so one budget).
 *
 * Why: each handle reading a file through a content stream
 * ({@link HandleReader}) keeps up to 8 MiB behind the stream for the
 * kernel's late requests, and its paused stream holds the blocks it fetched
 * ahead. That is right for the one or few files being read, but it stayed
 * for as long as a handle was open: a program that keeps hundreds of files
 * open after reading a little of each (an indexer, a media server, a build
 * tool) held hundreds of times that, with no bound.
 *
 * How: every handle reports what it keeps behind its stream
 * ({@link ReadBudget.use}: the bytes counted); the handles are ordered by
 * their last use. When the total passes the limit,
 * the least recently used handles that have no request in flight are told
 * to shed ({@link Shedder.shed}: drop their kept bytes and end their
 * stream, which lets go of the blocks it fetched ahead, not counted), oldest
 * first, until the total fits. Handles with a request in flight may hold the
 * total above the limit while they read. The handle being read is never shed
 * by its own use, and a handle with a request in flight never is, so a read
 * never fails for it; a shed handle that is read again starts a new stream
 * at the offset asked (one walk of the file's tree).
 *
 * @module
 */

/** What a handle does when the budget needs its memory. */
export interface Shedder {
  /** True while a request of this handle is in flight (it is not shed then). */
  busy: () => boolean
  /** Drop the kept bytes and the stream; the next read starts over. */
  shed: () => void
}

/** Default bound of a mount's kept read bytes: eight handles' worth of their own bound. */
export const DEFAULT_READ_BUDGET_BYTES = 64 * 1024 * 1024

/** The kept bytes of the read handles of a daemon's mounts, bounded as a whole. */
export class ReadBudget {
  /** Kept bytes per handle, in order of last use (oldest first). */
  private readonly held = new Map<Shedder, number>()
  private total = 0

  constructor (readonly limit: number = DEFAULT_READ_BUDGET_BYTES) {}

  /** Bytes the mount's handles keep now. */
  get bytes (): number { return this.total }

  /** Handles that keep bytes now. */
  get handles (): number { return this.held.size }

  /** `handle` keeps `bytes` now and was just used; others are shed if the total passes the limit. */
  use (handle: Shedder, bytes: number): void {
    this.total += bytes - (this.held.get(handle) ?? 0)
    this.held.delete(handle)
    this.held.set(handle, bytes)
    if (this.total <= this.limit) return
    for (const other of [...this.held.keys()]) {
      if (this.total <= this.limit) break
      if (other === handle || other.busy()) continue
      this.release(other)
      other.shed()
    }
  }

  /** `handle` keeps nothing now (it was closed or shed). */
  release (handle: Shedder): void {
    this.total -= this.held.get(handle) ?? 0
    this.held.delete(handle)
  }
}
