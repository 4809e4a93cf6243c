/**
 * Extra copies of a stripe's shards: which of its copies this node releases.
 * A pure function of the holder view, the same on every node.
 *
 * Extra copies appear when a holder comes back with shards that were
 * rebuilt elsewhere meanwhile (back after the grace period, or restarted
 * from an old copy of its disk: a backup restored, same key), and when the
 * repair pass moves a shard off a node holding more of the stripe than it
 * can lose (node/durability/repair-plan.ts, `planMoves`): the old holder
 * keeps its copy until the new one has it. Kept, they are a full copy that
 * garbage collection keeps too, and a node holding two shards of a stripe
 * weakens it.
 *
 * The rule, for each shard this node holds that another live peer also
 * holds: the holders are ordered by how many shards of the stripe each
 * holds (fewest first), then by rank (smaller rendezvous hash of the stripe
 * key and the peer's kad key); this node releases its copy when another
 * holder comes before it — its **keeper**, the first of them. The order is
 * total, so the holder that comes first never releases, whatever the others'
 * views say, and at least one copy stays; the caller confirms, right before
 * releasing, that the keeper still has the shard and still comes first
 * ({@link SurplusCopy.keeperMayHold}). Where a keeper holds that shard alone,
 * this is the rule as it always was (a holder of that shard alone keeps it;
 * a node holding another shard of the stripe gives its copy up). Where every
 * holder holds other shards too — a shard moved onto a node that held one
 * already, as on a stripe over exactly as many nodes as it needs — the node
 * holding more gives its copy up: three, two and one shards on three nodes
 * become two on each. Such releases count the ones decided before them in
 * the same pass, so that a node never gives up a copy it would then need.
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
  /**
   * The keeper still comes first when, asked right before the release, it
   * holds at most this many shards of the stripe (this node's count, or one
   * fewer where this node ranks before it).
   */
  keeperMayHold: number
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
  /** Whether `a`, holding `na` shards, comes before `b` holding `nb`. */
  const before = (a: string, na: number, b: string, nb: number): boolean => na < nb || (na === nb && compareHashes(rank(a), rank(b)) < 0)
  const held = count.get(self) ?? 0
  const out: SurplusCopy[] = []
  const crowded: Array<{ index: number, keeper: string }> = []
  for (let i = 0; i < shards; i++) {
    if (!live[i].includes(self)) continue
    const others = live[i].filter(p => p !== self)
    if (others.length === 0) continue
    const keeper = others.reduce((best, p) => before(p, count.get(p) ?? 0, best, count.get(best) ?? 0) ? p : best)
    const kept = count.get(keeper) ?? 0
    // a keeper holding that shard alone: released against this node's whole count, as always
    if (kept === 1) {
      if (before(keeper, 1, self, held)) out.push({ index: i, keeper, keeperMayHold: keeperMayHold(keeper, self, held) })
    } else {
      crowded.push({ index: i, keeper })
    }
  }
  // every holder of the shard holds others too: each release lowers this node's count for the next
  let left = held - out.length
  const order = (a: { index: number, keeper: string }, b: { index: number, keeper: string }): number =>
    before(a.keeper, count.get(a.keeper) ?? 0, b.keeper, count.get(b.keeper) ?? 0) ? -1 : before(b.keeper, count.get(b.keeper) ?? 0, a.keeper, count.get(a.keeper) ?? 0) ? 1 : a.index - b.index
  crowded.sort(order)
  for (const { index, keeper } of crowded) {
    if (!before(keeper, count.get(keeper) ?? 0, self, left)) continue
    out.push({ index, keeper, keeperMayHold: keeperMayHold(keeper, self, left) })
    left--
  }
  return out.sort((a, b) => a.index - b.index)

  function keeperMayHold (keeper: string, me: string, mine: number): number {
    return compareHashes(rank(keeper), rank(me)) < 0 ? mine : mine - 1
  }
}
