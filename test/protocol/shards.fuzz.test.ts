/**
 * Property tests of the `/shoal/shards/1.1.0 (and 1.0.0)` codec: random bytes and
 * mutated messages give a typed error or a valid message, never a crash;
 * valid messages round-trip.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import {
  decodeShardsRequest, decodeShardsResponse, encodeShardsRequest, encodeShardsResponse,
  holdingsStripes, MAX_HOLDINGS_STRIPES, MAX_RESERVE_BLOCK_BYTES, MAX_SHARD_REFS, MAX_RESERVE_BLOCKS, MAX_SHARD_INDEX, type ShardRef, type ShardsRequest, type ShardsResponse
} from '../../protocol/shards.js'

const RUNS = 10_000

const cidArb = (codec: number): fc.Arbitrary<CID> => fc.uint8Array({ minLength: 32, maxLength: 32 }).map(d => CID.createV1(codec, Digest.create(0x12, d)))
const refsArb: fc.Arbitrary<ShardRef[]> = fc.uniqueArray(fc.tuple(fc.nat({ max: 5000 }), fc.nat({ max: MAX_SHARD_INDEX })), { minLength: 1, maxLength: 40, selector: r => `${r[0]}:${r[1]}` })
  .map(refs => refs.sort((a, b) => a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1]) as ShardRef[])

const requestArb: fc.Arbitrary<ShardsRequest> = fc.oneof(
  fc.record({ v: fc.constant(1 as const), type: fc.constant('hold' as const), manifest: cidArb(0x71), root: cidArb(0x70), shards: refsArb }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('holdings' as const), manifest: cidArb(0x71), from: fc.nat({ max: 2 ** 32 - 1 }), count: fc.integer({ min: 1, max: MAX_HOLDINGS_STRIPES }) }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('holdings' as const), manifest: cidArb(0x71), from: fc.nat({ max: 2 ** 32 - 1 }), count: fc.constant(1), release: fc.constant(true as const) }),
  fc.constant({ v: 1 as const, type: 'info' as const }),
  fc.record({
    v: fc.constant(1 as const),
    type: fc.constant('reserve' as const),
    blocks: fc.uniqueArray(fc.tuple(cidArb(0x55), fc.integer({ min: 1, max: MAX_RESERVE_BLOCK_BYTES })).map(([cid, size]) => ({ cid, size })), { minLength: 1, maxLength: 20, selector: b => b.cid.toString() })
  })
)
const responseArb: fc.Arbitrary<ShardsResponse> = fc.oneof(
  fc.constant({ v: 1 as const, type: 'ok' as const }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('ok' as const), held: fc.uniqueArray(fc.nat({ max: MAX_SHARD_REFS - 1 }), { minLength: 1, maxLength: 30 }).map(list => list.sort((a, b) => a - b)) }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('holdings' as const), shards: fc.oneof(refsArb, fc.constant([] as ShardRef[])) }),
  fc.constant({ v: 1 as const, type: 'info' as const }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('info' as const), zone: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/) }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('error' as const), message: fc.string({ maxLength: 100 }) })
)

const junkArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 8 }),
  cidArb(0x55), fc.constant(-1), fc.constant(2 ** 40), fc.constant([[1, 2], [1, 2]]), fc.constant([[2, 0], [1, 0]]),
  fc.constant([[0, 24]]), fc.constant('hold'), fc.array(fc.integer(), { maxLength: 3 })
)

/** Decoding either succeeds with a message that re-encodes to the same bytes, or throws InvalidMessageError. */
function decodesOrRejects (bytes: Uint8Array, decode: (b: Uint8Array) => unknown, encode: (m: any) => Uint8Array): void {
  let message: unknown
  try {
    message = decode(bytes)
  } catch (err: any) {
    assert.equal(err?.name, 'InvalidMessageError', `unexpected ${String(err?.name)}: ${String(err?.message)}`)
    return
  }
  assert.deepEqual(encode(message), bytes)
}

function mutate (message: Record<string, unknown>, key: string, value: unknown, drop: boolean): Uint8Array | undefined {
  const copy: Record<string, unknown> = { ...message }
  if (drop) delete copy[key]
  else copy[key] = value
  try { return dagCbor.encode(copy) } catch { return undefined }
}

