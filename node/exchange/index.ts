/**
 * Block exchange: fetch blocks from peers, serve ours, push blocks to peers,
 * and announce roots in the DHT. See docs/block-exchange.md.
 *
 * @module
 */
import { RecentKeys } from '../recent-keys.js'
import { AbortedError, InvalidArgumentError } from '../errors.js'
import { blockKey } from '../blocks/index.js'
import { IDENTITY, matchesCIDOffThread } from '../blocks/verify.js'
import { BLOCKS_PROTOCOL, MAX_HAVE, type BlockExchangeResponse } from '../../protocol/block-exchange.js'
import { PeerChannel, type ChannelStats } from './channel.js'
import { raceAbort } from '../abort.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { BlockUnavailableError, RemoteError, toError } from './errors.js'
import { PeerScores, SCORE, type PeerScoreInit } from './scores.js'
import { BlockServer, type ServerRates, type ServerStats } from './server.js'
import { REFUSE_PUTS, type PutPolicy } from './put-policy.js'
import { AnnounceQueue } from './announcer.js'
import type { BlockStore } from '../blocks/index.js'
import type { Logger } from '../logger.js'
import type { ShoalLibp2p } from '../net/host.js'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { BlockGetter } from '../reads/api.js'
import { replaceCorrupt } from '../reads/local-state.js'

export { BlockUnavailableError, PeerUnavailableError, RemoteError, RequestTimeoutError } from './errors.js'
export { PeerScores, SCORE, type PeerScoreInit } from './scores.js'
export { AnnounceQueue, type AnnounceQueueOptions } from './announcer.js'
export { ExpectedPuts, REFUSE_PUTS, type ExpectedPutsInit, type PutExpectations, type PutPolicy } from './put-policy.js'
export { PUT_REFUSED } from './server.js'

/** What the exchange needs from the node. */
export interface BlockExchangeComponents {
  libp2p: ShoalLibp2p
  blockstore: BlockStore
  logger: Logger
  /**
   * Which blocks peers may `put` here (the durability service's
   * {@link ExpectedPuts}). @default {@link REFUSE_PUTS}: every put is refused
   */
  putPolicy?: PutPolicy
}

/** Exchange settings. */
export interface BlockExchangeInit extends PeerScoreInit, Partial<ServerRates> {
  /**
   * Blocks requested but not yet read, per peer (as many as `readContent`
   * reads ahead, so that its bursts go out as one `want`). @default 16
   */
  window?: number
  /** How long a peer may take to answer one request. @default 15_000 ms */
  requestTimeoutMs?: number
  /** Bound on a DHT `findProviders` query. @default 10_000 ms */
  findProvidersTimeoutMs?: number
  /** Bound on asking connected peers whether they `have` a root. @default 3_000 ms */
  haveTimeoutMs?: number
  /**
   * A session whose providers all failed it looks for the root's providers
   * again (connected peers' `have`, then the DHT) when its last search began
   * at least this long ago and had found someone. @default {@link REDISCOVER_AFTER_MS}
   */
  rediscoverAfterMs?: number
  /** Bound on a DHT `provide`. @default 20_000 ms */
  announceTimeoutMs?: number
  /** Streams one peer may have open to our server. @default 4 */
  maxStreamsPerPeer?: number
  /** The clock of the server's rate limits (tests). @default Date.now */
  now?: () => number
}

/**
 * Default per-peer rates of the server (docs/limits.md): far above what one
 * busy reader asks for (a 1 GiB read is ~4,000 blocks, and one stream
 * carries ~460 MiB/s on this class of machine), yet bounded.
 */
export const DEFAULT_SERVER_RATES: ServerRates = {
  requestsPerSecond: 8192,
  requestBurst: 16_384,
  bytesPerSecond: 512 * 1024 * 1024,
  byteBurst: 128 * 1024 * 1024
}

/** Options of {@link BlockExchange.getBlock}. */
export interface ExchangeGetOptions {
  signal?: AbortSignal
  /** Ask these peers (in this order) instead of discovering providers. */
  providers?: PeerId[]
  /**
   * Keep a fetched block here (a cache the next garbage collection may
   * drop). A fetched block always replaces a local copy that failed its
   * check. @default true
   */
  store?: boolean
  /**
   * Told where the block came from: `local` (this node's store), `peer`
   * (this call fetched it over the network) or `joined` (it waited for a
   * fetch of the same block another caller had started: the bytes crossed
   * the network once, for that caller).
   */
  onSource?: (from: 'local' | 'peer' | 'joined') => void
}

/**
 * A fetch context for one DAG: providers of its root are found once.
 * `getBytes` answers from the local store, else from peers (the block is
 * then stored here), hash-checked.
 */
export interface BlockSession extends BlockGetter {
  /** True when the block is held locally (never asks the network). */
  has: (cid: CID, options?: { signal?: AbortSignal }) => Promise<boolean>
  /** The root's providers found so far. */
  providers: () => PeerId[]
}

/** Options of {@link BlockExchange.session}. */
export interface SessionOptions {
  signal?: AbortSignal
  /**
   * Peers known to hold a block (e.g. a stripe's shard holders), asked before
   * the root's providers; undefined or empty when unknown. Asked only for a
   * block that is not here, so it may do I/O (e.g. learn the holders once).
   */
  route?: (cid: CID) => PeerId[] | undefined | Promise<PeerId[] | undefined>
  /**
   * A block that `route` names holders of is asked of them only: when none
   * gives it, the fetch fails with `BlockUnavailableError` rather than going
   * on to the root's providers. For a striped file, whose leaves only their
   * shard holders keep: the reader rebuilds such a leaf from the stripe's
   * other shards at once instead of asking peers that answer `dont-have`.
   * @default false
   */
  routedOnly?: boolean
  /** Told of every block the session delivers: read here, or fetched from a peer. */
  onBlock?: (cid: CID, bytes: Uint8Array, from: 'local' | 'peer') => void
  /** Keep fetched blocks here (see {@link ExchangeGetOptions.store}). @default true */
  store?: boolean
  /**
   * With `store`: bytes of fetched raw leaves this session keeps at most;
   * a leaf that would go past it is served without being stored. Other blocks (a DAG's inner nodes: small,
   * and what a later read or seek walks first) are always kept.
   * @default Infinity
   */
  cacheBytes?: number
}

