/**
 * Honest stripe health (node/durability/health.ts) and the abortable sleep
 * of repair and scrub.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { assessStripe, spreadOf } from '../../../node/durability/health.js'
import { sleep } from '../../../node/durability/sleep.js'

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
