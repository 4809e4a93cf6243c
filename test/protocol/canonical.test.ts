/**
 * The one-pass canonical decoder of dag-cbor against the reference
 * (`@ipld/dag-cbor`'s decode, and a re-encode of the decoded value): it may
 * pass on bytes that are canonical (the caller takes the slow path then),
 * never take bytes that are not, and what it takes it decodes to what
 * `@ipld/dag-cbor` does. And decodeEntry, which uses it, still takes exactly
 * the encoder's bytes.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { NOT_CANONICAL, cutField, decodeCanonicalDagCbor, decodeCanonicalMap, isCanonicalDagCbor, withoutField } from '../../protocol/canonical.js'
import { decodeEntry, decodeEntryParts, encodeEntry, encodeEntryBody, entryBodyOf, type LogEntry } from '../../protocol/namespace.js'

/** The reference: bytes that decode, and encode back to themselves. */
function reference (bytes: Uint8Array): boolean {
  try {
    return Buffer.from(dagCbor.encode(dagCbor.decode(bytes))).equals(bytes)
  } catch {
    return false
  }
}

/** Decodes at all (the check is only asked about bytes that did). */
function decodes (bytes: Uint8Array): boolean {
  try {
    dagCbor.decode(bytes)
    return true
  } catch {
    return false
  }
}

const cid = CID.createV1(0x71, Digest.create(0x12, new Uint8Array(32).fill(3)))
const v0 = CID.createV0(Digest.create(0x12, new Uint8Array(32).fill(4)) as any)
const entry: LogEntry = {
  v: 2,
  author: '12D3KooWGRUVh8wGzCv4ZxBEmQjM3wE9JbDnbVH8xJwBnv3fFfXb',
  seq: 300,
  time: 1_700_000_000_000,
  parents: [cid],
  deps: [['12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp', 70_000]],
  ops: [
    { op: 'put', path: '/d/é€😀.txt', cid: v0, size: 2 ** 40, mode: 0o644, mtime: 5, replaces: [['12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp', 1]], pin: { policy: 'ec:4+2', manifest: cid } },
    { op: 'del', path: '/old', replaces: [] }
  ],
  sig: new Uint8Array(64).fill(9)
}

/** `bytes` with `at` replaced by `insert` (`remove` bytes taken out). */
function splice (bytes: Uint8Array, at: number, remove: number, insert: number[]): Uint8Array {
  return new Uint8Array([...bytes.subarray(0, at), ...insert, ...bytes.subarray(at + remove)])
}

function find (bytes: Uint8Array, text: string): number {
  const needle = new TextEncoder().encode(text)
  const at = bytes.findIndex((_, i) => needle.every((b, j) => bytes[i + j] === b))
  assert.ok(at >= 0, `${text} not found`)
  return at
}

