/**
 * The snapshot tree node codec (protocol/snapshot-tree.ts): round trips,
 * node bytes assembled from items equal to dag-cbor of the whole node, and
 * every malformed node refused with InvalidMessageError; random mutations
 * give a typed error or a node that round-trips, never a crash.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import type { SnapshotVersion } from '../../protocol/namespace.js'
import {
  assembleTreeNode, boundaryHash, chunkingFault, decodeTreeNode, decodeTreeNodeSized, encodeTreeChild, encodeTreeEntry, encodeTreeNode,
  InvalidMessageError, isBoundary, MAX_BRANCH_CHILDREN, MAX_LEAF_ENTRIES, MAX_TREE_ENTRY_BYTES, MAX_TREE_LEVEL, MAX_TREE_NODE_BYTES,
  MIN_LEAF_ENTRIES, TREE_SOFT_NODE_BYTES, treeNodeCount, type TreeBranch, type TreeLeaf
} from '../../protocol/snapshot-tree.js'

const cidOf = (n: number, codec = 0x71): CID => {
  const d = new Uint8Array(32)
  d[0] = n & 0xff
  d[1] = n >> 8
  return CID.createV1(codec, Digest.create(0x12, d))
}
const file = (seq: number): SnapshotVersion => ({ author: '12D3KooWA', seq, time: 5, type: 'file', cid: cidOf(seq, 0x70), size: 10, mode: 0o644, mtime: 7, pin: { policy: 'ec:4+2', manifest: cidOf(seq + 1) } })
const dir = (seq: number): SnapshotVersion => ({ author: '12D3KooWB', seq, time: 5, type: 'dir', mode: 0o755, mtime: 7 })
const leaf: TreeLeaf = { v: 1, leaf: [['/a', [file(1), dir(2)]], ['/a/b', [dir(3)]], ['/c', [file(4)]]] }
const branch: TreeBranch = { v: 1, level: 2, children: [['/a', cidOf(1), 10], ['/b', cidOf(2), 3], ['/b/c', cidOf(3), 1]] }

/** dag-cbor of a value as given (no checks), as a plain Uint8Array (the encoder may give a Buffer). */
const cbor = (value: unknown): Uint8Array => new Uint8Array(dagCbor.encode(value))
/** dag-cbor of a value as given, then decoded by the codec. */
const decodeRaw = (value: unknown): unknown => decodeTreeNode(cbor(value))
const refuses = (value: unknown, message: RegExp): void => {
  assert.throws(() => decodeRaw(value), (err: any) => err instanceof InvalidMessageError && message.test(err.message))
}

