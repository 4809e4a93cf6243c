/**
 * Honest stripe health (node/durability/health.ts), a stripe's and a file's
 * pin state in one word and the work under way on a stripe (pin-status.ts),
 * and the abortable sleep of repair and scrub.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { assessStripe, emptySummary, fileState, spreadOf, stripeState, worstState, type HealthSummary } from '../../../node/durability/health.js'
import { sleep } from '../../../node/durability/sleep.js'
import { filePinState, stripeWork, type ShardStatus, type StripePinState, type StripeStatus } from '../../../node/durability/pin-status.js'

describe('stripe health', () => {
  it('is healthy only with k+m shards on k+m distinct nodes', () => {
    assert.deepEqual(assessStripe(4, 2, [['a'], ['b'], ['c'], ['d'], ['e'], ['f']]), { health: 'healthy', live: 6, spread: 6 })
    assert.deepEqual(assessStripe(4, 2, [['a'], ['a'], ['a'], ['a'], ['a'], ['a']]), { health: 'at-risk', live: 6, spread: 1 })
    assert.deepEqual(assessStripe(4, 2, [['a'], ['b'], ['c'], ['d'], ['e'], ['e']]), { health: 'at-risk', live: 6, spread: 5 })
    assert.deepEqual(assessStripe(4, 2, [['a'], ['b'], ['c'], ['d'], ['e'], []]), { health: 'degraded', live: 5, spread: 5 })
    assert.deepEqual(assessStripe(4, 2, [['a'], ['b'], ['c'], [], [], []]), { health: 'lost', live: 3, spread: 3 })
  })

  it('finds a node for every shard when one exists (augmenting paths), and zero shards need none', () => {
    // greedy would give shard 0 node a and leave shard 1 without one
    assert.equal(spreadOf([['a', 'b'], ['a']]), 2)
    assert.equal(spreadOf([['a', 'b', 'c'], ['a', 'b'], ['a']]), 3)
    assert.equal(spreadOf([['a', 'b'], ['a', 'b'], ['a', 'b']]), 2)
    assert.equal(assessStripe(2, 1, [['a'], undefined, ['b']]).health, 'healthy', 'a short last stripe: its zero shard is known')
    assert.equal(assessStripe(2, 1, [['a'], undefined, ['a']]).health, 'at-risk')
  })

  it('with zones, at most m shards of a healthy stripe sit in one zone', () => {
    const six = [['a'], ['b'], ['c'], ['d'], ['e'], ['f']]
    const zones: Record<string, string> = { a: 'z1', b: 'z1', c: 'z2', d: 'z2', e: 'z3', f: 'z3' }
    assert.equal(assessStripe(4, 2, six, n => zones[n]).health, 'healthy', 'two shards per zone: losing a zone loses m')
    const crowded: Record<string, string> = { ...zones, c: 'z1' }
    assert.equal(assessStripe(4, 2, six, n => crowded[n]).health, 'at-risk', 'three shards in z1: losing it loses more than m')
    assert.equal(assessStripe(4, 2, six, () => undefined).health, 'healthy', 'nodes without zones count by node only')
    assert.equal(assessStripe(4, 2, [['a'], ['b'], ['c'], ['d'], ['e'], []], n => crowded[n]).health, 'degraded', 'a missing shard is degraded, zones or not')
  })
})

describe('a stripe\'s and a file\'s pin state', () => {
  const healths = ['healthy', 'at-risk', 'degraded', 'lost'] as const
  it('a stripe is lost or degraded whatever is under way, else placing or pending, else its health', () => {
    for (const h of healths) assert.equal(stripeState(h, undefined), h, 'no work under way: its health')
    assert.equal(stripeState('healthy', 'placing'), 'placing')
    assert.equal(stripeState('at-risk', 'placing'), 'placing', 'a stripe whose shards still sit here while they are pushed')
    assert.equal(stripeState('healthy', 'pending'), 'pending')
    assert.equal(stripeState('at-risk', 'pending'), 'pending', 'a lone writer holding every shard until enough peers are live')
    for (const work of ['placing', 'pending'] as const) {
      assert.equal(stripeState('degraded', work), 'degraded', 'missing shards show through the work')
      assert.equal(stripeState('lost', work), 'lost')
    }
  })

  it('the worst stripe is the file\'s: lost, degraded, placing, pending, at-risk, healthy', () => {
    const order = ['lost', 'degraded', 'placing', 'pending', 'at-risk', 'healthy'] as const
    order.forEach((state, i) => {
      for (const better of order.slice(i)) assert.equal(worstState([better, state, better]), state, `${state} over ${better}`)
    })
    assert.equal(worstState([]), undefined)
  })

  it('a file says not-coded or pending without stripes, else its worst stripe', () => {
    const stripes = (...states: StripePinState[]): StripeStatus[] => states.map((state, index) => ({ index, state, health: 'healthy', live: 6, shards: [] }))
    assert.equal(filePinState({ stripes: [] }), 'not-coded', 'pin none, or a file kept where its blocks are')
    assert.equal(filePinState({ stripes: [], pending: true, waiting: '1 live node, ec:4+2 needs 3' }), 'pending')
    assert.equal(filePinState({ stripes: stripes('healthy', 'healthy') }), 'healthy')
    assert.equal(filePinState({ stripes: stripes('healthy', 'at-risk') }), 'at-risk')
    assert.equal(filePinState({ stripes: stripes('at-risk', 'pending', 'healthy') }), 'pending')
    assert.equal(filePinState({ stripes: stripes('pending', 'placing', 'healthy'), pending: true }), 'placing', 'a file is placing while one stripe is')
    assert.equal(filePinState({ stripes: stripes('placing', 'degraded', 'pending') }), 'degraded', 'missing shards show through a placement')
    assert.equal(filePinState({ stripes: stripes('degraded', 'lost', 'placing'), pending: true }), 'lost')
  })

  it('the metrics\' file state follows the same rule from the counts of stripe health', () => {
    const summary = (h: Partial<HealthSummary>): HealthSummary => ({ ...emptySummary(), ...h })
    assert.equal(fileState(summary({ healthy: 2 }), false), 'healthy')
    assert.equal(fileState(summary({ healthy: 1, atRisk: 1 }), false), 'at_risk')
    assert.equal(fileState(summary({ atRisk: 1 }), true), 'pending')
    assert.equal(fileState(summary({ atRisk: 1, degraded: 1 }), true), 'degraded')
    assert.equal(fileState(summary({ lost: 1, degraded: 1 }), true), 'lost')
  })
})

describe('the work under way on a stripe', () => {
  /** Six shards planned on p0..p5; `at[i]` holds shard i now (undefined: nobody yet). */
  const shards = (at: Array<string | undefined>): ShardStatus[] => at.map((holder, index) => ({ index, cid: `c${index}`, holders: holder === undefined ? [] : [holder], placed: `p${index}` }))
  const planned = shards(['p0', 'p1', 'p2', 'p3', 'p4', 'p5'])
  const here = shards(['self', 'self', 'self', 'self', 'self', 'self'])

  it('counted per stripe: placing with its shards acknowledged of those to place, until they all are', () => {
    const first = { acked: 2, total: 5 }
    const underWay = { pushed: 7, total: 10, stripes: new Map([[0, first], [1, { acked: 5, total: 5 }]]) }
    const known = { underWay, pending: true }
    assert.deepEqual(stripeWork(0, here, known), { work: 'placing', progress: { acked: 2, total: 5 } })
    assert.deepEqual(stripeWork(1, planned, known), { work: 'pending', waiting: 'its shards are on their holders; the file\'s other stripes are being placed' })
    assert.equal(stripeWork(2, here, known).work, 'pending', 'a stripe with nothing to push waits for the others')
    const returned = stripeWork(0, here, known).progress
    first.acked = 5
    assert.deepEqual(returned, { acked: 2, total: 5 }, 'a report keeps what it saw')
    assert.equal(stripeWork(0, here, known).work, 'pending')
  })

  it('not counted per stripe: placing while a shard is not on its planned holder (or no plan is recorded yet)', () => {
    const known = { underWay: { pushed: 3, total: 10 }, pending: true }
    assert.deepEqual(stripeWork(0, here, known), { work: 'placing' })
    assert.deepEqual(stripeWork(0, shards(['p0', 'p1', 'p2', 'p3', 'p4', undefined]), known), { work: 'placing' })
    assert.equal(stripeWork(0, planned, known).work, 'pending')
    const unplanned = planned.map(({ placed, ...rest }) => rest)
    assert.deepEqual(stripeWork(0, unplanned, known), { work: 'placing' })
    const zero = [...planned.slice(0, 5), { index: 5, holders: [], placed: 'p5' }]
    assert.equal(stripeWork(0, zero, known).work, 'pending', 'a zero shard is placed nowhere')
  })

  it('no placement running: pending with why while not final, else no work', () => {
    assert.deepEqual(stripeWork(0, here, { pending: true, why: 'placed over 3 live nodes' }), { work: 'pending', waiting: 'placed over 3 live nodes' })
    assert.deepEqual(stripeWork(0, here, { pending: true }), { work: 'pending' })
    assert.deepEqual(stripeWork(0, planned, { pending: false }), {})
  })
})

describe('sleep', () => {
  it('leaves no abort listener behind and rejects with AbortedError when aborted', async () => {
    const controller = new AbortController()
    for (let i = 0; i < 50; i++) await sleep(0, controller.signal)
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
    const pending = sleep(60_000, controller.signal)
    controller.abort()
    await assert.rejects(pending, (err: any) => err.name === 'AbortedError')
    await assert.rejects(sleep(1, controller.signal), (err: any) => err.name === 'AbortedError')
  })
})
