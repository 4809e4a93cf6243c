/**
 * `freshCid`: a copy of a decoded CID that shares no memory with the bytes
 * it was decoded from, equal to what decoding a copy of its bytes gives.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { freshCid } from '../../protocol/values.js'

/** `cid`'s bytes at offset 7 of a larger buffer, decoded from there (as a decoder gives it: views of its input). */
function viewed (cid: CID): { cid: CID, input: Uint8Array } {
  const input = new Uint8Array(cid.bytes.byteLength + 20)
  input.set(cid.bytes, 7)
  return { cid: CID.decode(input.subarray(7, 7 + cid.bytes.byteLength)), input }
}

describe('freshCid', () => {
  const v1 = CID.createV1(0x71, Digest.create(0x12, new Uint8Array(32).fill(3)))
  const v0 = CID.createV0(Digest.create(0x12, new Uint8Array(32).fill(4)))
  const other = CID.createV1(0x55, Digest.create(0x13, new Uint8Array(64).fill(5)))

  for (const [name, original] of [['a CIDv1', v1], ['a CIDv0', v0], ['a CID of another hash', other]] as const) {
    it(`copies ${name} decoded from a larger input: equal, the same as a decode of its bytes, sharing no memory`, () => {
      const { cid, input } = viewed(original)
      const copy = freshCid(cid)
      assert.ok(copy !== undefined)
      const decoded = CID.decode(new Uint8Array(original.bytes))
      assert.ok(copy.equals(original))
      assert.deepEqual([copy.version, copy.code, copy.multihash.code, copy.multihash.size, copy.toString()], [decoded.version, decoded.code, decoded.multihash.code, decoded.multihash.size, decoded.toString()])
      assert.deepEqual(copy.multihash.bytes, decoded.multihash.bytes)
      assert.deepEqual(copy.multihash.digest, decoded.multihash.digest)
      for (const part of [copy.bytes, copy.multihash.bytes, copy.multihash.digest]) assert.notEqual(part.buffer, input.buffer)
      input.fill(0xff)
      assert.ok(copy.equals(original), 'the copy does not change with the input')
    })
  }

  it('re-decodes a CID-like value of another implementation from its bytes, and refuses what is not a CID', () => {
    const { cid, input } = viewed(v1)
    const foreign = { version: cid.version, code: cid.code, multihash: cid.multihash, bytes: cid.bytes, get asCID () { return this } }
    const copy = freshCid(foreign)
    assert.ok(copy !== undefined && copy.equals(v1) && copy instanceof CID)
    assert.notEqual(copy.bytes.buffer, input.buffer)
    for (const bad of [undefined, null, 'bafy', new Uint8Array(36), { '/': 'x' }]) assert.equal(freshCid(bad), undefined)
  })
})
