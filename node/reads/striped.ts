/**
 * Reads of a striped file: every leaf of a coded file is a data shard, held
 * by the peer its stripe placed it on, so a read asks the k data-shard
 * holders of a stripe at once, several stripes ahead of the reader.
 *
 * - **Parallel.** The first leaf this node does not hold loads the manifest
 *   and asks every connected peer which shards it holds (one view per read).
 *   Once the reader has had a stripe's worth of leaves, each leaf delivered
 *   starts the fetch of every data leaf of the next
 *   {@link StripedReadOptions.window} stripes, each from its own holder: k
 *   peers serve at once, and a sequential reader (`cat`, FUSE, CAR export)
 *   finds its next leaves in flight or arrived. This node's own shards are
 *   read from its store.
 * - **Hedged.** A leaf that takes longer than a few times the latency
 *   observed so far (at least {@link MIN_HEDGE_MS}, counted from when the
 *   index is known) starts a rebuild of its stripe from the other shards,
 *   parity included; whichever answers first wins. A stalled holder delays a
 *   read by the hedge, not by the exchange's request timeout.
 * - **Degraded.** A leaf no live peer can give (holder gone, `dont-have`,
 *   corrupt bytes) is rebuilt with its whole stripe from any k shards fetched
 *   in parallel; the rebuilt stripe is kept in memory, so the rest of it is
 *   not rebuilt again.
 * - **Nothing left behind** (unless `cache`): leaves fetched and parity
 *   fetched for a rebuild are not stored; a rebuilt leaf is stored only in
 *   place of a corrupt local copy. The manifest blocks the read loads are
 *   kept (a few KiB per file).
 *
 * Memory: the leaves of at most `window` stripes ahead of the reader (leaves
 * of stripes it moved past are dropped), the leaves it fetched of the
 * stripes it has not wholly read (for a rebuild to take; at most
 * `2 × (window + 2)` stripes), and the last `window + 2` rebuilt stripes.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { blockKey } from '../blocks/index.js'
import { AbortedError, StripeUnavailableError } from '../errors.js'
import { raceAbort } from '../abort.js'
import { localState, replaceCorrupt } from './local-state.js'
import { loadManifestRoot, readStripes, shardCID } from '../durability/stripes.js'
import type { Stripe, ManifestRoot } from '../../protocol/durability.js'
import type { BlockExchange } from '../exchange/index.js'
import type { BlockStore } from '../blocks/index.js'
import type { HolderView, ManifestShape } from '../durability/view.js'
import type { BlockGetter, BlockOrigin } from './api.js'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** What a striped read needs to know of shard holders and the code. */
export interface StripeSources {
  /** Which live peers (this node included) hold which shards of `manifest`; peers that have not answered when `signal` aborts are left out (a read waits {@link HOLDINGS_WAIT_MS} at most). */
  holders: (manifest: CID, shape: ManifestShape, signal?: AbortSignal) => Promise<HolderView>
  /**
   * The data leaves of a stripe from any k of its shards (index → bytes),
   * the missing ones rebuilt and checked against their CIDs. The shards given
   * are checked already (the block store's and the exchange's blocks).
   */
  rebuild: (stripe: Stripe, k: number, m: number, shards: Map<number, Uint8Array>) => Promise<Uint8Array[]>
  /** This node's peer id (never asked for a shard over the network). */
  self: string
}

/** What {@link stripedSession} is built from. */
export interface StripedReadComponents {
  blockstore: BlockStore
  exchange: BlockExchange
  stripes: StripeSources
}

/** Options of {@link stripedSession}. */
export interface StripedReadOptions {
  signal?: AbortSignal
  /** Told of every block delivered, with where it came from. */
  onBlock?: (cid: CID, bytes: Uint8Array, from: BlockOrigin) => void
  /** Stripes fetched ahead of the one being read. @default {@link READ_AHEAD_STRIPES} */
  window?: number
  /** Least wait before a slow leaf's stripe is rebuilt from other shards. @default {@link MIN_HEDGE_MS} */
  minHedgeMs?: number
  /**
   * Keep the leaves fetched or rebuilt here. Off, only this node's own
   * shards and replacements of corrupt copies are stored: the file's holders
   * keep it, and a read leaves no full copy behind. @default false
   */
  cache?: boolean
}

