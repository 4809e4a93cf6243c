/**
 * Property tests of the namespace codecs (entries, snapshot blocks, gossip
 * and sync messages): round trips, random bytes, structurally mutated
 * messages (deep), byte-level mutations, and one targeted test per rule.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from '../../node/blocks/verify.js'
import {
  MAX_BATCH_ENTRIES, MAX_BLOCKS_WANT, MAX_CLOCK_AUTHORS, MAX_ENTRY_BYTES, MAX_OPS, MAX_PARENTS, MAX_PEER_ID_LENGTH,
  MAX_REPLACES, MAX_SIG_BYTES, MAX_SNAPSHOT_BLOCK_BYTES, MAX_SNAPSHOT_ROOT_BYTES, MAX_SYNC_ERROR_MESSAGE,
  MAX_SYNC_MESSAGE_BYTES, MAX_TIME, InvalidMessageError,
  decodeEntry, decodeHeadsMessage, decodeSnapshotRoot, decodeSyncRequest, decodeSyncResponse,
  encodeEntry, encodeEntryBody, encodeHeadsMessage, encodeSnapshotRoot, encodeSnapshotRootBody,
  encodeSyncRequest, encodeSyncResponse, isPinPolicy,
  decodeSnapshotAuthors, encodeSnapshotAuthors, joinSnapshotAuthors, splitSnapshotAuthors,
  type LinkedSnapshotRoot, type SnapshotAuthors, type SnapshotRetired,
  type Dot, type LogEntry, type HeadsMessage, type Op, type PathOp, type Pin, type SnapshotRoot, type SnapshotVersion,
  type SyncRequest, type SyncResponse, type VectorClock
} from '../../protocol/namespace.js'
import { InvalidMessageError as BlockExchangeInvalidMessageError } from '../../protocol/block-exchange.js'
import { MAX_LEAF_ENTRIES, decodeTreeNode, encodeTreeNode, type TreeLeaf } from '../../protocol/snapshot-tree.js'

const RUNS = 10_000
/** Records with an ordinary prototype, as decoders build them. */
const PLAIN = { noNullPrototype: true } as const

// ---------------------------------------------------------------------------
// arbitraries of valid values

const digestArb = fc.uint8Array({ minLength: 32, maxLength: 32 })
/** dag-cbor sha2-256 CIDs: parents, heads, trees, roots. */
const dagCidArb = digestArb.map(d => CID.createV1(0x71, Digest.create(0x12, d)))
/** Content CIDs: any codec, v0 too. */
const contentCidArb = fc.tuple(digestArb, fc.constantFrom(0x55, 0x70, 0x71), fc.boolean())
  .map(([d, codec, v0]) => v0 ? CID.createV0(Digest.create(0x12, d) as any) : CID.createV1(codec, Digest.create(0x12, d)))

const PEERS = [
  '12D3KooWGRUVh8wGzCv4ZxBEmQjM3wE9JbDnbVH8xJwBnv3fFfXb',
  '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp',
  'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N',
  'x'.repeat(MAX_PEER_ID_LENGTH)
]
const peerArb = fc.oneof(
  fc.constantFrom(...PEERS),
  fc.string({ minLength: 1, maxLength: 12 }).filter(s => s !== '__proto__')
)
const uintArb = fc.oneof(fc.nat({ max: 2 ** 32 }), fc.maxSafeNat())
/** Times (ms since the epoch): small ones, and any up to the latest a date holds. */
const timeArb = fc.oneof(fc.nat({ max: 2 ** 32 }), fc.integer({ min: 0, max: MAX_TIME }))
const seqArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
const modeArb = fc.integer({ min: 0, max: 0o7777 })
const idArb = fc.maxSafeNat()
const sigArb = fc.uint8Array({ minLength: 1, maxLength: MAX_SIG_BYTES })
const segmentArb = fc.string({ unit: fc.constantFrom(...'abcXYZ019 ._-é€😀'), minLength: 1, maxLength: 10 }).filter(s => s !== '.' && s !== '..')
const pathArb = fc.array(segmentArb, { minLength: 1, maxLength: 4 }).map(s => '/' + s.join('/'))
/** A fresh, ordinary object (fast-check dictionaries may lack a prototype). */
const clockArb = (minKeys: number): fc.Arbitrary<VectorClock> =>
  fc.uniqueArray(fc.tuple(peerArb, fc.integer({ min: 1, max: 1_000_000 })), { minLength: minKeys, maxLength: 4, selector: ([p]) => p })
    .map(pairs => { const c: VectorClock = {}; for (const [p, n] of pairs) c[p] = n; return c })

/** Canonical durability policies (edges included). */
const policyArb = fc.oneof(
  fc.constantFrom('none', 'ec:1+1', 'ec:16+8', 'ec:4+2', 'replicas:1', 'replicas:16'),
  fc.tuple(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 8 })).map(([k, m]) => `ec:${k}+${m}`),
  fc.integer({ min: 1, max: 16 }).map(n => `replicas:${n}`)
)
/** Pins: a manifest only with an `ec:` policy. */
const pinArb: fc.Arbitrary<Pin> = fc.tuple(policyArb, fc.option(dagCidArb, { nil: undefined }))
  .map(([policy, manifest]) => policy.startsWith('ec:') && manifest !== undefined ? { policy, manifest } : { policy })

const opSkeletonArb = fc.record({
  kind: fc.constantFrom('put', 'mkdir', 'del'),
  path: pathArb,
  cid: contentCidArb,
  size: uintArb,
  mode: modeArb,
  mtime: timeArb,
  pin: fc.option(pinArb, { nil: undefined }),
  picks: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 3 })
})

/** An entry of the first version (with its author's clock), still accepted. */
type EntryV1 = Extract<LogEntry, { v: 1 }>
/** An entry as this build writes it (parent dots instead of a clock). */
type EntryV2 = Extract<LogEntry, { v: 2 }>

const entryArb: fc.Arbitrary<EntryV1> = fc.record({
  author: peerArb,
  seq: fc.oneof(fc.integer({ min: 1, max: 100 }), seqArb),
  time: timeArb,
  others: clockArb(0),
  parents: fc.uniqueArray(dagCidArb, { maxLength: 4, selector: c => c.toString() }),
  ops: fc.uniqueArray(opSkeletonArb, { minLength: 1, maxLength: 3, selector: o => o.path }),
  sig: sigArb
}).map(({ author, seq, time, others, parents, ops, sig }) => {
  const clock: VectorClock = { ...others, [author]: seq }
  const authors = Object.keys(clock)
  return {
    v: 1 as const,
    author,
    seq,
    time,
    clock,
    parents,
    ops: ops.map((o): Op => {
      const replaces: Dot[] = []
      const seen = new Set<string>()
      for (const [a, s] of o.picks) {
        const dotAuthor = authors[a % authors.length]
        const dotSeq = 1 + (s % clock[dotAuthor])
        if (dotAuthor === author && dotSeq === seq) continue
        const key = `${dotSeq}:${dotAuthor}`
        if (seen.has(key)) continue
        seen.add(key)
        replaces.push([dotAuthor, dotSeq])
      }
      if (o.kind === 'put') return { op: 'put', path: o.path, cid: o.cid, size: o.size, mode: o.mode, mtime: o.mtime, replaces, ...(o.pin !== undefined ? { pin: o.pin } : {}) }
      if (o.kind === 'mkdir') return { op: 'mkdir', path: o.path, mode: o.mode, mtime: o.mtime, replaces }
      return { op: 'del', path: o.path, replaces }
    }),
    sig
  }
})

const versionArb: fc.Arbitrary<SnapshotVersion> = fc.record({
  author: peerArb,
  seq: seqArb,
  time: timeArb,
  type: fc.constantFrom('file' as const, 'dir' as const),
  cid: fc.option(contentCidArb, { nil: undefined }),
  size: fc.option(uintArb, { nil: undefined }),
  mode: modeArb,
  mtime: timeArb,
  pin: fc.option(pinArb, { nil: undefined })
}).map(({ cid, size, pin, ...rest }) => {
  const v: SnapshotVersion = { ...rest }
  if (rest.type === 'file') {
    if (cid !== undefined) v.cid = cid
    if (size !== undefined) v.size = size
    if (pin !== undefined) v.pin = pin
  }
  return v
})

// a snapshot's versions travel in the leaves of its tree (protocol/snapshot-tree.ts)
const leafArb: fc.Arbitrary<TreeLeaf> = fc.uniqueArray(
  fc.tuple(pathArb, fc.uniqueArray(versionArb, { minLength: 1, maxLength: 2, selector: v => `${v.seq}:${v.author}` })),
  { maxLength: 4, selector: ([p]) => p }
).map(paths => ({ v: 1 as const, leaf: paths.sort(([a], [b]) => a < b ? -1 : 1) }))

const rootArb: fc.Arbitrary<SnapshotRoot> = fc.record({
  author: peerArb,
  time: timeArb,
  clock: clockArb(0),
  heads: fc.uniqueArray(dagCidArb, { maxLength: 4, selector: c => c.toString() }),
  tree: dagCidArb,
  count: uintArb,
  sig: sigArb
}).map(r => ({
  v: 1 as const,
  ...r,
  headDots: r.heads.map((_, i): [string, number] => [r.author, i + 1]),
  // a tip for every other author of the clock, in author order
  tips: Object.keys(r.clock).sort().filter((_, i) => i % 2 === 0).map((a, i): [string, CID] => [a, r.heads[i % Math.max(1, r.heads.length)] ?? cidOf(i + 20)])
}))

