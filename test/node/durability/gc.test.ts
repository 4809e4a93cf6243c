/**
 * Garbage collection on a real LevelDB block store and namespace: it never
 * takes a block of a visible file or of a write in flight, even while
 * writes, removals and collections run at the same time; it does take the
 * blocks of removed files.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { createNamespace, signerFromKey, MemoryKV } from '../../../node/namespace/index.js'
import { Files } from '../../../node/files/index.js'
import { parseChunker } from '../../../node/content/index.js'
import { collectGarbage, GcLock, Holdings, RemovalClocks } from '../../../node/durability/index.js'
import { namespaceClocksOf } from '../../helpers/namespace-clocks.js'
import { RECOVERY_MAX_MS } from '../../../node/durability/reclaim.js'
import { defer, openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as dagPb from '@ipld/dag-pb'
import { flipRecord } from '../blocks/fixtures.js'

const logger = pino({ level: 'silent' })
const chunker = parseChunker('size-65536')

/** A block store (in `dir`, else a new temp dir), a namespace and files over them, and a collection of both. */
async function setup (t: CleanupContext, dir?: string): Promise<{ files: Files, gc: () => ReturnType<typeof collectGarbage>, blockstore: Awaited<ReturnType<typeof openBlockStore>> }> {
  const blockstore = await openBlockStore(t, dir)
  const namespace = createNamespace({ path: await tempDir(t), signer: signerFromKey(await generateKeyPair('Ed25519')), logger })
  await namespace.open()
  defer(t, async () => { await namespace.close() })
  const holdings = new Holdings(new MemoryKV())
  const lock = new GcLock()
  const files = new Files({ blockstore, namespace, logger, gcLock: lock })
  const gc = async (): ReturnType<typeof collectGarbage> => await collectGarbage({ blockstore, holdings, files: () => namespace.files(), lock, logger }, 0)
  return { files, gc, blockstore }
}

/** A block store, an open replica and an open holdings store in temp dirs, closed when the test ends. */
async function stores (t: CleanupContext): Promise<{ blockstore: Awaited<ReturnType<typeof openBlockStore>>, namespace: ReturnType<typeof createNamespace>, holdings: Holdings }> {
  const blockstore = await openBlockStore(t)
  const namespace = createNamespace({ path: await tempDir(t), signer: signerFromKey(await generateKeyPair('Ed25519')), logger })
  await namespace.open()
  defer(t, async () => { await namespace.close() })
  const holdings = new Holdings(new MemoryKV())
  await holdings.open()
  defer(t, async () => { await holdings.close() })
  return { blockstore, namespace, holdings }
}

async function readAll (files: Files, path: string): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of files.cat(path)) chunks.push(c)
  return Buffer.concat(chunks)
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Bytes in pieces, yielding to the event loop between them (so collections interleave). */
async function * slowly (bytes: Uint8Array, gate?: Promise<void>): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += 50_000) {
    if (i > 0 && gate !== undefined) await gate
    await new Promise(resolve => setImmediate(resolve))
    yield bytes.subarray(i, i + 50_000)
  }
}

