/**
 * The snapshot tree (node/namespace/snapshot-tree.ts) on real dag-cbor and
 * sha-256 blocks in an in-memory block map: round trips, one root per state
 * whatever the history, incremental updates that write few nodes and equal a
 * full build, diffs that read few nodes, forged nodes refused with nothing
 * yielded past them, and walks and builds whose live memory stays small.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import type { SnapshotVersion } from '../../../protocol/namespace.js'
import { decodeTreeNode, MAX_TREE_NODE_BYTES, type TreeNode } from '../../../protocol/snapshot-tree.js'
import { cborCID } from '../../../node/blocks/verify.js'
import {
  buildTree, diffTrees, fitsPlace, InvalidTreeNodeError, MissingTreeNodeError, nodePlaces, updateTree, walkTree,
  type FetchHint, type KnownSubtrees, type TreeDifference, type Versions
} from '../../../node/namespace/snapshot-tree.js'

/** Blocks by CID, counting puts, gets and fetched CIDs. */
class Store {
  readonly blocks = new Map<string, Uint8Array>()
  puts = 0
  gets = 0
  fetched = 0
  put = async (cid: CID, bytes: Uint8Array): Promise<void> => {
    this.puts++
    this.blocks.set(cid.toString(), bytes)
  }

  get = async (cid: CID): Promise<Uint8Array | undefined> => {
    this.gets++
    return this.blocks.get(cid.toString())
  }

  fetch = async (cids: CID[]): Promise<Array<Uint8Array | undefined>> => {
    this.fetched += cids.length
    return cids.map(c => this.blocks.get(c.toString()))
  }

  node (cid: CID): TreeNode {
    return decodeTreeNode(this.blocks.get(cid.toString()) as Uint8Array)
  }
}

/** A file CID that differs for each `n` (no hashing: cheap for a million). */
function fileCid (n: number): CID {
  const digest = new Uint8Array(32)
  new DataView(digest.buffer).setFloat64(0, n)
  return CID.createV1(0x55, Digest.create(0x12, digest))
}

/** Path number `i`: ascending in `i`. */
function pathOf (i: number): string {
  return `/dir${String(Math.floor(i / 1000)).padStart(4, '0')}/file-${String(i).padStart(8, '0')}`
}

/** The versions of path `i` in generation `g` (a change bumps `g`). */
function versionsOf (i: number, g = 0): SnapshotVersion[] {
  const v: SnapshotVersion = { author: `12D3KooWAuthor${i % 7}`, seq: i + 1 + g, time: 1_700_000_000_000 + i, type: 'file', cid: fileCid(i * 31 + g), size: i, mode: 0o644, mtime: 1_700_000_000 }
  return i % 97 === 0 ? [v, { author: '12D3KooWOther', seq: 5 + g, time: 1, type: 'dir', mode: 0o755, mtime: 2 }] : [v]
}

function * range (n: number, g = 0): Generator<[string, Versions]> {
  for (let i = 0; i < n; i++) yield [pathOf(i), versionsOf(i, g)]
}

async function collect<T> (items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of items) out.push(item)
  return out
}

function heightOf (store: Store, root: CID): number {
  const node = store.node(root)
  return 'leaf' in node ? 1 : node.level + 1
}

/** A full garbage collection, so heap samples count live memory. */
const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

