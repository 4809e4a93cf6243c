/**
 * The pack block store beyond the blockstore contract: where records live,
 * what a flipped byte, a truncated pack or an uncommitted tail does, space
 * given back by compaction, and a full disk (also one that fails a commit
 * while another writer's blocks wait for theirs).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { appendFile, open, readdir, rename, stat, truncate, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { encodeRecord, PACK_HEADER, recordLength } from '../../../node/blocks/pack-record.js'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { mountTmpfs, openBlockStore, tempDir, type CleanupContext, type OpenBlockStoreOptions } from '../../helpers/temp.js'
import { until } from '../../helpers/processes.js'
import type { PackBlockStore } from '../../../node/blocks/index.js'
import type { CID } from 'multiformats/cid'
import { blocksOf, diskUsageKiB, flipEveryBlock, packFiles, recordOffset, rejectsNamed } from './fixtures.js'

const KiB = 1024

type Blocks = Array<{ cid: CID, bytes: Uint8Array }>

/** A small tmpfs (unmounted when the test ends) and a block store path on it. */
async function tmpfsPath (t: CleanupContext, size: string): Promise<{ mnt: string, path: string }> {
  const mnt = join(await tempDir(t), 'small')
  await mountTmpfs(t, mnt, size)
  return { mnt, path: join(mnt, 'blocks') }
}

/** A store in a new directory holding `blocks`, committed, open. */
async function storeWith (t: CleanupContext, blocks: Blocks, options: OpenBlockStoreOptions = {}): Promise<{ dir: string, store: PackBlockStore }> {
  const dir = await tempDir(t)
  const store = await openBlockStore(t, dir, options)
  for (const { cid, bytes } of blocks) await store.put(cid, bytes)
  await store.commit()
  return { dir, store }
}

/** A store in a new directory holding `blocks` (one pack), closed. */
async function closedStoreWith (t: CleanupContext, blocks: Blocks): Promise<{ dir: string, blocks: Blocks, pack: string }> {
  const { dir, store } = await storeWith(t, blocks)
  await store.close()
  const [pack] = await packFiles(dir)
  return { dir, blocks, pack }
}