describe('garbage collection', () => {
  it('keeps every visible file and takes removed ones, with writes and collections running together', { timeout: 120_000 }, async t => {
    const { files, gc } = await setup(t)
    const content = new Map<string, Buffer>()
    const writes: Array<Promise<unknown>> = []
    let collections = 0
    let removedTotal = 0
    let stop = false
    const collector = (async () => {
      while (!stop) {
        const r = await gc()
        collections++
        removedTotal += r.removed
        await new Promise(resolve => setTimeout(resolve, 5))
      }
    })()
    for (let i = 0; i < 24; i++) {
      const data = randomBytes(200_000 + i * 7919)
      const path = `/f${i}.bin`
      content.set(path, data)
      writes.push(files.add(path, slowly(data), { chunker, pin: 'none' }).then(async () => {
        // every third file is removed again once written
        if (i % 3 === 0) { await files.rm(path); content.delete(path) }
      }))
    }
    await Promise.all(writes)
    stop = true
    await collector
    assert.ok(collections >= 2, `collections ran during the writes (${collections})`)
    const final = await gc()
    assert.ok(removedTotal + final.removed > 0, 'the removed files\' blocks were collected')
    for (const [path, data] of content) assert.equal(sha(await readAll(files, path)), sha(data), `${path} intact`)
    // nothing left to take
    assert.equal((await gc()).removed, 0)
  })

  it('waits for a write in flight and keeps blocks put while it runs', { timeout: 60_000 }, async t => {
    const { files, gc, blockstore } = await setup(t)
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    const data = randomBytes(400_000)
    const writing = files.add('/slow.bin', slowly(data, gate), { chunker, pin: 'none' })
    await new Promise(resolve => setTimeout(resolve, 100))
    let collected = false
    const collecting = gc().then(r => { collected = true; return r })
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(collected, false, 'the collection waits for the write in flight')
    open()
    await writing
    const r = await collecting
    assert.equal(r.removed, 0)
    assert.equal(sha(await readAll(files, '/slow.bin')), sha(data))
    // a block that no file refers to, put while a collection runs, survives that collection
    const stray = randomBytes(1000)
    const cid = CID.createV1(0x55, await sha256.digest(stray))
    const during = gc()
    await blockstore.put(cid, stray)
    await during
    assert.equal(await blockstore.has(cid), true, 'kept by the collection it raced')
    await gc()
    assert.equal(await blockstore.has(cid), false, 'taken by the next one')
  })

  it('while the holdings store recovers, removes no unmarked block, for a day at most', async t => {
    const { blockstore, namespace, holdings } = await stores(t)
    let now = 1_000
    const gc = async (): ReturnType<typeof collectGarbage> => await collectGarbage({ blockstore, holdings, files: () => namespace.files(), lock: new GcLock(), logger, clock: { now: () => now } }, 0)
    // a block no file refers to: a shard held here, as far as a store moved aside can tell
    const stray = randomBytes(1000)
    const cid = CID.createV1(0x55, await sha256.digest(stray))
    await blockstore.put(cid, stray)
    await blockstore.commit()
    await holdings.beginRecovery(now)
    const kept = await gc()
    assert.deepEqual([kept.removed, kept.keptRecovering], [0, 1])
    assert.equal(await blockstore.has(cid), true)
    now += RECOVERY_MAX_MS - 1
    assert.equal((await gc()).keptRecovering, 1, 'kept until a day has passed')
    now += 1
    const taken = await gc()
    assert.deepEqual([taken.removed, taken.keptRecovering], [1, 0], 'a recovery that never ended keeps nothing after a day')
    assert.equal(await blockstore.has(cid), false)
  })

  it('removes no unmarked block while an inner node of a visible file cannot be read', { timeout: 60_000 }, async t => {
    const dir = await tempDir(t)
    const { files, gc, blockstore } = await setup(t, dir)
    const data = randomBytes(400_000)
    const { cid } = await files.add('/keep.bin', slowly(data), { chunker, pin: 'none' })
    await files.add('/gone.bin', slowly(randomBytes(200_000)), { chunker, pin: 'none' })
    await files.rm('/gone.bin')
    const root = CID.parse(cid)
    const rootBytes = await blockstore.getBytes(root)
    const leaves = dagPb.decode(rootBytes).Links.map(l => l.Hash)
    assert.ok(leaves.length > 1)
    await blockstore.commit()
    // one bit of the file's root rots on disk: its leaves are intact, and still the file's
    const loc = await blockstore.locate(root)
    assert.ok(loc !== undefined)
    await flipRecord(dir, loc)
    const kept = await gc()
    assert.equal(kept.removed, 0, 'nothing removed while the marks cannot be complete')
    assert.equal(kept.keptUnreadable, leaves.length + 5, 'the leaves below the root, and the removed file\'s root and 4 leaves, kept and counted')
    for (const leaf of leaves) assert.equal(await blockstore.has(leaf), true, `leaf ${leaf.toString()} kept`)
    // the root put again (an add of the same bytes, a fetch from a peer) replaces the bad copy: the file reads whole, and garbage goes again
    await blockstore.put(root, rootBytes)
    const taken = await gc()
    assert.deepEqual([taken.removed, taken.keptUnreadable], [5, 0])
    assert.equal(sha(await readAll(files, '/keep.bin')), sha(data))
  })

  it('reads who has seen a removal before it walks the visible files: a member heard during the walk settles it for the next collection, not this one', async t => {
    const blockstore = await openBlockStore(t)
    const holdings = new Holdings(new MemoryKV())
    await holdings.open()
    defer(t, async () => { await holdings.close() })
    const cidOf = async (text: string): Promise<CID> => CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(text)))
    const manifest = (await cidOf('manifest')).toString()
    await holdings.noteManifest(manifest, { root: (await cidOf('root')).toString(), k: 1, m: 2, role: 'holder', since: 1 })
    const now = { t: 10_000 }
    const { ns, members } = namespaceClocksOf(now, { self: 4 })
    members.noteMember('p', { self: 3 })
    const removals = new RemovalClocks({ namespace: ns, clock: { now: () => now.t } })
    // a walk found it unreferenced under the clock {self: 4}; p has not seen that yet
    await holdings.noteUnreferenced([[manifest, removals.beginWalk().mark()]])
    now.t = 20_000
    // p is heard from, having seen the removal, while the collection walks the visible files
    async function * files (): AsyncGenerator<never> { members.noteMember('p', { self: 4 }) }
    const gc = async (): ReturnType<typeof collectGarbage> => await collectGarbage({ blockstore, holdings, files, lock: new GcLock(), logger, clock: { now: () => now.t }, removals }, 1_000)
    const first = await gc()
    assert.deepEqual([first.forgotten, first.keptUnsettled], [0, 1], 'read before p was heard')
    const second = await gc()
    assert.deepEqual([second.forgotten, second.keptUnsettled], [1, 0])
    assert.equal(await holdings.manifest(manifest), undefined)
  })

  it('a file that refers to a removed manifest again, added and removed between two collections, starts its grace over: the namespace tells of it', async t => {
    const { blockstore, namespace, holdings } = await stores(t)
    const now = { t: 10_000 }
    // the replica is the seam, as in a node; alone, every removal is settled once its mark stands
    const removals = new RemovalClocks({ namespace, clock: { now: () => now.t } })
    namespace.onReferences(removals)
    const cidOf = async (text: string, codec: number): Promise<string> => CID.createV1(codec, await sha256.digest(new TextEncoder().encode(text))).toString()
    // a manifest is dag-cbor, a root raw here
    const manifest = await cidOf('manifest', 0x71)
    const root = await cidOf('root', 0x55)
    await holdings.noteManifest(manifest, { root, k: 1, m: 2, role: 'holder', since: 1 })
    const gc = async (): ReturnType<typeof collectGarbage> => await collectGarbage({ blockstore, holdings, files: () => namespace.files(), lock: new GcLock(), logger, clock: { now: () => now.t }, removals }, 1_000)
    assert.equal((await gc()).keptUnreferenced, 1)
    const since = (await holdings.manifest(manifest))?.unreferencedSince
    assert.notEqual(since, undefined)
    // between two collections, a file pinned to it is added and removed again
    await namespace.putFile('/f.bin', { cid: root, size: 1, mode: 0o644, mtime: 1, pin: { policy: 'ec:1+2', manifest } })
    await namespace.remove('/f.bin')
    now.t = 20_000
    const second = await gc()
    assert.deepEqual([second.forgotten, second.keptUnreferenced], [0, 1], 'past its grace, but its mark is older than the file')
    assert.ok(((await holdings.manifest(manifest))?.unreferencedSince ?? 0) > (since ?? 0), 'its grace starts over')
    now.t = 30_000
    assert.equal((await gc()).forgotten, 1)
  })
})