/** Counters, for tests and metrics. */
export interface BlockExchangeStats extends ChannelStats, ServerStats {
  /** Blocks fetched from peers (verified and stored). */
  blocksFetched: number
  /** Blocks peers sent that did not match their CID. */
  corruptBlocks: number
  /** Local copies that failed their check when read, fetched again from a peer. */
  corruptLocal: number
  /** Corrupt local copies replaced by a good one fetched from a peer. */
  replacedLocal: number
  /** Peers hung up on for misbehaving. */
  peersDisconnected: number
  /** Providers learned from DHT `findProviders`. */
  providersFromDht: number
  /** Providers learned by asking connected peers `have`. */
  providersFromPeers: number
  /**
   * Blocks a session that had stopped looking here (its DAG taken to be
   * remote) read from the local store after no peer gave them.
   */
  localFallbacks: number
  /**
   * Wants sent to a second (third…) provider because the first had not
   * answered within the hedge delay (a few times the usual answer's time).
   */
  hedgedWants: number
  /** Searches for a root's providers made again by a session whose providers had all failed it. */
  rediscoveries: number
  /** Blocks being fetched now (a gauge; 0 once every read has ended or been aborted). */
  fetchesPending: number
  /** Requests sent to peers and not yet answered, over every channel (a gauge). */
  requestsInFlight: number
  /** Peers this node keeps a request channel to (a gauge): those asked since they last connected. */
  peerChannels: number
}

/** Result of {@link BlockExchange.putBlocks}. */
export interface PutBlocksResult { blocks: number, bytes: number }

/** The block exchange service. */
export interface BlockExchange {
  /** Register the protocol handler. */
  start: () => Promise<void>
  /** Unregister it and close every stream. */
  stop: () => Promise<void>
  /**
   * One block: local first, else from `providers`, else from connected peers
   * that `have` it, else from DHT providers of `cid`. Hash-checked, stored.
   *
   * @throws {BlockUnavailableError} when no provider could supply it
   */
  getBlock: (cid: CID, options?: ExchangeGetOptions) => Promise<Uint8Array>
  /** A getter for the DAG under `root`, usable as `readContent`'s block store. */
  session: (root: CID, options?: SessionOptions) => BlockSession
  /** Provide `root` in the DHT (one record per root). Never throws. */
  announce: (root: CID, options?: { signal?: AbortSignal }) => Promise<void>
  /**
   * Queue `root` to be announced in the background (bounded, deduplicated:
   * see {@link AnnounceQueue}); for writers that must not wait for the DHT,
   * or start a query per small file. Never waits, never throws.
   */
  announceSoon: (root: CID) => void
  /**
   * Push blocks to `peer`, each verified and acked by it, at most `window`
   * unacknowledged. The peer stores only blocks it agreed to hold for this
   * node (a `hold` of the shards protocol first).
   *
   * @throws {RemoteError} when the peer refuses a block
   */
  putBlocks: (peer: PeerId, blocks: AsyncIterable<{ cid: CID, bytes: Uint8Array }> | Iterable<{ cid: CID, bytes: Uint8Array }>, options?: { signal?: AbortSignal }) => Promise<PutBlocksResult>
  /** A snapshot of the counters. */
  stats: () => BlockExchangeStats
  /**
   * Ask every connected peer (not banned) which of `cids` (the first
   * {@link MAX_HAVE}) it holds, one `have` request each, bounded in time;
   * peers that fail or time out are left out. Never throws.
   */
  askHave: (cids: CID[], options?: { signal?: AbortSignal }) => Promise<HaveSurvey>
}

/** What {@link BlockExchange.askHave} found: each answering peer's count, and the CIDs no answer held. */
export interface HaveSurvey {
  /** The peers that answered, by id. */
  peers: PeerHaves[]
  /** How many of the CIDs asked no answering peer holds (all asked when none answered). */
  heldByNone: number
}

/** One peer's answer to {@link BlockExchange.askHave}. */
export interface PeerHaves {
  peer: string
  /** How many of the CIDs asked it holds. */
  have: number
  /** How many CIDs it was asked about. */
  asked: number
}

/** Create the block exchange (call `start()` to serve). */
export function createBlockExchange (components: BlockExchangeComponents, init: BlockExchangeInit = {}): BlockExchange {
  return new DefaultBlockExchange(components, init)
}

/** Providers of one CID, growing while discovery runs. */
class ProviderSet {
  readonly peers: PeerId[] = []
  /** Connected peers asked whether they have the block that did not answer (timed out, failed). */
  silent = 0
  /** When the search began (`performance.now()`). */
  readonly startedAt = performance.now()
  private readonly keys = new Set<string>()
  done = false
  private waiters: Array<() => void> = []
  /** Set by discovery: begins its slower search (the DHT) unless it is too early; true once begun. */
  private search: (() => boolean) | undefined

  add (peer: PeerId): boolean {
    const key = peer.toString()
    if (this.keys.has(key)) return false
    this.keys.add(key)
    this.peers.push(peer)
    this.wake()
    return true
  }

  finish (): void {
    this.done = true
    this.wake()
  }

  /** Discovery's slower search, begun by {@link more}. */
  searchWith (search: () => boolean): void {
    this.search = search
  }

  /**
   * Providers beyond those known are wanted (every one known was asked, or
   * the one asked is slow): discovery's slower search begins, once; `done`
   * is false again until it ends.
   */
  more (): void {
    if (this.search?.() === true) this.search = undefined
  }

