/**
 * Records of erasure-coded durability: the durability policy of a pin, the
 * stripes of a file and the paged manifest that lists them.
 *
 * A file's raw leaf blocks are grouped k at a time, in file order, into
 * stripes; each stripe adds m Reed-Solomon parity shards. The manifest is a
 * dag-cbor root ({@link ManifestRoot}) naming pages ({@link ManifestPage}) of
 * up to {@link MANIFEST_PAGE_STRIPES} stripes each. The rules are in
 * `docs/erasure-coding.md`.
 *
 * Decoders are strict (exact field sets, exact types, bounds, canonical
 * dag-cbor only, so one manifest has exactly one CID) and pure: anything
 * malformed throws {@link InvalidManifestError}, never anything else.
 * Encoders check their input the same way, so a value that encodes also
 * decodes to an equal value. Policies that do not parse throw
 * {@link InvalidPolicyError}.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { equals } from 'multiformats/bytes'
import { CID } from 'multiformats/cid'
import { InvalidManifestError, InvalidPolicyError } from './errors.js'
import { fieldChecks } from './fields.js'
import { hasExactKeys, isIntIn, isPlainMap, plainBytes, show, type Fields } from './values.js'

// ---------------------------------------------------------------------------
// policy

/** How a pinned file is kept: not at all, erasure-coded k+m, or as n whole copies. */
export type Policy = { kind: 'none' } | { kind: 'ec', k: number, m: number } | { kind: 'replicas', n: number }

/** Most data shards in a stripe. */
export const MAX_K = 16
/** Most parity shards in a stripe. */
export const MAX_M = 8
/** Most shards in a stripe (k + m): one per peer. */
export const MAX_SHARDS = 24
/** Most whole copies of a file. */
export const MAX_REPLICAS = 16

const EC_RE = /^ec:([1-9][0-9]{0,2})\+([1-9][0-9]{0,2})$/
const REPLICAS_RE = /^replicas:([1-9][0-9]{0,2})$/
const POLICY_FORMS = '"none", "ec:K+M" or "replicas:N"'

/**
 * Parse a policy: `none`, `ec:K+M` (1 ≤ K ≤ {@link MAX_K}, 1 ≤ M ≤
 * {@link MAX_M}, K+M ≤ {@link MAX_SHARDS}) or `replicas:N` (1 ≤ N ≤
 * {@link MAX_REPLICAS}), decimal without leading zeros or spaces.
 *
 * @throws {InvalidPolicyError} for anything else
 */
