import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 as multiformatsSha256 } from 'multiformats/hashes/sha2'
import * as dagCbor from '@ipld/dag-cbor'
import { OFF_THREAD_HASH_MIN, cborCID, matchesCIDOffThread, rawCID, sha256, webCryptoSha256 } from '../../../node/blocks/verify.js'
import * as raw from 'multiformats/codecs/raw'

test('cborCID gives the CID multiformats gives the same block, in every form it is read in', async () => {
  for (const value of [{}, { a: 1, b: [1, 2, 3] }, { bytes: randomBytes(1000) }]) {
    const block = dagCbor.encode(value)
    const ours = cborCID(block)
    const theirs = CID.createV1(dagCbor.code, await multiformatsSha256.digest(block))
    assert.ok(ours.equals(theirs))
    assert.equal(ours.toString(), theirs.toString())
    assert.deepEqual(ours.bytes, theirs.bytes)
    assert.deepEqual(ours.multihash.bytes, theirs.multihash.bytes)
    assert.deepEqual(ours.multihash.digest, new Uint8Array(sha256(block)))
    assert.equal(ours.multihash.code, 0x12)
    assert.equal(ours.multihash.size, 32)
    assert.equal(ours.code, dagCbor.code)
    assert.equal(ours.version, 1)
    assert.ok(CID.decode(ours.bytes).equals(theirs))
    assert.ok(Digest.equals(ours.multihash, theirs.multihash))
    // a link to it encodes as a link to theirs does
    assert.deepEqual(dagCbor.encode({ link: ours }), dagCbor.encode({ link: theirs }))
  }
})

test('the CIDs cborCID makes share nothing with each other', () => {
  const a = cborCID(dagCbor.encode({ n: 1 }))
  const b = cborCID(dagCbor.encode({ n: 2 }))
  assert.notEqual(a.bytes.buffer, b.bytes.buffer)
  assert.ok(!a.equals(b))
  // its multihash and digest are views of its own bytes, not of another CID's
  assert.equal(a.multihash.bytes.buffer, a.bytes.buffer)
  assert.equal(a.multihash.digest.buffer, a.bytes.buffer)
})

test('rawCID gives the CID multiformats gives the same raw block', async () => {
  for (const block of [new Uint8Array(0), randomBytes(1000)]) {
    const ours = rawCID(block)
    const theirs = CID.createV1(raw.code, await multiformatsSha256.digest(block))
    assert.ok(ours.equals(theirs))
    assert.equal(ours.toString(), theirs.toString())
    assert.ok(CID.decode(ours.bytes).equals(theirs))
  }
})

test('matchesCIDOffThread accepts a block\'s own bytes and refuses one flipped bit, on and off the thread pool, through the addon and through WebCrypto', async () => {
  // the addon where it is built (CI builds it: native-hash.test.ts), and WebCrypto, which nodes without it use
  for (const [way, options] of [['default', {}], ['WebCrypto', { sha256: webCryptoSha256 }]] as const) {
    // either side of the size handed to the thread pool, a subarray of a larger buffer among them (as a decoded message is)
    const sizes = [0, 1000, OFF_THREAD_HASH_MIN - 1, OFF_THREAD_HASH_MIN, 1024 * 1024 + 7]
    for (const size of sizes) {
      const whole = randomBytes(size + 32)
      const block = whole.subarray(16, 16 + size)
      const cid = rawCID(block)
      assert.equal(await matchesCIDOffThread(cid, block, options), true, `${way}: ${size} bytes`)
      if (size === 0) continue
      const bad = Buffer.from(block)
      bad[size >> 1] ^= 1
      assert.equal(await matchesCIDOffThread(cid, bad, options), false, `${way}: ${size} bytes, one bit flipped`)
      assert.equal(await matchesCIDOffThread(cid, block.subarray(1), options), false, `${way}: ${size} bytes less the first`)
    }
  }
  // the hasher given is the one used for a block handed off, and not for a small one
  let asked = 0
  const counting = { sha256: async (bytes: Uint8Array) => { asked++; return await webCryptoSha256(bytes) } }
  const large = randomBytes(OFF_THREAD_HASH_MIN)
  assert.equal(await matchesCIDOffThread(rawCID(large), large, counting), true)
  const small = randomBytes(100)
  assert.equal(await matchesCIDOffThread(rawCID(small), small, counting), true)
  assert.equal(asked, 1)
  // an identity CID is its bytes; an unsupported hash never matches
  const identity = CID.createV1(raw.code, Digest.create(0x00, Uint8Array.from([1, 2, 3])))
  assert.equal(await matchesCIDOffThread(identity, Uint8Array.from([1, 2, 3])), true)
  assert.equal(await matchesCIDOffThread(identity, Uint8Array.from([1, 2, 4])), false)
  const big = randomBytes(OFF_THREAD_HASH_MIN * 2)
  const sha512ish = CID.createV1(raw.code, Digest.create(0x13, new Uint8Array(64)))
  assert.equal(await matchesCIDOffThread(sha512ish, big), false)
})