  /** Whether {@link more} could still begin a search. */
  get searchable (): boolean {
    return this.search !== undefined
  }

  /** Discovery goes on again (a search begun after it had finished). */
  reopen (): void {
    this.done = false
  }

  /** Resolves when a provider is added or discovery ends. */
  async changed (signal?: AbortSignal): Promise<void> {
    if (this.done) return
    await raceAbort(new Promise<void>(resolve => { this.waiters.push(resolve) }), signal)
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }
}

class DefaultBlockExchange implements BlockExchange {
  private readonly libp2p: ShoalLibp2p
  private readonly blockstore: BlockStore
  private readonly log: Logger
  private readonly window: number
  private readonly timeoutMs: number
  /** Answer times of good wants, for the hedge delay. */
  private readonly latency = new AnswerTimes()
  private readonly findProvidersTimeoutMs: number
  private readonly haveTimeoutMs: number
  private readonly rediscoverAfterMs: number
  private readonly announceTimeoutMs: number
  private readonly channels = new Map<string, PeerChannel>()
  private readonly scores: PeerScores
  private readonly server: BlockServer
  private readonly counters: Omit<BlockExchangeStats, 'fetchesPending' | 'requestsInFlight' | 'peerChannels'> = {
    peakInFlight: 0,
    wantsSent: 0,
    streamFailures: 0,
    invalidResponses: 0,
    streamsGivenUp: 0,
    blocksSent: 0,
    blocksStored: 0,
    putsRefused: 0,
    requestsDelayed: 0,
    bytesDelayed: 0,
    invalidRequests: 0,
    streamsRefused: 0,
    blocksFetched: 0,
    corruptBlocks: 0,
    corruptLocal: 0,
    replacedLocal: 0,
    peersDisconnected: 0,
    providersFromDht: 0,
    providersFromPeers: 0,
    localFallbacks: 0,
    hedgedWants: 0,
    rediscoveries: 0
  }

  /** Fetches under way, so concurrent asks for one block share one fetch (and whether it stores what it gets). */
  private readonly fetching = new Map<string, { read: Promise<Uint8Array>, stores: boolean }>()
  /** Blocks whose local copy failed its check: the next good copy fetched replaces it. */
  private readonly corrupt = new Set<string>()
  private readonly maxStreamsPerPeer: number
  private started = false
  private readonly announcer: AnnounceQueue

  constructor (components: BlockExchangeComponents, init: BlockExchangeInit) {
    this.libp2p = components.libp2p
    this.blockstore = components.blockstore
    this.log = components.logger.child({ component: 'block-exchange' })
    this.window = init.window ?? 16
    if (!Number.isSafeInteger(this.window) || this.window < 1 || this.window > 64) throw new InvalidArgumentError(`window must be 1..64, not ${this.window}`)
    this.timeoutMs = init.requestTimeoutMs ?? 15_000
    this.findProvidersTimeoutMs = init.findProvidersTimeoutMs ?? 10_000
    this.haveTimeoutMs = init.haveTimeoutMs ?? 3_000
    this.rediscoverAfterMs = init.rediscoverAfterMs ?? REDISCOVER_AFTER_MS
    this.announceTimeoutMs = init.announceTimeoutMs ?? 20_000
    this.maxStreamsPerPeer = init.maxStreamsPerPeer ?? 4
    this.announcer = new AnnounceQueue(async root => { await this.announce(root) }, this.log)
    this.scores = new PeerScores(init)
    this.server = new BlockServer({
      blockstore: this.blockstore,
      putPolicy: components.putPolicy ?? REFUSE_PUTS,
      stats: this.counters,
      logger: this.log
    }, {
      maxStreamsPerPeer: this.maxStreamsPerPeer,
      // a client never has more than its window outstanding; allow peers
      // configured with a larger one than ours
      maxWindow: Math.max(this.window, 16),
      requestsPerSecond: init.requestsPerSecond ?? DEFAULT_SERVER_RATES.requestsPerSecond,
      requestBurst: init.requestBurst ?? DEFAULT_SERVER_RATES.requestBurst,
      bytesPerSecond: init.bytesPerSecond ?? DEFAULT_SERVER_RATES.bytesPerSecond,
      byteBurst: init.byteBurst ?? DEFAULT_SERVER_RATES.byteBurst,
      now: init.now
    })
  }

  /** A peer that connects again is forgiven what only failures cost it ({@link PeerScores.reconnected}). */
  private readonly onConnect = (evt: CustomEvent<PeerId>): void => { this.scores.reconnected(evt.detail) }

