/**
 * Wire codec of the snapshot tree: a prolly tree (a content-defined B-tree)
 * of the namespace state, the sorted map `path → SnapshotVersion[]`.
 *
 * A node is one dag-cbor block (sha2-256, at most
 * {@link MAX_SNAPSHOT_BLOCK_BYTES}), of one of two kinds:
 *
 * - a leaf, `{ v: 1, leaf: [[path, versions], …] }`: a run of consecutive
 *   paths, strictly ascending, each with its live versions (at least one,
 *   no dot twice);
 * - a branch, `{ v: 1, level, children: [[firstPath, cid, count], …] }`: a
 *   run of consecutive nodes of level `level - 1` (leaves are level 0), each
 *   named by its first path, its CID and the number of paths under it.
 *
 * Where a node ends is decided by its content ({@link isBoundary}): after an
 * item whose key (the path, or the child's first path) hashes below a
 * threshold once the node holds a minimum of items, or when it reaches its
 * maximum of items or {@link TREE_SOFT_NODE_BYTES}. So one set of paths and
 * versions has exactly one tree, whatever order it was built in, and a
 * change to a few paths changes only the nodes above them.
 *
 * Decoders are strict and pure like those of protocol/namespace.ts: exact
 * field sets and types, paths normalised and strictly ascending, children's
 * first paths strictly ascending, counts at least 1 and summing to a safe
 * integer, bounded item and node sizes, and the bytes must be the canonical
 * encoding of the decoded node (one node, one CID). Anything else throws
 * {@link InvalidMessageError}. What a single node cannot show (a child's
 * count, level and first path matching the child, the chunking rule across
 * nodes) is checked by the walker in node/namespace/snapshot-tree.ts.
 *
 * Paths compare as JavaScript strings (UTF-16 code units), as the replica sorts
 * them.
 *
 * @module
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { InvalidMessageError } from './errors.js'
import { CborCursor } from './cbor-cursor.js'
import { NOT_CANONICAL, decodeCanonicalDagCbor } from './canonical.js'
import { fieldChecks } from './fields.js'
import { MAX_TIME } from './time.js'
import { decodePin, MAX_MODE, MAX_PEER_ID_LENGTH, MAX_SNAPSHOT_BLOCK_BYTES, type SnapshotVersion } from './namespace.js'
import { isPlainMap, isSet, plainBytes, show } from './values.js'
import { fmix32 } from './murmur3.js'

/** The version of tree nodes this codec reads and writes. */
export const TREE_VERSION = 1
/** Largest encoded node (the namespace's snapshot block limit). */
export const MAX_TREE_NODE_BYTES = MAX_SNAPSHOT_BLOCK_BYTES
/** Largest encoded leaf item (`[path, versions]`): a path with that many bytes of versions cannot be stored. */
export const MAX_TREE_ENTRY_BYTES = 256 * 1024
/** A node ends after the item that brings the sum of its items' encoded sizes to this or more. */
export const TREE_SOFT_NODE_BYTES = 512 * 1024
/** Most paths in a leaf. */
export const MAX_LEAF_ENTRIES = 4096
/** Most children of a branch. */
export const MAX_BRANCH_CHILDREN = 2048
/** Highest branch level (a tree of 2^53 paths needs 10 with the minimum fan-out). */
export const MAX_TREE_LEVEL = 16
/** A leaf ends by hash only once it holds this many paths. */
export const MIN_LEAF_ENTRIES = 256
/** A branch ends by hash only once it holds this many children. */
export const MIN_BRANCH_CHILDREN = 64
/** Past the minimum, a leaf ends after a path with probability 1/this (mean leaf ≈ 768 paths). */
export const LEAF_BOUNDARY_ODDS = 512
/** Past the minimum, a branch ends after a child with probability 1/this (mean fan-out ≈ 256). */
export const BRANCH_BOUNDARY_ODDS = 192

/** Multicodec code of dag-cbor: every tree node. */
const DAG_CBOR = 0x71

/** A leaf item: a path and its live versions (at least one). */
export type TreeEntry = [path: string, versions: SnapshotVersion[]]
/** A branch item: a child node, by its first path, CID and number of paths. */
export type TreeChild = [firstPath: string, cid: CID, count: number]

/** Level 0: a run of consecutive paths. */
export interface TreeLeaf { v: 1, leaf: TreeEntry[] }
/** Level 1 and up: a run of consecutive nodes of the level below. */
export interface TreeBranch { v: 1, level: number, children: TreeChild[] }
/** A node of the snapshot tree. */
export type TreeNode = TreeLeaf | TreeBranch

/** A decoded node with the encoded size of each of its items (what the chunking rule counts). */
export interface DecodedTreeNode {
  node: TreeNode
  /** Encoded bytes of each item, in order. */
  sizes: number[]
}

