/**
 * Stripe rules: walk a file's UnixFS DAG, group its raw leaves k at a time
 * into stripes with m parity shards, write and read the paged manifest, and
 * rebuild a stripe's data (or one lost shard) from any k of its shards.
 *
 * Shard indexes of a stripe: 0..k-1 are the data leaves in file order (slots
 * past the stripe's last leaf are virtual all-zero shards, never stored,
 * always present), k..k+m-1 the parity shards. Every shard is `shardSize`
 * bytes for coding; leaves are stored and returned unpadded. See
 * `docs/erasure-coding.md`.
 *
 * @module
 */
import { decodeFileNode } from '../content/ranged-reader.js'
import { CID } from 'multiformats/cid'
import { AbortedError, InvalidArgumentError, InvalidBlockError, InvalidManifestError, StripeUnavailableError } from '../errors.js'
import { IDENTITY, SHA2_256, cborCID, matchesCIDOffThread, rawCID, verifyBlock } from '../blocks/verify.js'
import {
  DAG_CBOR_CODE, DAG_PB_CODE, MANIFEST_PAGE_STRIPES, MAX_SHARD_BYTES, RAW_CODE,
  checkCoding, checkStripe, decodeManifestPage, decodeManifestRoot, encodeManifestPage, encodeManifestRoot, shardSizeOf,
  type ManifestRoot, type Stripe
} from '../../protocol/durability.js'
import type { ErasureCoder } from './erasure.js'
import type { BlockGetter } from '../reads/api.js'

/** Leaf reads kept in flight ahead of the consumer by {@link fileLeaves}. */
export const LEAF_READ_AHEAD = 4


/** A block: its CID and bytes. */
export interface Block { cid: CID, bytes: Uint8Array }

/** A stripe and its parity blocks, as {@link encodeStripes} yields them. */
export interface EncodedStripe { stripe: Stripe, parity: Block[] }

// ---------------------------------------------------------------------------
// DAG walk

/** A block still to visit: its CID and the size its parent declares (undefined for the root). */
interface Pending { cid: CID, size?: number }

function checkAborted (signal?: AbortSignal): void {
  if (signal?.aborted === true) throw new AbortedError('aborted')
}

function isIdentity (cid: CID): boolean {
  return cid.multihash.code === IDENTITY
}

/** A block's bytes: from its CID when identity-hashed, else from the getter. */
async function bytesOf (getter: BlockGetter, cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
  return isIdentity(cid) ? cid.multihash.digest : await getter.getBytes(cid, { signal })
}

function checkCodec (cid: CID): void {
  if (cid.code !== RAW_CODE && cid.code !== DAG_PB_CODE) {
    throw new InvalidArgumentError(`${cid.toString()} is not part of a UnixFS file (codec 0x${cid.code.toString(16)})`)
  }
}

/** Children of a dag-pb file node, in file order, with the sizes it declares. */
function childrenOf (cid: CID, bytes: Uint8Array): Pending[] {
  const { node, unixfs } = decodeFileNode(cid, bytes)
  return node.Links.map((link, i) => {
    checkCodec(link.Hash)
    return { cid: link.Hash, size: Number(unixfs.blockSizes[i]) }
  })
}

/**
 * Depth-first, in file order, over the DAG under `root`: dag-pb nodes are read
 * and yielded as `node`, raw leaves are yielded as `leaf` without being read.
 * An explicit stack, so a deep DAG cannot overflow the call stack.
 */
async function * walk (getter: BlockGetter, root: CID, signal?: AbortSignal): AsyncGenerator<{ kind: 'node', block: Block } | { kind: 'leaf', leaf: Pending }> {
  checkCodec(root)
  const stack: Pending[] = [{ cid: root }]
  while (stack.length > 0) {
    checkAborted(signal)
    const next = stack.pop() as Pending
    if (next.cid.code === RAW_CODE) {
      yield { kind: 'leaf', leaf: next }
      continue
    }
    const bytes = await bytesOf(getter, next.cid, signal)
    const children = childrenOf(next.cid, bytes)
    yield { kind: 'node', block: { cid: next.cid, bytes } }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i])
  }
}

