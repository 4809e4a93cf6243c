/**
 * Property tests of the durability codecs: policies (text and values), the
 * manifest root and page decoders (random bytes, structurally mutated
 * records, byte-level mutations, round trips) and stripe keys. Every input
 * gives a valid value or a typed error, never anything else.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import {
  MANIFEST_PAGE_STRIPES, MAX_K, MAX_M, MAX_REPLICAS, MAX_SHARD_BYTES,
  decodeManifestPage, decodeManifestRoot, encodeManifestPage, encodeManifestRoot, encodeStripe, formatPolicy, parsePolicy, shardSizeOf, stripeKey,
  type ManifestPage, type ManifestRoot, type Policy, type Stripe
} from '../../protocol/durability.js'

const RUNS = 10_000

// ---------------------------------------------------------------------------
// arbitraries

const digestArb = fc.uint8Array({ minLength: 32, maxLength: 32 })
const rawCIDArb = digestArb.map(d => CID.createV1(0x55, Digest.create(0x12, d)))
const cborCIDArb = digestArb.map(d => CID.createV1(0x71, Digest.create(0x12, d)))
const fileRootArb = fc.tuple(digestArb, fc.constantFrom(0x55, 0x70)).map(([d, c]) => CID.createV1(c, Digest.create(0x12, d)))
/** CIDs no manifest field accepts. */
const badCIDArb = fc.oneof(
  digestArb.map(d => CID.createV0(Digest.create(0x12, d) as any) as unknown as CID),
  digestArb.map(d => CID.createV1(0x70, Digest.create(0x12, d))),
  fc.constant(CID.createV1(0x55, Digest.create(0x13, new Uint8Array(64)))),
  fc.constant(CID.createV1(0x55, Digest.create(0x00, new Uint8Array(3))))
)
const sizeArb = fc.oneof(fc.nat({ max: 5000 }), fc.constantFrom(0, 1, 7, 8, 9, 262144, MAX_SHARD_BYTES))
const codingArb = fc.integer({ min: 1, max: MAX_K }).chain(k => fc.integer({ min: 1, max: Math.min(MAX_M, 24 - k) }).map(m => ({ k, m })))

function stripeArb (k: number, m: number): fc.Arbitrary<Stripe> {
  return fc.array(fc.tuple(rawCIDArb, sizeArb), { minLength: 1, maxLength: k }).chain(leaves =>
    fc.array(rawCIDArb, { minLength: m, maxLength: m }).map(parity => {
      const sizes = leaves.map(([, size]) => size)
      return { data: leaves.map(([cid]) => cid), sizes, shardSize: shardSizeOf(sizes), parity }
    }))
}

const pageCaseArb: fc.Arbitrary<{ k: number, m: number, page: ManifestPage }> = codingArb.chain(({ k, m }) =>
  fc.array(stripeArb(k, m), { minLength: 1, maxLength: 4 }).map(stripes => ({ k, m, page: { v: 1 as const, stripes } })))

const rootArb: fc.Arbitrary<ManifestRoot> = fc.tuple(
  fileRootArb, codingArb, fc.oneof(fc.nat(), fc.constantFrom(0, 2 ** 32, Number.MAX_SAFE_INTEGER)), fc.nat({ max: 3 * MANIFEST_PAGE_STRIPES })
).chain(([root, { k, m }, size, stripes]) =>
  fc.array(cborCIDArb, { minLength: Math.ceil(stripes / MANIFEST_PAGE_STRIPES), maxLength: Math.ceil(stripes / MANIFEST_PAGE_STRIPES) })
    .map(pages => ({ v: 1 as const, root, k, m, size, stripes, pages })))

/** Values dag-cbor can encode, to plant in records. */
const junkArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null),
  fc.uint8Array({ maxLength: 8 }), rawCIDArb, cborCIDArb, badCIDArb, fc.constant(-1), fc.constant(2 ** 60), fc.constant(-0),
  fc.constantFrom(0, 1, 8, 16, 17, 24, 25, MAX_SHARD_BYTES + 1, 0.5),
  fc.array(fc.oneof(rawCIDArb, fc.integer(), fc.boolean()), { maxLength: 4 }),
  fc.constant(new Array(MANIFEST_PAGE_STRIPES + 1).fill(0)),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 })
)

/** A mutation at a path into a record: `path` picks a child at each level. */
const mutationArb = fc.record({
  path: fc.array(fc.nat(), { maxLength: 4 }),
  kind: fc.constantFrom('delete', 'replace', 'add', 'wrap', 'duplicate'),
  key: fc.string({ maxLength: 6 }),
  value: junkArb
})

