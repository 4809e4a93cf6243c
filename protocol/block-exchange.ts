/**
 * Wire codec of the block exchange protocol `/shoal/blocks/1.0.0`.
 *
 * Every message is one dag-cbor map in one length-prefixed (unsigned varint)
 * frame of at most {@link MAX_MESSAGE_BYTES}. Requests carry an `id` chosen
 * by the requester; every response repeats the `id` of the request it
 * answers. The decoders are strict (exact field sets, exact types, bounded
 * sizes) and pure: anything else throws {@link InvalidMessageError}.
 *
 * The messages that carry a block (`block`, `put`) have a fast path both ways:
 * {@link encodeResponseFrame} / {@link encodeRequestFrame} return the frame as
 * parts around the block's bytes (never copied), and the decoders read the
 * canonical layout of those two messages directly, returning `data` as a view
 * of the frame; anything that is not exactly that layout goes through the
 * generic dag-cbor decoder and its checks.
 *
 * @module
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { InvalidMessageError } from './errors.js'
import { fieldChecks } from './fields.js'
import { isPlainMap, type Fields } from './values.js'

/** Re-exported: the error every codec of this module throws (defined in errors.ts). */
export { InvalidMessageError }

/** The libp2p protocol id. */
export const BLOCKS_PROTOCOL = '/shoal/blocks/1.0.0'

/** The only protocol version this codec speaks. */
export const PROTOCOL_VERSION = 1

/** Largest block carried by `block` and `put` messages: 4 MiB. */
export const MAX_BLOCK_BYTES = 4 * 1024 * 1024

/** Largest frame: one block plus room for the envelope (4 MiB + 64 KiB). */
export const MAX_MESSAGE_BYTES = MAX_BLOCK_BYTES + 64 * 1024

/** Most CIDs in one `want`. */
export const MAX_WANT = 32

/** Most CIDs in one `have` (and booleans in one `haves`). */
export const MAX_HAVE = 256

/** Longest `message` of an `error` response, in UTF-16 code units. */
export const MAX_ERROR_MESSAGE = 1024


/** Ask for blocks: answered by one `block` or `dont-have` per CID, in order. */
export interface WantRequest { v: 1, type: 'want', id: number, cids: CID[] }
/** Ask which blocks the peer holds: answered by one `haves`. */
export interface HaveRequest { v: 1, type: 'have', id: number, cids: CID[] }
/** Offer a block for storage: answered by `ack` (stored) or `error`. */
export interface PutRequest { v: 1, type: 'put', id: number, cid: CID, data: Uint8Array }
/** Any request. */
export type BlockRequest = WantRequest | HaveRequest | PutRequest

/** A block answering a `want`. */
export interface BlockResponse { v: 1, type: 'block', id: number, cid: CID, data: Uint8Array }
/** The peer does not hold a wanted block. */
export interface DontHaveResponse { v: 1, type: 'dont-have', id: number, cid: CID }
/** One boolean per CID of a `have`, in order. */
export interface HavesResponse { v: 1, type: 'haves', id: number, haves: boolean[] }
/** A `put` block was verified and stored. */
export interface AckResponse { v: 1, type: 'ack', id: number }
/** The request failed; after a malformed request the stream is closed. */
export interface ErrorResponse { v: 1, type: 'error', id: number, message: string }
/** Any response. */
export type BlockExchangeResponse = BlockResponse | DontHaveResponse | HavesResponse | AckResponse | ErrorResponse

/** Encode a request (checked first). @throws {InvalidMessageError} */
export function encodeRequest (message: BlockRequest): Uint8Array {
  const bytes = dagCbor.encode(pickRequest(message))
  checkSize(bytes)
  return bytes
}

/** Encode a response (checked first). @throws {InvalidMessageError} */
export function encodeResponse (message: BlockExchangeResponse): Uint8Array {
  const bytes = dagCbor.encode(pickResponse(message))
  checkSize(bytes)
  return bytes
}

