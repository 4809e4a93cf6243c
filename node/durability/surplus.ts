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
 * total, so the holder that comes first never releases, and at least one
 * copy stays — provided each side's counts are current: the caller
 * confirms, right before releasing, that the keeper still has the shard and
 * still comes first, with the keeper's count as the keeper answers it and
 * this node's own count as it is then ({@link SurplusCopy.keeperRanksFirst}).
 * Where a keeper holds that shard alone, this is the rule as it always was
 * (a holder of that shard alone keeps it; a node holding another shard of
 * the stripe gives its copy up). Where every holder holds other shards too —
 * a shard moved onto a node that held one already, as on a stripe over
 * exactly as many nodes as it needs — the node holding more gives its copy
 * up: three, two and one shards on three nodes become two on each. Such a
 * release is decided only when it leaves the stripe, as seen, no worse
 * against one lost node ({@link noWorse}), counting the releases decided
 * before it in the same pass. Every release is checked so again right
 * before it is made, against the holdings each live holder answers then
 * (the caller's part): releases made one after another never leave a
 * stripe that survived one lost node unable to, and the holders asked keep
 * their copies until the caller is done (node/durability/stripe-releases.ts),
 * so releases at the same moment do not either.
 *
 * @module
 */
import { rendezvousHash } from './placement.js'

/** What {@link surplusCopies} decides from. */
export interface SurplusInput {
  /** The stripe key (32 bytes). */
  key: Uint8Array
  /** Data shards of the stripe: any k rebuild it. */
  k: number
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
   * Whether the keeper ranks before this node: it still comes first when,
   * asked right before the release, it holds fewer shards of the stripe than
   * this node then holds, or as many and this is true.
   */
  keeperRanksFirst: boolean
}

/** Compare two hashes as big-endian numbers. */
function compareHashes (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}

/** The copies of one stripe this node should release (see the module comment). */
export function surplusCopies (input: SurplusInput): SurplusCopy[] {
  const { key, k, self, shards, holders, isAlive } = input
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
  const ranksFirst = (a: string, b: string): boolean => compareHashes(rank(a), rank(b)) < 0
  /** Whether `a`, holding `na` shards, comes before `b` holding `nb`. */
  const before = (a: string, na: number, b: string, nb: number): boolean => na < nb || (na === nb && ranksFirst(a, b))
  const n = (p: string): number => count.get(p) ?? 0
  /** Whether `a` comes before `b` as the view counts them. */
  const first = (a: string, b: string): boolean => before(a, n(a), b, n(b))
  const held = n(self)
  const out: SurplusCopy[] = []
  const crowded: Array<{ index: number, keeper: string }> = []
  for (let i = 0; i < shards; i++) {
    if (!live[i].includes(self)) continue
    const others = live[i].filter(p => p !== self)
    if (others.length === 0) continue
    const keeper = others.reduce((best, p) => first(p, best) ? p : best)
    // a keeper holding that shard alone: released against this node's whole count, as always
    if (n(keeper) === 1) {
      if (before(keeper, 1, self, held)) out.push({ index: i, keeper, keeperRanksFirst: ranksFirst(keeper, self) })
    } else {
      crowded.push({ index: i, keeper })
    }
  }
  if (crowded.length === 0) return out
  // every holder of the shard holds others too: each release lowers this node's count for the next, and none
  // leaves the stripe worse against one lost node
  const gone = new Set(out.map(r => r.index))
  let left = held - out.length
  const order = (a: { index: number, keeper: string }, b: { index: number, keeper: string }): number =>
    first(a.keeper, b.keeper) ? -1 : first(b.keeper, a.keeper) ? 1 : a.index - b.index
  for (const { index, keeper } of crowded.sort(order)) {
    if (!before(keeper, n(keeper), self, left)) continue
    gone.add(index)
    if (!noWorse(live, k, self, gone)) { gone.delete(index); continue }
    out.push({ index, keeper, keeperRanksFirst: ranksFirst(keeper, self) })
    left--
  }
  return out.sort((a, b) => a.index - b.index)
}

/**
 * Whether `self` may release its copy that {@link surplusCopies} gave up,
 * the stripe being `held` (per shard, its holders as they answer right
 * before the release): the keeper still holds the shard and still comes
 * before `self` (the keeper's count as answered, `self`'s as it is then),
 * and the release leaves the stripe no worse against one lost node.
 */
export function releaseConfirmed (held: readonly string[][], k: number, self: string, copy: SurplusCopy): boolean {
  const { index, keeper, keeperRanksFirst } = copy
  if (!held[index].includes(keeper)) return false
  const count = (p: string): number => held.filter(list => list.includes(p)).length
  const theirs = count(keeper)
  const mine = count(self)
  if (!(theirs < mine || (theirs === mine && keeperRanksFirst))) return false
  return noWorse(held, k, self, new Set([index]))
}

/** `holders` (per shard) without `self` among the holders of the shards in `gone`. */
function withoutCopies (holders: readonly string[][], self: string, gone: ReadonlySet<number>): readonly string[][] {
  return holders.map((list, i) => gone.has(i) ? list.filter(p => p !== self) : list)
}

/**
 * The fewest distinct shards left held when any one of the nodes in
 * `holders` (per shard) is lost: the stripe survives one lost node when
 * this is at least k.
 */
export function worstLoss (holders: readonly string[][]): number {
  const nodes = new Set(holders.flat())
  let worst = holders.filter(list => list.length > 0).length
  for (const lost of nodes) worst = Math.min(worst, holders.filter(list => list.some(p => p !== lost)).length)
  return worst
}

/**
 * Whether giving up `self`'s copies of the shards in `gone` leaves the
 * stripe no worse against one lost node: it still survives one if it did
 * (k shards left), and otherwise loses no more than it did.
 */
export function noWorse (holders: readonly string[][], k: number, self: string, gone: ReadonlySet<number>): boolean {
  return worstLoss(withoutCopies(holders, self, gone)) >= Math.min(worstLoss(holders), k)
}
