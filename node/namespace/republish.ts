/**
 * Versions a snapshot merge kept on this replica's word alone (their signed
 * entries are here, and no entry here removes them), waiting to be
 * published again as this replica's own writes (snapshot-load.ts; docs/namespace.md,
 * "What a snapshot may claim").
 *
 * The merge's final batch drops those versions from the peers' view (its
 * clock covers them, its snapshot lacks them): were they published only
 * afterwards, a crash in between, or a merge while the replica recovers its
 * own writes (recovery.ts: its next seq is not known, it cannot write),
 * would lose them for good. So the merge's final batch records them
 * (`m!republish`, {@link PendingRepublish.record}), and the batch that
 * publishes them deletes the record ({@link PendingRepublish.publish}):
 * either both are on disk or neither. What a crash or a recovery left
 * pending is published at the next open, or once recovery ends.
 *
 * @module
 */
import type { Op } from '../../protocol/namespace.js'
import { decodeJSON, type KV, type Txn } from './kv.js'
import { metaKey } from './rows.js'
import { republishOps } from './snapshot-state.js'
import { versionsKey, type PathState, type Version } from './tree.js'
import type { Logger } from '../logger.js'

/** The record of versions waiting to be published again: `[path, version]` pairs. */
export const REPUBLISH_KEY = metaKey('republish')

/** A version kept by a merge on this replica's word alone, at its path. */
export type HeldVersion = [string, Version]

/** What {@link PendingRepublish} is built from. */
export interface PendingRepublishComponents {
  kv: KV
  /** True while the replica recovers its own past writes (it cannot write: publishing waits). */
  recovering: () => boolean
  /**
   * Write groups of ops as this replica's own entries, in one batch with
   * what `alsoInBatch` adds (writes.ts); the caller holds the replica's lock.
   */
  commit: (groups: Op[][], alsoInBatch: (txn: Txn) => void) => Promise<void>
  logger: Logger
}

function dotOf ([path, v]: HeldVersion): string { return `${path}\n${v.author}\n${v.seq}` }

/** The versions a merge kept without proof, until they are published again. */
export class PendingRepublish {
  constructor (private readonly components: PendingRepublishComponents) {}

  /** Add `held` to what waits to be published, in `txn` (a merge's final batch). */
  async record (txn: Txn, held: readonly HeldVersion[]): Promise<void> {
    if (held.length === 0) return
    const pending = await txn.get<HeldVersion[]>(REPUBLISH_KEY) ?? []
    const seen = new Set(pending.map(dotOf))
    for (const item of held) {
      if (seen.has(dotOf(item))) continue
      seen.add(dotOf(item))
      pending.push(item)
    }
    txn.put(REPUBLISH_KEY, pending)
  }

  /**
   * Publish what waits, under the replica's lock: each version that is
   * still live at its path (an entry applied meanwhile may have replaced or
   * removed it: it is not brought back), in one batch that deletes the
   * record. Nothing while the replica recovers: the record stays for later.
   *
   * @returns the number of versions published
   */
  async publish (): Promise<number> {
    const { kv, logger } = this.components
    const bytes = await kv.get(REPUBLISH_KEY)
    if (bytes === undefined) return 0
    const pending = decodeJSON<HeldVersion[]>(bytes)
    if (this.components.recovering()) {
      logger.warn({ versions: pending.length }, 'namespace recovering its own writes: versions a snapshot left out are published again once recovery ends')
      return 0
    }
    const live: HeldVersion[] = []
    for (const item of pending) {
      const [path, v] = item
      const state = await kv.get(versionsKey(path))
      if (state !== undefined && decodeJSON<PathState>(state).versions.some(x => x.author === v.author && x.seq === v.seq)) live.push(item)
    }
    await this.components.commit(republishOps(live), txn => { txn.del(REPUBLISH_KEY) })
    if (live.length > 0) logger.info({ versions: live.length, paths: live.slice(0, 5).map(([p]) => p) }, 'namespace published again, as this node\'s own writes, versions a snapshot left out')
    return live.length
  }
}
