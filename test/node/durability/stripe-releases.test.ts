/**
 * Releases of extra copies, one node at a time per stripe
 * (node/durability/stripe-releases.ts): a peer's release check holds this
 * node's copies of the stripe, this node's own release in a stripe refuses
 * peers' checks of it, both end on time, a check finding no copy holds
 * nothing; and the same between two real nodes (real libp2p on 127.0.0.1,
 * real LevelDB): the check travels as a flagged `holdings` request, the
 * refusal comes back typed.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { RELEASE_HOLD_MS, StripeReleases, stripeName } from '../../../node/durability/stripe-releases.js'
import { randomBytes } from 'node:crypto'
import { parseChunker } from '../../../node/content/index.js'
import { once, swarmOf, until, type Swarm } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'

/** A clock the test moves. */
function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1_000
  return { now: () => t, advance: ms => { t += ms } }
}

const MANIFEST = CID.createV1(0x71, Digest.create(0x12, new Uint8Array(32).fill(9)))

describe('stripe releases', () => {
  it('a peer\'s check holds the stripe: no release of this node begins there until the hold ends', () => {
    const c = clock()
    const releases = new StripeReleases({ now: c.now }, { holdMs: 10_000 })
    releases.hold(['m/0'])
    assert.equal(releases.begin('m/0'), undefined, 'held: no release begins')
    const other = releases.begin('m/1')
    assert.ok(other !== undefined, 'another stripe is free')
    other.end()
    c.advance(9_999)
    assert.equal(releases.begin('m/0'), undefined, 'still held just before the end')
    c.advance(1)
    const r = releases.begin('m/0')
    assert.ok(r !== undefined, 'free once the hold ended')
    r.end()
    assert.equal(releases.held, 0)
  })

  it('a check again renews the hold from its own time', () => {
    const c = clock()
    const releases = new StripeReleases({ now: c.now }, { holdMs: 10_000 })
    releases.hold(['m/0', 'm/1'])
    c.advance(6_000)
    releases.hold(['m/0'])
    c.advance(6_000)
    assert.equal(releases.begin('m/0'), undefined, 'renewed at 6 s: held until 16 s')
    const r = releases.begin('m/1')
    assert.ok(r !== undefined, 'the stripe not renewed ended at 10 s')
    r.end()
  })

  it('this node releasing in a stripe refuses peers\' checks of it (typed, nothing held), and answers them again once done', () => {
    const c = clock()
    const releases = new StripeReleases({ now: c.now }, { holdMs: 10_000 })
    const r = releases.begin('m/0')
    assert.ok(r !== undefined)
    assert.equal(releases.begin('m/0'), undefined, 'one release of a stripe at a time')
    assert.throws(() => releases.hold(['m/1', 'm/0']), { name: 'StripeReleasingError' })
    assert.equal(releases.held, 0, 'a refused check holds none of its stripes')
    r.end()
    r.end()
    releases.hold(['m/0'])
    assert.equal(releases.held, 1)
  })

  it('a release may go on for half the hold from its beginning, then it is out of time', () => {
    const c = clock()
    const releases = new StripeReleases({ now: c.now }, { holdMs: 10_000 })
    const r = releases.begin('m/0')
    assert.ok(r !== undefined)
    assert.equal(r.inTime(), true)
    c.advance(4_999)
    assert.equal(r.inTime(), true)
    c.advance(1)
    assert.equal(r.inTime(), false, 'a peer that answered at once holds its copies until 10 s: half of it is left for the releases')
    const s = releases.begin('m/1')
    assert.ok(s !== undefined)
    s.end()
    assert.equal(s.inTime(), false, 'ended: out of time')
  })

  it('holds are bounded: past the most, a check is refused whole; expired holds make room', () => {
    const c = clock()
    const releases = new StripeReleases({ now: c.now }, { holdMs: 10_000, maxHolds: 3 })
    releases.hold(['a', 'b'])
    assert.throws(() => releases.hold(['c', 'd']), { name: 'StripeReleasingError' })
    assert.equal(releases.held, 2)
    releases.hold(['a', 'c'])
    assert.equal(releases.held, 3, 'a renewed hold takes no more room')
    c.advance(10_000)
    releases.hold(['d', 'e', 'f'])
    assert.equal(releases.held, 3)
  })

  it('a check answered with no copy holds nothing: the room goes back', () => {
    const c = clock()
    const releases = new StripeReleases({ now: c.now }, { holdMs: 10_000, maxHolds: 1 })
    releases.hold(['m/0'])
    releases.drop(['m/0'])
    assert.equal(releases.held, 0)
    const r = releases.begin('m/0')
    assert.ok(r !== undefined, 'nothing held')
    r.end()
    releases.hold(['m/1'])
  })

  it('between real nodes: a check holds the holder\'s copies of the stripe, a check of a stripe it does not hold holds nothing, a holder releasing there refuses it, typed', { timeout: 60_000 }, async (t) => {
    const swarm: Swarm = await swarmOf(t, 3)
    const [asker, holder] = swarm.nodes as ShoalNode[]
    const holderId = holder.components.peerId
    const network = asker.components.durability.network
    const releases = holder.components.durability.releases
    // a file coded ec:2+1 over the three nodes: the holder keeps a shard of its stripe 0
    await asker.components.files.add('/f.bin', once(randomBytes(512 * 1024)), { chunker: parseChunker('size-262144'), pin: 'ec:2+1' })
    await asker.components.files.settled()
    const entry = await asker.components.namespace.stat('/f.bin')
    assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined)
    const manifest = CID.parse(entry.pin.manifest)
    await until('the holder holds shards of stripe 0', async () => {
      for await (const h of holder.components.holdings.held(manifest)) if (h.stripe === 0) return true
      return false
    })
    const check = { v: 1 as const, type: 'holdings' as const, count: 1, release: true as const }

    // a check of stripe 0: answered with the holder's shards, which it then keeps for the hold period
    const answer = await network.request(holderId, { ...check, manifest, from: 0 })
    assert.ok(answer.type === 'holdings' && answer.shards.length > 0, JSON.stringify(answer))
    assert.equal(releases.begin(stripeName(manifest, 0)), undefined, `held for ${RELEASE_HOLD_MS} ms`)
    // a plain ask holds nothing; nor does a check of a stripe the holder has no copy of
    await network.request(holderId, { v: 1, type: 'holdings', manifest: MANIFEST, from: 2, count: 1 })
    assert.deepEqual(await network.request(holderId, { ...check, manifest: MANIFEST, from: 3 }), { v: 1, type: 'holdings', shards: [] })
    for (const stripe of [2, 3]) {
      const free = releases.begin(stripeName(MANIFEST, stripe))
      assert.ok(free !== undefined, `stripe ${stripe} not held`)
      free.end()
    }

    // the holder releasing in a stripe: the check is refused with a typed error, a plain ask still answered
    const mine = releases.begin(stripeName(MANIFEST, 1))
    assert.ok(mine !== undefined)
    await assert.rejects(network.request(holderId, { ...check, manifest: MANIFEST, from: 1 }), { name: 'StripeReleasingError' })
    assert.deepEqual(await network.request(holderId, { v: 1, type: 'holdings', manifest: MANIFEST, from: 1, count: 1 }), { v: 1, type: 'holdings', shards: [] })
    mine.end()
    assert.deepEqual(await network.request(holderId, { ...check, manifest: MANIFEST, from: 1 }), { v: 1, type: 'holdings', shards: [] }, 'answered once its release is done')
  })
})