/** Read a leaf and check its size against what its parent declares. */
async function readLeaf (getter: BlockGetter, leaf: Pending, signal?: AbortSignal): Promise<Block> {
  const bytes = await getter.getBytes(leaf.cid, { signal })
  if (leaf.size !== undefined && bytes.byteLength !== leaf.size) {
    throw new InvalidBlockError(`${leaf.cid.toString()} holds ${bytes.byteLength} bytes but its parent says ${leaf.size}`)
  }
  return { cid: leaf.cid, bytes }
}

/**
 * Walk the UnixFS DAG under `root` in file order and yield its raw leaf
 * blocks (the root itself when it is a raw leaf), each read with
 * `getter.getBytes` (which must hash-check) and size-checked against its
 * parent. A leaf that occurs twice in the file is yielded twice.
 * Identity-hashed leaves (their bytes are in the CID) and dag-pb nodes are not
 * yielded; data inline in dag-pb nodes travels with {@link fileSkeleton}.
 * Up to {@link LEAF_READ_AHEAD} leaf reads are in flight.
 *
 * @throws {IsADirectoryError} for a directory
 * @throws {InvalidArgumentError} for anything else that is not a file
 * @throws {InvalidBlockError} for a malformed node or a leaf of the wrong size
 * @throws {AbortedError} when `signal` aborts
 */
export async function * fileLeaves (getter: BlockGetter, root: CID, signal?: AbortSignal): AsyncGenerator<Block> {
  const window: Array<Promise<Block>> = []
  for await (const item of walk(getter, root, signal)) {
    if (item.kind !== 'leaf' || isIdentity(item.leaf.cid)) continue
    const read = readLeaf(getter, item.leaf, signal)
    read.catch(() => {}) // surfaced when awaited; never unhandled if the consumer stops early
    window.push(read)
    if (window.length >= LEAF_READ_AHEAD) yield await (window.shift() as Promise<Block>)
  }
  while (window.length > 0) yield await (window.shift() as Promise<Block>)
}

/**
 * The non-leaf (dag-pb) blocks of the DAG under `root`, root first (depth
 * first, in file order), each read with `getter.getBytes`. Leaves are not
 * read. Nothing is yielded when the root is a raw leaf.
 *
 * @throws the errors of {@link fileLeaves}
 */
export async function * fileSkeleton (getter: BlockGetter, root: CID, signal?: AbortSignal): AsyncGenerator<Block> {
  for await (const item of walk(getter, root, signal)) {
    if (item.kind === 'node' && !isIdentity(item.block.cid)) yield item.block
  }
}

/**
 * How many leaves {@link fileLeaves} yields for `root`, read from the
 * skeleton alone (leaves are not read): what an encoding's progress counts
 * its stripes against. With `upTo`, the count stops there (the walk ends
 * early: whether a file has fewer than k leaves).
 *
 * @throws the errors of {@link fileLeaves}
 */
export async function countLeaves (getter: BlockGetter, root: CID, signal?: AbortSignal, upTo = Infinity): Promise<number> {
  let leaves = 0
  for await (const item of walk(getter, root, signal)) {
    if (item.kind === 'leaf' && !isIdentity(item.leaf.cid) && ++leaves >= upTo) break
  }
  return leaves
}

// ---------------------------------------------------------------------------
// encoding

/** The CIDv1 (raw codec, sha2-256) of a shard (blocks/verify's). */
export { rawCID }

/** `bytes` zero-padded to `size` (the same buffer when already that long). */
function padded (bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.byteLength === size) return bytes
  const out = new Uint8Array(size)
  out.set(bytes)
  return out
}

/**
 * Check a leaf read back for coding: a raw sha2-256 CIDv1 of at most 4 MiB
 * whose bytes match (hashed off the event loop: an encode of a large file
 * runs beside the node's other work).
 *
 * @throws {InvalidArgumentError} for another kind of CID or a leaf too large
 * @throws {InvalidBlockError} when the bytes do not match the CID
 */