/**
 * A whole frame (length prefix, then the message) as parts to write in
 * order. A `put`'s `data` is one of the parts, not copied: the caller must
 * not change it until it is written. The bytes are exactly those of
 * {@link encodeRequest} with their length prefix. @throws {InvalidMessageError}
 */
export function encodeRequestFrame (message: BlockRequest): Uint8Array[] {
  const checked = pickRequest(message)
  return checked.type === 'put' ? dataFrame(checked) : frameOf(dagCbor.encode(checked))
}

/**
 * A whole frame (length prefix, then the message) as parts to write in
 * order. A `block`'s `data` is one of the parts, not copied: the caller must
 * not change it until it is written. The bytes are exactly those of
 * {@link encodeResponse} with their length prefix. @throws {InvalidMessageError}
 */
export function encodeResponseFrame (message: BlockExchangeResponse): Uint8Array[] {
  const checked = pickResponse(message)
  return checked.type === 'block' ? dataFrame(checked) : frameOf(dagCbor.encode(checked))
}

/**
 * Decode and validate a request frame. A `put`'s `data` may be a view of
 * `bytes`: the caller must own the frame (not reuse or change it).
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeRequest (bytes: Uint8Array): BlockRequest {
  checkInput(bytes)
  const fast = decodeDataMessage(bytes, PUT_TAIL)
  if (fast !== undefined) return { v: 1, type: 'put', ...fast }
  return pickRequest(decodeMap(bytes))
}

/**
 * Decode and validate a response frame. A `block`'s `data` may be a view of
 * `bytes`: the caller must own the frame (not reuse or change it).
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeResponse (bytes: Uint8Array): BlockExchangeResponse {
  checkInput(bytes)
  const fast = decodeDataMessage(bytes, BLOCK_TAIL)
  if (fast !== undefined) return { v: 1, type: 'block', ...fast }
  return pickResponse(decodeMap(bytes))
}

function fail (reason: string): never {
  throw new InvalidMessageError(`invalid block exchange message: ${reason}`)
}

function checkSize (bytes: Uint8Array): void {
  if (bytes.byteLength > MAX_MESSAGE_BYTES) fail(`${bytes.byteLength} bytes > ${MAX_MESSAGE_BYTES}`)
}

function checkInput (bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) fail('not bytes')
  checkSize(bytes)
}

function decodeMap (bytes: Uint8Array): Fields {
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err: any) {
    fail(`not dag-cbor (${String(err?.message ?? err)})`)
  }
  return value as Fields
}

const check = fieldChecks(fail)

/** Check the envelope and the exact key set (`what`: request or response); returns the type. */
function envelope<K extends string> (value: unknown, what: string, shapes: Readonly<Record<K, readonly string[]>>): K {
  if (!isPlainMap(value)) fail(`${what} is not a map`)
  check.version(value.v, what, PROTOCOL_VERSION)
  const type = check.type(value, what, shapes)
  check.shape(value, `${type} ${what}`, ['v', 'type', 'id', ...shapes[type]])
  id(value.id)
  return type
}

function id (value: unknown): number {
  return check.int(value, 'id', 0)
}

function cid (value: unknown): CID {
  return check.cid(value, 'cid')
}

function cids (value: unknown, max: number): CID[] {
  return check.list(value, 'cids', 1, max).map(cid)
}

function data (value: unknown): Uint8Array {
  // a view, not a copy: decoded data may share the frame's buffer, which belongs to
  // the caller (a frame taken off the stream is never reused by the transport)
  return check.bytes(value, 'data', 0, MAX_BLOCK_BYTES, { view: true })
}

function haves (value: unknown): boolean[] {
  return check.list(value, 'haves', 1, MAX_HAVE).map(h => check.bool(h, 'haves item'))
}

function text (value: unknown): string {
  return check.text(value, 'message', MAX_ERROR_MESSAGE)
}

const REQUEST_SHAPES = { want: ['cids'], have: ['cids'], put: ['cid', 'data'] } as const
const RESPONSE_SHAPES = { block: ['cid', 'data'], 'dont-have': ['cid'], haves: ['haves'], ack: [], error: ['message'] } as const

