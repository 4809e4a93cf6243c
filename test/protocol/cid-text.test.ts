/** cidText gives the string cid.toString() gives, for any v1 CID, and defers v0 to multiformats. */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { cidText } from '../../protocol/cid-text.js'

describe('cidText', () => {
  it('is cid.toString() for v1 CIDs of any codec and digest, and for v0', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0x3fffff }), fc.constantFrom(0x12, 0x13, 0x00, 0xb220), fc.uint8Array({ minLength: 0, maxLength: 70 }), (codec, hash, digest) => {
      const cid = CID.createV1(codec, Digest.create(hash, digest))
      assert.equal(cidText(cid), cid.toString())
    }), { numRuns: 5_000 })
    const v0 = CID.createV0(Digest.create(0x12, new Uint8Array(32).fill(1)) as any)
    assert.equal(cidText(v0), v0.toString())
  })
})
