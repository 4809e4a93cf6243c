/**
 * `/shoal/shards/1.0.0` on libp2p: one request and one answer per stream,
 * length-prefixed and bounded, decoded only through protocol/shards.ts.
 * Also tracks when peers went away, for repair's grace period.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import {
  decodeShardsRequest, decodeShardsResponse, encodeShardsRequest, encodeShardsResponse,
  MAX_ERROR_TEXT, MAX_SHARDS_MESSAGE_BYTES, QUOTA_EXCEEDED, RATE_LIMITED, RELEASING, SHARDS_PROTOCOL, SHARDS_PROTOCOL_1_0, withoutHeld,
  type ShardsErrorResponse, type ShardsRequest, type ShardsResponse
} from '../../protocol/shards.js'
import { RemoteError } from '../exchange/index.js'
import { admit, PeerLimiter, RateLimitedError, withDefaults } from '../net/peer-limiter.js'
import { PeerStreams } from '../net/peer-streams.js'
import { QuotaExceededError } from './quota.js'
import { StripeReleasingError } from './stripe-releases.js'
import type { ShoalLibp2p } from '../net/host.js'
import type { Logger } from '../logger.js'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** Answers requests from peers. */
export type ShardsHandler = (from: string, request: ShardsRequest, signal: AbortSignal) => Promise<ShardsResponse>

/** What the durability service needs from the network. */
export interface ShardsNetwork {
  /** This node's peer id. */
  self: string
  start: (handler: ShardsHandler) => Promise<void>
  stop: () => Promise<void>
  /** Send one request and wait for its answer. @throws {RemoteError} on an `error` answer */
  request: (peer: string, request: ShardsRequest, signal?: AbortSignal) => Promise<ShardsResponse>
  /** Peers connected now. */
  connected: () => string[]
  /** Since when `peer` is away (ms on {@link ShardsNetwork.now}), undefined when connected; peers never seen count as away since start. */
  downSince: (peer: string) => number | undefined
  /**
   * The clock {@link ShardsNetwork.downSince} is on (ms). Monotonic in
   * production: a step of the wall clock (NTP, a VM resumed) must not age a
   * peer's absence, or a node would rebuild the shards of peers that are
   * merely restarting (found by the durability simulation's clock skew).
   */
  now: () => number
  /** Called with a peer id when a peer disconnects. */
  onDisconnect: (fn: (peer: string) => void) => void
  /**
   * The peers that announce `cid` in the DHT (provider records), their
   * addresses noted so that a request can dial them. Absent where there is
   * no DHT (a simulation's network): then only connected peers are asked.
   */
  findProviders?: (cid: CID, options?: { signal?: AbortSignal }) => AsyncIterable<string>
}

/** Milliseconds on a monotonic clock, near the epoch (a wall-clock step does not move it). */
function monotonicNow (): number {
  return performance.timeOrigin + performance.now()
}

/** Bound on one request, both ways. */
const REQUEST_TIMEOUT_MS = 30_000

/** Per-peer limits of the serving side (docs/limits.md). */
export interface ShardsLimits {
  /** Requests per second per peer. */
  requestsPerSecond: number
  /** Request burst per peer. */
  requestBurst: number
  /** `hold` requests per minute per peer. */
  holdsPerMinute: number
  /** `hold` burst per peer. */
  holdBurst: number
  /** Longest wait for a peer's rate before its request is refused. */
  maxDelayMs: number
  /** Streams one peer may have open towards us, over all its connections. */
  maxStreamsPerPeer: number
}

/**
 * Defaults: a repair pass asks every peer `holdings` once per manifest, and
 * sends one `hold` per rebuilt shard (at the default 32 MiB/s repair rate,
 * ~128 holds/s spread over the target peers); placement sends one per
 * peer per 4,096 shards.
 */
export const DEFAULT_SHARDS_LIMITS: ShardsLimits = {
  requestsPerSecond: 200,
  requestBurst: 1000,
  holdsPerMinute: 1200,
  holdBurst: 600,
  maxDelayMs: 1000,
  maxStreamsPerPeer: 16
}

