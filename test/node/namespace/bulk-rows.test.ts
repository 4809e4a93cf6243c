/**
 * The rows of a first snapshot load (bulk-rows.ts): a batch that fills
 * while the one before it is being written reads that one's writes, and
 * the store once it is written.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { BulkRows } from '../../../node/namespace/bulk-rows.js'
import { MemoryKV, decodeJSON, type KVOp } from '../../../node/namespace/kv.js'

/** A store whose batches wait until `release()` is called. */
class HeldKV extends MemoryKV {
  private readonly held: Array<() => void> = []
  override async batch (ops: KVOp[]): Promise<void> {
    await new Promise<void>(resolve => this.held.push(resolve))
    await super.batch(ops)
  }

  release (): void { for (const r of this.held.splice(0)) r() }
}

const LIMITS = { rows: 100, rawBytes: 1024 }

describe('bulk rows', () => {
  it('a batch reads through the batch behind it while that one is written, then through the store', async () => {
    const kv = new HeldKV()
    const first = new BulkRows(kv, LIMITS)
    first.put('t!/\x00d', { type: 'dir', children: 1 })
    first.put('v!/gone', { versions: [] })
    first.del('v!/gone')
    first.putBytes('r!raw', new TextEncoder().encode('{"n":1}'))
    const writing = first.commit(false)
    const next = new BulkRows(kv, LIMITS, first)
    // not in the store yet: read from the batch being written
    assert.equal(await kv.get('t!/\x00d'), undefined)
    assert.deepEqual(await next.get('t!/\x00d'), { type: 'dir', children: 1 })
    assert.deepEqual(await next.get('r!raw'), { n: 1 })
    assert.equal(await next.get('v!/gone'), undefined, 'a delete in the batch behind is seen')
    // its own writes come first
    next.put('t!/\x00d', { type: 'dir', children: 2 })
    assert.deepEqual(await next.get('t!/\x00d'), { type: 'dir', children: 2 })
    kv.release()
    await writing
    next.written()
    assert.deepEqual(decodeJSON(await kv.get('t!/\x00d') as Uint8Array), { type: 'dir', children: 1 })
    assert.deepEqual(await next.get('r!raw'), { n: 1 }, 'from the store once written')
    const done = next.commit(false)
    kv.release()
    await done
    assert.deepEqual(decodeJSON(await kv.get('t!/\x00d') as Uint8Array), { type: 'dir', children: 2 })
  })
})
