/**
 * The per-peer token buckets and stream counts behind every protocol's
 * limits, on an injected clock.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { admit, PeerLimiter, withDefaults } from '../../../node/net/peer-limiter.js'
import { PeerStreams } from '../../../node/net/peer-streams.js'

function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1_000
  return { now: () => t, advance: (ms) => { t += ms } }
}

describe('PeerLimiter', () => {
  it('lets a burst through, then says how long to wait at the sustained rate, per peer', () => {
    const c = clock()
    const limiter = new PeerLimiter({ rate: 10, burst: 5, now: c.now })
    for (let i = 0; i < 5; i++) assert.equal(limiter.take('a'), 0)
    assert.equal(limiter.take('a'), 100, 'one token in debt: 100 ms at 10/s')
    assert.equal(limiter.take('a'), 200)
    // another peer has its own bucket
    assert.equal(limiter.take('b'), 0)
    c.advance(300)
    assert.equal(limiter.take('a'), 0, 'refilled by 3 tokens after 300 ms, debt paid')
    // a refund gives back what a refused caller reserved
    assert.equal(limiter.tryTake('c', 6), false, 'more than the burst')
    assert.equal(limiter.tryTake('c', 4), true)
    assert.equal(limiter.tryTake('c', 4), false)
    limiter.refund('c', 4)
    assert.equal(limiter.tryTake('c', 4), true)
  })

  it('never refills past the burst, nor when the clock goes back', () => {
    const c = clock()
    const limiter = new PeerLimiter({ rate: 1000, burst: 3, now: c.now })
    c.advance(60_000)
    assert.equal(limiter.tryTake('a', 3), true)
    assert.equal(limiter.tryTake('a'), false)
    c.advance(-10_000)
    assert.equal(limiter.tryTake('a'), false)
  })

  it('tracks at most maxPeers peers, forgetting the least recently seen', () => {
    const c = clock()
    const limiter = new PeerLimiter({ rate: 1, burst: 1, maxPeers: 3, now: c.now })
    for (const p of ['a', 'b', 'c']) assert.equal(limiter.tryTake(p), true)
    assert.equal(limiter.tryTake('a'), false, 'a is seen again: most recent now')
    assert.equal(limiter.tryTake('d'), true, 'd pushes out b, the least recently seen')
    assert.equal(limiter.size, 3)
    assert.equal(limiter.tryTake('a'), false, 'a was kept (still empty)')
    assert.equal(limiter.tryTake('b'), true, 'b was forgotten: a full bucket again')
    assert.equal(limiter.size, 3)
  })

  it('admits at once, after a bounded wait, or refuses (giving the tokens back)', async () => {
    const c = clock()
    const limiter = new PeerLimiter({ rate: 10, burst: 1, now: c.now })
    const waits: number[] = []
    const sleep = async (ms: number): Promise<void> => { waits.push(ms); c.advance(ms) }
    assert.equal(await admit(limiter, 'a', { maxDelayMs: 150, sleep }), 'now')
    assert.equal(await admit(limiter, 'a', { maxDelayMs: 150, sleep }), 'waited')
    assert.deepEqual(waits, [100])
    assert.equal(await admit(limiter, 'a', { cost: 5, maxDelayMs: 150, sleep }), 'refused')
    // the refused request took nothing: the next one waits only for its own token
    assert.equal(await admit(limiter, 'a', { maxDelayMs: 150, sleep }), 'waited')
    assert.deepEqual(waits, [100, 100])
  })

  it('rejects settings that would not limit anything', () => {
    assert.throws(() => new PeerLimiter({ rate: 0, burst: 1 }), { name: 'InvalidArgumentError' })
    assert.throws(() => new PeerLimiter({ rate: 1, burst: 0 }), { name: 'InvalidArgumentError' })
    assert.throws(() => new PeerLimiter({ rate: Infinity, burst: 1 }), { name: 'InvalidArgumentError' })
    assert.deepEqual(withDefaults({ a: 1, b: 2 }, { b: undefined, a: 3 }), { a: 3, b: 2 })
  })
})

describe('PeerStreams', () => {
  it('counts streams per peer up to the bound', () => {
    const streams = new PeerStreams(2)
    assert.equal(streams.enter('a'), true)
    assert.equal(streams.enter('a'), true)
    assert.equal(streams.enter('a'), false)
    assert.equal(streams.enter('b'), true)
    streams.leave('a')
    assert.equal(streams.enter('a'), true)
    assert.throws(() => new PeerStreams(0), { name: 'InvalidArgumentError' })
  })
})
