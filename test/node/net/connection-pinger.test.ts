/**
 * The connection pinger: each connection pinged once per interval at a
 * moment of its own (not all at once, as libp2p's monitor does), on real
 * hosts: answered pings give the connection a round trip, and a peer that
 * stops answering has its connection closed.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { PING_PROTOCOL, PingSchedule } from '../../../node/net/connection-pinger.js'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'

/** A small deterministic generator in [0, 1) (xorshift32). */
function generator (seed: number): () => number {
  let x = seed
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32 }
}

/** Wait until `ok()` holds, polling; fail after `ms`. */
async function until (ok: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('PingSchedule', () => {
  it('pings each connection once per interval, at a moment of its own', () => {
    const schedule = new PingSchedule(10_000, generator(7))
    const ids = Array.from({ length: 200 }, (_, i) => `c${i}`)
    const taken = new Map<string, number[]>()
    const perTick: number[] = []
    // three intervals of ticks every 500 ms (what the pinger does at 10 s)
    for (let now = 0; now < 30_000; now += 500) {
      const out = schedule.take(ids, now)
      perTick.push(out.length)
      for (const id of out) taken.set(id, [...taken.get(id) ?? [], now])
    }
    for (const id of ids) {
      const times = taken.get(id) ?? []
      // first seen at 0, due within the first interval, then every interval
      assert.ok(times.length === 3 || times.length === 2, `${id}: ${times.join(',')}`)
      for (let i = 1; i < times.length; i++) assert.equal(times[i] - times[i - 1], 10_000)
    }
    // spread: no tick carries more than a few times its share (200 connections / 20 ticks = 10)
    assert.ok(Math.max(...perTick) <= 25, `busiest tick pinged ${Math.max(...perTick)}`)
    assert.ok(perTick.filter(n => n > 0).length >= 50, 'pings fall in most ticks')
  })

  it('keeps each connection at its own moment after a long pause, not all at the same one', () => {
    const schedule = new PingSchedule(10_000, generator(11))
    const ids = Array.from({ length: 200 }, (_, i) => `c${i}`)
    const times = new Map<string, number[]>()
    const after: number[] = []
    // ticks every 500 ms, but none between 10 s and 21 s (a paused process), then 30 s more
    for (let now = 0; now <= 51_000; now += 500) {
      if (now > 10_000 && now < 21_000) continue
      const out = schedule.take(ids, now)
      if (now > 21_000) after.push(out.length)
      for (const id of out) times.set(id, [...times.get(id) ?? [], now])
    }
    assert.ok(Math.max(...after) <= 25, `busiest tick after the pause pinged ${Math.max(...after)} of 200`)
    for (const id of ids) {
      const t = (times.get(id) ?? []).filter(x => x > 21_000)
      assert.ok(t.length >= 2, `${id}: ${t.join(',')}`)
      for (let i = 1; i < t.length; i++) assert.ok(Math.abs(t[i] - t[i - 1] - 10_000) <= 500, `${id}: ${t.join(',')}`)
    }
  })

  it('forgets closed connections, and a late tick pings a connection once, not twice', () => {
    const schedule = new PingSchedule(1000, () => 0.5)
    assert.deepEqual(schedule.take(['a', 'b'], 0), [])
    assert.deepEqual(schedule.take(['a', 'b'], 500).sort(), ['a', 'b'])
    // the event loop was busy for three intervals: one ping each now, the next half an interval on at the earliest
    assert.deepEqual(schedule.take(['a', 'b'], 4000).sort(), ['a', 'b'])
    assert.deepEqual(schedule.take(['a', 'b'], 4100), [])
    assert.deepEqual(schedule.take(['a'], 4600), ['a'])
    assert.equal(schedule.size, 1)
  })
})

describe('connection pinger on real hosts', () => {
  /** Two hosts on 127.0.0.1 with a fast pinger, a connected to b. */
  /** Two connected hosts whose pingers ping every 300 ms and give up after `timeout` (a ping unanswered that long fails). */
  async function pair (t: { after: (fn: () => Promise<void>) => void }, timeout = { minTimeout: 400, maxTimeout: 800 }): Promise<[ShoalLibp2p, ShoalLibp2p]> {
    const hosts: ShoalLibp2p[] = []
    t.after(async () => { await Promise.allSettled(hosts.map(async h => { await h.stop() })) })
    for (let i = 0; i < 2; i++) {
      hosts.push(await createHost({ privateKey: await generateKeyPair('Ed25519'), pinger: { interval: 300, timeout } }))
    }
    const [a, b] = hosts
    await a.dial(b.getMultiaddrs()[0])
    return [a, b]
  }

  it('pings every connection: answered, with its round trip, the connection kept', async (t) => {
    // no ping may fail here: timeouts a loaded machine's pauses do not reach (800 ms did, under a load of 11)
    const [a, b] = await pair(t, { minTimeout: 5_000, maxTimeout: 10_000 })
    await until(() => a.services.pinger.stats.answered >= 2 && b.services.pinger.stats.answered >= 2, 10_000, 'answered pings on both hosts')
    const conn = a.getConnections(b.peerId)[0]
    assert.equal(typeof conn.rtt, 'number')
    assert.equal(conn.status, 'open')
    assert.equal(a.services.pinger.stats.failed, 0)
  })

  it('closes the connection of a peer that stops answering pings', async (t) => {
    const [a, b] = await pair(t)
    await until(() => a.services.pinger.stats.answered >= 1, 10_000, 'a first answered ping')
    // b now takes ping streams and never echoes: a's pings time out
    await b.unhandle(PING_PROTOCOL)
    await b.handle(PING_PROTOCOL, () => {})
    await until(() => a.getConnections(b.peerId).length === 0, 10_000, 'a to close its connection to b')
    assert.ok(a.services.pinger.stats.failed >= 1)
  })
})
