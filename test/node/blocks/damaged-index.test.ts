/**
 * A block index LevelDB finds damaged at open (a MANIFEST with flipped bytes,
 * a table with flipped bytes, a table gone) is set aside and rebuilt from the
 * packs (node/blocks/index-rebuild.ts): every block the packs hold reads back.
 * Before, the open failed with LevelDB's bare message ("Database failed to
 * open", "Corruption: corrupted compressed block contents") and the daemon
 * could not start, so `shoal repair --reindex` (a daemon request) could not
 * run either. The faults are made for real in the files of a closed store.
 * A failure that is not damage (the index locked by another open) still
 * fails the open and leaves the index where it is.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createBlockStore } from '../../../node/blocks/index.js'
import { DAMAGED_INDEX_PREFIX } from '../../../node/blocks/index-rebuild.js'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { blocksOf } from './fixtures.js'

const KiB = 1024
const options = { maxPackBytes: 256 * KiB, autoCompact: false }

/** A closed store in a new folder: 40 blocks over several packs, 10 of them deleted; the index held in tables (.ldb). */
async function storeWithTables (t: CleanupContext): Promise<{ dir: string, kept: ReturnType<typeof blocksOf>, deleted: ReturnType<typeof blocksOf> }> {
  const dir = await tempDir(t)
  const blocks = blocksOf(40, 20 * KiB, 7)
  let store = await openBlockStore(t, dir, options)
  for (const { cid, bytes } of blocks) await store.put(cid, bytes)
  await store.commit()
  for (const { cid } of blocks.slice(30)) await store.delete(cid)
  await store.close()
  // LevelDB writes its log into a table at the next open
  store = await openBlockStore(t, dir, options)
  await store.close()
  assert.ok((await levelFiles(dir)).some(n => n.endsWith('.ldb')), 'the index is in a table')
  return { dir, kept: blocks.slice(0, 30), deleted: blocks.slice(30) }
}

async function levelFiles (dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true })).filter(e => e.isFile()).map(e => e.name)
}

/** Flip every 7th byte of `file` from byte 10 on. */
async function rot (file: string): Promise<void> {
  const bytes = await readFile(file)
  for (let i = 10; i < bytes.length; i += 7) bytes[i] ^= 0xff
  await writeFile(file, bytes)
}

async function assertRebuilt (t: CleanupContext, dir: string, kept: ReturnType<typeof blocksOf>, reason: RegExp): Promise<void> {
  const store = await openBlockStore(t, dir, options)
  assert.ok(store.indexRebuilt !== undefined, 'the open says it rebuilt the index')
  assert.match(store.indexRebuilt.reason, reason)
  const aside = (await readdir(dir)).filter(n => n.startsWith(DAMAGED_INDEX_PREFIX))
  assert.equal(aside.length, 1, 'the damaged index is kept aside')
  assert.equal(store.indexRebuilt.keptAt, join(dir, aside[0]))
  assert.ok((await readdir(store.indexRebuilt.keptAt)).some(n => n.startsWith('MANIFEST-')), 'with its files')
  // every record of the packs is indexed again: the kept blocks, and the deleted ones (garbage for gc)
  assert.equal(store.recovery?.salvagedRecords, 40)
  for (const { cid, bytes } of kept) assertBytesEqual(await store.getBytes(cid), bytes)
  await store.close()
  // the rebuilt index is whole: the next open finds nothing to do
  const again = await openBlockStore(t, dir, options)
  assert.equal(again.indexRebuilt, undefined)
  assert.equal(again.recovery?.salvagedRecords, 0)
  assert.equal(again.audit?.disagreeingPacks.length, 0)
  for (const { cid, bytes } of kept) assertBytesEqual(await again.getBytes(cid), bytes)
}

describe('a damaged block index is rebuilt from the packs at open', () => {
  it('a MANIFEST with flipped bytes', async (t) => {
    const { dir, kept } = await storeWithTables(t)
    const manifest = (await levelFiles(dir)).find(n => n.startsWith('MANIFEST-'))
    assert.ok(manifest !== undefined)
    await rot(join(dir, manifest))
    await assertRebuilt(t, dir, kept, /Corruption/)
  })

  it('a table with flipped bytes (found while the open reads the index whole)', async (t) => {
    const { dir, kept } = await storeWithTables(t)
    for (const n of (await levelFiles(dir)).filter(n => n.endsWith('.ldb'))) await rot(join(dir, n))
    await assertRebuilt(t, dir, kept, /Corruption/)
  })

  it('a table gone', async (t) => {
    const { dir, kept } = await storeWithTables(t)
    for (const n of (await levelFiles(dir)).filter(n => n.endsWith('.ldb'))) await unlink(join(dir, n))
    await assertRebuilt(t, dir, kept, /missing files|No such file/)
  })

  it('an index locked by another open is not damage: the open fails, nothing is moved', async (t) => {
    const { dir } = await storeWithTables(t)
    await openBlockStore(t, dir, options)
    const second = createBlockStore({}, { ...options, path: dir })
    await assert.rejects(second.open())
    assert.equal((await readdir(dir)).filter(n => n.startsWith(DAMAGED_INDEX_PREFIX)).length, 0)
    assert.equal(second.indexRebuilt, undefined)
  })
})
