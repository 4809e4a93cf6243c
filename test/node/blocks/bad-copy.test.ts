/**
 * A put of a block whose local copy is bad replaces that copy. Real stores on
 * disk, records damaged in their pack files while the store is closed.
 *
 * Found by probing: after a record's bytes were flipped on disk, `shoal add`
 * of the very same file reported success and the file stayed unreadable (the
 * put found the block indexed and kept the bad copy). A read that finds an
 * indexed record failing its check now marks the entry; `has` is then false
 * and the next put writes the block anew (docs/blockstore.md, "A bad copy is
 * replaced by the next put").
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { rename, stat } from 'node:fs/promises'
import { ClassicLevel } from 'classic-level'
import { decodeLocation, indexKey, type Location } from '../../../node/blocks/pack-index.js'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { openBlockStore, tempDir, type CleanupContext, type OpenBlockStoreOptions } from '../../helpers/temp.js'
import { blocksOf, flipRecord, packFiles, rejectsNamed } from './fixtures.js'

const KiB = 1024
const SIZE = 16 * KiB
/** One pack holds every block; nothing compacts unless asked. */
const OPTIONS: OpenBlockStoreOptions = { autoCompact: false }

type Blocks = ReturnType<typeof blocksOf>

/** Where the index of the closed store at `dir` places each block. */
async function locations (dir: string, blocks: Blocks): Promise<Location[]> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  try {
    return await Promise.all(blocks.map(async b => decodeLocation(await db.get(indexKey(b.cid.multihash.bytes)) as Uint8Array)))
  } finally {
    await db.close()
  }
}

/** A closed store in a new directory holding `blocks`, committed; block `victim`'s record flipped on disk. */
async function storeWithBadCopy (t: CleanupContext, blocks: Blocks, victim: number, options = OPTIONS): Promise<string> {
  const dir = await tempDir(t)
  const store = await openBlockStore(t, dir, options)
  for (const { cid, bytes } of blocks) await store.put(cid, bytes)
  await store.commit()
  await store.close()
  await flipRecord(dir, (await locations(dir, blocks))[victim])
  return dir
}

/** Total bytes of the store's pack files. */
async function packBytes (dir: string): Promise<number> {
  let n = 0
  for (const f of await packFiles(dir)) n += (await stat(f)).size
  return n
}

/** Reopen the store at `dir`: every block of `blocks` reads back right, and the open's index audit found every pack consistent. */
async function assertWholeAfterReopen (t: CleanupContext, dir: string, blocks: ReturnType<typeof blocksOf>): Promise<void> {
  const store = await openBlockStore(t, dir, OPTIONS)
  for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes, 'after a reopen')
  assert.deepEqual(store.audit?.disagreeingPacks, [])
}

