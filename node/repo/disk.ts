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
import { statfs } from 'node:fs/promises'
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
    const s = await statfs(this.init.path)
    return s.bavail * s.bsize
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

/** True for an error that says the disk is full (Node's `ENOSPC`, LevelDB's "No space left on device"). */
export function isDiskFull (err: any): boolean {
  return err?.code === 'ENOSPC' || /No space left on device|ENOSPC/.test(String(err?.message ?? ''))
}

function mib (bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`
}
