/**
 * Honest stripe health (node/durability/health.ts), a file's pin state in
 * one word (pin-status.ts), and the abortable sleep of repair and scrub.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { assessStripe, spreadOf } from '../../../node/durability/health.js'
import { sleep } from '../../../node/durability/sleep.js'
import { filePinState } from '../../../node/durability/pin-status.js'

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

describe('a file\'s pin state', () => {
  const stripes = [{ index: 0, health: 'healthy' as const, live: 6, shards: [] }]
  const summary = (h: Partial<Record<'healthy' | 'atRisk' | 'degraded' | 'lost', number>>): { healthy: number, atRisk: number, degraded: number, lost: number } => ({ healthy: 0, atRisk: 0, degraded: 0, lost: 0, ...h })
  it('says not-coded, pending, placing, healthy, at-risk, degraded or lost, missing shards first', () => {
    assert.equal(filePinState({ stripes: [], summary: summary({}) }), 'not-coded', 'pin none, or a file kept where its blocks are')
    assert.equal(filePinState({ stripes: [], summary: summary({}), pending: true, waiting: '1 live node, ec:4+2 needs 3' }), 'pending')
    assert.equal(filePinState({ stripes, summary: summary({ healthy: 1 }) }), 'healthy')
    assert.equal(filePinState({ stripes, summary: summary({ atRisk: 1 }) }), 'at-risk')
    assert.equal(filePinState({ stripes, summary: summary({ atRisk: 1 }), pending: true }), 'pending', 'a writer holding every shard until enough peers are live')
    assert.equal(filePinState({ stripes, summary: summary({ atRisk: 1 }), pending: true, placing: { pushed: 3, total: 10 } }), 'placing')
    assert.equal(filePinState({ stripes, summary: summary({ degraded: 1, atRisk: 2 }), placing: { pushed: 3, total: 10 } }), 'degraded', 'missing shards show through a placement')
    assert.equal(filePinState({ stripes, summary: summary({ lost: 1, degraded: 1 }), pending: true }), 'lost')
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