describe('snapshot tree: build and walk', () => {
  for (const n of [0, 1, 10_000, 60_000]) {
    it(`round-trips ${n.toLocaleString('en')} paths`, async () => {
      const store = new Store()
      const { root, count } = await buildTree(range(n), store.put)
      assert.equal(count, n)
      let i = 0
      for await (const [path, versions] of walkTree(root, store.fetch)) {
        assert.equal(path, pathOf(i))
        assert.deepEqual(versions, versionsOf(i))
        i++
      }
      assert.equal(i, n)
      // every node of this tree was written once and fits a snapshot block
      assert.equal(store.puts, store.blocks.size)
      for (const bytes of store.blocks.values()) assert.ok(bytes.byteLength <= MAX_TREE_NODE_BYTES)
      if (n === 60_000) {
        // leaves of ~768 paths, branches of ~256 children
        const leaves = [...store.blocks.values()].filter(b => 'leaf' in decodeTreeNode(b)).length
        assert.ok(n / leaves > 300 && n / leaves < 2000, `${leaves} leaves for ${n} paths`)
        assert.ok(heightOf(store, root) >= 2)
      }
    })
  }

  it('gives the one root of a state whatever the history that led to it', async () => {
    const n = 30_000
    const store = new Store()
    const full = await buildTree(range(n), store.put)
    // the same state reached by inserting in shuffled batches, each applied as an update
    const order = [...Array(n).keys()]
    let seed = 7
    for (let i = n - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      const j = seed % (i + 1);
      [order[i], order[j]] = [order[j], order[i]]
    }
    let { root } = await buildTree([], store.put)
    for (let start = 0; start < n; start += 7_000) {
      const batch = order.slice(start, start + 7_000).sort((a, b) => a - b)
      root = (await updateTree(root, batch.map(i => [pathOf(i), versionsOf(i)] as [string, Versions]), store.get, store.put)).root
    }
    assert.ok(root.equals(full.root), 'inserting in batches gives the root of one build')
    // and through a detour: extra paths added, then removed
    const extra = [...Array(500).keys()].map(k => [`/zz/extra-${String(k).padStart(3, '0')}`, versionsOf(k)] as [string, Versions])
    const detour = await updateTree(root, extra, store.get, store.put)
    assert.ok(!detour.root.equals(root))
    const back = await updateTree(detour.root, extra.map(([p]) => [p, undefined] as [string, Versions | undefined]), store.get, store.put)
    assert.ok(back.root.equals(full.root))
  })

  it('refuses entries out of order', async () => {
    const store = new Store()
    await assert.rejects(buildTree([['/b', versionsOf(1)], ['/a', versionsOf(2)]], store.put), { name: 'InvalidArgumentError' })
    await assert.rejects(buildTree([['/a', versionsOf(1)], ['/a', versionsOf(2)]], store.put), { name: 'InvalidArgumentError' })
  })

  it('spreads fetches over peers by the hint, retrying what a peer lacks on another', async () => {
    const store = new Store()
    const { root } = await buildTree(range(50_000), store.put)
    // peer 0 has nothing, peer 1 answers at most 3 blocks per request, peer 2 everything
    const asked = [0, 0, 0]
    const fetch = async (cids: CID[], hint: FetchHint): Promise<Array<Uint8Array | undefined>> => {
      const peer = (hint.request + hint.attempt) % 3
      asked[peer]++
      if (peer === 0) return []
      const got = cids.map(c => store.blocks.get(c.toString()))
      return peer === 1 ? got.slice(0, 3) : got
    }
    const entries = await collect(walkTree(root, fetch, { concurrency: 3, batch: 8 }))
    assert.equal(entries.length, 50_000)
    assert.ok(asked.every(n => n > 0), `requests per peer: ${asked.join(', ')}`)
    // no peer has it: missing after the attempts
    await assert.rejects(collect(walkTree(root, async () => [], { attempts: 2 })), MissingTreeNodeError)
  })
})