/** Re-exported: the error every codec of this module throws. */
export { InvalidMessageError }

function fail (reason: string): never {
  throw new InvalidMessageError(`invalid snapshot tree node: ${reason}`)
}

const check = fieldChecks(fail)

// ---------------------------------------------------------------------------
// the chunking rule

/**
 * The 32-bit hash that decides boundaries: FNV-1a over the UTF-16 code units
 * of `key`, seeded with the level, then the murmur3 finaliser. Not a
 * cryptographic hash: a writer who picks paths to dodge or hit boundaries
 * only gets nodes of the maximum or the minimum size.
 */
export function boundaryHash (level: number, key: string): number {
  let h = (0x811c9dc5 ^ Math.imul(level + 1, 0x9e3779b1)) >>> 0
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return fmix32(h)
}

const LEAF_THRESHOLD = Math.floor(2 ** 32 / LEAF_BOUNDARY_ODDS)
const BRANCH_THRESHOLD = Math.floor(2 ** 32 / BRANCH_BOUNDARY_ODDS)

/**
 * True when a node of `level` ends after an item with `key` (its path, or
 * its child's first path), the node then holding `count` items of `bytes`
 * encoded bytes in all (items only, not the node's header).
 */
export function isBoundary (level: number, key: string, count: number, bytes: number): boolean {
  const leaf = level === 0
  if (count >= (leaf ? MAX_LEAF_ENTRIES : MAX_BRANCH_CHILDREN) || bytes >= TREE_SOFT_NODE_BYTES) return true
  if (count < (leaf ? MIN_LEAF_ENTRIES : MIN_BRANCH_CHILDREN)) return false
  return boundaryHash(level, key) < (leaf ? LEAF_THRESHOLD : BRANCH_THRESHOLD)
}

/**
 * Why `decoded` does not follow the chunking rule, or undefined when it does:
 * no item but the last may be a boundary, and the last must be one unless
 * the node is the last of its level (`rightmost`).
 */
export function chunkingFault (decoded: DecodedTreeNode, rightmost: boolean): string | undefined {
  const { node, sizes } = decoded
  const level = 'leaf' in node ? 0 : node.level
  const keys = 'leaf' in node ? node.leaf.map(e => e[0]) : node.children.map(c => c[0])
  let bytes = 0
  for (let i = 0; i < keys.length; i++) {
    bytes += sizes[i]
    const boundary = isBoundary(level, keys[i], i + 1, bytes)
    if (boundary && i < keys.length - 1) return `node of level ${level} goes on past a boundary at item ${i + 1} of ${keys.length}`
    if (!boundary && i === keys.length - 1 && !rightmost) return `node of level ${level} ends at item ${keys.length} without a boundary`
  }
  return undefined
}

// ---------------------------------------------------------------------------
// encoding

/**
 * Canonical dag-cbor of one leaf item (checked first).
 *
 * @throws {InvalidMessageError} when the item is not valid or exceeds {@link MAX_TREE_ENTRY_BYTES}
 */
export function encodeTreeEntry (entry: TreeEntry): Uint8Array {
  return encodeItem(pickEntry(entry), MAX_TREE_ENTRY_BYTES, 'leaf item')
}

/**
 * Canonical dag-cbor of one branch item (checked first).
 *
 * @throws {InvalidMessageError} when the item is not valid
 */
export function encodeTreeChild (child: TreeChild): Uint8Array {
  return encodeItem(pickChild(child), MAX_TREE_NODE_BYTES, 'branch item')
}

/**
 * The bytes of a node from its items already encoded by
 * {@link encodeTreeEntry} (level 0) or {@link encodeTreeChild}: the same
 * bytes as {@link encodeTreeNode} of the node, without encoding anything
 * again. Item order, distinctness and sizes are the caller's (the builder's)
 * to keep; the decoder checks them.
 *
 * @throws {InvalidMessageError} when the node would exceed {@link MAX_TREE_NODE_BYTES} or the list is too long
 */
export function assembleTreeNode (level: number, items: readonly Uint8Array[]): Uint8Array {
  if (items.length > (level === 0 ? MAX_LEAF_ENTRIES : MAX_BRANCH_CHILDREN)) fail(`node of level ${level} has ${items.length} items`)
  const head = level === 0 ? LEAF_HEAD : branchHead(level)
  const list = listHeader(items.length)
  let size = head.byteLength + list.byteLength
  for (const item of items) size += item.byteLength
  if (size > MAX_TREE_NODE_BYTES) fail(`node of ${size} bytes > ${MAX_TREE_NODE_BYTES}`)
  const out = new Uint8Array(size)
  out.set(head, 0)
  out.set(list, head.byteLength)
  let at = head.byteLength + list.byteLength
  for (const item of items) {
    out.set(item, at)
    at += item.byteLength
  }
  return out
}

