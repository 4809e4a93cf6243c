/**
 * Which pushed blocks a node stores: only those it expects from that peer,
 * until the expectation expires, within bounds per peer and in all.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ExpectedPuts, REFUSE_PUTS } from '../../../node/exchange/index.js'

async function cidOf (n: number): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(`block ${n}`)))
}

describe('ExpectedPuts', () => {
  it('accepts a block only from the peer that was expected to push it, once', async () => {
    const [x, y] = [await cidOf(1), await cidOf(2)]
    const expected = new ExpectedPuts()
    expected.expect('alice', [x])
    assert.equal(expected.accepts('alice', x, 7), true)
    assert.equal(expected.accepts('bob', x, 7), false, 'another peer may not push it')
    assert.equal(expected.accepts('alice', y, 7), false, 'a block not in the hold')
    // the same hash under another codec is the same block
    assert.equal(expected.accepts('alice', CID.createV1(0x70, x.multihash), 7), true)
    expected.used('alice', x)
    assert.equal(expected.accepts('alice', x, 7), false, 'used up once stored')
    assert.equal(expected.size, 0)
    assert.equal(REFUSE_PUTS.accepts('alice', x, 7), false)
  })

  it('two holds naming one block await two pushes of it (two placements sharing a leaf), each used or cancelled once', async () => {
    let now = 0
    const x = await cidOf(1)
    const expected = new ExpectedPuts({ ttlMs: 1000, now: () => now })
    expected.expect('alice', [x])
    expected.expect('alice', [x])
    assert.equal(expected.room('alice'), expected.maxPerPeer - 1, 'one block counted once against the bound')
    expected.used('alice', x)
    assert.equal(expected.accepts('alice', x, 7), true, 'the second placement may still push it')
    expected.used('alice', x)
    assert.equal(expected.accepts('alice', x, 7), false)
    // a hold that could not be recorded takes back its own expectation only
    expected.expect('alice', [x])
    expected.expect('alice', [x])
    expected.cancel('alice', [x])
    assert.equal(expected.accepts('alice', x, 7), true)
    // an expectation that lapsed is not counted again by a new hold
    now = 2000
    expected.expect('alice', [x])
    expected.used('alice', x)
    assert.equal(expected.accepts('alice', x, 7), false)
    assert.equal(expected.size, 0)
  })

  it('forgets expectations when they expire, and when cancelled', async () => {
    let now = 0
    const expected = new ExpectedPuts({ ttlMs: 1000, now: () => now })
    const [x, y, z] = [await cidOf(1), await cidOf(2), await cidOf(3)]
    expected.expect('alice', [x])
    now = 600
    expected.expect('alice', [y, z])
    expected.cancel('alice', [z])
    assert.equal(expected.accepts('alice', z, 7), false)
    now = 1000
    assert.equal(expected.accepts('alice', x, 7), false, 'expired')
    assert.equal(expected.accepts('alice', y, 7), true)
    // a repeated hold starts the wait over
    expected.expect('alice', [y])
    now = 1900
    assert.equal(expected.accepts('alice', y, 7), true)
    assert.equal(expected.room('alice'), expected.maxPerPeer - 1, 'the expired one is gone')
  })

  it('with sizes, accepts a block only of the size agreed (what the quota counted)', async () => {
    const [x, y] = [await cidOf(1), await cidOf(2)]
    const expected = new ExpectedPuts()
    expected.expect('alice', [x, y], [7, 9])
    assert.equal(expected.accepts('alice', x, 7), true)
    assert.equal(expected.accepts('alice', x, 8), false, 'a longer block than stated')
    assert.equal(expected.accepts('alice', y, 7), false, 'a shorter block than stated')
    assert.equal(expected.accepts('alice', y, 9), true)
    assert.throws(() => { expected.expect('alice', [x], [1, 2]) }, { name: 'InvalidArgumentError' })
  })

  it('bounds expectations per peer (refusing more) and in all (dropping the oldest)', async () => {
    const cids = await Promise.all(Array.from({ length: 6 }, async (_, i) => await cidOf(i)))
    const expected = new ExpectedPuts({ maxPerPeer: 3, maxEntries: 4 })
    expected.expect('alice', cids.slice(0, 3))
    assert.equal(expected.room('alice'), 0)
    assert.throws(() => { expected.expect('alice', [cids[3]]) }, { name: 'InvalidArgumentError' })
    assert.equal(expected.accepts('alice', cids[3], 7), false, 'nothing of a refused expectation is added')
    expected.expect('alice', [cids[0]]) // already expected: no room needed
    expected.expect('bob', cids.slice(3, 5))
    assert.equal(expected.size, 4)
    assert.equal(expected.accepts('alice', cids[1], 7), false, 'the oldest went first')
    assert.equal(expected.accepts('alice', cids[2], 7), true)
    assert.equal(expected.accepts('bob', cids[4], 7), true)
  })
})
