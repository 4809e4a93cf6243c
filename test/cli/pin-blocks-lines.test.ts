/**
 * The lines `shoal pin status` prints about the blocks of a file that is not
 * coded (cli/commands/pins.ts, `blocksLines`), and about one stripe
 * (`stripeLine`).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { blocksLines, degradedWaitLine, stripeLine } from '../../cli/commands/pins.js'
import type { StripeStatus } from '../../node/durability/index.js'

describe('pin status: blocks of a file that is not coded', () => {
  it('says all are here, how many are missing, and what the peers hold', () => {
    assert.deepEqual(blocksLines({ checked: 5, missing: 0, unknownSubtrees: 0, complete: true, firstMissing: [] }), ['blocks here: all 5 of the file\'s blocks'])
    assert.deepEqual(blocksLines({ checked: 5, missing: 2, unknownSubtrees: 0, complete: true, firstMissing: ['a', 'b'], peers: [{ peer: 'P1', have: 2, asked: 2 }] }), [
      'blocks here: 2 MISSING of 5 (reads of the file fetch them from peers, or fail)',
      'peers asked about the first 2 missing: P1 has 2'
    ])
    assert.deepEqual(blocksLines({ checked: 1, missing: 1, unknownSubtrees: 1, complete: false, firstMissing: ['r'], peers: [], heldByNone: 1 }), [
      'blocks here: 1 MISSING of 1 looked up; 1 missing inner block hides more (reads of the file fetch them from peers, or fail)',
      'peers asked about the first 1 missing: none answered',
      'held by no peer that answered: 1 of the 1 asked about: the file does not read now'
    ])
    assert.deepEqual(blocksLines({ checked: 5, missing: 2, unknownSubtrees: 0, complete: true, firstMissing: ['a', 'b'], peers: [{ peer: 'P1', have: 1, asked: 2 }], heldByNone: 1 }).slice(1), [
      'peers asked about the first 2 missing: P1 has 1',
      'held by no peer that answered: 1 of the 2 asked about: the file does not read now'
    ])
  })
})

describe('pin status: a stripe line', () => {
  it('names each shard by its holders, MISSING, or copy-here when only this node has a copy', () => {
    const line = stripeLine({
      index: 0,
      state: 'degraded',
      health: 'degraded',
      live: 1,
      copiesHere: 1,
      shards: [
        { index: 0, cid: 'bafy0', holders: [], copyHere: true },
        { index: 1, cid: 'bafy1', holders: [] },
        { index: 2, cid: 'bafy2', holders: ['12D3KooWAbcdefghijkl'] }
      ]
    })
    assert.equal(line, 'stripe 0\tdegraded\tdegraded 1/3\t0:copy-here 1:MISSING 2:…efghijkl')
  })
})

describe('pin status: degraded stripes that wait for a node', () => {
  const stripe = (index: number, health: 'healthy' | 'degraded', holders: string[][]): StripeStatus => ({
    index, state: health, health, live: holders.filter(h => h.length > 0).length, shards: holders.map((h, i) => ({ index: i, holders: h }))
  })
  it('says so when every node that answered holds a shard of the stripe, and only then', () => {
    // three nodes, a stripe of 6 with one shard lost: A, B and C each hold some of it
    const full = stripe(0, 'degraded', [['A'], ['B'], ['C'], ['A'], [], ['B']])
    // the same with a fourth node that holds none: it can take the lost shard, the repair pass does
    assert.equal(degradedWaitLine([full], 4), undefined)
    assert.equal(degradedWaitLine([full, stripe(1, 'healthy', [['A'], ['B'], ['C']])], 3),
      'degraded: 1 stripe has a shard on every node that answered (3): the repair pass puts a second shard on a node only where that protects the stripe from the loss of a node, so it may stay degraded until a node joins (or a holder that is away comes back)')
    assert.match(degradedWaitLine([full, stripe(2, 'degraded', [['A'], ['B'], ['C'], []])], 3) ?? '', /^degraded: 2 stripes have a shard on every node/)
    assert.equal(degradedWaitLine([stripe(3, 'degraded', [['A'], ['B'], []])], 3), undefined, 'a node holds none of it: not waiting')
  })
})

