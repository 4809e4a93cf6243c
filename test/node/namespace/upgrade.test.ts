/**
 * Stores written by older builds open: the single-node namespace's records
 * are migrated into the replica, a development build's heads (CID strings)
 * get their dots from the stored entries, and what cannot be upgraded without
 * losing data is refused with a NamespaceFormatError that changes nothing.
 * The old bytes are written directly with classic-level, as those builds
 * wrote them.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ClassicLevel } from 'classic-level'
import { CID } from 'multiformats/cid'
import type { PrivateKey } from '@libp2p/interface'
import { cborCID, createNamespace, signerFromKey, type Replica } from '../../../node/namespace/index.js'
import { decodeEntry, decodeSnapshotRoot, encodeEntry, encodeEntryBody, type EntryBody } from '../../../protocol/namespace.js'
import { defer, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { cidOf, converged, pullInto, replica, silent, tree } from './helpers.js'

const T0 = 1_700_000_000_000
const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

/** Raw access to a store's LevelDB, as the old builds had it. */
async function raw<T> (dir: string, fn: (db: ClassicLevel<string, Uint8Array>) => Promise<T>): Promise<T> {
  const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
  await db.open()
  try {
    return await fn(db)
  } finally {
    await db.close()
  }
}

async function keys (dir: string, range: { gte: string, lt: string }): Promise<string[]> {
  return await raw(dir, async db => await db.keys(range).all())
}

/** The head rows (`h!<cid>` → dot) of a store, in key order. */
async function headRows (dir: string): Promise<Array<[string, [string, number]]>> {
  const rows = await raw(dir, async db => await db.iterator({ gt: 'h!', lt: 'h"' }).all())
  return rows.map(([key, value]) => [key.slice(2), JSON.parse(new TextDecoder().decode(value))])
}

async function openAt (t: CleanupContext, dir: string, key?: PrivateKey): Promise<Replica> {
  const ns = createNamespace({ path: dir, signer: signerFromKey(key ?? await generateKeyPair('Ed25519')), logger: silent, clock: { now: () => T0 + 60_000 } })
  await ns.open()
  defer(t, async () => { await ns.close() })
  return ns
}

async function rejectsFormat (p: Promise<unknown>, why: RegExp): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.name, 'NamespaceFormatError')
    assert.match(err.message, why)
    assert.match(err.message, /Nothing was changed/)
    return true
  })
}

// ---------------------------------------------------------------------------
// the single-node namespace: `<parent>\0<name>` → JSON record

const LEGACY = { gte: '/', lt: '0' }

async function writeLegacy (dir: string, records: Record<string, unknown>): Promise<void> {
  await raw(dir, async db => {
    await db.batch(Object.entries(records).map(([key, value]) => ({ type: 'put' as const, key, value: json(value) })))
  })
}

