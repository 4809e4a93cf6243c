/**
 * Streamed snapshot merges and incremental snapshots (snapshot-load.ts,
 * snapshots.ts): what a merge leaves in the store, that a replica's own
 * snapshot is the peer's tree with only the differing paths rewritten, that
 * a snapshot after a few writes rewrites a few nodes, and what a crash in a
 * merge or in its staging leaves behind. Real LevelDB stores on disk.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { LevelKV, type KV, type KVOp, type KVRange } from '../../../node/namespace/kv.js'
import { buildTree, walkTree, type Versions } from '../../../node/namespace/snapshot-tree.js'
import { cborCID } from '../../../node/blocks/verify.js'
import { signerFromKey } from '../../../node/namespace/index.js'
import { encodeSnapshotRoot, encodeSnapshotRootBody, type SnapshotRoot } from '../../../protocol/namespace.js'
import { toSnapshotVersion } from '../../../node/namespace/snapshot-state.js'
import { compareTreePaths, inTreeOrder } from '../../../node/namespace/path-order.js'
import type { PathState } from '../../../node/namespace/tree.js'
import type { Replica } from '../../../node/namespace/index.js'
import { file, pullInto, replica, tree, writes } from './helpers.js'

const dirs: string[] = []
const open: Replica[] = []
after(async () => {
  for (const r of open) await r.close().catch(() => {})
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function levelKV (): Promise<LevelKV> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-snapload-'))
  dirs.push(dir)
  return new LevelKV(join(dir, 'ns'))
}

/** A replica over a fresh LevelDB store (closed by the test's end). */
async function leveled (sim: { now: number }, kv?: KV, key?: Awaited<ReturnType<typeof generateKeyPair>>): Promise<{ r: Replica, kv: KV }> {
  const store = kv ?? await levelKV()
  const r = await replica(sim, {}, { kv: store, key })
  open.push(r)
  return { r, kv: store }
}

/** Keys of the store under a prefix. */
async function keys (kv: KV, prefix: string): Promise<string[]> {
  const out: string[] = []
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
  for await (const [key] of kv.iterate({ gte: prefix, lt: end })) out.push(key)
  return out
}

async function meta<T> (kv: KV, name: string): Promise<T | undefined> {
  const bytes = await kv.get('m!' + name)
  return bytes === undefined ? undefined : JSON.parse(new TextDecoder().decode(bytes)) as T
}

interface SnapshotMeta { root: string, tree: string, blocks: string[] }

/** The tree root a full build of the replica's live versions gives (what its snapshot must equal). */
async function fullBuildRoot (kv: KV): Promise<string> {
  const rows: Array<[string, PathState]> = []
  for await (const [key, value] of kv.iterate({ gt: 'v!', lt: 'v"' })) rows.push([key.slice(2), JSON.parse(new TextDecoder().decode(value)) as PathState])
  rows.sort((a, b) => compareTreePaths(a[0], b[0]))
  const built = await buildTree(rows.filter(([, s]) => s.versions.length > 0).map(([p, s]) => [p, s.versions.map(toSnapshotVersion)]), async () => {})
  return built.root.toString()
}

/** Every path of the replica's own snapshot, walked from its own store. */
async function walkOwn (kv: KV): Promise<number> {
  const snap = await meta<SnapshotMeta>(kv, 'snapshot') as SnapshotMeta
  let n = 0
  for await (const _ of walkTree(CID.parse(snap.tree), async cids => await Promise.all(cids.map(async c => await kv.get('b!' + c.toString()))))) n++
  return n
}

/** Names whose store order (UTF-8 bytes) differs from the tree's (UTF-16 units): fullwidth forms and emoji. */
const NAMES = ['plain.txt', 'Ｆullwidth.txt', '😀smile.txt', 'z-last.txt', 'ｚ.txt', '🦀.rs']

async function populate (r: Replica, n: number): Promise<void> {
  const files = []
  for (let i = 0; i < n; i++) files.push({ path: `/d${i % 7}/f-${String(i).padStart(5, '0')}-${NAMES[i % NAMES.length]}`, record: file(`content ${i}`) })
  for (let i = 0; i < files.length; i += 500) await r.putFiles(files.slice(i, i + 500))
}

/** A replica `b` over LevelDB holding `n` files (see {@link populate}) and the root of its snapshot. */
async function snapshotOf (sim: { now: number }, n: number): Promise<{ b: Replica, root: CID }> {
  const { r: b } = await leveled(sim)
  await populate(b, n)
  return { b, root: await b.snapshot() }
}

