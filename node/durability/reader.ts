/**
 * Reads of a striped file: leaves are fetched from the peers that hold them
 * (healthy reads need no decoding); a leaf no live peer can give is rebuilt
 * with its whole stripe from any k shards, fetched in parallel, and the
 * rebuilt leaves are kept in the local store for the rest of the read.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { blockKey } from '../blocks/index.js'
import { StripeUnavailableError } from '../errors.js'
import { loadManifestRoot, readStripes, rebuildStripe, shardCID } from './stripes.js'
import { metaGetter } from './meta-getter.js'
import { gatherView, type HolderView, type ViewComponents } from './view.js'
import type { Stripe, ManifestRoot } from '../../protocol/durability.js'
import type { BlockExchange, BlockSession } from '../exchange/index.js'
import type { ErasureCoder } from './erasure.js'
import type { PeerId } from '@libp2p/interface'

/** What a striped read needs. */
export interface StripedReadComponents extends ViewComponents {
  exchange: BlockExchange
  coder: () => Promise<ErasureCoder>
}

/** Errors after which a leaf is rebuilt instead of fetched. */
const UNAVAILABLE = new Set(['BlockUnavailableError', 'RequestTimeoutError', 'PeerUnavailableError', 'NotFoundError'])

/**
 * A block getter for the file under `root` whose stripes `manifest`
 * describes: the exchange session, routed to shard holders, with a
 * rebuild from k shards as the fallback for leaves.
 */
export function stripedGetter (components: StripedReadComponents, root: CID, manifest: CID, signal?: AbortSignal): BlockSession {
  // the manifest, the holders and leaf → stripe: learned once, before the
  // first block this node does not hold (then every leaf goes straight to a
  // peer that holds it, instead of to whichever provider of the file is least
  // busy, which holds only some of its leaves)
  let loading: Promise<StripeIndex> | undefined
  let unroutable = false
  let loaded: StripeIndex | undefined
  const load = async (): Promise<StripeIndex> => {
    loading ??= buildIndex(components, manifest, signal).then(index => { loaded = index; return index })
    loading.catch(() => { loading = undefined })
    return await loading
  }
  const holdersOf = (where: LeafPlace, index: StripeIndex): PeerId[] =>
    index.view.holders(where.index, where.shard).filter(p => p !== components.network.self).map(p => peerIdFromString(p))
  // asked after a local miss only: the index is learned before the first block fetched
  const route = async (cid: CID): Promise<PeerId[] | undefined> => {
    // without an index the read still works, unrouted (and rebuilds when it must)
    if (loaded === undefined && !unroutable) await load().catch(() => { unroutable = true })
    const where = loaded?.leaves.get(blockKey(cid))
    return where === undefined || loaded === undefined ? undefined : holdersOf(where, loaded)
  }
  const session = components.exchange.session(root, { signal, route })
  const rebuilding = new Map<number, Promise<Uint8Array[]>>()

  return {
    getBytes: async (cid, opts) => {
      try {
        return await session.getBytes(cid, opts)
      } catch (err: any) {
        if (!UNAVAILABLE.has(err?.name)) throw err
        const index = await load()
        const where = index.leaves.get(blockKey(cid))
        if (where === undefined) throw err
        // a fetch routed to the holders may succeed now that they are known
        const peers = holdersOf(where, index)
        if (peers.length > 0) {
          try { return await components.exchange.getBlock(cid, { providers: peers, signal: opts?.signal ?? signal }) } catch {}
        }
        let data = rebuilding.get(where.index)
        if (data === undefined) {
          data = rebuildFrom(components, index.mroot, where.index, where.stripe, index.view, opts?.signal ?? signal)
          rebuilding.set(where.index, data)
          data.catch(() => { rebuilding.delete(where.index) })
        }
        return (await data)[where.shard]
      }
    },
    has: session.has,
    providers: session.providers
  }
}

/** Where a leaf is: its stripe and its data shard index. */
interface LeafPlace { index: number, stripe: Stripe, shard: number }

/** What a striped read learns before its first fetch. */
interface StripeIndex { mroot: ManifestRoot, view: HolderView, leaves: Map<string, LeafPlace> }

async function buildIndex (components: StripedReadComponents, manifest: CID, signal?: AbortSignal): Promise<StripeIndex> {
  const getter = metaGetter(components.exchange, signal)
  const mroot = await loadManifestRoot(getter, manifest, signal)
  const leaves = new Map<string, LeafPlace>()
  for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
    stripe.data.forEach((cid, shard) => { leaves.set(blockKey(cid), { index, stripe, shard }) })
  }
  const view = await gatherView(components, manifest, mroot.stripes, signal)
  return { mroot, view, leaves }
}

/** Fetch any k shards of a stripe in parallel, rebuild its data leaves, keep them here. */
async function rebuildFrom (components: StripedReadComponents, mroot: ManifestRoot, index: number, stripe: Stripe, view: HolderView, signal?: AbortSignal): Promise<Uint8Array[]> {
  const { k, m } = mroot
  const shards = new Map<number, Uint8Array>()
  const candidates: number[] = []
  for (let i = 0; i < k + m; i++) {
    if (shardCID(stripe, k, i) === undefined) continue
    if (view.holders(index, i).length > 0) candidates.push(i)
  }
  // a short last stripe's missing data shards are known zeros: only its stored leaves count
  const needed = stripe.data.length
  // data shards first (they are leaves: no decoding when all are there), then parity
  candidates.sort((a, b) => a - b)
  let next = 0
  const fetchOne = async (): Promise<void> => {
    while (shards.size < needed && next < candidates.length) {
      const i = candidates[next++]
      const cid = shardCID(stripe, k, i) as CID
      const providers = view.holders(index, i).filter(p => p !== components.network.self).map(p => peerIdFromString(p))
      try {
        shards.set(i, await components.exchange.getBlock(cid, { providers: providers.length > 0 ? providers : undefined, signal }))
      } catch {}
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, needed) }, fetchOne))
  if (shards.size < needed) throw new StripeUnavailableError(`stripe ${index} of ${mroot.root.toString()}: only ${shards.size} of ${k} shards reachable`)
  const data = rebuildStripe(stripe, k, m, shards, await components.coder())
  // the leaves rebuilt, not those fetched or held here (stored already)
  for (let i = 0; i < stripe.data.length; i++) if (!shards.has(i)) await components.blockstore.put(stripe.data[i], data[i])
  return data
}

