/**
 * The pack appender's memory: the segments of every pack of a store come
 * from one pool, so a long import that fills many packs before its commit
 * holds the buffers of about one, and what a rolled-over pack was given is
 * written behind, byte for byte.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PackAppender, SegmentPool, packFileName } from '../../../node/blocks/pack-file.js'
import { PACK_HEADER } from '../../../node/blocks/pack-record.js'
import { assertBytesEqual, randomBytes } from '../../helpers/bytes.js'
import { tempDir } from '../../helpers/temp.js'

const KiB = 1024

/** Append `records` to `a` as a store does: wait for the writes when two segments are in flight. */
async function appendAll (a: PackAppender, records: Uint8Array[]): Promise<number[]> {
  const offsets: number[] = []
  for (const r of records) {
    offsets.push(a.append(r.byteLength, out => { out.set(r) }))
    if (a.congested) await a.drain()
  }
  return offsets
}

describe('PackAppender segments', () => {
  it('packs filled one after another before any sync share the segment buffers of one pack, and every byte reaches its file', async (t) => {
    const dir = await tempDir(t)
    const pool = new SegmentPool(16 * KiB)
    const packs: Array<{ a: PackAppender, records: Uint8Array[], offsets: number[] }> = []
    for (let pack = 1; pack <= 10; pack++) {
      const a = await PackAppender.create(dir, pack, pool)
      // three segments' worth per pack, in records that do not divide a segment
      const records = Array.from({ length: 12 }, (_, i) => randomBytes(4 * KiB + 100, pack * 100 + i))
      const offsets = await appendAll(a, records)
      // what the store does with a full pack that waits for its commit
      a.writeBehind()
      packs.push({ a, records, offsets })
      // a record of a pack being written behind reads back (from memory or the file)
      const last = packs[packs.length - 1]
      const at = last.offsets.length - 1
      const buffered = a.readBuffered(last.offsets[at], last.records[at].byteLength)
      if (buffered !== undefined) assertBytesEqual(buffered, last.records[at])
    }
    // 40 segments were written; one kept per pack would already be 10 buffers
    assert.ok(pool.peak <= 6, `${pool.peak} segment buffers alive at once for 10 packs`)
    for (const { a, records, offsets } of packs) {
      await a.sync()
      await a.close()
      const file = await readFile(join(dir, packFileName(a.pack)))
      assert.equal(file.byteLength, a.size)
      assert.equal(offsets[0], PACK_HEADER)
      records.forEach((r, i) => { assertBytesEqual(file.subarray(offsets[i], offsets[i] + r.byteLength), r) })
    }
    assert.ok(pool.held <= 2, `${pool.held} idle buffers held`)
  })

  it('a record larger than a segment gets a buffer of its own, not kept by the pool', async (t) => {
    const dir = await tempDir(t)
    const pool = new SegmentPool(16 * KiB)
    const a = await PackAppender.create(dir, 1, pool)
    const big = randomBytes(40 * KiB, 7)
    const [offset] = await appendAll(a, [big])
    await a.sync()
    await a.close()
    assert.equal(pool.peak, 1, 'the header\'s segment only')
    assert.ok(pool.held <= 1, `${pool.held} idle buffers held`)
    const file = await readFile(join(dir, packFileName(1)))
    assertBytesEqual(file.subarray(offset, offset + big.byteLength), big)
  })
})