/** Counters of the serving side. */
export interface ShardsNetworkStats {
  /** Requests that waited for their peer's rate. */
  requestsDelayed: number
  /** Requests refused over their peer's rate (`hold`s included). */
  requestsRefused: number
  /** Streams refused because their peer had too many open. */
  streamsRefused: number
}

/** Settings of {@link Libp2pShardsNetwork}. */
export interface ShardsNetworkInit extends Partial<ShardsLimits> {
  /** The clock of the rate limits (tests). @default Date.now */
  now?: () => number
}

/** {@link ShardsNetwork} over a libp2p host. */
export class Libp2pShardsNetwork implements ShardsNetwork {
  readonly self: string
  private readonly startedAt = monotonicNow()
  private readonly away = new Map<string, number>()
  private readonly listeners: Array<(peer: string) => void> = []
  private handler?: ShardsHandler
  private readonly limits: ShardsLimits
  private readonly requests: PeerLimiter
  private readonly holds: PeerLimiter
  private readonly open: PeerStreams
  readonly stats: ShardsNetworkStats = { requestsDelayed: 0, requestsRefused: 0, streamsRefused: 0 }

  private readonly onPeerConnect = (evt: CustomEvent<PeerId>): void => {
    this.away.delete(evt.detail.toString())
  }

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail.toString()
    this.away.set(peer, monotonicNow())
    for (const fn of this.listeners) fn(peer)
  }

  constructor (private readonly components: { libp2p: ShoalLibp2p, logger: Logger }, init: ShardsNetworkInit = {}) {
    this.self = components.libp2p.peerId.toString()
    this.limits = withDefaults(DEFAULT_SHARDS_LIMITS, init)
    const { now } = init
    this.requests = new PeerLimiter({ rate: this.limits.requestsPerSecond, burst: this.limits.requestBurst, now })
    this.holds = new PeerLimiter({ rate: this.limits.holdsPerMinute / 60, burst: this.limits.holdBurst, now })
    this.open = new PeerStreams(this.limits.maxStreamsPerPeer)
  }

  async start (handler: ShardsHandler): Promise<void> {
    const { libp2p } = this.components
    this.handler = handler
    await libp2p.handle(SHARDS_PROTOCOL, async (stream, connection) => {
      await this.serve(stream, connection, answer => answer)
    }, { maxInboundStreams: this.limits.maxStreamsPerPeer })
    // a node of an older version: its decoder refuses an `ok` that names `held`, and it pushes every block (acked)
    await libp2p.handle(SHARDS_PROTOCOL_1_0, async (stream, connection) => {
      await this.serve(stream, connection, withoutHeld)
    }, { maxInboundStreams: this.limits.maxStreamsPerPeer })
    libp2p.addEventListener('peer:connect', this.onPeerConnect)
    libp2p.addEventListener('peer:disconnect', this.onPeerDisconnect)
  }

  async stop (): Promise<void> {
    const { libp2p } = this.components
    this.handler = undefined
    libp2p.removeEventListener('peer:connect', this.onPeerConnect)
    libp2p.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    try { await libp2p.unhandle(SHARDS_PROTOCOL) } catch {}
    try { await libp2p.unhandle(SHARDS_PROTOCOL_1_0) } catch {}
  }

  connected (): string[] {
    return this.components.libp2p.getPeers().map(p => p.toString())
  }

  now (): number { return monotonicNow() }

  downSince (peer: string): number | undefined {
    if (peer === this.self) return undefined
    if (this.components.libp2p.getConnections(peerIdFromString(peer)).length > 0) return undefined
    return this.away.get(peer) ?? this.startedAt
  }

  onDisconnect (fn: (peer: string) => void): void {
    this.listeners.push(fn)
  }

  async * findProviders (cid: CID, options: { signal?: AbortSignal } = {}): AsyncIterable<string> {
    const { libp2p } = this.components
    for await (const info of libp2p.contentRouting.findProviders(cid, { signal: options.signal })) {
      if (info.id.equals(libp2p.peerId)) continue
      if (info.multiaddrs.length > 0) {
        try { await libp2p.peerStore.merge(info.id, { multiaddrs: info.multiaddrs }) } catch {}
      }
      yield info.id.toString()
    }
  }

  async request (peer: string, request: ShardsRequest, signal?: AbortSignal): Promise<ShardsResponse> {
    const bounded = signal === undefined ? AbortSignal.timeout(REQUEST_TIMEOUT_MS) : AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)])
    // the newest protocol the peer speaks (one of an older version answers 1.0.0, never naming `held`)
    const stream = await this.components.libp2p.dialProtocol(peerIdFromString(peer), [SHARDS_PROTOCOL, SHARDS_PROTOCOL_1_0], { signal: bounded })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SHARDS_MESSAGE_BYTES })
      await lp.write(encodeShardsRequest(request), { signal: bounded })
      const answer = decodeShardsResponse((await lp.read({ signal: bounded })).subarray())
      await stream.close({ signal: bounded }).catch(() => {})
      if (answer.type === 'error') throw refusal(peer, request.type, answer.message)
      return answer
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  /** Answer one request; `speak` adapts the answer to the protocol version the stream was opened with. */
  private async serve (stream: Stream, connection: Connection, speak: (answer: ShardsResponse) => ShardsResponse): Promise<void> {
    const from = connection.remotePeer.toString()
    if (!this.open.enter(from)) {
      this.stats.streamsRefused++
      stream.abort(new Error('too many shards streams'))
      return
    }
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS * 2)
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SHARDS_MESSAGE_BYTES })
      const bytes = (await lp.read({ signal })).subarray()
      let answer: ShardsResponse
      try {
        const request = decodeShardsRequest(bytes)
        const handler = this.handler
        if (handler === undefined) answer = { v: 1, type: 'error', message: 'not serving' }
        else answer = (await this.admit(from, request, signal)) ?? await handler(from, request, signal)
      } catch (err: any) {
        this.components.logger.debug({ from, err: err?.message }, 'shards request refused')
        answer = refusalAnswer(err)
      }
      await lp.write(encodeShardsResponse(speak(answer)), { signal })
      await stream.close({ signal })
    } catch (err: any) {
      this.components.logger.debug({ from, err: err?.message ?? String(err) }, 'shards stream failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.open.leave(from)
    }
  }

  /** Undefined when the peer's rates admit `request` (perhaps after a wait), else the refusal to send. */
  private async admit (from: string, request: ShardsRequest, signal: AbortSignal): Promise<ShardsResponse | undefined> {
    const { maxDelayMs } = this.limits
    const limiters = request.type === 'hold' || request.type === 'reserve' ? [this.requests, this.holds] : [this.requests]
    for (const limiter of limiters) {
      const verdict = await admit(limiter, from, { maxDelayMs, signal })
      if (verdict === 'waited') this.stats.requestsDelayed++
      if (verdict === 'refused') {
        this.stats.requestsRefused++
        const what = limiter === this.holds ? `${this.limits.holdsPerMinute} holds per minute` : `${this.limits.requestsPerSecond} requests per second`
        return { v: 1, type: 'error', message: `${RATE_LIMITED}: more than ${what} from this peer` }
      }
    }
    return undefined
  }
}

/** The `error` answer to a request whose handler threw `err`: the prefix of its kind where the asker acts on it ({@link refusal}). */
export function refusalAnswer (err: any): ShardsErrorResponse {
  const prefix = err?.name === 'QuotaExceededError' ? `${QUOTA_EXCEEDED}: ` : err?.name === 'StripeReleasingError' ? `${RELEASING}: ` : ''
  return { v: 1, type: 'error', message: (prefix + String(err?.message ?? err)).slice(0, MAX_ERROR_TEXT) }
}

/** The typed error of an `error` answer: over quota, over rate, a stripe its holder is releasing in, or any other refusal. */
export function refusal (peer: string, type: string, message: string): Error {
  const text = `peer ${peer} refused ${type}: ${message}`
  if (message.startsWith(QUOTA_EXCEEDED)) return new QuotaExceededError(text)
  if (message.startsWith(RATE_LIMITED)) return new RateLimitedError(text)
  if (message.startsWith(RELEASING)) return new StripeReleasingError(text)
  return new RemoteError(text)
}

