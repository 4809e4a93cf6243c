import '../polyfills.js'
import { createHash } from 'node:crypto'
// before pnet creates any cipher: see the modules for the bug fixed and the native cipher
import './xsalsa20-fix.js'
import './xsalsa20-native.js'
// window updates once half the window is used, on every stream: see the module
import './yamux-window.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { swarmGuard } from './swarm-guard.js'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import { MAX_SYNC_MESSAGE_BYTES } from '../../protocol/namespace.js'
import { connectionPinger, type ConnectionPinger, type ConnectionPingerInit } from './connection-pinger.js'

/** Shoal's own DHT protocol: our swarm never mixes with the public IPFS DHT. */
export const DHT_PROTOCOL = '/shoal/kad/1.0.0'

/** The libp2p services every Shoal host runs. */
export type ShoalServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  /** Liveness pings of every connection, spread over the interval (connection-pinger.ts; libp2p's own monitor is off). */
  pinger: ConnectionPinger
}

/** A Shoal libp2p host. */
export type ShoalLibp2p = Libp2p<ShoalServices>

/**
 * libp2p's own limits, set explicitly (docs/limits.md). Loopback is exempt
 * from the per-IP inbound connection rate (`connectionManager.allow`), so a
 * local swarm can form at once; every other limit applies to it too.
 */
export const HOST_LIMITS = {
  /** Open connections in all. */
  maxConnections: 300,
  /** Inbound connections per second from one IP address (not loopback). */
  inboundConnectionThreshold: 5,
  /** Inbound connections being upgraded (handshakes) at once. */
  maxIncomingPendingConnections: 10,
  /** Streams a peer may open on one connection (all protocols together; yamux's default is 1,000). */
  maxInboundStreamsPerConnection: 256,
  /** Streams one connection may open before their protocol is known. */
  maxEarlyStreams: 10,
  /** DHT streams a peer may open on one connection at once. */
  dhtInboundStreams: 16,
  /** Gossipsub streams a peer may open on one connection (it uses one). */
  gossipInboundStreams: 4,
  /** Largest gossipsub frame read: the largest namespace gossip message and its envelope. */
  gossipMaxInboundDataLength: MAX_SYNC_MESSAGE_BYTES + 64 * 1024
} as const

/** The fields of a gossipsub message as it arrives (gossipsub's `RPC.Message`). */
export interface GossipWireMessage {
  from?: Uint8Array
  data?: Uint8Array
  seqno?: Uint8Array
  topic: string
  signature?: Uint8Array
  key?: Uint8Array
}

/**
 * Gossipsub's fast message id: SHA-256 of every field of a message as it
 * arrives (publisher, sequence number, topic, data, signature, key; each
 * length-prefixed). Gossipsub checks a message's signature before its seen
 * cache (by publisher and sequence number) drops a copy; a node gets each
 * message from several mesh peers, and every copy cost an Ed25519 check.
 * With this id, exact copies of a message that passed are dropped first. A
 * copy that differs in any byte hashes differently and is checked in full;
 * the id is kept only for messages that passed (gossipsub's own rule), so
 * a forged copy can never mark a real message as seen.
 */
export function gossipFastMsgId (msg: GossipWireMessage): string {
  const hash = createHash('sha256')
  const field = (bytes: Uint8Array | undefined): void => {
    const length = Buffer.alloc(4)
    // absent and empty differ: 0xffffffff for absent
    length.writeUInt32BE(bytes === undefined ? 0xffffffff : bytes.byteLength)
    hash.update(length)
    if (bytes !== undefined) hash.update(bytes)
  }
  field(msg.from)
  field(msg.seqno)
  field(Buffer.from(msg.topic, 'utf8'))
  field(msg.data)
  field(msg.signature)
  field(msg.key)
  return hash.digest('base64')
}

/** How to build a host. */
export interface HostInit {
  /** The node's persistent Ed25519 identity. */
  privateKey: PrivateKey
  /** Multiaddrs to listen on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** Multiaddrs to announce instead of the listen addresses. */
  announce?: string[]
  /** 32-byte pre-shared key: only nodes with the same key can connect. */
  swarmKey?: Uint8Array
  /** Called when a node without the swarm key dialled in and was refused (swarm-guard.ts); with a swarm key only. */
  onForeignConnection?: (remoteAddr: string) => void
  /** Discover peers on the LAN with mDNS. @default false */
  mdns?: boolean
  /** Start listening at once. @default true */
  start?: boolean
  /** Refuse some peers (tests cut a swarm in two with it). */
  connectionGater?: Libp2pOptions['connectionGater']
  /** libp2p's metrics (connections, streams and bytes per protocol), e.g. on the node's registry (node/metrics). */
  metrics?: Libp2pOptions['metrics']
  /** The connection pinger's interval and timeout (connection-pinger.ts; tests shorten them). */
  pinger?: Pick<ConnectionPingerInit, 'interval' | 'timeout'>
}

/**
 * Build (and start) the libp2p host: tcp, noise, yamux, identify, ping (and
 * liveness pings of every connection, spread out: connection-pinger.ts),
 * kad-dht in server mode under {@link DHT_PROTOCOL}, gossipsub, and pnet when
 * a swarm key is given. Loopback and private addresses are kept (tests, LANs),
 * and loopback is exempt from inbound rate limits so a local swarm can form
 * at once.
 */
export async function createHost (init: HostInit): Promise<ShoalLibp2p> {
  const options: Libp2pOptions<ShoalServices> = {
    privateKey: init.privateKey,
    start: init.start ?? true,
    addresses: {
      listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'],
      announce: init.announce ?? []
    },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: HOST_LIMITS.maxInboundStreamsPerConnection, maxEarlyStreams: HOST_LIMITS.maxEarlyStreams })],
    connectionManager: {
      allow: ['/ip4/127.0.0.0/ipcidr/8'],
      maxConnections: HOST_LIMITS.maxConnections,
      inboundConnectionThreshold: HOST_LIMITS.inboundConnectionThreshold,
      maxIncomingPendingConnections: HOST_LIMITS.maxIncomingPendingConnections
    },
    peerDiscovery: init.mdns === true ? [mdns()] : [],
    // its pings of every connection at one instant are replaced by the pinger's, spread out (connection-pinger.ts)
    connectionMonitor: { enabled: false },
    ...(init.connectionGater !== undefined ? { connectionGater: init.connectionGater } : {}),
    ...(init.metrics !== undefined ? { metrics: init.metrics } : {}),
    services: {
      identify: identify(),
      // the DHT pings peers too: leave room for application pings
      ping: ping({ maxOutboundStreams: 4, maxInboundStreams: 4 }),
      pinger: connectionPinger(init.pinger),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        maxInboundStreams: HOST_LIMITS.dhtInboundStreams
      }),
      // gossipsub scores down more than 10 peers behind one IP; nodes on one
      // machine (tests, try-outs) all come from loopback
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1']) },
        // copies of a message already checked are dropped before their signature is checked again
        fastMsgIdFn: gossipFastMsgId,
        maxInboundStreams: HOST_LIMITS.gossipInboundStreams,
        maxInboundDataLength: HOST_LIMITS.gossipMaxInboundDataLength
      })
    }
  }
  if (init.swarmKey !== undefined) options.connectionProtector = swarmGuard({ psk: swarmKeyFile(init.swarmKey), onForeign: init.onForeignConnection ?? (() => {}) })
  return await createLibp2p(options)
}

/** pnet wants the key file's bytes, not the raw key. */
function swarmKeyFile (key: Uint8Array): Uint8Array {
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${Buffer.from(key).toString('hex')}`)
}
