/**
 * Who holds which shard of a manifest right now: asked of every connected
 * peer (`holdings`) plus this node's own table. Reads, `pin status` and
 * repair all start from such a view.
 *
 * @module
 */
import { holdingsStripes, MAX_SHARD_INDEX } from '../../protocol/shards.js'
import { CID } from 'multiformats/cid'
import type { HeldShard, Holdings } from './holdings.js'
import type { ShardsNetwork } from './network.js'
import type { BlockStore } from '../blocks/index.js'
import type { Logger } from '../logger.js'

/** Shard holders of one manifest. */
export class HolderView {
  /** `${stripe}:${shard}` → peers holding it (live ones: the view only asks live peers). */
  private readonly map = new Map<string, string[]>()
  /** Peers that answered. */
  readonly asked: string[] = []

  /** Peers holding one shard. */
  holders (stripe: number, shard: number): string[] {
    return this.map.get(`${stripe}:${shard}`) ?? []
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
  signal?: AbortSignal
}

/**
 * Ask every connected peer (or those of `options.peers`) and this node
 * which shards of `manifest` (with `stripes` stripes) they hold, a page of
 * stripes whose whole answer fits one message at a time. Peers that fail
 * to answer are left out.
 */
export async function gatherView (components: ViewComponents, manifest: CID, stripes: number, options: GatherOptions = {}): Promise<HolderView> {
  const { network, holdings, blockstore } = components
  const { signal } = options
  const page = holdingsStripes(options.width ?? MAX_SHARD_INDEX + 1)
  const view = new HolderView()
  for await (const held of presentShards(holdings, blockstore, manifest)) view.add(held.stripe, held.shard, network.self)
  view.asked.push(network.self)
  const peers = options.peers === undefined
    ? network.connected()
    : [...new Set(options.peers)].filter(p => p !== network.self && network.downSince(p) === undefined)
  await Promise.all(peers.map(async peer => {
    try {
      for (let from = 0; from < Math.max(stripes, 1); from += page) {
        const answer = await network.request(peer, { v: 1, type: 'holdings', manifest, from, count: page }, signal)
        if (answer.type !== 'holdings') throw new Error(`answered holdings with ${answer.type}`)
        for (const [stripe, shard] of answer.shards) view.add(stripe, shard, peer)
      }
      view.asked.push(peer)
    } catch (err: any) {
      components.logger.debug({ peer, err: err?.message }, 'holdings not answered')
    }
  }))
  return view
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