  /**
   * A peer gone: its channel is dropped when idle, and its score when it
   * holds neither a ban nor misbehaviour (forgiven at its next connect
   * anyway). Kept for every peer ever asked, both grew with the swarm's
   * churn for as long as the node ran. A channel still busy is left to fail
   * its requests as before.
   */
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const key = evt.detail.toString()
    const channel = this.channels.get(key)
    if (channel?.idle === true) {
      channel.close()
      this.channels.delete(key)
    }
    this.scores.disconnected(evt.detail)
  }

  async start (): Promise<void> {
    if (this.started) return
    this.libp2p.addEventListener('peer:connect', this.onConnect)
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    await this.libp2p.handle(BLOCKS_PROTOCOL, async (stream, connection) => {
      await this.server.handle(stream, connection)
    }, {
      maxInboundStreams: this.maxStreamsPerPeer,
      maxOutboundStreams: this.maxStreamsPerPeer
    })
    this.started = true
  }

  async stop (): Promise<void> {
    this.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.announcer.stop()
    for (const channel of this.channels.values()) channel.close()
    this.channels.clear()
    this.server.stop()
    if (this.started) {
      this.started = false
      try { await this.libp2p.unhandle(BLOCKS_PROTOCOL) } catch {}
    }
  }

  stats (): BlockExchangeStats {
    let requestsInFlight = 0
    for (const channel of this.channels.values()) requestsInFlight += channel.inFlight
    return { ...this.counters, fetchesPending: this.fetching.size, requestsInFlight, peerChannels: this.channels.size }
  }

  async getBlock (cid: CID, options: ExchangeGetOptions = {}): Promise<Uint8Array> {
    const { signal } = options
    const local = await this.getLocal(cid, signal)
    if (local !== undefined) { options.onSource?.('local'); return local }
    const store = options.store ?? true
    let fetched = false
    const bytes = await this.fetchShared(cid, signal, store, async () => {
      fetched = true
      let providers: ProviderSet
      if (options.providers !== undefined) {
        providers = new ProviderSet()
        for (const p of options.providers) if (!p.equals(this.libp2p.peerId)) providers.add(p)
        providers.finish()
      } else {
        providers = this.discover(cid, signal)
      }
      return await this.fetch(cid, { providers, signal, store })
    })
    options.onSource?.(fetched ? 'peer' : 'joined')
    return bytes
  }

  session (root: CID, options: SessionOptions = {}): BlockSession {
    const cacheBytes = options.cacheBytes ?? Infinity
    if (!(cacheBytes >= 0)) throw new InvalidArgumentError(`cacheBytes must be >= 0, not ${cacheBytes}`)
    let providers: ProviderSet | undefined
    // The providers of the root are those of the DAG; an identity root (its bytes inline in the CID: a small
    // directory an IPFS tool made so) is announced by nobody, so its DAG's holders are searched for by the first
    // block fetched (before, a path below such a directory was never found)
    let searchKey: CID | undefined = root.multihash.code === IDENTITY ? undefined : root
    const found = (cid: CID): ProviderSet => {
      searchKey ??= cid
      providers ??= this.discover(searchKey, options.signal)
      return providers
    }
    // The providers found at the start of a long read can all go (a holder
    // restarts, leaves); others may have come meanwhile (a peer that read the
    // file since, one connected since). A search that had found someone and
    // began long enough ago is made again, once per block that all failed;
    // one that found nobody is not (content nobody has fails as fast as before).
    const foundAgain = (failed: ProviderSet, cid: CID): ProviderSet | undefined => {
      // under an identity root, the holders of this block (the files of an inlined directory may sit on other nodes
      // than its first child), whatever the earlier search found
      if (root.multihash.code === IDENTITY && failed.done) {
        this.counters.rediscoveries++
        providers = this.discover(cid, options.signal)
        return providers
      }
      if (providers !== failed) return providers // another block's fetch began one already
      if (!failed.done || failed.peers.length === 0 || performance.now() - failed.startedAt < this.rediscoverAfterMs) return undefined
      this.counters.rediscoveries++
      providers = this.discover(searchKey ?? root, options.signal)
      return providers
    }
    // Once a block had to be fetched the DAG is taken to be remote, and
    // blocks are fetched without a store lookup first (a LevelDB miss per
    // block was a tenth of the reader's time). Every PROBE_EVERY-th block and
    // any block this session already fetched and kept are still looked up; a
    // hit makes the session local-first again. A block no peer gives is looked
    // up here before the read fails (a file spread over the swarm has some of
    // its leaves here only).
    let remote = false
    let sinceProbe = 0
    const fetched = new RecentKeys(RECENT_KEYS)
    const cache = new CacheBudget(options.store ?? true, cacheBytes)
    return {
      getBytes: async (cid, opts = {}) => {
        const signal = anySignal(options.signal, opts.signal)
        const key = blockKey(cid)
        const lookedUp = !remote || ++sinceProbe >= PROBE_EVERY || fetched.has(key)
        if (lookedUp) {
          sinceProbe = 0
          const local = await this.getLocal(cid, signal)
          if (local !== undefined) { remote = false; options.onBlock?.(cid, local, 'local'); return local }
          // a miss makes the DAG remote; a copy here that failed its check does
          // not: its other blocks are read too (and replaced when corrupt)
          remote = !this.corrupt.has(key)
        }
        const routed = await options.route?.(cid)
        // Not looked up here (a remote DAG): a block this node holds — its own
        // share of a file spread over the swarm, as a file unpinned from its
        // stripes is — is looked up here once the first peer asked does not
        // give it at once (see `fetch`), never reported missing.
        let localTried = lookedUp
        let servedHere = false
        const here = async (): Promise<Uint8Array | undefined> => {
          if (localTried) return undefined
          localTried = true
          const local = await this.getLocal(cid, signal)
          servedHere = local !== undefined
          return local
        }
        const local = lookedUp ? undefined : here
        let bytes: Uint8Array
        try {
          // kept (or not) once its size is known, so the budget is never overshot
          bytes = await this.fetchShared(cid, signal, false, async () => {
            const others = (routed ?? []).filter(p => !p.equals(this.libp2p.peerId))
            // holders named, and some of them other peers (this node alone is no route)
            if (others.length > 0) {
              const known = new ProviderSet()
              for (const p of others) known.add(p)
              known.finish()
              try { return await this.fetch(cid, { providers: known, signal, store: false, local }) } catch (err: any) {
                if (err?.name !== 'BlockUnavailableError' || options.routedOnly === true) throw err
              }
            }
            const first = found(cid)
            try { return await this.fetch(cid, { providers: first, signal, store: false, local }) } catch (err: any) {
              const again = err?.name === 'BlockUnavailableError' ? foundAgain(first, cid) : undefined
              if (again === undefined) throw err
              return await this.fetch(cid, { providers: again, signal, store: false, local })
            }
          })
        } catch (err) {
          // a fetch joined from another session did not look here
          if (isAborted(signal)) throw err
          const local = await here()
          if (local === undefined) throw err
          bytes = local
        }
        if (servedHere) {
          remote = false
          this.counters.localFallbacks++
          options.onBlock?.(cid, bytes, 'local')
          return bytes
        }
        if (cache.takes(cid, bytes.byteLength)) {
          await this.store(cid, bytes)
          fetched.add(key)
        }
        options.onBlock?.(cid, bytes, 'peer')
        return bytes
      },
      has: async (cid, opts = {}) => await this.blockstore.has(cid, { signal: opts.signal }),
      providers: () => [...(providers?.peers ?? [])]
    }
  }

  async announce (root: CID, options: { signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.libp2p.contentRouting.provide(root, {
        signal: anySignal(options.signal, AbortSignal.timeout(this.announceTimeoutMs))
      })
      this.log.debug({ cid: root.toString() }, 'announced')
    } catch (err) {
      this.log.warn({ cid: root.toString(), err: toError(err).message }, 'cannot announce root')
    }
  }

  announceSoon (root: CID): void {
    this.announcer.add(root)
  }

  async putBlocks (peer: PeerId, blocks: AsyncIterable<{ cid: CID, bytes: Uint8Array }> | Iterable<{ cid: CID, bytes: Uint8Array }>, options: { signal?: AbortSignal } = {}): Promise<PutBlocksResult> {
    const { signal } = options
    const channel = this.channel(peer)
    const inFlight = new Set<Promise<void>>()
    const result: PutBlocksResult = { blocks: 0, bytes: 0 }
    let failure: Error | undefined
    for await (const { cid, bytes } of blocks) {
      if (failure !== undefined) break
      if (signal?.aborted === true) throw new AbortedError('put aborted')
      const put = (async () => {
        const response = await channel.request({ v: 1, type: 'put', cid, data: bytes }, signal)
        if (response.type === 'ack') {
          result.blocks++
          result.bytes += bytes.byteLength
          return
        }
        throw new RemoteError(response.type === 'error'
          ? `peer ${peer.toString()} refused ${cid.toString()}: ${response.message}`
          : `peer ${peer.toString()} answered a put with ${response.type}`)
      })().catch((err: unknown) => { failure ??= toError(err) }).finally(() => { inFlight.delete(put) })
      inFlight.add(put)
      // never more than `window` blocks read from the source and not yet acked
      while (inFlight.size >= this.window) await Promise.race(inFlight)
    }
    await Promise.all(inFlight)
    if (failure !== undefined) throw failure
    return result
  }

  /**
   * The block from the local store, or undefined when it is not there or its
   * copy fails its check (crc32c or hash): that copy is never served, and the
   * next good copy fetched from a peer replaces it.
   */
  private async getLocal (cid: CID, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    if (signal?.aborted === true) throw new AbortedError('read aborted')
    try {
      const bytes = await this.blockstore.getBytes(cid, { signal })
      // replaced by someone else (a rebuild, the cold tier, the scrub)
      if (this.corrupt.size > 0) this.corrupt.delete(blockKey(cid))
      return bytes
    } catch (err: any) {
      if (err?.name === 'NotFoundError') return undefined
      if (err?.name !== 'CorruptBlockError' && err?.name !== 'InvalidBlockError') throw err
      this.counters.corruptLocal++
      // bounded: a key forgotten here is noticed again at its next read
      if (this.corrupt.size >= MAX_CORRUPT_NOTED) this.corrupt.clear()
      this.corrupt.add(blockKey(cid))
      this.log.warn({ cid: cid.toString(), err: String(err.message) }, 'local copy failed its check: fetching it from a peer')
      return undefined
    }
  }

  /** Store a block fetched from a peer, in place of a corrupt local copy if there is one. */
  private async store (cid: CID, bytes: Uint8Array): Promise<void> {
    const key = blockKey(cid)
    if (this.corrupt.has(key)) {
      await replaceCorrupt(this.blockstore, cid, bytes)
      this.corrupt.delete(key)
      this.counters.replacedLocal++
      this.log.info({ cid: cid.toString() }, 'corrupt local copy replaced by a good one from a peer')
      return
    }
    await this.blockstore.put(cid, bytes)
  }

  /** One fetch per block at a time; a caller that stores, joining a fetch that does not, stores what it gets. */
  private async fetchShared (cid: CID, signal: AbortSignal | undefined, store: boolean, fetch: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const key = blockKey(cid)
    const shared = this.fetching.get(key)
    if (shared === undefined) {
      const read = fetch().finally(() => { this.fetching.delete(key) })
      read.catch(() => {})
      this.fetching.set(key, { read, stores: store })
      return await raceAbort(read, signal)
    }
    let bytes: Uint8Array
    try {
      bytes = await raceAbort(shared.read, signal)
    } catch (err: any) {
      // the fetch joined ran under its first caller's signal and providers:
      // its abort, or its narrower providers, are not this caller's
      if (signal?.aborted === true || (err?.name !== 'AbortedError' && err?.name !== 'BlockUnavailableError')) throw err
      return await fetch()
    }
    if (store && !shared.stores) await this.store(cid, bytes)
    return bytes
  }

  /**
   * Fetch `cid` from the providers, least busy first, moving on when one
   * does not have it, vanishes, times out or sends bad bytes.
   */
  private async fetch (cid: CID, options: FetchOptions): Promise<Uint8Array> {
    const { providers, signal, store, local } = options
    const tried = new Set<string>()
    const errors: string[] = []
    /** A provider asked did not answer (unreachable, timed out, its stream dead): it may have the block. */
    let unanswered = false
    // wants in flight and answers not yet looked at: a hedge asks another provider while the
    // first is slow (one still in flight when the fetch is over is answered into the void, or times out)
    const asking = new Answers()
    let localLeft = local
    const here = async (): Promise<Uint8Array | undefined> => {
      const lookUp = localLeft
      localLeft = undefined
      return await lookUp?.()
    }
    // when the skipped local lookup is made if no answer came, and when another provider may be asked
    let localAt: number | undefined
    let askAt = 0
    while (true) {
      if (signal?.aborted === true) throw new AbortedError('fetch aborted')
      const now = performance.now()
      if (asking.size === 0 || now >= askAt) {
        const peer = this.pick(providers.peers, tried)
        // every provider known asked, or the one asked is slow: discovery looks further
        if (peer === undefined) providers.more()
        if (peer !== undefined) {
          tried.add(peer.toString())
          if (asking.size > 0) this.counters.hedgedWants++
          asking.add(this.want(peer, cid, signal))
          localAt ??= now + LOCAL_AFTER_MS
          askAt = now + this.hedgeMs()
        } else if (asking.size === 0) {
          if (providers.done) {
            const state = this.corrupt.has(blockKey(cid)) ? 'failed its check here' : 'not found here'
            // a peer that may have it did not answer: the block is not known to be missing (502, not 404)
            const unreachable = unanswered || providers.silent > 0
            const why = !unreachable ? 'no peer could supply it' : unanswered ? 'a provider asked did not answer' : `${providers.silent} connected peer${providers.silent === 1 ? '' : 's'} did not answer whether ${providers.silent === 1 ? 'it has' : 'they have'} it`
            throw new BlockUnavailableError(`block ${cid.toString()} ${state} and ${why} (${providers.peers.length} providers known${errors.length > 0 ? ': ' + errors.join('; ') : ''})`, { unreachable })
          }
          await providers.changed(signal)
          continue
        }
      }
      // wait for an answer, but no longer than until the skipped local
      // lookup is due, or until another provider is to be asked beside the slow one
      const due: number[] = []
      if (localLeft !== undefined && localAt !== undefined) due.push(localAt)
      const another = this.pick(providers.peers, tried) !== undefined
      // past the hedge delay, another known provider is asked, or discovery's search begins for one
      if (another || providers.searchable) due.push(askAt)
      // no other provider yet, but discovery goes on: one found wakes the wait too
      const found = another || providers.done ? undefined : providers.changed(signal).then(() => undefined, () => undefined)
      let result = asking.take()
      if (result === undefined) {
        await untilFirst(asking.arrival(), due.length === 0 ? undefined : Math.max(0, Math.min(...due) - performance.now()), found)
        result = asking.take()
      }
      if (result === undefined) {
        // slow (stalled, or far): the block may be here
        if (localAt !== undefined && performance.now() >= localAt) {
          const local = await here()
          if (local !== undefined) return local
        }
        continue
      }
      if ('error' in result) {
        if (result.aborted && isAborted(signal)) throw new AbortedError('fetch aborted')
        errors.push(result.error)
        if (result.unreachable === true) unanswered = true
        const local = await here()
        if (local !== undefined) return local
        continue
      }
      // outside the peer's turn: a failure to store here (a full disk) is ours, not the peer's
      if (store || this.corrupt.has(blockKey(cid))) await this.store(cid, result.data)
      this.counters.blocksFetched++
      return result.data
    }
  }

  /**
   * Ask `peer` for `cid` and judge its answer: the bytes when they are the
   * block, else what went wrong (a peer that sent wrong bytes or a malformed
   * answer is punished). Never rejects.
   */
  private async want (peer: PeerId, cid: CID, signal: AbortSignal | undefined): Promise<WantResult> {
    const started = performance.now()
    try {
      const response = await this.channel(peer).want(cid, signal)
      if (response.type === 'dont-have') return { error: `${peer.toString()}: dont-have` }
      if (response.type !== 'block' || Buffer.compare(response.cid.multihash.bytes, cid.multihash.bytes) !== 0) {
        this.punish(peer, SCORE.invalid, `answered a want with ${response.type}`)
        return { error: `${peer.toString()}: bad answer` }
      }
      if (!await matchesCIDOffThread(cid, response.data)) {
        this.counters.corruptBlocks++
        this.punish(peer, SCORE.corrupt, `sent corrupt bytes for ${cid.toString()}`)
        return { error: `${peer.toString()}: corrupt block` }
      }
      this.scores.adjust(peer, SCORE.success)
      this.latency.add(performance.now() - started)
      return { data: response.data }
    } catch (err: any) {
      if (err?.name === 'AbortedError' && signal?.aborted === true) return { error: `${peer.toString()}: aborted`, aborted: true }
      // a timeout, a dead stream or a failed dial was scored by the channel: a dead stream once, whatever
      // it failed (counted per want, one stalled stream with six wants in flight banned its peer for five minutes)
      return { error: `${peer.toString()}: ${String(err?.message ?? err)}`, unreachable: outOfReach(err) }
    }
  }

  /** How long a want waits for its answer before another provider is asked too: a few times the usual answer's time. */
  private hedgeMs (): number {
    return Math.min(this.timeoutMs, Math.max(MIN_HEDGE_MS, HEDGE_FACTOR * this.latency.mean()))
  }

  /** The untried, unbanned provider with the fewest requests in flight. */
  private pick (peers: PeerId[], tried: Set<string>): PeerId | undefined {
    let best: PeerId | undefined
    let bestLoad = Infinity
    for (const peer of peers) {
      if (tried.has(peer.toString()) || this.scores.isBanned(peer)) continue
      const load = this.channels.get(peer.toString())?.inFlight ?? 0
      if (load < bestLoad) { best = peer; bestLoad = load }
    }
    return best
  }

  /**
   * The booleans of `peer`'s answer to a `have` of `asked` CIDs: one per CID,
   * in order. Any other answer is malformed (a peer that said it holds 256 of
   * the 3 blocks asked was counted so by `pin status`): the peer is punished,
   * and undefined returned.
   */
  private havesOf (peer: PeerId, response: BlockExchangeResponse, asked: number): boolean[] | undefined {
    if (response.type === 'haves' && response.haves.length === asked) return response.haves
    this.counters.invalidResponses++
    this.punish(peer, SCORE.invalid, `answered a have of ${asked} CIDs with ${response.type === 'haves' ? `${response.haves.length} booleans` : response.type}`)
    return undefined
  }

  /** Lower a peer's score; a misbehaving peer is hung up on. */
  private punish (peer: PeerId, delta: number, why: string): void {
    this.log.warn({ peer: peer.toString(), why }, 'peer misbehaved')
    this.scores.adjust(peer, delta)
    this.counters.peersDisconnected++
    const channel = this.channels.get(peer.toString())
    channel?.close()
    this.channels.delete(peer.toString())
    this.libp2p.hangUp(peer).catch(() => {})
  }

  private channel (peer: PeerId): PeerChannel {
    const key = peer.toString()
    let channel = this.channels.get(key)
    if (channel === undefined) {
      channel = new PeerChannel(this.libp2p, peer, this.window, this.timeoutMs, this.counters, this.log, (p) => {
        this.punish(p, SCORE.invalid, 'sent a malformed response')
      }, (p) => {
        // once per dead stream, not once per request it failed
        this.scores.adjust(p, SCORE.failure)
      })
      this.channels.set(key, channel)
    }
    return channel
  }

  async askHave (cids: CID[], options: { signal?: AbortSignal } = {}): Promise<HaveSurvey> {
    const asked = cids.slice(0, MAX_HAVE)
    if (asked.length === 0) return { peers: [], heldByNone: 0 }
    const held = new Array<boolean>(asked.length).fill(false)
    const self = this.libp2p.peerId
    const peers = new Map<string, PeerId>()
    for (const conn of this.libp2p.getConnections()) {
      if (!conn.remotePeer.equals(self) && !this.scores.isBanned(conn.remotePeer)) peers.set(conn.remotePeer.toString(), conn.remotePeer)
    }
    const answers = await Promise.all([...peers.values()].map(async (peer): Promise<PeerHaves | undefined> => {
      try {
        const response = await this.channel(peer).request({ v: 1, type: 'have', cids: asked }, anySignal(options.signal, AbortSignal.timeout(this.haveTimeoutMs)))
        const haves = this.havesOf(peer, response, asked.length)
        if (haves === undefined) return undefined
        haves.forEach((h, i) => { if (h) held[i] = true })
        return { peer: peer.toString(), have: haves.filter(h => h).length, asked: asked.length }
      } catch (err) {
        this.log.debug({ peer: peer.toString(), err: toError(err).message }, 'have failed')
        return undefined
      }
    }))
    const peersAnswering = answers.filter((a): a is PeerHaves => a !== undefined).sort((a, b) => a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0)
    return { peers: peersAnswering, heldByNone: held.filter(h => !h).length }
  }

  /**
   * Find providers of `cid`: connected peers that answer `have`, and DHT
   * provider records, both bounded in time. The set grows as answers arrive.
   */
  private discover (cid: CID, signal?: AbortSignal): ProviderSet {
    const providers = new ProviderSet()
    const self = this.libp2p.peerId
    const connected = new Map<string, PeerId>()
    for (const conn of this.libp2p.getConnections()) {
      if (!conn.remotePeer.equals(self) && !this.scores.isBanned(conn.remotePeer)) connected.set(conn.remotePeer.toString(), conn.remotePeer)
    }
    const askPeers = Promise.all([...connected.values()].map(async peer => {
      try {
        const response = await this.channel(peer).request({ v: 1, type: 'have', cids: [cid] }, anySignal(signal, AbortSignal.timeout(this.haveTimeoutMs)))
        if (this.havesOf(peer, response, 1)?.[0] === true && providers.add(peer)) this.counters.providersFromPeers++
      } catch (err) {
        // its answer did not come in time (the have's own timeout aborts it), or its stream failed; not a request
        // refused here before it was sent (a CID this protocol does not carry)
        if (signal?.aborted !== true && (outOfReach(err) || (err as any)?.name === 'AbortedError')) providers.silent++
        this.log.debug({ peer: peer.toString(), err: toError(err).message }, 'have failed')
      }
    }))
    // The DHT is asked only when the connected peers do not do: none of them has the block,
    // one that has it is slow or failed (the fetch asks for more), or none answered within
    // PROVIDER_SEARCH_DELAY_MS. Asked at once beside them, every session of a listing of
    // 1,000 small files ran a DHT query on both nodes: ~7 ms of CPU per file on each.
    let peersAsked = false
    let dhtRunning = false
    const askDht = async (): Promise<void> => {
      // alone in the swarm: there is nobody to ask, and the query would only time out
      if (connected.size === 0) return
      try {
        for await (const info of this.libp2p.contentRouting.findProviders(cid, { signal: anySignal(signal, AbortSignal.timeout(this.findProvidersTimeoutMs)) })) {
          if (info.id.equals(self) || this.scores.isBanned(info.id)) continue
          if (info.multiaddrs.length > 0) {
            try { await this.libp2p.peerStore.merge(info.id, { multiaddrs: info.multiaddrs }) } catch {}
          }
          if (providers.add(info.id)) this.counters.providersFromDht++
        }
      } catch (err) {
        this.log.debug({ cid: cid.toString(), err: toError(err).message }, 'findProviders ended')
      }
    }
    let waited = false
    providers.searchWith(() => {
      // too early: the connected peers are still being asked, and none has said yes yet
      if (!peersAsked && !waited && providers.peers.length === 0) return false
      dhtRunning = true
      providers.reopen()
      void askDht().finally(() => {
        dhtRunning = false
        if (peersAsked) providers.finish()
      })
      return true
    })
    const delay = setTimeout(() => {
      waited = true
      if (providers.peers.length === 0) providers.more()
    }, PROVIDER_SEARCH_DELAY_MS)
    delay.unref?.()
    void askPeers.finally(() => {
      peersAsked = true
      clearTimeout(delay)
      if (providers.peers.length === 0) providers.more()
      if (!dhtRunning) providers.finish()
    })
    return providers
  }
}

