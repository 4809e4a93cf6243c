/**
 * The durability store on a real LevelDB: manifest records noted without
 * an fsync are visible at once, written in one batch by the next sync, and
 * never lost by a close.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { HoldQuota, Holdings } from '../../../node/durability/index.js'
import { LevelKV, MemoryKV, type KVOp } from '../../../node/namespace/kv.js'
import { tempDir, defer } from '../../helpers/temp.js'

const record = (root: string, role: 'origin' | 'holder' = 'origin'): { root: string, k: number, m: number, role: 'origin' | 'holder', since: number } => ({ root, k: 1, m: 2, role, since: 1 })

describe('Holdings', () => {
  it('records since when no file refers to a manifest, clears it when one does, and a new hold or placement starts it over; a note meanwhile is kept', async t => {
    const holdings = new Holdings(new MemoryKV())
    await holdings.open()
    defer(t, async () => { await holdings.close() })
    await holdings.noteManifest('m1', record('r1'))
    await holdings.noteUnreferenced([['m1', 5_000], ['gone', 5_000]])
    assert.equal((await holdings.manifest('m1'))?.unreferencedSince, 5_000)
    assert.equal(await holdings.manifest('gone'), undefined, 'no record made for a manifest not here')
    await holdings.noteUnreferenced([['m1', undefined]])
    assert.equal((await holdings.manifest('m1'))?.unreferencedSince, undefined)
    await holdings.noteUnreferenced([['m1', 6_000]])
    await holdings.noteManifest('m1', record('r1', 'holder'))
    assert.equal((await holdings.manifest('m1'))?.unreferencedSince, undefined, 'held again: its grace starts over')
    // a placement noted while the mark is written is not lost
    const marking = holdings.noteUnreferenced([['m1', 7_000]])
    await holdings.noteManifest('m1', { ...record('r1'), placed: 42 })
    await marking
    const after = await holdings.manifest('m1')
    assert.equal(after?.placed, 42)
  })

  it('keeps records noted without sync readable, lists them, and writes them with the next sync', async t => {
    const dir = join(await tempDir(t), 'durability')
    let holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    defer(t, async () => { await holdings.close() })
    await holdings.noteManifest('m1', record('r1'), false)
    await holdings.noteManifest('m2', record('r2'), false)
    // a holder note never demotes an origin record, even before it is written
    await holdings.noteManifest('m1', record('r1', 'holder'), false)
    assert.equal((await holdings.manifest('m1'))?.role, 'origin')
    const listed: string[] = []
    for await (const [id] of holdings.manifests()) listed.push(id)
    assert.deepEqual(listed, ['m1', 'm2'])
    await holdings.noteManifest('m3', record('r3'), false)
    await holdings.sync()
    await holdings.forget('m2')
    await holdings.close()
    holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    assert.deepEqual((await holdings.manifest('m3'))?.root, 'r3')
    assert.equal(await holdings.manifest('m2'), undefined)
    const after: string[] = []
    for await (const [id] of holdings.manifests()) after.push(id)
    assert.deepEqual(after, ['m1', 'm3'])
  })

  it('writes unwritten records when it closes', async t => {
    const dir = join(await tempDir(t), 'durability')
    let holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    await holdings.noteManifest('m1', record('r1'), false)
    await holdings.close()
    holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    defer(t, async () => { await holdings.close() })
    assert.equal((await holdings.manifest('m1'))?.root, 'r1')
  })

  it('counts the bytes held for others through holds, re-holds (one without a peer keeps the peer), releases, forgets and a reopen', async t => {
    const dir = join(await tempDir(t), 'durability')
    let holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    const cid = CID.createV1(0x55, await sha256.digest(Uint8Array.of(1)))
    const shards = [{ ref: [0, 0] as [number, number], cid, size: 100 }, { ref: [0, 1] as [number, number], cid, size: 50 }, { ref: [3, 2] as [number, number], cid, size: 7 }]
    // this node's own shards do not count
    await holdings.hold('mine', shards, { now: 1 })
    assert.equal(await holdings.heldForOthers(), 0)
    assert.equal(await holdings.addedForOthers('theirs', shards), 157)
    await holdings.hold('theirs', shards, { now: 1, from: 'peer-a' })
    assert.equal(await holdings.heldForOthers(), 157)
    // a shard recorded again replaces its record, it is not counted twice
    assert.equal(await holdings.addedForOthers('theirs', shards.slice(0, 1)), 0)
    await holdings.hold('theirs', shards.slice(0, 1), { now: 2, from: 'peer-b' })
    assert.equal(await holdings.heldForOthers(), 157)
    // recorded again without a peer (rebuilt here): still held for the peer, still counted
    await holdings.hold('theirs', shards.slice(1, 2), { now: 3 })
    assert.equal(await holdings.heldForOthers(), 157)
    const rebuilt = []
    for await (const held of holdings.held('theirs', 0, 1)) rebuilt.push([held.shard, held.from, held.since])
    assert.deepEqual(rebuilt, [[0, 'peer-b', 2], [1, 'peer-a', 3]])
    await holdings.release('theirs', 3, 2)
    assert.equal(await holdings.heldForOthers(), 150)
    await holdings.close()
    // counted again from the records after a restart
    holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    defer(t, async () => { await holdings.close() })
    assert.equal(await holdings.heldForOthers(), 150)
    await holdings.forget('theirs')
    assert.equal(await holdings.heldForOthers(), 0)
  })
})

describe('Holdings: a store created by its open, and its recovery', () => {
  it('tells a store its open created from one that was there, and keeps a recovery until it ends', async t => {
    const dir = join(await tempDir(t), 'durability')
    let holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    assert.equal(holdings.created, true, 'no folder: created')
    await holdings.close()
    // opened before, still without any record: not taken for a new store again
    holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    assert.equal(holdings.created, false)
    assert.equal(await holdings.recovery(), undefined)
    await holdings.beginRecovery(5)
    // a recovery under way keeps its start
    await holdings.beginRecovery(9)
    await holdings.close()
    holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    defer(t, async () => { await holdings.close() })
    assert.deepEqual(await holdings.recovery(), { since: 5 }, 'durable across a restart')
    await holdings.endRecovery()
    assert.equal(await holdings.recovery(), undefined)
  })

  it('a store of an older version with records is not a created one', async t => {
    const dir = join(await tempDir(t), 'durability')
    const kv = new LevelKV(dir)
    await kv.open()
    await kv.batch([{ type: 'put', key: 'm!m1', value: new TextEncoder().encode(JSON.stringify(record('r1', 'holder'))) }], true)
    await kv.close()
    const holdings = new Holdings(new LevelKV(dir))
    await holdings.open()
    defer(t, async () => { await holdings.close() })
    assert.equal(holdings.created, false)
    assert.equal((await holdings.manifest('m1'))?.root, 'r1')
  })
})

describe('HoldQuota', () => {
  it('checks against maxForOthers, or half the free disk plus what is held', async () => {
    let held = 0
    const fixed = new HoldQuota({ heldForOthers: async () => held }, { maxForOthers: 1000 })
    await fixed.check(1000)
    held = 600
    await assert.rejects(fixed.check(401), (err: Error) => err.name === 'QuotaExceededError' && err.message.includes('600 held'))
    await fixed.check(400)
    const measured = new HoldQuota({ heldForOthers: async () => held }, { path: '/', freeBytes: async () => 2000 })
    assert.deepEqual(await measured.report(), { maxForOthers: 1600, heldForOthers: 600 })
    await measured.check(1000)
    await assert.rejects(measured.check(1001), { name: 'QuotaExceededError' })
    // no limit and no disk to measure: no quota
    assert.equal((await new HoldQuota({ heldForOthers: async () => 0 }).report()).maxForOthers, Infinity)
  })

  it('one more add of the same content writes its path, not every path so far (many identical files)', async () => {
    /** A store that counts the bytes of the rows written and read. */
    class CountingKV extends MemoryKV {
      written = 0
      read = 0
      override async batch (ops: KVOp[]): Promise<void> {
        for (const op of ops) this.written += op.key.length + (op.type === 'put' ? op.value.length : 0)
        await super.batch(ops)
      }

      override async get (key: string): Promise<Uint8Array | undefined> {
        const value = await super.get(key)
        this.read += value?.length ?? 0
        return value
      }
    }
    const kv = new CountingKV()
    const holdings = new Holdings(kv)
    await holdings.open()
    const root = CID.createV1(0x55, await sha256.digest(new Uint8Array([7])))
    const policy = 'replicas=3'
    const note = async (i: number): Promise<void> => { await holdings.noteDeferred(root, { policy, size: 4096, since: i, paths: [`/c/f${i}`] }, false) }
    for (let i = 0; i < 1000; i++) await note(i)
    kv.written = 0
    kv.read = 0
    await note(1000)
    // was the whole list of 1,001 paths rewritten and read back (~10 KB each)
    assert.ok(kv.written < 300, `bytes written by one add: ${kv.written}`)
    assert.ok(kv.read < 200, `bytes read by one add: ${kv.read}`)
    // the record still binds every path, and a drop of what was seen removes them all
    const record = await holdings.deferredOf(root, policy)
    assert.equal(record?.paths?.length, 1001)
    assert.ok(record?.paths?.includes('/c/f0') === true && record.paths.includes('/c/f1000'))
    assert.equal(await holdings.dropDeferredIf(root, record), true)
    assert.equal(await holdings.deferredOf(root, policy), undefined)
    for await (const [key] of kv.iterate({ gte: '', lt: '\xff' })) if (!key.startsWith('o!')) assert.fail(`row left: ${key}`) // the store's own marks (o!) stay
    // an add without paths after adds with paths: every visible file (no paths), as before
    await note(1)
    await holdings.noteDeferred(root, { policy, size: 4096, since: 2 }, false)
    assert.equal((await holdings.deferredOf(root, policy))?.paths, undefined)
    await holdings.close()
  })

  it('keeps one deferred record per content and policy; records of older versions (keyed by the root alone) are rekeyed at open', async () => {
    const kv = new MemoryKV()
    const holdings = new Holdings(kv)
    await holdings.open()
    const root = CID.createV1(0x55, await sha256.digest(new Uint8Array([8])))
    await holdings.noteDeferred(root, { policy: 'replicas:3', size: 3000, since: 1, paths: ['/y1/f'] }, false)
    await holdings.noteDeferred(root, { policy: 'ec:2+1', size: 3000, since: 2, paths: ['/y2/f'] }, false)
    // one record per root: the second add replaced the first, and /y1/f was never coded
    assert.deepEqual((await holdings.deferredOf(root, 'replicas:3'))?.paths, ['/y1/f'])
    assert.deepEqual((await holdings.deferredOf(root, 'ec:2+1'))?.paths, ['/y2/f'])
    const all: Array<[string, string, string[] | undefined]> = []
    for await (const [text, record] of holdings.deferred()) all.push([text, record.policy, record.paths])
    assert.deepEqual(all.sort(), [[root.toString(), 'ec:2+1', ['/y2/f']], [root.toString(), 'replicas:3', ['/y1/f']]])
    const seen = await holdings.deferredOf(root, 'ec:2+1')
    assert.ok(seen !== undefined)
    assert.equal(await holdings.dropDeferredIf(root, seen), true)
    assert.equal(await holdings.deferredOf(root, 'ec:2+1'), undefined)
    assert.deepEqual((await holdings.deferredOf(root, 'replicas:3'))?.paths, ['/y1/f'], 'the other policy still waits')
    await holdings.dropDeferred(root, 'replicas:3')
    for await (const [key] of kv.iterate({ gte: '', lt: '\xff' })) if (!key.startsWith('o!')) assert.fail(`row left: ${key}`) // the store's own marks (o!) stay
    await holdings.close()

    // a record as an older version wrote it
    const old = new MemoryKV()
    const other = CID.createV1(0x55, await sha256.digest(new Uint8Array([9])))
    const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value))
    await old.open()
    await old.batch([
      { type: 'put', key: `d!${other.toString()}`, value: json({ policy: 'ec:4+2', size: 9, since: 3, rev: 2, bound: true }) },
      { type: 'put', key: `dp!${other.toString()}\x00/a`, value: json(1) },
      { type: 'put', key: `dp!${other.toString()}\x00/b`, value: json(2) }
    ])
    const reopened = new Holdings(old)
    await reopened.open()
    const moved = await reopened.deferredOf(other, 'ec:4+2')
    assert.deepEqual(moved?.paths, ['/a', '/b'])
    assert.equal(moved?.since, 3)
    assert.equal(await reopened.dropDeferredIf(other, moved), true)
    for await (const [key] of old.iterate({ gte: '', lt: '\xff' })) if (!key.startsWith('o!')) assert.fail(`row left: ${key}`) // the store's own marks (o!) stay
    await reopened.close()
  })
})
