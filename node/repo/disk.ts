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
 * the same typed error (`ENOSPC` is mapped, never a bare internal error),
 * naming the write that stopped ({@link filledDuring}).
 *
 * When another program takes the disk's last bytes while the daemon runs,
 * `rm` and `gc` spend the ballast ({@link DiskGuard.freeing}): found nearly
 * full, it is deleted before they write, and a `gc` makes it again once
 * there is room ({@link DiskGuard.keepBallast}).
 *
 * When it applies: to local writes. What peers may make this node store is
 * bounded separately (`storage.maxForOthers`, docs/limits.md).
 *
 * @module
 */
import { open, rename, stat, statfs, unlink } from 'node:fs/promises'
import { DiskFullError, isDiskFull } from '../errors.js'
import type { Logger } from '../logger.js'

/** Below this much free space, `rm` and `gc` spend the ballast before they write ({@link DiskGuard.freeing}). */
export const ROOM_TO_FREE = 16 * 1024 * 1024

/** Bytes kept free for `rm`, `gc` and restarts when the config says nothing. */
export const DEFAULT_RESERVE_BYTES = 256 * 1024 * 1024

/** Settings of {@link DiskGuard}. */
export interface DiskGuardInit {
  /** A path on the repo's file system. */
  path: string
  /** @default {@link DEFAULT_RESERVE_BYTES} */
  reserveBytes?: number
  /** The repo's ballast file ({@link Ballast}), spent by {@link DiskGuard.freeing} (absent: none to spend). */
  ballast?: string
  /** Where spending or failing to make the ballast is told. */
  logger?: Logger
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

  /**
   * Run `fn`, a write that frees space (`rm`, `gc`). When the disk has less
   * than {@link ROOM_TO_FREE} free (another program filled it), the ballast
   * is deleted first, so that `fn`'s own writes find room: a LevelDB write
   * that fails on a full disk may leave a torn record in its log, and the
   * writes after it in that log can be lost at the next open, so room is
   * made before, never by retrying after a failure.
   */
  async freeing<T> (what: string, fn: () => Promise<T>): Promise<T> {
    if (this.init.ballast !== undefined && await this.free() < ROOM_TO_FREE && await new Ballast(this.init.ballast, this).release()) {
      this.init.logger?.warn({ ballast: this.init.ballast, for: what }, 'the repo disk is nearly full: its ballast was deleted so that this write can free space; `gc` makes it again once there is room')
    }
    return await fn()
  }

  /** Make the ballast again when it is missing or smaller than the disk now allows ({@link Ballast.ensure}); a failure is logged, never thrown. */
  async keepBallast (): Promise<void> {
    if (this.init.ballast === undefined) return
    await new Ballast(this.init.ballast, this).ensure().catch((err: any) => {
      this.init.logger?.warn({ err: err?.message }, 'cannot write the ballast file')
    })
  }
}

/**
 * The error for `what` (an add, an import) that stopped because the disk
 * filled up while it wrote: a {@link DiskFullError} that names it and says
 * how to get room; any other error as it is.
 */
export function filledDuring (what: string, err: unknown): unknown {
  if (!isDiskFull(err)) return err
  const why = String((err as Error).message).replace(/^(the repo disk is full|disk full while writing blocks): /, '')
  return new DiskFullError(`the repo disk filled up during ${what}, which was not kept (${why}): free space, or remove files and run \`shoal gc\``, { cause: err })
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
 * again at a later start once there is room. When the disk fills up while
 * the daemon runs, an `rm` or `gc` that finds it nearly full deletes the
 * ballast before it writes, and `gc` makes it again ({@link DiskGuard.freeing}).
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
    return await this.unlink()
  }

  /**
   * Delete the ballast, whatever room the disk has.
   *
   * @returns true when there was one (of any size) to delete
   */
  async release (): Promise<boolean> {
    const size = await stat(this.file).then(s => s.size, () => 0)
    return size > 0 && await this.unlink()
  }

  /** Delete the ballast file: true when it was there. */
  private async unlink (): Promise<boolean> {
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