describe('upgrade: the single-node namespace', () => {
  it('migrates every record as a local write of this node, then removes the old keys, in one go', async (t) => {
    const dir = join(await tempDir(t), 'ns')
    await writeLegacy(dir, {
      '/\0docs': { type: 'dir', mode: 0o755, mtime: T0 },
      '/docs\0a.txt': { type: 'file', cid: cidOf('a'), size: 5, mode: 0o640, mtime: T0 + 1000 },
      '/docs\0sub': { type: 'dir', mode: 0o750, mtime: T0 + 2000 },
      '/docs/sub\0b.bin': { type: 'file', cid: cidOf('b'), size: 7, mode: 0o100644, mtime: T0 + 3000.75 },
      '/\0empty': { type: 'dir', mode: 0o700, mtime: T0 + 4000 },
      '/\0top': { type: 'file', cid: 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', size: 0, mode: 0o644, mtime: T0 }
    })
    const key = await generateKeyPair('Ed25519')
    const ns = await openAt(t, dir, key)
    const seen: Array<Record<string, unknown>> = []
    for await (const e of ns.walk('/')) seen.push(e.type === 'file' ? { path: e.path, cid: e.cid, size: e.size, mode: e.mode, mtime: e.mtime } : { path: e.path, mode: e.mode, mtime: e.mtime })
    assert.deepEqual(seen, [
      { path: '/docs', mode: 0o755, mtime: T0 },
      { path: '/docs/a.txt', cid: cidOf('a'), size: 5, mode: 0o640, mtime: T0 + 1000 },
      { path: '/docs/sub', mode: 0o750, mtime: T0 + 2000 },
      // permission bits only; whole milliseconds
      { path: '/docs/sub/b.bin', cid: cidOf('b'), size: 7, mode: 0o644, mtime: T0 + 3000 },
      { path: '/empty', mode: 0o700, mtime: T0 + 4000 },
      { path: '/top', cid: 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', size: 0, mode: 0o644, mtime: T0 }
    ])
    const me = signerFromKey(key).id
    assert.deepEqual(ns.state().clock, { [me]: 1 }, 'one entry by this node')
    assert.deepEqual(await ns.conflicts(), [])
    // the entries are ordinary signed entries: another replica takes them
    const other = await replica({ now: T0 })
    await pullInto(other, ns)
    await converged([ns, other])
    await ns.close()
    assert.deepEqual(await keys(dir, LEGACY), [], 'old keys removed')
    // opening again migrates nothing more
    const again = await openAt(t, dir, key)
    assert.deepEqual(again.state().clock, { [me]: 1 })
    assert.equal((await tree(again)).length, 6)
  })

  it('a record at a path the replica already holds stays visible next to it (nothing is overwritten)', async (t) => {
    const dir = join(await tempDir(t), 'ns')
    // a build that did not migrate opened the store and wrote into the replica
    const first = createNamespace({ path: dir, signer: signerFromKey(await generateKeyPair('Ed25519')), logger: silent })
    await first.open()
    await first.putFile('/docs/a.txt', { cid: cidOf('new'), size: 3, mode: 0o644, mtime: T0 + 10_000 })
    await first.putFile('/same', { cid: cidOf('same'), size: 4, mode: 0o644, mtime: T0 })
    await first.close()
    await writeLegacy(dir, {
      '/\0docs': { type: 'dir', mode: 0o755, mtime: T0 },
      '/docs\0a.txt': { type: 'file', cid: cidOf('old'), size: 3, mode: 0o644, mtime: T0 + 5_000 },
      '/\0same': { type: 'file', cid: cidOf('same'), size: 4, mode: 0o644, mtime: T0 },
      '/\0only-old': { type: 'file', cid: cidOf('only'), size: 4, mode: 0o644, mtime: T0 }
    })
    const ns = await openAt(t, dir)
    const a = await ns.stat('/docs/a.txt')
    assert.equal(a.type === 'file' && a.cid, cidOf('new'), 'the later mtime wins')
    const conflicts = await ns.conflicts()
    assert.equal(conflicts.length, 1)
    assert.equal(conflicts[0].path, '/docs/a.txt')
    assert.equal(conflicts[0].cid, cidOf('old'), 'the old record is a conflict copy, not lost')
    assert.ok(await ns.lookup('/only-old') !== undefined)
    assert.ok(await ns.lookup('/same') !== undefined)
    assert.equal((await ns.list('/')).filter(e => e.name.startsWith('same')).length, 1, 'an identical file is not doubled')
  })

  it('refuses records that build could not have written, changing nothing', async (t) => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ '/\0good': { type: 'dir', mode: 0o755, mtime: T0 }, '/\0bad': { type: 'file', cid: 'not-a-cid', size: 1, mode: 0o644, mtime: T0 } }, /"\/\\u0000bad" has cid/],
      [{ '/no-separator': { type: 'dir', mode: 0o755, mtime: T0 } }, /not <parent>/],
      [{ '/\0a/b': { type: 'dir', mode: 0o755, mtime: T0 } }, /no valid path/],
      [{ '/\0x': { type: 'link', mode: 0o755, mtime: T0 } }, /has type "link"/],
      [{ '/\0x': { type: 'file', cid: cidOf('x'), size: -1, mode: 0o644, mtime: T0 } }, /has size -1/],
      [{ '/\0x': [1, 2] }, /not a record/]
    ]
    for (const [records, why] of cases) {
      const dir = join(await tempDir(t), 'ns')
      await writeLegacy(dir, records)
      const ns = createNamespace({ path: dir, signer: signerFromKey(await generateKeyPair('Ed25519')), logger: silent })
      await rejectsFormat(ns.open(), why)
      // the store was closed (no lock held) and is as it was
      assert.deepEqual(await keys(dir, LEGACY), Object.keys(records).sort())
      assert.deepEqual(await keys(dir, { gte: 'a', lt: 'z' }), [])
    }
    // not JSON at all
    const dir = join(await tempDir(t), 'ns')
    await raw(dir, async db => { await db.put('/\0x', new Uint8Array([0xff, 0x00])) })
    await rejectsFormat(createNamespace({ path: dir, signer: signerFromKey(await generateKeyPair('Ed25519')), logger: silent }).open(), /not JSON/)
  })
})

