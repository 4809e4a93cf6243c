/**
 * Wire format of `/shoal/shards/1.1.0` (and 1.0.0): how a node tells a peer which shards
 * of a stripe manifest it places there (`hold`, before it pushes the blocks
 * over `/shoal/blocks/1.0.0`), and asks a peer which shards of a manifest it
 * holds (`holdings`, for reads, `pin status` and repair). An add that places
 * shards while it is still importing (its manifest does not exist yet)
 * first asks the peer to take the blocks it names, with their sizes
 * (`reserve`), pushes them, and sends the `hold` that binds them to the
 * manifest at the end.
 *
 * One request and one response per stream, each a length-prefixed dag-cbor
 * map. This module is the one place where those bytes become typed values:
 * decoding checks canonical encoding, the exact key set, types and bounds,
 * and throws {@link InvalidMessageError} for anything else.
 *
 * @module
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { InvalidArgumentError, InvalidMessageError } from './errors.js'
import { fieldChecks } from './fields.js'
import { isPlainMap, type Fields } from './values.js'

export { InvalidMessageError }

/**
 * The libp2p protocol id. 1.1.0 added `held` to `ok` answers; a node asks
 * for it first and falls back to {@link SHARDS_PROTOCOL_1_0}.
 */
export const SHARDS_PROTOCOL = '/shoal/shards/1.1.0'

/**
 * The protocol id of nodes before `held` (their decoders refuse an `ok`
 * with any other key): still served, with every `ok` bare (see {@link withoutHeld}).
 */
export const SHARDS_PROTOCOL_1_0 = '/shoal/shards/1.0.0'

/** `answer` as a {@link SHARDS_PROTOCOL_1_0} peer reads it: an `ok` without `held`. */
export function withoutHeld (answer: ShardsResponse): ShardsResponse {
  return answer.type === 'ok' && answer.held !== undefined ? { v: 1, type: 'ok' } : answer
}

/** Largest request or response. */
export const MAX_SHARDS_MESSAGE_BYTES = 1024 * 1024

/** Most (stripe, shard) pairs in one `hold` or `holdings` answer. */
export const MAX_SHARD_REFS = 65_536

/** Most stripes one `holdings` request may cover. */
export const MAX_HOLDINGS_STRIPES = 4096

/** Highest shard index (k + m ≤ 24). */
export const MAX_SHARD_INDEX = 23

/**
 * Most stripes one `holdings` request asks when each stripe has `width`
 * shards (k + m): the answer, at most `width` refs per stripe, then always
 * fits in {@link MAX_SHARD_REFS} (a holder refuses to answer more). At most
 * {@link MAX_HOLDINGS_STRIPES}; 2,730 for the widest code (24 shards).
 *
 * @throws {InvalidArgumentError} when `width` is not an integer in 1..{@link MAX_SHARD_INDEX} + 1
 */
export function holdingsStripes (width: number): number {
  if (!Number.isInteger(width) || width < 1 || width > MAX_SHARD_INDEX + 1) throw new InvalidArgumentError(`a stripe has 1..${MAX_SHARD_INDEX + 1} shards, got ${String(width)}`)
  return Math.min(MAX_HOLDINGS_STRIPES, Math.floor(MAX_SHARD_REFS / width))
}

/** Highest stripe index. */
export const MAX_STRIPE_INDEX = 2 ** 32 - 1

/** Most blocks one `reserve` names. */
export const MAX_RESERVE_BLOCKS = 1024

/** Largest block a `reserve` may name (a shard: 4 MiB, the largest leaf a chunker cuts). */
export const MAX_RESERVE_BLOCK_BYTES = 4 * 1024 * 1024

/** Longest error message. */
export const MAX_ERROR_TEXT = 1024

/** How the message of an `error` refusing a `hold` over the holder's quota starts. */
export const QUOTA_EXCEEDED = 'quota exceeded'

/** How the message of an `error` refusing a request over the peer's rate starts. */
export const RATE_LIMITED = 'rate limited'

