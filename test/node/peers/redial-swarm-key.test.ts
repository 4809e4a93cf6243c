/**
 * A known peer that comes back with another swarm key (the swarm's key was
 * changed and this node was left on the old one, or the peer was): the
 * re-dials fail in the handshake, not with a refusal, and the node says so
 * with a warning naming the swarm key, even after it already warned that
 * the peer was down (node/peers/index.ts, dial-failure.ts). Real hosts on
 * 127.0.0.1; the re-dial timers are fired by hand.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'
import { PeerManager } from '../../../node/peers/index.js'
import { dialFailureKind } from '../../../node/peers/dial-failure.js'
import { RecordedTimers } from '../../helpers/recorded-timers.js'
import { tempDir } from '../../helpers/temp.js'
import { until } from '../../helpers/processes.js'
import { unusedPort } from '../../helpers/ports.js'

describe('re-dials of a peer on another swarm key', () => {
  it('warn again, naming the swarm key, when a peer that was down comes back with another key', async (t) => {
    const hosts: ShoalLibp2p[] = []
    t.after(async () => { await Promise.allSettled(hosts.map(async h => { await h.stop() })) })
    const oldKey = randomBytes(32)
    const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), swarmKey: oldKey })
    hosts.push(a)
    const bKey = await generateKeyPair('Ed25519')
    const bListen = `/ip4/127.0.0.1/tcp/${await unusedPort()}`
    let b = await createHost({ privateKey: bKey, listen: [bListen], swarmKey: oldKey })
    hosts.push(b)

    const timers = new RecordedTimers()
    const warnings: Array<{ msg: string, failure?: string }> = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(JSON.parse(line)) } })
    const peers = new PeerManager({ libp2p: a, logger, timers, random: () => 0.5 }, { file: join(await tempDir(t), 'peers.json'), bootstrap: [] })
    await peers.start()
    t.after(async () => { await peers.stop() })
    await peers.connect(b.getMultiaddrs()[0].toString())

    // b goes down: the re-dial is refused, told once
    await b.stop()
    await until('the first re-dial scheduled', () => timers.asked.length === 1, 10_000)
    timers.asked[0].fn()
    await until('the second re-dial scheduled', () => timers.asked.length === 2, 15_000)
    const told = (): typeof warnings => warnings.filter(w => w.msg.startsWith('cannot reach a known peer'))
    assert.equal(told().length, 1, JSON.stringify(warnings))
    assert.equal(told()[0].failure, 'refused')

    // b is back on the same address with a new key: the handshake fails, and that is told too
    b = await createHost({ privateKey: bKey, listen: [bListen], swarmKey: randomBytes(32) })
    hosts.push(b)
    timers.asked[1].fn()
    await until('the third re-dial scheduled', () => timers.asked.length === 3, 20_000)
    assert.equal(a.getConnections(b.peerId).length, 0, 'no connection across swarm keys')
    assert.equal(told().length, 2, JSON.stringify(warnings))
    assert.equal(told()[1].failure, 'handshake')
    assert.match(told()[1].msg, /swarm key/)

    // the same failure again is not told again
    timers.asked[2].fn()
    await until('the fourth re-dial scheduled', () => timers.asked.length === 4, 20_000)
    assert.equal(told().length, 2, JSON.stringify(warnings))
  })

  it('sorts dial errors: refused, handshake, identity, other', () => {
    assert.equal(dialFailureKind(Object.assign(new Error('Payload identity key 12D3KooWA does not match expected remote identity key 12D3KooWB'), { name: 'EncryptionFailedError' })), 'identity')
    assert.equal(dialFailureKind(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })), 'refused')
    assert.equal(dialFailureKind(new AggregateError([Object.assign(new Error('x'), { name: 'EncryptionFailedError' })], 'All multiaddr dials failed')), 'handshake')
    assert.equal(dialFailureKind(new Error('The operation was aborted due to timeout')), 'other')
  })
})