// ---------------------------------------------------------------------------
// the development build: m!heads = [cid, …] and snapshot roots without headDots

interface DevStore { heads: string[], me: PrivateKey, other: PrivateKey }

async function sign (key: PrivateKey, body: EntryBody): Promise<{ bytes: Uint8Array, cid: string }> {
  const sig = await key.sign(encodeEntryBody(body))
  const bytes = encodeEntry({ ...body, sig })
  return { bytes, cid: cborCID(bytes).toString() }
}

/**
 * What the development build left after this node wrote `/a`, a peer wrote
 * `/b` concurrently, both were applied, and a snapshot was taken: two heads
 * (CID strings). `pruneOther` drops the peer's entry as compaction would.
 */
async function writeDevStore (dir: string, pruneOther = false): Promise<DevStore> {
  const me = await generateKeyPair('Ed25519')
  const other = await generateKeyPair('Ed25519')
  const [idMe, idOther] = [signerFromKey(me).id, signerFromKey(other).id]
  const writes = [
    { key: me, author: idMe, path: '/a', cid: cidOf('a') },
    { key: other, author: idOther, path: '/b', cid: cidOf('b') }
  ]
  const ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }> = []
  const heads: string[] = []
  const versions: Array<[string, unknown]> = []
  for (const w of writes) {
    const { bytes, cid } = await sign(w.key, {
      v: 1, author: w.author, seq: 1, time: T0, clock: { [w.author]: 1 }, parents: [],
      ops: [{ op: 'put', path: w.path, cid: CID.parse(w.cid), size: 1, mode: 0o644, mtime: T0, replaces: [] }]
    })
    heads.push(cid)
    const version = { author: w.author, seq: 1, time: T0, type: 'file', cid: w.cid, size: 1, mode: 0o644, mtime: T0 }
    versions.push([w.path, version])
    if (!(pruneOther && w.key === other)) {
      ops.push({ type: 'put', key: 'e!' + cid, value: bytes })
      ops.push({ type: 'put', key: `s!${w.author}!${'1'.padStart(15, '0')}`, value: json({ cid, w: 1 }) })
    }
    ops.push({ type: 'put', key: 'v!' + w.path, value: json({ versions: [version], copies: [] }) })
    ops.push({ type: 'put', key: 't!/\0' + w.path.slice(1), value: json({ type: 'file', cid: w.cid, size: 1, mode: 0o644, mtime: T0, dots: [[w.author, 1]] }) })
  }
  heads.sort()
  const clock = { [idMe]: 1, [idOther]: 1 }
  // that build's snapshot: a flat shard of paths, a root without headDots
  const shard = dagCbor.encode({ v: 1, paths: versions.map(([p, v]: [string, any]) => [p, [{ ...v, cid: CID.parse(v.cid) }]]) })
  const shardCid = cborCID(shard)
  const body = { v: 1, author: idMe, time: T0, clock, heads: heads.map(h => CID.parse(h)), count: 2, shards: [shardCid] }
  const root = dagCbor.encode({ ...body, sig: await me.sign(dagCbor.encode(body)) })
  const rootCid = cborCID(root)
  ops.push({ type: 'put', key: 'b!' + shardCid.toString(), value: shard })
  ops.push({ type: 'put', key: 'b!' + rootCid.toString(), value: root })
  ops.push({ type: 'put', key: 'm!snapshot', value: json({ root: rootCid.toString(), clock, blocks: [shardCid.toString(), rootCid.toString()] }) })
  ops.push({ type: 'put', key: 'm!clock', value: json(clock) })
  ops.push({ type: 'put', key: 'm!heads', value: json(heads) })
  ops.push({ type: 'put', key: 'm!members', value: json({}) })
  if (pruneOther) ops.push({ type: 'put', key: 'm!pruned', value: json({ [idOther]: 1 }) })
  await raw(dir, async db => { await db.batch(ops) })
  return { heads, me, other }
}