/** Stripes fetched ahead of the reader: with 1 MiB leaves and k = 4, 8 MiB. */
export const READ_AHEAD_STRIPES = 2
/** A leaf is hedged after this many times the mean latency of leaf fetches so far… */
const HEDGE_FACTOR = 4
/** …but never sooner than this. */
export const MIN_HEDGE_MS = 1000

/**
 * Longest wait for the peers' answers to which shards they hold (the read's
 * view). A peer that has not answered by then is left out: its leaves are
 * rebuilt from the other shards, as a stalled holder's leaf is hedged.
 * Without it, one connected peer that stalled (a hung disk, a frozen
 * process) held every striped read up for the shards protocol's 30 s
 * request timeout before its first leaf was asked for.
 */
export const HOLDINGS_WAIT_MS = 5_000

/** Longest wait for the view asked again when a stripe could not be rebuilt from the first (see `freshView`). */
const REFRESH_WAIT_MS = 3 * HOLDINGS_WAIT_MS

/** Leaves asked for by the reader itself that a read remembers, at most (see `requested`). */
const MAX_REQUESTED = 256
/** Stripes whose fetched leaves a read keeps for rebuilds, at most, per stripe of its window and two more. */
const MAX_KEPT_STRIPES_PER_WINDOW = 2

/** Errors after which a leaf is rebuilt instead of fetched. */
const UNAVAILABLE = new Set(['BlockUnavailableError', 'RequestTimeoutError', 'PeerUnavailableError', 'NotFoundError'])
/** Errors of a local read that send it to the network: not here, or here but failing its check. */
const NOT_HERE = new Set(['NotFoundError', 'CorruptBlockError', 'InvalidBlockError'])
/** Origins noted and not yet delivered, at most (a bound on what `onBlock` bookkeeping keeps). */
const MAX_NOTED = 4096

/** Where a leaf is: its stripe and its data shard index. */
interface LeafPlace { index: number, stripe: Stripe, shard: number }

/** What a striped read learns before its first fetch. */
interface StripeIndex { mroot: ManifestRoot, view: HolderView, leaves: Map<string, LeafPlace>, stripes: Stripe[] }

/**
 * A getter for the file under `root` whose stripes `manifest` describes:
 * local first, then the data-shard holders (parallel, windowed, hedged),
 * then a rebuild from any k shards.
 */
