/**
 * The shards protocol's per-peer limits between real libp2p hosts on
 * 127.0.0.1: a peer flooding requests or `hold`s gets typed refusals while
 * another peer's requests are answered; malformed requests get a typed
 * error and reach no handler.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { pino } from 'pino'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'
import { Libp2pShardsNetwork, type ShardsNetworkInit } from '../../../node/durability/index.js'
import { decodeShardsResponse, MAX_SHARDS_MESSAGE_BYTES, SHARDS_PROTOCOL, type ShardsRequest } from '../../../protocol/shards.js'
import { defer, type CleanupContext } from '../../helpers/temp.js'
import { flood } from '../net/flood.js'

const logger = pino({ level: 'silent' })

interface Peer { libp2p: ShoalLibp2p, network: Libp2pShardsNetwork, handled: ShardsRequest[] }

async function startPeer (t: CleanupContext, init?: ShardsNetworkInit): Promise<Peer> {
  const libp2p = await createHost({ privateKey: await generateKeyPair('Ed25519') })
  defer(t, async () => { await libp2p.stop() })
  const network = new Libp2pShardsNetwork({ libp2p, logger }, init)
  const handled: ShardsRequest[] = []
  // a handler that accepts everything: what is measured here is what reaches it
  await network.start(async (_from, request) => {
    handled.push(request)
    return request.type === 'info' ? { v: 1, type: 'info' } : request.type === 'hold' ? { v: 1, type: 'ok' } : { v: 1, type: 'holdings', shards: [] }
  })
  defer(t, async () => { await network.stop() })
  return { libp2p, network, handled }
}

async function connect (a: Peer, b: Peer): Promise<void> {
  await a.libp2p.dial(b.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
}

async function dagCborCID (n: number): Promise<CID> {
  return CID.createV1(0x71, await sha256.digest(Uint8Array.of(n)))
}

describe('shards protocol limits', { timeout: 60_000 }, () => {
  it('refuses a peer flooding requests and holds (typed), while another peer is answered', async (t) => {
    const server = await startPeer(t, { requestsPerSecond: 20, requestBurst: 20, holdsPerMinute: 60, holdBurst: 3, maxDelayMs: 200 })
    const [flooder, honest] = await Promise.all([startPeer(t), startPeer(t)])
    await Promise.all([connect(flooder, server), connect(honest, server)])
    const serverId = server.libp2p.peerId.toString()
    // 200 `info` requests, 8 at a time
    const flooding = flood(200, 8, async () => {
      try {
        await flooder.network.request(serverId, { v: 1, type: 'info' })
        return 'answered'
      } catch (err: any) {
        if (err?.name === 'RateLimitedError') return 'refused'
        throw err
      }
    })
    // meanwhile the other peer's requests are all answered
    for (let i = 0; i < 10; i++) assert.equal((await honest.network.request(serverId, { v: 1, type: 'info' })).type, 'info')
    const { answered, refused, seconds } = await flooding
    assert.ok(refused > 0, 'part of the flood was refused')
    assert.ok(answered >= 20, 'the flooder still got its burst')
    assert.ok(answered <= 20 + 20 * seconds + 8, `${answered} answered in ${seconds} s: no more than the burst and the rate allow`)
    t.diagnostic(`flood: ${answered} answered, ${refused} refused in ${seconds.toFixed(1)} s`)
    assert.equal(server.network.stats.requestsRefused, refused)
    // holds: a burst of 3, then one a second; the fourth at once is refused
    const manifest = await dagCborCID(1)
    const hold: ShardsRequest = { v: 1, type: 'hold', manifest, root: manifest, shards: [[0, 0]] }
    for (let i = 0; i < 3; i++) assert.equal((await honest.network.request(serverId, hold)).type, 'ok')
    await assert.rejects(honest.network.request(serverId, hold), (err: Error) => err.name === 'RateLimitedError' && err.message.includes('holds per minute'))
    assert.equal(server.handled.filter(r => r.type === 'hold').length, 3, 'the refused hold reached no handler')
  })

  it('answers a malformed request with a typed error and reaches no handler', async (t) => {
    const [server, peer] = await Promise.all([startPeer(t), startPeer(t)])
    await connect(peer, server)
    for (const bytes of [new TextEncoder().encode('junk'), Uint8Array.of(0xa1, 0x61, 0x76, 0x02)]) {
      const stream = await peer.libp2p.dialProtocol(server.libp2p.peerId, SHARDS_PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: MAX_SHARDS_MESSAGE_BYTES })
      await lp.write(bytes)
      const answer = decodeShardsResponse((await lp.read()).subarray())
      assert.equal(answer.type, 'error')
      assert.ok(answer.type === 'error' && answer.message.startsWith('invalid shards message'), answer.type === 'error' ? answer.message : '')
    }
    // an oversized frame: the stream is reset unread
    const stream = await peer.libp2p.dialProtocol(server.libp2p.peerId, SHARDS_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: 2 * MAX_SHARDS_MESSAGE_BYTES })
    await lp.write(new Uint8Array(MAX_SHARDS_MESSAGE_BYTES + 1)).catch(() => {})
    await assert.rejects(lp.read())
    assert.deepEqual(server.handled, [])
  })
})
