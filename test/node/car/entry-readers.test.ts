/**
 * A CAR export of a directory reads each entry through a reader of its own
 * (its pin: stripes, cold copy) and closes that reader once the walk has
 * left the entry's DAG. Before, every entry's reader was made when its
 * directory was met and kept open until the whole export ended: a
 * directory of n cold files held n cold readers, each with its read-ahead
 * cache (up to 32 MiB), to the end. Real block store on disk, hand-made
 * DAGs (a directory of files of two leaves, and a directory inside it).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { exportCar } from '../../../node/car/index.js'
import { openBlockStore } from '../../helpers/temp.js'
import { directory, rawBlock, type Block } from '../../helpers/dags.js'
import type { BlockGetter } from '../../../node/reads/api.js'

/** A UnixFS file node over `leaves`. */
async function file (leaves: Block[]): Promise<Block> {
  const node = new UnixFS({ type: 'file', blockSizes: leaves.map(l => BigInt(l.bytes.byteLength)) })
  const bytes = dagPb.encode(dagPb.prepare({ Data: node.marshal(), Links: leaves.map(l => ({ Hash: l.cid, Tsize: l.bytes.byteLength })) }))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

describe('exportCar with a reader per directory entry', () => {
  it('makes each entry\'s reader when the walk reaches it and closes it when the walk leaves its DAG', { timeout: 60_000 }, async t => {
    const store = await openBlockStore(t)
    const blocks: Block[] = []
    const files: Array<{ name: string, block: Block }> = []
    for (let i = 0; i < 40; i++) {
      const leaves = [await rawBlock(`file ${i} part a`), await rawBlock(`file ${i} part b`)]
      const f = await file(leaves)
      blocks.push(...leaves, f)
      files.push({ name: `f${String(i).padStart(2, '0')}`, block: f })
    }
    const inner = await directory(files.slice(30).map(e => ({ name: e.name, block: e.block })))
    const root = await directory([...files.slice(0, 30), { name: 'sub', block: inner }])
    blocks.push(inner, root)
    for (const b of blocks) await store.put(b.cid, b.bytes)

    let open = 0
    let most = 0
    let made = 0
    let closed = 0
    const entryReader = (_entry: CID): BlockGetter & { close: () => void } => {
      made++
      open++
      most = Math.max(most, open)
      let done = false
      return {
        getBytes: async (cid, o) => {
          assert.equal(done, false, 'a closed reader is not read through')
          return await store.getBytes(cid, o)
        },
        close: () => {
          if (done) return
          done = true
          open--
          closed++
        }
      }
    }
    const got = new Set<string>()
    const { CarBlockIterator } = await import('@ipld/car/iterator')
    for await (const block of await CarBlockIterator.fromIterable(exportCar(store, root.cid, { entryReader }))) got.add(block.cid.toString())
    assert.deepEqual([...got].sort(), blocks.map(b => b.cid.toString()).sort(), 'every block, once')
    // 30 files and `sub` in the root, 10 files in `sub`: one reader each
    assert.equal(made, 41)
    assert.equal(closed, 41, 'every reader closed')
    // the walk holds `sub`'s reader and the one of the file under it, no more
    assert.ok(most <= 2, `at most 2 readers open at once, not ${most}`)
  })
})