describe('upgrade: heads without dots (development build)', () => {
  it('reads each head\'s dot from its entry, rewrites the snapshot, and goes on as usual', async (t) => {
    const dir = join(await tempDir(t), 'ns')
    const { heads, me, other } = await writeDevStore(dir)
    const oldSnapshot = await raw(dir, async db => await db.get('m!snapshot'))
    const first = await openAt(t, dir, me)
    assert.deepEqual(first.state().heads.map(String), heads)
    assert.deepEqual(await tree(first), [`/a ${cidOf('a').slice(-6)}`, `/b ${cidOf('b').slice(-6)}`])
    await first.close()
    const stored = await headRows(dir)
    const dots = new Map([[signerFromKey(me).id, 1], [signerFromKey(other).id, 1]])
    assert.equal(stored.length, 2)
    for (const [cid, dot] of stored) {
      assert.ok(heads.includes(cid))
      assert.equal(dots.get(dot[0]), dot[1])
    }
    assert.equal(await raw(dir, async db => await db.get('m!heads')), undefined, 'the heads record became rows')
    // clock and members moved to one row per author and per member (a commit writes only what it changed)
    const keys = await raw(dir, async db => await db.keys().all())
    assert.ok(!keys.includes('m!clock') && !keys.includes('m!members'), 'the whole-clock and whole-members records are gone')
    assert.deepEqual(keys.filter(k => k.startsWith('k!')).sort(), [...dots.keys()].map(id => 'k!' + id).sort())
    // the snapshot was rewritten in today's format: peers can bootstrap from it
    const meta = await raw(dir, async db => JSON.parse(new TextDecoder().decode(await db.get('m!snapshot'))))
    assert.notDeepEqual(meta, JSON.parse(new TextDecoder().decode(oldSnapshot)))
    const oldBlocks: string[] = JSON.parse(new TextDecoder().decode(oldSnapshot)).blocks
    assert.ok(oldBlocks.every(b => !keys.includes('b!' + b)), 'the old format\'s shard and root are deleted')
    assert.ok(meta.blocks.every((b: string) => keys.includes('b!' + b)))
    const ns = await openAt(t, dir, me)
    assert.deepEqual(ns.state().heads.map(String), heads)
    const [rootBytes] = await ns.blocks([CID.parse(meta.root)])
    const rootRead = decodeSnapshotRoot(rootBytes)
    assert.ok(rootRead.v !== 3 && rootRead.headDots.length === 2)
    const fresh = await replica({ now: T0 })
    assert.equal(await fresh.loadSnapshot(CID.parse(meta.root), async cids => await ns.blocks(cids), signerFromKey(me).id), true)
    assert.deepEqual(await tree(fresh), await tree(ns))
    // a new write names both heads as parents and becomes the only head
    const sent: Uint8Array[] = []
    ns.onLocalEntries(e => sent.push(...e))
    await ns.putFile('/c', { cid: cidOf('c'), size: 1, mode: 0o644, mtime: T0 })
    const written = decodeEntry(sent[0])
    assert.deepEqual(written.parents.map(String).sort(), heads)
    // written as v2: the parents' dots instead of a clock
    assert.equal(written.v, 2)
    assert.deepEqual(written.v === 2 ? [...written.deps].sort() : [], [...dots].sort())
    assert.equal(ns.state().heads.length, 1)
    const peer = await replica({ now: T0 })
    await pullInto(peer, ns)
    await converged([ns, peer])
  })

  it('a snapshot of an older build (flat shards, no tips) is written again as a tree with tips at open', async (t) => {
    const dir = join(await tempDir(t), 'ns')
    const { heads, me } = await writeDevStore(dir)
    // heads already in today's format: only the snapshot is old
    await raw(dir, async db => {
      const dotted = []
      for (const cid of heads) dotted.push([cid, (e => [e.author, e.seq])(decodeEntry(await db.get('e!' + cid) as Uint8Array))])
      await db.put('m!heads', json(dotted))
    })
    const old = await raw(dir, async db => JSON.parse(new TextDecoder().decode(await db.get('m!snapshot'))))
    await (await openAt(t, dir, me)).close()
    const meta = await raw(dir, async db => JSON.parse(new TextDecoder().decode(await db.get('m!snapshot'))))
    assert.notEqual(meta.root, old.root)
    const ns = await openAt(t, dir, me)
    const [rootBytes] = await ns.blocks([CID.parse(meta.root)])
    const root = decodeSnapshotRoot(rootBytes)
    assert.equal(root.count, 2)
    assert.ok(root.v !== 3 && root.tips.length === 2, 'each author\'s newest entry is named')
    // the old blocks are gone
    assert.deepEqual(await ns.blocks(old.blocks.map((b: string) => CID.parse(b))), [])
    const fresh = await replica({ now: T0 })
    assert.equal(await fresh.loadSnapshot(CID.parse(meta.root), async cids => await ns.blocks(cids), signerFromKey(me).id), true)
    assert.deepEqual(await tree(fresh), await tree(ns))
  })

  it('refuses when a head\'s entry is no longer stored, changing nothing', async (t) => {
    const dir = join(await tempDir(t), 'ns')
    const { heads, me } = await writeDevStore(dir, true)
    const before = await raw(dir, async db => await db.iterator().all())
    const ns = createNamespace({ path: dir, signer: signerFromKey(me), logger: silent })
    await rejectsFormat(ns.open(), /development build.*no longer stored.*Move .* aside/s)
    const after = await raw(dir, async db => await db.iterator().all())
    assert.deepEqual(after, before)
    assert.deepEqual(JSON.parse(new TextDecoder().decode(after.find(([k]) => k === 'm!heads')?.[1])), heads)
  })

  it('refuses a heads record no build wrote', async (t) => {
    for (const value of [{ a: 1 }, [1, 2], [['x', ['a', 0]]], 'not json']) {
      const dir = join(await tempDir(t), 'ns')
      await raw(dir, async db => { await db.put('m!heads', typeof value === 'string' ? new TextEncoder().encode(value) : json(value)) })
      await rejectsFormat(createNamespace({ path: dir, signer: signerFromKey(await generateKeyPair('Ed25519')), logger: silent }).open(), /m!heads/)
    }
  })
})