/** Whether a request failed because its peer did not answer (unreachable, timed out, its stream dead), not because it was refused. */
function outOfReach (err: any): boolean {
  return err?.name === 'PeerUnavailableError' || err?.name === 'RequestTimeoutError'
}

/** Corrupt local copies remembered for replacement, at most. */
const MAX_CORRUPT_NOTED = 4096
/** In a remote session, one block in this many is still looked up locally. */
const PROBE_EVERY = 16
/** How long discovery waits for a connected peer to say it has a block before it asks the DHT too (Kubo's bitswap waits 1 s). */
const PROVIDER_SEARCH_DELAY_MS = 1000
/**
 * A session's search for providers is made again, when every provider it
 * found failed a block, only if it began at least this long ago: a read's
 * first blocks do not search twice in a row, a read that has run for a while
 * finds the holders that came since (Kubo's bitswap sessions search again
 * once a minute while wants go unanswered; here it is on demand).
 */
export const REDISCOVER_AFTER_MS = 5_000
/**
 * How long a want of a session that skipped the local lookup waits for the
 * first peer's answer before the block is looked up here after all (and
 * served from here when it is): a leaf this node alone holds then costs one
 * slow answer at most, not a `dont-have` from every peer in turn or a
 * stalled peer's whole request timeout.
 */
