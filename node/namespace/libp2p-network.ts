/**
 * {@link SyncNetwork} on libp2p: gossip on the namespace topic of gossipsub,
 * requests on their own stream of {@link SYNC_PROTOCOL} (one request and one
 * answer per stream, length-prefixed, bounded), and a pull whenever a peer
 * connects (gossipsub takes seconds to see a new subscriber; a pull does not).
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { MAX_SYNC_MESSAGE_BYTES, NAMESPACE_TOPIC, SYNC_PROTOCOL } from '../../protocol/namespace.js'
import { NamespaceSync, type SyncHandlers, type SyncNetwork, type SyncOptions } from './sync.js'
import type { Replica } from './replica.js'
import type { TrustPolicy } from './trust.js'
import type { ShoalLibp2p } from '../net/host.js'
import type { Logger } from '../logger.js'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Message } from '@libp2p/gossipsub'

/** Streams of {@link SYNC_PROTOCOL} one peer may have open towards us. */
const MAX_INBOUND_STREAMS = 32

/** What the libp2p sync network is built from. */
export interface Libp2pSyncNetworkComponents {
  libp2p: ShoalLibp2p
  logger: Logger
}

/** Namespace sync traffic over a libp2p host. */
export class Libp2pSyncNetwork implements SyncNetwork {
  private handlers?: SyncHandlers
  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    // gossipsub signs every message (StrictSign): the author is known
    if (msg.topic !== NAMESPACE_TOPIC || msg.type !== 'signed') return
    this.handlers?.message(msg.from.toString(), msg.data)
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.handlers?.connected(evt.detail.toString())
  }

  constructor (private readonly components: Libp2pSyncNetworkComponents) {}

  async handle (handlers: SyncHandlers): Promise<void> {
    const { libp2p } = this.components
    this.handlers = handlers
    await libp2p.handle(SYNC_PROTOCOL, async (stream, connection) => {
      await this.serve(stream, connection)
    }, { maxInboundStreams: MAX_INBOUND_STREAMS })
    libp2p.services.pubsub.addEventListener('message', this.onMessage)
    libp2p.addEventListener('peer:connect', this.onConnect)
    libp2p.services.pubsub.subscribe(NAMESPACE_TOPIC)
  }

  async unhandle (): Promise<void> {
    const { libp2p } = this.components
    this.handlers = undefined
    libp2p.services.pubsub.removeEventListener('message', this.onMessage)
    libp2p.removeEventListener('peer:connect', this.onConnect)
    try { libp2p.services.pubsub.unsubscribe(NAMESPACE_TOPIC) } catch {}
    try { await libp2p.unhandle(SYNC_PROTOCOL) } catch {}
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

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    const signal = AbortSignal.timeout(60_000)
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SYNC_MESSAGE_BYTES })
      const request = (await lp.read({ signal })).subarray()
      const handlers = this.handlers
      if (handlers === undefined) {
        stream.abort(new Error('namespace sync stopped'))
        return
      }
      await lp.write(await handlers.request(from, request), { signal })
      await stream.close({ signal })
    } catch (err: any) {
      this.components.logger.debug({ from, err: err?.message ?? String(err) }, 'namespace sync stream failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** What {@link createLibp2pSync} needs. */
export interface Libp2pSyncInit extends Libp2pSyncNetworkComponents {
  replica: Replica
  /** Peers whose gossip is taken and who are pulled from. @default every peer */
  trust?: TrustPolicy
  options?: SyncOptions
}

/**
 * Namespace sync of `replica` over a libp2p host, on the process's timers
 * (unref'd: they never keep a process alive) and `Math.random`.
 */
export function createLibp2pSync (init: Libp2pSyncInit): NamespaceSync {
  return new NamespaceSync({
    replica: init.replica,
    network: new Libp2pSyncNetwork({ libp2p: init.libp2p, logger: init.logger }),
    timers: { setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), clearTimeout: (h) => { clearTimeout(h as NodeJS.Timeout) } },
    random: Math.random,
    logger: init.logger,
    trust: init.trust
  }, init.options)
}
