/**
 * The tree's change done at once (`TreeWriter.changeNow`, what applying a
 * page of history uses) against the awaited one (`change`): the same
 * changes on two stores leave the same rows, whether `changeNow` took the
 * change or declined it (conflicts, a parent to refresh) having written
 * nothing.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryKV, Txn } from '../../../node/namespace/kv.js'
import { TreeWriter, type Version } from '../../../node/namespace/tree.js'
import type { Dot } from '../../../node/namespace/clock.js'

/** Every row of a store, decoded as text. */
async function rows (kv: MemoryKV): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for await (const [key, value] of kv.iterate({})) out.push([key, Buffer.from(value).toString()])
  return out
}

function file (author: string, seq: number, mtime: number): Version {
  return { author, seq, time: mtime, type: 'file', cid: `cid-${author}-${seq}`, size: seq, mode: 0o644, mtime }
}

function dir (author: string, seq: number, mtime: number): Version {
  return { author, seq, time: mtime, type: 'dir', mode: 0o755, mtime }
}

describe('tree: a change done at once', () => {
  it('leaves the rows the awaited change leaves, and declines what it cannot do at once', async () => {
    const now = new MemoryKV()
    const awaited = new MemoryKV()
    const steps: Array<{ path: string, replaces: Dot[], add?: Version, atOnce: boolean }> = [
      // a file under directories that do not exist yet: its parent becomes a directory (refreshed, so declined)
      { path: '/a/b/f1', replaces: [], add: file('x', 1, 10), atOnce: false },
      // a second file in that directory: only the parent's child count changes
      { path: '/a/b/f2', replaces: [], add: file('x', 2, 20), atOnce: true },
      // a top-level file
      { path: '/top', replaces: [], add: file('x', 3, 30), atOnce: true },
      // a directory of its own where an implicit one stands
      { path: '/a/b', replaces: [], add: dir('x', 4, 40), atOnce: true },
      // a version replaced by the next
      { path: '/a/b/f1', replaces: [['x', 1]], add: file('y', 1, 50), atOnce: true },
      // a concurrent version: a conflict copy (declined)
      { path: '/a/b/f1', replaces: [], add: file('z', 1, 45), atOnce: false },
      // both replaced: the copy goes (declined: the path had copies)
      { path: '/a/b/f1', replaces: [['y', 1], ['z', 1]], add: file('x', 5, 60), atOnce: false },
      // a delete: the parent, a directory of its own, keeps its record
      { path: '/a/b/f2', replaces: [['x', 2]], atOnce: true },
      // deleting the last file of an implicit directory: it disappears (declined)
      { path: '/a/b', replaces: [['x', 4]], atOnce: true },
      { path: '/a/b/f1', replaces: [['x', 5]], atOnce: false },
      // a delete of nothing there
      { path: '/nothing', replaces: [['x', 9]], atOnce: true }
    ]
    for (const [i, step] of steps.entries()) {
      const a = new Txn(now)
      const took = new TreeWriter(a).changeNow(step.path, step.replaces, step.add)
      assert.equal(took, step.atOnce, `step ${i}: done at once`)
      if (!took) {
        assert.equal(a.size, 0, `step ${i}: declined having written nothing`)
        await new TreeWriter(a).change(step.path, step.replaces, step.add)
      }
      await a.commit()
      const b = new Txn(awaited)
      await new TreeWriter(b).change(step.path, step.replaces, step.add)
      await b.commit()
      assert.deepEqual(await rows(now), await rows(awaited), `step ${i}: same rows`)
    }
  })
})
