/**
 * `shoal peers disconnect` on real hosts on 127.0.0.1: the peer is
 * forgotten and not dialled again by this node — neither by the peer
 * manager's re-dials nor by libp2p's reconnect queue, which re-dials at
 * once a peer tagged `keep-alive…` (the DHT tags its closest peers so: in a
 * small swarm, every peer).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { KEEP_ALIVE } from '@libp2p/interface'
import { pino } from 'pino'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'
import { PeerManager } from '../../../node/peers/index.js'
import { tempDir } from '../../helpers/temp.js'
import { until } from '../../helpers/processes.js'
import type { PeerId } from '@libp2p/interface'

async function keepAliveTags (host: ShoalLibp2p, peer: PeerId): Promise<string[]> {
  try {
    return [...(await host.peerStore.get(peer)).tags.keys()].filter(tag => tag.startsWith(KEEP_ALIVE))
  } catch {
    return []
  }
}

describe('peers disconnect', () => {
  it('a peer the DHT keeps alive is not dialled again after a disconnect', { timeout: 60_000 }, async (t) => {
    const hosts: ShoalLibp2p[] = []
    t.after(async () => { await Promise.allSettled(hosts.map(async h => { await h.stop() })) })
    const a = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    const b = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    hosts.push(a, b)
    const peers = new PeerManager({ libp2p: a, logger: pino({ level: 'silent' }) }, { file: join(await tempDir(t), 'peers.json'), bootstrap: [] })
    await peers.start()
    t.after(async () => { await peers.stop() })
    await peers.connect(b.getMultiaddrs()[0].toString())
    // the DHT tags its closest peers every few seconds (5 s in @libp2p/kad-dht)
    await until('the DHT keeps b alive on a, and a on b', async () => (await keepAliveTags(a, b.peerId)).length > 0 && (await keepAliveTags(b, a.peerId)).length > 0, 30_000)
    // b keeps no tag for a (its reconnect queue would dial a at once): what is looked at is a's own dials
    const bTags = await keepAliveTags(b, a.peerId)
    if (bTags.length > 0) await b.peerStore.merge(a.peerId, { tags: Object.fromEntries(bTags.map(tag => [tag, undefined])) })

    await peers.disconnect(b.peerId.toString())
    const dialled: string[] = []
    const onOpen = (evt: CustomEvent<{ remotePeer: PeerId, direction: string }>): void => {
      // a connection b opens (its DHT may query a) is b's business
      if (evt.detail.remotePeer.equals(b.peerId) && evt.detail.direction === 'outbound') dialled.push(evt.detail.direction)
    }
    a.addEventListener('connection:open', onOpen as any)
    t.after(() => { a.removeEventListener('connection:open', onOpen as any) })
    // libp2p's reconnect queue dials within milliseconds of the disconnect; give it three seconds
    await sleep(3_000)
    assert.deepEqual(dialled, [], 'connections to b that a opened after the disconnect')
    assert.deepEqual(await keepAliveTags(a, b.peerId), [], 'the keep-alive tags are gone')
  })
})