const LOCAL_AFTER_MS = 250
/**
 * A want not answered within this many times the mean answer time (at least
 * {@link MIN_HEDGE_MS}, at most the request timeout) is asked of another
 * provider too, and the first good answer is taken: a stalled or overloaded
 * provider holds a read for about a second, not its whole request timeout
 * (the striped read hedges its leaves the same way: node/reads/striped.ts).
 */
const HEDGE_FACTOR = 4
/** Least wait before a want is hedged (ms). */
const MIN_HEDGE_MS = 1000
/** Blocks a session remembers having fetched (so a repeated block is read locally). */
const RECENT_KEYS = 4096


/** Multicodec of raw blocks (a file's leaves). */
const RAW_CODE = 0x55

/** What one session keeps of the blocks it fetches: inner nodes always, raw leaves up to a byte budget. */
class CacheBudget {
  private leafBytes = 0
  constructor (private readonly store: boolean, private readonly maxLeafBytes: number) {}

  /** Whether a fetched block of `bytes` bytes is to be kept (counted if so). */
  takes (cid: CID, bytes: number): boolean {
    if (!this.store) return false
    if (cid.code !== RAW_CODE) return true
    if (this.leafBytes + bytes > this.maxLeafBytes) return false
    this.leafBytes += bytes
    return true
  }
}