/** Validate and copy exactly the fields of a request. */
function pickRequest (value: unknown): BlockRequest {
  const type = envelope(value, 'request', REQUEST_SHAPES)
  const f = value as Fields
  const base = { v: 1 as const, id: f.id as number }
  switch (type) {
    case 'want': return { ...base, type, cids: cids(f.cids, MAX_WANT) }
    case 'have': return { ...base, type, cids: cids(f.cids, MAX_HAVE) }
    default: return { ...base, type: 'put', cid: cid(f.cid), data: data(f.data) }
  }
}

/** Validate and copy exactly the fields of a response. */
function pickResponse (value: unknown): BlockExchangeResponse {
  const type = envelope(value, 'response', RESPONSE_SHAPES)
  const f = value as Fields
  const base = { v: 1 as const, id: f.id as number }
  switch (type) {
    case 'block': return { ...base, type, cid: cid(f.cid), data: data(f.data) }
    case 'dont-have': return { ...base, type, cid: cid(f.cid) }
    case 'haves': return { ...base, type, haves: haves(f.haves) }
    case 'ack': return { ...base, type }
    default: return { ...base, type: 'error', message: text(f.message) }
  }
}

// ---------------------------------------------------------------- block-carrying messages, fast path
//
// `block` and `put` are dag-cbor maps {v, id, cid, data, type}, whose
// canonical encoding (keys sorted by length, then bytes) is
//
//   a5 61'v' 01  62'id' <uint id>  63'cid' d8 2a <bytes: 00 CID>
//   64'data' <bytes: data>  64'type' <text: "block" | "put">
//
// Encoding writes that layout around the data; decoding accepts exactly that
// layout with minimal-length heads (what dag-cbor's strict decoder accepts
// for these messages) and leaves everything else to the generic decoder.

const DATA_HEAD = Uint8Array.of(0xa5, 0x61, 0x76, 0x01, 0x62, 0x69, 0x64)
const CID_KEY = Uint8Array.of(0x63, 0x63, 0x69, 0x64, 0xd8, 0x2a)
const DATA_KEY = Uint8Array.of(0x64, 0x64, 0x61, 0x74, 0x61)
const BLOCK_TAIL = Uint8Array.of(0x64, 0x74, 0x79, 0x70, 0x65, 0x65, 0x62, 0x6c, 0x6f, 0x63, 0x6b)
const PUT_TAIL = Uint8Array.of(0x64, 0x74, 0x79, 0x70, 0x65, 0x63, 0x70, 0x75, 0x74)
const MAJOR_UINT = 0
const MAJOR_BYTES = 2

/** Bytes of a CBOR head: major type and a minimal-length argument (≤ 2^53). */
function cborHead (major: number, n: number): number[] {
  const m = major << 5
  if (n < 24) return [m | n]
  if (n < 0x100) return [m | 24, n]
  if (n < 0x10000) return [m | 25, n >>> 8, n & 0xff]
  if (n < 0x100000000) return [m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
  const hi = Math.floor(n / 0x100000000)
  const lo = n >>> 0
  return [m | 27, hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff]
}

/** The unsigned-varint length prefix of a frame. */
function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  out.push(n)
  return out
}

/** A frame of one encoded message. */
function frameOf (bytes: Uint8Array): Uint8Array[] {
  checkSize(bytes)
  return [Uint8Array.from(varint(bytes.byteLength)), bytes]
}

/** The frame of a checked `block` or `put`, as [prefix + head, data, tail]. */
function dataFrame (message: BlockResponse | PutRequest): Uint8Array[] {
  const cidBytes = message.cid.bytes
  const tail = message.type === 'block' ? BLOCK_TAIL : PUT_TAIL
  const head = [
    ...DATA_HEAD, ...cborHead(MAJOR_UINT, message.id),
    ...CID_KEY, ...cborHead(MAJOR_BYTES, cidBytes.byteLength + 1), 0x00, ...cidBytes,
    ...DATA_KEY, ...cborHead(MAJOR_BYTES, message.data.byteLength)
  ]
  const length = head.length + message.data.byteLength + tail.byteLength
  if (length > MAX_MESSAGE_BYTES) fail(`${length} bytes > ${MAX_MESSAGE_BYTES}`)
  // the tail is copied: the transport gets buffers it may own, never a shared constant
  return [Uint8Array.from([...varint(length), ...head]), message.data, tail.slice()]
}