/** A store passing everything to `inner`: the faults below change `batch`. */
class WrappedKV implements KV {
  constructor (protected readonly inner: KV) {}
  get location (): string | undefined { return this.inner.location }
  async open (): Promise<void> { await this.inner.open() }
  async close (): Promise<void> { await this.inner.close() }
  async get (key: string): Promise<Uint8Array | undefined> { return await this.inner.get(key) }
  iterate (range: KVRange): AsyncIterable<[string, Uint8Array]> { return this.inner.iterate(range) }
  async batch (ops: KVOp[], sync: boolean): Promise<void> { await this.inner.batch(ops, sync) }
}

/**
 * A store whose process "dies" at its `n`th batch that matches `when`:
 * that batch and every later one fail (nothing of them is written), as
 * after a kill at that point.
 */
class DyingKV extends WrappedKV {
  armed = false
  private dead = false
  constructor (inner: KV, private readonly when: (ops: KVOp[]) => boolean, private n = 1) { super(inner) }
  override async batch (ops: KVOp[], sync: boolean): Promise<void> {
    if (this.armed && !this.dead && this.when(ops) && --this.n === 0) this.dead = true
    if (this.dead) throw new Error('injected crash')
    await this.inner.batch(ops, sync)
  }
}

/** A store whose batches take `ms` to be written (the loader's fetches go on meanwhile). */
class SlowKV extends WrappedKV {
  constructor (inner: KV, private readonly ms: number) { super(inner) }
  override async batch (ops: KVOp[], sync: boolean): Promise<void> {
    await new Promise(resolve => setTimeout(resolve, this.ms))
    await this.inner.batch(ops, sync)
  }
}

/** A peer's snapshot of `n` files by one author, built as a tree directly (fast for tens of thousands): its root, author and blocks. */
async function syntheticSnapshot (n: number): Promise<{ root: CID, author: string, blocks: Map<string, Uint8Array> }> {
  const key = await generateKeyPair('Ed25519')
  const author = signerFromKey(key).id
  const blocks = new Map<string, Uint8Array>()
  const put = async (cid: CID, bytes: Uint8Array): Promise<void> => { blocks.set(cid.toString(), bytes) }
  const entries = function * (): Generator<[string, Versions]> {
    for (let i = 0; i < n; i++) {
      const record = file(`synthetic ${i}`)
      yield [`/s${String(Math.floor(i / 1000)).padStart(3, '0')}/f-${String(i).padStart(6, '0')}`, [{ author, seq: i + 1, time: 1_000 + i, type: 'file', cid: CID.parse(record.cid), size: record.size, mode: record.mode, mtime: record.mtime }]]
    }
  }
  const tree = await buildTree(entries(), put)
  // the author's entry at its counter proves it (a snapshot's counters are adopted only with their tips)
  const [tip] = await writes([signerFromKey(key)], 'tip', n)
  blocks.set(cborCID(tip).toString(), tip)
  const body: Omit<SnapshotRoot, 'sig'> = { v: 1, author, time: 1_000, clock: { [author]: n }, heads: [], headDots: [], count: tree.count, tree: tree.root, tips: [[author, cborCID(tip)]] }
  const bytes = encodeSnapshotRoot({ ...body, sig: await key.sign(encodeSnapshotRootBody(body)) })
  const root = cborCID(bytes)
  blocks.set(root.toString(), bytes)
  return { root, author, blocks }
}