type Mutation = fc.Arbitrary<any> extends fc.Arbitrary<infer T> ? T : never

/** A deep, mutable copy of a record (CIDs and bytes kept as they are). */
function clone (value: unknown): any {
  if (Array.isArray(value)) return value.map(clone)
  if (value !== null && typeof value === 'object' && CID.asCID(value) === null && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clone(v)]))
  }
  return value
}

function isContainer (value: unknown): value is Record<string, unknown> | unknown[] {
  return value !== null && typeof value === 'object' && CID.asCID(value) === null && !(value instanceof Uint8Array)
}

function mutate (record: unknown, mutations: Mutation[]): unknown {
  const root = { value: clone(record) }
  for (const m of mutations) {
    let parent: any = root
    let key: string | number = 'value'
    for (const pick of m.path) {
      const node: unknown = parent[key]
      if (!isContainer(node)) break
      const keys: Array<string | number> = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node)
      if (keys.length === 0) break
      parent = node
      key = keys[pick % keys.length]
    }
    const target = parent[key]
    if (m.kind === 'delete') {
      if (Array.isArray(parent)) parent.splice(key as number, 1)
      else if (parent !== root) delete parent[key]
    } else if (m.kind === 'replace') parent[key] = clone(m.value)
    else if (m.kind === 'add' && isContainer(target)) {
      // planted values are copies: the arbitraries' constants must never change
      if (Array.isArray(target)) target.push(clone(m.value))
      else target[m.key] = clone(m.value)
    } else if (m.kind === 'wrap') parent[key] = [target]
    else if (m.kind === 'duplicate' && Array.isArray(target) && target.length > 0) target.push(clone(target[0]))
  }
  return root.value
}

/** Decode, expecting a valid value whose canonical encoding is the input, or InvalidManifestError. */
function decodeOrReject<T> (decode: (b: Uint8Array) => T, encode: (v: T) => Uint8Array, bytes: Uint8Array): boolean {
  let value: T
  try {
    value = decode(bytes)
  } catch (err) {
    assert.equal((err as Error)?.name, 'InvalidManifestError', `threw ${String((err as Error)?.name)}: ${String((err as Error)?.message)}`)
    return false
  }
  assert.deepEqual(encode(value), new Uint8Array(bytes))
  return true
}

function encodeAny (value: unknown): Uint8Array | undefined {
  try {
    return dagCbor.encode(value)
  } catch {
    return undefined // not encodable (e.g. undefined): nothing to store
  }
}

const decoders = [
  {
    name: 'decodeManifestRoot',
    valid: rootArb.map(value => ({ value, decode: decodeManifestRoot, encode: encodeManifestRoot })),
    decode: (bytes: Uint8Array) => decodeManifestRoot(bytes),
    encode: (v: unknown) => encodeManifestRoot(v as ManifestRoot)
  },
  {
    name: 'decodeManifestPage',
    valid: pageCaseArb.map(({ k, m, page }) => ({ value: page, decode: (b: Uint8Array) => decodeManifestPage(b, k, m), encode: (p: ManifestPage) => encodeManifestPage(p, k, m) })),
    decode: (bytes: Uint8Array) => decodeManifestPage(bytes, 4, 2),
    encode: (v: unknown) => encodeManifestPage(v as ManifestPage, 4, 2)
  }
] as const