describe('PackBlockStore', () => {
  it('keeps records in <path>/packs beside the LevelDB files and starts a new pack past maxPackBytes', async (t) => {
    const blocks = blocksOf(20, 10 * KiB, 1)
    const opened = await storeWith(t, blocks, { maxPackBytes: 64 * KiB })
    const dir = opened.dir
    let store = opened.store
    const files = await packFiles(dir)
    assert.ok(files.length >= 3, `${files.length} packs`)
    for (const f of files) assert.ok((await stat(f)).size <= 64 * KiB)
    assert.ok((await readdir(dir)).includes('CURRENT'), 'LevelDB shares the folder')
    const size = await store.approximateSize()
    assert.ok(size >= 200 * KiB, `approximateSize ${size}`)

    await store.close()
    store = await openBlockStore(t, dir, { maxPackBytes: 64 * KiB })
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)
    let n = 0
    for await (const _ of store.cids()) n++
    assert.equal(n, blocks.length)
  })

  it('a flipped byte in each record of a pack: CorruptBlockError on every read, never served; storedEntries yields the bytes as stored', async (t) => {
    const { dir, blocks } = await closedStoreWith(t, blocksOf(3, 4 * KiB, 2))
    assert.equal(await flipEveryBlock(dir), 3)

    const store = await openBlockStore(t, dir)
    const victim = blocks[1]
    assert.equal(await store.has(victim.cid), true)
    for (const { cid } of blocks) await rejectsNamed(store.getBytes(cid), 'CorruptBlockError')
    const [sound] = blocksOf(1, 4 * KiB, 9)
    await store.put(sound.cid, sound.bytes)
    assertBytesEqual(await store.getBytes(sound.cid), sound.bytes, 'records beside corrupt ones read back')
    await rejectsNamed((async () => { for await (const _ of store.get(victim.cid)) {} })(), 'CorruptBlockError')
    await rejectsNamed((async () => { for await (const _ of store.getAll()) {} })(), 'CorruptBlockError')

    const stored = new Map<string, Uint8Array>()
    for await (const { cid, bytes } of store.storedEntries()) stored.set(cid.toString(), bytes)
    assert.equal(stored.size, 4)
    const raw = stored.get(victim.cid.toString()) ?? new Uint8Array()
    assert.equal(raw.byteLength, victim.bytes.byteLength)
    assert.equal(raw[2048], victim.bytes[2048] ^ 0xff, 'the scrub sees the flipped byte')
  })

  it('a truncated pack: records past the cut fail with CorruptBlockError, records before it read back', async (t) => {
    const { dir, blocks, pack } = await closedStoreWith(t, blocksOf(4, 8 * KiB, 3))
    await truncate(pack, recordOffset(2, 8 * KiB) + 100) // the middle of the third record

    const store = await openBlockStore(t, dir)
    assert.deepEqual(store.recovery?.shortPacks, [1])
    for (const { cid, bytes } of blocks.slice(0, 2)) assertBytesEqual(await store.getBytes(cid), bytes)
    for (const { cid } of blocks.slice(2)) await rejectsNamed(store.getBytes(cid), 'CorruptBlockError')
    // the scrub sees them as corrupt (short bytes), so it can repair them
    let short = 0
    for await (const { bytes } of store.storedEntries()) if (bytes.byteLength < 8 * KiB) short++
    assert.equal(short, 2)
  })

  it('has reads the index only, never a pack', async (t) => {
    const dir = await tempDir(t)
    const store = await openBlockStore(t, dir)
    const [block] = blocksOf(1, 2 * KiB, 4)
    await store.put(block.cid, block.bytes)
    await store.commit()
    const [pack] = await packFiles(dir)
    await rename(pack, pack + '.away')
    assert.equal(await store.has(block.cid), true)
    await rejectsNamed(store.getBytes(block.cid), 'CorruptBlockError')
    await rename(pack + '.away', pack)
  })

  it('open indexes again the intact records past the known end of a pack (a lost index batch), and cuts only a torn one', async (t) => {
    const blocks = blocksOf(3, 4 * KiB, 5)
    const { dir, pack } = await closedStoreWith(t, blocks.slice(0, 2))
    const committed = (await stat(pack)).size

    // a complete, crc-valid record the index does not know (its batch was lost), then half of one
    const extra = blocks[2]
    const mh = extra.cid.multihash.bytes
    const record = new Uint8Array(recordLength(mh.byteLength, extra.bytes.byteLength))
    encodeRecord(record, mh, extra.bytes)
    await appendFile(pack, record)
    await appendFile(pack, record.subarray(0, 1000))

    let store = await openBlockStore(t, dir)
    assert.equal(store.recovery?.salvagedRecords, 1)
    assert.equal(store.recovery?.tornRecords, 1)
    assert.equal((await stat(pack)).size, committed + record.byteLength, 'only the torn record is cut')
    assertBytesEqual(await store.getBytes(extra.cid), extra.bytes, 'the intact record is found again, never lost')
    for (const { cid, bytes } of blocks.slice(0, 2)) assertBytesEqual(await store.getBytes(cid), bytes)

    // a second copy of a block it already indexed is dead space, not a second entry
    await store.close()
    await appendFile(pack, record)
    store = await openBlockStore(t, dir)
    assert.equal(store.recovery?.salvagedRecords, 0)
    assert.equal(store.recovery?.deadRecords, 1)

    // a pack the index does not know at all (its creation's batch was lost) is indexed again whole
    await store.close()
    const { ClassicLevel } = await import('classic-level')
    const { META_RANGE, INDEX_RANGE } = await import('../../../node/blocks/pack-index.js')
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    await db.open()
    await db.clear(META_RANGE)
    await db.clear(INDEX_RANGE)
    await db.close()
    store = await openBlockStore(t, dir)
    assert.equal(store.recovery?.unknownPacks.length, 1)
    assert.equal(store.recovery?.salvagedRecords, 3)
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)

    // and writing goes on after it
    const more = blocksOf(1, 4 * KiB, 9)[0]
    await store.put(more.cid, more.bytes)
    await store.close()
    store = await openBlockStore(t, dir)
    for (const { cid, bytes } of [...blocks, more]) assertBytesEqual(await store.getBytes(cid), bytes)
  })

  it('deletes count records dead; compaction rewrites mostly dead packs and the folder shrinks, readers served throughout', async (t) => {
    const dir = await tempDir(t)
    let store = await openBlockStore(t, dir, { maxPackBytes: 256 * KiB, autoCompact: false, compactBytesPerSecond: 1024 * 1024 * 1024 })
    const blocks = blocksOf(120, 20 * KiB, 6)
    for (const { cid, bytes } of blocks) await store.put(cid, bytes)
    await store.commit()
    const before = diskUsageKiB(dir)
    const packsBefore = (await packFiles(dir)).length

    const kept = blocks.filter((_, i) => i % 5 === 0)
    for (const [i, { cid }] of blocks.entries()) if (i % 5 !== 0) await store.delete(cid)
    await store.close() // the counters are persisted
    store = await openBlockStore(t, dir, { maxPackBytes: 256 * KiB, autoCompact: false, compactBytesPerSecond: 1024 * 1024 * 1024 })

    let reads = 0
    let compacting = true
    const readers = (async () => {
      while (compacting) {
        for (const { cid, bytes } of kept) { assertBytesEqual(await store.getBytes(cid), bytes); reads++ }
      }
    })()
    await store.compact()
    compacting = false
    await readers
    assert.ok(reads > 0)

    const after = diskUsageKiB(dir)
    assert.ok(after < before * 0.5, `du ${before} KiB → ${after} KiB`)
    assert.ok((await packFiles(dir)).length < packsBefore)
    await store.close()
    store = await openBlockStore(t, dir)
    for (const { cid, bytes } of kept) assertBytesEqual(await store.getBytes(cid), bytes)
    for (const [i, { cid }] of blocks.entries()) if (i % 5 !== 0) assert.equal(await store.has(cid), false)
    let n = 0
    for await (const _ of store.getAll()) n++
    assert.equal(n, kept.length)
  })

  it('compacts by itself after deletes push a pack under the threshold', async (t) => {
    const blocks = blocksOf(20, 10 * KiB, 10)
    const { dir, store } = await storeWith(t, blocks, { maxPackBytes: 64 * KiB })
    const before = (await packFiles(dir)).length
    for (const { cid } of blocks.slice(0, 15)) await store.delete(cid)
    const deadline = Date.now() + 10_000
    while ((await packFiles(dir)).length >= before && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
    assert.ok((await packFiles(dir)).length < before, 'a background pass removed packs')
    for (const { cid, bytes } of blocks.slice(15)) assertBytesEqual(await store.getBytes(cid), bytes)
  })

  it('a full disk: DiskFullError, nothing acknowledged, committed blocks intact', async (t) => {
    const { path } = await tmpfsPath(t, '4m')
    let store = await openBlockStore(t, path, { writeBufferSize: 256 * KiB })
    const early = blocksOf(4, 128 * KiB, 7)
    for (const { cid, bytes } of early) await store.put(cid, bytes)
    await store.commit()

    const late = blocksOf(40, 128 * KiB, 8) // 5 MiB: more than is left
    await rejectsNamed((async () => {
      for (const { cid, bytes } of late) await store.put(cid, bytes)
      await store.commit()
    })(), 'DiskFullError')
    await store.close().catch(() => {})

    store = await openBlockStore(t, path)
    for (const { cid, bytes } of early) assertBytesEqual(await store.getBytes(cid), bytes)
    for (const { cid, bytes } of late) if (await store.has(cid)) assertBytesEqual(await store.getBytes(cid), bytes)
    for await (const _ of store.getAll()) {} // nothing corrupt is served
  })

  it('a commit that fails on a full disk keeps what other writers wrote in whole packs for their own commit, and counts itself', async (t) => {
    const { mnt, path } = await tmpfsPath(t, '8m')
    const store = await openBlockStore(t, path, { maxPackBytes: 512 * KiB })
    assert.equal(store.failedCommits, 0)
    // writer B: three blocks in the first pack, not committed yet
    const b = blocksOf(3, 128 * KiB, 21)
    for (const { cid, bytes } of b) await store.put(cid, bytes)
    // writer A: its blocks roll over into new packs (the first one is written behind meanwhile)
    const a = blocksOf(24, 128 * KiB, 22)
    await store.put(a[0].cid, a[0].bytes)
    await store.put(a[1].cid, a[1].bytes)
    // the write behind of the first pack: B's three records, whole on disk
    const first = (await packFiles(path))[0]
    const whole = PACK_HEADER + b.reduce((n, { cid, bytes }) => n + recordLength(cid.multihash.bytes.byteLength, bytes.byteLength), 0)
    await until('the first pack is written behind', async () => (await stat(first)).size >= whole, 10_000)
    // another program fills the disk
    const junk = join(mnt, 'junk')
    const fh = await open(junk, 'w')
    try {
      for (;;) await fh.write(Buffer.alloc(64 * KiB))
    } catch (err: any) {
      if (err.code !== 'ENOSPC') throw err
    } finally {
      await fh.close()
    }
    await rejectsNamed((async () => {
      for (const { cid, bytes } of a.slice(2)) await store.put(cid, bytes)
      await store.commit()
    })(), 'DiskFullError')
    assert.equal(store.failedCommits, 1, 'the failed commit is counted: writers under way must not acknowledge')
    // room again: B commits, and its blocks are there (they were in a pack written whole)
    await unlink(junk)
    await store.commit()
    for (const { cid, bytes } of b) assertBytesEqual(await store.getBytes(cid), bytes)
    await store.close()
    const again = await openBlockStore(t, path)
    for (const { cid, bytes } of b) assertBytesEqual(await again.getBytes(cid), bytes)
    assert.equal(again.recovery?.corruptRanges ?? 0, 0)
    for await (const _ of again.getAll()) {} // nothing corrupt is served
  })

  it('a failed write discards its own uncommitted blocks and cuts them off the pack; blocks committed, another writer\'s, and one both put stay', async (t) => {
    const committed = blocksOf(3, 64 * KiB, 31)
    const { dir, store } = await storeWith(t, committed)
    const [pack] = await packFiles(dir)
    const committedSize = (await stat(pack)).size

    // writer B: one block, not committed yet; the failing write F: eight blocks, one of which B puts too
    const other = blocksOf(1, 64 * KiB, 32)[0]
    const own = blocksOf(8, 64 * KiB, 33)
    const owned = store.ownedWrites()
    await store.put(other.cid, other.bytes)
    for (const { cid, bytes } of own) await owned.store.put(cid, bytes)
    await store.put(own[3].cid, own[3].bytes) // B puts a block F put: it is B's too now

    const given = await owned.discard()
    // F's records after B's are cut off the end, except the shared one (its record stays, so does what lies before it)
    assert.ok(given >= 4 * 64 * KiB, `${given} bytes given back`)
    for (const [i, { cid }] of own.entries()) assert.equal(await store.has(cid), i === 3, `F's block ${i}: ${i === 3 ? 'kept, B put it too' : 'dropped'}`)
    assert.ok(await store.has(other.cid), 'B\'s block waits for B\'s commit')
    await store.commit()
    for (const { cid, bytes } of [...committed, other, own[3]]) assertBytesEqual(await store.getBytes(cid), bytes)
    assert.equal(await owned.discard(), 0, 'nothing left to discard once committed')

    // reopened: the same blocks, nothing corrupt, none of F's records past the cut (those before the
    // shared one are still in the pack: the open's audit may index them again, as orphans gc collects)
    await store.close()
    const again = await openBlockStore(t, dir)
    for (const { cid, bytes } of [...committed, other, own[3]]) assertBytesEqual(await again.getBytes(cid), bytes)
    for (const [i, { cid }] of own.entries()) if (i > 3) assert.equal(await again.has(cid), false, `F's block ${i} was cut off and stays gone`)
    assert.equal(again.recovery?.corruptRanges ?? 0, 0)
    assert.ok((await stat(pack)).size >= committedSize)
    for await (const _ of again.getAll()) {} // nothing corrupt is served
  })

  it('a discard waits for the write\'s puts still under way and drops them too; a put after it is refused', async (t) => {
    const committed = blocksOf(2, 64 * KiB, 51)
    const { dir, store } = await storeWith(t, committed)
    const [pack] = await packFiles(dir)
    const committedSize = (await stat(pack)).size

    // a write with eight puts in flight (as the importer keeps them) fails: its discard starts before they have appended
    const owned = store.ownedWrites()
    const own = blocksOf(8, 64 * KiB, 52)
    const puts = own.map(async ({ cid, bytes }) => await owned.store.put(cid, bytes))
    await owned.discard()
    const settled = await Promise.allSettled(puts)
    for (const [i, { cid }] of own.entries()) assert.equal(await store.has(cid), false, `block ${i} (put ${settled[i].status}) is dropped`)
    assert.deepEqual(await packFiles(dir), [pack], 'no pack was begun after the discard')
    assert.equal((await stat(pack)).size, committedSize, 'every byte the write appended is cut off')

    const late = blocksOf(1, 64 * KiB, 53)[0]
    await assert.rejects(async () => await owned.store.put(late.cid, late.bytes), { name: 'WriteInterruptedError' })
    assert.equal(await store.has(late.cid), false)

    // the next commit binds none of it; the store goes on
    await store.commit()
    await store.close()
    const again = await openBlockStore(t, dir)
    for (const { cid } of [...own, late]) assert.equal(await again.has(cid), false)
    for (const { cid, bytes } of committed) assertBytesEqual(await again.getBytes(cid), bytes)
  })

  it('a discard of a write alone in a new pack removes the pack', async (t) => {
    const first = blocksOf(4, 60 * KiB, 41)
    const { dir, store } = await storeWith(t, first, { maxPackBytes: 256 * KiB })
    const before = await packFiles(dir)
    const owned = store.ownedWrites()
    // fills the first pack and rolls over into new ones
    for (const { cid, bytes } of blocksOf(8, 60 * KiB, 42)) await owned.store.put(cid, bytes)
    assert.ok((await packFiles(dir)).length > before.length, 'the write began new packs')
    await owned.discard()
    assert.deepEqual(await packFiles(dir), before, 'the packs it began are gone')
    await store.commit()
    for (const { cid, bytes } of first) assertBytesEqual(await store.getBytes(cid), bytes)
    const more = blocksOf(2, 60 * KiB, 43)
    for (const { cid, bytes } of more) await store.put(cid, bytes)
    await store.commit()
    for (const { cid, bytes } of more) assertBytesEqual(await store.getBytes(cid), bytes)
  })

  it('a put of a block whose delete is under way is not answered before it: the block it put stays', async (t) => {
    // a collection's sweep deletes a block while a writer puts the same bytes
    // (a removed file added again): the put must not take the entry the delete is taking for its copy
    const blocks = blocksOf(2, 16 * KiB, 44)
    const { dir, store } = await storeWith(t, blocks)
    // one delete queued behind a commit (its fdatasync), one with the index changes idle
    const filler = blocksOf(64, 64 * KiB, 45)
    for (const { cid, bytes } of filler) await store.put(cid, bytes)
    const committing = store.commit()
    for (const { cid, bytes } of blocks) {
      const deleting = store.delete(cid)
      const putting = store.put(cid, bytes)
      await Promise.all([deleting, putting])
      assert.equal(await store.has(cid), true, 'the put answered after the delete: the block is here')
    }
    await committing
    await store.close()
    const again = await openBlockStore(t, dir)
    for (const { cid, bytes } of blocks) assertBytesEqual(await again.getBytes(cid), bytes, 'after a reopen')
  })
})
