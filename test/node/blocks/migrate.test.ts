/**
 * Opening a store in the former layout (block bytes as LevelDB values) moves
 * the blocks into packs, batch by batch, and resumes after a failure.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { ClassicLevel } from 'classic-level'
import { LegacyLevelBlockStore } from '../../../node/blocks/index.js'
import { INDEX_RANGE, LEGACY_RANGE, indexKey, multihashOfIndexKey } from '../../../node/blocks/pack-index.js'
import { scanPack } from '../../../node/blocks/pack-file.js'
import type { CID } from 'multiformats/cid'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { defer, openBlockStore, tempDir } from '../../helpers/temp.js'
import { blocksOf, packFiles, rejectsNamed, runAndKill } from './fixtures.js'

const KiB = 1024
const CHILD = fileURLToPath(new URL('./migrate-child.js', import.meta.url))

/** How many former-layout values and index entries the LevelDB at `dir` holds, and how many blocks are in both places. */
async function countKeys (dir: string): Promise<{ legacy: number, indexed: number, both: number }> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  try {
    const old = new Set<string>()
    let indexed = 0
    let both = 0
    for await (const key of db.keys(LEGACY_RANGE)) old.add(Buffer.from(key).toString('hex'))
    for await (const key of db.keys(INDEX_RANGE)) {
      indexed++
      if (old.has(Buffer.from(multihashOfIndexKey(key)).toString('hex'))) both++
    }
    return { legacy: old.size, indexed, both }
  } finally {
    await db.close()
  }
}

/** How many records the packs in `dir` hold, dead ones included. */
async function packRecords (dir: string): Promise<number> {
  let n = 0
  for (const file of await packFiles(dir)) {
    for await (const _ of scanPack(file)) n++
  }
  return n
}

/** Write the former layout's rows of the `blocks` already indexed again, as a run killed before its index batch leaves them beside records salvaged at the next open. */
async function putLegacyRowsOfIndexed (dir: string, blocks: Array<{ cid: CID, bytes: Uint8Array }>): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  try {
    for (const { cid, bytes } of blocks) {
      if (await db.get(indexKey(cid.multihash.bytes)) !== undefined) await db.put(cid.multihash.bytes, bytes)
    }
  } finally {
    await db.close()
  }
}

/** A store in the former layout at a new temporary folder, holding `blocks`. */
async function legacyStore (t: TestContext, blocks: Array<{ cid: CID, bytes: Uint8Array }>): Promise<{ dir: string, blocks: Array<{ cid: CID, bytes: Uint8Array }> }> {
  const dir = await tempDir(t)
  const old = new LegacyLevelBlockStore({}, { path: dir })
  defer(t, async () => { await old.close() })
  await old.open()
  for (const { cid, bytes } of blocks) await old.put(cid, bytes)
  await old.close()
  return { dir, blocks }
}

describe('migration from the former layout', () => {
  it('moves every block into packs at open, resuming after a failure mid-way', async (t) => {
    const { dir, blocks } = await legacyStore(t, blocksOf(60, 16 * KiB, 11))
    assert.deepEqual(await countKeys(dir), { legacy: 60, indexed: 0, both: 0 })

    // a failure after the second committed batch (100 KiB batches: 7 blocks each)
    const failing = { migrateBatchBytes: 100 * KiB, faults: { afterMigrateBatch: (n: number) => { if (n === 2) throw new Error('injected crash') } } }
    await rejectsNamed(openBlockStore(t, dir, failing), 'Error')
    const mid = await countKeys(dir)
    assert.equal(mid.indexed, 14, 'two batches committed')
    assert.equal(mid.legacy, 46, 'their old values deleted in the same batch')

    // the next open goes on from there
    let store = await openBlockStore(t, dir, { migrateBatchBytes: 100 * KiB })
    assert.equal(store.migrated, 46)
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)
    await store.close()
    assert.deepEqual(await countKeys(dir), { legacy: 0, indexed: 60, both: 0 })
    assert.ok((await packFiles(dir)).length >= 1)
    assert.equal(await packRecords(dir), 60, 'one record a block')

    store = await openBlockStore(t, dir)
    assert.equal(store.migrated, 0)
    let n = 0
    for await (const _ of store.getAll()) n++
    assert.equal(n, 60)
  })

  it('a block salvaged beside its old row is not copied again: the row goes, the record stays the only one', async (t) => {
    const { dir, blocks } = await legacyStore(t, blocksOf(30, 16 * KiB, 13))

    const failing = { migrateBatchBytes: 100 * KiB, faults: { afterMigrateBatch: (n: number) => { if (n === 1) throw new Error('injected crash') } } }
    await rejectsNamed(openBlockStore(t, dir, failing), 'Error')
    assert.deepEqual(await countKeys(dir), { legacy: 23, indexed: 7, both: 0 })
    await putLegacyRowsOfIndexed(dir, blocks)
    assert.deepEqual(await countKeys(dir), { legacy: 30, indexed: 7, both: 7 })

    const store = await openBlockStore(t, dir, { migrateBatchBytes: 100 * KiB })
    assert.equal(store.migrated, 30, 'every old row is gone')
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)
    await store.close()
    assert.deepEqual(await countKeys(dir), { legacy: 0, indexed: 30, both: 0 })
    assert.equal(await packRecords(dir), 30, 'no second copy of the 7 already indexed')
  })

  it('survives SIGKILLs during the migration: every block present and readable afterwards', { timeout: 120_000 }, async (t) => {
    const { dir, blocks } = await legacyStore(t, blocksOf(400, 24 * KiB, 12)) // ~9.6 MiB: 150 batches of 64 KiB

    let kills = 0
    let finished = false
    for (let round = 0; round < 10 && !finished; round++) {
      const { lines, killed } = await runAndKill(CHILD, [dir], 60 + round * 40)
      if (killed) kills++
      finished = lines.some(line => line.startsWith('migrated '))
    }
    assert.ok(kills > 0, 'at least one kill landed mid-migration')
    // a kill between a batch's pack sync and its index batch leaves records the
    // next open salvages while their old rows stay: in both places, never neither
    const mid = await countKeys(dir)
    assert.equal(mid.legacy + mid.indexed - mid.both, blocks.length, 'each block in its old place or indexed, never neither')

    const store = await openBlockStore(t, dir)
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)
    await store.close()
    assert.deepEqual(await countKeys(dir), { legacy: 0, indexed: blocks.length, both: 0 })
    t.diagnostic(`${kills} kills during the migration; ${mid.indexed} blocks migrated by the killed runs (${mid.both} of them salvaged beside their old rows), ${mid.legacy} left`)
  })
})