export function stripedSession (components: StripedReadComponents, root: CID, manifest: CID, options: StripedReadOptions = {}): BlockGetter {
  const { exchange, stripes: sources } = components
  const { signal } = options
  const window = options.window ?? READ_AHEAD_STRIPES
  const minHedgeMs = options.minHedgeMs ?? MIN_HEDGE_MS

  // the manifest, the holders and leaf → stripe: learned once, before the
  // first block this node does not hold
  let loading: Promise<StripeIndex> | undefined
  let unroutable = false
  let loaded: StripeIndex | undefined
  let indexKnown: () => void = () => {}
  /** Resolves once the index is loaded (the hedge clock starts then: its load is not a leaf's latency). */
  const indexReady = new Promise<void>(resolve => { indexKnown = resolve })
  const load = async (): Promise<StripeIndex> => {
    loading ??= buildIndex(components, manifest, signal).then(index => { loaded = index; indexKnown(); return index })
    loading.catch(() => { loading = undefined })
    return await loading
  }
  const holdersOf = (where: LeafPlace, index: StripeIndex): PeerId[] =>
    index.view.holders(where.index, where.shard).filter(p => p !== sources.self).map(p => peerIdFromString(p))
  // asked after a local miss only
  const route = async (cid: CID): Promise<PeerId[] | undefined> => {
    // without an index the read still works, unrouted (and rebuilds when it must)
    if (loaded === undefined && !unroutable) await load().catch(() => { unroutable = true })
    const where = loaded?.leaves.get(blockKey(cid))
    return where === undefined || loaded === undefined ? undefined : holdersOf(where, loaded)
  }
  // where each block came from, told to `onBlock` once, when the reader gets it
  const origins = new Map<string, BlockOrigin>()
  const noteOrigin = options.onBlock === undefined
    ? undefined
    : (cid: CID, _bytes: Uint8Array, from: BlockOrigin): void => {
        // leaves noted but never asked for (a hedge's loser, a stripe's other rebuilt leaves) are forgotten
        if (origins.size >= MAX_NOTED) origins.clear()
        origins.set(blockKey(cid), from)
      }
  const delivered = (cid: CID, bytes: Uint8Array): Uint8Array => {
    if (options.onBlock === undefined) return bytes
    const key = blockKey(cid)
    options.onBlock(cid, bytes, origins.get(key) ?? 'peer')
    origins.delete(key)
    return bytes
  }
  const cache = options.cache ?? false
  // a leaf's holders are the only peers that keep it: when they fail it is rebuilt at once (below), not asked of the root's providers
  const session = exchange.session(root, { signal, route, routedOnly: true, onBlock: noteOrigin, store: cache })
  /** The root's providers, asked only once a leaf could be neither fetched from its holders nor rebuilt (a node may keep the whole file). */
  let wide: ReturnType<typeof exchange.session> | undefined

  /**
   * Leaves this read fetched, by stripe and shard, kept until the reader has
   * had every leaf of their stripe: a rebuild of the stripe takes them
   * instead of fetching them again (a leaf fetched, then found missing a
   * sibling, would otherwise cross the network twice), with the shards of
   * it the reader had. The stripes kept span the lowest one the reader
   * waits on to the last fetched ahead, at least `window + 1` and at most
   * `2 × (window + 2)`: past that, the stripe furthest from the lowest one
   * the reader waits on goes, ahead of it before behind it at the same
   * distance (the reader waits on the nearest ones, and those are the ones
   * a rebuild holds it up for; a seek leaves the old ones furthest).
   */
  const kept = new Map<number, { leaves: Map<number, Uint8Array>, had: Set<number> }>()
  /**
   * Leaves the reader is waiting for, by block key. The reader asks for
   * several leaves at once and they arrive out of order, so the stripe of
   * the last leaf it had can be past one it still waits on: what is kept
   * for the reader is decided from the lowest stripe it waits on.
   */
  const waitingOn = new Map<string, number>()
  /** The lowest stripe the reader waits on, else `at` (the stripe of the leaf it just had). */
  const readerAt = (at: number): number => {
    let lowest = at
    // by block key: a leaf asked for before the index was known is placed now
    for (const key of waitingOn.keys()) {
      const stripe = loaded?.leaves.get(key)?.index
      if (stripe !== undefined) lowest = Math.min(lowest, stripe)
    }
    return lowest
  }
  /** The lowest stripe the reader waited on when it last had a leaf (set by `read`, which the read-ahead follows). */
  let readAt = 0
  const remember = (where: LeafPlace, bytes: Uint8Array): void => {
    let stripe = kept.get(where.index)
    if (stripe === undefined) {
      // a late answer (a hedge's loser) for a stripe the reader is past is not kept
      if (where.index < readAt) return
      stripe = { leaves: new Map(), had: new Set() }
      kept.set(where.index, stripe)
      if (kept.size > Math.min(MAX_KEPT_STRIPES_PER_WINDOW * (window + 2), Math.max(window + 1, aheadTo - readAt + 2))) {
        const distance = (s: number): number => Math.abs(s - readAt)
        let furthest = where.index
        for (const s of kept.keys()) if (distance(s) > distance(furthest) || (distance(s) === distance(furthest) && s > furthest)) furthest = s
        kept.delete(furthest)
      }
    }
    stripe.leaves.set(where.shard, bytes)
  }
  /** The reader had a leaf: once it had all of its stripe's, that stripe will not be rebuilt for it. */
  const read = (where: LeafPlace): void => {
    readAt = readerAt(where.index)
    const stripe = kept.get(where.index)
    if (stripe === undefined) return
    stripe.had.add(where.shard)
    if (stripe.had.size >= where.stripe.data.length) kept.delete(where.index)
  }

  /** Stripes rebuilt lately, by index: their other leaves are served from memory. */
  const rebuilt = new Map<number, Uint8Array[]>()
  /** Rebuilds under way, per stripe. */
  const rebuilding = new Map<number, { skip?: number, data: Promise<Uint8Array[]> }>()
  /** `refresh`: a stripe the view leaves short asks for the view again ({@link freshView}); a hedge does not (it leaves out a shard that is only late). */
  const rebuild = async (where: LeafPlace, index: StripeIndex, skip?: number, refresh = true): Promise<Uint8Array> => {
    // one rebuild a stripe at a time: whichever shard it left out, it gives every data leaf (two leaves lost
    // in one stripe, each with its own rebuild, fetched its parity and decoded it twice)
    const key = where.index
    // rebuilt lately (another of its leaves was lost before this one): no second rebuild
    const done = rebuilt.get(key)
    if (done !== undefined) return done[where.shard]
    // one that leaves out another shard is not this one's (a hedge's leaves out a late leaf that may be the one missing here)
    const running = rebuilding.get(key)
    let data = running !== undefined && (running.skip === undefined || running.skip === skip) ? running.data : undefined
    if (data === undefined) {
      const fetchingLeaf = (shard: number): Promise<Uint8Array> | undefined => {
        const cid = where.stripe.data[shard]
        return cid === undefined ? undefined : fetching.get(blockKey(cid))
      }
      // what the first attempt fetched, taken by the one after the view is asked again (a loaded holder that answered the
      // view late held one shard: the stripe's other shards crossed the network twice)
      const fetched = new Map<number, Uint8Array>()
      const from = (view: HolderView): Promise<Uint8Array[]> =>
        rebuildFrom({ ...components, onBlock: noteOrigin, cache }, { mroot: index.mroot, index: where.index, stripe: where.stripe, view, skip, have: kept.get(where.index)?.leaves, fetched, fetching: fetchingLeaf, signal })
      const used = index.view
      data = from(used).catch(async (err: any) => {
        // too few shards in a view that may have missed holders: asked once more, then tried again
        if (!refresh || err?.name !== 'StripeUnavailableError' || signal?.aborted === true) throw err
        const fresh = await freshView(index)
        if (fresh === undefined || fresh === used) throw err
        return await from(fresh)
      })
      const entry = { skip, data }
      rebuilding.set(key, entry)
      data.then(leaves => {
        if (rebuilding.get(key) === entry) rebuilding.delete(key)
        rebuilt.set(where.index, leaves)
        // bounded: the stripes the reader may still ask for
        for (const old of rebuilt.keys()) if (rebuilt.size > window + 2) rebuilt.delete(old)
      }, () => { if (rebuilding.get(key) === entry) rebuilding.delete(key) })
    }
    return (await data)[where.shard]
  }

  /**
   * The read's view asked again, with the wider {@link REFRESH_WAIT_MS}
   * bound, once per read, and merged with the first (a holder that answered
   * it and is slow now is still one): it becomes the read's view. Undefined
   * when that fails. Why: a stripe with just k shards left cannot be rebuilt
   * from a view that missed one holder — one that answered after
   * {@link HOLDINGS_WAIT_MS} (a loaded machine, a busy disk) or one that took
   * a repaired shard since the read began — and the read failed though the
   * shards were there.
   */
  let refreshed: Promise<HolderView | undefined> | undefined
  const freshView = async (index: StripeIndex): Promise<HolderView | undefined> => {
    refreshed ??= viewWithin(components, { manifest, mroot: index.mroot, ms: REFRESH_WAIT_MS, signal }).then(view => {
      view.merge(index.view)
      index.view = view
      return view
    }, () => undefined)
    return await refreshed
  }

  // mean latency of leaf fetches (an exponential moving average), for the hedge
  let meanMs: number | undefined
  const hedgeMs = (): number => meanMs === undefined ? minHedgeMs : Math.max(minHedgeMs, HEDGE_FACTOR * meanMs)

  /** This node holds the leaf as its shard: the session's remote mode would skip the store. */
  const heldHere = (where: LeafPlace | undefined): boolean =>
    where !== undefined && loaded !== undefined && loaded.view.holders(where.index, where.shard).includes(sources.self)

  /** One attempt at a leaf: a stripe rebuilt lately, the local store when it should be here, else the session (local, then its holders). */
  const attemptLeaf = async (cid: CID, known: LeafPlace | undefined): Promise<Uint8Array> => {
    // the index being loaded (a block was missing): wait for it, so that an own shard is read here
    if (loaded === undefined && loading !== undefined) await loading.catch(() => {})
    const where = known ?? loaded?.leaves.get(blockKey(cid))
    const done = where === undefined ? undefined : rebuilt.get(where.index)?.[where.shard]
    if (done !== undefined) {
      noteOrigin?.(cid, done, 'rebuilt')
      return done
    }
    if (heldHere(where)) {
      try {
        const bytes = await components.blockstore.getBytes(cid, { signal })
        noteOrigin?.(cid, bytes, 'local')
        return bytes
      } catch (err: any) {
        if (!NOT_HERE.has(err?.name)) throw err
      }
      // gone or corrupt here: the exchange reads it again (noting a corrupt copy), then asks the other holders; it is ours to keep
      const peers = where !== undefined && loaded !== undefined ? holdersOf(where, loaded) : []
      return await exchange.getBlock(cid, { providers: peers, signal, store: true })
    }
    return await session.getBytes(cid, { signal })
  }

  /** Leaves being fetched (their first attempt), by block key: a rebuild of their stripe awaits them. */
  const fetching = new Map<string, Promise<Uint8Array>>()

  /** One leaf: hedged by a rebuild when late; rebuilt when unavailable. */
  const fetchLeaf = async (cid: CID, known: LeafPlace | undefined): Promise<Uint8Array> => {
    const attempt = attemptLeaf(cid, known)
    const key = blockKey(cid)
    fetching.set(key, attempt)
    const settled = (): void => { if (fetching.get(key) === attempt) fetching.delete(key) }
    attempt.then(settled, settled)
    // the clock starts once the index is known: a local read or the index's
    // own load is not a leaf fetch
    if (loaded === undefined) await Promise.race([attempt.then(() => {}, () => {}), indexReady])
    const started = Date.now()
    attempt.then(bytes => {
      const ms = Date.now() - started
      meanMs = meanMs === undefined ? ms : 0.8 * meanMs + 0.2 * ms
      const where = known ?? loaded?.leaves.get(blockKey(cid))
      if (where !== undefined) remember(where, bytes)
    }, () => {})
    let timer: NodeJS.Timeout | undefined
    const slow = new Promise<'slow'>(resolve => { timer = setTimeout(() => { resolve('slow') }, hedgeMs()) })
    try {
      const first = await Promise.race([attempt, slow])
      if (first !== 'slow') return first
    } catch (err: any) {
      if (!UNAVAILABLE.has(err?.name) || signal?.aborted === true) throw err
      const index = loaded ?? await load()
      const where = known ?? index.leaves.get(blockKey(cid))
      if (where === undefined) throw err
      return await fallback(cid, where, index, err)
    } finally {
      clearTimeout(timer)
    }
    // late: rebuild its stripe without it, and take whichever comes first
    const index = loaded
    const where = known ?? index?.leaves.get(blockKey(cid))
    if (where === undefined || index === undefined) return await attempt
    const hedge = rebuild(where, index, where.shard, false)
    hedge.catch(() => {})
    try {
      return await firstOf(attempt, hedge)
    } catch (err) {
      return await lastResort(cid, err instanceof Error ? err : new StripeUnavailableError(String(err)))
    }
  }

  /**
   * A leaf its session could not get: its holders (only when the session
   * could not learn them: it asked them otherwise), else a rebuild of its
   * stripe without its own shard, else the root's providers.
   */
  const fallback = async (cid: CID, where: LeafPlace, index: StripeIndex, cause: Error): Promise<Uint8Array> => {
    // the session asked the leaf's holders already, unless it could not learn them then
    const peers = unroutable ? holdersOf(where, index) : []
    if (peers.length > 0) {
      try { return await exchange.getBlock(cid, { providers: peers, signal, store: cache }) } catch (err) {
        if (signal?.aborted === true) throw err
      }
    }
    try {
      // without the leaf's own shard: its holders just failed to give it
      return await rebuild(where, index, where.shard)
    } catch (err) {
      return await lastResort(cid, err instanceof Error ? err : cause)
    }
  }

  /** Fewer than k shards reachable: a node that keeps the whole file (the root's providers) may still give the leaf; else `cause`. */
  const lastResort = async (cid: CID, cause: Error): Promise<Uint8Array> => {
    if (signal?.aborted === true) throw cause
    wide ??= exchange.session(root, { signal, onBlock: noteOrigin, store: cache })
    try { return await wide.getBytes(cid, { signal }) } catch {}
    throw cause
  }

  // leaves fetched ahead of the reader, by block key, and the stripes they belong to
  const ahead = new Map<string, { stripe: number, read: Promise<Uint8Array> }>()
  /**
   * Leaves the reader asked for itself before they were fetched ahead (its
   * own read-ahead can run past this one), by block key: never fetched
   * ahead as well. A fetch ahead of a leaf already fetched or
   * in flight crossed the network a second time whenever the two did not
   * overlap (a loaded machine spreads them apart). By key: a leaf asked for
   * before the index was known is placed in its stripe when it is.
   */
  const requested = new Set<string>()
  let aheadTo = -1
  let asked = 0
  const readAhead = (from: number, index: StripeIndex): void => {
    // a sequential reader only: one that has asked for a stripe's worth of
    // leaves (a small ranged read fetches nothing past its range)
    if (++asked < index.mroot.k) return
    // leaves of stripes the reader has moved past (below the lowest it waits on) are not kept
    for (const [key, leaf] of ahead) if (leaf.stripe < readAt) ahead.delete(key)
    // a key the index does not place (an inner node of the DAG) is never fetched ahead: not kept either
    for (const key of requested) if ((index.leaves.get(key)?.index ?? -1) < readAt) requested.delete(key)
    const last = Math.min(index.stripes.length - 1, from + window)
    for (let s = Math.max(aheadTo + 1, from + 1); s <= last; s++) {
      const stripe = index.stripes[s]
      stripe.data.forEach((cid, shard) => {
        const key = blockKey(cid)
        if (ahead.has(key) || requested.has(key)) return
        const read = fetchLeaf(cid, { index: s, stripe, shard })
        read.catch(() => {}) // surfaced when the reader asks for it
        ahead.set(key, { stripe: s, read })
      })
    }
    aheadTo = Math.max(aheadTo, last)
  }
  const after = (cid: CID, bytes: Uint8Array): Uint8Array => {
    // the index may have loaded while this leaf was fetched
    const where = loaded?.leaves.get(blockKey(cid))
    if (where !== undefined && loaded !== undefined) {
      // a leaf that arrived before the index was known is kept now
      remember(where, bytes)
      read(where)
      readAhead(where.index, loaded)
    }
    return delivered(cid, bytes)
  }

  return {
    getBytes: async (cid, opts) => {
      const key = blockKey(cid)
      const where = loaded?.leaves.get(key)
      waitingOn.set(key, (waitingOn.get(key) ?? 0) + 1)
      try {
        const pending = ahead.get(key)
        if (pending !== undefined) {
          ahead.delete(key)
          return after(cid, await raceAbort(pending.read, opts?.signal))
        }
        // bounded: a reader that seeks back and forth leaves keys of stripes it never reaches again
        if (requested.size >= MAX_REQUESTED) requested.clear()
        requested.add(key)
        return after(cid, await raceAbort(fetchLeaf(cid, where), opts?.signal))
      } finally {
        const n = (waitingOn.get(key) ?? 1) - 1
        if (n > 0) waitingOn.set(key, n)
        else waitingOn.delete(key)
      }
    }
  }
}

