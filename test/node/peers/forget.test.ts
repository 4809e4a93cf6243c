/**
 * Which known peers a node keeps (node/peers/index.ts), on real hosts on
 * 127.0.0.1: a peer a user connected to is kept until `peers disconnect`;
 * a peer the node merely met is forgotten after a long time unreachable,
 * and beyond a bound the least recently connected goes. The timers and the
 * clock are the test's (the waits are what is under test); dials are real
 * and fail for real against stopped hosts.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'
import { PeerManager, dialableListenAddrs } from '../../../node/peers/index.js'
import { multiaddr } from '@multiformats/multiaddr'
import { RecordedTimers } from '../../helpers/recorded-timers.js'
import { tempDir } from '../../helpers/temp.js'
import { until } from '../../helpers/processes.js'

async function savedIds (file: string): Promise<string[]> {
  try {
    return (JSON.parse(await readFile(file, 'utf8')) as { peers: Array<{ id: string }> }).peers.map(p => p.id).sort()
  } catch {
    return []
  }
}

async function hosts (t: { after: (fn: () => Promise<void>) => void }, n: number): Promise<ShoalLibp2p[]> {
  const made: ShoalLibp2p[] = []
  t.after(async () => { await Promise.allSettled(made.map(async h => { await h.stop() })) })
  for (let i = 0; i < n; i++) made.push(await createHost({ privateKey: await generateKeyPair('Ed25519') }))
  return made
}

describe('known peers kept and forgotten', () => {
  it('a peer this node met is forgotten after a day unreachable; one a user connected to is dialled on', { timeout: 60_000 }, async (t) => {
    const [a, met, chosen] = await hosts(t, 3)
    const timers = new RecordedTimers()
    let clock = 1_000_000
    const file = join(await tempDir(t), 'peers.json')
    const peers = new PeerManager({ libp2p: a, logger: pino({ level: 'silent' }), timers, now: () => clock }, { file, bootstrap: [], forgetAfterMs: 24 * 3600_000 })
    await peers.start()
    t.after(async () => { await peers.stop() })
    await a.dial(met.getMultiaddrs()[0])
    await peers.connect(chosen.getMultiaddrs()[0].toString())
    await until('both peers saved', async () => (await savedIds(file)).length === 2, 10_000)
    assert.equal(peers.metCount, 1)

    // both go away: each gets a re-dial
    await met.stop()
    await chosen.stop()
    await until('two re-dials scheduled', () => timers.pending === 2, 10_000)
    // an hour later the re-dials fail: both are kept and dialled again
    clock += 3600_000
    timers.fireAll()
    await until('two more re-dials scheduled', () => timers.pending === 2, 10_000)
    assert.equal(peers.knownCount, 2)

    // a day after they went: the met peer is forgotten, the chosen one dialled on
    clock += 24 * 3600_000
    timers.fireAll()
    await until('one re-dial scheduled', async () => timers.pending === 1 && (await savedIds(file)).length === 1, 10_000)
    assert.deepEqual(await savedIds(file), [chosen.peerId.toString()])
    assert.equal(peers.knownCount, 1)
    assert.equal(peers.metCount, 0)
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(timers.pending, 1, 'nothing scheduled for the forgotten peer')
  })

  it('a peer that dialled this node is remembered at the addresses it listens on, and dialled again once it is back', { timeout: 60_000 }, async (t) => {
    // found on a cluster: the first node, which every other had joined, kept an empty peers.json; given a new listen
    // port it found none of its peers again (they dialled its old one)
    const [a, b] = await hosts(t, 2)
    const timers = new RecordedTimers()
    const file = join(await tempDir(t), 'peers.json')
    const peers = new PeerManager({ libp2p: a, logger: pino({ level: 'silent' }), timers }, { file, bootstrap: [] })
    await peers.start()
    t.after(async () => { await peers.stop() })
    await b.dial(a.getMultiaddrs()[0])
    const listening = b.getMultiaddrs()[0].toString()
    await until('b saved with its listen address', async () => {
      const saved = JSON.parse(await readFile(file, 'utf8').catch(() => '{"peers":[]}')) as { peers: Array<{ id: string, addrs: string[] }> }
      return saved.peers.some(p => p.id === b.peerId.toString() && p.addrs.includes(listening))
    }, 10_000)
    assert.equal(peers.metCount, 1)
    // b goes: a dials it again at that address
    await b.hangUp(a.peerId)
    await until('a re-dial of b scheduled', () => timers.pending === 1, 10_000)
    timers.fireAll()
    await until('a connected to b again', () => a.getConnections(b.peerId).some(c => c.direction === 'outbound'), 10_000)
  })

  it('of a peer\'s listen addresses, those on the host it came from go first; loopback only for a peer on this machine; never link-local or unspecified', () => {
    const given = ['/ip4/127.0.0.1/tcp/4747', '/ip4/10.0.0.2/tcp/4747', '/ip4/192.168.1.5/tcp/4747', '/ip4/169.254.3.4/tcp/4747', '/ip6/fe80::1/tcp/4747', '/ip6/::1/tcp/4747', '/ip4/0.0.0.0/tcp/4747'].map(a => multiaddr(a))
    const remote = dialableListenAddrs(given, multiaddr('/ip4/192.168.1.5/tcp/50123')).map(a => a.toString())
    assert.deepEqual(remote, ['/ip4/192.168.1.5/tcp/4747', '/ip4/10.0.0.2/tcp/4747'])
    const local = dialableListenAddrs(given, multiaddr('/ip4/127.0.0.1/tcp/50123')).map(a => a.toString())
    assert.deepEqual(local, ['/ip4/127.0.0.1/tcp/4747', '/ip4/10.0.0.2/tcp/4747', '/ip4/192.168.1.5/tcp/4747', '/ip6/::1/tcp/4747'])
  })

  it('past the bound on peers met, the least recently connected one not connected now is forgotten', { timeout: 60_000 }, async (t) => {
    const [a, first, second, third] = await hosts(t, 4)
    const timers = new RecordedTimers()
    let clock = 1_000_000
    const file = join(await tempDir(t), 'peers.json')
    const peers = new PeerManager({ libp2p: a, logger: pino({ level: 'silent' }), timers, now: () => clock }, { file, bootstrap: [], maxMetPeers: 2 })
    await peers.start()
    t.after(async () => { await peers.stop() })
    await a.dial(first.getMultiaddrs()[0])
    clock += 1000
    await a.dial(second.getMultiaddrs()[0])
    await until('two met peers saved', async () => (await savedIds(file)).length === 2, 10_000)
    // the first goes away (its re-dial pending); a third is met: over the bound, the first is forgotten
    await first.stop()
    await until('a re-dial of the first', () => timers.pending === 1, 10_000)
    clock += 1000
    await a.dial(third.getMultiaddrs()[0])
    await until('the first forgotten', async () => !(await savedIds(file)).includes(first.peerId.toString()), 10_000)
    assert.deepEqual(await savedIds(file), [second.peerId.toString(), third.peerId.toString()].sort())
    assert.equal(timers.pending, 0, 'its re-dial cancelled')
    assert.equal(peers.metCount, 2)
  })

  it('a peers.json over the bound, written before there was one, is cut to it at start, before any dial: its oldest entries go', { timeout: 60_000 }, async (t) => {
    const [a] = await hosts(t, 1)
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())
    const file = join(await tempDir(t), 'peers.json')
    // as an older node wrote it: no kind, no time seen; nothing listens on port 1
    await writeFile(file, JSON.stringify({ peers: ids.map(id => ({ id, addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${id}`] })) }))
    const timers = new RecordedTimers()
    const peers = new PeerManager({ libp2p: a, logger: pino({ level: 'silent' }), timers, now: () => 1_000_000 }, { file, bootstrap: [], maxMetPeers: 2 })
    await peers.start()
    t.after(async () => { await peers.stop() })
    assert.equal(peers.knownCount, 2)
    assert.equal(timers.pending, 2, 'dials scheduled for the peers kept only')
    await until('the file cut to the bound', async () => (await savedIds(file)).length === 2, 10_000)
    assert.deepEqual(await savedIds(file), ids.slice(3).sort())
  })

  it('an address where another node answers is refused though the peer it names is connected: not remembered', { timeout: 60_000 }, async (t) => {
    const [a, b, c] = await hosts(t, 3)
    const file = join(await tempDir(t), 'peers.json')
    const peers = new PeerManager({ libp2p: a, logger: pino({ level: 'silent' }), timers: new RecordedTimers() }, { file, bootstrap: [] })
    await peers.start()
    t.after(async () => { await peers.stop() })
    const cAddr = c.getMultiaddrs()[0].toString()
    await peers.connect(cAddr)
    // b's address with c's id (a typo, or b took a port c had): before, the open connection to c was handed back and the address kept
    const wrong = `${b.getMultiaddrs()[0].toString().replace(/\/p2p\/[^/]+$/, '')}/p2p/${c.peerId.toString()}`
    await assert.rejects(peers.connect(wrong), (err: Error) => err.name === 'PeerUnreachableError' && err.message.includes('another node answers at that address'))
    // the right address again, connected already: accepted, and the connection there stays the only one
    await peers.connect(cAddr)
    assert.equal(a.getConnections(c.peerId).length, 1)
    await until('the file saved', async () => (await savedIds(file)).length === 1, 10_000)
    const saved = JSON.parse(await readFile(file, 'utf8')) as { peers: Array<{ id: string, addrs: string[] }> }
    assert.deepEqual(saved.peers.map(p => p.id), [c.peerId.toString()])
    assert.ok(saved.peers[0].addrs.every(addr => !addr.startsWith(wrong.replace(/\/p2p\/[^/]+$/, ''))), `the wrong address was kept: ${saved.peers[0].addrs.join(', ')}`)
  })

  it('an address of this node itself is the caller\'s mistake: InvalidArgumentError, no dial, nothing remembered', { timeout: 60_000 }, async (t) => {
    const [a] = await hosts(t, 1)
    const file = join(await tempDir(t), 'peers.json')
    const peers = new PeerManager({ libp2p: a, logger: pino({ level: 'silent' }), timers: new RecordedTimers() }, { file, bootstrap: [] })
    await peers.start()
    t.after(async () => { await peers.stop() })
    const own = `/ip4/127.0.0.1/tcp/1/p2p/${a.peerId.toString()}`
    await assert.rejects(peers.connect(own), (err: Error) => err.name === 'InvalidArgumentError' && err.message.includes('names this node'))
    assert.equal(peers.knownCount, 0)
    assert.equal(a.getConnections().length, 0)
  })
})
