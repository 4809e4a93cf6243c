/**
 * `pin status`: the health of every stripe of a file's pin, from who holds
 * which shard now and where placement put it.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { assessStripe, countHealth, emptySummary, fileState, type FileState, type HealthSummary, type ShardHolders } from './health.js'
import { loadManifestRoot, readStripes, shardCID } from './stripes.js'
import { gatherView } from './view.js'
import type { DurabilityParts } from './components.js'
import type { StripeHealth } from './repair-plan.js'
import type { FilePin } from '../namespace/index.js'

/** One shard in a status report. */
export interface ShardStatus {
  index: number
  /** Absent for the zero shards of a short last stripe. */
  cid?: string
  /** Live peers holding it now. */
  holders: string[]
  /** Where placement put it (this node's record, if it placed it). */
  placed?: string
}

/** One stripe in a status report. */
export interface StripeStatus {
  index: number
  health: StripeHealth
  live: number
  shards: ShardStatus[]
  /** Why placement chose these peers, when this node placed the stripe. */
  why?: string
}

/**
 * Where a file's pin stands, in one word: `not-coded` (no erasure coding
 * asked, or none needed: kept where its blocks are), `pending` (not coded or
 * not placed yet: too few live nodes, or placement not final), `placing` (this
 * node is pushing its shards now), `healthy` (every stripe on k+m distinct live
 * nodes), `at-risk` (every stripe readable, but some shards share a node or a
 * zone), `degraded` (some stripe misses shards but can be rebuilt), `lost`
 * (some stripe has fewer than k shards left). The same rule as the metrics'
 * {@link FileState} (health.ts: missing shards first, then work under way,
 * then the worst stripe), spelled as stripe health is (`at-risk`).
 */
export type FilePinState = 'not-coded' | 'pending' | 'placing' | 'healthy' | 'at-risk' | 'degraded' | 'lost'

/** The {@link FilePinState} of a status. */
export function filePinState (s: Pick<PinStatus, 'stripes' | 'summary' | 'pending' | 'waiting' | 'placing'>): FilePinState {
  if (s.stripes.length === 0) return s.waiting !== undefined || s.pending === true ? 'pending' : 'not-coded'
  // a lone writer holds every shard itself (at risk) until enough peers are live: pending says why
  const state = fileState(s.summary, s.pending === true || s.placing !== undefined)
  if (state === 'pending' && s.placing !== undefined) return 'placing'
  return state === 'at_risk' ? 'at-risk' : state
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

/**
 * Health of every stripe of the pin `pin` of the file `root`, asking every
 * connected peer what it holds; with `zoneOf`, zones count too (see health.ts).
 */
export async function readPinStatus (components: DurabilityParts, root: CID, pin: FilePin | undefined, signal?: AbortSignal, zoneOf?: (node: string) => string | undefined): Promise<PinStatus> {
  const policy = pin?.policy ?? 'none'
  if (pin?.manifest === undefined) {
    return { root: root.toString(), policy, state: 'not-coded', stripes: [], summary: emptySummary(), peersAsked: [] }
  }
  const manifest = CID.parse(pin.manifest)
  const getter = components.blocks.getter({ signal })
  const mroot = await loadManifestRoot(getter, manifest, signal)
  const view = await gatherView(components, manifest, mroot.stripes, signal)
  // the writer keeps every shard until placement is final: what is here counts before it is placed
  const own = await components.holdings.manifest(manifest.toString())
  const pending = own?.role === 'origin' && own.placed === undefined
  const self = components.network.self
  const stripes: StripeStatus[] = []
  const summary = emptySummary()
  for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
    const record = await components.holdings.placement(manifest, index)
    const shards: ShardStatus[] = []
    const seen: ShardHolders[] = []
    for (let i = 0; i < mroot.k + mroot.m; i++) {
      const cid = shardCID(stripe, mroot.k, i)
      let holders = cid === undefined ? [] : view.holders(index, i)
      if (pending && cid !== undefined && !holders.includes(self) && await components.blockstore.has(cid)) holders = [...holders, self]
      seen.push(cid === undefined ? undefined : holders)
      const s: ShardStatus = { index: i, holders }
      if (cid !== undefined) s.cid = cid.toString()
      if (record !== undefined) s.placed = record.holders[i]
      shards.push(s)
    }
    const { health, live } = assessStripe(mroot.k, mroot.m, seen, zoneOf)
    countHealth(summary, health)
    const st: StripeStatus = { index, health, live, shards }
    if (record !== undefined) st.why = record.why
    stripes.push(st)
  }
  const status: PinStatus = { root: root.toString(), policy, state: 'healthy', manifest: pin.manifest, k: mroot.k, m: mroot.m, stripes, summary, peersAsked: view.asked }
  if (pending) status.pending = true
  status.state = filePinState(status)
  return status
}