export async function checkLeaf (leaf: Block): Promise<void> {
  const { cid, bytes } = leaf
  if (cid.version !== 1 || cid.code !== RAW_CODE || cid.multihash.code !== SHA2_256) {
    throw new InvalidArgumentError(`leaf ${cid.toString()} is not a raw sha2-256 CIDv1`)
  }
  if (bytes.byteLength > MAX_SHARD_BYTES) throw new InvalidArgumentError(`leaf ${cid.toString()} of ${bytes.byteLength} bytes > ${MAX_SHARD_BYTES}`)
  if (!await matchesCIDOffThread(cid, bytes)) throw new InvalidBlockError(`block ${cid.toString()} does not match its hash (${bytes.byteLength} bytes): corrupt data`)
}

/** Code one stripe from 1..k leaves (not checked: the caller has their CIDs right). */
export function encodeStripe (leaves: Block[], k: number, m: number, coder: ErasureCoder): EncodedStripe {
  const sizes = leaves.map(l => l.bytes.byteLength)
  const shardSize = shardSizeOf(sizes)
  if (k === 1) {
    // replicas: every row of the code under one data shard is all ones, so
    // each parity shard is a copy of the (padded) leaf — no coding, one hash
    // at most (none when the leaf needs no padding: the copy is the leaf)
    const leaf = leaves[0]
    const bytes = padded(leaf.bytes, shardSize)
    const copy = { cid: bytes === leaf.bytes ? leaf.cid : rawCID(bytes), bytes }
    return { stripe: { data: [leaf.cid], sizes, shardSize, parity: Array.from({ length: m }, () => copy.cid) }, parity: Array.from({ length: m }, () => copy) }
  }
  const zeros = new Uint8Array(shardSize)
  const data = Array.from({ length: k }, (_, i) => i < leaves.length ? padded(leaves[i].bytes, shardSize) : zeros)
  const parity = coder.encode(data, m).map(bytes => ({ cid: rawCID(bytes), bytes }))
  const stripe: Stripe = { data: leaves.map(l => l.cid), sizes, shardSize, parity: parity.map(p => p.cid) }
  return { stripe, parity }
}

/**
 * Group leaves k at a time (in the order given), compute each group's m
 * parity shards and yield each stripe with its parity blocks. Streaming: at
 * most one stripe's leaves are held. Each leaf is hash-checked first. The
 * last stripe holds the 1..k leftover leaves; no leaves, no stripe.
 *
 * @throws {InvalidPolicyError} when k or m is out of bounds
 * @throws {InvalidArgumentError} for a leaf that is not a raw sha2-256 block of at most 4 MiB
 * @throws {InvalidBlockError} for a leaf whose bytes do not match its CID
 */
export async function * encodeStripes (leaves: AsyncIterable<Block>, k: number, m: number, coder: ErasureCoder): AsyncGenerator<EncodedStripe> {
  checkCoding(k, m)
  let group: Block[] = []
  for await (const leaf of leaves) {
    await checkLeaf(leaf)
    group.push(leaf)
    if (group.length === k) {
      const batch = group
      group = []
      yield encodeStripe(batch, k, m, coder)
    }
  }
  if (group.length > 0) yield encodeStripe(group, k, m, coder)
}

// ---------------------------------------------------------------------------
// manifest

function manifestFail (reason: string): never {
  throw new InvalidManifestError(`invalid manifest: ${reason}`)
}

/** A manifest block: its bytes and their dag-cbor CID. */
function cborBlock (bytes: Uint8Array): Block {
  return { cid: cborCID(bytes), bytes }
}

/** Check a stripe's place in the file: every stripe but the last is full (k leaves). */
function checkPlace (stripe: Stripe, index: number, total: number, k: number): void {
  if (index < total - 1 && stripe.data.length !== k) {
    manifestFail(`stripe ${index} of ${total} holds ${stripe.data.length} leaves; only the last may hold fewer than ${k}`)
  }
}

/**
 * Build the manifest blocks of a file: pages of {@link MANIFEST_PAGE_STRIPES}
 * stripes, then the root. Returns the root's CID and every block to store
 * (pages first, root last).
 *
 * @throws {InvalidManifestError} for stripes that break the rules (a short stripe before the last, wrong parity count, too many stripes…)
 */
