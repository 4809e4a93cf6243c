/**
 * Wire codec of the block exchange protocol `/shoal/blocks/1.0.0`.
 *
 * Every message is one dag-cbor map in one length-prefixed (unsigned varint)
 * frame of at most {@link MAX_MESSAGE_BYTES}. Requests carry an `id` chosen
 * by the requester; every response repeats the `id` of the request it
 * answers. The decoders are strict (exact field sets, exact types, bounded
 * sizes) and pure: anything else throws {@link InvalidMessageError}.
 *
 * @module
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { ShoalError } from '../node/errors.js'

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

/** Multihash code of sha2-256, the only hash accepted on the wire. */
const SHA2_256 = 0x12

/** A frame that is not a valid message of this protocol. */
export class InvalidMessageError extends ShoalError {
  override name = 'InvalidMessageError'
  override readonly status = 400
}

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
 * Decode and validate a request frame.
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeRequest (bytes: Uint8Array): BlockRequest {
  return pickRequest(decodeMap(bytes))
}

/**
 * Decode and validate a response frame.
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeResponse (bytes: Uint8Array): BlockExchangeResponse {
  return pickResponse(decodeMap(bytes))
}

function fail (reason: string): never {
  throw new InvalidMessageError(`invalid block exchange message: ${reason}`)
}

function checkSize (bytes: Uint8Array): void {
  if (bytes.byteLength > MAX_MESSAGE_BYTES) fail(`${bytes.byteLength} bytes > ${MAX_MESSAGE_BYTES}`)
}

type Fields = Record<string, unknown>

function decodeMap (bytes: Uint8Array): Fields {
  if (!(bytes instanceof Uint8Array)) fail('not bytes')
  checkSize(bytes)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err: any) {
    fail(`not dag-cbor (${String(err?.message ?? err)})`)
  }
  return value as Fields
}

function isPlain (value: object): boolean {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Check the envelope and the exact key set; returns the type. */
function envelope (value: unknown, shapes: Record<string, readonly string[]>): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !isPlain(value)) fail('not a map')
  const fields = value as Fields
  if (fields.v !== PROTOCOL_VERSION) fail(`unsupported version ${String(fields.v)}`)
  const type = fields.type
  if (typeof type !== 'string' || !Object.hasOwn(shapes, type)) fail(`unknown type ${JSON.stringify(String(type)).slice(0, 40)}`)
  const expected = ['v', 'type', 'id', ...shapes[type]]
  const keys = Object.keys(fields)
  if (keys.length !== expected.length || !expected.every(k => Object.hasOwn(fields, k))) {
    fail(`fields of ${type} must be ${expected.join(', ')}`)
  }
  id(fields.id)
  return type
}

function id (value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail('id is not a safe unsigned integer')
  return value
}

function cid (value: unknown): CID {
  const parsed = CID.asCID(value)
  if (parsed === null) fail('not a CID')
  if (parsed.multihash.code !== SHA2_256 || parsed.multihash.size !== 32) fail(`CID ${parsed.toString()} is not sha2-256`)
  return parsed
}

function cids (value: unknown, max: number): CID[] {
  if (!Array.isArray(value)) fail('cids is not a list')
  if (value.length < 1 || value.length > max) fail(`${value.length} cids (1..${max} allowed)`)
  return value.map(cid)
}

function data (value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) fail('data is not bytes')
  if (value.byteLength > MAX_BLOCK_BYTES) fail(`block of ${value.byteLength} bytes > ${MAX_BLOCK_BYTES}`)
  // a copy: the decoded view shares the frame's buffer, which the transport
  // may reuse once the frame is consumed
  return value.slice()
}

function haves (value: unknown): boolean[] {
  if (!Array.isArray(value)) fail('haves is not a list')
  if (value.length < 1 || value.length > MAX_HAVE) fail(`${value.length} haves (1..${MAX_HAVE} allowed)`)
  for (const h of value) if (typeof h !== 'boolean') fail('haves holds a non-boolean')
  return value.slice()
}

function text (value: unknown): string {
  if (typeof value !== 'string') fail('message is not a string')
  if (value.length > MAX_ERROR_MESSAGE) fail('message too long')
  return value
}

const REQUEST_SHAPES = { want: ['cids'], have: ['cids'], put: ['cid', 'data'] } as const
const RESPONSE_SHAPES = { block: ['cid', 'data'], 'dont-have': ['cid'], haves: ['haves'], ack: [], error: ['message'] } as const

/** Validate and copy exactly the fields of a request. */
function pickRequest (value: unknown): BlockRequest {
  const type = envelope(value, REQUEST_SHAPES)
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
  const type = envelope(value, RESPONSE_SHAPES)
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
