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
  MAX_SHARDS_MESSAGE_BYTES, SHARDS_PROTOCOL,
  type ShardsRequest, type ShardsResponse
} from '../../protocol/shards.js'
import { RemoteError } from '../exchange/index.js'
import type { ShoalLibp2p } from '../net/host.js'
import type { Logger } from '../logger.js'
import type { Connection, PeerId, Stream } from '@libp2p/interface'

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
  /** Since when `peer` is away (ms), undefined when connected; peers never seen count as away since start. */
  downSince: (peer: string) => number | undefined
  /** Called with a peer id when a peer disconnects. */
  onDisconnect: (fn: (peer: string) => void) => void
}

/** Streams of the shards protocol one peer may have open towards us. */
const MAX_INBOUND_STREAMS = 16
/** Bound on one request, both ways. */
const REQUEST_TIMEOUT_MS = 30_000

/** {@link ShardsNetwork} over a libp2p host. */
export class Libp2pShardsNetwork implements ShardsNetwork {
  readonly self: string
  private readonly startedAt = Date.now()
  private readonly away = new Map<string, number>()
  private readonly listeners: Array<(peer: string) => void> = []
  private handler?: ShardsHandler

  private readonly onPeerConnect = (evt: CustomEvent<PeerId>): void => {
    this.away.delete(evt.detail.toString())
  }

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail.toString()
    this.away.set(peer, Date.now())
    for (const fn of this.listeners) fn(peer)
  }

  constructor (private readonly components: { libp2p: ShoalLibp2p, logger: Logger }) {
    this.self = components.libp2p.peerId.toString()
  }

  async start (handler: ShardsHandler): Promise<void> {
    const { libp2p } = this.components
    this.handler = handler
    await libp2p.handle(SHARDS_PROTOCOL, async (stream, connection) => {
      await this.serve(stream, connection)
    }, { maxInboundStreams: MAX_INBOUND_STREAMS })
    libp2p.addEventListener('peer:connect', this.onPeerConnect)
    libp2p.addEventListener('peer:disconnect', this.onPeerDisconnect)
  }

  async stop (): Promise<void> {
    const { libp2p } = this.components
    this.handler = undefined
    libp2p.removeEventListener('peer:connect', this.onPeerConnect)
    libp2p.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    try { await libp2p.unhandle(SHARDS_PROTOCOL) } catch {}
  }

  connected (): string[] {
    return this.components.libp2p.getPeers().map(p => p.toString())
  }

  downSince (peer: string): number | undefined {
    if (peer === this.self) return undefined
    if (this.components.libp2p.getConnections(peerIdFromString(peer)).length > 0) return undefined
    return this.away.get(peer) ?? this.startedAt
  }

  onDisconnect (fn: (peer: string) => void): void {
    this.listeners.push(fn)
  }

  async request (peer: string, request: ShardsRequest, signal?: AbortSignal): Promise<ShardsResponse> {
    const bounded = signal === undefined ? AbortSignal.timeout(REQUEST_TIMEOUT_MS) : AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)])
    const stream = await this.components.libp2p.dialProtocol(peerIdFromString(peer), SHARDS_PROTOCOL, { signal: bounded })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SHARDS_MESSAGE_BYTES })
      await lp.write(encodeShardsRequest(request), { signal: bounded })
      const answer = decodeShardsResponse((await lp.read({ signal: bounded })).subarray())
      await stream.close({ signal: bounded }).catch(() => {})
      if (answer.type === 'error') throw new RemoteError(`peer ${peer} refused ${request.type}: ${answer.message}`)
      return answer
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS * 2)
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SHARDS_MESSAGE_BYTES })
      const bytes = (await lp.read({ signal })).subarray()
      let answer: ShardsResponse
      try {
        const request = decodeShardsRequest(bytes)
        const handler = this.handler
        answer = handler === undefined ? { v: 1, type: 'error', message: 'not serving' } : await handler(from, request, signal)
      } catch (err: any) {
        this.components.logger.debug({ from, err: err?.message }, 'shards request refused')
        answer = { v: 1, type: 'error', message: String(err?.message ?? err).slice(0, 1000) }
      }
      await lp.write(encodeShardsResponse(answer), { signal })
      await stream.close({ signal })
    } catch (err: any) {
      this.components.logger.debug({ from, err: err?.message ?? String(err) }, 'shards stream failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}
