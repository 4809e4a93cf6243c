/**
 * A node without the swarm key that dials in is refused, and the refusal is
 * reported with its address (node/net/swarm-guard.ts): before, it was
 * counted in a libp2p metric and logged nowhere. A member's dial, even one
 * cut short, is not reported. Real libp2p hosts on 127.0.0.1.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'
import { foreignConnectionWarnings, startsLikeLibp2p } from '../../../node/net/swarm-guard.js'
import { until } from '../../helpers/processes.js'

describe('private swarm guard', () => {
  it('reports a stranger that dials in, not a member, not a member\'s dial cut short', async (t) => {
    const hosts: ShoalLibp2p[] = []
    t.after(async () => { await Promise.allSettled(hosts.map(async h => { await h.stop() })) })
    const key = randomBytes(32)
    const foreign: string[] = []
    const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), swarmKey: key, onForeignConnection: addr => { foreign.push(addr) } })
    hosts.push(a)
    const addr = a.getMultiaddrs()[0]
    const member = await createHost({ privateKey: await generateKeyPair('Ed25519'), swarmKey: key })
    hosts.push(member)
    const stranger = await createHost({ privateKey: await generateKeyPair('Ed25519'), swarmKey: randomBytes(32) })
    hosts.push(stranger)

    // members' dials cut short at once, then one that completes
    for (const ms of [1, 3, 10]) {
      await member.dial(addr, { signal: AbortSignal.timeout(ms) }).then(async () => { await member.hangUp(a.peerId) }, () => {})
    }
    await member.dial(addr, { signal: AbortSignal.timeout(10_000) })
    await new Promise(resolve => setTimeout(resolve, 500))
    assert.deepEqual(foreign, [], 'no member is reported')

    // the stranger gets no connection, and a reports it by address
    await assert.rejects(stranger.dial(addr, { signal: AbortSignal.timeout(2_000) }))
    await until('the stranger reported', () => foreign.length > 0, 15_000)
    assert.match(foreign[0], /^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
    assert.equal(a.getConnections(stranger.peerId).length, 0)

    // no libp2p node at all: a client that sends an HTTP request
    const before = foreign.length
    const socket = connect(Number(addr.toString().split('/tcp/')[1].split('/')[0]), '127.0.0.1')
    t.after(() => { socket.destroy() })
    socket.on('error', () => {})
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n')
    setTimeout(() => { socket.end() }, 200)
    await until('the HTTP client reported', () => foreign.length > before, 15_000)
  })

  it('tells the multistream header from noise, on any prefix', () => {
    const header = new Uint8Array([19, ...new TextEncoder().encode('/multistream/1.0.0\n'), 7, 7])
    assert.equal(startsLikeLibp2p(header), true)
    assert.equal(startsLikeLibp2p(header.subarray(0, 1)), true)
    assert.equal(startsLikeLibp2p(new Uint8Array([19, 47, 110])), false)
    assert.equal(startsLikeLibp2p(new Uint8Array([200])), false)
  })

  it('warns at most once a minute per remote IP', () => {
    const lines: Array<Record<string, any>> = []
    let now = 0
    const warn = foreignConnectionWarnings(pino({ level: 'warn' }, { write: (l: string) => { lines.push(JSON.parse(l)) } }), () => now)
    warn('/ip4/10.0.0.1/tcp/1000')
    warn('/ip4/10.0.0.1/tcp/1001')
    warn('/ip4/10.0.0.2/tcp/1000')
    now = 60_000
    warn('/ip4/10.0.0.1/tcp/1002')
    assert.deepEqual(lines.map(l => [l.remote, l.suppressed]), [['/ip4/10.0.0.1/tcp/1000', 0], ['/ip4/10.0.0.2/tcp/1000', 0], ['/ip4/10.0.0.1/tcp/1002', 1]])
    assert.match(lines[0].msg, /without this swarm's key/)
  })
})