export function buildManifest (root: CID, k: number, m: number, size: number, stripes: Stripe[]): { cid: CID, blocks: Block[] } {
  if (!Array.isArray(stripes)) manifestFail('stripes are not a list')
  stripes.forEach((s, i) => { checkPlace(s, i, stripes.length, k) })
  const blocks: Block[] = []
  for (let at = 0; at < stripes.length; at += MANIFEST_PAGE_STRIPES) {
    blocks.push(cborBlock(encodeManifestPage({ v: 1, stripes: stripes.slice(at, at + MANIFEST_PAGE_STRIPES) }, k, m)))
  }
  const rootBlock = cborBlock(encodeManifestRoot({ v: 1, root, k, m, size, stripes: stripes.length, pages: blocks.map(b => b.cid) }))
  blocks.push(rootBlock)
  return { cid: rootBlock.cid, blocks }
}

/** Read one manifest block, hash-checked. */
async function readManifestBlock (getter: BlockGetter, cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
  checkAborted(signal)
  const bytes = await getter.getBytes(cid, { signal })
  verifyBlock(cid, bytes)
  return bytes
}

/**
 * Read and decode the root of the manifest `manifest` (hash-checked).
 *
 * @throws {InvalidManifestError} when it is not a valid manifest root
 * @throws {InvalidBlockError} when its bytes do not match its CID
 */
export async function loadManifestRoot (getter: BlockGetter, manifest: CID, signal?: AbortSignal): Promise<ManifestRoot> {
  const given = CID.asCID(manifest)
  if (given === null || given.version !== 1 || given.code !== DAG_CBOR_CODE || given.multihash.code !== SHA2_256) {
    manifestFail(`${String(manifest)} is not a dag-cbor sha2-256 CIDv1`)
  }
  return decodeManifestRoot(await readManifestBlock(getter, given, signal))
}

/**
 * Read a manifest back (root, then each page via `getter`, each hash-checked)
 * and yield its stripes in file order with their index: {@link readStripes}
 * of its root.
 *
 * @throws {InvalidManifestError} for a malformed or inconsistent manifest
 * @throws {InvalidBlockError} for a manifest block that does not match its CID
 */
export async function * readManifest (getter: BlockGetter, manifest: CID, signal?: AbortSignal): AsyncGenerator<{ index: number, stripe: Stripe }> {
  yield * readStripes(getter, await loadManifestRoot(getter, manifest, signal), signal)
}

/**
 * The stripes of a manifest whose root is loaded already, in file order with
 * their index (each page read via `getter`, hash-checked). Checks that pages
 * hold the counts the root promises, that only the last stripe is short, and
 * that the leaves never add up to more than the file's size.
 *
 * @throws {InvalidManifestError} for a malformed or inconsistent manifest
 * @throws {InvalidBlockError} for a manifest block that does not match its CID
 */
export async function * readStripes (getter: BlockGetter, root: ManifestRoot, signal?: AbortSignal): AsyncGenerator<{ index: number, stripe: Stripe }> {
  let index = 0
  let leafBytes = 0
  for (let p = 0; p < root.pages.length; p++) {
    const page = decodeManifestPage(await readManifestBlock(getter, root.pages[p], signal), root.k, root.m)
    const expected = Math.min(MANIFEST_PAGE_STRIPES, root.stripes - p * MANIFEST_PAGE_STRIPES)
    if (page.stripes.length !== expected) manifestFail(`page ${p} holds ${page.stripes.length} stripes, the root says ${expected}`)
    for (const stripe of page.stripes) {
      checkPlace(stripe, index, root.stripes, root.k)
      leafBytes += stripe.sizes.reduce((a, b) => a + b, 0)
      if (leafBytes > root.size) manifestFail(`leaves add up to more than the file's ${root.size} bytes`)
      yield { index: index++, stripe }
    }
  }
}

/**
 * The last stripe of a manifest whose root is loaded already: its last page
 * read alone (hash-checked), for what a short last stripe stores.
 *
 * @throws {InvalidManifestError} for a malformed page or one that does not hold what the root says
 * @throws {InvalidBlockError} for a page that does not match its CID
 */
export async function readLastStripe (getter: BlockGetter, root: ManifestRoot, signal?: AbortSignal): Promise<Stripe> {
  const p = root.pages.length - 1
  const page = decodeManifestPage(await readManifestBlock(getter, root.pages[p], signal), root.k, root.m)
  const expected = root.stripes - p * MANIFEST_PAGE_STRIPES
  if (p < 0 || page.stripes.length !== expected) manifestFail(`page ${p} holds ${page.stripes.length} stripes, the root says ${expected}`)
  return page.stripes[expected - 1]
}