export function parsePolicy (text: string): Policy {
  if (typeof text !== 'string') throw new InvalidPolicyError('policy is not a string')
  const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 37)}...` : text)
  if (text === 'none') return { kind: 'none' }
  const ec = EC_RE.exec(text)
  if (ec !== null) return checkPolicy({ kind: 'ec', k: Number(ec[1]), m: Number(ec[2]) })
  const replicas = REPLICAS_RE.exec(text)
  if (replicas !== null) return checkPolicy({ kind: 'replicas', n: Number(replicas[1]) })
  throw new InvalidPolicyError(`invalid policy ${shown}: expected ${POLICY_FORMS}`)
}

/**
 * True when `text` is the canonical text of a policy (what
 * {@link formatPolicy} writes); never throws.
 */
export function isPolicyText (text: unknown): text is string {
  if (typeof text !== 'string') return false
  try {
    return formatPolicy(parsePolicy(text)) === text
  } catch {
    return false
  }
}

/**
 * The k and m a policy is coded with: `ec:K+M` as is, `replicas:N` (N ≥ 2)
 * as `1+(N-1)` (with one data shard, Reed-Solomon parity is a copy);
 * undefined for `none` and `replicas:1`, which are kept where they were written.
 */
export function codingOf (policy: Policy): { k: number, m: number } | undefined {
  if (policy.kind === 'ec') return { k: policy.k, m: policy.m }
  if (policy.kind === 'replicas') return policy.n > 1 ? { k: 1, m: policy.n - 1 } : undefined
  return undefined
}

/**
 * The fewest distinct nodes over which a k+m stripe survives the loss of any
 * one node: spread evenly, each holds ⌈(k+m)/n⌉ shards, and that must be at
 * most m. Fewer nodes than this make parity useless against a lost node
 * (`ec:4+2` needs 3, `replicas:3` needs 2, `ec:10+4` needs 4).
 */
export function minNodesOf (coding: { k: number, m: number }): number {
  return Math.ceil((coding.k + coding.m) / coding.m)
}

/**
 * The distinct nodes a placement of a file under `policy` needs, given its
 * widest stripe's count of shards: k+m, or fewer for a file of
 * one short stripe (each of its shards needs a node of its own, no more); 1
 * for a policy that is not coded.
 */
export function nodesNeeded (policy: string, widest: number): number {
  const coding = codingOf(parsePolicy(policy))
  return coding === undefined ? 1 : Math.min(coding.k + coding.m, widest)
}

/**
 * What a placement of a file under `policy` left short of it, in words (none
 * when it is met): its shards on fewer distinct nodes than
 * {@link nodesNeeded}, or peers it failed on (the repair pass places what is
 * left). One judgement for `add --wait` (its error) and the background
 * placement (the stop's count of files that wait for holders).
 */
export function placementShortfall (policy: string, placed: { peers: number, widest: number, failed: readonly string[] }): string[] {
  const nodes = nodesNeeded(policy, placed.widest)
  const missing: string[] = []
  if (placed.peers < nodes) missing.push(`its shards are on ${placed.peers} node${placed.peers === 1 ? '' : 's'}, ${policy} needs ${nodes} distinct live nodes`)
  if (placed.failed.length > 0) missing.push(`placement failed on ${placed.failed.join(', ')}`)
  return missing
}

/** True when the policy text names a coded policy (one that has a stripe manifest); never throws. */
export function isCodedPolicy (text: string): boolean {
  return isPolicyText(text) && codingOf(parsePolicy(text)) !== undefined
}

/**
 * The canonical text of a policy, which {@link parsePolicy} reads back to an
 * equal policy.
 *
 * @throws {InvalidPolicyError} when `p` is not a valid policy
 */
export function formatPolicy (p: Policy): string {
  const policy = checkPolicy(p)
  switch (policy.kind) {
    case 'none': return 'none'
    case 'ec': return `ec:${policy.k}+${policy.m}`
    default: return `replicas:${policy.n}`
  }
}

/**
 * Validate a policy value (exact fields, integer bounds) and return a fresh copy.
 *
 * @throws {InvalidPolicyError} when it is not a valid policy
 */
export function checkPolicy (p: Policy): Policy {
  const bad = (why: string): never => { throw new InvalidPolicyError(`invalid policy: ${why}`) }
  if (!isPlainMap(p)) return bad('not an object')
  const f = p as Fields
  if (f.kind === 'none') {
    if (Object.keys(f).length !== 1) bad('none takes no parameters')
    return { kind: 'none' }
  }
  if (f.kind === 'ec') {
    if (!hasExactKeys(f, ['kind', 'k', 'm'])) bad('ec takes exactly k and m')
    if (!isIntIn(f.k, 1, MAX_K)) bad(`k must be an integer in 1..${MAX_K}`)
    if (!isIntIn(f.m, 1, MAX_M)) bad(`m must be an integer in 1..${MAX_M}`)
    if ((f.k as number) + (f.m as number) > MAX_SHARDS) bad(`k+m must be at most ${MAX_SHARDS}`)
    return { kind: 'ec', k: f.k as number, m: f.m as number }
  }
  if (f.kind === 'replicas') {
    if (!hasExactKeys(f, ['kind', 'n'])) bad('replicas takes exactly n')
    if (!isIntIn(f.n, 1, MAX_REPLICAS)) bad(`n must be an integer in 1..${MAX_REPLICAS}`)
    return { kind: 'replicas', n: f.n as number }
  }
  return bad(`unknown kind ${show(f.kind)}`)
}

/**
 * Check erasure-coding parameters k and m against the policy bounds.
 *
 * @throws {InvalidPolicyError} when they are out of bounds
 */
export function checkCoding (k: number, m: number): void {
  checkPolicy({ kind: 'ec', k, m })
}

// ---------------------------------------------------------------------------
// stripes and the manifest

/** One stripe: up to k data leaves (the file's raw leaf blocks, in file order) + m parity shards. */
export interface Stripe {
  /** CIDs of the data leaves (1..k; fewer than k only in a file's last stripe; the missing ones are all-zero shards that are never stored). */
  data: CID[]
  /** Byte length of each data leaf (same order). */
  sizes: number[]
  /** Every shard's length: the longest leaf, rounded up to a multiple of 8. Leaves are zero-padded to it for coding only. */
  shardSize: number
  /** CIDs (raw codec, sha2-256) of the m parity shards. */
  parity: CID[]
}

/** A manifest page: up to {@link MANIFEST_PAGE_STRIPES} stripes. */
export interface ManifestPage { v: 1, stripes: Stripe[] }

/** The manifest root, dag-cbor, referenced from the file's namespace record. */
export interface ManifestRoot {
  v: 1
  /** The file's UnixFS root (dag-pb, or raw for a one-leaf file). */
  root: CID
  /** Data shards per stripe. */
  k: number
  /** Parity shards per stripe. */
  m: number
  /** The file's size in bytes. */
  size: number
  /** Number of stripes in all pages. */
  stripes: number
  /** The pages, in order: every page but the last holds exactly {@link MANIFEST_PAGE_STRIPES} stripes. */
  pages: CID[]
}

/** The only manifest version. */
export const MANIFEST_VERSION = 1
/** Stripes in every manifest page but the last. */
export const MANIFEST_PAGE_STRIPES = 256
/** Most pages in one manifest (16.7 M stripes: 64 TiB at 4+2 with 1 MiB leaves). */
export const MAX_MANIFEST_PAGES = 65536
/** Largest manifest block (root or page). A full root is ~2.7 MB, a full 16+8 page ~0.3 MB. */
export const MAX_MANIFEST_BLOCK_BYTES = 4 * 1024 * 1024
/** Largest leaf, and so largest shard: the largest block Shoal stores. */
export const MAX_SHARD_BYTES = 4 * 1024 * 1024
/** Multicodec of raw blocks (leaves and parity shards). */
export const RAW_CODE = 0x55
/** Multicodec of dag-pb (UnixFS nodes). */
export const DAG_PB_CODE = 0x70
/** Multicodec of dag-cbor (manifest blocks). */
export const DAG_CBOR_CODE = 0x71

/** The shard size of leaves of these byte lengths: the longest, rounded up to a multiple of 8. */
export function shardSizeOf (sizes: readonly number[]): number {
  const longest = sizes.reduce((a, b) => Math.max(a, b), 0)
  return Math.ceil(longest / 8) * 8
}

/**
 * Validate a stripe of a k+m manifest and return a fresh copy.
 *
 * @throws {InvalidManifestError} when it is malformed
 */
export function checkStripe (s: Stripe, k: number, m: number): Stripe {
  return pickStripe(s, k, m)
}

/** Encode a manifest root (checked first). @throws {InvalidManifestError} */
export function encodeManifestRoot (r: ManifestRoot): Uint8Array {
  return encodeChecked(pickRoot(r), 'manifest root')
}

/** Decode and validate a manifest root block (canonical dag-cbor only). @throws {InvalidManifestError} */
export function decodeManifestRoot (bytes: Uint8Array): ManifestRoot {
  return decodeCanonical(bytes, 'manifest root', pickRoot)
}

/** Encode a manifest page of a k+m manifest (checked first). @throws {InvalidManifestError} */
export function encodeManifestPage (p: ManifestPage, k: number, m: number): Uint8Array {
  return encodeChecked(pickPage(p, k, m), 'manifest page')
}

/** Decode and validate a page of a k+m manifest (canonical dag-cbor only). @throws {InvalidManifestError} */
export function decodeManifestPage (bytes: Uint8Array, k: number, m: number): ManifestPage {
  coding(k, m)
  return decodeCanonical(bytes, 'manifest page', value => pickPage(value, k, m))
}

/** The canonical dag-cbor bytes of a stripe (checked against k and m). @throws {InvalidManifestError} */
export function encodeStripe (s: Stripe, k: number, m: number): Uint8Array {
  return encodeChecked(pickStripe(s, k, m), 'stripe')
}

/**
 * 32-byte placement key of a stripe: sha-256 over its canonical dag-cbor
 * encoding `{data, sizes, shardSize, parity}` (deterministic; equal stripes →
 * equal key). Synchronous.
 *
 * @throws {InvalidManifestError} when the stripe is malformed
 */
export function stripeKey (s: Stripe): Uint8Array {
  const checked = pickStripe(s, MAX_K, MAX_M, true)
  return new Uint8Array(createHash('sha256').update(encodeChecked(checked, 'stripe')).digest())
}

// ---------------------------------------------------------------------------
// framing

function fail (reason: string): never {
  throw new InvalidManifestError(`invalid manifest: ${reason}`)
}

/** Decode, validate, and require the bytes to be the canonical encoding of the result. */
function decodeCanonical<T> (bytes: Uint8Array, what: string, pick: (value: unknown) => T): T {
  if (!(bytes instanceof Uint8Array)) fail(`${what} is not bytes`)
  if (bytes.byteLength > MAX_MANIFEST_BLOCK_BYTES) fail(`${what} of ${bytes.byteLength} bytes > ${MAX_MANIFEST_BLOCK_BYTES}`)
  let decoded: unknown
  try {
    decoded = dagCbor.decode(bytes)
  } catch (err) {
    fail(`${what} is not dag-cbor (${String((err as Error)?.message ?? err)})`)
  }
  const value = pick(decoded)
  if (!equals(encodeChecked(value, what), bytes)) fail(`${what} is not canonical dag-cbor`)
  return value
}

/** Encode a validated value and check its size. */
function encodeChecked (value: unknown, what: string): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = dagCbor.encode(value)
  } catch (err) {
    fail(`${what} is not encodable (${String((err as Error)?.message ?? err)})`)
  }
  if (bytes.byteLength > MAX_MANIFEST_BLOCK_BYTES) fail(`${what} of ${bytes.byteLength} bytes > ${MAX_MANIFEST_BLOCK_BYTES}`)
  return plainBytes(bytes)
}

// ---------------------------------------------------------------------------
// field checks: each validates one untrusted value and returns a fresh copy

const check = fieldChecks(fail)
const { shape, int, list } = check

/** A fresh CIDv1 with a sha2-256 multihash, of one of the given codecs. */
function cid (value: unknown, what: string, codecs: readonly number[]): CID {
  return check.cid(value, what, { v1: true, codecs })
}

function version (value: unknown, what: string): 1 {
  return check.version(value, what, MANIFEST_VERSION)
}

/** k and m within the policy bounds, as a manifest error. */
function coding (k: unknown, m: unknown): void {
  int(k, 'k', 1, MAX_K)
  int(m, 'm', 1, MAX_M)
  if ((k as number) + (m as number) > MAX_SHARDS) fail(`k+m must be at most ${MAX_SHARDS}`)
}


const STRIPE_FIELDS = ['data', 'sizes', 'shardSize', 'parity'] as const
const PAGE_FIELDS = ['v', 'stripes'] as const
const ROOT_FIELDS = ['v', 'root', 'k', 'm', 'size', 'stripes', 'pages'] as const

/**
 * Validate a stripe of a k+m manifest. With `anyM`, the parity count is
 * checked against 1..m instead of exactly m (for {@link stripeKey}, which has
 * no k and m).
 */
function pickStripe (value: unknown, k: number, m: number, anyM = false): Stripe {
  const f = shape(value, 'stripe', STRIPE_FIELDS)
  const data = list(f.data, 'stripe data', 1, k).map(c => cid(c, 'stripe data leaf', [RAW_CODE]))
  const sizes = list(f.sizes, 'stripe sizes', data.length, data.length).map(n => int(n, 'leaf size', 0, MAX_SHARD_BYTES))
  const shardSize = int(f.shardSize, 'shard size', 0, MAX_SHARD_BYTES)
  if (shardSize !== shardSizeOf(sizes)) fail(`shard size ${shardSize} is not the longest leaf rounded up to 8 (${shardSizeOf(sizes)})`)
  const parity = list(f.parity, 'stripe parity', anyM ? 1 : m, m).map(c => cid(c, 'parity shard', [RAW_CODE]))
  if (anyM && data.length + parity.length > MAX_SHARDS) fail(`stripe of ${data.length + parity.length} shards > ${MAX_SHARDS}`)
  return { data, sizes, shardSize, parity }
}

function pickPage (value: unknown, k: number, m: number): ManifestPage {
  coding(k, m)
  const f = shape(value, 'manifest page', PAGE_FIELDS)
  version(f.v, 'manifest page')
  const stripes = list(f.stripes, 'manifest page stripes', 1, MANIFEST_PAGE_STRIPES).map(s => pickStripe(s, k, m))
  return { v: 1, stripes }
}

function pickRoot (value: unknown): ManifestRoot {
  const f = shape(value, 'manifest root', ROOT_FIELDS)
  version(f.v, 'manifest root')
  const root = cid(f.root, 'file root', [DAG_PB_CODE, RAW_CODE])
  coding(f.k, f.m)
  const size = int(f.size, 'file size', 0)
  const stripes = int(f.stripes, 'stripe count', 0, MAX_MANIFEST_PAGES * MANIFEST_PAGE_STRIPES)
  const expected = Math.ceil(stripes / MANIFEST_PAGE_STRIPES)
  const pages = list(f.pages, 'manifest pages', expected, expected).map(c => cid(c, 'manifest page', [DAG_CBOR_CODE]))
  return { v: 1, root, k: f.k as number, m: f.m as number, size, stripes, pages }
}
