/**
 * Property tests of the block exchange codec (random bytes, structurally
 * mutated messages, round trips) and a fuzz of a live node's handler.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { pino } from 'pino'
import { createHost } from '../../node/net/host.js'
import { createBlockExchange } from '../../node/exchange/index.js'
import { sha256 } from '../../node/blocks/verify.js'
import {
  BLOCKS_PROTOCOL, MAX_HAVE, MAX_MESSAGE_BYTES, MAX_WANT, InvalidMessageError,
  decodeRequest, decodeResponse, encodeRequest, encodeResponse, encodeRequestFrame, encodeResponseFrame,
  type BlockExchangeResponse, type BlockRequest
} from '../../protocol/block-exchange.js'
import { defer, openBlockStore } from '../helpers/temp.js'

const RUNS = 10_000

const cidArb = fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom(0x55, 0x70, 0x71), fc.boolean())
  .map(([digest, codec, v0]) => v0 ? CID.createV0(Digest.create(0x12, digest) as any) : CID.createV1(codec, Digest.create(0x12, digest)))
const idArb = fc.oneof(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER))
const dataArb = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 250, maxLength: 300 }), fc.constantFrom(new Uint8Array(65536), new Uint8Array(70000)))

const requestArb: fc.Arbitrary<BlockRequest> = fc.oneof(
  fc.record({ v: fc.constant(1 as const), type: fc.constant('want' as const), id: idArb, cids: fc.array(cidArb, { minLength: 1, maxLength: MAX_WANT }) }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('have' as const), id: idArb, cids: fc.array(cidArb, { minLength: 1, maxLength: 40 }) }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('put' as const), id: idArb, cid: cidArb, data: dataArb })
)
const responseArb: fc.Arbitrary<BlockExchangeResponse> = fc.oneof(
  fc.record({ v: fc.constant(1 as const), type: fc.constant('block' as const), id: idArb, cid: cidArb, data: dataArb }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('dont-have' as const), id: idArb, cid: cidArb }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('haves' as const), id: idArb, haves: fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }) }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('ack' as const), id: idArb }),
  fc.record({ v: fc.constant(1 as const), type: fc.constant('error' as const), id: idArb, message: fc.string({ maxLength: 50 }) })
)

/** Values dag-cbor can encode, to plant in messages. */
const junkArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null),
  fc.uint8Array({ maxLength: 8 }), cidArb, fc.constant('want'), fc.constant('block'), fc.constant(-1), fc.constant(2 ** 60),
  fc.constant(CID.createV1(0x55, Digest.create(0x13, new Uint8Array(64)))),
  fc.array(fc.oneof(cidArb, fc.integer(), fc.boolean()), { maxLength: 4 }),
  fc.constant(new Array(MAX_HAVE + 1).fill(true)),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 })
)

/** A structural mutation of a message object. */
const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), pick: fc.nat(), value: junkArb }),
  fc.record({ kind: fc.constant('add' as const), key: fc.string({ maxLength: 6 }), value: junkArb }),
  fc.record({ kind: fc.constant('wrap' as const) }),
  fc.record({ kind: fc.constant('extend' as const), count: fc.integer({ min: 1, max: 300 }) })
)

function mutate (message: Record<string, unknown>, mutations: Array<fc.Arbitrary<any> extends fc.Arbitrary<infer M> ? M : never>): unknown {
  let value: any = { ...message }
  for (const m of mutations as any[]) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) break
    const keys = Object.keys(value)
    if (m.kind === 'delete' && keys.length > 0) delete value[keys[m.pick % keys.length]]
    else if (m.kind === 'replace' && keys.length > 0) value[keys[m.pick % keys.length]] = m.value
    else if (m.kind === 'add') value[m.key] = m.value
    else if (m.kind === 'wrap') value = [value]
    else if (m.kind === 'extend') {
      for (const k of ['cids', 'haves']) {
        if (Array.isArray(value[k]) && value[k].length > 0) value[k] = Array.from({ length: value[k].length + m.count }, () => value[k][0])
      }
    }
  }
  return value
}

