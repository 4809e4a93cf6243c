/**
 * Extra copies of a stripe's shards: which of its copies this node releases.
 * A pure function of the holder view, the same on every node.
 *
 * Extra copies appear when a holder comes back with shards that were
 * rebuilt elsewhere meanwhile: back after the grace period, or restarted
 * from an old copy of its disk (a backup restored, same key). Kept, they
 * are a full copy that garbage collection keeps too, and a node holding
 * two shards of a stripe weakens it.
 *
 * The rule, for each shard this node holds that another live peer also
 * holds: the **keepers** are the live peers holding that shard and no
 * other shard of the stripe; this node releases its copy when a keeper
 * ranks before it (smaller rendezvous hash of the stripe key and the peer's
 * kad key), or when it holds another shard of the stripe itself. The
 * keeper ranked first never releases, whatever the others' views say (the
 * order is total), so at least one copy stays; the caller confirms the
 * keeper still has the shard right before releasing.
 *
 * @module
 */
import { rendezvousHash } from './placement.js'

/** What {@link surplusCopies} decides from. */
export interface SurplusInput {
  /** The stripe key (32 bytes). */
  key: Uint8Array
  /** This node's peer id. */
  self: string
  /** Shards of the stripe (k+m). */
  shards: number
  /** The peers seen holding shard `index` (this node among them when it holds it). */
  holders: (index: number) => readonly string[]
  /** Whether a peer is live now. */
  isAlive: (peer: string) => boolean
}

/** A copy this node holds and should release, and the peer that keeps that shard. */
export interface SurplusCopy {
  index: number
  keeper: string
}

/** Compare two hashes as big-endian numbers. */
function compareHashes (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}

/** The copies of one stripe this node should release (see the module comment). */
export function surplusCopies (input: SurplusInput): SurplusCopy[] {
  const { key, self, shards, holders, isAlive } = input
  const live: string[][] = []
  const count = new Map<string, number>()
  for (let i = 0; i < shards; i++) {
    const list = [...new Set(holders(i))].filter(p => p === self || isAlive(p))
    live.push(list)
    for (const p of list) count.set(p, (count.get(p) ?? 0) + 1)
  }
  const ranks = new Map<string, Uint8Array>()
  const rank = (p: string): Uint8Array => {
    let r = ranks.get(p)
    if (r === undefined) { r = rendezvousHash(key, p); ranks.set(p, r) }
    return r
  }
  const out: SurplusCopy[] = []
  for (let i = 0; i < shards; i++) {
    if (!live[i].includes(self)) continue
    const keepers = live[i].filter(p => p !== self && count.get(p) === 1)
    if (keepers.length === 0) continue
    const keeper = keepers.reduce((best, p) => compareHashes(rank(p), rank(best)) < 0 ? p : best)
    if ((count.get(self) ?? 0) > 1 || compareHashes(rank(keeper), rank(self)) < 0) out.push({ index: i, keeper })
  }
  return out
}