/**
 * How the message of an `error` refusing a release check (`holdings` with
 * `release`) starts: the holder is releasing in that stripe itself, or
 * holds as many stripes for peers' checks as it keeps. The asker leaves the
 * stripe's releases for its next pass.
 */
export const RELEASING = 'releasing'

const DAG_CBOR = 0x71
const RAW = 0x55

/** A shard of a manifest: [stripe index, shard index]. */
export type ShardRef = [stripe: number, shard: number]

/** "These shards of `manifest` are yours to keep": answered by `ok` or `error`. */
export interface HoldRequest {
  v: 1
  type: 'hold'
  /** The stripe manifest (dag-cbor). */
  manifest: CID
  /** The file's UnixFS root (the holder keeps its skeleton and announces it). */
  root: CID
  /**
   * Sorted, distinct; each a shard the manifest stores. A hold naming one it
   * does not (past its stripes or its k+m shards, or a zero shard of its
   * short last stripe) is answered `error` and nothing of it is recorded.
   */
  shards: ShardRef[]
}

/**
 * "Which shards of `manifest` in stripes [from, from + count) do you hold?"
 * A holder that holds more than {@link MAX_SHARD_REFS} of them answers
 * `error`, never a partial list: askers ask {@link holdingsStripes} stripes
 * at a time.
 */
export interface HoldingsRequest {
  v: 1
  type: 'holdings'
  manifest: CID
  from: number
  count: number
  /**
   * Asked right before the asker releases extra copies in these stripes:
   * the holder keeps its own copies of them a while (it starts no release
   * there), or answers `error` starting with {@link RELEASING} when it is
   * releasing in one of them itself (node/durability/stripe-releases.ts).
   * Only `true` is valid, and only with `count` 1 (a check is of one
   * stripe); absent in every other ask.
   */
  release?: true
}

/** "Tell me about yourself" (placement needs every candidate's zone). */
export interface InfoRequest { v: 1, type: 'info' }

/** A block a `reserve` names: its CID and its exact length. */
export interface ReservedBlock { cid: CID, size: number }

/**
 * "Take these blocks I am about to push; a `hold` naming them follows":
 * answered by `ok` (they may be pushed for a while, each exactly of its
 * size, within the holder's quota for others) or `error`. Blocks no hold
 * binds before the reservation expires are garbage.
 */
export interface ReserveRequest {
  v: 1
  type: 'reserve'
  /** The blocks (raw CIDs) and their sizes; 1..{@link MAX_RESERVE_BLOCKS}, distinct. */
  blocks: ReservedBlock[]
}

/** Any request. */
export type ShardsRequest = HoldRequest | HoldingsRequest | InfoRequest | ReserveRequest

/**
 * A `hold` was recorded, or a `reserve` accepted. The answer may name, in
 * `held`, what of the request this node holds already: for a `reserve`, the
 * indices of its `blocks`; for a `hold`, of its `shards` (sorted and
 * distinct). Those blocks are not pushed (a `hold` after a `reserve` binds
 * them as it binds pushed ones). Absent when it holds none of them, so a
 * peer that knows no `held` reads every answer about new content as before.
 */
export interface OkResponse { v: 1, type: 'ok', held?: number[] }
/** The shards held in the asked range (sorted, distinct). */
export interface HoldingsResponse { v: 1, type: 'holdings', shards: ShardRef[] }
/** A node's placement facts. `zone` is absent when the node has none. */
export interface InfoResponse { v: 1, type: 'info', zone?: string }
/**
 * The request was refused. A message starting with {@link QUOTA_EXCEEDED}
 * or {@link RATE_LIMITED} says why in a way the requester can act on.
 */
export interface ShardsErrorResponse { v: 1, type: 'error', message: string }
/** Any response. */
export type ShardsResponse = OkResponse | HoldingsResponse | InfoResponse | ShardsErrorResponse

/** Encode a request (checked first). @throws {InvalidMessageError} */
export function encodeShardsRequest (message: ShardsRequest): Uint8Array {
  return encode(pickRequest(message))
}

