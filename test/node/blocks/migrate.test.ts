/**
 * Opening a store in the former layout (block bytes as LevelDB values) moves
 * the blocks into packs, batch by batch, and resumes after a failure.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { ClassicLevel } from 'classic-level'
import { LegacyLevelBlockStore } from '../../../node/blocks/index.js'
import { INDEX_RANGE, LEGACY_RANGE } from '../../../node/blocks/pack-index.js'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { defer, openBlockStore, tempDir } from '../../helpers/temp.js'
import { blocksOf, packFiles, rejectsNamed, runAndKill } from './fixtures.js'

const KiB = 1024
const CHILD = fileURLToPath(new URL('./migrate-child.js', import.meta.url))

/** How many former-layout values and index entries the LevelDB at `dir` holds. */
async function countKeys (dir: string): Promise<{ legacy: number, indexed: number }> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  try {
    let legacy = 0
    let indexed = 0
    for await (const _ of db.keys(LEGACY_RANGE)) legacy++
    for await (const _ of db.keys(INDEX_RANGE)) indexed++
    return { legacy, indexed }
  } finally {
    await db.close()
  }
}

describe('migration from the former layout', () => {
  it('moves every block into packs at open, resuming after a failure mid-way', async (t) => {
    const dir = await tempDir(t)
    const old = new LegacyLevelBlockStore({}, { path: dir })
    defer(t, async () => { await old.close() })
    await old.open()
    const blocks = blocksOf(60, 16 * KiB, 11)
    for (const { cid, bytes } of blocks) await old.put(cid, bytes)
    await old.close()
    assert.deepEqual(await countKeys(dir), { legacy: 60, indexed: 0 })

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
    assert.deepEqual(await countKeys(dir), { legacy: 0, indexed: 60 })
    assert.ok((await packFiles(dir)).length >= 1)

    store = await openBlockStore(t, dir)
    assert.equal(store.migrated, 0)
    let n = 0
    for await (const _ of store.getAll()) n++
    assert.equal(n, 60)
  })

  it('survives SIGKILLs during the migration: every block present and readable afterwards', { timeout: 120_000 }, async (t) => {
    const dir = await tempDir(t)
    const old = new LegacyLevelBlockStore({}, { path: dir })
    defer(t, async () => { await old.close() })
    await old.open()
    const blocks = blocksOf(400, 24 * KiB, 12) // ~9.6 MiB: 150 batches of 64 KiB
    for (const { cid, bytes } of blocks) await old.put(cid, bytes)
    await old.close()

    let kills = 0
    let finished = false
    for (let round = 0; round < 10 && !finished; round++) {
      const { lines, killed } = await runAndKill(CHILD, [dir], 60 + round * 40)
      if (killed) kills++
      finished = lines.some(line => line.startsWith('migrated '))
    }
    assert.ok(kills > 0, 'at least one kill landed mid-migration')
    const mid = await countKeys(dir)
    assert.equal(mid.legacy + mid.indexed, blocks.length, 'each block in its old place or indexed, never both, never neither')

    const store = await openBlockStore(t, dir)
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)
    await store.close()
    assert.deepEqual(await countKeys(dir), { legacy: 0, indexed: blocks.length })
    t.diagnostic(`${kills} kills during the migration; ${mid.indexed} blocks migrated by the killed runs, ${mid.legacy} left`)
  })
})