const entryBytesArb = fc.oneof(entryArb.map(encodeEntry), fc.uint8Array({ maxLength: 40 }))
const headsArb: fc.Arbitrary<HeadsMessage> = fc.record({
  v: fc.constant(1 as const),
  type: fc.constant('heads' as const),
  clock: clockArb(0),
  heads: fc.uniqueArray(dagCidArb, { maxLength: 4, selector: c => c.toString() }),
  entries: fc.array(entryBytesArb, { maxLength: 3 })
}, PLAIN)

const requestArb: fc.Arbitrary<SyncRequest> = fc.oneof(
  fc.record({ v: fc.constant(1 as const), type: fc.constant('pull' as const), id: idArb, clock: clockArb(0), limit: fc.integer({ min: 1, max: MAX_BATCH_ENTRIES }) }, PLAIN),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('blocks' as const), id: idArb, cids: fc.array(dagCidArb, { minLength: 1, maxLength: 8 }) }, PLAIN)
)
const responseArb: fc.Arbitrary<SyncResponse> = fc.oneof(
  fc.record({
    v: fc.constant(1 as const),
    type: fc.constant('entries' as const),
    id: idArb,
    clock: clockArb(0),
    heads: fc.uniqueArray(dagCidArb, { maxLength: 4, selector: c => c.toString() }),
    entries: fc.array(entryBytesArb, { maxLength: 3 }),
    more: fc.boolean()
  }, PLAIN),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('snapshot' as const), id: idArb, root: dagCidArb, clock: clockArb(1) }, PLAIN),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('blocks' as const), id: idArb, blocks: fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 4 }) }, PLAIN),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('error' as const), id: idArb, message: fc.string({ maxLength: 50 }) }, PLAIN)
)

// ---------------------------------------------------------------------------
// structural mutations (anywhere in the tree)

const rawCid = CID.createV1(0x55, Digest.create(0x12, new Uint8Array(32)))
const sha512Cid = CID.createV1(0x71, Digest.create(0x13, new Uint8Array(64)))
const bigBytes = new Uint8Array(MAX_ENTRY_BYTES + 1)

/** Values dag-cbor can encode, to plant in messages. */
const junkArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null),
  fc.uint8Array({ maxLength: 8 }), dagCidArb, contentCidArb, peerArb, pathArb,
  fc.constantFrom<unknown>(
    0, -1, 1, 2 ** 53, 2 ** 60, 1.5, 0o10000, '', '/', '/a/', 'a', '/a//b', '/a/../b', '/a\0b', '__proto__', 'x'.repeat(MAX_PEER_ID_LENGTH + 1),
    'put', 'mkdir', 'del', 'file', 'dir', 'heads', 'pull', 'blocks', 'entries', 'snapshot', 'error',
    'none', 'ec:4+2', 'ec:16+8', 'replicas:3', 'ec:0+2', 'ec:04+2', 'ec:17+2', 'replicas:0', ' none', 'ec:4+2 ',
    { policy: 'none' }, { policy: 'ec:4+2' }, { policy: 'replicas:2', manifest: rawCid }, { policy: 'ec:4+2', manifest: null },
    rawCid, sha512Cid, new Uint8Array(0), new Uint8Array(MAX_SIG_BYTES + 1), ['a', 1], ['a', 0], ['a', 1, 2], [], {}
  ),
  fc.constant(bigBytes),
  fc.array(fc.oneof(dagCidArb, fc.integer(), fc.boolean(), peerArb), { maxLength: 4 }),
  fc.tuple(peerArb, fc.integer()),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 })
)

const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), pick: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), pick: fc.nat(), value: junkArb }),
  fc.record({ kind: fc.constant('add' as const), at: fc.nat(), key: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('sig', 'cid', 'size', 'id', 'op', 'v', '__proto__', 'pin', 'policy', 'manifest')), value: junkArb }),
  fc.record({ kind: fc.constant('wrap' as const), at: fc.nat(), pick: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), i: fc.nat(), j: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), at: fc.nat(), count: fc.oneof({ weight: 99, arbitrary: fc.integer({ min: 1, max: 10 }) }, { weight: 1, arbitrary: fc.constantFrom(MAX_BLOCKS_WANT + 1, MAX_PARENTS + 1, MAX_BATCH_ENTRIES + 1, MAX_OPS + 1) }) })
)
type Mutation = typeof mutationArb extends fc.Arbitrary<infer M> ? M : never

function isContainer (value: unknown): value is Record<string, unknown> | unknown[] {
  if (Array.isArray(value)) return true
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Deep copy of maps and arrays (CIDs and bytes are shared, never mutated). */
function clone (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone)
  if (isContainer(value)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (k === '__proto__') set(out, k, clone(v))
      else out[k] = clone(v)
    }
    return out
  }
  return value
}

function containers (value: unknown, out: Array<Record<string, unknown> | unknown[]> = []): Array<Record<string, unknown> | unknown[]> {
  if (isContainer(value)) {
    out.push(value)
    for (const child of Array.isArray(value) ? value : Object.values(value)) containers(child, out)
  }
  return out
}

function set (target: Record<string, unknown> | unknown[], key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

function mutate (message: unknown, mutations: Mutation[]): unknown {
  const root = { value: clone(message) }
  for (const m of mutations) {
    const all = containers(root).slice(1)
    if (all.length === 0) break
    const target = all[m.at % all.length]
    const keys = Array.isArray(target) ? target.map((_, i) => i) : Object.keys(target)
    switch (m.kind) {
      case 'delete':
        if (keys.length === 0) break
        if (Array.isArray(target)) target.splice(m.pick % target.length, 1)
        else delete target[keys[m.pick % keys.length]]
        break
      case 'replace':
        // planted values are copies: the arbitraries' constants ([ 'a', 1 ], {}) are
        // shared by every run, and a later mutation must not change (or cycle) them
        if (keys.length > 0) set(target, keys[m.pick % keys.length], clone(m.value))
        break
      case 'add':
        if (Array.isArray(target)) target.push(clone(m.value))
        else set(target, m.key, clone(m.value))
        break
      case 'wrap':
        if (keys.length > 0) {
          const k = keys[m.pick % keys.length]
          set(target, k, [(target as any)[k]])
        }
        break
      case 'swap':
        if (Array.isArray(target) && target.length > 1) {
          const i = m.i % target.length
          const j = m.j % target.length;
          [target[i], target[j]] = [target[j], target[i]]
        }
        break
      case 'extend':
        if (Array.isArray(target)) {
          const first = target.length > 0 ? target[0] : 1
          for (let n = 0; n < m.count; n++) target.push(first)
        }
        break
    }
  }
  return root.value
}

// ---------------------------------------------------------------------------
// helpers

function assertInvalid (err: unknown): void {
  assert.ok(err instanceof InvalidMessageError, `threw ${String((err as Error)?.name)}: ${String((err as Error)?.message)}`)
  assert.equal((err as Error).name, 'InvalidMessageError')
}

/** Byte-wise equality, whatever the Uint8Array subclass (dag-cbor may hand back a Buffer). */
function assertSameBytes (actual: Uint8Array, expected: Uint8Array, message?: string): void {
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected), message ?? 'bytes differ')
}

/**
 * Decode, expecting either InvalidMessageError (returns undefined) or a valid
 * value that re-encodes to an equivalent frame (to the very same bytes for
 * canonical, content-addressed structures).
 */
function decodeOrReject<T> (decode: (b: Uint8Array) => T, encode: (m: T) => Uint8Array, bytes: Uint8Array, canonical: boolean): T | undefined {
  let value: T
  try {
    value = decode(bytes)
  } catch (err) {
    assertInvalid(err)
    return undefined
  }
  const again = encode(value)
  if (canonical) assertSameBytes(again, bytes)
  else assertSameBytes(encode(decode(again)), again)
  return value
}

function rejects (fn: () => unknown, why?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assertInvalid(err)
    if (why !== undefined) assert.match((err as Error).message, why)
    return true
  })
}

/**
 * A fixed sample of valid values: mutation runs start from these (generating
 * a fresh nested value per run would dominate the runtime; the mutations are
 * what varies).
 */
function poolOf<T> (valid: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.constantFrom(...fc.sample(valid, 300))
}

interface Codec { name: string, decode: (b: Uint8Array) => any, encode: (m: any) => Uint8Array, valid: fc.Arbitrary<any>, canonical: boolean }
const codecs: Codec[] = [
  { name: 'decodeEntry', decode: decodeEntry, encode: encodeEntry, valid: entryArb, canonical: true },
  { name: 'decodeSnapshotRoot', decode: decodeSnapshotRoot, encode: encodeSnapshotRoot, valid: rootArb, canonical: true },
  { name: 'decodeTreeNode (leaf)', decode: decodeTreeNode, encode: encodeTreeNode, valid: leafArb, canonical: true },
  { name: 'decodeHeadsMessage', decode: decodeHeadsMessage, encode: encodeHeadsMessage, valid: headsArb, canonical: false },
  { name: 'decodeSyncRequest', decode: decodeSyncRequest, encode: encodeSyncRequest, valid: requestArb, canonical: false },
  { name: 'decodeSyncResponse', decode: decodeSyncResponse, encode: encodeSyncResponse, valid: responseArb, canonical: false }
]