/**
 * Encode a node (checked first, including the order of its items).
 *
 * @throws {InvalidMessageError} when the node is not valid or exceeds {@link MAX_TREE_NODE_BYTES}
 */
export function encodeTreeNode (node: TreeNode): Uint8Array {
  return encodePicked(pickNode(node)).bytes
}

/**
 * Decode and validate a node block (canonical encoding only).
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeTreeNode (bytes: Uint8Array): TreeNode {
  return decodeTreeNodeSized(bytes).node
}

/**
 * {@link decodeTreeNode}, also giving each item's encoded size (for
 * {@link chunkingFault}).
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeTreeNodeSized (bytes: Uint8Array): DecodedTreeNode {
  if (!(bytes instanceof Uint8Array)) fail('node is not bytes')
  if (bytes.byteLength > MAX_TREE_NODE_BYTES) fail(`node of ${bytes.byteLength} bytes > ${MAX_TREE_NODE_BYTES}`)
  // canonical bytes (proven while decoding) are the picked node's encoding: its field checks copy what they take and change nothing
  const fast = decodeCanonicalDagCbor(bytes)
  if (fast !== NOT_CANONICAL) {
    const node = pickNode(fast)
    return { node, sizes: itemSizes(bytes, node) }
  }
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err: any) {
    fail(`node is not dag-cbor (${String(err?.message ?? err)})`)
  }
  const node = pickNode(value)
  const encoded = encodePicked(node)
  // a native compare: a JS loop over a node of up to 1 MiB costs as much as decoding it
  if (Buffer.compare(encoded.bytes, bytes) !== 0) fail('node is not canonical dag-cbor')
  return { node, sizes: encoded.sizes }
}

/**
 * The encoded size of each item of `node`, read off its canonical bytes
 * (its head, the list's header, then the items one after the other).
 */
function itemSizes (bytes: Uint8Array, node: TreeNode): number[] {
  const leaf = 'leaf' in node
  const n = leaf ? node.leaf.length : node.children.length
  let at = (leaf ? LEAF_HEAD : branchHead(node.level)).byteLength + listHeader(n).byteLength
  const sizes: number[] = new Array(n)
  const cursor = new CborCursor(bytes, at)
  for (let i = 0; i < n; i++) {
    if (!cursor.skip()) fail('node item is not CBOR')
    const end = cursor.pos
    sizes[i] = end - at
    if (leaf && sizes[i] > MAX_TREE_ENTRY_BYTES) fail(`leaf item of ${sizes[i]} bytes > ${MAX_TREE_ENTRY_BYTES}`)
    at = end
  }
  if (at !== bytes.byteLength) fail('node has bytes after its items')
  return sizes
}

/** The number of paths under a node (decoded, so already checked). */
export function treeNodeCount (node: TreeNode): number {
  if ('leaf' in node) return node.leaf.length
  let count = 0
  for (const c of node.children) count += c[2]
  return count
}

/** The level of a node: 0 for a leaf. */
export function treeNodeLevel (node: TreeNode): number {
  return 'leaf' in node ? 0 : node.level
}

// ---------------------------------------------------------------------------
// framing

/** `{ v: 1, leaf: ` — dag-cbor sorts map keys by length, then bytes. */
const LEAF_HEAD = new Uint8Array([0xa2, 0x61, 0x76, 0x01, 0x64, 0x6c, 0x65, 0x61, 0x66])

/** `{ v: 1, level: L, children: `. */
function branchHead (level: number): Uint8Array {
  if (!Number.isSafeInteger(level) || level < 1 || level > MAX_TREE_LEVEL) fail(`branch level ${show(level)} not in 1..${MAX_TREE_LEVEL}`)
  // MAX_TREE_LEVEL < 24: the level is one byte
  return new Uint8Array([0xa3, 0x61, 0x76, 0x01, 0x65, 0x6c, 0x65, 0x76, 0x65, 0x6c, level, 0x68, 0x63, 0x68, 0x69, 0x6c, 0x64, 0x72, 0x65, 0x6e])
}

/** The CBOR header of a list of `n` items (n < 65536). */
function listHeader (n: number): Uint8Array {
  if (n < 24) return new Uint8Array([0x80 + n])
  if (n < 256) return new Uint8Array([0x98, n])
  return new Uint8Array([0x99, n >> 8, n & 0xff])
}

function encodeItem (value: unknown, max: number, what: string): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = dagCbor.encode(value)
  } catch (err: any) {
    fail(`${what} is not encodable (${String(err?.message ?? err)})`)
  }
  if (bytes.byteLength > max) fail(`${what} of ${bytes.byteLength} bytes > ${max}`)
  return plainBytes(bytes)
}