describe('snapshot tree: walking past known subtrees', () => {
  it('yields only the paths outside the subtrees held, fetches and reads none of those', async () => {
    const mine = new Store()
    const a = await buildTree(range(50_000), mine.put)
    const theirs = new Store()
    const changes: Array<[string, Versions]> = [[pathOf(10), versionsOf(10, 1)], [pathOf(30_000), versionsOf(30_000, 1)]]
    const b = await updateTree(a.root, changes, mine.get, theirs.put)
    for (const [k, v] of mine.blocks) if (!theirs.blocks.has(k)) theirs.blocks.set(k, v)
    const places = await nodePlaces(a.root, mine.get)
    const skipped: Array<[string, number]> = []
    const known = (fits: KnownSubtrees['fits']): KnownSubtrees => ({ has: cid => mine.blocks.has(cid.toString()), fits, get: mine.get, skipped: (cid, count) => { skipped.push([cid.toString(), count]) } })
    mine.gets = 0
    const entries = await collect(walkTree(b.root, theirs.fetch, { known: known((cid, place) => fitsPlace(places.get(cid.toString()), place)) }))
    assert.equal(mine.gets, 0, 'no node held was read')
    assert.equal(entries.length + skipped.reduce((n, [, c]) => n + c, 0), 50_000, 'every path yielded or counted in a skipped subtree')
    assert.ok(entries.length < 5_000, `${entries.length} paths walked of 50,000`)
    for (const [path, versions] of changes) assert.deepEqual(entries.find(([p]) => p === path)?.[1], versions)
    // without `fits`, the subtrees held are read and checked, and skipped all the same
    skipped.length = 0
    const again = await collect(walkTree(b.root, theirs.fetch, { known: known(undefined) }))
    assert.deepEqual(again, entries)
    assert.ok(mine.gets > 0)
  })

  it('a node held that the other tree hangs at another place is read and checked', () => {
    const ours = { level: 0, first: '/a', count: 10, upper: '/m' }
    assert.equal(fitsPlace(ours, { ...ours }), true)
    assert.equal(fitsPlace(ours, { ...ours, upper: undefined }), true, 'the last node of its level needs no bound')
    assert.equal(fitsPlace(ours, { ...ours, upper: '/z' }), true, 'a looser bound')
    assert.equal(fitsPlace(ours, { ...ours, upper: '/b' }), false, 'a tighter bound: its last path is unknown unread')
    assert.equal(fitsPlace(ours, { ...ours, count: 11 }), false)
    assert.equal(fitsPlace(ours, { ...ours, first: '/b' }), false)
    assert.equal(fitsPlace(ours, { ...ours, level: 1 }), false)
    assert.equal(fitsPlace({ ...ours, upper: undefined }, ours), false, 'our last node may not end on a boundary')
    assert.equal(fitsPlace(undefined, ours), false)
  })
})

describe('snapshot tree: incremental update', () => {
  it('writes only the nodes on the changed paths and equals a full build', async () => {
    const n = 50_000
    const store = new Store()
    const before = await buildTree(range(n), store.put)
    const height = heightOf(store, before.root)
    // 10 changes spread over the keyspace: 4 edits, 3 removals, 3 insertions
    const changed = new Map<number, Versions | undefined>()
    for (let k = 0; k < 4; k++) changed.set(k * 12_499 + 17, versionsOf(k * 12_499 + 17, 1))
    for (let k = 0; k < 3; k++) changed.set(k * 15_001 + 5, undefined)
    const inserts: Array<[string, Versions]> = [...Array(3).keys()].map(k => [`${pathOf(k * 17_000 + 3)}-new`, versionsOf(k, 2)])
    const changes: Array<[string, Versions | undefined]> = [
      ...[...changed].map(([i, v]) => [pathOf(i), v] as [string, Versions | undefined]),
      ...inserts
    ].sort((a, b) => a[0] < b[0] ? -1 : 1)
    store.puts = 0
    store.gets = 0
    const after = await updateTree(before.root, changes, store.get, store.put)
    assert.equal(after.written, store.puts)
    assert.equal(after.read, store.gets)
    // each change rewrites its leaf and the branches above it (shared near the root), plus a neighbour when a boundary moves
    const bound = changes.length * (height + 1)
    assert.ok(after.written <= bound, `${after.written} nodes written for ${changes.length} changes (height ${height}), at most ${bound}`)
    assert.ok(after.read <= bound, `${after.read} nodes read`)
    assert.equal(after.count, n - 3 + 3)

    // the full build of the new state: the same root
    const expected: Array<[string, Versions]> = []
    for (let i = 0; i < n; i++) {
      if (!changed.has(i)) expected.push([pathOf(i), versionsOf(i)])
      else if (changed.get(i) !== undefined) expected.push([pathOf(i), changed.get(i) as Versions])
    }
    expected.push(...inserts)
    expected.sort((a, b) => a[0] < b[0] ? -1 : 1)
    const fresh = new Store()
    const rebuilt = await buildTree(expected, fresh.put)
    assert.ok(after.root.equals(rebuilt.root), 'update(build(A), diff) === build(B)')
  })

  it('converges to the full build for random states and changes (property)', async () => {
    // a universe of U paths; A and B are random subsets with random versions
    const U = 6_000
    const stateArb = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: U, maxLength: U })
    await fc.assert(fc.asyncProperty(stateArb, stateArb, fc.integer({ min: 0, max: U }), async (a, b, cut) => {
      // B differs from A only in [cut, cut + 300) and one far path, so changes are few and local
      const stateB = a.map((g, i) => (i >= cut && i < cut + 300) || i === (cut * 7) % U ? b[i] : g)
      const toEntries = (s: number[]): Array<[string, Versions]> => s.flatMap((g, i) => g === 0 ? [] : [[pathOf(i), versionsOf(i, g)] as [string, Versions]])
      const store = new Store()
      const built = await buildTree(toEntries(a), store.put)
      const changes: Array<[string, Versions | undefined]> = []
      for (let i = 0; i < U; i++) if (a[i] !== stateB[i]) changes.push([pathOf(i), stateB[i] === 0 ? undefined : versionsOf(i, stateB[i])])
      const updated = await updateTree(built.root, changes, store.get, store.put)
      const expected = await buildTree(toEntries(stateB), new Store().put)
      assert.ok(updated.root.equals(expected.root))
      assert.equal(updated.count, expected.count)
    }), { numRuns: 25 })
  })

  it('refuses changes out of order', async () => {
    const store = new Store()
    const { root } = await buildTree(range(10), store.put)
    await assert.rejects(updateTree(root, [[pathOf(5), undefined], [pathOf(2), undefined]], store.get, store.put), { name: 'InvalidArgumentError' })
  })
})