describe('durability codecs', () => {
  describe('policies', () => {
    it('every valid policy round-trips through its canonical text', () => {
      const all: Policy[] = [{ kind: 'none' }]
      for (let k = 1; k <= MAX_K; k++) for (let m = 1; m <= MAX_M; m++) all.push({ kind: 'ec', k, m })
      for (let n = 1; n <= MAX_REPLICAS; n++) all.push({ kind: 'replicas', n })
      for (const p of all) {
        const text = formatPolicy(p)
        assert.deepEqual(parsePolicy(text), p)
        assert.equal(formatPolicy(parsePolicy(text)), text)
      }
      assert.deepEqual(parsePolicy('ec:4+2'), { kind: 'ec', k: 4, m: 2 })
      assert.deepEqual(parsePolicy('replicas:3'), { kind: 'replicas', n: 3 })
    })

    it('near misses are InvalidPolicyError', () => {
      for (const text of ['', ' none', 'none ', 'NONE', 'ec:4+2 ', 'ec: 4+2', 'ec:04+2', 'ec:4+02', 'ec:0+2', 'ec:4+0', 'ec:17+1', 'ec:4+9',
        'ec:4', 'ec:+2', 'ec:4+2+1', 'ec:4-2', 'ec:4.0+2', 'ec:1e1+2', 'replicas:0', 'replicas:17', 'replicas:03', 'replicas:', 'replicas:-1',
        'replica:3', 'ec:４+2', 'ec:4+2\n', 'ec:1000+1', 'ec:99999999999999999999+1']) {
        assert.throws(() => parsePolicy(text), { name: 'InvalidPolicyError' }, JSON.stringify(text))
      }
      for (const p of [{ kind: 'ec', k: 0, m: 1 }, { kind: 'ec', k: 1.5, m: 1 }, { kind: 'ec', k: 4 }, { kind: 'ec', k: 4, m: 2, n: 1 },
        { kind: 'replicas', n: 0 }, { kind: 'none', n: 1 }, { kind: 'tier' }, null, 'ec:4+2', []]) {
        assert.throws(() => formatPolicy(p as Policy), { name: 'InvalidPolicyError' }, JSON.stringify(p))
      }
    })

    it('random and near-policy strings parse to a policy whose text they are, or are InvalidPolicyError', () => {
      const nearArb = fc.tuple(
        fc.constantFrom('ec:', 'replicas:', 'none', 'ec', ''),
        fc.oneof(fc.nat({ max: 30 }).map(String), fc.string({ maxLength: 3 })),
        fc.constantFrom('+', '', '-', ' +'),
        fc.oneof(fc.nat({ max: 12 }).map(String), fc.string({ maxLength: 3 }))
      ).map(parts => parts.join(''))
      fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 16 }), nearArb), (text) => {
        let policy: Policy
        try {
          policy = parsePolicy(text)
        } catch (err) {
          assert.equal((err as Error).name, 'InvalidPolicyError')
          return
        }
        assert.equal(formatPolicy(policy), text)
      }), { numRuns: RUNS })
    })
  })

  for (const { name, valid, decode, encode } of decoders) {
    describe(name, () => {
      it('random bytes are rejected cleanly', () => {
        fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
          decodeOrReject(decode, encode, bytes)
        }), { numRuns: RUNS })
      })

      it('valid records round-trip', () => {
        fc.assert(fc.property(valid, ({ value, decode: dec, encode: enc }) => {
          const bytes = (enc as (v: unknown) => Uint8Array)(value)
          const decoded = (dec as (b: Uint8Array) => unknown)(bytes)
          assert.deepEqual((enc as (v: unknown) => Uint8Array)(decoded), bytes)
          assert.equal(Buffer.compare(bytes, dagCbor.encode(value)), 0, 'the encoding is canonical dag-cbor')
        }), { numRuns: 2_000 })
      })

      it('structurally mutated records decode to a valid value or are rejected', () => {
        const outcomes = { valid: 0, rejected: 0 }
        fc.assert(fc.property(valid, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), ({ value, decode: dec, encode: enc }, mutations) => {
          const bytes = encodeAny(mutate(value, mutations))
          if (bytes === undefined) return
          outcomes[decodeOrReject(dec as (b: Uint8Array) => unknown, enc as (v: unknown) => Uint8Array, bytes) ? 'valid' : 'rejected']++
        }), { numRuns: RUNS })
        // both ways out are exercised (e.g. a duplicated page entry stays valid)
        assert.ok(outcomes.valid > 0 && outcomes.rejected > 0, JSON.stringify(outcomes))
      })

      it('byte-level mutations of valid records', () => {
        fc.assert(fc.property(valid, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 2 }), ({ value, decode: dec, encode: enc }, at, xor, how) => {
          const bytes = (enc as (v: unknown) => Uint8Array)(value)
          let mutated: Uint8Array
          if (how === 0) mutated = bytes.slice(0, at % bytes.length)
          else if (how === 1) { mutated = bytes.slice(); mutated[at % mutated.length] ^= xor } else mutated = new Uint8Array([...bytes, xor])
          decodeOrReject(dec as (b: Uint8Array) => unknown, enc as (v: unknown) => Uint8Array, mutated)
        }), { numRuns: RUNS })
      })
    })
  }

  describe('specific rules', () => {
    const leaf = CID.createV1(0x55, Digest.create(0x12, new Uint8Array(32).fill(1)))
    const good: Stripe = { data: [leaf, leaf], sizes: [10, 3], shardSize: 16, parity: [leaf] }
    const pageOf = (s: unknown): Uint8Array => dagCbor.encode({ v: 1, stripes: [s] })

    it('stripes: counts, sizes, shard size and CID codecs are checked against k+m', () => {
      assert.equal(decodeManifestPage(pageOf(good), 2, 1).stripes.length, 1)
      assert.equal(decodeManifestPage(pageOf(good), 4, 1).stripes.length, 1, 'a short stripe is a valid stripe')
      const bad: Array<[string, unknown, number, number]> = [
        ['more leaves than k', good, 1, 1],
        ['parity count is not m', good, 2, 2],
        ['sizes and data differ in length', { ...good, sizes: [10] }, 2, 1],
        ['shard size not a multiple of 8', { ...good, shardSize: 10 }, 2, 1],
        ['shard size larger than the longest leaf needs', { ...good, shardSize: 24 }, 2, 1],
        ['a leaf larger than the shard', { ...good, sizes: [17, 3] }, 2, 1],
        ['no leaves', { ...good, data: [], sizes: [] }, 2, 1],
        ['a dag-pb leaf', { ...good, data: [CID.createV1(0x70, leaf.multihash), leaf] }, 2, 1],
        ['a CIDv0 parity', { ...good, parity: [CID.createV0(leaf.multihash as any)] }, 2, 1],
        ['a leaf over 4 MiB', { ...good, sizes: [MAX_SHARD_BYTES + 1, 3], shardSize: MAX_SHARD_BYTES + 8 }, 2, 1],
        ['an extra field', { ...good, k: 2 }, 2, 1]
      ]
      for (const [why, stripe, k, m] of bad) {
        assert.throws(() => decodeManifestPage(pageOf(stripe), k, m), { name: 'InvalidManifestError' }, why)
      }
      assert.throws(() => decodeManifestPage(pageOf(good), 17, 1), { name: 'InvalidManifestError' })
      assert.throws(() => decodeManifestPage(pageOf(good), 16, 9), { name: 'InvalidManifestError' })
      assert.throws(() => decodeManifestPage(dagCbor.encode({ v: 1, stripes: new Array(MANIFEST_PAGE_STRIPES + 1).fill(good) }), 2, 1), { name: 'InvalidManifestError' })
      assert.throws(() => decodeManifestPage(dagCbor.encode({ v: 1, stripes: [] }), 2, 1), { name: 'InvalidManifestError' })
      assert.throws(() => decodeManifestPage(dagCbor.encode({ v: 2, stripes: [good] }), 2, 1), { name: 'InvalidManifestError' })
    })

    it('roots: the page count follows the stripe count; non-canonical bytes are rejected', () => {
      const page = CID.createV1(0x71, leaf.multihash)
      const root = { v: 1, root: leaf, k: 4, m: 2, size: 100, stripes: 257, pages: [page, page] }
      assert.equal(decodeManifestRoot(dagCbor.encode(root)).stripes, 257)
      assert.throws(() => decodeManifestRoot(dagCbor.encode({ ...root, pages: [page] })), { name: 'InvalidManifestError' })
      assert.throws(() => decodeManifestRoot(dagCbor.encode({ ...root, stripes: 0 })), { name: 'InvalidManifestError' })
      assert.throws(() => decodeManifestRoot(dagCbor.encode({ ...root, pages: [page, leaf] })), { name: 'InvalidManifestError' })
      assert.throws(() => decodeManifestRoot(dagCbor.encode({ ...root, root: page })), { name: 'InvalidManifestError' })
      // the same map with its keys in another order: valid CBOR, not canonical dag-cbor
      const bytes = encodeManifestRoot(root as ManifestRoot)
      const reordered = new Uint8Array([...bytes.subarray(0, 1), ...bytes.subarray(5, 9), ...bytes.subarray(1, 5), ...bytes.subarray(9)])
      assert.throws(() => decodeManifestRoot(reordered), { name: 'InvalidManifestError' })
      for (const input of ['x', null, undefined, 7, [1]]) {
        assert.throws(() => decodeManifestRoot(input as unknown as Uint8Array), { name: 'InvalidManifestError' })
        assert.throws(() => decodeManifestPage(input as unknown as Uint8Array, 2, 1), { name: 'InvalidManifestError' })
      }
    })

    it('stripe keys: sha-256 of the canonical stripe, deterministic, distinct for distinct stripes', () => {
      const keys = new Set<string>()
      fc.assert(fc.property(codingArb.chain(({ k, m }) => stripeArb(k, m).map(s => ({ s, k, m }))), ({ s, k, m }) => {
        const key = stripeKey(s)
        assert.equal(key.byteLength, 32)
        assert.deepEqual(key, stripeKey(clone(s)))
        assert.deepEqual(key, new Uint8Array(createHash('sha256').update(encodeStripe(s, k, m)).digest()))
        keys.add(Buffer.from(key).toString('hex'))
      }), { numRuns: 2_000 })
      assert.ok(keys.size > 1990)
      assert.throws(() => stripeKey({ ...good, shardSize: 8 }), { name: 'InvalidManifestError' })
    })
  })
})