describe('snapshot tree codec', () => {
  it('round-trips leaves and branches, and assembles the same bytes as dag-cbor of the node', () => {
    for (const node of [leaf, branch, { v: 1 as const, leaf: [] }]) {
      const bytes = encodeTreeNode(node)
      assert.deepEqual(bytes, cbor(node))
      assert.deepEqual(decodeTreeNode(bytes), node)
    }
    assert.deepEqual(assembleTreeNode(0, leaf.leaf.map(encodeTreeEntry)), cbor(leaf))
    assert.deepEqual(assembleTreeNode(2, branch.children.map(encodeTreeChild)), cbor(branch))
    assert.equal(treeNodeCount(branch), 14)
    assert.equal(treeNodeCount(leaf), 3)
    // list headers of every width
    for (const n of [23, 24, 255, 256, 1000]) {
      const big: TreeBranch = { v: 1, level: MAX_TREE_LEVEL, children: Array.from({ length: n }, (_, i) => [`/p${String(i).padStart(5, '0')}`, cidOf(i), 1]) }
      assert.deepEqual(encodeTreeNode(big), cbor(big))
      assert.deepEqual(decodeTreeNode(encodeTreeNode(big)), big)
    }
  })

  it('refuses unsorted or duplicate paths and children out of order', () => {
    refuses({ v: 1, leaf: [leaf.leaf[1], leaf.leaf[0]] }, /not strictly ascending/)
    refuses({ v: 1, leaf: [leaf.leaf[0], leaf.leaf[0]] }, /not strictly ascending/)
    refuses({ ...branch, children: [branch.children[1], branch.children[0]] }, /not strictly ascending/)
    refuses({ ...branch, children: [branch.children[0], branch.children[0]] }, /not strictly ascending/)
    refuses({ v: 1, leaf: [['/a', [dir(1), dir(1)]]] }, /two versions/)
  })

  it('refuses bad counts, levels, CIDs and shapes', () => {
    refuses({ ...branch, children: [['/a', cidOf(1), 0]] }, /child count/)
    refuses({ ...branch, children: [['/a', cidOf(1), 2 ** 53]] }, /child count/)
    refuses({ ...branch, children: [['/a', cidOf(1), 2 ** 52], ['/b', cidOf(2), 2 ** 52]] }, /more than 2\^53/)
    refuses({ ...branch, children: [] }, /branch children has 0 items/)
    refuses({ ...branch, level: 0 }, /branch level/)
    refuses({ ...branch, level: MAX_TREE_LEVEL + 1 }, /branch level/)
    refuses({ ...branch, children: [['/a', cidOf(1, 0x55), 1]] }, /codec/)
    refuses({ ...branch, children: [['/a', CID.createV1(0x71, Digest.create(0x13, new Uint8Array(64))), 1]] }, /sha2-256/)
    refuses({ ...branch, children: [['/a', cidOf(1)]] }, /triple/)
    refuses({ v: 2, leaf: [] }, /unsupported version/)
    refuses({ v: 1, leaf: [], level: 1 }, /unexpected field/)
    refuses({ v: 1, level: 1, children: [branch.children[0]], extra: 1 }, /unexpected field/)
    refuses({ v: 1 }, /lacks field/)
    refuses([1], /not a map/)
  })

  it('refuses bad paths and versions', () => {
    refuses({ v: 1, leaf: [['/a/', [dir(1)]]] }, /not normalised/)
    refuses({ v: 1, leaf: [['/', [dir(1)]]] }, /is the root/)
    refuses({ v: 1, leaf: [['a', [dir(1)]]] }, /invalid/)
    refuses({ v: 1, leaf: [['/a', []]] }, /leaf versions has 0 items/)
    refuses({ v: 1, leaf: [['/a', [{ ...dir(1), cid: cidOf(1) }]]] }, /dir version has a cid/)
    refuses({ v: 1, leaf: [['/a', [{ ...dir(1), mode: 0o10000 }]]] }, /version mode/)
    refuses({ v: 1, leaf: [['/a', [{ ...dir(1), type: 'link' }]]] }, /unknown snapshot version type/)
    refuses({ v: 1, leaf: [['/a', [{ ...file(1), pin: { policy: 'ec:99+1' } }]]] }, /version pin/)
    refuses({ v: 1, leaf: [['/a', [{ ...dir(1), author: '' }]]] }, /version author is empty/)
  })

  it('refuses non-canonical bytes, oversize nodes and items, and too many items', () => {
    const bytes = encodeTreeNode(leaf)
    // the same map with its keys in the wrong order (leaf before v)
    const swapped = new Uint8Array([0xa2, 0x64, 0x6c, 0x65, 0x61, 0x66, ...bytes.subarray(9), 0x61, 0x76, 0x01])
    assert.throws(() => decodeTreeNode(swapped), InvalidMessageError)
    // an integer in a longer form than needed (time 5 as a 1-byte-argument integer)
    const long = dagCbor.encode({ v: 1, leaf: [['/a', [dir(1)]]] })
    const at = long.indexOf(0x05) // time: 5 (the only 5 in this encoding)
    const padded = new Uint8Array([...long.subarray(0, at), 0x18, 0x05, ...long.subarray(at + 1)])
    assert.throws(() => decodeTreeNode(padded), InvalidMessageError)
    // a float where an integer goes
    assert.throws(() => decodeTreeNode(dagCbor.encode({ v: 1, leaf: [['/a', [{ ...dir(1), time: 1.5 }]]] })), InvalidMessageError)
    assert.throws(() => decodeTreeNode(new Uint8Array(MAX_TREE_NODE_BYTES + 1)), /bytes > /)
    assert.throws(() => decodeTreeNode(new Uint8Array([0xff])), /not dag-cbor/)
    const author = (k: number): string => `12D3KooW${String(k).padStart(120, 'x')}`
    const heavy: SnapshotVersion[] = Array.from({ length: 2000 }, (_, k) => ({ ...dir(k + 1), author: author(k) }))
    assert.throws(() => encodeTreeEntry(['/a', heavy]), new RegExp(`> ${MAX_TREE_ENTRY_BYTES}`))
    refuses({ v: 1, leaf: [['/a', heavy]] }, new RegExp(`> ${MAX_TREE_ENTRY_BYTES}`))
    refuses({ v: 1, leaf: Array.from({ length: MAX_LEAF_ENTRIES + 1 }, (_, i) => [`/p${String(i).padStart(5, '0')}`, [dir(1)]]) }, /leaf items has/)
    refuses({ v: 1, level: 1, children: Array.from({ length: MAX_BRANCH_CHILDREN + 1 }, (_, i) => [`/p${String(i).padStart(5, '0')}`, cidOf(i), 1]) }, /branch children has/)
    assert.throws(() => assembleTreeNode(0, [new Uint8Array(MAX_TREE_NODE_BYTES)]), /bytes > /)
  })

  it('ends nodes by the chunking rule', () => {
    // below the minimum, never by hash; at the maximum or the soft byte size, always
    assert.equal(isBoundary(0, '/any', MIN_LEAF_ENTRIES - 1, 100), false)
    assert.equal(isBoundary(0, '/any', MAX_LEAF_ENTRIES, 100), true)
    assert.equal(isBoundary(1, '/any', MAX_BRANCH_CHILDREN, 100), true)
    assert.equal(isBoundary(0, '/any', 1, TREE_SOFT_NODE_BYTES), true)
    // past the minimum, about 1 in 512 paths ends a leaf; the hash depends on the level
    let ends = 0
    let sameAcrossLevels = 0
    for (let i = 0; i < 100_000; i++) {
      const key = `/k/${i}`
      if (isBoundary(0, key, MIN_LEAF_ENTRIES, 0)) ends++
      if (boundaryHash(0, key) === boundaryHash(1, key)) sameAcrossLevels++
    }
    assert.ok(ends > 100 && ends < 300, `${ends} boundaries in 100,000`)
    assert.equal(sameAcrossLevels, 0)
    // a node found to go on past a boundary, or to stop short of one
    const items = Array.from({ length: MIN_LEAF_ENTRIES + 2000 }, (_, i) => [`/p${String(i).padStart(6, '0')}`, [dir(1)]] as [string, SnapshotVersion[]])
    const cut = items.findIndex((e, i) => isBoundary(0, e[0], i + 1, 0))
    assert.ok(cut > 0)
    const sizes = (n: number): number[] => Array.from({ length: n }, () => 1)
    assert.equal(chunkingFault({ node: { v: 1, leaf: items.slice(0, cut + 1) }, sizes: sizes(cut + 1) }, false), undefined)
    assert.match(chunkingFault({ node: { v: 1, leaf: items.slice(0, cut + 2) }, sizes: sizes(cut + 2) }, true) ?? '', /past a boundary/)
    assert.match(chunkingFault({ node: { v: 1, leaf: items.slice(0, cut) }, sizes: sizes(cut) }, false) ?? '', /without a boundary/)
    assert.equal(chunkingFault({ node: { v: 1, leaf: items.slice(0, cut) }, sizes: sizes(cut) }, true), undefined)
    assert.deepEqual(decodeTreeNodeSized(encodeTreeNode(leaf)).sizes, leaf.leaf.map(e => encodeTreeEntry(e).byteLength))
    // item sizes read off canonical bytes: a branch too, with counts and paths of several header lengths
    const branch: TreeBranch = { v: 1, level: 2, children: Array.from({ length: 300 }, (_, i) => [`/p${String(i).padStart(5, '0')}${'y'.repeat(i % 40)}`, cidOf(i), 1 + i * 997]) }
    assert.deepEqual(decodeTreeNodeSized(encodeTreeNode(branch)).sizes, branch.children.map(c => encodeTreeChild(c).byteLength))
  })

  it('gives a typed error or a node that round-trips for mutated nodes (property)', () => {
    const junk = fc.oneof(fc.integer(), fc.string({ maxLength: 6 }), fc.constant(null), fc.constant('/x'), fc.constant(0), fc.constant(-1),
      fc.constant([]), fc.constant(cidOf(9)), fc.uint8Array({ maxLength: 4 }), fc.constant(2 ** 60), fc.constant({}))
    const mutate = (value: any, path: number[], replacement: unknown): unknown => {
      if (path.length === 0 || value === null || typeof value !== 'object' || value instanceof Uint8Array || CID.asCID(value) !== null) return replacement
      const keys = Object.keys(value)
      if (keys.length === 0) return replacement
      const key = keys[path[0] % keys.length]
      const copy: any = Array.isArray(value) ? [...value] : { ...value }
      copy[key] = mutate(value[key], path.slice(1), replacement)
      return copy
    }
    fc.assert(fc.property(fc.boolean(), fc.array(fc.nat(), { maxLength: 6 }), junk, (isLeaf, path, replacement) => {
      const value = mutate(isLeaf ? leaf : branch, path, replacement)
      let bytes: Uint8Array
      try {
        bytes = cbor(value)
      } catch {
        return
      }
      try {
        const node = decodeTreeNode(bytes)
        assert.deepEqual(encodeTreeNode(node), bytes)
      } catch (err) {
        assert.ok(err instanceof InvalidMessageError, String(err))
      }
    }), { numRuns: 5_000 })
  })
})
