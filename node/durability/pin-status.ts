/**
 * `pin status`: the state and health of every stripe of a file's pin, from
 * who holds which shard now, where placement put it and the placement under
 * way here, if any.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { assessStripe, countHealth, emptySummary, stripeState, worstState, type FileState, type HealthSummary, type ShardHolders, type StripeState, type StripeWork } from './health.js'
import type { PlaceProgress, StripeProgress } from './placer.js'
import { loadManifestRoot, readStripes, shardCID, storedShards } from './stripes.js'
import { gatherView } from './view.js'
import type { DurabilityParts } from './components.js'
import type { ManifestRecord, PlacementRecord } from './holdings.js'
import type { StripeHealth } from './repair-plan.js'
import type { FilePin } from '../namespace/index.js'
import type { Stripe } from '../../protocol/durability.js'

/** One shard in a status report. */
export interface ShardStatus {
  index: number
  /** Absent for the zero shards of a short last stripe. */
  cid?: string
  /** Live peers holding it now. */
  holders: string[]
  /** Where placement put it (this node's record, if it placed it). */
  placed?: string
  /**
   * Set on a shard of a stripe lost on its holders when no live holder has
   * it but this node's store has a copy (the same bytes added here, a
   * writer's copy before its gc, a released holder's copy; a read of a
   * striped file keeps none: docs/reads.md): the repair pass adopts such copies as held
   * shards and rebuilds the rest (adopt.ts).
   */
  copyHere?: true
}

/**
 * Where one stripe of a pin stands, in one word, by the file's rule (see
 * {@link FilePinState}): `lost` or `degraded` when it misses shards, else
 * `placing` while this node pushes its shards, `pending` while its placement
 * is not final or waits for live peers, else its health (`at-risk`,
 * `healthy`).
 */
export type StripePinState = StripeState

/** One stripe in a status report. */
export interface StripeStatus {
  index: number
  /** The stripe's state in one word (see {@link StripePinState}). */
  state: StripePinState
  /** Where its shards are: what {@link state} is when no work is under way. */
  health: StripeHealth
  /** Shards on live holders (zero shards of a short last stripe included). */
  live: number
  /**
   * Set when the stripe is lost on its holders but copies of enough of its
   * missing shards are in this node's store ({@link ShardStatus.copyHere}):
   * how many. Its health is then `degraded`, not `lost`: it reads here and
   * the repair pass rebuilds it from them.
   */
  copiesHere?: number
  shards: ShardStatus[]
  /**
   * Why placement chose these peers, when this node placed the stripe:
   * what was true then, labelled with when ("at placement,
   * 2026-11-26T13:40:05Z: 6 shards on 4 of 4 live peers, 4 zones"; see
   * {@link placementWhy}). What holds now is in `live`, each shard's
   * `holders` and the status's `peersAsked`.
   */
  why?: string
  /** When this node placed the stripe (ms since the epoch), with {@link why}. */
  placedAt?: number
  /** Set while `placing`, when the placement counts it: shards acknowledged by their holders, of how many go to other peers. */
  progress?: StripeProgress
  /** Set while `pending`: why, in one line. */
  waiting?: string
  /**
   * Set on a `lost` stripe whose missing shards' holders (as placed) went
   * down within the grace period: how many of those shards. Enough of them
   * back (`live + away >= k`) and the stripe reads again; the repair pass
   * waits for them until the grace period ends.
   */
  away?: number
}

/**
 * Where a file's pin stands, in one word: `not-coded` (no erasure coding
 * asked, or none needed: kept where its blocks are), `pending` (not coded or
 * not placed yet: too few live nodes, or placement not final), `placing` (this
 * node is pushing its shards now), `healthy` (every stripe on k+m distinct live
 * nodes), `at-risk` (every stripe readable, but some shards share a node or a
 * zone), `degraded` (some stripe misses shards but can be rebuilt: from
 * its holders, or from copies in this node's store), `lost` (some stripe
 * has fewer than k shards left, here and on its holders). The worst of its stripes'
 * {@link StripePinState}s: the same rule as the metrics' {@link FileState}
 * (health.ts: missing shards first, then work under way, then the worst
 * stripe), spelled as stripe health is (`at-risk`).
 */
export type FilePinState = 'not-coded' | StripePinState

/** The {@link FilePinState} of a status: the worst of its stripes' states (lost, degraded, placing, pending, at-risk, healthy). */
export function filePinState (s: Pick<PinStatus, 'stripes' | 'pending' | 'waiting'>): FilePinState {
  return worstState(s.stripes.map(st => st.state)) ?? (s.waiting !== undefined || s.pending === true ? 'pending' : 'not-coded')
}

