/**
 * The marks of garbage collection (node/durability/mark-set.ts): a block
 * marked is always found (a collection never deletes it); a block never
 * marked is found at the documented rate at most, and another collection's
 * filter finds other ones.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { murmur332 } from '@multiformats/murmur3'
import { MarkSet, InvalidMarkSetError, MARK_FALSE_POSITIVE, murmur3x86 } from '../../../node/durability/mark-set.js'
import { blockBytes, rawCid } from '../../helpers/many-blocks.js'
import type { CID } from 'multiformats/cid'

async function cids (seed: string, n: number): Promise<CID[]> {
  const out: CID[] = []
  for (let i = 0; i < n; i++) out.push(await rawCid(blockBytes(seed, i)))
  return out
}

describe('mark set', () => {
  it('finds every block added; finds blocks never added at the documented rate at most, once full', async () => {
    const added = await cids('added', 100_000)
    const others = await cids('others', 100_000)
    // sized for exactly what is added, no minimum: the worst case of a collection
    const marks = new MarkSet({ blocks: added.length, minBits: 32 })
    for (const cid of added) marks.add(cid)
    assert.equal(added.filter(cid => !marks.has(cid)).length, 0, 'no block added is missed')
    const found = others.filter(cid => marks.has(cid)).length
    // expected 46 of 100,000; a bound twice the documented rate
    assert.ok(found <= 2 * MARK_FALSE_POSITIVE * others.length, `false positives ${found} of ${others.length}`)
    assert.ok(Math.abs(marks.falsePositiveRate() - MARK_FALSE_POSITIVE) < MARK_FALSE_POSITIVE / 4, `estimated rate ${marks.falsePositiveRate()}`)
    assert.ok(marks.size > added.length * (1 - 2 * MARK_FALSE_POSITIVE) && marks.size <= added.length, `size ${marks.size}`)
    assert.equal(marks.byteLength, added.length * 2, '16 bits a block')
  })

  it('another filter over the same blocks finds other false positives (a garbage block is not kept by every collection)', async () => {
    const added = await cids('added', 20_000)
    const others = await cids('others', 50_000)
    // few bits a block, so that there are many false positives to compare
    const a = new MarkSet({ blocks: added.length, bitsPerBlock: 6, hashes: 4, minBits: 32 })
    const b = new MarkSet({ blocks: added.length, bitsPerBlock: 6, hashes: 4, minBits: 32 })
    for (const cid of added) { a.add(cid); b.add(cid) }
    const inA = others.filter(cid => a.has(cid))
    const inBoth = inA.filter(cid => b.has(cid))
    assert.ok(inA.length > 1000, `false positives of one filter: ${inA.length}`)
    // independent filters: about the rate squared, a twentieth here
    assert.ok(inBoth.length < inA.length / 5, `false positives of both: ${inBoth.length} of ${inA.length}`)
  })

  it('a small store gets the minimum filter: practically no false positive', async () => {
    const added = await cids('added', 10_000)
    const others = await cids('others', 20_000)
    const marks = new MarkSet({ blocks: added.length })
    for (const cid of added) marks.add(cid)
    assert.equal(marks.byteLength, 1024 * 1024)
    assert.equal(others.filter(cid => marks.has(cid)).length, 0)
    assert.ok(marks.falsePositiveRate() < 1e-15)
  })

  it('hashes with MurmurHash3 x86 32 (the multihash murmur3-32 agrees at seed 0)', async () => {
    for (const bytes of [new Uint8Array(0), Uint8Array.of(1), Uint8Array.of(1, 2, 3), blockBytes('m', 1), blockBytes('m', 2).subarray(0, 31)]) {
      const digest = (await murmur332.digest(bytes)).digest
      const reference = new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0, true)
      assert.equal(murmur3x86(bytes, 0), reference)
    }
  })

  it('refuses settings that make no filter', () => {
    assert.throws(() => new MarkSet({ blocks: -1 }), (err: Error) => err instanceof InvalidMarkSetError && err.name === 'InvalidMarkSetError')
    assert.throws(() => new MarkSet({ blocks: 10, hashes: 0 }), InvalidMarkSetError)
  })
})