describe('a bad local copy is replaced by the next put of the block', () => {
  it('a read finds the record corrupt (CorruptBlockError); a put of the same bytes replaces it, before and after a reopen; nothing else changes', async (t) => {
    const blocks = blocksOf(3, SIZE, 41)
    const victim = blocks[1]
    const dir = await storeWithBadCopy(t, blocks, 1)

    let store = await openBlockStore(t, dir, OPTIONS)
    assert.equal(await store.has(victim.cid), true, 'nothing is known of the damage before a read')
    await rejectsNamed(store.getBytes(victim.cid), 'CorruptBlockError')
    await rejectsNamed(store.getBytes(victim.cid), 'CorruptBlockError') // never served, read after read
    assert.equal(await store.has(victim.cid), false, 'a copy known bad is not here')

    // `shoal add` of the same file again: the put writes the block anew
    await store.put(victim.cid, victim.bytes)
    assert.equal(await store.has(victim.cid), true)
    assertBytesEqual(await store.getBytes(victim.cid), victim.bytes, 'read back before the commit')
    await store.commit()
    assertBytesEqual(await store.getBytes(victim.cid), victim.bytes, 'read back after the commit')
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)
    await store.close()

    store = await openBlockStore(t, dir, OPTIONS)
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes, 'after a reopen')
    assert.equal(await store.has(victim.cid), true)
    // the bad record was counted dead in the same commit: the open's audit finds the pack consistent
    assert.deepEqual(store.audit?.disagreeingPacks, [])
    const stored = new Map<string, Uint8Array>()
    for await (const { cid, bytes } of store.storedEntries()) stored.set(cid.toString(), bytes)
    assert.equal(stored.size, blocks.length)
    assertBytesEqual(stored.get(victim.cid.toString()) ?? new Uint8Array(), victim.bytes, 'the scrub sees the good copy')
  })

  it('the mark survives a reopen: a put after restarting replaces the copy a read found bad before', async (t) => {
    const blocks = blocksOf(2, SIZE, 42)
    const dir = await storeWithBadCopy(t, blocks, 0)
    let store = await openBlockStore(t, dir, OPTIONS)
    await rejectsNamed(store.getBytes(blocks[0].cid), 'CorruptBlockError')
    await store.close()

    store = await openBlockStore(t, dir, OPTIONS)
    assert.equal(await store.has(blocks[0].cid), false)
    await store.put(blocks[0].cid, blocks[0].bytes)
    await store.close()
    await assertWholeAfterReopen(t, dir, blocks)
  })

  it('dedup stays an index lookup: a put of blocks held here (copies not known bad) reads no pack and writes nothing', async (t) => {
    const blocks = blocksOf(4, SIZE, 43)
    const dir = await storeWithBadCopy(t, blocks, 2)
    const store = await openBlockStore(t, dir, OPTIONS)
    const before = await packBytes(dir)
    // the damage is not looked for on a put: no read has found it yet. The
    // pack is moved away meanwhile: a put that read it would fail
    const [pack] = await packFiles(dir)
    await rename(pack, pack + '.away')
    try {
      for (const { cid, bytes } of blocks) await store.put(cid, bytes)
    } finally {
      await rename(pack + '.away', pack)
    }
    await store.commit()
    assert.equal(await packBytes(dir), before)
    assert.equal(store.uncommitted, 0)
    await rejectsNamed(store.getBytes(blocks[2].cid), 'CorruptBlockError')
    for (const { cid, bytes } of blocks) await store.put(cid, bytes)
    await store.commit()
    assert.ok(await packBytes(dir) > before, 'only the copy found bad is written again')
    assert.ok(await packBytes(dir) < before + 2 * SIZE)
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)
  })

  it('bytes that do not match the CID never take the place of a bad copy', async (t) => {
    const blocks = blocksOf(1, SIZE, 44)
    const dir = await storeWithBadCopy(t, blocks, 0)
    const store = await openBlockStore(t, dir, OPTIONS)
    await rejectsNamed(store.getBytes(blocks[0].cid), 'CorruptBlockError')
    const wrong = Uint8Array.from(blocks[0].bytes)
    wrong[7] ^= 1
    await rejectsNamed(store.put(blocks[0].cid, wrong), 'InvalidBlockError')
    assert.equal(await store.has(blocks[0].cid), false)
    await rejectsNamed(store.getBytes(blocks[0].cid), 'CorruptBlockError')
    await store.put(blocks[0].cid, blocks[0].bytes)
    assertBytesEqual(await store.getBytes(blocks[0].cid), blocks[0].bytes)
  })

  it('a delete after the failed read stays a delete; a later put stores the block as new', async (t) => {
    const blocks = blocksOf(2, SIZE, 45)
    const dir = await storeWithBadCopy(t, blocks, 0)
    let store = await openBlockStore(t, dir, OPTIONS)
    await rejectsNamed(store.getBytes(blocks[0].cid), 'CorruptBlockError')
    await store.delete(blocks[0].cid)
    await rejectsNamed(store.getBytes(blocks[0].cid), 'NotFoundError')
    await store.close()
    store = await openBlockStore(t, dir, OPTIONS)
    await rejectsNamed(store.getBytes(blocks[0].cid), 'NotFoundError')
    await store.put(blocks[0].cid, blocks[0].bytes)
    await store.close()
    await assertWholeAfterReopen(t, dir, blocks)
  })

  it('a mark that no longer holds is cleared: a read that fails on a missing pack, then reads it back once the pack is there again', async (t) => {
    const blocks = blocksOf(2, SIZE, 47)
    const dir = await tempDir(t)
    const store = await openBlockStore(t, dir, OPTIONS)
    for (const { cid, bytes } of blocks) await store.put(cid, bytes)
    await store.commit()
    const [pack] = await packFiles(dir)
    await rename(pack, pack + '.away')
    try {
      await rejectsNamed(store.getBytes(blocks[0].cid), 'CorruptBlockError')
      assert.equal(await store.has(blocks[0].cid), false)
      assert.equal(await store.locate(blocks[0].cid), undefined, 'not placed for the FUSE threads either')
    } finally {
      await rename(pack + '.away', pack)
    }
    assertBytesEqual(await store.getBytes(blocks[0].cid), blocks[0].bytes)
    assert.equal(await store.has(blocks[0].cid), true)
    assert.notEqual(await store.locate(blocks[0].cid), undefined)
    const before = await packBytes(dir)
    await store.put(blocks[0].cid, blocks[0].bytes)
    await store.commit()
    assert.equal(await packBytes(dir), before, 'a good copy is kept')
  })

  it('compaction copies a corrupt record as it is and marks it: the next put replaces it without a read first', async (t) => {
    const options: OpenBlockStoreOptions = { ...OPTIONS, maxPackBytes: 256 * KiB, compactBytesPerSecond: 1024 * 1024 * 1024 }
    const blocks = blocksOf(10, SIZE, 46)
    const victim = blocks[0]
    const dir = await storeWithBadCopy(t, blocks, 0, options)
    let store = await openBlockStore(t, dir, options)
    const kept = [victim, blocks[1]]
    for (const { cid } of blocks.slice(2)) await store.delete(cid)
    await store.compact()
    await store.close()
    assert.ok((await locations(dir, kept)).every(loc => loc.pack > 1), 'the records were copied to a new pack')
    store = await openBlockStore(t, dir, options)
    assert.equal(await store.has(victim.cid), false, 'compaction found the copy bad')
    await rejectsNamed(store.getBytes(victim.cid), 'CorruptBlockError')
    await store.put(victim.cid, victim.bytes)
    await store.close()
    store = await openBlockStore(t, dir, options)
    for (const { cid, bytes } of kept) assertBytesEqual(await store.getBytes(cid), bytes)
    assert.deepEqual(store.audit?.disagreeingPacks, [])
  })
})
