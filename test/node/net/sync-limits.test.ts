/**
 * Namespace sync's per-peer limits between real libp2p hosts on 127.0.0.1:
 * a peer flooding sync requests gets refusals while another peer is
 * answered, and gossip beyond a peer's rate is ignored (counted) while
 * another peer's gossip is delivered.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'
import { Libp2pSyncNetwork, type SyncLimits } from '../../../node/namespace/libp2p-network.js'
import { decodeSyncResponse, NAMESPACE_TOPIC } from '../../../protocol/namespace.js'
import { defer, type CleanupContext } from '../../helpers/temp.js'
import { flood } from './flood.js'

const logger = pino({ level: 'silent' })
const ANSWER = new TextEncoder().encode('answer')

interface Peer { libp2p: ShoalLibp2p, network: Libp2pSyncNetwork, messages: Map<string, number>, requests: number }

async function startPeer (t: CleanupContext, limits?: Partial<SyncLimits>): Promise<Peer> {
  const libp2p = await createHost({ privateKey: await generateKeyPair('Ed25519') })
  defer(t, async () => { await libp2p.stop() })
  const network = new Libp2pSyncNetwork({ libp2p, logger }, limits)
  const peer: Peer = { libp2p, network, messages: new Map(), requests: 0 }
  // handlers that take everything: what is measured is what reaches them
  await network.handle({
    message: (from) => { peer.messages.set(from, (peer.messages.get(from) ?? 0) + 1) },
    request: async () => { peer.requests++; return ANSWER },
    connected: () => {}
  })
  defer(t, async () => { await network.unhandle() })
  return peer
}

async function connect (a: Peer, b: Peer): Promise<void> {
  await a.libp2p.dial(b.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
}

async function until (what: string, fn: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('namespace sync limits', { timeout: 60_000 }, () => {
  it('refuses a peer flooding sync requests while another peer is answered', async (t) => {
    const server = await startPeer(t, { requestsPerSecond: 20, requestBurst: 20, maxDelayMs: 200 })
    const [flooder, honest] = await Promise.all([startPeer(t), startPeer(t)])
    await Promise.all([connect(flooder, server), connect(honest, server)])
    const serverId = server.libp2p.peerId.toString()
    const flooding = flood(200, 8, async () => {
      const answer = await flooder.network.request(serverId, new Uint8Array(8), AbortSignal.timeout(10_000))
      if (Buffer.from(answer).equals(ANSWER)) return 'answered'
      assert.equal(decodeSyncResponse(answer).type, 'error')
      return 'refused'
    })
    for (let i = 0; i < 10; i++) {
      const answer = await honest.network.request(serverId, new Uint8Array(8), AbortSignal.timeout(10_000))
      assert.ok(Buffer.from(answer).equals(ANSWER), 'the other peer is answered')
    }
    const { answered, refused, seconds } = await flooding
    assert.ok(refused > 0, 'part of the flood was refused')
    assert.ok(answered <= 20 + 20 * seconds + 8, `${answered} answered in ${seconds} s`)
    assert.equal(server.network.stats.requestsRefused, refused)
    assert.equal(server.requests, answered + 10, 'refused requests reached no handler')
  })

  it('ignores gossip beyond a peer\'s rate, and still delivers another peer\'s', async (t) => {
    const receiver = await startPeer(t, { gossipPerSecond: 10, gossipBurst: 10 })
    const [flooder, honest] = await Promise.all([startPeer(t), startPeer(t)])
    await Promise.all([connect(flooder, receiver), connect(honest, receiver)])
    const receiverId = receiver.libp2p.peerId
    await until('the receiver\'s subscription', () => [flooder, honest].every(p => p.libp2p.services.pubsub.getSubscribers(NAMESPACE_TOPIC).some(s => s.equals(receiverId))))
    const started = Date.now()
    for (let i = 0; i < 300; i++) await flooder.libp2p.services.pubsub.publish(NAMESPACE_TOPIC, new TextEncoder().encode(`flood ${i}`))
    for (let i = 0; i < 5; i++) await honest.libp2p.services.pubsub.publish(NAMESPACE_TOPIC, new TextEncoder().encode(`news ${i}`))
    const honestId = honest.libp2p.peerId.toString()
    await until('the honest peer\'s gossip', () => receiver.messages.get(honestId) === 5)
    await until('the flood to be read', () => (receiver.messages.get(flooder.libp2p.peerId.toString()) ?? 0) + receiver.network.stats.gossipDropped >= 300)
    const seconds = (Date.now() - started) / 1000
    const delivered = receiver.messages.get(flooder.libp2p.peerId.toString()) ?? 0
    assert.ok(receiver.network.stats.gossipDropped > 0)
    assert.ok(delivered <= 10 + 10 * seconds + 2, `${delivered} of 300 delivered in ${seconds} s`)
  })
})
