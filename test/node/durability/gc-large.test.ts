/**
 * Garbage collection of a large block store (60,000 small blocks written
 * straight into a real pack store): the kept blocks all read back, the
 * garbage goes, and what the collection holds in memory does not grow with
 * the store. A collection used to keep a set of every marked block's key
 * and a list of every unmarked CID (~100 bytes a block and more: ~1 GB of
 * heap for ten million blocks), and large nodes ran out of heap during
 * `shoal gc`.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { equals } from 'uint8arrays/equals'
import { pino } from 'pino'
import { MemoryKV } from '../../../node/namespace/index.js'
import { collectGarbage, GcLock, Holdings } from '../../../node/durability/index.js'
import type { GcProgressEvents } from '../../../node/durability/gc.js'
import { MARK_FALSE_POSITIVE } from '../../../node/durability/mark-set.js'
import { openBlockStore } from '../../helpers/temp.js'
import { blockBytes, fillStore, rawCid } from '../../helpers/many-blocks.js'

const logger = pino({ level: 'silent' })
const MiB = 1024 * 1024

/** A full collection of the JS heap, so that what is measured is what is live. */
const collectHeap: () => void = (() => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

describe('garbage collection of a large store', () => {
  it('60,000 blocks: keeps every kept block, removes the garbage, with little live heap', { timeout: 120_000 }, async t => {
    const blockstore = await openBlockStore(t, undefined, { maxPackBytes: MiB })
    const seed = 'gc-large'
    const filled = await fillStore(blockstore, { blocks: 60_000, seed })
    const holdings = new Holdings(new MemoryKV())
    await holdings.open()
    const components = { blockstore, holdings, files: async function * () { yield * filled.files }, lock: new GcLock(), logger }

    // the live heap, sampled while the collection runs: once marking is done, then every 16,384 blocks swept
    collectHeap()
    const base = process.memoryUsage().heapUsed
    let peak = 0
    const sample = (): void => { collectHeap(); peak = Math.max(peak, process.memoryUsage().heapUsed - base) }
    const onProgress = (event: GcProgressEvents): void => {
      const p = event.detail
      if (p.step === 'sweep' && p.checked % 16_384 === 0) sample()
    }
    const first = await collectGarbage(components, 0, { onProgress })
    t.diagnostic(`live heap growth: ${(peak / MiB).toFixed(2)} MiB`)
    // the old collection held ~15 MiB here (a set of 30,000 keys and a list of 30,000 CIDs)
    assert.ok(peak < 5 * MiB, `live heap growth during the collection: ${(peak / MiB).toFixed(1)} MiB`)

    // garbage kept by a false positive of the marks: the documented share at most
    assert.ok(first.removed >= filled.garbage * (1 - MARK_FALSE_POSITIVE) && first.removed <= filled.garbage, `removed ${first.removed} of ${filled.garbage}`)
    const second = await collectGarbage(components, 0)
    assert.equal(first.removed + second.removed, filled.garbage, 'the next collection takes what the first kept by chance')
    assert.ok(first.marked >= filled.kept * (1 - MARK_FALSE_POSITIVE) && first.marked <= filled.kept, `marked ${first.marked} of ${filled.kept}`)

    // every kept block reads back; every garbage block is gone
    let missing = 0
    let left = 0
    for (let i = 0; i < 60_000; i++) {
      const bytes = blockBytes(seed, i)
      const cid = await rawCid(bytes)
      if (i % 2 === 0) {
        if (!equals(await blockstore.getBytes(cid), bytes)) missing++
      } else if (await blockstore.has(cid)) left++
    }
    assert.deepEqual({ missing, left }, { missing: 0, left: 0 })
  })
})
