/**
 * {@link SyncNetwork} on libp2p: gossip on the namespace topic of gossipsub,
 * requests on their own stream of {@link SYNC_PROTOCOL} (one request and one
 * answer per stream, length-prefixed, bounded), and a pull whenever a peer
 * connects (gossipsub takes seconds to see a new subscriber; a pull does not).
 * Writer notices (protocol/writer-notice.ts) go on their own stream of
 * {@link NOTICE_PROTOCOL}: one small message, read with its size bound and
 * a short timeout, at most {@link SyncLimits.noticesPerMinute} a minute
 * taken from one peer (more are dropped unread, counted).
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { encodeSyncResponse, MAX_SYNC_MESSAGE_BYTES, NAMESPACE_TOPIC, SYNC_PROTOCOL } from '../../protocol/namespace.js'
import { admit, PeerLimiter, withDefaults } from '../net/peer-limiter.js'
import { PeerStreams } from '../net/peer-streams.js'
import { MAX_NOTICE_BYTES, NOTICE_PROTOCOL } from '../../protocol/writer-notice.js'
import { NamespaceSync, type SyncHandlers, type SyncNetwork, type SyncOptions } from './sync.js'
import type { Replica } from './replica.js'
import type { TrustPolicy } from './trust.js'
import type { ShoalLibp2p } from '../net/host.js'
import type { Logger } from '../logger.js'
import { systemTimers } from '../timers.js'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { GossipsubMessage, TopicValidatorFn } from '@libp2p/gossipsub'

/** Per-peer limits of namespace sync (docs/limits.md). */
export interface SyncLimits {
  /** Sync requests per second per peer. */
  requestsPerSecond: number
  /** Sync request burst per peer. */
  requestBurst: number
  /** Longest wait for a peer's rate before its request is refused. */
  maxDelayMs: number
  /** Streams of {@link SYNC_PROTOCOL} one peer may have open towards us, over all its connections. */
  maxStreamsPerPeer: number
  /** Gossip messages per second taken from one peer (the one that sent them to us, not their author). */
  gossipPerSecond: number
  /** Gossip burst per peer. */
  gossipBurst: number
  /** Writer notices taken from one peer per minute (a member sends one a minute at most). */
  noticesPerMinute: number
}

/**
 * Defaults: a catch-up is a few pages and snapshot block requests, one at a
 * time per peer; gossip is one message per commit of each writer. Gossip
 * beyond a peer's rate is ignored (not delivered, not forwarded, no score
 * penalty): the pull on connect and every sync interval brings what it
 * carried.
 */
export const DEFAULT_SYNC_LIMITS: SyncLimits = {
  requestsPerSecond: 100,
  requestBurst: 500,
  maxDelayMs: 1000,
  maxStreamsPerPeer: 32,
  gossipPerSecond: 100,
  gossipBurst: 500,
  noticesPerMinute: 6
}

/** Counters of the limits. */
export interface SyncNetworkStats {
  /** Requests that waited for their peer's rate. */
  requestsDelayed: number
  /** Requests refused over their peer's rate. */
  requestsRefused: number
  /** Streams refused because their peer had too many open. */
  streamsRefused: number
  /** Gossip messages ignored over their sender's rate. */
  gossipDropped: number
  /** Writer notices dropped unread over their sender's rate. */
  noticesDropped: number
}

/** What the libp2p sync network is built from. */
export interface Libp2pSyncNetworkComponents {
  libp2p: ShoalLibp2p
  logger: Logger
}

/** Namespace sync traffic over a libp2p host. */
export class Libp2pSyncNetwork implements SyncNetwork {
  private handlers?: SyncHandlers
  private readonly limits: SyncLimits
  private readonly requests: PeerLimiter
  private readonly gossip: PeerLimiter
  private readonly open: PeerStreams
  private readonly notices: PeerLimiter
  readonly stats: SyncNetworkStats = { requestsDelayed: 0, requestsRefused: 0, streamsRefused: 0, gossipDropped: 0, noticesDropped: 0 }

  /** Gossip beyond its sender's rate is ignored before it is delivered or forwarded. */
  private readonly validate: TopicValidatorFn = (peer) => {
    if (this.gossip.tryTake(peer.toString())) return TopicValidatorResult.Accept
    this.stats.gossipDropped++
    return TopicValidatorResult.Ignore
  }

  private readonly onMessage = (evt: CustomEvent<GossipsubMessage>): void => {
    const { msg, propagationSource } = evt.detail
    // gossipsub signs every message (StrictSign): the author is known; the propagation source is the connected peer that relayed it
    if (msg.topic !== NAMESPACE_TOPIC || msg.type !== 'signed') return
    this.handlers?.message(msg.from.toString(), msg.data, propagationSource.toString())
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.handlers?.connected(evt.detail.toString())
  }

  constructor (private readonly components: Libp2pSyncNetworkComponents, limits: Partial<SyncLimits> & { now?: () => number } = {}) {
    this.limits = withDefaults(DEFAULT_SYNC_LIMITS, limits)
    this.requests = new PeerLimiter({ rate: this.limits.requestsPerSecond, burst: this.limits.requestBurst, now: limits.now })
    this.gossip = new PeerLimiter({ rate: this.limits.gossipPerSecond, burst: this.limits.gossipBurst, now: limits.now })
    this.open = new PeerStreams(this.limits.maxStreamsPerPeer)
    const perMinute = Math.max(1, this.limits.noticesPerMinute)
    this.notices = new PeerLimiter({ rate: perMinute / 60, burst: perMinute, now: limits.now })
  }

