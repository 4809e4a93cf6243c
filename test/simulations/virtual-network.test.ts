/**
 * The bounded virtual network on its own: links per node stay bounded and
 * the graph connected, gossip floods every node exactly once over several
 * hops with the author as sender, requests go only to linked peers, cut and
 * one-way links, partitions re-connected inside each group, bandwidth
 * queueing, and one seed → one run.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { SyncHandlers } from '../../node/namespace/sync.js'
import { Prng } from '../../simulations/prng.js'
import { VirtualNetwork, type NetworkOptions } from '../../simulations/virtual-network.js'
import { VirtualTime } from '../../simulations/virtual-time.js'

interface Log { messages: Array<[string, string]>, connected: string[] }

async function swarm (n: number, options: Partial<NetworkOptions>, seed = 1): Promise<{ time: VirtualTime, net: VirtualNetwork, logs: Log[], ids: string[] }> {
  const time = new VirtualTime()
  const net = new VirtualNetwork(time, new Prng(seed), { degree: 8, ...options })
  const ids = Array.from({ length: n }, (_, i) => `n${i}`)
  const logs: Log[] = ids.map(() => ({ messages: [], connected: [] }))
  for (let i = 0; i < n; i++) {
    const handlers: SyncHandlers = {
      message: (from, data) => { logs[i].messages.push([from, new TextDecoder().decode(data)]) },
      request: async (from, data) => new TextEncoder().encode(`${ids[i]} answers ${from}: ${new TextDecoder().decode(data)}`),
      connected: (peer) => { logs[i].connected.push(peer) }
    }
    await net.endpoint(ids[i]).handle(handlers)
  }
  return { time, net, logs, ids }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('bounded virtual network', () => {
  test('links per node are bounded, the graph connected, and a message reaches every node once over several hops', async () => {
    const { time, net, logs, ids } = await swarm(500, { maxLinks: 20 })
    const degrees = ids.map(id => net.peersOf(id).length)
    assert.ok(Math.max(...degrees) <= 20, `max degree ${Math.max(...degrees)}`)
    assert.ok(degrees.every(d => d >= 1))
    const total = degrees.reduce((a, b) => a + b, 0) / 2
    assert.ok(total < 500 * 5, `${total} links`)
    await net.endpoint('n7').publish(text('hello'))
    await time.advance(10_000)
    for (let i = 0; i < ids.length; i++) {
      assert.deepEqual(logs[i].messages, i === 7 ? [] : [['n7', 'hello']], `node ${i}`)
    }
    assert.ok(net.stats.maxHops >= 3, `max hops ${net.stats.maxHops}`)
    assert.ok(net.stats.seen > 0, 'copies were deduplicated')
    assert.ok(net.stats.sent < 500 * 10, `${net.stats.sent} legs for one message`)
  })

  test('requests go only to linked peers', async () => {
    const { time, net, ids } = await swarm(50, { requestTimeout: 500 })
    const a = net.endpoint('n0')
    const linked = a.peers()
    const other = ids.find(id => id !== 'n0' && !linked.includes(id)) as string
    const answer = await Promise.all([a.request(linked[0], text('hi'), new AbortController().signal), time.advance(1000)])
    assert.equal(new TextDecoder().decode(answer[0]), `${linked[0]} answers n0: hi`)
    const refused = assert.rejects(a.request(other, text('hi'), new AbortController().signal), { name: 'VirtualRequestError' })
    await time.advance(1000)
    await refused
    assert.equal(net.stats.notLinked, 1)
  })

  test('a one-way link loses one direction only; a two-way cut stops listing the peer until restored', async () => {
    const { time, net, logs } = await swarm(2, {})
    net.cut([['n0', 'n1']], { oneWay: true })
    assert.deepEqual(net.endpoint('n0').peers(), ['n1'])
    await net.endpoint('n0').publish(text('lost'))
    await net.endpoint('n1').publish(text('kept'))
    await time.advance(1000)
    assert.deepEqual(logs[1].messages, [])
    assert.deepEqual(logs[0].messages, [['n1', 'kept']])
    net.cut([['n0', 'n1']])
    assert.deepEqual(net.endpoint('n0').peers(), [])
    logs[0].connected.length = 0
    logs[1].connected.length = 0
    net.restore([['n0', 'n1']])
    await time.advance(1000)
    assert.deepEqual(logs[0].connected, ['n1'])
    assert.deepEqual(logs[1].connected, ['n0'])
  })

  test('after a partition each group is connected again, and a heal announces the re-joined links', async () => {
    const { time, net, logs, ids } = await swarm(200, {})
    const left = ids.filter((_, i) => i % 3 === 0)
    net.partition([left])
    await net.endpoint('n0').publish(text('left'))
    await net.endpoint('n1').publish(text('right'))
    await time.advance(10_000)
    for (let i = 0; i < ids.length; i++) {
      const want = i % 3 === 0 ? (i === 0 ? [] : [['n0', 'left']]) : (i === 1 ? [] : [['n1', 'right']])
      assert.deepEqual(logs[i].messages, want, `node ${i}`)
    }
    const before = logs.reduce((s, l) => s + l.connected.length, 0)
    net.heal()
    await time.advance(1000)
    assert.ok(logs.reduce((s, l) => s + l.connected.length, 0) > before)
  })

  test('a busy link queues: messages over a slow link arrive a transmit time apart', async () => {
    const { time, net, logs } = await swarm(2, { minDelay: 10, maxDelay: 10, bandwidth: 1 })
    const start = time.now()
    const at: number[] = []
    const h = logs[1]
    for (let k = 0; k < 3; k++) await net.endpoint('n0').publish(new Uint8Array(100))
    await time.runUntil(() => { while (at.length < h.messages.length) at.push(time.now() - start); return at.length === 3 }, { deadline: start + 10_000 })
    assert.deepEqual(at, [110, 210, 310])
  })

  test('one seed gives one run', async () => {
    const run = async (): Promise<string> => {
      const { time, net } = await swarm(300, { jitter: 20, drop: 0.05, duplicate: 0.05, reorder: 0.1 }, 42)
      for (let k = 0; k < 5; k++) await net.endpoint(`n${k * 7}`).publish(text(`m${k}`))
      await time.advance(10_000)
      return JSON.stringify({ stats: net.stats, links: net.links() })
    }
    assert.equal(await run(), await run())
  })
})
