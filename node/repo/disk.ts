/**
 * Room on the repo's disk.
 *
 * Why: a node that fills its disk wedges. LevelDB needs a little room for
 * every write, a delete included, and to open at all; so once the disk is
 * full neither `rm` nor `gc` can free space and the daemon cannot restart.
 *
 * How: writes that bring new data (adds, CAR imports, FUSE commits) first
 * check that they leave at least `storage.reserve` bytes free on the repo's
 * file system (`statfs`), and are refused with {@link DiskFullError} before
 * anything is read when they would not: the reserve stays for `rm`, `gc`
 * and restarts. A write whose size is unknown up front (a chunked upload) is
 * checked against the reserve alone; a disk that fills up during it gives
 * the same typed error (`ENOSPC` is mapped, never a bare internal error).
 *
 * When it applies: to local writes. What peers may make this node store is
 * bounded separately (`storage.maxForOthers`, docs/limits.md).
 *
 * @module
 */
import { open, rename, stat, statfs, unlink } from 'node:fs/promises'
import { DiskFullError } from '../errors.js'

/** Bytes kept free for `rm`, `gc` and restarts when the config says nothing. */
export const DEFAULT_RESERVE_BYTES = 256 * 1024 * 1024

/** Settings of {@link DiskGuard}. */
export interface DiskGuardInit {
  /** A path on the repo's file system. */
  path: string
  /** @default {@link DEFAULT_RESERVE_BYTES} */
  reserveBytes?: number
}

/** Checks room on the repo's disk before a write. */
export class DiskGuard {
  readonly reserveBytes: number

  constructor (private readonly init: DiskGuardInit) {
    this.reserveBytes = init.reserveBytes ?? DEFAULT_RESERVE_BYTES
  }

  /** Bytes an unprivileged writer may still use on the repo's file system. */
  async free (): Promise<number> {
    return await diskFree(this.init.path)
  }

  /**
   * Refuse a write of `bytes` (0 when unknown) that would leave less than the reserve free.
   *
   * @throws {DiskFullError}
   */
  async ensureRoom (bytes: number, what: string): Promise<void> {
    const free = await this.free()
    if (free - bytes >= this.reserveBytes) return
    const need = bytes > 0 ? `${mib(bytes)} for it and ` : ''
    throw new DiskFullError(`no room for ${what}: ${mib(free)} free on the repo disk, ${need}${mib(this.reserveBytes)} kept for rm, gc and restarts (storage.reserve): free space, or remove files and run \`shoal gc\``)
  }
}

/** Bytes an unprivileged writer may still use on `path`'s disk. */
export async function diskFree (path: string): Promise<number> {
  const s = await statfs(path)
  return s.bavail * s.bsize
}

function mib (bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`
}

/** Size of the ballast file a daemon keeps in its repo. */
export const BALLAST_BYTES = 32 * 1024 * 1024

/**
 * The ballast: a file of {@link BALLAST_BYTES} the daemon keeps in the repo
 * (`<repo>/ballast`) while the disk has room. When another program fills
 * the disk to the last byte, the next start deletes it first, so the node
 * can open its stores, take its lock and serve `rm` and `gc`; it is made
 * again at a later start once there is room.
 */
export class Ballast {
  constructor (private readonly file: string, private readonly guard: DiskGuard, private readonly bytes = BALLAST_BYTES) {}

  /**
   * Delete the ballast when the disk has less than it free.
   *
   * @returns true when it was deleted
   */
  async releaseIfFull (): Promise<boolean> {
    if (await this.guard.free() >= this.bytes) return false
    try {
      await unlink(this.file)
      return true
    } catch (err: any) {
      if (err?.code === 'ENOENT') return false
      throw err
    }
  }

  /** Write the ballast when it is missing and the disk keeps its reserve after it; false when it was not written. */
  async ensure (): Promise<boolean> {
    const exists = await stat(this.file).then(s => s.size === this.bytes, () => false)
    if (exists) return true
    if (await this.guard.free() < this.guard.reserveBytes + this.bytes) return false
    const tmp = `${this.file}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try {
      const chunk = Buffer.alloc(1024 * 1024)
      for (let written = 0; written < this.bytes; written += chunk.byteLength) await fh.write(chunk, 0, Math.min(chunk.byteLength, this.bytes - written))
      await fh.datasync()
    } catch (err) {
      await fh.close().catch(() => {})
      await unlink(tmp).catch(() => {})
      throw err
    }
    await fh.close()
    await rename(tmp, this.file)
    return true
  }
}
