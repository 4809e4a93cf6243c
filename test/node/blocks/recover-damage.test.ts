/**
 * Open never throws intact records away, and never leaves a lost index entry
 * silent (node/blocks/recover.ts, intact-records.ts, index-audit.ts). Faults
 * are made for real in a closed store: LevelDB batches lost (index entries
 * and pack lengths rolled back, or entries dropped from the middle of the
 * log while a later pack length survives), and bytes flipped in the packs —
 * in a record's body and in a record's length field.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { packFileName } from '../../../node/blocks/pack-file.js'
import { META_RANGE, decodeLocation, decodeMeta, encodeMeta, indexKey, metaKey, packOfMetaKey } from '../../../node/blocks/pack-index.js'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { openBlockStore, tempDir } from '../../helpers/temp.js'
import { blocksOf, rejectsNamed } from './fixtures.js'

const KiB = 1024
const SIZE = 20 * KiB
/** One pack holds every block of these tests. */
const OPTIONS = { maxPackBytes: 64 * 1024 * KiB, autoCompact: false }

async function withIndex<T> (dir: string, fn: (db: ClassicLevel<Uint8Array, Uint8Array>) => Promise<T>): Promise<T> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  try { return await fn(db) } finally { await db.close() }
}

/** XOR one byte of pack `pack` at `pos`. */
async function flipByte (dir: string, pack: number, pos: number, mask = 0x01): Promise<void> {
  const fh = await open(join(dir, 'packs', packFileName(pack)), 'r+')
  try {
    const one = Buffer.alloc(1)
    await fh.read(one, 0, 1, pos)
    one[0] ^= mask
    await fh.write(one, 0, 1, pos)
  } finally { await fh.close() }
}

/** A store with `count` committed blocks, closed; returns the blocks and where each record is. */
async function filledStore (t: Parameters<typeof tempDir>[0], count: number, seed: number): Promise<{ dir: string, blocks: ReturnType<typeof blocksOf>, at: Array<{ pack: number, offset: number, length: number }> }> {
  const dir = await tempDir(t)
  const store = await openBlockStore(t, dir, OPTIONS)
  const blocks = blocksOf(count, SIZE, seed)
  for (const { cid, bytes } of blocks) await store.put(cid, bytes)
  await store.commit()
  await store.close()
  const at = await withIndex(dir, async db => await Promise.all(blocks.map(async b => decodeLocation(await db.get(indexKey(b.cid.multihash.bytes)) as Uint8Array))))
  return { dir, blocks, at }
}

/** Every block of `blocks` reads back byte for byte, except block `lost`, which is not found. */
async function assertAllBut (store: Awaited<ReturnType<typeof openBlockStore>>, blocks: ReturnType<typeof blocksOf>, lost: number): Promise<void> {
  for (const [i, { cid, bytes }] of blocks.entries()) {
    if (i === lost) await rejectsNamed(store.getBytes(cid), 'NotFoundError')
    else assertBytesEqual(await store.getBytes(cid), bytes)
  }
}