/** The first of two promises to fulfil; rejects only when both do (with the first's error). */
async function firstOf<T> (a: Promise<T>, b: Promise<T>): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    let failed = 0
    let first: unknown
    const fail = (err: unknown): void => {
      first ??= err
      if (++failed === 2) reject(first)
    }
    a.then(resolve, fail)
    b.then(resolve, fail)
  })
}

async function buildIndex (components: StripedReadComponents, manifest: CID, signal?: AbortSignal): Promise<StripeIndex> {
  const getter = manifestGetter(components.exchange, manifest, signal)
  const mroot = await loadManifestRoot(getter, manifest, signal)
  const leaves = new Map<string, LeafPlace>()
  const stripes: Stripe[] = []
  for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
    stripes[index] = stripe
    // a leaf repeated in the file (zero-filled regions) keeps its first place
    stripe.data.forEach((cid, shard) => { if (!leaves.has(blockKey(cid))) leaves.set(blockKey(cid), { index, stripe, shard }) })
  }
  const view = await viewWithin(components, { manifest, mroot, ms: HOLDINGS_WAIT_MS, signal })
  return { mroot, view, leaves, stripes }
}

/** The holders of `manifest`'s shards; peers that have not answered within `ms` are left out (their requests are aborted). */
async function viewWithin (components: StripedReadComponents, ask: { manifest: CID, mroot: ManifestRoot, ms: number, signal?: AbortSignal }): Promise<HolderView> {
  const { manifest, mroot, ms, signal } = ask
  const deadline = new AbortController()
  const timer = setTimeout(() => { deadline.abort() }, ms)
  try {
    return await components.stripes.holders(manifest, { stripes: mroot.stripes, width: mroot.k + mroot.m }, signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]))
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The manifest's blocks (its root, then its pages): local, else from the
 * providers of its root, looked up once for every page (a provider lookup
 * is a DHT query and a `have` to every connected peer); a page those
 * providers cannot give is looked up on its own. Kept here, as before.
 */
