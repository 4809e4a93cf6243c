/**
 * The storage quota for others: how many bytes of shards this node keeps
 * for other nodes' placements (config `storage.maxForOthers`). See
 * docs/durability.md.
 *
 * @module
 */
import { diskFree } from '../repo/disk.js'
import { ShoalError } from '../errors.js'

/** A `hold` would take more bytes than this node keeps for others. */
export class QuotaExceededError extends ShoalError {
  override name = 'QuotaExceededError'
  override readonly status = 507
}

/** What the quota reads. */
export interface QuotaComponents {
  /** Bytes held for others now. */
  heldForOthers: () => Promise<number>
}

/** Settings of a {@link HoldQuota}. */
export interface QuotaInit {
  /** Most bytes held for others; absent: half the free space of `path`'s disk plus what is held already. */
  maxForOthers?: number
  /** A folder on the repo's disk, for the default. Absent with no `maxForOthers`: no quota. */
  path?: string
  /** Free bytes of a path's disk (tests). @default `fs.statfs`: available blocks × block size */
  freeBytes?: (path: string) => Promise<number>
}

/** The bytes of the quota and what is used of it. */
export interface QuotaReport {
  /** The limit now (the default is measured at each call). */
  maxForOthers: number
  heldForOthers: number
}

/**
 * Checks holds against the quota. Without `maxForOthers` the limit is
 * measured at each check: half of the disk's free space (so a node never
 * gives others more than half of what is left) plus what is already held
 * for others (so what was accepted keeps counting as allowed).
 */
export class HoldQuota {
  private readonly freeBytes: (path: string) => Promise<number>

  constructor (private readonly components: QuotaComponents, private readonly init: QuotaInit = {}) {
    this.freeBytes = init.freeBytes ?? diskFree
  }

  /** The limit and the bytes held for others now. */
  async report (): Promise<QuotaReport> {
    const held = await this.components.heldForOthers()
    const { maxForOthers, path } = this.init
    if (maxForOthers !== undefined) return { maxForOthers, heldForOthers: held }
    if (path === undefined) return { maxForOthers: Number.POSITIVE_INFINITY, heldForOthers: held }
    return { maxForOthers: Math.floor((await this.freeBytes(path)) / 2) + held, heldForOthers: held }
  }

  /**
   * Check that `bytes` more fit.
   *
   * @throws {QuotaExceededError} when they do not
   */
  async check (bytes: number): Promise<void> {
    if (bytes <= 0) return
    const { maxForOthers, heldForOthers } = await this.report()
    if (heldForOthers + bytes > maxForOthers) {
      throw new QuotaExceededError(`${bytes} bytes more would exceed the ${maxForOthers} bytes this node keeps for others (${heldForOthers} held)`)
    }
  }
}