/** Encode a response (checked first). @throws {InvalidMessageError} */
export function encodeShardsResponse (message: ShardsResponse): Uint8Array {
  return encode(pickResponse(message))
}

/** Decode and validate a request. @throws {InvalidMessageError} */
export function decodeShardsRequest (bytes: Uint8Array): ShardsRequest {
  return pickRequest(decode(bytes))
}

/** Decode and validate a response. @throws {InvalidMessageError} */
export function decodeShardsResponse (bytes: Uint8Array): ShardsResponse {
  return pickResponse(decode(bytes))
}

// ---------------------------------------------------------------------------

function fail (reason: string): never {
  throw new InvalidMessageError(`invalid shards message: ${reason}`)
}

function encode (value: object): Uint8Array {
  const bytes = dagCbor.encode(value)
  if (bytes.byteLength > MAX_SHARDS_MESSAGE_BYTES) fail(`${bytes.byteLength} bytes > ${MAX_SHARDS_MESSAGE_BYTES}`)
  return bytes
}

function decode (bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) fail('not bytes')
  if (bytes.byteLength > MAX_SHARDS_MESSAGE_BYTES) fail(`${bytes.byteLength} bytes > ${MAX_SHARDS_MESSAGE_BYTES}`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err: any) {
    fail(`not dag-cbor (${String(err?.message ?? err)})`)
  }
  // dag-cbor's decoder is strict about most things; re-encoding catches the rest
  let again: Uint8Array
  try { again = dagCbor.encode(value) } catch { fail('not canonical dag-cbor') }
  if (Buffer.compare(again, bytes) !== 0) fail('not canonical dag-cbor')
  return value
}

const check = fieldChecks(fail)
const { int } = check

function manifestCID (value: unknown, what: string): CID {
  return check.cid(value, what, { v1: true, codecs: [DAG_CBOR] })
}

function anyCID (value: unknown, what: string): CID {
  return check.cid(value, what, { v1: true })
}

/** The fields of a message: its exact key set (plus any `optional` ones) and its version checked. */
function shape (value: unknown, what: string, keys: readonly string[], optional: readonly string[] = []): Fields {
  const f = check.shape(value, what, keys, optional)
  check.version(f.v, what, 1)
  return f
}

function refs (value: unknown, what: string): ShardRef[] {
  const out: ShardRef[] = []
  let prev: ShardRef | undefined
  for (const item of check.list(value, what, 0, MAX_SHARD_REFS)) {
    const [stripe, shard] = check.pair(item, `${what} entry`, ['stripe', 'shard'])
    const ref: ShardRef = [int(stripe, `${what} stripe`, 0, MAX_STRIPE_INDEX), int(shard, `${what} shard`, 0, MAX_SHARD_INDEX)]
    if (prev !== undefined && compareRefs(prev, ref) >= 0) fail(`${what} is not sorted and distinct`)
    out.push(ref)
    prev = ref
  }
  return out
}

function reservedBlocks (value: unknown): ReservedBlock[] {
  const seen = new Set<string>()
  return check.list(value, 'reserve blocks', 1, MAX_RESERVE_BLOCKS).map(item => {
    const f = check.shape(item, 'reserve block', ['cid', 'size'])
    const cid = check.cid(f.cid, 'reserve block cid', { v1: true, codecs: [RAW] })
    const key = cid.toString()
    if (seen.has(key)) fail('reserve names a block twice')
    seen.add(key)
    return { cid, size: int(f.size, 'reserve block size', 1, MAX_RESERVE_BLOCK_BYTES) }
  })
}

/** An `ok`'s `held`: 1..{@link MAX_SHARD_REFS} indices of a `reserve`'s blocks or a `hold`'s shards, sorted and distinct. */
function heldIndices (value: unknown): number[] {
  let prev = -1
  return check.list(value, 'ok held', 1, MAX_SHARD_REFS).map(item => {
    const index = int(item, 'ok held index', 0, MAX_SHARD_REFS - 1)
    if (index <= prev) fail('ok held is not sorted and distinct')
    prev = index
    return index
  })
}