  async handle (handlers: SyncHandlers): Promise<void> {
    const { libp2p } = this.components
    this.handlers = handlers
    await libp2p.handle(SYNC_PROTOCOL, async (stream, connection) => {
      await this.serve(stream, connection)
    }, { maxInboundStreams: this.limits.maxStreamsPerPeer })
    await libp2p.handle(NOTICE_PROTOCOL, async (stream, connection) => {
      await this.takeNotice(stream, connection)
    }, { maxInboundStreams: 2 })
    libp2p.services.pubsub.topicValidators.set(NAMESPACE_TOPIC, this.validate)
    libp2p.services.pubsub.addEventListener('gossipsub:message', this.onMessage)
    libp2p.addEventListener('peer:connect', this.onConnect)
    libp2p.services.pubsub.subscribe(NAMESPACE_TOPIC)
  }

  async unhandle (): Promise<void> {
    const { libp2p } = this.components
    this.handlers = undefined
    libp2p.services.pubsub.removeEventListener('gossipsub:message', this.onMessage)
    if (libp2p.services.pubsub.topicValidators.get(NAMESPACE_TOPIC) === this.validate) libp2p.services.pubsub.topicValidators.delete(NAMESPACE_TOPIC)
    libp2p.removeEventListener('peer:connect', this.onConnect)
    try { libp2p.services.pubsub.unsubscribe(NAMESPACE_TOPIC) } catch {}
    try { await libp2p.unhandle(SYNC_PROTOCOL) } catch {}
    try { await libp2p.unhandle(NOTICE_PROTOCOL) } catch {}
  }

  async publish (data: Uint8Array): Promise<void> {
    try {
      await this.components.libp2p.services.pubsub.publish(NAMESPACE_TOPIC, data)
    } catch (err: any) {
      this.components.logger.debug({ err: err?.message }, 'namespace gossip not published')
    }
  }

  async request (peer: string, data: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    const stream = await this.components.libp2p.dialProtocol(peerIdFromString(peer), SYNC_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SYNC_MESSAGE_BYTES })
      await lp.write(data, { signal })
      const answer = (await lp.read({ signal })).subarray()
      await stream.close({ signal }).catch(() => {})
      return answer
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  peers (): string[] {
    return this.components.libp2p.getPeers().map(p => p.toString())
  }

  async notify (peer: string, data: Uint8Array, signal: AbortSignal): Promise<void> {
    const { libp2p } = this.components
    const id = peerIdFromString(peer)
    // a connected peer only: a notice is worth no dial
    if (libp2p.getConnections(id).length === 0) return
    const stream = await libp2p.dialProtocol(id, NOTICE_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_NOTICE_BYTES })
      await lp.write(data, { signal })
      await stream.close({ signal }).catch(() => {})
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  /** One writer notice from the stream's peer, within its rate and size, handed to sync; one that cannot be read is handed as undefined. */
  private async takeNotice (stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    if (!this.notices.tryTake(from)) {
      this.stats.noticesDropped++
      stream.abort(new Error('too many writer notices'))
      return
    }
    let data: Uint8Array | undefined
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_NOTICE_BYTES })
      data = (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray()
      await stream.close().catch(() => {})
    } catch (err: any) {
      this.components.logger.debug({ from, err: err?.message ?? String(err) }, 'writer notice not read')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
    this.handlers?.notice?.(from, data)
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    if (!this.open.enter(from)) {
      this.stats.streamsRefused++
      stream.abort(new Error('too many namespace sync streams'))
      return
    }
    const signal = AbortSignal.timeout(60_000)
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SYNC_MESSAGE_BYTES })
      const request = (await lp.read({ signal })).subarray()
      const handlers = this.handlers
      if (handlers === undefined) {
        stream.abort(new Error('namespace sync stopped'))
        return
      }
      const verdict = await admit(this.requests, from, { maxDelayMs: this.limits.maxDelayMs, signal })
      if (verdict === 'waited') this.stats.requestsDelayed++
      const answer = verdict === 'refused'
        ? this.refusal()
        : await handlers.request(from, request)
      await lp.write(answer, { signal })
      await stream.close({ signal })
    } catch (err: any) {
      this.components.logger.debug({ from, err: err?.message ?? String(err) }, 'namespace sync stream failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.open.leave(from)
    }
  }

  /** The answer to a request over its peer's rate (counted). */
  private refusal (): Uint8Array {
    this.stats.requestsRefused++
    return encodeSyncResponse({ v: 1, type: 'error', id: 0, message: `rate limited: more than ${this.limits.requestsPerSecond} sync requests per second from this peer` })
  }
}

/** What {@link createLibp2pSync} needs. */
export interface Libp2pSyncInit extends Libp2pSyncNetworkComponents {
  replica: Replica
  /** Peers whose gossip is taken and who are pulled from. @default every peer */
  trust?: TrustPolicy
  options?: SyncOptions
  /** Per-peer limits. @default {@link DEFAULT_SYNC_LIMITS} */
  limits?: Partial<SyncLimits>
}

/**
 * Namespace sync of `replica` over a libp2p host, on the process's timers
 * (unref'd: they never keep a process alive) and `Math.random`.
 */
export function createLibp2pSync (init: Libp2pSyncInit): NamespaceSync {
  return new NamespaceSync({
    replica: init.replica,
    network: new Libp2pSyncNetwork({ libp2p: init.libp2p, logger: init.logger }, init.limits),
    timers: systemTimers,
    random: Math.random,
    logger: init.logger,
    trust: init.trust
  }, init.options)
}