describe('streamed snapshot merge', () => {
  it('a fresh replica takes the peer\'s tree as its own snapshot and leaves no staging behind', async () => {
    const sim = { now: 1_000 }
    const { r: b, kv: kvB } = await leveled(sim)
    await populate(b, 1200)
    const root = await b.snapshot()
    const { r: a, kv: kvA } = await leveled(sim)
    assert.equal(await a.loadSnapshot(root, async cids => await b.blocks(cids), b.id), true)
    assert.deepEqual(await tree(a), await tree(b))
    assert.deepEqual(a.state().clock, b.state().clock)
    const snapA = await meta<SnapshotMeta>(kvA, 'snapshot') as SnapshotMeta
    const snapB = await meta<SnapshotMeta>(kvB, 'snapshot') as SnapshotMeta
    assert.equal(snapA.tree, snapB.tree, 'nothing differed: the peer\'s tree is this replica\'s')
    assert.notEqual(snapA.root, snapB.root, 'the root is this replica\'s own, signed by it')
    assert.equal(await walkOwn(kvA), 1207, '1,200 files in 7 directories')
    assert.deepEqual(await keys(kvA, 'x!'), [])
    assert.deepEqual(await keys(kvA, 'd!'), [])
    assert.equal(await meta(kvA, 'merge'), undefined)
    assert.equal(await meta(kvA, 'staging'), undefined)
    // every block stored is the snapshot's: the peer's root was not kept
    assert.deepEqual((await keys(kvA, 'b!')).map(k => k.slice(2)).sort(), [...snapA.blocks].sort())
  })

  it('a first load writes the rows an applied history does: conflict copies, a copy\'s name taken by a later path, across batches, with slow writes', async () => {
    const sim = { now: 1_000 }
    const { r: b, kv: kvB } = await leveled(sim)
    const c = await replica(sim)
    open.push(c)
    // a conflict at /d/x, and a later path at the very name of its copy (a copy sorts after its path: /d/x < /d/x.conflict-…)
    await b.putFile('/d/x', file('from b'))
    await c.putFile('/d/x', file('from c'))
    await pullInto(b, c)
    const copy = (await tree(b)).find(l => l.includes('(conflict of /d/x)'))?.split(' ')[0] as string
    assert.ok(copy?.startsWith('/d/x.conflict-'), 'b shows a conflict copy')
    // more than a first load's batch of rows between the two (/d/x.a-… sorts between them)
    const between = []
    for (let i = 0; i < 2_600; i++) between.push({ path: `/d/x.a-${String(i).padStart(5, '0')}`, record: file(`between ${i}`) })
    for (let i = 0; i < between.length; i += 500) await b.putFiles(between.slice(i, i + 500))
    // written by a replica that never saw the conflict (on b, a write at the copy's name would replace the losing version)
    const d = await replica(sim)
    open.push(d)
    await d.putFile(copy, file('at the copy\'s name'))
    await pullInto(b, d)
    assert.ok((await tree(b)).some(l => l.startsWith(copy + ' ') && !l.includes('conflict of')), 'the name holds a file of its own')
    const root = await b.snapshot()
    // the rows themselves, child counts and copy lists included
    const rows = async (kv: KV): Promise<Array<[string, unknown]>> => {
      const out: Array<[string, unknown]> = []
      for (const prefix of ['t!', 'v!', 'c!']) {
        for await (const [key, value] of kv.iterate({ gt: prefix, lt: prefix.slice(0, -1) + '"' })) out.push([key, JSON.parse(new TextDecoder().decode(value))])
      }
      return out
    }
    // slow writes: the load fills its next batch while one is written, and reads through it (the directory's child count, the copy)
    for (const slow of [false, true]) {
      const { r: a, kv: kvA } = await leveled(sim, slow ? new SlowKV(await levelKV(), 20) : undefined)
      assert.equal(await a.loadSnapshot(root, async cids => await b.blocks(cids), b.id), true)
      assert.deepEqual(await tree(a), await tree(b))
      assert.deepEqual(await rows(kvA), await rows(kvB), slow ? 'with slow writes' : 'with fast writes')
    }
  })

  it('a merge keeps this replica\'s own writes, takes the peer\'s removals, and rewrites only the paths that differ', async () => {
    const sim = { now: 1_000 }
    const { r: b, kv: kvB } = await leveled(sim)
    const { r: a, kv: kvA } = await leveled(sim)
    await populate(b, 900)
    const root1 = await b.snapshot()
    await a.loadSnapshot(root1, async cids => await b.blocks(cids), b.id)
    // apart: b removes one path and writes another; a writes its own
    const gone = (await tree(b)).find(l => l.startsWith('/d3/f-'))?.split(' ')[0] as string
    await b.remove(gone)
    await b.putFile('/d1/new-on-b', file('b'))
    await a.putFile('/d2/new-on-a', file('a'))
    sim.now += 1000
    const root2 = await b.snapshot()
    assert.equal(await a.loadSnapshot(root2, async cids => await b.blocks(cids), b.id), true)
    const lines = await tree(a)
    assert.ok(!lines.some(l => l.startsWith(gone + ' ')), 'the peer\'s removal is taken')
    assert.ok(lines.some(l => l.startsWith('/d1/new-on-b ')))
    assert.ok(lines.some(l => l.startsWith('/d2/new-on-a ')), 'this replica\'s own write is kept')
    const snapA = await meta<SnapshotMeta>(kvA, 'snapshot') as SnapshotMeta
    const snapB = await meta<SnapshotMeta>(kvB, 'snapshot') as SnapshotMeta
    assert.notEqual(snapA.tree, snapB.tree)
    assert.equal(snapA.tree, await fullBuildRoot(kvA), 'the updated tree is the one tree of the merged state')
    assert.equal(await walkOwn(kvA), 908, '900 files, 7 directories, one removed, two new')
    assert.deepEqual((await keys(kvA, 'b!')).map(k => k.slice(2)).sort(), [...snapA.blocks].sort(), 'no block of either older tree is left over')
  })

  it('a snapshot after a few writes rewrites a few nodes and equals a full build', async () => {
    const sim = { now: 1_000 }
    const { r, kv } = await leveled(sim)
    await populate(r, 3000)
    await r.snapshot()
    const before = new Set(await keys(kv, 'b!'))
    assert.ok(before.size > 4, `a tree of several nodes (${before.size})`)
    assert.deepEqual(await keys(kv, 'd!'), [], 'the first snapshot leaves no dirty mark')
    await r.putFile('/d4/one-more', file('more'))
    assert.deepEqual(await keys(kv, 'd!'), ['d!/d4/one-more'])
    await r.snapshot()
    const after = await keys(kv, 'b!')
    const fresh = after.filter(k => !before.has(k))
    const snap = await meta<SnapshotMeta>(kv, 'snapshot') as SnapshotMeta
    // a leaf, its ancestors and the root: far fewer than the tree
    assert.ok(fresh.length <= 4, `${fresh.length} new blocks of ${after.length}`)
    assert.equal(snap.tree, await fullBuildRoot(kv))
    assert.equal(await walkOwn(kv), 3008)
    assert.deepEqual(after.map(k => k.slice(2)).sort(), [...snap.blocks].sort())
    assert.deepEqual(await keys(kv, 'd!'), [])
  })

  it('a merge interrupted by a crash is finished at the next open', async () => {
    const sim = { now: 1_000 }
    const { b, root } = await snapshotOf(sim, 800)
    const key = await generateKeyPair('Ed25519')
    const inner = await levelKV()
    // the crash: at the first batch of merged rows (`t!` visible names)
    const failing = new DyingKV(inner, ops => ops.some(op => op.key.startsWith('t!')), 1)
    const { r: a } = await leveled(sim, failing, key)
    await a.putFile('/mine', file('mine'))
    failing.armed = true
    await assert.rejects(a.loadSnapshot(root, async cids => await b.blocks(cids), b.id), /injected crash/)
    assert.notEqual(await meta(inner, 'merge'), undefined, 'the marker says a merge is under way')
    await inner.close()
    const { r: again, kv } = await leveled(sim, new LevelKV(inner.location as string), key)
    const lines = await tree(again)
    assert.equal(lines.filter(l => l.startsWith('/d')).length, (await tree(b)).filter(l => l.startsWith('/d')).length)
    assert.ok(lines.some(l => l.startsWith('/mine ')))
    assert.equal(again.state().clock[b.id], b.state().clock[b.id])
    assert.equal(await meta(kv, 'merge'), undefined)
    assert.deepEqual(await keys(kv, 'x!'), [])
    const snap = await meta<SnapshotMeta>(kv, 'snapshot') as SnapshotMeta
    assert.equal(snap.tree, await fullBuildRoot(kv))
  })

  it('a tree that fails its checks is refused and leaves nothing staged', async () => {
    const sim = { now: 1_000 }
    const { b, root } = await snapshotOf(sim, 1500)
    const { r: a, kv } = await leveled(sim)
    await a.putFile('/mine', file('mine'))
    await a.snapshot()
    const blocksBefore = await keys(kv, 'b!')
    const treeBefore = await tree(a)
    let served = 0
    // the fourth block served is garbled (a leaf, after the root and the top of the tree)
    const corrupt = async (cids: CID[]): Promise<Uint8Array[]> => (await b.blocks(cids)).map(bytes => ++served === 4 ? bytes.map(x => x ^ 0xff) : bytes)
    await assert.rejects(a.loadSnapshot(root, corrupt, b.id), (err: any) => err.name === 'InvalidSnapshotError')
    assert.deepEqual(await tree(a), treeBefore)
    assert.deepEqual(await keys(kv, 'b!'), blocksBefore)
    assert.deepEqual(await keys(kv, 'x!'), [])
    assert.equal(await meta(kv, 'staging'), undefined)
    assert.equal(a.state().clock[b.id], undefined)
  })

  it('staging a crash left behind is deleted at open, and the replica\'s own snapshot kept', async () => {
    const sim = { now: 1_000 }
    const key = await generateKeyPair('Ed25519')
    const { r: a, kv } = await leveled(sim, undefined, key)
    await populate(a, 50)
    await a.snapshot()
    const blocks = await keys(kv, 'b!')
    const lines = await tree(a)
    await a.close()
    const raw = new LevelKV(kv.location as string)
    await raw.open()
    const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
    await raw.batch([
      { type: 'put', key: 'm!staging', value: enc(1) },
      { type: 'put', key: 'x!/half/staged', value: enc([]) },
      { type: 'put', key: 'b!bafyorphannode', value: new Uint8Array([1, 2, 3]) }
    ], true)
    await raw.close()
    const { r: again, kv: kv2 } = await leveled(sim, new LevelKV(kv.location as string), key)
    assert.deepEqual(await keys(kv2, 'x!'), [])
    assert.deepEqual(await keys(kv2, 'b!'), blocks)
    assert.equal(await meta(kv2, 'staging'), undefined)
    assert.deepEqual(await tree(again), lines)
  })
  it('a first load that fails its checks leaves the replica empty', async () => {
    const sim = { now: 1_000 }
    const { b, root } = await snapshotOf(sim, 1500)
    const { r: a, kv } = await leveled(sim)
    let served = 0
    const corrupt = async (cids: CID[]): Promise<Uint8Array[]> => (await b.blocks(cids)).map(bytes => ++served === 4 ? bytes.map(x => x ^ 0xff) : bytes)
    await assert.rejects(a.loadSnapshot(root, corrupt, b.id), (err: any) => err.name === 'InvalidSnapshotError')
    assert.deepEqual(await tree(a), [])
    for (const prefix of ['b!', 'v!', 't!', 'x!']) assert.deepEqual(await keys(kv, prefix), [], prefix)
    assert.equal(await meta(kv, 'fresh'), undefined)
    assert.deepEqual(a.state().clock, {})
    // and a good copy loads
    assert.equal(await a.loadSnapshot(root, async cids => await b.blocks(cids), b.id), true)
    assert.deepEqual(await tree(a), await tree(b))
  })

  it('a first load interrupted by a crash leaves the replica empty at the next open, and it loads again', async () => {
    const sim = { now: 1_000 }
    const { b, root } = await snapshotOf(sim, 6000) // two batches of loaded rows (10,000 rows each)
    const key = await generateKeyPair('Ed25519')
    const inner = await levelKV()
    // the crash: at the second batch of loaded rows
    const dying = new DyingKV(inner, ops => ops.some(op => op.key.startsWith('t!')), 2)
    const { r: a } = await leveled(sim, dying, key)
    dying.armed = true
    await assert.rejects(a.loadSnapshot(root, async cids => await b.blocks(cids), b.id), /injected crash/)
    assert.notEqual(await meta(inner, 'fresh'), undefined)
    assert.ok((await keys(inner, 'v!')).length > 0, 'the first batch was written')
    await inner.close()
    const { r: again, kv } = await leveled(sim, new LevelKV(inner.location as string), key)
    assert.deepEqual(await tree(again), [])
    for (const prefix of ['b!', 'v!', 't!']) assert.deepEqual(await keys(kv, prefix), [], prefix)
    assert.equal(await meta(kv, 'fresh'), undefined)
    assert.equal(await again.loadSnapshot(root, async cids => await b.blocks(cids), b.id), true)
    assert.deepEqual(await tree(again), await tree(b))
  })

  it('paths read in the store\'s order come out in the tree\'s order', async () => {
    // UTF-8 byte order (the store's) and UTF-16 unit order (the tree's) differ between U+E000..U+FFFF and astral characters
    const alphabet = ['a', 'z', '/', '\u00e9', '\u4e2d', '\ud7a3', '\ue000', '\uff26', '\u{1f600}', '\u{10000}', '\u{1f980}']
    let seed = 7
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
    const paths = new Set<string>()
    while (paths.size < 2000) {
      let p = '/'
      for (let i = 0, n = 1 + random(6); i < n; i++) p += alphabet[random(alphabet.length)]
      paths.add(p)
    }
    const storeOrder = [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    assert.notDeepEqual(storeOrder, [...paths].sort(compareTreePaths), 'the two orders differ on these paths')
    const out: string[] = []
    for await (const [path] of inTreeOrder((async function * () { for (const p of storeOrder) yield [p, 0] as [string, number] })())) out.push(path)
    assert.deepEqual(out, [...paths].sort(compareTreePaths))
  })

  it('tree nodes that arrive while a batch is being written are stored (first load and staged load)', async () => {
    const sim = { now: 1_000 }
    // enough leaves for several fetch requests in flight while batches are written
    const peer = await syntheticSnapshot(40_000)
    const fetch = async (cids: CID[]): Promise<Uint8Array[]> => {
      await new Promise(resolve => setTimeout(resolve, 1))
      return cids.map(c => peer.blocks.get(c.toString()) as Uint8Array)
    }
    for (const first of [true, false]) {
      const inner = await levelKV()
      const { r: a } = await leveled(sim, new SlowKV(inner, 20))
      if (!first) await a.putFile('/mine', file('mine'))
      assert.equal(await a.loadSnapshot(peer.root, fetch, peer.author), true)
      const snap = await meta<SnapshotMeta>(inner, 'snapshot') as SnapshotMeta
      const stored = new Set((await keys(inner, 'b!')).map(k => k.slice(2)))
      assert.deepEqual(snap.blocks.filter(b => !stored.has(b)), [], `${first ? 'first' : 'staged'} load: every block of the snapshot is stored`)
      assert.equal(await walkOwn(inner), 40_000 + (first ? 0 : 1), "the snapshot holds the files (directories are implicit)")
    }
  })

  it('two loads of one snapshot side by side: one merges, the other changes nothing and leaves no block the snapshot needs', async () => {
    const sim = { now: 1_000 }
    const { b, root } = await snapshotOf(sim, 1200)
    const { r: a, kv } = await leveled(sim)
    await a.putFile('/mine', file('mine'))
    const fetch = async (cids: CID[]): Promise<Uint8Array[]> => await b.blocks(cids)
    const results = await Promise.all([a.loadSnapshot(root, fetch, b.id), a.loadSnapshot(root, fetch, b.id)])
    assert.deepEqual(results.sort(), [false, true])
    assert.equal(await walkOwn(kv), 1208, '1,200 files, 7 directories and /mine, every node of the snapshot in the store')
    const snap = await meta<SnapshotMeta>(kv, 'snapshot') as SnapshotMeta
    assert.deepEqual((await keys(kv, 'b!')).map(k => k.slice(2)).sort(), [...snap.blocks].sort())
    assert.deepEqual(await keys(kv, 'x!'), [])
    assert.equal(snap.tree, await fullBuildRoot(kv))
  })
})

describe('merging against this replica\'s own snapshot', () => {
  /** `b` with 12,000 files and `a` that loaded b's snapshot, then both changed a few paths apart; b's new snapshot root. */
  async function apart (sim: { now: number }, kvA?: KV, keyA?: Awaited<ReturnType<typeof generateKeyPair>>): Promise<{ a: Replica, b: Replica, kvA: KV, kvB: KV, root2: CID, edits: { gone: string[], mine: string[] } }> {
    const { r: b, kv: kvB } = await leveled(sim)
    await populate(b, 12_000)
    const root1 = await b.snapshot()
    const { r: a, kv } = await leveled(sim, kvA, keyA)
    assert.equal(await a.loadSnapshot(root1, async cids => await b.blocks(cids), b.id), true)
    const files = (await tree(b)).filter(l => /^\/d\d\/f-/.test(l)).map(l => l.split(' ')[0])
    // b: removes one, rewrites one, adds one; a: removes one, rewrites one, adds one (other paths)
    await b.remove(files[100])
    await b.putFile(files[6000], file('b rewrote'))
    await b.putFile('/d1/new-on-b', file('b'))
    await a.remove(files[9000])
    await a.putFile(files[11000], file('a rewrote'))
    await a.putFile('/d2/new-on-a', file('a'))
    sim.now += 1000
    return { a, b, kvA: kv, kvB, root2: await b.snapshot(), edits: { gone: [files[100], files[9000]], mine: [files[6000], files[11000], '/d1/new-on-b', '/d2/new-on-a'] } }
  }

  it('a returning replica fetches only the nodes where the trees differ, and merges as a walk of the whole tree does', async () => {
    const sim = { now: 1_000 }
    const key = await generateKeyPair('Ed25519')
    const { a: first, b, kvA: kvFirst, kvB, root2, edits } = await apart(sim, await levelKV(), key)
    // a twin of `a` without a snapshot of its own: it merges by walking b's whole tree
    await first.close()
    const twinDir = await mkdtemp(join(tmpdir(), 'shoal-snapload-twin-'))
    dirs.push(twinDir)
    await cp(kvFirst.location as string, twinDir, { recursive: true })
    const raw = new LevelKV(twinDir)
    await raw.open()
    await raw.batch([{ type: 'del', key: 'm!snapshot' }], true)
    await raw.close()
    const { r: a, kv: kvA } = await leveled(sim, new LevelKV(kvFirst.location as string), key)
    const { r: twin } = await leveled(sim, new LevelKV(twinDir), key)

    const treeNodes = (await meta<SnapshotMeta>(kvB, 'snapshot') as SnapshotMeta).blocks.length
    let fetched = 0
    const fromB = async (cids: CID[]): Promise<Uint8Array[]> => { const got = await b.blocks(cids); fetched += got.length; return got }
    assert.equal(await a.loadSnapshot(root2, fromB, b.id), true)
    assert.ok(fetched * 2 < treeNodes, `${fetched} blocks fetched of a tree of ${treeNodes}`)
    const diffFetched = fetched
    fetched = 0
    assert.equal(await twin.loadSnapshot(root2, fromB, b.id), true)
    assert.ok(fetched >= treeNodes - 1, `the twin walked the whole tree (${fetched} of ${treeNodes} blocks)`)
    assert.ok(diffFetched * 2 < fetched)

    const lines = await tree(a)
    assert.deepEqual(lines, await tree(twin), 'the same state as a merge of the whole tree')
    assert.deepEqual(a.state().clock, twin.state().clock)
    for (const path of edits.gone) assert.ok(!lines.some(l => l.startsWith(path + ' ')), `${path} removed`)
    for (const path of edits.mine) assert.ok(lines.some(l => l.startsWith(path + ' ')), `${path} present`)
    assert.ok(lines.includes(`${edits.mine[0]} ${file('b rewrote').cid.slice(-6)}`), 'b\'s rewrite is taken')
    assert.ok(lines.includes(`${edits.mine[1]} ${file('a rewrote').cid.slice(-6)}`), 'this replica\'s rewrite is kept')
    const snapA = await meta<SnapshotMeta>(kvA, 'snapshot') as SnapshotMeta
    assert.equal(snapA.tree, await fullBuildRoot(kvA), 'the merged snapshot is the one tree of the merged state')
    assert.deepEqual((await keys(kvA, 'b!')).map(k => k.slice(2)).sort(), [...snapA.blocks].sort(), 'every block stored is the snapshot\'s, and every node of it is stored')
    assert.equal(await walkOwn(kvA), lines.length)
    assert.deepEqual(await keys(kvA, 'x!'), [])

    // and back, against b's own (incrementally written) snapshot: b takes a's new file and rewrite (beside its own version,
    // whose signed entry b still holds: a snapshot alone does not remove it)
    fetched = 0
    const fromA = async (cids: CID[]): Promise<Uint8Array[]> => { const got = await a.blocks(cids); fetched += got.length; return got }
    assert.equal(await b.loadSnapshot(await a.snapshot(), fromA, a.id), true)
    assert.ok(fetched * 2 < treeNodes, `${fetched} blocks fetched back`)
    const back = await tree(b)
    assert.ok(back.some(l => l.startsWith('/d2/new-on-a ')))
    assert.ok(back.some(l => l.includes(file('a rewrote').cid.slice(-6))))
    // (the versions published again came after the merged snapshot, marked for the next one)
    await b.snapshot()
    assert.equal((await meta<SnapshotMeta>(kvB, 'snapshot') as SnapshotMeta).tree, await fullBuildRoot(kvB))
  })

  it('a snapshot replaced while a load is staged against it: the load stages again and merges right', async () => {
    const sim = { now: 1_000 }
    const { a, b, kvA, root2, edits } = await apart(sim)
    let requests = 0
    const fromB = async (cids: CID[]): Promise<Uint8Array[]> => {
      // a compaction here, mid-walk, replaces the snapshot the load stages against
      if (++requests === 2) {
        await a.putFile('/d3/written-mid-load', file('mid'))
        await a.snapshot()
      }
      return await b.blocks(cids)
    }
    assert.equal(await a.loadSnapshot(root2, fromB, b.id), true)
    const lines = await tree(a)
    for (const path of [...edits.mine, '/d3/written-mid-load']) assert.ok(lines.some(l => l.startsWith(path + ' ')), `${path} present`)
    for (const path of edits.gone) assert.ok(!lines.some(l => l.startsWith(path + ' ')), `${path} removed`)
    const snapA = await meta<SnapshotMeta>(kvA, 'snapshot') as SnapshotMeta
    assert.equal(snapA.tree, await fullBuildRoot(kvA))
    assert.deepEqual((await keys(kvA, 'b!')).map(k => k.slice(2)).sort(), [...snapA.blocks].sort())
    assert.deepEqual(await keys(kvA, 'x!'), [])
  })

  it('a merge against this replica\'s snapshot interrupted by a crash is finished at the next open', async () => {
    const sim = { now: 1_000 }
    const key = await generateKeyPair('Ed25519')
    const inner = await levelKV()
    const dying = new DyingKV(inner, ops => ops.some(op => op.key.startsWith('t!')), 1)
    const { a, b, root2, edits } = await apart(sim, dying, key)
    dying.armed = true
    await assert.rejects(a.loadSnapshot(root2, async cids => await b.blocks(cids), b.id), /injected crash/)
    const marker = await meta<{ base?: string }>(inner, 'merge')
    assert.equal(typeof marker?.base, 'string', 'the marker names the snapshot the merge was staged against')
    await inner.close()
    const { r: again, kv } = await leveled(sim, new LevelKV(inner.location as string), key)
    const lines = await tree(again)
    for (const path of edits.mine) assert.ok(lines.some(l => l.startsWith(path + ' ')), `${path} present`)
    for (const path of edits.gone) assert.ok(!lines.some(l => l.startsWith(path + ' ')), `${path} removed`)
    assert.equal(again.state().clock[b.id], b.state().clock[b.id])
    assert.equal(await meta(kv, 'merge'), undefined)
    assert.deepEqual(await keys(kv, 'x!'), [])
    const snap = await meta<SnapshotMeta>(kv, 'snapshot') as SnapshotMeta
    assert.equal(snap.tree, await fullBuildRoot(kv))
    assert.deepEqual((await keys(kv, 'b!')).map(k => k.slice(2)).sort(), [...snap.blocks].sort())
  })
})

describe('versions a merge keeps on this replica\'s word alone', () => {
  /**
   * `a` wrote /kept, `b` pulled it and removed it; `b`'s snapshot leaves the
   * version out, and `a`, which holds its signed entry and no entry that
   * removes it, keeps it and publishes it again as its own write.
   */
  async function leftOut (sim: { now: number }, a: Replica): Promise<{ b: Replica, root: CID }> {
    const { r: b } = await leveled(sim)
    await a.putFile('/kept', file('a wrote'))
    await pullInto(b, a)
    await b.remove('/kept')
    await b.putFile('/other', file('b wrote'))
    return { b, root: await b.snapshot() }
  }

  const kept = `/kept ${file('a wrote').cid.slice(-6)}`

  it('a crash after the merge is saved and before they are published again loses none: the next open publishes them', async () => {
    const sim = { now: 1_000 }
    const key = await generateKeyPair('Ed25519')
    const kv = await levelKV()
    let crash = true
    // the process dies once the merge's final batch is on disk, before the versions it kept are published again
    const faults = { afterMergeSaved: () => { if (crash) throw new Error('injected crash') } }
    const a = await replica(sim, { faults }, { kv, key })
    const { b, root } = await leftOut(sim, a)
    await assert.rejects(a.loadSnapshot(root, async cids => await b.blocks(cids), b.id), /injected crash/)
    // killed: nothing more reaches the store
    await kv.close()
    crash = false

    const { r: again, kv: kvAgain } = await leveled(sim, new LevelKV(kv.location as string), key)
    assert.ok((await tree(again)).includes(kept), 'the version is visible after the restart')
    assert.equal(again.state().clock[again.id], 2, 'published again: a new entry of this node')
    assert.equal(await meta(kvAgain, 'republish'), undefined, 'nothing left waiting')
    await pullInto(b, again)
    assert.ok((await tree(b)).includes(kept), 'the peer that left it out shows it again')
    // a second open publishes nothing more
    await again.close()
    const { r: third } = await leveled(sim, new LevelKV(kv.location as string), key)
    assert.equal(third.state().clock[third.id], 2)
  })

  it('a merge while this node recovers its own writes keeps them waiting, and publishes them once recovery ends', async () => {
    const sim = { now: 1_000 }
    const { r: a, kv } = await leveled(sim)
    const { b, root } = await leftOut(sim, a)
    // a member claims writes of a that a lacks: a recovers, its writes wait
    const mallory = signerFromKey(await generateKeyPair('Ed25519')).id
    a.noteMember(mallory, { [a.id]: 1000 })
    assert.equal(a.recovering, true)
    assert.equal(await a.loadSnapshot(root, async cids => await b.blocks(cids), b.id), true)
    assert.ok((await tree(a)).includes(kept))
    assert.equal(a.state().clock[a.id], 1, 'nothing written while recovering')
    assert.notEqual(await meta(kv, 'republish'), undefined, 'the versions wait, on disk')
    // the claim is not backed by entries: recovery ends, and the next write comes after the versions published again
    a.pulledFrom(mallory)
    assert.equal(a.recovering, false)
    await a.putFile('/after', file('after'))
    assert.equal(a.state().clock[a.id], 3)
    assert.equal(await meta(kv, 'republish'), undefined)
    await pullInto(b, a)
    assert.ok((await tree(b)).includes(kept), 'the peer that left it out shows it again')
  })
})