/** Encode a checked node item by item: its bytes and each item's size. */
function encodePicked (node: TreeNode): { bytes: Uint8Array, sizes: number[] } {
  const items = 'leaf' in node
    ? node.leaf.map(e => encodeItem(e, MAX_TREE_ENTRY_BYTES, 'leaf item'))
    : node.children.map(c => encodeItem(c, MAX_TREE_NODE_BYTES, 'branch item'))
  return { bytes: assembleTreeNode(treeNodeLevel(node), items), sizes: items.map(i => i.byteLength) }
}

// ---------------------------------------------------------------------------
// field checks

const VERSION_FIELDS = ['author', 'seq', 'time', 'type', 'mode', 'mtime'] as const
const VERSION_FILE_FIELDS = ['cid', 'size', 'pin'] as const

/**
 * A snapshot version: exact fields, a dir without cid, size or pin (the pin
 * is checked by protocol/namespace.ts's decodePin).
 */
function pickVersion (value: unknown): SnapshotVersion {
  const f = check.shape(value, 'snapshot version', VERSION_FIELDS, VERSION_FILE_FIELDS)
  const type = f.type
  if (type !== 'file' && type !== 'dir') fail(`unknown snapshot version type ${show(type)}`)
  const out: SnapshotVersion = {
    author: check.peerId(f.author, 'version author', MAX_PEER_ID_LENGTH),
    seq: check.int(f.seq, 'version seq', 1),
    time: check.int(f.time, 'version time', 0, MAX_TIME),
    type,
    mode: check.int(f.mode, 'version mode', 0, MAX_MODE),
    mtime: check.int(f.mtime, 'version mtime', 0, MAX_TIME)
  }
  if (type === 'dir') {
    if (isSet(f, 'cid') || isSet(f, 'size') || isSet(f, 'pin')) fail('a dir version has a cid, size or pin')
  } else {
    if (isSet(f, 'cid')) out.cid = check.cid(f.cid, 'version cid')
    if (isSet(f, 'size')) out.size = check.int(f.size, 'version size', 0)
    if (isSet(f, 'pin')) {
      try {
        out.pin = decodePin(f.pin)
      } catch (err: any) {
        fail(`version pin: ${String(err?.message ?? err)}`)
      }
    }
  }
  return out
}

function pickEntry (value: unknown): TreeEntry {
  const [rawPath, rawVersions] = check.pair(value, 'leaf item', ['path', 'versions'])
  const p = check.path(rawPath, 'leaf path')
  const seen = new Set<string>()
  const versions = check.list(rawVersions, 'leaf versions', 1, Number.MAX_SAFE_INTEGER).map(v => {
    const version = pickVersion(v)
    const key = `${version.seq}:${version.author}`
    if (seen.has(key)) fail(`${show(p)} has two versions [${show(version.author)}, ${version.seq}]`)
    seen.add(key)
    return version
  })
  return [p, versions]
}

function pickChild (value: unknown): TreeChild {
  if (!Array.isArray(value) || value.length !== 3) fail('branch item is not a [firstPath, cid, count] triple')
  return [
    check.path(value[0], 'child first path'),
    check.cid(value[1], 'child cid', { v1: true, codecs: [DAG_CBOR] }),
    check.int(value[2], 'child count', 1)
  ]
}

function pickNode (value: unknown): TreeNode {
  if (!isPlainMap(value)) fail('node is not a map')
  const f = value
  if (Object.hasOwn(f, 'leaf')) {
    check.shape(f, 'leaf', ['v', 'leaf'])
    check.version(f.v, 'leaf', TREE_VERSION)
    let previous: string | undefined
    const leaf = check.list(f.leaf, 'leaf items', 0, MAX_LEAF_ENTRIES).map(item => {
      const entry = pickEntry(item)
      if (previous !== undefined && !(previous < entry[0])) fail(`leaf paths not strictly ascending at ${show(entry[0])}`)
      previous = entry[0]
      return entry
    })
    return { v: 1, leaf }
  }
  check.shape(f, 'branch', ['v', 'level', 'children'])
  check.version(f.v, 'branch', TREE_VERSION)
  const level = check.int(f.level, 'branch level', 1, MAX_TREE_LEVEL)
  let previous: string | undefined
  let total = 0
  const children = check.list(f.children, 'branch children', 1, MAX_BRANCH_CHILDREN).map(item => {
    const child = pickChild(item)
    if (previous !== undefined && !(previous < child[0])) fail(`children's first paths not strictly ascending at ${show(child[0])}`)
    previous = child[0]
    total += child[2]
    if (!Number.isSafeInteger(total)) fail('children count more than 2^53 paths')
    return child
  })
  return { v: 1, level, children }
}