// ---------------------------------------------------------------------------
// properties

describe('namespace codecs: properties', () => {
  // tens of thousands of rejections: capturing a full stack for each would
  // dominate the runtime (failures still report their counterexample)
  const stackTraceLimit = Error.stackTraceLimit
  before(() => { Error.stackTraceLimit = 1 })
  after(() => { Error.stackTraceLimit = stackTraceLimit })

  it('reuses the block exchange InvalidMessageError', () => {
    assert.equal(InvalidMessageError, BlockExchangeInvalidMessageError)
  })

  for (const { name, decode, encode, valid, canonical } of codecs) {
    let pool: fc.Arbitrary<any> | undefined
    const validPool = (): fc.Arbitrary<any> => (pool ??= poolOf(valid))

    it(`${name}: valid values round-trip to deep-equal copies`, () => {
      fc.assert(fc.property(valid, (message) => {
        const bytes = encode(message)
        const decoded = decode(bytes)
        assert.deepStrictEqual(decoded, message)
        assert.deepEqual(encode(decoded), bytes)
        // decoded byte values are copies: scribbling over the frame changes nothing
        bytes.fill(0)
        assert.deepStrictEqual(decoded, message)
      }), { numRuns: 300 })
    })

    it(`${name}: random bytes are rejected cleanly`, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        decodeOrReject(decode, encode, bytes, canonical)
      }), { numRuns: RUNS })
    })

    it(`${name}: random dag-cbor values are rejected cleanly`, () => {
      fc.assert(fc.property(fc.oneof(junkArb, fc.dictionary(fc.constantFrom('v', 'type', 'id', 'clock', 'paths', 'author'), junkArb)), (value) => {
        decodeOrReject(decode, encode, dagCbor.encode(value), canonical)
      }), { numRuns: 500 })
    })

    it(`${name}: structurally mutated values decode valid or are rejected`, () => {
      let accepted = 0
      fc.assert(fc.property(validPool(), fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (message, mutations) => {
        const mutated = mutate(message, mutations)
        // encoders check too: what they accept, decoders accept
        let encoded: Uint8Array | undefined
        try {
          encoded = encode(mutated)
        } catch (err) {
          assertInvalid(err)
        }
        let bytes: Uint8Array
        try {
          bytes = dagCbor.encode(mutated)
        } catch {
          return // not encodable: nothing to send
        }
        const decoded = decodeOrReject(decode, encode, bytes, canonical)
        if (decoded !== undefined) accepted++
        if (encoded !== undefined) {
          assert.notEqual(decoded, undefined, 'the encoder accepted what the decoder rejects')
          assertSameBytes(encode(decoded), encoded)
        }
      }), { numRuns: RUNS })
      // the mutations are not all fatal: some mutated values are still valid
      assert.ok(accepted > RUNS / 100, `only ${accepted} of ${RUNS} mutated values decoded`)
    })

    it(`${name}: byte-level mutations of valid frames`, () => {
      fc.assert(fc.property(validPool(), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (message, at, xor, truncate) => {
        const bytes = encode(message)
        const copy = bytes.slice(0, truncate ? at % bytes.length : bytes.length)
        if (!truncate) copy[at % copy.length] ^= xor
        decodeOrReject(decode, encode, copy, canonical)
      }), { numRuns: 1_000 })
    })
  }

  it('encoders reject non-values with InvalidMessageError', () => {
    const junk: unknown[] = [null, undefined, 5, 'x', [], new Map(), new Uint8Array(2), Object.create({ v: 1 }), rawCid]
    for (const { encode } of codecs) for (const value of junk) rejects(() => encode(value))
    for (const value of junk) rejects(() => encodeEntryBody(value as any))
    for (const value of junk) rejects(() => encodeSnapshotRootBody(value as any))
    for (const { decode } of codecs) for (const value of [null, undefined, 'x', [1, 2], new ArrayBuffer(2)]) rejects(() => decode(value as any))
  })
})

// ---------------------------------------------------------------------------
// targeted rules

const A = PEERS[0]
const B = PEERS[1]
const C = PEERS[2]
const cidOf = (n: number, codec = 0x71): CID => CID.createV1(codec, Digest.create(0x12, new Uint8Array(sha256(new Uint8Array([n, n >> 8, n >> 16])))))
const contentCid = cidOf(0, 0x55)

function baseEntry (): EntryV1 {
  return {
    v: 1,
    author: A,
    seq: 3,
    time: 1_700_000_000_000,
    clock: { [A]: 3, [B]: 5 },
    parents: [cidOf(1), cidOf(2)],
    ops: [
      { op: 'put', path: '/docs/a.txt', cid: contentCid, size: 10, mode: 0o644, mtime: 1_700_000_000_000, replaces: [[A, 2], [B, 5]] },
      { op: 'mkdir', path: '/docs', mode: 0o755, mtime: 0, replaces: [] },
      { op: 'del', path: '/old', replaces: [[B, 1]] }
    ],
    sig: new Uint8Array(64).fill(7)
  }
}

/** Apply a change to a fresh copy of `base` and check both the encoder and the decoder reject it. */
function rejectsBoth<T> (base: () => T, change: (value: any) => void, encode: (v: T) => Uint8Array, decode: (b: Uint8Array) => unknown, why?: RegExp): void {
  const value = base() as any
  change(value)
  rejects(() => encode(value), why)
  let bytes: Uint8Array
  try {
    bytes = dagCbor.encode(value)
  } catch {
    return
  }
  rejects(() => decode(bytes), why)
}

const entryRejects = (change: (e: any) => void, why?: RegExp): void => { rejectsBoth(baseEntry, change, encodeEntry, decodeEntry, why) }

