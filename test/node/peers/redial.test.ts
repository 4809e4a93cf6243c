/**
 * Re-dials of a known peer that went away (node/peers/index.ts), on real
 * hosts on 127.0.0.1: each waits its exponential backoff times a drawn
 * factor, so the peers of a node that vanished do not all dial it at the
 * same instants. The timers are a recorder the test fires by hand (the
 * waits are what is under test); the dials are real and fail for real
 * against the stopped host, then succeed once it listens again.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { join } from 'node:path'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'
import { PeerManager, REDIAL_JITTER } from '../../../node/peers/index.js'
import { pino } from 'pino'
import { RecordedTimers } from '../../helpers/recorded-timers.js'
import { tempDir } from '../../helpers/temp.js'
import { until } from '../../helpers/processes.js'
import { unusedPort } from '../../helpers/ports.js'
import { loadKnownPeers } from '../../../node/peers/known-peers.js'

describe('re-dials of known peers', () => {
  it('each waits its backoff times a drawn factor, fails while the peer is away (said once, as a warning), and reaches it once it is back', async (t) => {
    const hosts: ShoalLibp2p[] = []
    t.after(async () => { await Promise.allSettled(hosts.map(async h => { await h.stop() })) })
    const a = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    hosts.push(a)
    const bKey = await generateKeyPair('Ed25519')
    // a port outside the kernel's ephemeral range: still free when b listens on it again
    const bListen = `/ip4/127.0.0.1/tcp/${await unusedPort()}`
    let b = await createHost({ privateKey: bKey, listen: [bListen] })
    hosts.push(b)
    // with its /p2p/ part
    const bAddr = b.getMultiaddrs()[0]

    const timers = new RecordedTimers()
    const draws = [0, 0.999, 0.25, 0.5]
    let drawn = 0
    const warnings: string[] = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(JSON.parse(line).msg) } })
    const peers = new PeerManager(
      { libp2p: a, logger, timers, random: () => draws[drawn++ % draws.length] },
      { file: join(await tempDir(t), 'peers.json'), bootstrap: [], minBackoffMs: 1000, maxBackoffMs: 8000 }
    )
    await peers.start()
    t.after(async () => { await peers.stop() })
    await peers.connect(bAddr.toString())

    // b goes away: a schedules its first re-dial, one backoff (1 s) times the first draw's factor
    await b.stop()
    await until('the first re-dial scheduled', () => timers.asked.length === 1, 10_000)
    assert.equal(REDIAL_JITTER, 0.5, 'the waits below are drawn in [0.5, 1.5) times the backoff')
    const expected = [1000 * 0.5, 2000 * 1.499, 4000 * 0.75, 8000 * 1]
    // each one fired by hand fails (b is down) and schedules the next, its backoff doubled up to the longest
    for (let i = 1; i < expected.length; i++) {
      timers.asked[i - 1].fn()
      await until(`re-dial ${i + 1} scheduled`, () => timers.asked.length === i + 1, 10_000)
    }
    // backoffs of 1, 2, 4 and 8 s, drawn as 0.5, ~1.5, 0.75 and 1 times them
    assert.deepEqual(timers.asked.map(x => Math.round(x.ms)), expected)
    assert.equal(peers.stats.redialsFailed, 3)
    // a node whose peer cannot be reached says so, once for the streak, not once per re-dial
    assert.equal(warnings.filter(m => m.startsWith('cannot reach a known peer')).length, 1, warnings.join('\n'))

    // b is back on the same address: the next re-dial reaches it and nothing more is scheduled
    b = await createHost({ privateKey: bKey, listen: [bListen] })
    hosts.push(b)
    timers.asked[3].fn()
    await until('a reconnected to b', () => a.getConnections(b.peerId).length > 0, 10_000)
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(timers.asked.length, 4, 'no re-dial after the peer is reached')
    assert.equal(peers.stats.redialsFailed, 3)
  })

  it('a disconnection is saved as the peer\'s last sight (at most once a minute), so a crash of this node does not date it from the connection\'s start', async (t) => {
    const hosts: ShoalLibp2p[] = []
    t.after(async () => { await Promise.allSettled(hosts.map(async h => { await h.stop() })) })
    const a = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    const b = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    hosts.push(a, b)
    let clock = 1_000_000
    const file = join(await tempDir(t), 'peers.json')
    const peers = new PeerManager({ libp2p: a, logger: pino({ level: 'silent' }), timers: new RecordedTimers(), now: () => clock }, { file, bootstrap: [] })
    await peers.start()
    t.after(async () => { await peers.stop() })
    await peers.connect(b.getMultiaddrs()[0].toString())
    const connectedAt = clock
    // the connection lasts ten minutes; then b goes away (no stop of this manager after: as a crash would leave it)
    clock += 10 * 60_000
    await b.stop()
    await until('the disconnection saved', async () => (await loadKnownPeers(file)).find(p => p.id === b.peerId.toString())?.seen !== connectedAt, 10_000)
    assert.equal((await loadKnownPeers(file)).find(p => p.id === b.peerId.toString())?.seen, clock)
  })
})