// ---------------------------------------------------------------------------
// rebuilding

function checkIndex (index: number, k: number, m: number): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= k + m) {
    throw new InvalidArgumentError(`shard index ${String(index)} out of 0..${k + m - 1}`)
  }
}

/**
 * The CID of shard `index` of a stripe coded with k data shards: data leaves
 * then parity. Data slots past the stripe's leaves are virtual zero shards
 * and have no CID (undefined).
 *
 * @throws {InvalidArgumentError} when `index` is not in 0..k+m-1
 */
export function shardCID (stripe: Stripe, k: number, index: number): CID | undefined {
  checkIndex(index, k, stripe.parity.length)
  return index < k ? stripe.data[index] : stripe.parity[index - k]
}

/** The shards a stripe stores: its leaves and its parity (a short stripe's zero shards are not among them). */
export function storedShards (stripe: Stripe): number {
  return stripe.data.length + stripe.parity.length
}

/** True when `bytes` are shard `index` of the stripe (false for a virtual zero shard). */
export function verifyShard (stripe: Stripe, k: number, index: number, bytes: Uint8Array): boolean {
  const cid = shardCID(stripe, k, index)
  if (cid === undefined) return false
  try {
    verifyBlock(cid, bytes)
    return true
  } catch {
    return false
  }
}

/**
 * The given shards that are real (not virtual) and not `exclude`, each
 * hash-checked against its CID unless `checked` (the caller took them from
 * the block store or the exchange, which check every block they give).
 */
function inputsOf (stripe: Stripe, k: number, m: number, shards: Map<number, Uint8Array>, options: { exclude?: number, checked?: boolean } = {}): Map<number, Uint8Array> {
  if (!(shards instanceof Map)) throw new InvalidArgumentError('shards are not a Map')
  const inputs = new Map<number, Uint8Array>()
  for (const [index, bytes] of shards) {
    checkIndex(index, k, m)
    const cid = shardCID(stripe, k, index)
    if (cid === undefined || index === options.exclude) continue
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(`shard ${index} is not bytes`)
    if (options.checked !== true) {
      try {
        verifyBlock(cid, bytes)
      } catch (err) {
        throw new InvalidBlockError(`shard ${index} of the stripe does not match ${cid.toString()}: corrupt data`, { cause: err })
      }
    }
    inputs.set(index, bytes)
  }
  return inputs
}

/**
 * The k+m slots a reconstruction of `stripe` takes: the inputs padded to the
 * shard size, zeros for the virtual data shards of a short stripe, undefined
 * for the missing ones.
 *
 * @throws {StripeUnavailableError} when fewer than k are there
 */
function reconstructionSlots (stripe: Stripe, k: number, m: number, inputs: Map<number, Uint8Array>): Array<Uint8Array | undefined> {
  const { data, shardSize } = stripe
  const zeros = new Uint8Array(shardSize)
  const slots: Array<Uint8Array | undefined> = Array.from({ length: k + m }, (_, i) => {
    if (i >= data.length && i < k) return zeros
    const bytes = inputs.get(i)
    return bytes === undefined ? undefined : padded(bytes, shardSize)
  })
  const present = slots.filter(s => s !== undefined).length
  if (present < k) {
    throw new StripeUnavailableError(`stripe of ${data[0]?.toString() ?? 'no leaves'}: ${present} of ${k + m} shards available (${data.length < k ? `${k - data.length} of them virtual zeros, ` : ''}${k} needed)`)
  }
  return slots
}

/** The error for rebuilt leaf `index` of a stripe that does not hash to its CID. */
export function rebuiltLeafMismatch (index: number, cid: CID, cause?: unknown): InvalidBlockError {
  return new InvalidBlockError(`rebuilt leaf ${index} does not match ${cid.toString()}: the stripe's parity does not match its data`, cause === undefined ? undefined : { cause })
}