describe('upgrade: the heads as one record (m!heads)', () => {
  it('becomes one row per head at open; a write then deletes the rows of the heads it replaces and adds its own', async (t) => {
    const dir = join(await tempDir(t), 'ns')
    const { heads, me } = await writeDevStore(dir)
    const dotted: Array<[string, [string, number]]> = []
    await raw(dir, async db => {
      for (const cid of heads) dotted.push([cid, (e => [e.author, e.seq] as [string, number])(decodeEntry(await db.get('e!' + cid) as Uint8Array))])
      await db.put('m!heads', json(dotted))
    })
    const ns = await openAt(t, dir, me)
    assert.deepEqual(ns.state().heads.map(String), heads)
    await ns.close()
    assert.deepEqual(await headRows(dir), dotted)
    assert.equal(await raw(dir, async db => await db.get('m!heads')), undefined)
    // opened again: the heads come from the rows
    const again = await openAt(t, dir, me)
    assert.deepEqual(again.state().heads.map(String), heads)
    await again.putFile('/c', { cid: cidOf('c'), size: 1, mode: 0o644, mtime: T0 })
    const [head] = again.state().heads.map(String)
    await again.close()
    assert.deepEqual(await headRows(dir), [[head, [signerFromKey(me).id, 2]]], 'the two replaced heads\' rows are gone')
  })

  it('refuses a head row that holds no dot, changing nothing', async (t) => {
    const dir = join(await tempDir(t), 'ns')
    await raw(dir, async db => { await db.put('h!' + cidOf('x'), json(['author', 0])) })
    const before = await raw(dir, async db => await db.iterator().all())
    await rejectsFormat(createNamespace({ path: dir, signer: signerFromKey(await generateKeyPair('Ed25519')), logger: silent }).open(), /head row h!.* holds no dot/)
    assert.deepEqual(await raw(dir, async db => await db.iterator().all()), before)
  })
})