/** Read through a function so TypeScript does not keep an earlier narrowing. */
function isAborted (signal?: AbortSignal): boolean {
  return signal?.aborted === true
}

/** A signal aborting when any of the given ones does. */
function anySignal (...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  // usually a session and its reads share one signal: no composite per block
  const present = [...new Set(signals.filter((s): s is AbortSignal => s !== undefined))]
  if (present.length === 0) return undefined
  if (present.length === 1) return present[0]
  return AbortSignal.any(present)
}

export { PeerChannel } from './channel.js'

/** What the exchange's `fetch` of one block is given. */
interface FetchOptions {
  /** Who to ask, least busy first. */
  providers: ProviderSet
  signal?: AbortSignal
  /** Store the block once fetched. */
  store: boolean
  /**
   * The local lookup a session skipped: made once, after the first peer's
   * `dont-have` or failure, or once it has not answered within
   * {@link LOCAL_AFTER_MS}; bytes it gives are the fetch's result.
   */
  local?: () => Promise<Uint8Array | undefined>
}

/** How one want ended: the block's bytes, or what went wrong. */
type WantResult = { data: Uint8Array } | { error: string, aborted?: boolean, unreachable?: boolean }

/**
 * The wants of one fetch: those in flight, and the answers that arrived and
 * were not looked at yet. An answer that arrives while the fetch does
 * something else (waits for its local lookup, wakes for a provider found,
 * reads another answer) is kept for it, never dropped: before, a block that
 * arrived while the local lookup ran was lost, and the fetch failed with
 * "no peer could supply it" though its only provider had just sent it.
 */