describe('snapshot tree: diff', () => {
  it('finds exactly the changed paths, reading few nodes', async () => {
    const n = 50_000
    const store = new Store()
    const a = await buildTree(range(n), store.put)
    const edits = [3, 10_000, 10_001, 30_864, 49_999]
    const removed = [19_444]
    const added: Array<[string, Versions]> = [['/dir0050/file-00050000-b', versionsOf(1, 9)]]
    const changes: Array<[string, Versions | undefined]> = [
      ...edits.map(i => [pathOf(i), versionsOf(i, 5)] as [string, Versions | undefined]),
      ...removed.map(i => [pathOf(i), undefined] as [string, Versions | undefined]),
      ...added
    ].sort((x, y) => x[0] < y[0] ? -1 : 1)
    const b = await updateTree(a.root, changes, store.get, store.put)
    const stats = { readA: 0, readB: 0 }
    const diff = await collect(diffTrees(a.root, b.root, store.get, store.get, stats))
    const expected: TreeDifference[] = changes.map(([path, v]) => {
      const i = edits.concat(removed).find(k => pathOf(k) === path)
      const d: TreeDifference = { path }
      if (i !== undefined) d.a = versionsOf(i)
      if (v !== undefined) d.b = v
      return d
    })
    assert.deepEqual(diff, expected)
    const height = heightOf(store, a.root)
    const bound = 2 * changes.length * height
    assert.ok(stats.readA + stats.readB <= bound, `${stats.readA} + ${stats.readB} nodes read for ${changes.length} changes, at most ${bound}`)
    // the other way round, and a tree against itself
    assert.deepEqual((await collect(diffTrees(b.root, a.root, store.get, store.get))).map(d => [d.path, d.b, d.a]), expected.map(d => [d.path, d.a, d.b]))
    assert.deepEqual(await collect(diffTrees(a.root, a.root, store.get, store.get)), [])
  })

  it('diffs against the empty tree and between trees of different heights', async () => {
    const store = new Store()
    const empty = await buildTree([], store.put)
    const small = await buildTree(range(3), store.put)
    const big = await buildTree(range(5_000), store.put)
    assert.deepEqual(await collect(diffTrees(empty.root, small.root, store.get, store.get)), [...range(3)].map(([path, b]) => ({ path, b })))
    const d = await collect(diffTrees(big.root, small.root, store.get, store.get))
    assert.deepEqual(d.map(x => x.path), [...range(5_000)].slice(3).map(([p]) => p))
    assert.ok(d.every(x => x.b === undefined && x.a !== undefined))
  })
})

/** Re-encode a node with dag-cbor as given (any shape), store it, and give its CID. */
function putRaw (store: Store, value: unknown): CID {
  const bytes = dagCbor.encode(value)
  const cid = cborCID(bytes)
  store.blocks.set(cid.toString(), bytes)
  return cid
}

