/**
 * A pack deleted or cut short while the store was closed: open marks the
 * index entries of the records it lost bad (node/blocks/index-audit.ts), so
 * the store stops claiming them at once (`has` false, never served, the next
 * put writes them anew) instead of at the next scrub. Real packs and LevelDB
 * in a temp dir; the faults are made for real on the closed store.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { open, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { packFileName } from '../../../node/blocks/pack-file.js'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { openBlockStore, tempDir } from '../../helpers/temp.js'
import { blocksOf, rejectsNamed } from './fixtures.js'

const KiB = 1024
const SIZE = 20 * KiB
/** About four records a pack: twelve blocks fill three packs. */
const OPTIONS = { maxPackBytes: 100 * KiB, autoCompact: false }

describe('open: packs deleted or cut short while the store was closed', () => {
  it('marks the entries of the lost records bad: not here, replaced by the next put; compaction skips the missing pack', { timeout: 60_000 }, async (t) => {
    const dir = await tempDir(t, 'wt-pin-lost-packs-')
    const blocks = blocksOf(12, SIZE, 77)
    const first = await openBlockStore(t, dir, OPTIONS)
    for (const { cid, bytes } of blocks) await first.put(cid, bytes)
    await first.commit()
    const at = await Promise.all(blocks.map(async b => await first.locate(b.cid)))
    await first.close()
    const packs = [...new Set(at.map(l => l?.pack as number))]
    assert.ok(packs.length >= 3, `three packs at least, got ${packs.length}`)
    const [gone, cut] = packs
    // the first pack deleted, the second cut in the middle of its second record
    await unlink(join(dir, 'packs', packFileName(gone)))
    const inCut = at.filter(l => l?.pack === cut).sort((a, b) => (a?.offset ?? 0) - (b?.offset ?? 0))
    const cutAt = (inCut[1]?.offset as number) + 100
    const fh = await open(join(dir, 'packs', packFileName(cut)), 'r+')
    try { await fh.truncate(cutAt) } finally { await fh.close() }
    const lost = new Set(at.flatMap((l, i) => l !== undefined && (l.pack === gone || (l.pack === cut && l.offset + l.length > cutAt)) ? [i] : []))
    assert.ok(lost.size >= 4)

    const store = await openBlockStore(t, dir, OPTIONS)
    assert.deepEqual(store.recovery?.missingPacks, [gone])
    assert.deepEqual(store.recovery?.shortPacks, [cut])
    for (const [i, { cid, bytes }] of blocks.entries()) {
      assert.equal(await store.has(cid), !lost.has(i), `has of block ${i}`)
      if (lost.has(i)) await rejectsNamed(store.getBytes(cid), 'CorruptBlockError')
      else assertBytesEqual(await store.getBytes(cid), bytes)
    }
    assert.equal(store.audit?.markedUnreadable, lost.size, 'every entry whose record is gone is marked')
    assert.deepEqual(store.audit?.disagreeingPacks, [])
    // the next put of a lost block writes it anew
    const back = [...lost][0]
    await store.put(blocks[back].cid, blocks[back].bytes)
    await store.commit()
    assert.equal(await store.has(blocks[back].cid), true)
    assertBytesEqual(await store.getBytes(blocks[back].cid), blocks[back].bytes)
    // a pass over every pack holding a dead record: the missing one has nothing to copy, the others are rewritten
    await store.compact({ liveBelow: 1 })
    await store.close()

    // the marks stay (nothing new to mark), the accounting holds, the put block stays
    const again = await openBlockStore(t, dir, OPTIONS)
    assert.equal(again.audit?.markedUnreadable, 0)
    assert.deepEqual(again.audit?.disagreeingPacks, [])
    for (const [i, { cid, bytes }] of blocks.entries()) {
      const here = !lost.has(i) || i === back
      assert.equal(await again.has(cid), here, `has of block ${i} after reopening`)
      if (here) assertBytesEqual(await again.getBytes(cid), bytes)
    }
  })
})
