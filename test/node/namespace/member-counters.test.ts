/**
 * A member's counters (node/namespace/member-counters.ts): sparse while
 * few, dense once they name a tenth of the author numbers up to the
 * largest, the same answers either way.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Counters, DENSE_MIN, DENSE_SHARE } from '../../../node/namespace/member-counters.js'

function pairs (c: Counters): Array<[number, number]> {
  const out: Array<[number, number]> = []
  c.forEach((k, n) => { out.push([k, n]) })
  return out
}

describe('member counters', () => {
  it('a member naming a few authors among many stays a map: its memory follows what it has seen, not the authors numbered before it', () => {
    const c = new Counters()
    c.raise(27_999, 1, 28_000)
    c.raise(5, 3, 28_000)
    c.raise(5, 2, 28_000) // lower: ignored
    assert.equal(c.isDense, false)
    assert.equal(c.get(27_999), 1)
    assert.equal(c.get(5), 3)
    assert.equal(c.get(6), 0)
    assert.equal(c.get(1_000_000), 0)
    assert.deepEqual(pairs(c), [[5, 3], [27_999, 1]], 'by increasing author number')
  })

  it('goes dense once it names enough of the author numbers, with the same counters', () => {
    const c = new Counters()
    const top = DENSE_MIN * DENSE_SHARE - 1
    for (let k = 0; k < DENSE_MIN - 1; k++) c.raise(k * DENSE_SHARE, k + 1, top + 1)
    assert.equal(c.isDense, false)
    const before = pairs(c)
    c.raise(top, 7, top + 1)
    assert.equal(c.isDense, true)
    assert.deepEqual(pairs(c), [...before, [top, 7]])
    // grows past its length, keeps what it had
    c.raise(10_000, 9, 10_001)
    assert.equal(c.get(10_000), 9)
    assert.equal(c.get(top), 7)
    assert.equal(c.get(10_001), 0)
  })

  it('keeps counters past 32 bits exactly, sparse and dense', () => {
    const big = 2 ** 40 + 3
    const sparse = new Counters()
    sparse.raise(3, big, 10)
    assert.equal(sparse.get(3), big)
    const dense = new Counters()
    for (let k = 0; k < DENSE_MIN; k++) dense.raise(k, 1, DENSE_MIN)
    assert.equal(dense.isDense, true)
    dense.raise(2, big, DENSE_MIN)
    assert.equal(dense.get(2), big)
    assert.equal(dense.get(1), 1)
    // a map with a wide counter goes dense wide
    const wide = new Counters()
    wide.raise(0, big, DENSE_MIN)
    for (let k = 1; k < DENSE_MIN; k++) wide.raise(k, 1, DENSE_MIN)
    assert.equal(wide.isDense, true)
    assert.equal(wide.get(0), big)
  })
})
