/**
 * Who holds which shard of a manifest right now: asked of every connected
 * peer (`holdings`) plus this node's own table; when that leaves a shard
 * without a holder, also of the file root's DHT providers this node is not
 * connected to (./holder-search.ts). Reads, `pin status`, scrub and repair
 * all start from such a view.
 *
 * @module
 */
import { holdingsStripes, MAX_SHARD_INDEX } from '../../protocol/shards.js'
import { CID } from 'multiformats/cid'
import { loadManifestRoot, readLastStripe } from './stripes.js'
import type { HeldShard, Holdings } from './holdings.js'
import type { HolderSearch } from './holder-search.js'
import type { ShardsNetwork } from './network.js'
import type { BlockStore } from '../blocks/index.js'
import type { BlockReader } from '../reads/api.js'
import type { Logger } from '../logger.js'

/** Shard holders of one manifest. */
export class HolderView {
  /** `${stripe}:${shard}` → peers holding it (live ones: the view only asks live peers). */
  private readonly map = new Map<string, string[]>()
  /** Peers that answered (this node first). */
  readonly asked: string[] = []
  /** Peers that answered but are not connected to this node: found through the DHT and dialled. */
  readonly reached: string[] = []

  /** Whether `peer` answered this view: it was live when the view was taken, connected or not. */
  answered (peer: string): boolean {
    return this.asked.includes(peer)
  }

  /** Peers holding one shard. */
  holders (stripe: number, shard: number): string[] {
    return this.map.get(`${stripe}:${shard}`) ?? []
  }

  /** Add what `other` saw (holders and the peers that answered) to this view. */
  merge (other: HolderView): void {
    for (const [key, peers] of other.map) {
      const list = this.map.get(key)
      if (list === undefined) this.map.set(key, [...peers])
      else for (const peer of peers) if (!list.includes(peer)) list.push(peer)
    }
    for (const peer of other.asked) if (!this.asked.includes(peer)) this.asked.push(peer)
    for (const peer of other.reached) if (!this.reached.includes(peer)) this.reached.push(peer)
  }

  /** Record that `peer` holds a shard. */
  add (stripe: number, shard: number, peer: string): void {
    const key = `${stripe}:${shard}`
    const list = this.map.get(key)
    if (list === undefined) this.map.set(key, [peer])
    else if (!list.includes(peer)) list.push(peer)
  }
}

/** How many stripes a manifest has, and how many shards each (k + m). */
export interface ManifestShape {
  stripes: number
  width: number
}

/** What {@link gatherView} needs. */
export interface ViewComponents {
  network: ShardsNetwork
  holdings: Holdings
  blockstore: BlockStore
  logger: Logger
  /** Finds and dials holders this node is not connected to; absent: only connected peers are asked. */
  search?: HolderSearch
  /** Where the manifest is read from (its file root and last stripe), for the search. */
  blocks?: Pick<BlockReader, 'getter'>
}

/** Which peers {@link gatherView} asks. */
export interface GatherOptions {
  /** Ask only these peers (those of them connected now) instead of every connected peer. */
  peers?: Iterable<string>
  /**
   * Shards per stripe of the manifest (k + m): each `holdings` request asks
   * as many stripes as a whole answer can name ({@link holdingsStripes}).
   * @default 24, the widest code
   */
  width?: number
  /**
   * When the connected peers leave too few shards seen, the DHT providers of
   * the file root are searched (see {@link gatherView}); "too few" is, by
   * default, any shard the manifest stores without a holder (repair, pin
   * status and scrub must not take a shard seen nowhere for lost). A read
   * gives `'readable'`: it searches only when some stripe has fewer than k
   * shards seen, so that it could not be read; a stripe it can read from the
   * shards it sees is read at once (a leaf whose holder is not seen is
   * fetched through its providers or rebuilt), not after a DHT query.
   */
  searchWhen?: 'a-shard-unseen' | 'a-stripe-unreadable'
  signal?: AbortSignal
}

/**
 * Ask every connected peer (or those of `options.peers`) and this node
 * which shards of `manifest` (with `stripes` stripes) they hold, a page of
 * stripes whose whole answer fits one message at a time. Peers that fail
 * to answer are left out. Without `options.peers`, when a shard the
 * manifest stores has no holder among them, the providers of the file root
 * this node is not connected to are found in the DHT, dialled and asked too
 * (bounded: see {@link HolderSearch}).
 */