class Answers {
  private readonly ready: WantResult[] = []
  private inFlight = 0
  private arrived: { promise: Promise<void>, resolve: () => void } | undefined

  /** Wants in flight plus answers not taken. */
  get size (): number { return this.inFlight + this.ready.length }

  /** Follow a want; its answer is kept until {@link take}n. */
  add (want: Promise<WantResult>): void {
    this.inFlight++
    void want.then(result => {
      this.inFlight--
      this.ready.push(result)
      this.arrived?.resolve()
      this.arrived = undefined
    })
  }

  /** The oldest answer not taken yet. */
  take (): WantResult | undefined {
    return this.ready.shift()
  }

  /** Resolves when the next answer arrives. */
  async arrival (): Promise<undefined> {
    if (this.arrived === undefined) {
      let resolve = (): void => {}
      const promise = new Promise<void>(r => { resolve = r })
      this.arrived = { promise, resolve }
    }
    await this.arrived.promise
    return undefined
  }
}

/** Resolves once `promise` or `wake` resolves, or `ms` passed (no limit when undefined), whichever comes first. */
async function untilFirst (promise: Promise<undefined>, ms: number | undefined, wake?: Promise<undefined>): Promise<void> {
  const racers: Array<Promise<undefined>> = [promise]
  if (wake !== undefined) racers.push(wake)
  if (ms === undefined) { await Promise.race(racers); return }
  const timer = new AbortController()
  try {
    await Promise.race([...racers, sleep(ms, undefined, { signal: timer.signal })])
  } finally {
    timer.abort()
  }
}

/**
 * The mean of the last answers' times (ms), for the hedge: an exponentially
 * weighted mean, so a slow hour is forgotten in a few dozen answers.
 */
class AnswerTimes {
  private value: number | undefined
  add (ms: number): void {
    this.value = this.value === undefined ? ms : this.value + (ms - this.value) / 16
  }

  /** The mean so far (0 before any answer). */
  mean (): number {
    return this.value ?? 0
  }
}