describe('namespace codecs: entries', () => {
  it('a valid entry round-trips and its body is the signed part', () => {
    const entry = baseEntry()
    const bytes = encodeEntry(entry)
    assert.deepStrictEqual(decodeEntry(bytes), entry)
    const { sig, ...body } = entry
    assert.ok(sig.length > 0)
    const bodyBytes = encodeEntryBody(body)
    assertSameBytes(bodyBytes, dagCbor.encode(body))
    assertSameBytes(encodeEntryBody(entry), bodyBytes, 'a sig on the argument is ignored')
    assert.equal((dagCbor.decode(bodyBytes) as any).sig, undefined)
    rejects(() => encodeEntryBody({ ...body, extra: 1 } as any))
  })

  it('decoded byte values are fresh copies, plain Uint8Arrays even from a Buffer', () => {
    const bytes = Buffer.from(encodeEntry(baseEntry()))
    const decoded = decodeEntry(bytes)
    assert.equal(Object.getPrototypeOf(decoded.sig), Uint8Array.prototype)
    assert.notEqual(decoded.sig.buffer, bytes.buffer)
    for (const p of decoded.parents) assert.notEqual(p.bytes.buffer, bytes.buffer)
    bytes.fill(0)
    assert.deepStrictEqual(decoded, baseEntry())
  })

  it('rejects a wrong version, unknown op, missing or extra fields and non-maps', () => {
    entryRejects(e => { e.v = 3 }, /version/)
    entryRejects(e => { e.v = 2 }, /deps|clock/)
    entryRejects(e => { e.ops[0].op = 'move' }, /unknown op/)
    entryRejects(e => { delete e.time }, /lacks field time/)
    entryRejects(e => { e.extra = 1 }, /unexpected field/)
    entryRejects(e => { delete e.sig })
    entryRejects(e => { e.ops[1].cid = contentCid }, /unexpected field/)
    entryRejects(e => { e.ops[0].replaces = undefined })
    entryRejects(e => { e.ops[2].mode = 0 }, /unexpected field/)
    entryRejects(e => { e.clock = [[A, 3]] }, /not a map/)
    rejects(() => encodeEntry({ ...baseEntry(), clock: new Map([[A, 3]]) as any }), /not a map/)
    entryRejects(e => { e.ops[0] = [e.ops[0]] }, /not a map/)
    rejects(() => encodeEntry(Object.assign(Object.create({ x: 1 }), baseEntry())), /not a map/)
  })

  it('checks authors, integers and signatures', () => {
    entryRejects(e => { e.author = ''; e.clock = { '': 3, [B]: 5 } }, /empty/)
    entryRejects(e => { const a = 'x'.repeat(MAX_PEER_ID_LENGTH + 1); e.author = a; e.clock = { [a]: 3, [B]: 5 } }, /longer/)
    entryRejects(e => { e.author = 5 }, /not a string/)
    rejects(() => encodeEntry({ ...baseEntry(), author: 'a\ud800', clock: { 'a\ud800': 3, [B]: 5 }, ops: [{ op: 'del', path: '/x', replaces: [] }] }), /surrogate/)
    entryRejects(e => { e.seq = 0; e.clock[A] = 0 }, /seq/)
    entryRejects(e => { e.seq = 1.5; e.clock[A] = 1.5 }, /seq/)
    entryRejects(e => { e.seq = 2 ** 53; e.clock[A] = 2 ** 53 }, /seq/)
    entryRejects(e => { e.time = -1 }, /time/)
    entryRejects(e => { e.time = 2 ** 53 }, /time/)
    // a time no clock gives (past what a date holds: every reader printing it as a date would fail)
    entryRejects(e => { e.time = MAX_TIME + 1 }, /entry time must be an integer in 0\.\.8640000000000000/)
    entryRejects(e => { e.ops[0].mtime = MAX_TIME + 1 }, /put mtime/)
    entryRejects(e => { e.ops[0].mtime = Number.MAX_SAFE_INTEGER }, /put mtime/)
    entryRejects(e => { e.ops[1].mtime = MAX_TIME + 1 }, /mkdir mtime/)
    const latest = baseEntry()
    latest.time = MAX_TIME
    ;(latest.ops[0] as Extract<Op, { op: 'put' }>).mtime = MAX_TIME
    assert.deepStrictEqual(decodeEntry(encodeEntry(latest)), latest, 'the latest time a date holds is a time')
    entryRejects(e => { e.ops[0].mode = 0o10000 }, /mode/)
    entryRejects(e => { e.ops[1].mode = -1 }, /mode/)
    entryRejects(e => { e.ops[0].mtime = -1 }, /mtime/)
    entryRejects(e => { e.ops[0].size = -1 }, /size/)
    entryRejects(e => { e.ops[0].size = 1.5 }, /size/)
    entryRejects(e => { e.sig = new Uint8Array(0) }, /sig/)
    entryRejects(e => { e.sig = new Uint8Array(MAX_SIG_BYTES + 1) }, /sig/)
    entryRejects(e => { e.sig = 'sig' }, /sig/)
    const max = baseEntry()
    max.ops[0] = { ...max.ops[0], mode: 0o7777 } as unknown as Op
    max.sig = new Uint8Array(MAX_SIG_BYTES)
    const a = 'y'.repeat(MAX_PEER_ID_LENGTH)
    max.author = a
    max.clock = { [a]: 3, [B]: 5 }
    ;(max.ops[0] as PathOp).replaces = [[B, 5]]
    assert.deepStrictEqual(decodeEntry(encodeEntry(max)), max)
    const zero = { ...baseEntry(), time: 0, seq: 1, clock: { [A]: 1 }, parents: [], ops: [{ op: 'del' as const, path: '/a', replaces: [] }] }
    assert.deepStrictEqual(decodeEntry(encodeEntry(zero)), zero)
    // -0 is not a distinct value on the wire
    assert.ok(Object.is(decodeEntry(encodeEntry({ ...baseEntry(), time: -0 })).time, 0))
  })

  it('checks the clock: contains the author at seq, values ≥ 1, bounded', () => {
    entryRejects(e => { e.clock[A] = 4 }, /clock\[author\]/)
    entryRejects(e => { e.clock[A] = 2 }, /clock\[author\]/)
    entryRejects(e => { delete e.clock[A]; e.ops[0].replaces = [[B, 5]] }, /clock\[author\]/)
    entryRejects(e => { e.clock = {} }, /authors/)
    entryRejects(e => { e.clock[C] = 0 }, /clock value/)
    entryRejects(e => { e.clock[C] = -2 }, /clock value/)
    entryRejects(e => { e.clock[C] = 2 ** 53 }, /clock value/)
    entryRejects(e => { Object.defineProperty(e.clock, '__proto__', { value: 1, enumerable: true }) }, /__proto__/)
    const full = baseEntry()
    for (let i = Object.keys(full.clock).length; i < MAX_CLOCK_AUTHORS; i++) full.clock[`peer-${i}`] = 1
    assert.deepStrictEqual(decodeEntry(encodeEntry(full)), full)
    entryRejects(e => { for (let i = Object.keys(e.clock).length; i <= MAX_CLOCK_AUTHORS; i++) e.clock[`peer-${i}`] = 1 }, /authors/)
  })

  it('checks parents: dag-cbor sha2-256, distinct, bounded', () => {
    entryRejects(e => { e.parents.push(cidOf(9, 0x55)) }, /codec/)
    entryRejects(e => { e.parents.push(CID.createV0(Digest.create(0x12, new Uint8Array(32)) as any)) }, /codec/)
    entryRejects(e => { e.parents.push(sha512Cid) }, /sha2-256/)
    entryRejects(e => { e.parents.push(CID.createV1(0x71, Digest.create(0x12, new Uint8Array(20)))) }, /sha2-256/)
    entryRejects(e => { e.parents.push(cidOf(1)) }, /twice/)
    entryRejects(e => { e.parents.push('bafy') }, /not a CID/)
    entryRejects(e => { e.parents.push({ '/': 'x', bytes: 'x' }) }, /not a CID/)
    entryRejects(e => { e.parents = Array.from({ length: MAX_PARENTS + 1 }, (_, i) => cidOf(i)) }, /parents/)
    const max = { ...baseEntry(), parents: Array.from({ length: MAX_PARENTS }, (_, i) => cidOf(i)) }
    assert.deepStrictEqual(decodeEntry(encodeEntry(max)), max)
    // content CIDs may be of any codec, v0 included
    const v0 = baseEntry()
    ;(v0.ops[0] as any).cid = CID.createV0(Digest.create(0x12, new Uint8Array(32)) as any)
    assert.deepStrictEqual(decodeEntry(encodeEntry(v0)), v0)
    entryRejects(e => { e.ops[0].cid = sha512Cid }, /sha2-256/)
  })

  it('checks ops: count, normalised distinct paths, never the root', () => {
    entryRejects(e => { e.ops = [] }, /ops/)
    const ops = (n: number): Op[] => Array.from({ length: n }, (_, i) => ({ op: 'del', path: `/f${i}`, replaces: [] }))
    entryRejects(e => { e.ops = ops(MAX_OPS + 1) }, /ops has/)
    const max = { ...baseEntry(), ops: ops(MAX_OPS) }
    assert.deepStrictEqual(decodeEntry(encodeEntry(max)), max)
    for (const bad of ['/docs/', 'docs', '', '/docs//a', '/docs/./a', '/docs/../a', '/a\0b', `/${'n'.repeat(256)}`]) {
      entryRejects(e => { e.ops[1].path = bad }, /path/)
    }
    rejects(() => encodeEntry({ ...baseEntry(), ops: [{ op: 'del', path: '/a\udc00', replaces: [] }] }), /surrogate/)
    entryRejects(e => { e.ops[1].path = '/' }, /root/)
    entryRejects(e => { e.ops[1].path = 7 }, /path/)
    entryRejects(e => { e.ops[1].path = '/docs/a.txt' }, /two ops/)
    entryRejects(e => { e.ops[2] = { ...e.ops[1] } }, /two ops/)
  })

  it('checks replaces: pairs, distinct, covered by the clock, never the own dot, bounded', () => {
    entryRejects(e => { e.ops[0].replaces = [[B, 6]] }, /not in the entry's past/)
    entryRejects(e => { e.ops[0].replaces = [[C, 1]] }, /not in the entry's past/)
    entryRejects(e => { e.ops[0].replaces = [[A, 4]] }, /not in the entry's past/)
    entryRejects(e => { e.ops[0].replaces = [[A, 3]] }, /own entry/)
    entryRejects(e => { e.ops[0].replaces = [[B, 2], [B, 2]] }, /twice/)
    entryRejects(e => { e.ops[0].replaces = [[B, 0]] }, /seq/)
    entryRejects(e => { e.ops[0].replaces = [[B, 1, 2]] }, /pair/)
    entryRejects(e => { e.ops[0].replaces = [[B]] }, /pair/)
    entryRejects(e => { e.ops[0].replaces = [{ 0: B, 1: 1 }] }, /pair/)
    entryRejects(e => { e.ops[0].replaces = [['', 1]] }, /empty/)
    entryRejects(e => { e.ops[0].replaces = [[1, B]] }, /not a string/)
    entryRejects(e => { e.ops[0].replaces = {} }, /not a list/)
    const many = (n: number): Dot[] => Array.from({ length: n }, (_, i) => [i % 2 === 0 ? A : B, 1 + (i >> 1)] as Dot)
    entryRejects(e => { e.clock[A] = e.seq = 500; e.clock[B] = 500; e.ops[0].replaces = many(MAX_REPLACES + 1) }, /replaces has/)
    const max = { ...baseEntry(), seq: 500, clock: { [A]: 500, [B]: 500 } }
    max.ops[0] = { ...(max.ops[0] as PathOp), replaces: many(MAX_REPLACES) }
    assert.deepStrictEqual(decodeEntry(encodeEntry(max)), max)
  })

  it('rejects oversize entries', () => {
    const long = '/' + 'a'.repeat(200) + '/' + 'b'.repeat(200)
    const big = { ...baseEntry(), ops: Array.from({ length: MAX_OPS }, (_, i): Op => ({ op: 'del', path: `${long}${i}`, replaces: [] })) }
    rejects(() => encodeEntry(big), /bytes >/)
    rejects(() => encodeEntryBody(big), /bytes >/)
    rejects(() => decodeEntry(dagCbor.encode(big)), /bytes >/)
    rejects(() => decodeEntry(new Uint8Array(MAX_ENTRY_BYTES + 1)), /bytes >/)
  })

  it('rejects non-canonical encodings (one entry, one CID)', () => {
    const entry = { ...baseEntry(), time: 7 }
    const bytes = encodeEntry(entry)
    // `time` as a float64 7.0 instead of the integer 7
    const key = new TextEncoder().encode('dtime')
    const at = bytes.findIndex((_, i) => key.every((b, j) => bytes[i + j] === b)) + key.length
    assert.equal(bytes[at], 7)
    const float = new Uint8Array(9)
    float[0] = 0xfb
    new DataView(float.buffer).setFloat64(1, 7)
    const patched = new Uint8Array([...bytes.subarray(0, at), ...float, ...bytes.subarray(at + 1)])
    assert.equal((dagCbor.decode(patched) as any).time, 7)
    rejects(() => decodeEntry(patched), /canonical/)
    // an invalid UTF-8 byte in a path decodes to U+FFFD, which re-encodes differently
    const path = new TextEncoder().encode('/old')
    const p = bytes.findIndex((_, i) => path.every((b, j) => bytes[i + j] === b))
    const broken = bytes.slice()
    broken[p + 3] = 0xff
    rejects(() => decodeEntry(broken), /canonical/)
  })
})

/** A v2 entry by A at seq 3 whose parents are B's 5th entry and A's 2nd. */
function baseEntryV2 (): EntryV2 {
  return {
    v: 2,
    author: A,
    seq: 3,
    time: 1_700_000_000_000,
    parents: [cidOf(1), cidOf(2)],
    deps: [[B, 5], [A, 2]],
    ops: [
      { op: 'put', path: '/docs/a.txt', cid: contentCid, size: 10, mode: 0o644, mtime: 1_700_000_000_000, replaces: [[A, 2], [B, 5]] },
      { op: 'del', path: '/old', replaces: [[C, 40]] }
    ],
    sig: new Uint8Array(64).fill(7)
  }
}

const entryV2Rejects = (change: (e: any) => void, why?: RegExp): void => { rejectsBoth(baseEntryV2, change, encodeEntry, decodeEntry, why) }

describe('namespace codecs: v2 entries (no clock)', () => {
  it('a valid entry round-trips, and its size does not depend on how many authors exist', () => {
    const entry = baseEntryV2()
    assert.deepStrictEqual(decodeEntry(encodeEntry(entry)), entry)
    const { sig: _sig, ...body } = entry
    assert.deepStrictEqual(dagCbor.decode(encodeEntryBody(entry)), dagCbor.decode(encodeEntryBody(body)))
    // the same write in v1 form carries one counter per author the writer has seen
    const v1 = (authors: number): number => {
      const clock: VectorClock = { [A]: 3, [B]: 5, [C]: 40 }
      // peer ids as long as real Ed25519 ones (52 characters)
      for (let i = 0; i < authors; i++) clock['12D3KooW' + String(i).padStart(44, 'x')] = 1
      const { deps: _deps, ...rest } = entry
      return encodeEntry({ ...rest, v: 1, clock }).byteLength
    }
    assert.ok(v1(1000) > 20 * encodeEntry(entry).byteLength, 'a v1 entry with 1,000 authors in its clock is many times larger')
    assert.ok(encodeEntry(entry).byteLength < 1024)
  })

  it('checks deps: one dot per parent, distinct, the author\'s own only before its seq', () => {
    entryV2Rejects(e => { e.deps.pop() }, /2 parents but 1 deps/)
    entryV2Rejects(e => { e.deps.push([C, 1]) }, /parents but 3 deps/)
    entryV2Rejects(e => { e.deps[1] = [B, 5] }, /twice/)
    entryV2Rejects(e => { e.deps[1] = [A, 3] }, /before the entry's own seq/)
    entryV2Rejects(e => { e.deps[1] = [A, 9] }, /before the entry's own seq/)
    entryV2Rejects(e => { e.deps[0] = [B, 0] }, /seq/)
    entryV2Rejects(e => { e.deps[0] = B }, /pair/)
    entryV2Rejects(e => { delete e.deps }, /lacks field deps/)
    entryV2Rejects(e => { e.clock = { [A]: 3 } }, /unexpected field/)
    const none = { ...baseEntryV2(), parents: [], deps: [] }
    assert.deepStrictEqual(decodeEntry(encodeEntry(none)), none)
  })

  it('checks replaces: never the own dot or a later one of the author; other authors\' dots are checked when applied', () => {
    entryV2Rejects(e => { e.ops[0].replaces = [[A, 3]] }, /its own entry/)
    entryV2Rejects(e => { e.ops[0].replaces = [[A, 4]] }, /not in the entry's past/)
    const far = baseEntryV2()
    ;(far.ops[1] as PathOp).replaces = [[C, 2 ** 40]]
    assert.deepStrictEqual(decodeEntry(encodeEntry(far)), far)
  })

  it('property: any well-formed v2 entry round-trips', () => {
    fc.assert(fc.property(entryArb, e => {
      const { clock: _clock, ...rest } = e
      const deps: Dot[] = rest.parents.map((_, i) => [`dep-${i}`, i + 1])
      const ops = (rest.ops as PathOp[]).map(op => ({ ...op, replaces: op.replaces.filter(d => d[0] !== e.author || d[1] < e.seq) }))
      const v2: EntryV2 = { ...rest, v: 2, deps, ops }
      assert.deepStrictEqual(decodeEntry(encodeEntry(v2)), v2)
    }), { numRuns: 200 })
  })
})

describe('namespace codecs: pins', () => {
  const manifest = cidOf(7)
  const pinned = (pin: unknown): LogEntry => {
    const e = baseEntry() as any
    e.ops[0].pin = pin
    return e
  }

  it('the policy grammar: none, ec:K+M, replicas:N, canonical text only', () => {
    for (const good of ['none', 'ec:1+1', 'ec:4+2', 'ec:10+4', 'ec:16+8', 'ec:16+1', 'replicas:1', 'replicas:3', 'replicas:16']) {
      assert.equal(isPinPolicy(good), true, good)
    }
    for (const bad of [
      'ec:0+2', 'ec:4+0', 'ec:04+2', 'ec:4+02', 'ec:17+2', 'ec:16+9', 'ec:100+1', 'ec:4+', 'ec:+2', 'ec:4-2', 'ec:4 + 2', 'ec:4+2 ',
      'replicas:0', 'replicas:17', 'replicas:01', 'replicas:', 'replicas:-1', 'replicas:1.0', ' none', 'none ', 'None', 'NONE', 'EC:4+2',
      'ec:٤+٢', 'tier:cold', '', 'x'.repeat(100), 5, null, undefined, {}, ['none']
    ]) {
      assert.equal(isPinPolicy(bad), false, JSON.stringify(bad))
    }
  })

  it('a put with a pin round-trips; an entry without one decodes as before, with no pin key', () => {
    for (const pin of [{ policy: 'none' }, { policy: 'replicas:3' }, { policy: 'ec:4+2' }, { policy: 'ec:16+8', manifest }]) {
      const entry = pinned(pin)
      const bytes = encodeEntry(entry)
      assert.deepStrictEqual(decodeEntry(bytes), entry)
      assert.deepStrictEqual((dagCbor.decode(bytes) as any).ops[0].pin, pin)
    }
    const plain = encodeEntry(baseEntry())
    const decoded = decodeEntry(plain)
    assert.equal(Object.hasOwn(decoded.ops[0], 'pin'), false)
    assert.deepStrictEqual(decoded, baseEntry())
    // an absent pin or manifest may be given as undefined; it is not encoded
    assertSameBytes(encodeEntry(pinned(undefined)), plain)
    assertSameBytes(encodeEntry(pinned({ policy: 'ec:4+2', manifest: undefined })), encodeEntry(pinned({ policy: 'ec:4+2' })))
  })

  it('a cold copy rides on any pin and round-trips; malformed ones are rejected', () => {
    const cold = { endpoint: 'http://127.0.0.1:9000', bucket: 'b', carKey: 'shoal/x.car', carSize: 10, indexKey: 'shoal/x.car.idx', indexSize: 3, indexCid: cidOf(9), blocks: 1, blockBytes: 5 }
    for (const pin of [{ policy: 'none', cold }, { policy: 'ec:4+2', manifest, cold: { ...cold, region: 'eu-west-1' } }]) {
      const entry = pinned(pin)
      assert.deepStrictEqual(decodeEntry(encodeEntry(entry)), entry)
    }
    entryRejects(e => { e.ops[0].pin = { policy: 'none', cold: { ...cold, endpoint: 'ftp://x' } } }, /endpoint/)
    entryRejects(e => { e.ops[0].pin = { policy: 'none', cold: { ...cold, endpoint: 'http://a/b' } } }, /endpoint/)
    entryRejects(e => { e.ops[0].pin = { policy: 'none', cold: { ...cold, bucket: '' } } }, /empty/)
    entryRejects(e => { e.ops[0].pin = { policy: 'none', cold: { ...cold, carSize: -1 } } }, /carSize/)
    entryRejects(e => { e.ops[0].pin = { policy: 'none', cold: { ...cold, indexCid: cidOf(9, 0x55) } } }, /codec/)
    entryRejects(e => { e.ops[0].pin = { policy: 'none', cold: { ...cold, secretAccessKey: 'x' } } }, /unexpected field/)
    const { blocks, ...lacking } = cold
    void blocks
    entryRejects(e => { e.ops[0].pin = { policy: 'none', cold: lacking } }, /lacks field blocks/)
  })

  it('rejects bad policies and manifests with InvalidMessageError', () => {
    for (const policy of ['ec:0+2', 'ec:4+0', 'ec:04+2', 'ec:17+2', 'ec:16+9', 'replicas:0', 'replicas:17', 'replicas:01', ' none', 'none ', 'NONE', '', 'ec:4+2\n']) {
      entryRejects(e => { e.ops[0].pin = { policy } }, /not a canonical durability policy/)
    }
    entryRejects(e => { e.ops[0].pin = { policy: 'x'.repeat(33) } }, /longer/)
    entryRejects(e => { e.ops[0].pin = { policy: 7 } }, /not a string/)
    entryRejects(e => { e.ops[0].pin = { policy: 'replicas:1', manifest } }, /manifest but policy/)
    entryRejects(e => { e.ops[0].pin = { policy: 'none', manifest } }, /manifest but policy/)
    entryRejects(e => { e.ops[0].pin = { policy: 'ec:4+2', manifest: cidOf(7, 0x55) } }, /codec/)
    entryRejects(e => { e.ops[0].pin = { policy: 'ec:4+2', manifest: cidOf(7, 0x70) } }, /codec/)
    entryRejects(e => { e.ops[0].pin = { policy: 'ec:4+2', manifest: sha512Cid } }, /sha2-256/)
    entryRejects(e => { e.ops[0].pin = { policy: 'ec:4+2', manifest: manifest.toString() } }, /not a CID/)
    entryRejects(e => { e.ops[0].pin = { policy: 'ec:4+2', manifest: null } }, /not a CID/)
    entryRejects(e => { e.ops[0].pin = { policy: 'ec:4+2', extra: 1 } }, /unexpected field/)
    entryRejects(e => { e.ops[0].pin = { manifest } }, /lacks field policy/)
    entryRejects(e => { e.ops[0].pin = 'ec:4+2' }, /not a map/)
    entryRejects(e => { e.ops[0].pin = null }, /not a map/)
    entryRejects(e => { e.ops[0].pin = [{ policy: 'none' }] }, /not a map/)
    // only a put carries a pin
    entryRejects(e => { e.ops[1].pin = { policy: 'none' } }, /unexpected field/)
    entryRejects(e => { e.ops[2].pin = { policy: 'none' } }, /unexpected field/)
  })

  it('snapshot file versions carry pins; directory versions never do', () => {
    const leaf = baseLeaf()
    ;(leaf.leaf[1][1][0] as SnapshotVersion).pin = { policy: 'ec:4+2', manifest }
    ;(leaf.leaf[1][1][1] as SnapshotVersion).pin = { policy: 'replicas:2' }
    assert.deepStrictEqual(decodeTreeNode(encodeTreeNode(leaf)), leaf)
    leafRejects(s => { s.leaf[0][1][0].pin = { policy: 'none' } }, /dir version/)
    leafRejects(s => { s.leaf[1][1][0].pin = { policy: 'ec:04+2' } }, /durability policy/)
    leafRejects(s => { s.leaf[1][1][0].pin = { policy: 'none', manifest } }, /manifest but policy/)
    leafRejects(s => { s.leaf[1][1][0].pin = { policy: 'ec:4+2', manifest: rawCid } }, /codec/)
    leafRejects(s => { s.leaf[1][1][0].pin = null }, /not a map/)
  })
})

const leafRejects = (change: (s: any) => void, why?: RegExp): void => {
  rejectsBoth(baseLeaf, change, encodeTreeNode, decodeTreeNode, why)
}
const rootRejects = (change: (s: any) => void, why?: RegExp): void => {
  rejectsBoth(baseRoot, change, encodeSnapshotRoot, decodeSnapshotRoot, why)
}

function baseLeaf (): TreeLeaf {
  return {
    v: 1,
    leaf: [
      ['/a', [{ author: A, seq: 1, time: 5, type: 'dir', mode: 0o755, mtime: 5 }]],
      ['/a/b', [
        { author: A, seq: 2, time: 6, type: 'file', cid: contentCid, size: 3, mode: 0o644, mtime: 6 },
        { author: B, seq: 2, time: 7, type: 'file', cid: contentCid, size: 3, mode: 0o644, mtime: 7 }
      ]],
      ['/a/c', [{ author: B, seq: 1, time: 7, type: 'file', mode: 0o600, mtime: 7 }]]
    ]
  }
}

function baseRoot (): SnapshotRoot {
  return { v: 1, author: A, time: 9, clock: { [A]: 2, [B]: 2 }, heads: [cidOf(1)], headDots: [[A, 1]], count: 3, tree: cidOf(3), tips: [[A, cidOf(4)], [B, cidOf(5)]].sort((x, y) => x[0] < y[0] ? -1 : 1) as Array<[string, CID]>, sig: new Uint8Array(64).fill(1) }
}

describe('namespace codecs: snapshots', () => {
  it('valid leaves and roots round-trip', () => {
    assert.deepStrictEqual(decodeTreeNode(encodeTreeNode(baseLeaf())), baseLeaf())
    assert.deepStrictEqual(decodeTreeNode(encodeTreeNode({ v: 1, leaf: [] })), { v: 1, leaf: [] })
    assert.deepStrictEqual(decodeSnapshotRoot(encodeSnapshotRoot(baseRoot())), baseRoot())
    const empty = { ...baseRoot(), clock: {}, heads: [], headDots: [], count: 0, tips: [] }
    assert.deepStrictEqual(decodeSnapshotRoot(encodeSnapshotRoot(empty)), empty)
    const { sig, ...body } = baseRoot()
    assert.ok(sig.length > 0)
    assertSameBytes(encodeSnapshotRootBody(body), dagCbor.encode(body))
    assertSameBytes(encodeSnapshotRootBody(baseRoot()), dagCbor.encode(body), 'a sig on the argument is ignored')
    // an optional field set to undefined counts as absent
    const leaf = baseLeaf()
    leaf.leaf[0][1][0].cid = undefined
    assert.deepStrictEqual(decodeTreeNode(encodeTreeNode(leaf)), baseLeaf())
  })

  it('checks snapshot versions', () => {
    leafRejects(s => { s.leaf[0][1][0].cid = contentCid }, /dir version/)
    leafRejects(s => { s.leaf[0][1][0].size = 1 }, /dir version/)
    leafRejects(s => { s.leaf[0][1][0].type = 'link' }, /unknown snapshot version type/)
    leafRejects(s => { s.leaf[1][1][0].extra = 1 }, /unexpected field/)
    leafRejects(s => { delete s.leaf[1][1][0].mtime }, /lacks field/)
    leafRejects(s => { s.leaf[1][1][0].size = -1 }, /size/)
    leafRejects(s => { s.leaf[1][1][0].mode = 0o10000 }, /mode/)
    leafRejects(s => { s.leaf[1][1][0].time = MAX_TIME + 1 }, /version time/)
    leafRejects(s => { s.leaf[1][1][0].mtime = MAX_TIME + 1 }, /version mtime/)
    const latest = baseLeaf()
    latest.leaf[1][1][0] = { ...latest.leaf[1][1][0], time: MAX_TIME, mtime: MAX_TIME }
    assert.deepStrictEqual(decodeTreeNode(encodeTreeNode(latest)), latest, 'the latest time a date holds is a time')
    leafRejects(s => { s.leaf[1][1][0].seq = 0 }, /seq/)
    leafRejects(s => { s.leaf[1][1][0].author = '' }, /empty/)
    leafRejects(s => { s.leaf[1][1][0].cid = sha512Cid }, /sha2-256/)
    leafRejects(s => { s.leaf[1][1][1].author = A }, /two versions/)
  })

  it('checks leaf paths: normalised, strictly ascending, non-empty versions, bounded', () => {
    leafRejects(s => { s.leaf.reverse() }, /ascending/)
    leafRejects(s => { s.leaf[1][0] = '/a' }, /ascending/)
    leafRejects(s => { s.leaf[0][0] = '/' }, /root/)
    leafRejects(s => { s.leaf[0][0] = '/a/' }, /normalised/)
    leafRejects(s => { s.leaf[0][0] = 'a' }, /invalid/)
    leafRejects(s => { s.leaf[0][1] = [] }, /versions/)
    leafRejects(s => { s.leaf[0] = ['/a'] }, /pair/)
    leafRejects(s => { s.leaf[0] = { path: '/a' } }, /pair/)
    leafRejects(s => { s.v = 2 }, /version/)
    leafRejects(s => { s.type = 'shard' }, /unexpected field/)
    const version: SnapshotVersion = { author: A, seq: 1, time: 0, type: 'dir', mode: 0, mtime: 0 }
    const paths = (n: number): Array<[string, SnapshotVersion[]]> => Array.from({ length: n }, (_, i): [string, SnapshotVersion[]] => [`/p${String(i).padStart(5, '0')}`, [version]])
    const max: TreeLeaf = { v: 1, leaf: paths(MAX_LEAF_ENTRIES) }
    assert.deepStrictEqual(decodeTreeNode(encodeTreeNode(max)), max)
    leafRejects(s => { s.leaf = paths(MAX_LEAF_ENTRIES + 1) }, /leaf items has/)
    // JS string order, not locale order: '/B' < '/a'
    assert.doesNotThrow(() => encodeTreeNode({ v: 1, leaf: [['/B', [version]], ['/a', [version]]] }))
    rejects(() => encodeTreeNode({ v: 1, leaf: [['/a', [version]], ['/B', [version]]] }), /ascending/)
  })

  it('checks snapshot roots', () => {
    rootRejects(r => { r.heads.push(cidOf(9, 0x55)) }, /codec/)
    rootRejects(r => { r.heads.push(cidOf(1)) }, /twice/)
    rootRejects(r => { r.tree = cidOf(9, 0x70) }, /codec/)
    rootRejects(r => { r.tree = [cidOf(3)] }, /tree/)
    rootRejects(r => { delete r.tree }, /lacks field tree/)
    rootRejects(r => { r.shards = [cidOf(3)] }, /unexpected field/)
    rootRejects(r => { r.count = -1 }, /count/)
    rootRejects(r => { r.count = 1.5 }, /count/)
    rootRejects(r => { r.time = MAX_TIME + 1 }, /snapshot time/)
    rootRejects(r => { r.clock[B] = 0 }, /clock/)
    rootRejects(r => { r.sig = new Uint8Array(0) }, /sig/)
    rootRejects(r => { r.author = 1 }, /author/)
    rootRejects(r => { r.type = 'root' }, /unexpected field/)
    rootRejects(r => { delete r.tips }, /lacks field tips/)
    rootRejects(r => { r.tips.reverse() }, /ascending author order/)
    rootRejects(r => { r.tips.push(r.tips[r.tips.length - 1]) }, /ascending author order/)
    rootRejects(r => { r.tips = [[C, cidOf(6)]] }, /an author its clock does not name/)
    rootRejects(r => { r.tips[0][1] = cidOf(6, 0x55) }, /codec/)
    rootRejects(r => { r.tips[0] = [r.tips[0][0]] }, /pair/)
    rejects(() => decodeSnapshotRoot(new Uint8Array(MAX_SNAPSHOT_ROOT_BYTES + 1)), /bytes >/)
    rejects(() => decodeTreeNode(new Uint8Array(MAX_SNAPSHOT_BLOCK_BYTES + 1)), /bytes >/)
  })
})

const headsRejects = (change: (m: any) => void, why?: RegExp): void => {
  rejectsBoth(() => ({ v: 1, type: 'heads', clock: { [A]: 1 }, heads: [cidOf(1)], entries: [encodeEntry(baseEntry())] }) as HeadsMessage, change, encodeHeadsMessage, decodeHeadsMessage, why)
}
const requestRejects = (base: SyncRequest, change: (m: any) => void, why?: RegExp): void => {
  rejectsBoth(() => clone(base) as SyncRequest, change, encodeSyncRequest, decodeSyncRequest, why)
}
const responseRejects = (base: SyncResponse, change: (m: any) => void, why?: RegExp): void => {
  rejectsBoth(() => clone(base) as SyncResponse, change, encodeSyncResponse, decodeSyncResponse, why)
}

describe('namespace codecs: gossip and sync messages', () => {
  const entryBytes = encodeEntry(baseEntry())
  const pull: SyncRequest = { v: 1, type: 'pull', id: 1, clock: {}, limit: 10 }
  const blocks: SyncRequest = { v: 1, type: 'blocks', id: 2, cids: [cidOf(1)] }
  const entries: SyncResponse = { v: 1, type: 'entries', id: 3, clock: {}, heads: [], entries: [], more: false }
  const snapshot: SyncResponse = { v: 1, type: 'snapshot', id: 4, root: cidOf(5), clock: { [A]: 1 } }
  const blocksResponse: SyncResponse = { v: 1, type: 'blocks', id: 5, blocks: [new Uint8Array([1])] }
  const error: SyncResponse = { v: 1, type: 'error', id: 6, message: 'nope' }

  it('entries stay bytes: copies of the frame, decodable later', () => {
    const frame = encodeHeadsMessage({ v: 1, type: 'heads', clock: {}, heads: [], entries: [entryBytes] })
    const message = decodeHeadsMessage(frame)
    assert.deepEqual(message.entries[0], entryBytes)
    assert.notEqual(message.entries[0].buffer, frame.buffer)
    assert.deepStrictEqual(decodeEntry(message.entries[0]), baseEntry())
    const response = decodeSyncResponse(encodeSyncResponse({ ...entries, entries: [entryBytes, entryBytes] }))
    assert.equal(response.type, 'entries')
    assert.deepStrictEqual(decodeEntry((response as any).entries[1]), baseEntry())
    for (const m of [pull, blocks]) assert.deepStrictEqual(decodeSyncRequest(encodeSyncRequest(m)), m)
    for (const m of [entries, snapshot, blocksResponse, error]) assert.deepStrictEqual(decodeSyncResponse(encodeSyncResponse(m)), m)
  })

  it('checks heads messages', () => {
    headsRejects(m => { m.v = 2 }, /version/)
    headsRejects(m => { m.type = 'head' }, /unknown/)
    headsRejects(m => { m.id = 1 }, /unexpected field/)
    headsRejects(m => { delete m.entries }, /lacks field/)
    headsRejects(m => { m.heads.push(cidOf(1)) }, /twice/)
    headsRejects(m => { m.heads.push(cidOf(2, 0x55)) }, /codec/)
    headsRejects(m => { m.clock = { [A]: -1 } }, /clock/)
    // a 0 names an author the sender holds nothing of (it would otherwise be read as retired)
    const zero: HeadsMessage = { v: 1, type: 'heads', clock: { [A]: 0, [B]: 3 }, heads: [], entries: [] }
    assert.deepStrictEqual(decodeHeadsMessage(encodeHeadsMessage(zero)), zero)
    headsRejects(m => { m.entries.push('entry') }, /bytes/)
    headsRejects(m => { m.entries.push(new Uint8Array(MAX_ENTRY_BYTES + 1)) }, /entries item/)
    headsRejects(m => { m.entries = Array.from({ length: MAX_BATCH_ENTRIES + 1 }, () => new Uint8Array(1)) }, /entries has/)
    // a message over MAX_SYNC_MESSAGE_BYTES
    rejects(() => encodeHeadsMessage({ v: 1, type: 'heads', clock: {}, heads: [], entries: Array.from({ length: 5 }, () => new Uint8Array(MAX_ENTRY_BYTES)) }), /bytes/)
    rejects(() => decodeHeadsMessage(new Uint8Array(MAX_SYNC_MESSAGE_BYTES + 1)), /bytes >/)
    // other messages are not heads messages
    rejects(() => decodeHeadsMessage(encodeSyncRequest(pull)), /unknown/)
    const max: HeadsMessage = { v: 1, type: 'heads', clock: {}, heads: [], entries: Array.from({ length: MAX_BATCH_ENTRIES }, () => new Uint8Array(1)) }
    assert.deepStrictEqual(decodeHeadsMessage(encodeHeadsMessage(max)), max)
  })

  it('checks sync requests', () => {
    requestRejects(pull, m => { m.limit = 0 }, /limit/)
    requestRejects(pull, m => { m.limit = MAX_BATCH_ENTRIES + 1 }, /limit/)
    requestRejects(pull, m => { m.id = -1 }, /id/)
    requestRejects(pull, m => { m.id = 2 ** 53 }, /id/)
    requestRejects(pull, m => { m.id = 0.5 }, /id/)
    requestRejects(pull, m => { delete m.id }, /lacks field id/)
    requestRejects(pull, m => { m.clock = null }, /clock/)
    requestRejects(pull, m => { m.clock = { '': 1 } }, /empty/)
    requestRejects(pull, m => { m.type = 'push' }, /unknown/)
    requestRejects(blocks, m => { m.cids = [] }, /cids/)
    requestRejects(blocks, m => { m.cids = Array.from({ length: MAX_BLOCKS_WANT + 1 }, (_, i) => cidOf(i)) }, /cids/)
    requestRejects(blocks, m => { m.cids = [cidOf(1, 0x55)] }, /codec/)
    requestRejects(blocks, m => { m.cids = [sha512Cid] }, /sha2-256/)
    const max: SyncRequest = { v: 1, type: 'pull', id: Number.MAX_SAFE_INTEGER, clock: {}, limit: MAX_BATCH_ENTRIES }
    assert.deepStrictEqual(decodeSyncRequest(encodeSyncRequest(max)), max)
    rejects(() => decodeSyncRequest(encodeSyncResponse(error)), /unknown/)
  })

  it('checks sync responses', () => {
    responseRejects(entries, m => { m.more = 1 }, /boolean/)
    responseRejects(entries, m => { m.heads = [cidOf(1), cidOf(1)] }, /twice/)
    responseRejects(entries, m => { m.entries = Array.from({ length: MAX_BATCH_ENTRIES + 1 }, () => new Uint8Array(1)) }, /entries has/)
    responseRejects(snapshot, m => { m.clock = {} }, /authors/)
    responseRejects(snapshot, m => { m.root = cidOf(1, 0x55) }, /codec/)
    responseRejects(blocksResponse, m => { m.blocks = Array.from({ length: MAX_BLOCKS_WANT + 1 }, () => new Uint8Array(1)) }, /blocks has/)
    responseRejects(blocksResponse, m => { m.blocks = [new Uint8Array(MAX_SNAPSHOT_ROOT_BYTES + 1)] }, /blocks item/)
    responseRejects(error, m => { m.message = 'x'.repeat(MAX_SYNC_ERROR_MESSAGE + 1) }, /longer/)
    // (dag-cbor itself would turn a lone surrogate into U+FFFD: only the encoder can see one)
    rejects(() => encodeSyncResponse({ ...error, message: 'x\ud83d' } as SyncResponse), /surrogate/)
    responseRejects(error, m => { m.message = 5 }, /not a string/)
    responseRejects(error, m => { m.extra = '' }, /unexpected/)
    const empty: SyncResponse = { v: 1, type: 'blocks', id: 0, blocks: [] }
    assert.deepStrictEqual(decodeSyncResponse(encodeSyncResponse(empty)), empty)
    const long: SyncResponse = { ...error, message: '€'.repeat(MAX_SYNC_ERROR_MESSAGE) } as SyncResponse
    assert.deepStrictEqual(decodeSyncResponse(encodeSyncResponse(long)), long)
    const copy = encodeSyncResponse(blocksResponse)
    const decoded = decodeSyncResponse(copy) as any
    copy.fill(0)
    assert.deepEqual(decoded.blocks, [new Uint8Array([1])])
  })
})

describe('namespace codecs: retire ops and v2 snapshot roots', () => {
  const retireEntry = (): EntryV2 => ({ ...baseEntryV2(), ops: [{ op: 'retire', author: B, seq: 5 }, { op: 'retire', author: C, seq: 40 }, baseEntryV2().ops[1]] })

  it('a v2 entry with retire ops round-trips', () => {
    const e = retireEntry()
    assert.deepStrictEqual(decodeEntry(encodeEntry(e)), e)
  })

  it('rejects bad retire ops with a typed error', () => {
    const bad = (change: (ops: any[]) => void, why: RegExp): void => {
      rejectsBoth(retireEntry, e => { change(e.ops) }, encodeEntry, decodeEntry, why)
    }
    bad(ops => { ops[0].seq = 0 }, /retired seq/)
    bad(ops => { ops[0].seq = 1.5 }, /retired seq/)
    bad(ops => { ops[0].author = '' }, /empty/)
    bad(ops => { ops[0].author = A }, /retires its own author/)
    bad(ops => { ops[1].author = B }, /two ops/)
    bad(ops => { ops[0].path = '/x' }, /unexpected field/)
    bad(ops => { delete ops[0].seq }, /lacks field/)
    // v1 entries (with a clock) have no retire op
    entryRejects(e => { e.ops = [{ op: 'retire', author: B, seq: 1 }] }, /v1 entry/)
  })

  const retiredRoot = (): SnapshotRoot => ({ ...baseRoot(), v: 2, retired: [[[A, 2], [[B, 2]]]] })

  it('a v2 root carries retirements; v1 roots still read', () => {
    assert.deepStrictEqual(decodeSnapshotRoot(encodeSnapshotRoot(retiredRoot())), retiredRoot())
    assert.deepStrictEqual(decodeSnapshotRoot(encodeSnapshotRoot(baseRoot())), baseRoot())
  })

  it('rejects retirements a root\'s clock does not bound', () => {
    const bad = (change: (r: any) => void, why: RegExp): void => { rejectsBoth(retiredRoot, change, encodeSnapshotRoot, decodeSnapshotRoot, why) }
    bad(r => { r.retired[0][1][0][1] = 3 }, /beyond the snapshot's clock/)
    bad(r => { r.retired[0][1][0][0] = C }, /beyond the snapshot's clock/)
    bad(r => { r.retired[0][0] = [A, 3] }, /beyond the snapshot's clock/)
    bad(r => { r.retired.push([[A, 1], [[B, 1]]]) }, /twice/)
    bad(r => { r.retired.push([[A, 2], [[A, 1]]]) }, /twice/)
    bad(r => { r.retired = [] }, /retired has/)
    bad(r => { delete r.retired }, /lacks field retired/)
    bad(r => { r.v = 4 }, /version/)
    bad(r => { r.v = 3 }, /lacks field authors/)
    rejectsBoth(baseRoot, r => { r.retired = [[[A, 2], [[B, 2]]]] }, encodeSnapshotRoot, decodeSnapshotRoot, /unexpected field/)
  })
})

describe('namespace codecs: v3 snapshot roots and their author blocks', () => {
  const linkedRoot = (): LinkedSnapshotRoot => {
    const { clock, tips, heads, headDots, ...common } = baseRoot()
    assert.ok(Object.keys(clock).length === tips.length && heads.length === headDots.length)
    return { ...common, v: 3, authors: [cidOf(10), cidOf(11)] }
  }
  const [L, H] = [A, B].sort()
  const [h1, h2] = [cidOf(20), cidOf(21)].sort((x, y) => x.toString() < y.toString() ? -1 : 1)
  const block = (): SnapshotAuthors => ({ v: 1, authors: [[L, 2, cidOf(4)], [H, 7, null]], retired: [[[C, 3], [[H, 7]]]], heads: [[L, 2, h1], [H, 6, h2]] })

  it('a linked root and an author block round-trip; split and join are inverse', () => {
    assert.deepStrictEqual(decodeSnapshotRoot(encodeSnapshotRoot(linkedRoot())), linkedRoot())
    assert.deepStrictEqual(decodeSnapshotAuthors(encodeSnapshotAuthors(block())), block())
    const part = {
      clock: { [A]: 2, [B]: 7, [C]: 3 },
      tips: [[A, cidOf(4)], [C, cidOf(5)]] as Array<[string, CID]>,
      retired: [[[C, 3], [[A, 2], [B, 7]]]] as SnapshotRetired,
      heads: [cidOf(22), cidOf(23), cidOf(24)],
      headDots: [[A, 2], [B, 5], [C, 3]] as Dot[]
    }
    const blocks = splitSnapshotAuthors(part, 2)
    assert.equal(blocks.length, 2)
    // each block carries the retirements and the heads of its own authors
    assert.deepStrictEqual(blocks.map(b => b.retired.flatMap(([, authors]) => authors.map(([a]) => a))), [[A, B].sort(), []])
    assert.deepStrictEqual(blocks.map(b => b.heads.map(([a]) => a).sort()), [[A, B].sort(), [C]])
    const joined = joinSnapshotAuthors(blocks.map(b => decodeSnapshotAuthors(encodeSnapshotAuthors(b))))
    assert.deepStrictEqual(joined.clock, part.clock)
    assert.deepStrictEqual(joined.tips, part.tips)
    assert.deepStrictEqual(joined.retired?.flatMap(([by, authors]) => authors.map(([a, n]) => [by, a, n])).sort(), [[[C, 3], A, 2], [[C, 3], B, 7]].sort())
    const heads = (p: { heads: CID[], headDots: Dot[] }): string[] => p.heads.map((h, i) => `${h.toString()} ${p.headDots[i][0]} ${p.headDots[i][1]}`).sort()
    assert.deepStrictEqual(heads(joined), heads(part))
  })

  it('rejects bad linked roots and author blocks with a typed error', () => {
    const badRoot = (change: (r: any) => void, why: RegExp): void => { rejectsBoth(linkedRoot, change, encodeSnapshotRoot, decodeSnapshotRoot, why) }
    badRoot(r => { r.authors = [] }, /author blocks has 0 items/)
    badRoot(r => { r.authors = [cidOf(10), cidOf(10)] }, /twice/)
    badRoot(r => { r.authors = [cidOf(10, 0x55)] }, /codec/)
    badRoot(r => { r.clock = { [A]: 1 } }, /unexpected field/)
    badRoot(r => { r.heads = [] }, /unexpected field/)
    const badBlock = (change: (b: any) => void, why: RegExp): void => { rejectsBoth(block, change, encodeSnapshotAuthors, decodeSnapshotAuthors, why) }
    badBlock(b => { b.authors.reverse() }, /strictly ascending/)
    badBlock(b => { b.authors = [] }, /has 0 items/)
    badBlock(b => { b.authors[1][1] = 0 }, /seq/)
    badBlock(b => { b.authors[1] = [H, 7] }, /not a triple/)
    badBlock(b => { b.authors[0][2] = cidOf(4, 0x55) }, /codec/)
    badBlock(b => { b.retired[0][1][0] = [C, 1] }, /beyond the snapshot's clock/)
    badBlock(b => { b.retired[0][1][0][1] = 8 }, /beyond the snapshot's clock/)
    badBlock(b => { b.retired.push([[A, 1], [[H, 7]]]) }, /twice/)
    badBlock(b => { b.heads[0][0] = C }, /not by one of its authors/)
    badBlock(b => { b.heads[0][1] = 3 }, /not by one of its authors within its counter/)
    badBlock(b => { b.heads.reverse() }, /heads not in strictly ascending order/)
    badBlock(b => { b.heads[1][2] = b.heads[0][2] }, /heads not in strictly ascending order/)
    badBlock(b => { b.heads[0] = [L, 2] }, /not a triple/)
    badBlock(b => { delete b.heads }, /lacks field heads/)
    badBlock(b => { b.v = 2 }, /version/)
    // what needs the whole clock: order across blocks, retiring dots
    const other: SnapshotAuthors = { v: 1, authors: [[C, 3, null]], retired: [], heads: [] }
    rejects(() => joinSnapshotAuthors([other, block()].sort((x, y) => x.authors[0][0] < y.authors[0][0] ? 1 : -1)), /strictly ascending/)
    rejects(() => joinSnapshotAuthors([block()]), /retiring dot .* beyond the snapshot's clock/)
    assert.equal(Object.keys(joinSnapshotAuthors([block(), other].sort((x, y) => x.authors[0][0] < y.authors[0][0] ? -1 : 1)).clock).length, 3)
  })
})
