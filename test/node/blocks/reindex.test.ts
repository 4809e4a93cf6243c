/**
 * `shoal repair --reindex` at the store level (node/blocks/reindex.ts): the
 * index is checked against every committed record of every pack and rebuilt
 * from them. Faults are made for real in the LevelDB index and in the pack
 * files of a closed store: entries lost inside a pack's committed length
 * (which open's index audit restores by itself), an entry pointing at another block's
 * record, a record with a flipped byte and no other copy, drifted dead-space
 * counters. Every intact block is readable after it; the lost one is
 * reported by CID and never served.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { packFileName } from '../../../node/blocks/pack-file.js'
import { INDEX_RANGE, META_RANGE, decodeLocation, decodeMeta, encodeMeta, indexKey } from '../../../node/blocks/pack-index.js'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { openBlockStore, tempDir } from '../../helpers/temp.js'
import { blocksOf, diskUsageKiB, rejectsNamed } from './fixtures.js'

const KiB = 1024

async function withIndex<T> (dir: string, fn: (db: ClassicLevel<Uint8Array, Uint8Array>) => Promise<T>): Promise<T> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  try { return await fn(db) } finally { await db.close() }
}

describe('reindex: the packs rebuild the index', () => {
  it('finds lost entries, repoints wrong ones, reports a block with no intact copy, and fixes drifted counters', async (t) => {
    const dir = await tempDir(t)
    const options = { maxPackBytes: 256 * KiB, autoCompact: false, compactBytesPerSecond: 1024 * 1024 * 1024 }
    let store = await openBlockStore(t, dir, options)
    const blocks = blocksOf(60, 20 * KiB, 11)
    for (const { cid, bytes } of blocks) await store.put(cid, bytes)
    await store.commit()
    // half the blocks deleted: their records are dead space
    for (const { cid } of blocks.slice(30, 60)) await store.delete(cid)
    await store.close()

    const lostEntries = blocks.slice(0, 5)
    const [wrong, other] = [blocks[5], blocks[6]]
    const flipped = blocks[7]
    await withIndex(dir, async db => {
      // entries lost inside the committed length of their packs
      for (const { cid } of lostEntries) await db.del(indexKey(cid.multihash.bytes))
      // an entry pointing at another block's record
      const at = await db.get(indexKey(other.cid.multihash.bytes))
      assert.ok(at !== undefined)
      await db.put(indexKey(wrong.cid.multihash.bytes), at)
      // a flipped byte in the only copy of a block
      const loc = decodeLocation(await db.get(indexKey(flipped.cid.multihash.bytes)) as Uint8Array)
      const fh = await open(join(dir, 'packs', packFileName(loc.pack)), 'r+')
      try {
        const one = Buffer.alloc(1)
        const pos = loc.offset + loc.length - 100
        await fh.read(one, 0, 1, pos)
        one[0] ^= 0x01
        await fh.write(one, 0, 1, pos)
      } finally { await fh.close() }
      // dead-space counters that drifted to "all live"
      for await (const [key, value] of db.iterator(META_RANGE)) await db.put(key, encodeMeta({ ...decodeMeta(value), deadBytes: 0, deadRecords: 0 }))
    })

    store = await openBlockStore(t, dir, options)
    assert.equal(store.recovery?.salvagedRecords, 0, 'nothing past the committed lengths')
    // the index audit at open: packs whose counters no longer add up are read, lost entries restored
    assert.equal(store.audit?.restoredEntries, 5 + 30, 'the lost entries and the deleted blocks\' records are indexed again (gc removes the latter)')
    assert.equal(store.audit?.corruptRanges, 1)
    assertBytesEqual(await store.getBytes(lostEntries[0].cid), lostEntries[0].bytes)
    await rejectsNamed(store.getBytes(wrong.cid), 'CorruptBlockError')

    const report = await store.reindex()
    assert.equal(report.corruptRecords, 1)
    assert.equal(report.indexed, 0, 'open indexed them already')
    assert.equal(report.repointed, 1)
    assert.equal(report.removed, 1)
    assert.deepEqual(report.lost, [flipped.cid.toString()])
    for (const { cid, bytes } of blocks) {
      if (cid.equals(flipped.cid)) continue
      assertBytesEqual(await store.getBytes(cid), bytes)
    }
    await rejectsNamed(store.getBytes(flipped.cid), 'NotFoundError')

    // a second pass finds nothing to do
    const again = await store.reindex()
    assert.deepEqual({ ...again, packs: 0, records: 0 }, { packs: 0, records: 0, corruptRecords: 1, indexed: 0, repointed: 0, removed: 0, lost: [] })

    // the counters are right again: deleting blocks and compacting gives the space back
    for (const { cid } of blocks.slice(8)) await store.delete(cid)
    const before = diskUsageKiB(dir)
    await store.compact()
    assert.ok(diskUsageKiB(dir) < before / 2, `compaction gave space back (${before} KiB before)`)
    for (const { cid, bytes } of blocks.slice(0, 7)) assertBytesEqual(await store.getBytes(cid), bytes)
    await store.close()
    await withIndex(dir, async db => {
      let entries = 0
      for await (const value of db.values(INDEX_RANGE)) { decodeLocation(value); entries++ }
      assert.equal(entries, 7)
    })
  })

  it('stops when its signal aborts, before it writes anything: the index and the counters are as before', async (t) => {
    const dir = await tempDir(t)
    const options = { maxPackBytes: 256 * KiB, autoCompact: false }
    let store = await openBlockStore(t, dir, options)
    const blocks = blocksOf(20, 20 * KiB, 12)
    for (const { cid, bytes } of blocks) await store.put(cid, bytes)
    await store.commit()
    await store.close()
    // an entry pointing at another block's record: what a reindex would repoint
    await withIndex(dir, async db => {
      await db.put(indexKey(blocks[0].cid.multihash.bytes), await db.get(indexKey(blocks[1].cid.multihash.bytes)) as Uint8Array)
    })
    const snapshot = async (): Promise<string[]> => await withIndex(dir, async db => {
      const rows: string[] = []
      for await (const [key, value] of db.iterator()) rows.push(`${Buffer.from(key).toString('hex')}=${Buffer.from(value).toString('hex')}`)
      return rows
    })
    const before = await snapshot()
    store = await openBlockStore(t, dir, options)
    await rejectsNamed(store.reindex({ signal: AbortSignal.abort() }), 'AbortedError')
    await store.close()
    assert.deepEqual(await snapshot(), before, 'nothing written')
    // the entry is still wrong (a read of it marks it bad), and a reindex that runs to the end repairs it
    store = await openBlockStore(t, dir, options)
    await rejectsNamed(store.getBytes(blocks[0].cid), 'CorruptBlockError')
    assert.equal(await store.has(blocks[0].cid), false)
    assert.equal((await store.reindex()).repointed, 1)
    assertBytesEqual(await store.getBytes(blocks[0].cid), blocks[0].bytes)
    assert.equal(await store.has(blocks[0].cid), true)
  })
})
