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

/** The smallest ballast worth keeping: room for the stores to open and for `rm` and `gc` to start. */
export const MIN_BALLAST_BYTES = 4 * 1024 * 1024

const MiB = 1024 * 1024

/**
 * The ballast: a file of {@link BALLAST_BYTES} the daemon keeps in the repo
 * (`<repo>/ballast`) while the disk has room. When another program fills
 * the disk to the last byte, the next start deletes it first, so the node
 * can open its stores, take its lock and serve `rm` and `gc`; it is made
 * again at a later start once there is room.
 *
 * A disk already inside the reserve when the daemon starts (adds refused)
 * still gets one, smaller: half of what is free, at most {@link BALLAST_BYTES},
 * at least {@link MIN_BALLAST_BYTES} (none below that). Before, no ballast was
 * written there, and once another program took the last bytes the daemon
 * could not start again until space was freed by hand. A smaller ballast
 * grows to the full size at a later start with room.
 */
export class Ballast {
  constructor (private readonly file: string, private readonly guard: DiskGuard, private readonly bytes = BALLAST_BYTES) {}

  /**
   * Delete the ballast when the disk has less than it free.
   *
   * @returns true when it was deleted
   */
  async releaseIfFull (): Promise<boolean> {
    const size = await stat(this.file).then(s => s.size, () => 0)
    if (size === 0 || await this.guard.free() >= Math.min(size, this.bytes)) return false
    try {
      await unlink(this.file)
      return true
    } catch (err: any) {
      if (err?.code === 'ENOENT') return false
      throw err
    }
  }

  /**
   * Write the ballast when it is missing or smaller than the disk now
   * allows: the full size when the disk keeps its reserve after it, else half
   * of what is free (see the class comment). False when none is there after.
   */
  async ensure (): Promise<boolean> {
    const size = await stat(this.file).then(s => s.size, () => 0)
    if (size >= this.bytes) return true
    const room = await this.guard.free() + size
    const target = room >= this.guard.reserveBytes + this.bytes
      ? this.bytes
      : Math.min(this.bytes, Math.floor(room / 2 / MiB) * MiB)
    if (target < Math.min(MIN_BALLAST_BYTES, this.bytes)) return size > 0
    if (size >= target) return true
    await this.write(target)
    return true
  }

  /** Write a ballast of `bytes` in place of any other, atomically. */
  private async write (bytes: number): Promise<void> {
    const tmp = `${this.file}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try {
      const chunk = Buffer.alloc(1024 * 1024)
      for (let written = 0; written < bytes; written += chunk.byteLength) await fh.write(chunk, 0, Math.min(chunk.byteLength, bytes - written))
      await fh.datasync()
    } catch (err) {
      await fh.close().catch(() => {})
      await unlink(tmp).catch(() => {})
      throw err
    }
    await fh.close()
    await rename(tmp, this.file)
  }
}