/** Replace the node at `path` (child indexes from the root) by `forge(node)`, re-hashing its ancestors; the new root. */
function forgeAt (store: Store, root: CID, path: number[], forge: (node: any) => unknown): CID {
  const node = store.node(root) as any
  if (path.length === 0) return putRaw(store, forge(node))
  const [i, ...rest] = path
  const child = forgeAt(store, node.children[i][1], rest, forge)
  node.children[i] = [node.children[i][0], child, node.children[i][2]]
  return putRaw(store, node)
}

describe('snapshot tree: forged and corrupt nodes', () => {
  /** A tree of 3 levels' worth of shape: root branch, leaves below. */
  const setup = async (): Promise<{ store: Store, root: CID }> => {
    const store = new Store()
    const { root } = await buildTree(range(20_000), store.put)
    assert.equal((store.node(root) as any).level, 1)
    return { store, root }
  }

  /** Walk, staging entries; the walk must fail with `error`, and what it yielded must lie before `before`. */
  const refused = async (store: Store, root: CID, before: string | undefined, error: RegExp): Promise<void> => {
    const staged: string[] = []
    await assert.rejects(async () => {
      for await (const [path] of walkTree(root, store.fetch)) staged.push(path)
    }, (err: any) => err instanceof InvalidTreeNodeError && error.test(err.message))
    if (before !== undefined) assert.ok(staged.every(p => p < before), 'nothing yielded past the bad node')
    else assert.equal(staged.length, 0)
  }

  it('refuses a node whose bytes do not hash to its CID', async () => {
    const { store, root } = await setup()
    const leaf = (store.node(root) as any).children[5]
    const bytes = store.blocks.get(leaf[1].toString()) as Uint8Array
    const bad = new Uint8Array(bytes)
    bad[bad.length - 3] ^= 1
    store.blocks.set(leaf[1].toString(), bad)
    await refused(store, root, leaf[0], /does not hash to its CID/)
    const rootBytes = store.blocks.get(root.toString()) as Uint8Array
    store.blocks.set(root.toString(), rootBytes.slice(1))
    await refused(store, root, undefined, /does not hash to its CID/)
  })

  it('refuses a leaf with unsorted or duplicate paths', async () => {
    const { store, root } = await setup()
    const first = (store.node(root) as any).children[4][0]
    const swapped = forgeAt(store, root, [4], n => ({ ...n, leaf: [n.leaf[1], n.leaf[0], ...n.leaf.slice(2)] }))
    await refused(store, swapped, first, /not strictly ascending/)
    const dup = forgeAt(store, root, [4], n => ({ ...n, leaf: [n.leaf[0], ...n.leaf.slice(0, -1)] }))
    await refused(store, dup, first, /not strictly ascending/)
  })

  it('refuses a child whose count, first path or range does not match its parent', async () => {
    const { store, root } = await setup()
    const node = store.node(root) as any
    const wrongCount = putRaw(store, { ...node, children: node.children.map((c: any, i: number) => i === 2 ? [c[0], c[1], c[2] + 1] : c) })
    await refused(store, wrongCount, node.children[2][0], /holds \d+ paths, its parent says/)
    // a leaf moved one slot right: first paths no longer match
    const shifted = putRaw(store, { ...node, children: node.children.map((c: any, i: number) => i === 3 ? [c[0], node.children[2][1], node.children[2][2]] : c) })
    await refused(store, shifted, node.children[3][0], /holds|starts at/)
    // a leaf dropped from its parent is no forgery: the rest is the one tree of the state without its paths
    const dropped = putRaw(store, { ...node, children: node.children.filter((_: unknown, i: number) => i !== 0) })
    assert.equal((await collect(walkTree(dropped, store.fetch))).length, 20_000 - node.children[0][2])
  })

  it('refuses a node that does not end where the chunking rule says', async () => {
    const { store, root } = await setup()
    const node = store.node(root) as any
    // two leaves merged into one: same paths, same counts above, but past a boundary
    const a = store.node(node.children[1][1]) as any
    const b = store.node(node.children[2][1]) as any
    const merged = putRaw(store, { v: 1, leaf: [...a.leaf, ...b.leaf] })
    const forged = putRaw(store, { ...node, children: [...node.children.slice(0, 1), [node.children[1][0], merged, a.leaf.length + b.leaf.length], ...node.children.slice(3)] })
    await refused(store, forged, node.children[1][0], /past a boundary/)
    // a branch root of one child
    const lone = putRaw(store, { v: 1, level: 2, children: [[node.children[0][0], root, 20_000]] })
    await refused(store, lone, undefined, /branch of one child/)
  })

  it('refuses an oversize node and a cyclic reference attempt', async () => {
    const { store, root } = await setup()
    const node = store.node(root) as any
    // a leaf past 1 MiB (each item is small; the node is not)
    const big: Array<[string, Versions]> = []
    for (let i = 0; big.length < 4000; i++) big.push([`/big/${String(i).padStart(6, '0')}`, [versionsOf(i)[0], ...Array.from({ length: 3 }, (_, k) => ({ ...versionsOf(i)[0], seq: 10_000 + k, author: `12D3KooW${'x'.repeat(100)}` }))]])
    const oversize = putRaw(store, { v: 1, leaf: big })
    assert.ok((store.blocks.get(oversize.toString()) as Uint8Array).byteLength > MAX_TREE_NODE_BYTES)
    await refused(store, oversize, undefined, /bytes > /)
    // a branch naming a branch of its own level (an ancestor, or itself once re-rooted): refused by level
    const cyclic = putRaw(store, { ...node, children: node.children.map((c: any, i: number) => i === 1 ? [c[0], root, c[2]] : c) })
    await refused(store, cyclic, node.children[1][0], /level 1, its parent says 0/)
    // and a root that claims a level it does not have below it
    const deep = putRaw(store, { v: 1, level: 3, children: node.children })
    await refused(store, deep, undefined, /level 0, its parent says 2/)
  })

  it('update and diff refuse corrupt nodes too', async () => {
    const { store, root } = await setup()
    const [first, leaf] = (store.node(root) as any).children[1]
    const change: Array<[string, Versions]> = [[first, versionsOf(1, 1)]]
    const other = await updateTree(root, change, store.get, store.put)
    store.blocks.set(leaf.toString(), new Uint8Array([0xa0]))
    await assert.rejects(updateTree(root, change, store.get, store.put), InvalidTreeNodeError)
    await assert.rejects(collect(diffTrees(root, other.root, store.get, store.get)), InvalidTreeNodeError)
    store.blocks.delete(leaf.toString())
    await assert.rejects(updateTree(root, change, store.get, store.put), MissingTreeNodeError)
    await assert.rejects(collect(diffTrees(other.root, root, store.get, store.get)), MissingTreeNodeError)
  })
})

