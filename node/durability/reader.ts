/**
 * Reads of a striped file: leaves are fetched from the peers that hold them
 * (healthy reads need no decoding); a leaf no live peer can give is rebuilt
 * with its whole stripe from any k shards, fetched in parallel, and the
 * rebuilt leaves are kept in the local store for the rest of the read.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { StripeUnavailableError } from '../errors.js'
import { loadManifestRoot, readManifest, rebuildStripe, shardCID } from './stripes.js'
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
  let state: Promise<{ mroot: ManifestRoot, view: HolderView, leaves: Map<string, { index: number, stripe: Stripe }> }> | undefined
  // the manifest, the holders and the leaf → stripe index: learned once, on the first miss
  const load = async (): Promise<{ mroot: ManifestRoot, view: HolderView, leaves: Map<string, { index: number, stripe: Stripe }> }> => {
    state ??= (async () => {
      const getter = { getBytes: async (cid: CID, o?: { signal?: AbortSignal }) => await components.exchange.getBlock(cid, { signal: o?.signal ?? signal }) }
      const mroot = await loadManifestRoot(getter, manifest, signal)
      const leaves = new Map<string, { index: number, stripe: Stripe }>()
      for await (const { index, stripe } of readManifest(getter, manifest, signal)) {
        for (const cid of stripe.data) leaves.set(keyOf(cid), { index, stripe })
      }
      const view = await gatherView(components, manifest, mroot.stripes, signal)
      return { mroot, view, leaves }
    })()
    state.catch(() => { state = undefined })
    return await state
  }
  let known: { view: HolderView, leaves: Map<string, { index: number, stripe: Stripe }>, k: number } | undefined
  const route = (cid: CID): PeerId[] | undefined => {
    if (known === undefined) return undefined
    const where = known.leaves.get(keyOf(cid))
    if (where === undefined) return undefined
    const shard = where.stripe.data.findIndex(c => c.multihash.bytes.length === cid.multihash.bytes.length && keyOf(c) === keyOf(cid))
    return known.view.holders(where.index, shard).filter(p => p !== components.network.self).map(p => peerIdFromString(p))
  }
  const session = components.exchange.session(root, { signal, route })
  const rebuilding = new Map<number, Promise<Uint8Array[]>>()

  const rebuild = async (cid: CID, opts?: { signal?: AbortSignal }): Promise<Uint8Array> => {
    const { mroot, view, leaves } = await load()
    const where = leaves.get(keyOf(cid))
    if (where === undefined) throw new StripeUnavailableError(`block ${cid.toString()} is not a leaf of manifest ${manifest.toString()} and no peer has it`)
    let data = rebuilding.get(where.index)
    if (data === undefined) {
      data = rebuildFrom(components, mroot, where.index, where.stripe, view, opts?.signal ?? signal)
      rebuilding.set(where.index, data)
      data.catch(() => { rebuilding.delete(where.index) })
    }
    const leavesOfStripe = await data
    const i = where.stripe.data.findIndex(c => keyOf(c) === keyOf(cid))
    return leavesOfStripe[i]
  }

  return {
    getBytes: async (cid, opts) => {
      if (known === undefined && state !== undefined) {
        const s = await state.catch(() => undefined)
        if (s !== undefined) known = { view: s.view, leaves: s.leaves, k: s.mroot.k }
      }
      try {
        return await session.getBytes(cid, opts)
      } catch (err: any) {
        if (!UNAVAILABLE.has(err?.name)) throw err
        const s = await load()
        known ??= { view: s.view, leaves: s.leaves, k: s.mroot.k }
        if (!s.leaves.has(keyOf(cid))) throw err
        // a routed fetch may succeed now that holders are known
        const peers = route(cid)
        if (peers !== undefined && peers.length > 0) {
          try { return await components.exchange.getBlock(cid, { providers: peers, signal: opts?.signal ?? signal }) } catch {}
        }
        return await rebuild(cid, opts)
      }
    },
    has: session.has,
    providers: session.providers
  }
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
  const real = [...Array(k + m).keys()].filter(i => shardCID(stripe, k, i) !== undefined).length
  const needed = k - (k + m - real)
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
  for (let i = 0; i < stripe.data.length; i++) await components.blockstore.put(stripe.data[i], data[i])
  return data
}

function keyOf (cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64')
}