/**
 * The argument of a minimal-length CBOR head of `major` at `at`, and where
 * its content starts; undefined for anything else (other major type,
 * non-minimal, 2^53 or more, truncated).
 */
function readHead (bytes: Uint8Array, at: number, major: number): [number, number] | undefined {
  if (at >= bytes.byteLength) return undefined
  const first = bytes[at]
  if (first >> 5 !== major) return undefined
  const info = first & 0x1f
  if (info < 24) return [info, at + 1]
  if (info === 24) {
    if (at + 2 > bytes.byteLength || bytes[at + 1] < 24) return undefined
    return [bytes[at + 1], at + 2]
  }
  if (info === 25) {
    if (at + 3 > bytes.byteLength) return undefined
    const n = (bytes[at + 1] << 8) | bytes[at + 2]
    return n < 0x100 ? undefined : [n, at + 3]
  }
  if (info === 26) {
    if (at + 5 > bytes.byteLength) return undefined
    const n = uint32At(bytes, at + 1)
    return n < 0x10000 ? undefined : [n, at + 5]
  }
  if (info === 27) {
    if (at + 9 > bytes.byteLength) return undefined
    const hi = uint32At(bytes, at + 1)
    // minimal (≥ 2^32) and safe (< 2^53); anything else is the generic decoder's
    if (hi === 0 || hi > 0x1fffff) return undefined
    return [hi * 0x100000000 + uint32At(bytes, at + 5), at + 9]
  }
  return undefined
}

function uint32At (bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) >>> 0) + (bytes[at + 1] << 16) + (bytes[at + 2] << 8) + bytes[at + 3]
}

function matchAt (bytes: Uint8Array, at: number, expected: Uint8Array): boolean {
  if (at + expected.byteLength > bytes.byteLength) return false
  for (let i = 0; i < expected.byteLength; i++) if (bytes[at + i] !== expected[i]) return false
  return true
}

/**
 * Fields of a canonical `block` (or `put`, by `tail`) message, `data` a view
 * of `bytes`; undefined when `bytes` are not exactly that layout, then the
 * generic decoder decides. Field checks are the generic ones (and throw).
 */
function decodeDataMessage (bytes: Uint8Array, tail: Uint8Array): { id: number, cid: CID, data: Uint8Array } | undefined {
  if (!matchAt(bytes, 0, DATA_HEAD)) return undefined
  const idHead = readHead(bytes, DATA_HEAD.byteLength, MAJOR_UINT)
  if (idHead === undefined) return undefined
  let at = idHead[1]
  if (!matchAt(bytes, at, CID_KEY)) return undefined
  const cidHead = readHead(bytes, at + CID_KEY.byteLength, MAJOR_BYTES)
  if (cidHead === undefined) return undefined
  const [cidLength, cidAt] = cidHead
  if (cidLength < 1 || cidAt + cidLength > bytes.byteLength || bytes[cidAt] !== 0x00) return undefined
  let parsed: CID
  try {
    parsed = CID.decode(bytes.subarray(cidAt + 1, cidAt + cidLength))
  } catch {
    return undefined
  }
  at = cidAt + cidLength
  if (!matchAt(bytes, at, DATA_KEY)) return undefined
  const dataHead = readHead(bytes, at + DATA_KEY.byteLength, MAJOR_BYTES)
  if (dataHead === undefined) return undefined
  const [dataLength, dataAt] = dataHead
  const end = dataAt + dataLength
  if (end + tail.byteLength !== bytes.byteLength || !matchAt(bytes, end, tail)) return undefined
  return { id: id(idHead[0]), cid: cid(parsed), data: data(bytes.subarray(dataAt, end)) }
}