describe('snapshot tree: memory', () => {
  it('builds and walks 300,000 paths with little live heap (bench/snapshot-tree: a million)', async () => {
    const n = 300_000
    const store = new Store()
    // nodes are kept as Uint8Arrays (outside the JS heap): what grows the heap is the builder's and the walker's own state
    collectGarbage()
    const base = process.memoryUsage().heapUsed
    let peakBuild = 0
    function * sampled (): Generator<[string, Versions]> {
      for (let i = 0; i < n; i++) {
        if (i % 100_000 === 0) {
          collectGarbage()
          peakBuild = Math.max(peakBuild, process.memoryUsage().heapUsed - base)
        }
        yield [pathOf(i), [{ author: '12D3KooWAuthor', seq: i + 1, time: i, type: 'dir', mode: 0o755, mtime: i }]]
      }
    }
    const { root, count } = await buildTree(sampled(), store.put)
    assert.equal(count, n)
    collectGarbage()
    const walkBase = process.memoryUsage().heapUsed
    let peakWalk = 0
    let i = 0
    for await (const [path] of walkTree(root, store.fetch, { concurrency: 4, batch: 16 })) {
      if (i % 50_000 === 0) {
        assert.equal(path, pathOf(i))
        collectGarbage()
        peakWalk = Math.max(peakWalk, process.memoryUsage().heapUsed - walkBase)
      }
      i++
    }
    assert.equal(i, n)
    // the whole state decoded is 300k objects of versions and CIDs (~100 MB);
    // the walk holds at most height × concurrency × batch nodes
    const MiB = 1024 * 1024
    assert.ok(peakBuild < 48 * MiB, `build heap growth ${(peakBuild / MiB).toFixed(1)} MiB`)
    assert.ok(peakWalk < 48 * MiB, `walk heap growth ${(peakWalk / MiB).toFixed(1)} MiB`)
  })
})