/** What this node knows of the placement of a manifest it may have written, for {@link stripeWork}. */
export interface PlacementKnown {
  /** The placement under way here (`Placer.underWay`), if one runs. */
  underWay?: Readonly<PlaceProgress>
  /** This node wrote the manifest and its placement is not final. */
  pending: boolean
  /** Why it is not final while no placement runs, in one line. */
  why?: string
}

/** The work under way on one stripe, as {@link stripeWork} finds it. */
export interface StripeWorkFound {
  work?: StripeWork
  progress?: StripeProgress
  waiting?: string
}

/**
 * The work under way on the stripe `index` (its shards as `pin status` saw
 * them): `placing` while the placement under way has shards of it still to
 * be acknowledged (counted per stripe, with its progress; a placement that
 * does not count stripes: while some shard is not on the holder placement
 * planned for it, or no plan is recorded yet), else `pending` while the
 * placement is not final, else none.
 */
export function stripeWork (index: number, shards: readonly ShardStatus[], known: PlacementKnown): StripeWorkFound {
  const { underWay } = known
  if (underWay !== undefined) {
    if (underWay.stripes !== undefined) {
      const counts = underWay.stripes.get(index)
      if (counts !== undefined && counts.acked < counts.total) return { work: 'placing', progress: { ...counts } }
    } else if (shards.some(s => s.cid !== undefined && (s.placed === undefined || !s.holders.includes(s.placed)))) {
      return { work: 'placing' }
    }
    return { work: 'pending', waiting: 'its shards are on their holders; the file\'s other stripes are being placed' }
  }
  if (!known.pending) return {}
  return known.why === undefined ? { work: 'pending' } : { work: 'pending', waiting: known.why }
}

/**
 * Why the placement of a manifest this node wrote (its record `own`) is not
 * final while none runs, in one line. `shards`: what its widest stripe
 * stores (k + m, or fewer for a file of one short stripe).
 */
function notFinal (own: ManifestRecord, shards: number): string {
  if (own.spreadOver !== undefined) return `placed over ${own.spreadOver} live nodes, fewer than its ${shards} shards: placed again once more are live`
  return 'not confirmed on all its holders yet (not placed yet, a peer failed, or the placement stopped): the repair pass places it'
}

/**
 * The placement explanation of a stripe as `pin status` shows it: the text
 * recorded when the stripe was placed ("6 shards on 4 of 4 live peers…"),
 * which counts the peers live then, prefixed with when that was true
 * ("at placement, 2026-11-26T13:40:05Z: …", UTC to the second). Shown
 * bare, it read as a description of now: with two of four peers answering,
 * `pin status` still said "4 of 4 live peers".
 */
export function placementWhy (record: Pick<PlacementRecord, 'why' | 'time'>): string {
  const date = new Date(record.time)
  const at = Number.isNaN(date.getTime()) ? '' : `, ${date.toISOString().replace(/\.\d{3}Z$/, 'Z')}`
  return `at placement${at}: ${record.why}`
}

/** `pin status` of one file. */
export interface PinStatus {
  root: string
  policy: string
  /** The file's state in one word (see {@link FilePinState}). */
  state: FilePinState
  manifest?: string
  k?: number
  m?: number
  stripes: StripeStatus[]
  summary: HealthSummary
  /** Peers that answered (a peer that is down cannot say what it holds). */
  peersAsked: string[]
  /** This node wrote the file and its placement is not final yet (under way, or waiting for k+m live peers). */
  pending?: boolean
  /** Set when the file is not coded yet because too few nodes are live: why, in one line. */
  waiting?: string
  /** Set while this node places the file's shards: shard blocks pushed so far, of how many. */
  placing?: { pushed: number, total: number }
}

/** Options of {@link readPinStatus}. */
export interface ReadPinStatusOptions {
  signal?: AbortSignal
  /** A node's zone: with it, zones count too (see health.ts). */
  zoneOf?: (node: string) => string | undefined
  /** The placement of a manifest under way on this node (`Placer.underWay`), if one runs. */
  underWay?: (manifest: CID) => Readonly<PlaceProgress> | undefined
  /** Whether a peer went down within the grace period (its shards are waited for, not rebuilt yet). */
  awayWithinGrace?: (peer: string) => boolean
}

/**
 * Health of every stripe of the pin `pin` of the file `root`, asking every
 * connected peer what it holds (and the holders found beyond them: see
 * {@link gatherView}).
 */