describe('shards protocol codec', () => {
  it('valid requests and responses round-trip', () => {
    // (generated records have a null prototype: compare through the canonical bytes and the fields)
    fc.assert(fc.property(requestArb, r => {
      const bytes = encodeShardsRequest(r)
      const back = decodeShardsRequest(bytes)
      assert.deepEqual(encodeShardsRequest(back), bytes)
      assert.deepEqual({ ...back }, { ...r })
    }), { numRuns: RUNS })
    fc.assert(fc.property(responseArb, r => {
      const bytes = encodeShardsResponse(r)
      const back = decodeShardsResponse(bytes)
      assert.deepEqual(encodeShardsResponse(back), bytes)
      assert.deepEqual({ ...back }, { ...r })
    }), { numRuns: RUNS })
  })

  it('random bytes are rejected with a typed error, never a crash', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), bytes => {
      decodesOrRejects(bytes, decodeShardsRequest, encodeShardsRequest)
      decodesOrRejects(bytes, decodeShardsResponse, encodeShardsResponse)
    }), { numRuns: RUNS })
  })

  it('mutated messages are rejected or stay valid', () => {
    const keys = ['v', 'type', 'manifest', 'root', 'shards', 'from', 'count', 'zone', 'message', 'blocks', 'extra']
    fc.assert(fc.property(requestArb, responseArb, fc.constantFrom(...keys), junkArb, fc.boolean(), (req, res, key, value, drop) => {
      const a = mutate(req as any, key, value, drop)
      if (a !== undefined) decodesOrRejects(a, decodeShardsRequest, encodeShardsRequest)
      const b = mutate(res as any, key, value, drop)
      if (b !== undefined) decodesOrRejects(b, decodeShardsResponse, encodeShardsResponse)
    }), { numRuns: RUNS })
  })

  it('rejects unsorted or repeated shard refs, out-of-range shards and non-canonical bytes', () => {
    const manifest = CID.createV1(0x71, Digest.create(0x12, new Uint8Array(32)))
    const root = CID.createV1(0x70, Digest.create(0x12, new Uint8Array(32).fill(1)))
    for (const shards of [[[1, 0], [0, 0]], [[0, 1], [0, 1]], [[0, MAX_SHARD_INDEX + 1]], []]) {
      assert.throws(() => decodeShardsRequest(dagCbor.encode({ v: 1, type: 'hold', manifest, root, shards })), { name: 'InvalidMessageError' })
    }
    // a raw-codec manifest is not a manifest
    assert.throws(() => decodeShardsRequest(dagCbor.encode({ v: 1, type: 'holdings', manifest: root.toV1(), from: 0, count: 1 }).map(b => b)), { name: 'InvalidMessageError' })
    // a release check says so with `true`, nothing else; absent, the ask is a plain one
    for (const release of [false, 1, 'true', null, [true]]) {
      assert.throws(() => decodeShardsRequest(dagCbor.encode({ v: 1, type: 'holdings', manifest, from: 0, count: 1, release })), { name: 'InvalidMessageError' })
    }
    // ... of one stripe
    assert.throws(() => decodeShardsRequest(dagCbor.encode({ v: 1, type: 'holdings', manifest, from: 0, count: 2, release: true })), { name: 'InvalidMessageError' })
    assert.throws(() => encodeShardsRequest({ v: 1, type: 'holdings', manifest, from: 0, count: MAX_HOLDINGS_STRIPES, release: true }), { name: 'InvalidMessageError' })
    assert.deepEqual(decodeShardsRequest(encodeShardsRequest({ v: 1, type: 'holdings', manifest, from: 3, count: 1, release: true })), { v: 1, type: 'holdings', manifest, from: 3, count: 1, release: true })
    assert.equal(Object.hasOwn(decodeShardsRequest(encodeShardsRequest({ v: 1, type: 'holdings', manifest, from: 3, count: 1 })), 'release'), false)
    // reserve: raw CIDs only, distinct, sizes within a shard's, 1..MAX_RESERVE_BLOCKS of them
    const raw = CID.createV1(0x55, Digest.create(0x12, new Uint8Array(32).fill(2)))
    for (const blocks of [[], [{ cid: root, size: 1 }], [{ cid: raw, size: 1 }, { cid: raw, size: 2 }], [{ cid: raw, size: MAX_RESERVE_BLOCK_BYTES + 1 }], [{ cid: raw, size: 0 }], [{ cid: raw, size: -1 }], [{ cid: raw }], [{ cid: raw, size: 1, x: 1 }],
      Array.from({ length: MAX_RESERVE_BLOCKS + 1 }, (_, i) => ({ cid: CID.createV1(0x55, Digest.create(0x12, new Uint8Array(32).fill(i % 256).map((b, j) => j === 0 ? i >> 8 : b))), size: 1 }))]) {
      assert.throws(() => decodeShardsRequest(dagCbor.encode({ v: 1, type: 'reserve', blocks })), { name: 'InvalidMessageError' })
    }
    assert.deepEqual(decodeShardsRequest(encodeShardsRequest({ v: 1, type: 'reserve', blocks: [{ cid: raw, size: 7 }] })), { v: 1, type: 'reserve', blocks: [{ cid: raw, size: 7 }] })
    // a reserve's or hold's answer names the blocks held already: indices of the request's blocks or shards, sorted, distinct, at least one
    for (const held of [[], [1, 0], [2, 2], [-1], [MAX_SHARD_REFS], [0.5], ['0'], 7]) {
      assert.throws(() => decodeShardsResponse(dagCbor.encode({ v: 1, type: 'ok', held })), { name: 'InvalidMessageError' })
    }
    assert.deepEqual(decodeShardsResponse(encodeShardsResponse({ v: 1, type: 'ok', held: [0, 3] })), { v: 1, type: 'ok', held: [0, 3] })
    // a map with keys out of canonical order
    const good = encodeShardsRequest({ v: 1, type: 'info' })
    const swapped = Uint8Array.from([0xa2, 0x64, ...Buffer.from('type'), 0x64, ...Buffer.from('info'), 0x61, 0x76, 0x01])
    assert.notDeepEqual(swapped, good)
    assert.throws(() => decodeShardsRequest(swapped), { name: 'InvalidMessageError' })
  })

  it('a holdings page of any code width has a whole answer within the refs one answer names', () => {
    for (let width = 1; width <= MAX_SHARD_INDEX + 1; width++) {
      const page = holdingsStripes(width)
      assert.ok(page >= 1 && page <= MAX_HOLDINGS_STRIPES)
      assert.ok(page * width <= MAX_SHARD_REFS, `${page} stripes of ${width} shards`)
      assert.ok(page === MAX_HOLDINGS_STRIPES || (page + 1) * width > MAX_SHARD_REFS, 'as many stripes as fit')
    }
    assert.equal(holdingsStripes(24), 2730)
    for (const width of [0, MAX_SHARD_INDEX + 2, 1.5, Number.NaN]) assert.throws(() => holdingsStripes(width), { name: 'InvalidArgumentError' })
  })
})
