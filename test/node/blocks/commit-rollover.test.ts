/**
 * A pack that fills up while a commit syncs it: the rollover to the next
 * pack left it open for that commit, which closes it once done. It closed
 * the file under the commit ("file closed"): the commit failed, and with it
 * every write it covered — seen once the exchange committed each push
 * (node/blocks/group-commit.ts), as a holder's placements failing.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { assertBytesEqual } from '../../helpers/bytes.js'
import { openBlockStore, tempDir } from '../../helpers/temp.js'
import { blocksOf } from './fixtures.js'

const KiB = 1024

describe('a commit while the pack rolls over', () => {
  it('puts that fill the pack during a commit roll over without failing it; every block is committed and read back after a reopen', async t => {
    const dir = await tempDir(t)
    const options = { autoCompact: false, maxPackBytes: 256 * KiB }
    const store = await openBlockStore(t, dir, options)
    const blocks = blocksOf(40, 64 * KiB, 7)
    let failures = 0
    // each round: a put, a commit begun, and the puts that fill the pack while it syncs
    for (let i = 0; i < blocks.length; i += 4) {
      await store.put(blocks[i].cid, blocks[i].bytes)
      const commit = store.commit().catch(() => { failures++ })
      await Promise.all(blocks.slice(i + 1, i + 4).map(async b => await store.put(b.cid, b.bytes)))
      await commit
    }
    await store.commit()
    assert.equal(failures, 0, 'no commit failed')
    assert.equal(store.failedCommits, 0)
    await store.close()
    const again = await openBlockStore(t, dir, options)
    for (const b of blocks) assertBytesEqual(await again.getBytes(b.cid), b.bytes)
  })
})