/** Decode, expecting either a valid value (that round-trips) or InvalidMessageError. */
function decodeOrReject<T> (decode: (b: Uint8Array) => T, encode: (m: T) => Uint8Array, bytes: Uint8Array): void {
  let value: T
  try {
    value = decode(bytes)
  } catch (err) {
    assert.ok(err instanceof InvalidMessageError, `threw ${String((err as Error)?.name)}: ${String((err as Error)?.message)}`)
    assert.equal((err as Error).name, 'InvalidMessageError')
    return
  }
  const bytes2 = encode(value)
  assert.deepEqual(encode(decode(bytes2)), bytes2)
}

const codecs = [
  { name: 'decodeRequest', decode: decodeRequest, encode: encodeRequest, valid: requestArb as fc.Arbitrary<any> },
  { name: 'decodeResponse', decode: decodeResponse, encode: encodeResponse, valid: responseArb as fc.Arbitrary<any> }
] as const

describe('block exchange codec', () => {
  for (const { name, decode, encode, valid } of codecs) {
    it(`${name}: random bytes are rejected cleanly`, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        decodeOrReject(decode as any, encode as any, bytes)
      }), { numRuns: RUNS })
    })

    it(`${name}: valid messages round-trip`, () => {
      fc.assert(fc.property(valid, (message) => {
        const bytes = (encode as any)(message) as Uint8Array
        const decoded = (decode as any)(bytes)
        assert.equal(decoded.type, message.type)
        assert.equal(decoded.id, message.id)
        assert.deepEqual((encode as any)(decoded), bytes)
        assert.deepEqual(Object.keys(decoded).sort(), Object.keys(message).sort())
      }), { numRuns: 2_000 })
    })

    it(`${name}: structurally mutated messages decode valid or are rejected`, () => {
      fc.assert(fc.property(valid, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (message, mutations) => {
        let bytes: Uint8Array
        try {
          bytes = dagCbor.encode(mutate(message, mutations as any))
        } catch {
          return // not encodable (e.g. undefined): nothing to send
        }
        decodeOrReject(decode as any, encode as any, bytes)
      }), { numRuns: RUNS })
    })

    it(`${name}: byte-level mutations of valid frames`, () => {
      fc.assert(fc.property(valid, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (message, at, xor, truncate) => {
        const bytes = (encode as any)(message) as Uint8Array
        const copy = bytes.slice(0, truncate ? at % bytes.length : bytes.length)
        if (!truncate) copy[at % copy.length] ^= xor
        decodeOrReject(decode as any, encode as any, copy)
      }), { numRuns: RUNS })
    })
  }

  it('frames from encode*Frame are the encoded message with its length prefix', () => {
    const check = (parts: Uint8Array[], bytes: Uint8Array): void => {
      const frame = Buffer.concat(parts)
      const prefix = []
      for (let n = bytes.byteLength; ; n = Math.floor(n / 128)) { if (n < 128) { prefix.push(n); break } prefix.push((n % 128) | 128) }
      assert.deepEqual(new Uint8Array(frame), new Uint8Array(Buffer.concat([Uint8Array.from(prefix), bytes])))
    }
    fc.assert(fc.property(requestArb, (message) => { check(encodeRequestFrame(message), encodeRequest(message)) }), { numRuns: 2_000 })
    fc.assert(fc.property(responseArb, (message) => { check(encodeResponseFrame(message), encodeResponse(message)) }), { numRuns: 2_000 })
    // the block is written as it is, not copied
    const data = new Uint8Array(1000).fill(9)
    const parts = encodeResponseFrame({ v: 1, type: 'block', id: 7, cid: CID.createV1(0x55, Digest.create(0x12, sha256(data))), data })
    assert.ok(parts.includes(data))
    assert.throws(() => encodeResponseFrame({ v: 1, type: 'block', id: 1, cid: CID.createV1(0x55, Digest.create(0x12, sha256(data))), data: new Uint8Array(4 * 1024 * 1024 + 1) }), { name: 'InvalidMessageError' })
  })

  // block and put have their own decoder (a view of the data, no dag-cbor
  // pass): whatever it accepts must be exactly what the generic dag-cbor
  // decoder reads from the same bytes, with the same checks
  for (const { name, decode, valid } of [
    { name: 'block', decode: decodeResponse as (b: Uint8Array) => any, valid: fc.record({ v: fc.constant(1 as const), type: fc.constant('block' as const), id: idArb, cid: cidArb, data: dataArb }) },
    { name: 'put', decode: decodeRequest as (b: Uint8Array) => any, valid: fc.record({ v: fc.constant(1 as const), type: fc.constant('put' as const), id: idArb, cid: cidArb, data: dataArb }) }
  ]) {
    const sameAsDagCbor = (bytes: Uint8Array): void => {
      let decoded: any
      try {
        decoded = decode(bytes)
      } catch (err) {
        assert.equal((err as Error).name, 'InvalidMessageError')
        return
      }
      const generic = dagCbor.decode(bytes) as any
      assert.deepEqual(Object.keys(generic).sort(), Object.keys(decoded).sort())
      assert.equal(generic.v, decoded.v)
      assert.equal(generic.type, decoded.type)
      assert.equal(generic.id, decoded.id)
      if (decoded.cid !== undefined) assert.ok(CID.asCID(generic.cid)?.equals(decoded.cid))
      if (decoded.data !== undefined) assert.deepEqual(new Uint8Array(generic.data), new Uint8Array(decoded.data))
    }

    it(`${name}: the fast decoder agrees with dag-cbor on valid and byte-mutated frames`, () => {
      fc.assert(fc.property(valid, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 3 }), (message, at, xor, how) => {
        const bytes = dagCbor.encode(message)
        const decoded = decode(bytes)
        assert.deepEqual({ ...decoded, data: new Uint8Array(decoded.data) }, { ...message, data: new Uint8Array(message.data) })
        assert.equal(decoded.data.buffer, bytes.buffer, 'data is a view of the frame')
        let mutated: Uint8Array
        if (how === 0) mutated = bytes.slice(0, at % bytes.length)
        else if (how === 1) { mutated = bytes.slice(); mutated[at % mutated.length] ^= xor }
        else if (how === 2) mutated = Buffer.concat([bytes, Uint8Array.of(xor)])
        else { mutated = bytes.slice(); mutated[at % Math.min(mutated.length, 64)] ^= xor }
        sameAsDagCbor(mutated)
      }), { numRuns: RUNS })
    })

    it(`${name}: non-minimal heads and other layouts go to the generic decoder`, () => {
      const cid = CID.createV1(0x55, Digest.create(0x12, sha256(new Uint8Array(3))))
      const good = dagCbor.encode({ v: 1, type: name, id: 5, cid, data: new Uint8Array(3) })
      // id 5 written as a one-byte argument (0x18 0x05): not canonical
      const at = good.indexOf(0x05, 5)
      const longId = Buffer.concat([good.subarray(0, at), Uint8Array.of(0x18, 0x05), good.subarray(at + 1)])
      assert.throws(() => decode(longId), { name: 'InvalidMessageError' })
      // data length 3 written as 0x58 0x03
      const dataAt = good.length - (name === 'block' ? 11 : 9) - 4
      assert.equal(good[dataAt], 0x43)
      const longData = Buffer.concat([good.subarray(0, dataAt), Uint8Array.of(0x58, 0x03), good.subarray(dataAt + 1)])
      assert.throws(() => decode(longData), { name: 'InvalidMessageError' })
      // keys out of canonical order are rejected by the generic decoder
      assert.throws(() => decode(Buffer.concat([good.subarray(0, 1), good.subarray(3, 7), good.subarray(1, 3), good.subarray(7)])), { name: 'InvalidMessageError' })
      // a non-sha2-256 CID in the canonical layout is rejected, not accepted
      const other = dagCbor.encode({ v: 1, type: name, id: 5, cid: CID.createV1(0x55, Digest.create(0x13, new Uint8Array(64))), data: new Uint8Array(3) })
      assert.throws(() => decode(other), { name: 'InvalidMessageError' })
    })
  }

  it('rejects non-sha2-256 CIDs, unsafe ids, oversized frames and too many CIDs', () => {
    const cid = CID.createV1(0x55, Digest.create(0x12, sha256(new Uint8Array(1))))
    const bad = [
      { v: 1, type: 'want', id: 1, cids: [CID.createV1(0x55, Digest.create(0x13, new Uint8Array(64)))] },
      { v: 1, type: 'want', id: 2 ** 60, cids: [cid] },
      { v: 1, type: 'want', id: -1, cids: [cid] },
      { v: 1, type: 'want', id: 1.5, cids: [cid] },
      { v: 1, type: 'want', id: 1, cids: new Array(MAX_WANT + 1).fill(cid) },
      { v: 1, type: 'want', id: 1, cids: [] },
      { v: 2, type: 'want', id: 1, cids: [cid] },
      { v: 1, type: 'want', id: 1, cids: [cid], extra: 1 },
      { v: 1, type: 'nope', id: 1 }
    ]
    for (const message of bad) assert.throws(() => decodeRequest(dagCbor.encode(message)), { name: 'InvalidMessageError' })
    assert.throws(() => decodeRequest(new Uint8Array(MAX_MESSAGE_BYTES + 1)), { name: 'InvalidMessageError' })
    assert.throws(() => encodeResponse({ v: 1, type: 'block', id: 1, cid, data: new Uint8Array(4 * 1024 * 1024 + 1) }), { name: 'InvalidMessageError' })
  })
})