/** Order of shard refs: by stripe, then shard. */
export function compareRefs (a: ShardRef, b: ShardRef): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1]
}

const REQUESTS: Record<ShardsRequest['type'], readonly string[]> = {
  hold: ['v', 'type', 'manifest', 'root', 'shards'],
  holdings: ['v', 'type', 'manifest', 'from', 'count'],
  info: ['v', 'type'],
  reserve: ['v', 'type', 'blocks']
}

const RESPONSES: Record<ShardsResponse['type'], readonly string[]> = {
  ok: ['v', 'type'],
  holdings: ['v', 'type', 'shards'],
  info: ['v', 'type'],
  error: ['v', 'type', 'message']
}

const OPTIONAL_REQUEST_KEYS: Partial<Record<ShardsRequest['type'], readonly string[]>> = {
  holdings: ['release']
}

const OPTIONAL_RESPONSE_KEYS: Partial<Record<ShardsResponse['type'], readonly string[]>> = {
  ok: ['held'],
  info: ['zone']
}

/** Longest zone name. */
export const MAX_ZONE_LENGTH = 64

function kindOf<K extends string> (value: unknown, kinds: Record<K, readonly string[]>, what: string): K {
  if (!isPlainMap(value)) fail(`${what} is not a map`)
  return check.type(value, what, kinds)
}

const ZONE_NAME = new RegExp(`^[A-Za-z0-9._-]{1,${MAX_ZONE_LENGTH}}$`)

/** A zone name: 1..{@link MAX_ZONE_LENGTH} characters of [A-Za-z0-9._-]. @throws {InvalidMessageError} */
export function zoneName (value: unknown): string {
  if (typeof value !== 'string' || !ZONE_NAME.test(value)) fail(`zone is not 1..${MAX_ZONE_LENGTH} characters of [A-Za-z0-9._-]`)
  return value
}

function pickRequest (value: unknown): ShardsRequest {
  const type = kindOf(value, REQUESTS, 'request')
  const f = shape(value, `${type} request`, REQUESTS[type], OPTIONAL_REQUEST_KEYS[type] ?? [])
  if (type === 'info') return { v: 1, type }
  if (type === 'reserve') return { v: 1, type, blocks: reservedBlocks(f.blocks) }
  if (type === 'hold') {
    const shards = refs(f.shards, 'hold shards')
    if (shards.length === 0) fail('hold names no shard')
    return { v: 1, type, manifest: manifestCID(f.manifest, 'hold manifest'), root: anyCID(f.root, 'hold root'), shards }
  }
  const from = int(f.from, 'holdings from', 0, MAX_STRIPE_INDEX)
  const count = int(f.count, 'holdings count', 1, MAX_HOLDINGS_STRIPES)
  const request: HoldingsRequest = { v: 1, type, manifest: manifestCID(f.manifest, 'holdings manifest'), from, count }
  if (!Object.hasOwn(f, 'release')) return request
  if (f.release !== true) fail('holdings release is not true')
  if (count !== 1) fail('a holdings release check asks one stripe')
  return { ...request, release: true }
}

function pickResponse (value: unknown): ShardsResponse {
  const type = kindOf(value, RESPONSES, 'response')
  const f = shape(value, `${type} response`, RESPONSES[type], OPTIONAL_RESPONSE_KEYS[type] ?? [])
  if (type === 'ok') return Object.hasOwn(f, 'held') ? { v: 1, type, held: heldIndices(f.held) } : { v: 1, type }
  if (type === 'info') {
    if (!Object.hasOwn(f, 'zone')) return { v: 1, type }
    return { v: 1, type, zone: zoneName(f.zone) }
  }
  if (type === 'holdings') return { v: 1, type, shards: refs(f.shards, 'holdings shards') }
  return { v: 1, type, message: check.text(f.message, 'error message', MAX_ERROR_TEXT) }
}