export async function readPinStatus (components: DurabilityParts, root: CID, pin: FilePin | undefined, options: ReadPinStatusOptions = {}): Promise<PinStatus> {
  const { signal, zoneOf } = options
  const policy = pin?.policy ?? 'none'
  if (pin?.manifest === undefined) {
    return { root: root.toString(), policy, state: 'not-coded', stripes: [], summary: emptySummary(), peersAsked: [] }
  }
  const manifest = CID.parse(pin.manifest)
  const getter = components.blocks.getter({ signal })
  const mroot = await loadManifestRoot(getter, manifest, signal)
  const view = await gatherView(components, manifest, mroot.stripes, { signal, width: mroot.k + mroot.m })
  // the writer keeps every shard until placement is final: what is here counts before it is placed
  const own = await components.holdings.manifest(manifest.toString())
  const underWay = options.underWay?.(manifest)
  const unplaced = own?.role === 'origin' && own.placed === undefined ? own : undefined
  const pending = unplaced !== undefined || underWay !== undefined
  // the writer's copies of shards it gave away count only while its placement runs or did not reach every
  // holder (a failed peer's shards are pushed again from here): once placed over fewer nodes (`spreadOver`), every
  // holder acknowledged its shards, and a copy left here is no shard any other node reads or repairs from (counted,
  // it hid a shard lost with its holder: the writer called a stripe 6/6 that every other node saw degraded)
  const ownCopies = underWay !== undefined || (unplaced !== undefined && unplaced.spreadOver === undefined)
  // only a file of one stripe can have fewer shards than k + m: its stripe's count is taken below
  const known: PlacementKnown = { underWay, pending, why: unplaced === undefined || mroot.stripes === 1 ? undefined : notFinal(unplaced, mroot.k + mroot.m) }
  const self = components.network.self
  const stripes: StripeStatus[] = []
  const summary = emptySummary()
  for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
    if (unplaced !== undefined && mroot.stripes === 1) known.why = notFinal(unplaced, storedShards(stripe))
    const record = await components.holdings.placement(manifest, index)
    const shards: ShardStatus[] = []
    const seen: ShardHolders[] = []
    for (let i = 0; i < mroot.k + mroot.m; i++) {
      const cid = shardCID(stripe, mroot.k, i)
      let holders = cid === undefined ? [] : view.holders(index, i)
      if (ownCopies && cid !== undefined && !holders.includes(self) && await components.blockstore.has(cid)) holders = [...holders, self]
      seen.push(cid === undefined ? undefined : holders)
      const s: ShardStatus = { index: i, holders }
      if (cid !== undefined) s.cid = cid.toString()
      if (record !== undefined) s.placed = record.holders[i]
      shards.push(s)
    }
    const assessed = assessStripe(mroot.k, mroot.m, seen, zoneOf)
    const { live } = assessed
    let health = assessed.health
    const copies = health === 'lost' ? await copiesHere(components, stripe, mroot.k, shards) : 0
    if (copies > 0 && live + copies >= mroot.k) health = 'degraded'
    countHealth(summary, health)
    const { work, progress, waiting } = stripeWork(index, shards, known)
    const st: StripeStatus = { index, state: stripeState(health, work), health, live, shards }
    if (health === 'degraded' && copies > 0) st.copiesHere = copies
    if (health === 'lost' && options.awayWithinGrace !== undefined) {
      const away = shards.filter(s => s.holders.length === 0 && s.placed !== undefined && s.placed !== self && options.awayWithinGrace?.(s.placed) === true).length
      if (away > 0) st.away = away
    }
    if (record !== undefined) {
      st.why = placementWhy(record)
      if (!Number.isNaN(new Date(record.time).getTime())) st.placedAt = record.time
    }
    if (st.state === 'placing' && progress !== undefined) st.progress = progress
    if (st.state === 'pending' && waiting !== undefined) st.waiting = waiting
    stripes.push(st)
  }
  const status: PinStatus = { root: root.toString(), policy, state: 'healthy', manifest: pin.manifest, k: mroot.k, m: mroot.m, stripes, summary, peersAsked: view.asked }
  if (pending) status.pending = true
  if (underWay !== undefined) status.placing = { pushed: underWay.pushed, total: underWay.total }
  status.state = filePinState(status)
  return status
}

/**
 * The shards of a stripe lost on its holders that no live holder has and
 * this node's store does (the same bytes added here, copies left from before): each
 * marked {@link ShardStatus.copyHere}; returns how many. Such a stripe is
 * not lost to a user of this node: it reads here, and the repair pass
 * adopts the copies and rebuilds the rest (adopt.ts). Asked only of lost
 * stripes: one index lookup per missing shard.
 */
async function copiesHere (components: Pick<DurabilityParts, 'blockstore'>, stripe: Stripe, k: number, shards: ShardStatus[]): Promise<number> {
  let n = 0
  for (const s of shards) {
    const cid = shardCID(stripe, k, s.index)
    if (cid === undefined || s.holders.length > 0 || !await components.blockstore.has(cid)) continue
    s.copyHere = true
    n++
  }
  return n
}