describe('open: damaged packs and lost index entries', () => {
  it('salvages every intact record past a damaged one in a pack tail the index lost, and cuts nothing', async (t) => {
    const { dir, blocks, at } = await filledStore(t, 20, 31)
    const pack = at[0].pack
    const { size } = await stat(join(dir, 'packs', packFileName(pack)))
    // the newest batches are lost: the index knows the first 10 blocks and a pack length that ends there
    await withIndex(dir, async db => {
      for (const { cid } of blocks.slice(10)) await db.del(indexKey(cid.multihash.bytes))
      const meta = decodeMeta(await db.get(metaKey(pack)) as Uint8Array)
      await db.put(metaKey(pack), encodeMeta({ ...meta, committed: at[10].offset }))
    })
    // and a byte of block 13's body rotted on disk
    await flipByte(dir, pack, at[13].offset + at[13].length - 50)

    const store = await openBlockStore(t, dir, OPTIONS)
    const report = store.recovery
    assert.ok(report !== undefined)
    assert.equal(report.salvagedRecords, 9, 'the 9 intact records of the lost batches are indexed again')
    assert.equal(report.corruptRanges, 1)
    assert.equal(report.cutBytes, 0, 'nothing intact is cut off')
    assert.equal((await stat(join(dir, 'packs', packFileName(pack)))).size, size)
    await assertAllBut(store, blocks, 13)
  })

  it('finds the next record after a damaged length field', async (t) => {
    const { dir, blocks, at } = await filledStore(t, 12, 32)
    const pack = at[0].pack
    await withIndex(dir, async db => {
      for (const { cid } of blocks.slice(4)) await db.del(indexKey(cid.multihash.bytes))
      const meta = decodeMeta(await db.get(metaKey(pack)) as Uint8Array)
      await db.put(metaKey(pack), encodeMeta({ ...meta, committed: at[4].offset }))
    })
    // block 6's length now runs past the end of the pack: a walk by lengths stops there
    await flipByte(dir, pack, at[6].offset + 3, 0x40)

    const store = await openBlockStore(t, dir, OPTIONS)
    assert.equal(store.recovery?.salvagedRecords, 7, 'blocks 4, 5 and 7..11')
    assert.equal(store.recovery?.corruptRanges, 1)
    assert.equal(store.recovery?.cutBytes, 0)
    await assertAllBut(store, blocks, 6)
  })

  it('keeps a pack the index does not know whose first record is damaged', async (t) => {
    const { dir, blocks, at } = await filledStore(t, 6, 33)
    const pack = at[0].pack
    // the batch that created the pack is lost: no entry, no pack length
    await withIndex(dir, async db => {
      for (const { cid } of blocks) await db.del(indexKey(cid.multihash.bytes))
      await db.del(metaKey(pack))
    })
    await flipByte(dir, pack, at[0].offset + at[0].length - 10)

    const store = await openBlockStore(t, dir, OPTIONS)
    assert.deepEqual(store.recovery?.removedPacks, [])
    assert.deepEqual(store.recovery?.unknownPacks, [pack])
    assert.equal(store.recovery?.salvagedRecords, 5)
    await rejectsNamed(store.getBytes(blocks[0].cid), 'NotFoundError')
    for (const { cid, bytes } of blocks.slice(1)) assertBytesEqual(await store.getBytes(cid), bytes)
  })

  it('still cuts a torn record at the very end', async (t) => {
    const { dir, blocks, at } = await filledStore(t, 5, 34)
    const pack = at[0].pack
    const path = join(dir, 'packs', packFileName(pack))
    // a sixth record was being appended when the machine stopped: half of it reached the disk
    const fh = await open(path, 'r+')
    try {
      const half = Buffer.alloc(Math.floor(at[4].length / 2))
      await fh.read(half, 0, half.byteLength, at[4].offset)
      await fh.write(half, 0, half.byteLength, at[4].offset + at[4].length)
    } finally { await fh.close() }

    const store = await openBlockStore(t, dir, OPTIONS)
    assert.equal(store.recovery?.tornRecords, 1)
    assert.equal(store.recovery?.cutBytes, Math.floor(at[4].length / 2))
    assert.equal(store.recovery?.corruptRanges, 0)
    assert.equal((await stat(path)).size, at[4].offset + at[4].length)
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)
  })

  it('restores entries lost inside a committed length (a record dropped from the middle of the log) and says so', async (t) => {
    const { dir, blocks, at } = await filledStore(t, 30, 35)
    const pack = at[0].pack
    // LevelDB skipped one damaged batch of its log and kept the later one that
    // moved the pack length past it: blocks 10..14 have no entry, the length is whole
    await withIndex(dir, async db => {
      for (const { cid } of blocks.slice(10, 15)) await db.del(indexKey(cid.multihash.bytes))
    })
    // and a byte of block 12 rotted as well
    await flipByte(dir, pack, at[12].offset + 200)

    const store = await openBlockStore(t, dir, OPTIONS)
    assert.equal(store.recovery?.salvagedRecords, 0, 'nothing past the committed length')
    assert.deepEqual(store.audit, { disagreeingPacks: [pack], restoredEntries: 4, corruptRanges: 1, markedUnreadable: 0 })
    await assertAllBut(store, blocks, 12)
    // the pack's accounting adds up again: the next open finds nothing, and
    // deleting every block then compacting leaves no record behind
    await store.close()
    const again = await openBlockStore(t, dir, OPTIONS)
    assert.deepEqual(again.audit, { disagreeingPacks: [], restoredEntries: 0, corruptRanges: 0, markedUnreadable: 0 })
    for (const { cid } of blocks) await again.delete(cid)
    await again.compact()
    await again.close()
    await withIndex(dir, async db => {
      for await (const [key, value] of db.iterator(META_RANGE)) {
        const meta = decodeMeta(value)
        assert.equal(meta.committed - 8, meta.deadBytes, `pack ${packOfMetaKey(key)} is all dead space`)
      }
    })
  })

  it('finds nothing to do on a store after deletes, overwrites and compaction', async (t) => {
    const dir = await tempDir(t)
    const options = { maxPackBytes: 256 * KiB, autoCompact: false, compactBytesPerSecond: 1024 * 1024 * 1024 }
    let store = await openBlockStore(t, dir, options)
    const blocks = blocksOf(60, SIZE, 36)
    for (const { cid, bytes } of blocks) await store.put(cid, bytes)
    await store.commit()
    for (const { cid } of blocks.slice(0, 40)) await store.delete(cid)
    // a delete of a block written but not committed yet
    const late = blocksOf(3, SIZE, 37)
    for (const { cid, bytes } of late) await store.put(cid, bytes)
    await store.delete(late[0].cid)
    await store.compact()
    await store.close()
    store = await openBlockStore(t, dir, options)
    assert.deepEqual(store.audit, { disagreeingPacks: [], restoredEntries: 0, corruptRanges: 0, markedUnreadable: 0 })
    for (const { cid, bytes } of [...blocks.slice(40), ...late.slice(1)]) assertBytesEqual(await store.getBytes(cid), bytes)
  })
})
