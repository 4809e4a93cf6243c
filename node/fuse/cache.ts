/**
 * A bounded local cache of the content of files written through the mount:
 * once a staged file is committed and nothing uses it any more, its bytes
 * are exactly the committed version's, so instead of deleting it the mount
 * keeps it here, named by the version's content CID, and serves reads of
 * that version with `read(2)` straight into the kernel's buffer — no block
 * store lookups, hash checks or leaf buffers on the read path.
 *
 * Bounded by bytes (`fuse.contentCacheMiB`), least recently used first out;
 * it lives under the staging folder and is cleared with it at start. A
 * version that is not here (written elsewhere, or evicted) is read from the
 * block store as before. See docs/fuse.md, "Caching".
 *
 * @module
 */
import { readSync } from 'node:fs'
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { ERRNO } from './errno.js'
import { ErrnoError } from './errors.js'

/** One kept version: a file named by its content CID. */
interface Kept { path: string, size: number }

/** Content of committed versions, kept on local disk, bounded by bytes. */
export class ContentCache {
  /** In least-recently-used order (a use moves an entry to the end). */
  private readonly kept = new Map<string, Kept>()
  private bytes = 0
  /** Set by {@link clear}: the mount is going, and nothing more is kept. */
  private cleared = false

  /**
   * @param dir where kept files live (created on first use)
   * @param maxBytes most bytes kept; 0 keeps nothing
   */
  constructor (readonly dir: string, readonly maxBytes: number) {}

  /** Bytes kept now. */
  get size (): number { return this.bytes }

  /** True when `cid`'s content is kept. */
  has (cid: string): boolean { return this.kept.has(cid) }

  /**
   * Keep the file at `from` (moved, never copied: same file system) as the
   * content of `cid`. Returns false — and leaves `from` alone — when caching
   * is off, the file is larger than the whole cache, `cid` is kept already,
   * or the cache was cleared (its mount is going).
   */
  async adopt (cid: string, from: string, size: number): Promise<boolean> {
    if (this.cleared || size > this.maxBytes || size === 0 || this.kept.has(cid)) return false
    const path = join(this.dir, cid)
    try {
      await mkdir(this.dir, { recursive: true })
      await rename(from, path)
    } catch (err) {
      // the folder removed by a clear meanwhile (ENOENT): not kept, `from` left to the caller
      if (this.cleared) return false
      throw err
    }
    // cleared while it moved (a commit that ended as the mount went): not kept
    if (this.cleared) {
      await rm(path, { force: true })
      return true
    }
    this.kept.set(cid, { path, size })
    this.bytes += size
    await this.evict()
    return true
  }

  /** An open, read-only handle on `cid`'s content, or undefined when it is not kept. */
  async open (cid: string): Promise<CachedContent | undefined> {
    const k = this.kept.get(cid)
    if (k === undefined) return undefined
    this.kept.delete(cid)
    this.kept.set(cid, k)
    const handle = await open(k.path, 'r').catch(() => undefined)
    // a kept copy of another size (cut short on disk) is not served: the read goes to the block store
    if (handle === undefined || (await handle.stat().catch(() => undefined))?.size !== k.size) {
      await handle?.close().catch(() => {})
      this.forget(cid)
      return undefined
    }
    return new CachedContent(handle, k.size)
  }

  /**
   * Drop everything kept, for good: the mount is going, and files offered
   * afterwards are not kept. A file an adopt in flight moves in meanwhile is
   * removed by that adopt; the removal of the folder retries while such a
   * move makes it non-empty (it failed with ENOTEMPTY, logged as a failed
   * unmount).
   */
  async clear (): Promise<void> {
    this.cleared = true
    this.kept.clear()
    this.bytes = 0
    await rm(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
  }

  private forget (cid: string): Kept | undefined {
    const k = this.kept.get(cid)
    if (k === undefined) return undefined
    this.kept.delete(cid)
    this.bytes -= k.size
    return k
  }

  /** Remove least recently used files until within bounds (open handles keep reading: the file is only unlinked). */
  private async evict (): Promise<void> {
    while (this.bytes > this.maxBytes) {
      const oldest = this.kept.keys().next()
      if (oldest.done === true) break
      const k = this.forget(oldest.value)
      if (k !== undefined) await rm(k.path, { force: true })
    }
  }
}

/** A read handle on one kept version. */
export class CachedContent {
  constructor (private readonly handle: FileHandle, readonly size: number) {}

  /**
   * Read up to `length` bytes at `position` into `buf`; resolves with the
   * count (0 at the end). Read on the calling thread (`readSync`): the file
   * is read sequentially, so the kernel's read-ahead has the pages in its
   * cache and a read is a copy — a thread-pool round trip per 128 KiB request
   * cost more than the copy itself (the kept file is on local disk, never on
   * a mount, so this cannot wait for the process itself).
   */
  async read (buf: Uint8Array, length: number, position: number): Promise<number> {
    const want = Math.min(length, this.size - position)
    let done = 0
    while (done < want) {
      const n = readSync(this.handle.fd, buf, done, want - done, position + done)
      // the file has `size` bytes: a kept copy that ends before (cut short meanwhile) fails the read, never ends the file
      if (n === 0) throw new ErrnoError(ERRNO.EIO, `the kept copy ended at byte ${position + done} of ${this.size}`)
      done += n
    }
    return done
  }

  /** Close the handle. */
  async close (): Promise<void> {
    await this.handle.close().catch(() => {})
  }
}