describe('canonical dag-cbor check', () => {
  it('says true for what the encoder writes', () => {
    assert.equal(isCanonicalDagCbor(encodeEntry(entry)), true)
    for (const value of [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, -1, -25, -(2 ** 40), '', 'a', 'é', [], {}, { a: 1, bb: 2, c: [true, false, null] }, cid, v0, new Uint8Array(300)]) {
      assert.equal(isCanonicalDagCbor(dagCbor.encode(value)), true, `value ${String(value)}`)
    }
  })

  it('says false for each non-canonical form', () => {
    const cases: Array<[string, number[]]> = [
      ['int in a longer head', [0x18, 0x05]],
      ['int 255 in two bytes', [0x19, 0x00, 0xff]],
      ['int in eight bytes', [0x1b, 0, 0, 0, 0, 0, 0, 1, 0]],
      ['indefinite list', [0x9f, 0x01, 0xff]],
      ['float for an integer', [0xfb, 0x40, 0x1c, 0, 0, 0, 0, 0, 0]],
      ['half float', [0xf9, 0x3c, 0x00]],
      ['undefined', [0xf7]],
      ['keys out of order', [0xa2, 0x62, 0x62, 0x62, 0x01, 0x61, 0x61, 0x02]],
      ['keys bytewise out of order', [0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02]],
      ['repeated key', [0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02]],
      ['non-text key', [0xa1, 0x01, 0x02]],
      ['__proto__ key', [0xa1, 0x69, ...new TextEncoder().encode('__proto__'), 0xf6]],
      ['byte order mark', [0x63, 0xef, 0xbb, 0xbf]],
      ['overlong UTF-8', [0x62, 0xc0, 0x80]],
      ['surrogate in UTF-8', [0x63, 0xed, 0xa0, 0x80]],
      ['truncated UTF-8', [0x62, 0xe2, 0x82]],
      ['trailing bytes', [0x01, 0x01]],
      ['string length in a longer head', [0x78, 0x01, 0x61]],
      ['other tag', [0xc1, 0x01]],
      ['CID codec varint not shortest', [0xd8, 0x2a, 0x58, 0x26, 0x00, 0x01, 0xf1, 0x00, 0x12, 0x20, ...new Array(32).fill(1)]]
    ]
    for (const [name, bytes] of cases) assert.equal(isCanonicalDagCbor(new Uint8Array(bytes)), false, name)
  })

  it('decodes what it takes to what dag-cbor decodes it to', () => {
    const cases: unknown[] = [entry, { a: [1, -1, -(2 ** 53) + 1, 2 ** 53 - 1, 'x', null, true, false, new Uint8Array([1, 2])], b: { c: cid, d: v0 } }, [[[]]], '', {}]
    for (const value of cases) {
      const bytes = dagCbor.encode(value)
      const decoded = decodeCanonicalDagCbor(bytes)
      assert.notEqual(decoded, NOT_CANONICAL)
      assert.deepStrictEqual(decoded, dagCbor.decode(bytes))
    }
    // past the safe integers dag-cbor gives a bigint: the slow path's
    assert.equal(decodeCanonicalDagCbor(dagCbor.encode(2n ** 60n)), NOT_CANONICAL)
    assert.equal(decodeCanonicalDagCbor(dagCbor.encode(-(2n ** 60n))), NOT_CANONICAL)
  })

  it('values of random dag-cbor: the same as dag-cbor\'s, or the slow path', () => {
    const leaf = fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.string(), fc.string({ unit: 'grapheme' }), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 40 }), fc.constant(cid), fc.double({ noNaN: true, noDefaultInfinity: true }))
    const value = fc.letrec(tie => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), tie('node'), { maxKeys: 4 }))
    })).node
    let fast = 0
    fc.assert(fc.property(value, v => {
      let bytes: Uint8Array
      try {
        bytes = dagCbor.encode(v)
      } catch {
        return
      }
      const decoded = decodeCanonicalDagCbor(bytes)
      if (decoded === NOT_CANONICAL) return
      fast++
      assert.deepStrictEqual(decoded, dagCbor.decode(bytes))
    }), { numRuns: 5_000 })
    assert.ok(fast > 1_000)
  })

  it('never says true where the reference says the bytes are not canonical (byte mutations of an entry)', () => {
    const bytes = encodeEntry(entry)
    let fast = 0
    fc.assert(fc.property(fc.nat(), fc.nat({ max: 3 }), fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 9 }), (at, remove, insert) => {
      const mutated = splice(bytes, at % bytes.length, remove, insert)
      if (!decodes(mutated)) return
      const value = decodeCanonicalDagCbor(mutated)
      if (value !== NOT_CANONICAL) {
        fast++
        assert.equal(reference(mutated), true, Buffer.from(mutated).toString('hex'))
        assert.deepStrictEqual(value, dagCbor.decode(mutated))
      }
    }), { numRuns: 20_000 })
    assert.ok(fast > 100)
  })

  it('the signed body sliced from an entry is encodeEntryBody of it, v1 and v2', () => {
    const v1: LogEntry = { v: 1, author: entry.author, seq: 3, time: 7, clock: { [entry.author]: 3, x: 70_000 }, parents: [], ops: [{ op: 'del', path: '/é', replaces: [['x', 2]] }], sig: new Uint8Array(64) }
    fc.assert(fc.property(fc.constantFrom(entry, v1), fc.nat({ max: 2 ** 40 }), fc.string({ minLength: 1, maxLength: 20 }).filter(t => !t.includes('/') && t !== '.' && t !== '..'), fc.uint8Array({ minLength: 1, maxLength: 128 }), (base, time, name, sig) => {
      const e = { ...base, time, sig, ops: [{ op: 'mkdir' as const, path: `/${name}`, mode: 0o755, mtime: time, replaces: [] }] }
      const bytes = encodeEntry(e)
      const decoded = decodeEntry(bytes)
      const sliced = withoutField(bytes, 'sig')
      assert.notEqual(sliced, undefined)
      assert.deepEqual(entryBodyOf(bytes, decoded), encodeEntryBody(decoded))
      // where the decoder found the signature: the same body, cut without a second parse
      const parts = decodeEntryParts(bytes)
      assert.notEqual(parts.sigField, undefined)
      assert.deepStrictEqual(parts.entry, decoded)
      assert.deepEqual(entryBodyOf(bytes, parts.entry, parts.sigField), encodeEntryBody(decoded))
    }), { numRuns: 500 })
  })

  it('decodeEntry shares no memory with its input: changing the input afterwards changes nothing decoded', () => {
    const bytes = encodeEntry(entry)
    const decoded = decodeEntry(bytes)
    const before = encodeEntry(decoded)
    bytes.fill(0)
    assert.deepEqual(encodeEntry(decoded), before)
    assert.deepStrictEqual(decoded, decodeEntry(before))
  })

  it('decodeCanonicalMap: the map and where a field lies, as withoutField cuts it', () => {
    const map = dagCbor.encode({ a: 1, bb: [2], sig: new Uint8Array(3) })
    const located = decodeCanonicalMap(map, 'bb')
    assert.notEqual(located, NOT_CANONICAL)
    if (located === NOT_CANONICAL) return
    assert.deepStrictEqual(located.value, dagCbor.decode(map))
    assert.notEqual(located.field, undefined)
    assert.deepEqual(cutField(map, located.field!), withoutField(map, 'bb'))
    const none = decodeCanonicalMap(map, 'c')
    assert.ok(none !== NOT_CANONICAL && none.field === undefined)
    assert.equal(decodeCanonicalMap(dagCbor.encode([1, 2]), 'a'), NOT_CANONICAL)
    assert.equal(decodeCanonicalMap(new Uint8Array([...map, 0x00]), 'a'), NOT_CANONICAL)
  })

  it('short texts it has read before come back equal whatever collides in its table of recent strings', () => {
    // many distinct keys and values of every length up to past the table's limit, read twice in turn
    const texts = Array.from({ length: 20_000 }, (_, i) => `k${i.toString(36)}`.padEnd(1 + (i % 70), String.fromCharCode(97 + (i % 26))))
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < texts.length; i += 50) {
        const value = Object.fromEntries(texts.slice(i, i + 50).map((t, j) => [t, texts[(i + j * 7) % texts.length]]))
        assert.deepStrictEqual(decodeCanonicalDagCbor(dagCbor.encode(value)), value)
      }
    }
  })

  it('withoutField: only canonical maps that hold the field', () => {
    const map = dagCbor.encode({ a: 1, bb: [2], sig: new Uint8Array(3) })
    assert.deepEqual(withoutField(map, 'sig'), dagCbor.encode({ a: 1, bb: [2] }))
    assert.deepEqual(withoutField(map, 'a'), dagCbor.encode({ bb: [2], sig: new Uint8Array(3) }))
    assert.equal(withoutField(map, 'c'), undefined)
    assert.equal(withoutField(dagCbor.encode([1, 2]), 'a'), undefined)
    assert.equal(withoutField(new Uint8Array([0xa2, 0x62, 0x62, 0x62, 0x01, 0x61, 0x61, 0x02]), 'a'), undefined)
    assert.equal(withoutField(new Uint8Array([...map, 0x00]), 'sig'), undefined)
  })

  it('decodeEntry still refuses non-canonical entries: an integer as float, a CID with a long codec varint, a __proto__ key', () => {
    const bytes = encodeEntry(entry)
    const time = find(bytes, 'dtime') + 5
    const float = new Uint8Array(9)
    float[0] = 0xfb
    new DataView(float.buffer).setFloat64(1, entry.time)
    // the integer head of `time` is 0x1b and 8 bytes
    assert.throws(() => decodeEntry(splice(bytes, time, 9, [...float])), /canonical/)
    // the manifest CID: codec 0x71 as two varint bytes
    const manifest = find(bytes, 'manifest') + 8
    assert.deepEqual([...bytes.subarray(manifest, manifest + 6)], [0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01])
    const long = splice(bytes, manifest, 7, [0xd8, 0x2a, 0x58, 0x26, 0x00, 0x01, 0xf1, 0x00])
    assert.throws(() => decodeEntry(long), /canonical|not a CID|minimally/)
    assert.equal(decodeEntry(bytes).ops.length, 2)
  })
})