function manifestGetter (exchange: BlockExchange, manifest: CID, signal?: AbortSignal): BlockGetter {
  const session = exchange.session(manifest, { signal })
  return {
    getBytes: async (cid, o) => {
      const opts = { signal: o?.signal ?? signal }
      try {
        return await session.getBytes(cid, opts)
      } catch (err: any) {
        if (err?.name !== 'BlockUnavailableError' || cid.equals(manifest)) throw err
        return await exchange.getBlock(cid, opts)
      }
    }
  }
}

/** What {@link rebuildFrom} rebuilds, and from what. */
interface RebuildTarget {
  mroot: ManifestRoot
  /** The stripe's index in the file, and the stripe. */
  index: number
  stripe: Stripe
  view: HolderView
  /** A shard not to wait for (a slow leaf being hedged). */
  skip?: number
  /** Data leaves of the stripe the read holds already, by shard index (verified): taken, not fetched again. */
  have?: ReadonlyMap<number, Uint8Array>
  /**
   * A data leaf of the stripe the read is fetching already, by shard index:
   * its fetch is awaited, not made a second time (the holder would send it
   * twice: on a loaded machine a leaf is often still on its way when
   * another leaf of its stripe fails).
   */
  fetching?: (shard: number) => Promise<Uint8Array> | undefined
  /** Shards an earlier attempt at this rebuild fetched, by index (verified): taken, not fetched again; each shard this one fetches is added. */
  fetched?: Map<number, Uint8Array>
  signal?: AbortSignal
}

