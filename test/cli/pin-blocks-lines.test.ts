/**
 * The lines `shoal pin status` prints about the blocks of a file that is not
 * coded (cli/commands/pins.ts, `blocksLines`), and about one stripe
 * (`stripeLine`).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { blocksLines, stripeLine } from '../../cli/commands/pins.js'

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