/** The k data shards of a stripe (padded to shardSize), rebuilt from verified inputs where missing, and checked. */
function dataShards (stripe: Stripe, k: number, m: number, inputs: Map<number, Uint8Array>, coder: ErasureCoder): Uint8Array[] {
  const { data, sizes } = stripe
  const slots = reconstructionSlots(stripe, k, m, inputs)
  const rebuilt = coder.reconstruct(slots, k, m)
  for (let i = 0; i < data.length; i++) {
    if (slots[i] !== undefined) continue
    try {
      verifyBlock(data[i], rebuilt[i].subarray(0, sizes[i]))
    } catch (err) {
      throw rebuiltLeafMismatch(i, data[i], err)
    }
  }
  return rebuilt
}

/**
 * What a rebuild of a stripe's missing data leaves takes, for a coder
 * elsewhere (the parity pool's worker): the k+m slots of
 * {@link reconstructionSlots} from `shards` (shard index → bytes, as for
 * {@link rebuildStripe}, but already checked: from the block store or the
 * exchange), the leaves given, and the indexes of the leaves to rebuild.
 *
 * @throws {StripeUnavailableError} when fewer than k shards are available
 * @throws {InvalidManifestError} when the stripe is malformed for k+m
 */
export function rebuildPlan (stripe: Stripe, k: number, m: number, shards: Map<number, Uint8Array>): { slots: Array<Uint8Array | undefined>, given: Array<Uint8Array | undefined>, missing: number[] } {
  const s = checkStripe(stripe, k, m)
  const inputs = inputsOf(s, k, m, shards, { checked: true })
  const given = s.data.map((_, i) => inputs.get(i))
  const missing = given.flatMap((bytes, i) => bytes === undefined ? [i] : [])
  return { slots: missing.length === 0 ? [] : reconstructionSlots(s, k, m, inputs), given, missing }
}

/**
 * Rebuild the data leaves of a stripe from any k of its shards, given as
 * shard index (0..k-1 data, k..k+m-1 parity) → bytes (data leaves unpadded,
 * parity full). Virtual zero shards count as present and need not be given
 * (given ones are ignored). Every given shard is hash-checked; the leaves
 * returned (unpadded, file order) are the given ones or rebuilt ones checked
 * against their CIDs.
 *
 * @throws {StripeUnavailableError} when fewer than k shards are available
 * @throws {InvalidBlockError} when a given shard or a rebuilt leaf does not match its CID
 * @throws {InvalidManifestError} when the stripe is malformed for k+m
 */
export function rebuildStripe (stripe: Stripe, k: number, m: number, shards: Map<number, Uint8Array>, coder: ErasureCoder): Uint8Array[] {
  const s = checkStripe(stripe, k, m)
  const inputs = inputsOf(s, k, m, shards)
  const given = s.data.map((_, i) => inputs.get(i))
  if (given.every(b => b !== undefined)) return given as Uint8Array[]
  const rebuilt = dataShards(s, k, m, inputs, coder)
  return s.data.map((_, i) => given[i] ?? rebuilt[i].subarray(0, s.sizes[i]))
}

/**
 * Rebuild shard `index` of a stripe (a data leaf, unpadded, or a parity
 * shard) from any k of the others, for repair. A copy of shard `index` among
 * `shards` is ignored. The result is checked against its CID.
 *
 * @throws {InvalidArgumentError} for an index out of range or of a virtual zero shard
 * @throws the errors of {@link rebuildStripe}
 */
export function rebuildShard (stripe: Stripe, k: number, m: number, index: number, shards: Map<number, Uint8Array>, coder: ErasureCoder): Uint8Array {
  const s = checkStripe(stripe, k, m)
  checkIndex(index, k, m)
  const cid = shardCID(s, k, index)
  if (cid === undefined) throw new InvalidArgumentError(`shard ${index} is a virtual zero shard: nothing to rebuild`)
  const data = dataShards(s, k, m, inputsOf(s, k, m, shards, { exclude: index }), coder)
  if (index < k) return data[index].subarray(0, s.sizes[index])
  const parity = coder.encode(data, m)[index - k]
  try {
    verifyBlock(cid, parity)
  } catch (err) {
    throw new InvalidBlockError(`rebuilt parity shard ${index} does not match ${cid.toString()}: the stripe's parity does not match its data`, { cause: err })
  }
  return parity
}
