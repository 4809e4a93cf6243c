/**
 * The parity pool's rebuild (a degraded read's missing leaves decoded and
 * hashed on a real worker thread): the same leaves as the main thread's
 * rebuildStripe for every loss a stripe survives, short stripes and copies
 * included; a stripe whose parity does not match its data, and one with
 * fewer than k shards, fail as rebuildStripe fails.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createErasureCoder, type ErasureCoder } from '../../../node/durability/erasure.js'
import { ParityPool } from '../../../node/durability/parity-pool.js'
import { encodeStripe, rawCID, rebuildStripe, type Block } from '../../../node/durability/stripes.js'
import { assertBytesEqual, randomBytes } from '../../helpers/bytes.js'
import { indexSubsets } from '../../helpers/subsets.js'

/** `count` leaves of `size` bytes (the last `last` bytes long), each with its raw CID. */
function leavesOf (count: number, size: number, last: number, seed: number): Block[] {
  return Array.from({ length: count }, (_, i) => {
    const bytes = randomBytes(i === count - 1 ? last : size, seed + i)
    return { cid: rawCID(bytes), bytes }
  })
}

describe('ParityPool.rebuild', () => {
  let coder: ErasureCoder
  const pool = new ParityPool(async () => await createErasureCoder())
  before(async () => { coder = await createErasureCoder() })
  after(async () => { await pool.close() })

  const CASES = [
    { name: 'a full 4+2 stripe of 256 KiB leaves, the last shorter', k: 4, m: 2, leaves: 4, size: 262144, last: 200_001 },
    { name: 'a short last stripe (2 leaves of 4): its virtual zeros count as present', k: 4, m: 2, leaves: 2, size: 262144, last: 1000 },
    { name: '2+1 of uneven leaves', k: 2, m: 1, leaves: 2, size: 1_048_576 + 3, last: 7 },
    { name: 'copies (k = 1, m = 2) of a leaf not a multiple of 8 bytes', k: 1, m: 2, leaves: 1, size: 4097, last: 4097 },
    { name: 'an empty file: one empty leaf, zero-length shards', k: 4, m: 2, leaves: 1, size: 0, last: 0 }
  ]
  for (const c of CASES) {
    it(`gives the leaves rebuildStripe gives, for every loss it survives: ${c.name}`, async () => {
      const leaves = leavesOf(c.leaves, c.size, c.last, 11)
      const { stripe, parity } = encodeStripe(leaves, c.k, c.m, coder)
      const all = new Map<number, Uint8Array>()
      leaves.forEach((l, i) => all.set(i, l.bytes))
      parity.forEach((p, i) => all.set(c.k + i, p.bytes))
      const real = [...all.keys()]
      for (const lost of indexSubsets(real.length, c.m)) {
        const shards = new Map([...all].filter(([i]) => !lost.map(j => real[j]).includes(i)))
        const ours = await pool.rebuild(stripe, c.k, c.m, shards)
        const theirs = rebuildStripe(stripe, c.k, c.m, shards, coder)
        assert.equal(ours.length, leaves.length)
        ours.forEach((leaf, i) => {
          assertBytesEqual(leaf, leaves[i].bytes, `lost ${lost.join(',')}: leaf ${i}`)
          assertBytesEqual(leaf, theirs[i], `lost ${lost.join(',')}: leaf ${i} as rebuildStripe gives it`)
        })
      }
    })
  }

  it('a stripe whose parity does not match its data fails with InvalidBlockError; fewer than k shards with StripeUnavailableError', async () => {
    const leaves = leavesOf(4, 262144, 262144, 40)
    const { stripe } = encodeStripe(leaves, 4, 2, coder)
    // the parity of other data under this stripe's record
    const changed = leavesOf(4, 262144, 262144, 40)
    changed[0].bytes[10] ^= 1
    changed[0] = { cid: rawCID(changed[0].bytes), bytes: changed[0].bytes }
    const other = encodeStripe(changed, 4, 2, coder)
    const lying = { ...stripe, parity: other.stripe.parity }
    const shards = new Map<number, Uint8Array>([[1, leaves[1].bytes], [2, leaves[2].bytes], [3, leaves[3].bytes], [4, other.parity[0].bytes]])
    await assert.rejects(pool.rebuild(lying, 4, 2, shards), { name: 'InvalidBlockError', message: /rebuilt leaf 0 does not match .*parity does not match its data/ })
    await assert.rejects(pool.rebuild(stripe, 4, 2, new Map([[1, leaves[1].bytes], [2, leaves[2].bytes], [4, other.parity[0].bytes]])), { name: 'StripeUnavailableError' })
    await assert.rejects(pool.rebuild(stripe, 3, 2, shards), { name: 'InvalidManifestError' })
    // the pool still rebuilds after those
    const good = new Map<number, Uint8Array>([[0, leaves[0].bytes], [2, leaves[2].bytes], [3, leaves[3].bytes], [5, encodeStripe(leaves, 4, 2, coder).parity[1].bytes]])
    assertBytesEqual((await pool.rebuild(stripe, 4, 2, good))[1], leaves[1].bytes)
  })
})
