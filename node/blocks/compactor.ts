/**
 * Compaction: packs whose live share has fallen under a threshold are
 * rewritten in the background. Each live record is copied verbatim (crc and
 * all) to the current pack; a commit then points the index at the copies and
 * the old pack is removed once nothing points into it. Readers are never
 * blocked: until the commit they read the old record, and a read that races
 * the removal looks the block up again.
 *
 * @module
 */
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { packFileName, scanPack } from './pack-file.js'
import { PACK_HEADER } from './pack-record.js'
import type { Location, PackMeta } from './pack-index.js'

/** What the compactor needs from the store. */
export interface CompactionHost {
  /** The pack folder. */
  dir: string
  /** Packs that may be rewritten (committed, not being written) and their metadata. */
  packs: () => Array<{ pack: number, meta: PackMeta }>
  /** True when the index still points at the record at `loc`. */
  isLive: (multihash: Uint8Array, loc: Location) => Promise<boolean>
  /**
   * Append a copy of `record` (taken from `from`), indexed at the next commit
   * if still live; `failed`: the record fails its check (the copy's index
   * entry says so, and the block counts as not here until a put replaces it).
   */
  copy: (multihash: Uint8Array, record: Uint8Array, from: Location, failed: boolean) => Promise<void>
  commit: () => Promise<void>
  /** Remove `pack` if no index entry points into it any more; false when some still does. */
  remove: (pack: number) => Promise<boolean>
  /** Bytes still free on the packs' file system. */
  freeBytes: () => Promise<number>
}

/** Options of {@link Compactor}. */
export interface CompactorOptions {
  /** Rewrite packs whose live share (live bytes / record bytes) is under this. */
  threshold: number
  /** Bytes of live records copied per second at most, so that writers and readers keep the disk. */
  bytesPerSecond: number
  /** Run by itself after deletes. */
  auto: boolean
  /** Wait before a background pass (deletes come in bursts). @default 1000 */
  delayMs?: number
}

/** The share of `meta`'s record bytes that is still live (1 for an empty pack). */
export function liveShare (meta: PackMeta): number {
  const total = meta.committed - PACK_HEADER
  return total <= 0 ? 1 : (total - meta.deadBytes) / total
}

/** Free bytes a rewrite leaves beyond the live records it copies (the index's own writes, other writers). */
const ROOM_MARGIN = 16 * 1024 * 1024

/** Runs compaction passes, one at a time, in the background or on demand. */
export class Compactor {
  /** The error of the last background pass, if it failed. */
  lastError: Error | undefined
  private running: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly abort = new AbortController()

  constructor (private readonly host: CompactionHost, private readonly options: CompactorOptions) {}

  /**
   * The packs a pass would rewrite now: those whose live share is under
   * `threshold` (the configured one unless given), most dead first (the
   * cheapest to copy, and the room they give back helps the next ones).
   */
  candidates (threshold = this.options.threshold): number[] {
    return this.host.packs()
      .filter(({ meta }) => meta.committed > PACK_HEADER && liveShare(meta) < threshold)
      .sort((a, b) => liveShare(a.meta) - liveShare(b.meta))
      .map(({ pack }) => pack)
  }

  /** Start a background pass soon, if there is work and none is due. */
  schedule (): void {
    if (!this.options.auto || this.abort.signal.aborted || this.timer !== undefined || this.running !== undefined) return
    if (this.candidates().length === 0) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.run().catch(err => { this.lastError = err })
    }, this.options.delayMs ?? 1000)
    this.timer.unref()
  }

  /**
   * Run a pass now (after the one under way, if any) and wait for it.
   * `threshold`: rewrite the packs whose live share is under this one
   * instead of the configured one (1: every pack holding a dead record).
   */
  async run (signal?: AbortSignal, threshold?: number): Promise<void> {
    while (this.running !== undefined) await this.running.catch(() => {})
    const stop = signal === undefined ? this.abort.signal : AbortSignal.any([signal, this.abort.signal])
    this.running = this.pass(stop, threshold).finally(() => { this.running = undefined })
    await this.running
  }

  /** Stop: no new pass starts, the one under way ends at its next record. */
  async stop (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.abort.abort()
    await this.running?.catch(() => {})
  }

  private async pass (signal: AbortSignal, threshold?: number): Promise<void> {
    for (const pack of this.candidates(threshold)) {
      if (signal.aborted) return
      await this.rewrite(pack, signal)
    }
  }

  private async rewrite (pack: number, signal: AbortSignal): Promise<void> {
    const meta = this.host.packs().find(p => p.pack === pack)?.meta
    if (meta === undefined) return
    // its live records are copied before it goes: without room for them, it waits for a later pass
    const live = meta.committed - PACK_HEADER - meta.deadBytes
    if (await this.host.freeBytes() < live + ROOM_MARGIN) return
    const started = Date.now()
    let copied = 0
    try {
      for await (const { offset, length, multihash, load } of scanPack(join(this.host.dir, packFileName(pack)), PACK_HEADER, meta.committed)) {
        if (signal.aborted) return
        const loc = { pack, offset, length }
        // dead records cost a header read; only live ones are read whole and paced
        if (!await this.host.isLive(multihash, loc)) continue
        const { record, decoded } = await load()
        if (decoded === 'short') break
        // a corrupt record is copied as it is: it stays corrupt (reads keep
        // failing, the scrub repairs it) rather than being dropped; its entry
        // is marked, so that the next put of the block replaces it
        await this.host.copy(multihash, record, loc, decoded === 'crc')
        copied += length
        const ahead = copied / this.options.bytesPerSecond * 1000 - (Date.now() - started)
        if (ahead > 1) await sleep(ahead, undefined, { signal }).catch(() => {})
      }
    } catch (err: any) {
      // a pack gone from the disk (its entries marked bad at open) has nothing to copy; once puts replaced them all, it is removed
      if (err?.code !== 'ENOENT') throw err
    }
    if (signal.aborted) return
    await this.host.commit()
    await this.host.remove(pack)
  }
}