describe('block exchange server fuzz', { timeout: 60_000 }, () => {
  it('survives random frames, answers the next valid request and stores nothing', async (t) => {
    const logger = pino({ level: 'silent' })
    const blockstore = await openBlockStore(t)
    const server = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    defer(t, async () => { await server.stop() })
    const exchange = createBlockExchange({ libp2p: server, blockstore, logger })
    await exchange.start()
    defer(t, async () => { await exchange.stop() })
    const client = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    defer(t, async () => { await client.stop() })
    await client.dial(server.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
    const held = CID.createV1(0x55, Digest.create(0x12, sha256(new Uint8Array([1, 2, 3]))))
    await blockstore.put(held, new Uint8Array([1, 2, 3]))
    const count = async (): Promise<number> => { let n = 0; for await (const _ of blockstore.getAll()) n++; return n }
    const before = await count()

    const frames = fc.sample(fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.tuple(requestArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([m, muts]) => {
        try { return dagCbor.encode(mutate(m as any, muts as any)) } catch { return new Uint8Array([0xff]) }
      }),
      // valid shapes whose put data does not match the CID
      fc.tuple(cidArb, dataArb, idArb).map(([cid, data, id]) => encodeRequest({ v: 1, type: 'put', id, cid, data }))
    ), { numRuns: 300, seed: 42 })
    let answered = 0
    for (const frame of frames) {
      const stream = await client.dialProtocol(server.peerId, BLOCKS_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
      const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      try {
        await lp.write(frame, { signal: AbortSignal.timeout(5_000) })
        decodeResponse((await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray())
        answered++
        await stream.close({ signal: AbortSignal.timeout(5_000) })
      } catch {
        stream.abort(new Error('fuzz frame done'))
      }
    }
    assert.ok(answered > 250, `only ${answered} of ${frames.length} frames answered`)
    // still serving: a fresh request is answered
    const got = await createBlockExchange({ libp2p: client, blockstore: await openBlockStore(t), logger })
      .getBlock(held, { providers: [server.peerId], signal: AbortSignal.timeout(5_000) })
    assert.deepEqual(new Uint8Array(got), new Uint8Array([1, 2, 3]))
    assert.equal(await count(), before, 'no block was stored')
    assert.equal(exchange.stats().blocksStored, 0)
    assert.ok(exchange.stats().invalidRequests > 100)
  })
})