export async function gatherView (components: ViewComponents, manifest: CID, stripes: number, options: GatherOptions = {}): Promise<HolderView> {
  const { network, holdings, blockstore, search } = components
  const { signal } = options
  const page = holdingsStripes(options.width ?? MAX_SHARD_INDEX + 1)
  const view = new HolderView()
  for await (const held of presentShards(holdings, blockstore, manifest)) view.add(held.stripe, held.shard, network.self)
  view.asked.push(network.self)
  const ask = async (peer: string, signal?: AbortSignal): Promise<void> => {
    for (let from = 0; from < Math.max(stripes, 1); from += page) {
      const answer = await network.request(peer, { v: 1, type: 'holdings', manifest, from, count: page }, signal)
      if (answer.type !== 'holdings') throw new Error(`answered holdings with ${answer.type}`)
      for (const [stripe, shard] of answer.shards) view.add(stripe, shard, peer)
    }
    view.asked.push(peer)
  }
  const peers = options.peers === undefined
    ? network.connected()
    : [...new Set(options.peers)].filter(p => p !== network.self && network.downSince(p) === undefined)
  await Promise.all(peers.map(async peer => {
    try {
      await ask(peer, signal)
    } catch (err: any) {
      components.logger.debug({ peer, err: err?.message }, 'holdings not answered')
    }
  }))
  // alone (no connected peer) there is nobody to ask for the providers: the query would only time out
  if (options.peers === undefined && peers.length > 0 && search?.canFind === true && components.blocks !== undefined) {
    try {
      await searchHolders({ search, blocks: components.blocks, logger: components.logger }, { manifest, view, exclude: peers, ask, signal, readable: options.searchWhen === 'a-stripe-unreadable' })
    } catch (err: any) {
      // as a peer that has not answered by then: a read's deadline cuts the search, the view is what was found
      components.logger.debug({ manifest: manifest.toString(), err: err?.message }, 'holder search cut')
    }
  }
  return view
}

/**
 * When `view` leaves a shard of `manifest` without a holder, ask the file
 * root's DHT providers not asked yet (`exclude`: peers asked already,
 * answered or not), and mark those that answer as reached.
 */
async function searchHolders (components: { search: HolderSearch, blocks: Pick<BlockReader, 'getter'>, logger: Logger }, at: { manifest: CID, view: HolderView, exclude: string[], ask: (peer: string, signal?: AbortSignal) => Promise<void>, signal?: AbortSignal, readable: boolean }): Promise<void> {
  const { search, blocks } = components
  const { manifest, view, signal } = at
  let root: CID
  try {
    const getter = blocks.getter({ signal })
    const mroot = await loadManifestRoot(getter, manifest, signal)
    const last = await readLastStripe(getter, mroot, signal)
    if (!lacksHolders(view, { k: mroot.k, m: mroot.m, stripes: mroot.stripes, lastLeaves: last.data.length, readable: at.readable })) return
    root = mroot.root
  } catch (err: any) {
    if (signal?.aborted === true) throw err
    components.logger.debug({ manifest: manifest.toString(), err: err?.message }, 'manifest not read: no holder search')
    return
  }
  const exclude = new Set([...at.exclude, ...view.asked])
  // a read that cannot read a stripe asks the DHT afresh: a holder announced since the last query must be found
  const found = await search.providers(root, { exclude, signal, fresh: at.readable })
  const reached = await search.reach(found, at.ask, signal)
  view.reached.push(...reached)
}

/**
 * Whether some stripe lacks holders in `view`: with `readable`, fewer shards
 * seen than it has data shards stored (with the zero shards of a short last
 * stripe, which stores `lastLeaves` data shards, it could not be read from
 * what the view sees); else any stored shard seen nowhere.
 */
function lacksHolders (view: HolderView, of: { k: number, m: number, stripes: number, lastLeaves: number, readable: boolean }): boolean {
  const { k, m, stripes, lastLeaves, readable } = of
  for (let s = 0; s < stripes; s++) {
    const data = s === stripes - 1 ? lastLeaves : k
    let seen = 0
    for (let i = 0; i < k + m; i++) {
      if (i < k && i >= data) continue
      if (view.holders(s, i).length > 0) seen++
    }
    if (seen < data + (readable ? 0 : m)) return true
  }
  return false
}

/**
 * The shards of `manifest` recorded as held here, in stripes [from, from +
 * count), that the block store still has (what this node answers `holdings` with).
 */
export async function * presentShards (holdings: Holdings, blockstore: BlockStore, manifest: CID, from?: number, count?: number): AsyncGenerator<HeldShard> {
  for await (const held of holdings.held(manifest, from, count)) {
    if (await blockstore.has(CID.parse(held.cid))) yield held
  }
}
