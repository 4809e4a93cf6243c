/**
 * `LevelKV`'s LevelDB options change how LevelDB works, not what it
 * stores: a store written under LevelDB's defaults (older builds) opens and
 * reads under them, rows in level-0 and deeper tables alike, and a store
 * written under them opens again under LevelDB's defaults. `compact()`
 * merges every table into one level and keeps every row.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { LevelKV, WRITE_BUFFER_BYTES, type KVOp } from '../../../node/namespace/kv.js'

/** Rows of 2 KiB, more of them in all than a write buffer holds, so that some are flushed to tables. */
const ROW_BYTES = 2048
const ROWS = Math.ceil(1.5 * WRITE_BUFFER_BYTES / ROW_BYTES)

function rowKey (i: number): string { return `e!${String(i).padStart(8, '0')}` }

/** Row `i`'s value: its number in every byte position that tells rows apart. */
function rowValue (i: number): Uint8Array {
  const value = new Uint8Array(ROW_BYTES)
  for (let j = 0; j < ROW_BYTES; j += 4) new DataView(value.buffer).setUint32(j, i ^ j)
  return value
}

/** A value read back as hex (the store returns Buffers or plain Uint8Arrays), for comparison. */
function bytesOf (value: Uint8Array | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')
}

/** Rows `from` to `to` (exclusive), 500 to a batch. */
function* batches (from: number, to: number): Generator<KVOp[]> {
  for (let i = from; i < to; i += 500) {
    const ops: KVOp[] = []
    for (let k = i; k < Math.min(i + 500, to); k++) ops.push({ type: 'put', key: rowKey(k), value: rowValue(k) })
    yield ops
  }
}

async function tempDir (t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-level-kv-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** LevelDB under its own defaults (4 MiB write buffer), as older builds opened the store. */
function defaultLevel (dir: string): ClassicLevel<string, Uint8Array> {
  return new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
}

describe('LevelKV options', () => {
  it('opens a store written under LevelDB\'s defaults and reads every row', async (t) => {
    const dir = await tempDir(t)
    const old = defaultLevel(dir)
    await old.open()
    for (const ops of batches(0, ROWS)) {
      const batch = old.batch()
      for (const op of ops) if (op.type === 'put') batch.put(op.key, op.value)
      await batch.write()
    }
    await old.close()

    const kv = new LevelKV(dir)
    await kv.open()
    t.after(async () => { await kv.close() })
    let n = 0
    for await (const [key, value] of kv.iterate({ gte: rowKey(0), lt: 'e"' })) {
      assert.equal(key, rowKey(n))
      assert.deepEqual(bytesOf(value), bytesOf(rowValue(n)))
      n++
    }
    assert.equal(n, ROWS)
    assert.deepEqual(bytesOf(kv.getSync(rowKey(ROWS - 1))), bytesOf(rowValue(ROWS - 1)))
    assert.deepEqual((await kv.getMany([rowKey(3), rowKey(ROWS + 1), rowKey(0)])).map(bytesOf), [rowValue(3), undefined, rowValue(0)].map(bytesOf))
  })

  it('leaves a store LevelDB opens again under its defaults', async (t) => {
    const dir = await tempDir(t)
    const kv = new LevelKV(dir)
    await kv.open()
    for (const ops of batches(0, ROWS)) await kv.batch(ops, false)
    await kv.batch([{ type: 'del', key: rowKey(7) }], true)
    await kv.close()

    const old = defaultLevel(dir)
    await old.open()
    t.after(async () => { await old.close() })
    const keys = await old.keys({ gte: rowKey(0), lt: 'e"' }).all()
    assert.equal(keys.length, ROWS - 1)
    assert.equal(keys.includes(rowKey(7)), false)
    assert.deepEqual(bytesOf(await old.get(rowKey(ROWS - 1))), bytesOf(rowValue(ROWS - 1)))
  })

  it('compact() leaves every row in one level of tables, and every row readable', async (t) => {
    const dir = await tempDir(t)
    const kv = new LevelKV(dir)
    await kv.open()
    // the same rows twice, and again half: flushed tables of overlapping keys, on more than one level
    for (const ops of batches(0, ROWS)) await kv.batch(ops, false)
    for (const ops of batches(0, ROWS)) await kv.batch(ops, false)
    for (const ops of batches(0, ROWS / 2)) await kv.batch(ops, false)
    await kv.batch([{ type: 'del', key: rowKey(7) }], true)
    await kv.close()
    assert.ok((await levelsWithTables(dir)).length > 1, 'before: tables on more than one level')

    const again = new LevelKV(dir)
    await again.open()
    t.after(async () => { await again.close() })
    await again.compact()
    await again.close()
    assert.equal((await levelsWithTables(dir)).length, 1, 'after: one level')
    await again.open()
    let n = 0
    for await (const [key, value] of again.iterate({ gte: rowKey(0), lt: 'e"' })) {
      if (n === 7) n++
      assert.equal(key, rowKey(n))
      assert.deepEqual(bytesOf(value), bytesOf(rowValue(n)))
      n++
    }
    assert.equal(n, ROWS)
  })
})

/** The levels of the store in `dir` that hold at least one table, from LevelDB's own table of them (`leveldb.stats`: "level files size(MB) …"). */
async function levelsWithTables (dir: string): Promise<number[]> {
  const db = defaultLevel(dir)
  await db.open()
  try {
    const levels: number[] = []
    for (const line of db.getProperty('leveldb.stats').split('\n')) {
      const m = /^\s*(\d+)\s+(\d+)\s/.exec(line)
      if (m !== null && Number(m[2]) > 0) levels.push(Number(m[1]))
    }
    return levels
  } finally {
    await db.close()
  }
}