/**
 * Fetch any k shards of a stripe in parallel, after those `have` gives,
 * and rebuild its data leaves; a rebuilt leaf is stored when caching or
 * in place of a corrupt local copy. Returns as soon as enough shards
 * arrived: a straggler is not waited for.
 */
async function rebuildFrom (components: StripedReadComponents & { onBlock?: StripedReadOptions['onBlock'], cache: boolean }, target: RebuildTarget): Promise<Uint8Array[]> {
  const { mroot, index, stripe, view, skip, have, signal } = target
  const { k, m } = mroot
  const self = components.stripes.self
  const shards = new Map<number, Uint8Array>()
  for (const [i, bytes] of have ?? []) if (i !== skip && i < stripe.data.length) shards.set(i, bytes)
  for (const [i, bytes] of target.fetched ?? []) if (i !== skip) shards.set(i, bytes)
  const candidates: number[] = []
  for (let i = 0; i < k + m; i++) {
    if (i === skip || shards.has(i) || shardCID(stripe, k, i) === undefined) continue
    if (view.holders(index, i).length > 0) candidates.push(i)
  }
  // a short last stripe's missing data shards are known zeros: only its stored leaves count
  const needed = stripe.data.length
  // data shards first (they are leaves: no decoding when all are there), then parity
  candidates.sort((a, b) => a - b)
  let next = 0
  await new Promise<void>(resolve => {
    let running = 0
    const done = (): void => { if (shards.size >= needed || (running === 0 && next >= candidates.length)) resolve() }
    const fetchOne = async (): Promise<void> => {
      while (shards.size < needed && next < candidates.length) {
        const i = candidates[next++]
        const cid = shardCID(stripe, k, i) as CID
        const providers = view.holders(index, i).filter(p => p !== self).map(p => peerIdFromString(p))
        try {
          const bytes = await (target.fetching?.(i) ?? components.exchange.getBlock(cid, { providers: providers.length > 0 ? providers : undefined, signal, store: components.cache }))
          shards.set(i, bytes)
          target.fetched?.set(i, bytes)
        } catch {}
        if (signal?.aborted === true) next = candidates.length
        done()
      }
    }
    // as many fetches at once as shards are missing; one that fails hands its turn to the next candidate
    const workers = Math.min(Math.max(1, needed - shards.size), candidates.length)
    if (workers === 0) { resolve(); return }
    for (let w = 0; w < workers; w++) {
      running++
      void fetchOne().finally(() => { running--; done() })
    }
  })
  if (signal?.aborted === true) throw new AbortedError('read aborted')
  if (shards.size < needed) throw new StripeUnavailableError(`stripe ${index} of ${mroot.root.toString()}: only ${shards.size} of ${k} shards reachable`)
  const data = await components.stripes.rebuild(stripe, k, m, shards)
  // the leaves rebuilt (not those fetched or held here): stored when caching,
  // or in place of a corrupt copy
  for (let i = 0; i < stripe.data.length; i++) {
    if (shards.has(i)) continue
    const cid = stripe.data[i]
    components.onBlock?.(cid, data[i], 'rebuilt')
    const here = await localState(components.blockstore, cid)
    if (here === 'good') continue // stored meanwhile (a late fetch, a hedge's other half)
    if (here === 'corrupt') await replaceCorrupt(components.blockstore, cid, data[i])
    else if (components.cache) await components.blockstore.put(cid, data[i])
  }
  return data
}
