/**
 * Reads of hand-made UnixFS file DAGs whose sizes disagree, over a real
 * pack block store on disk: a dag-pb child holding fewer (or more) bytes
 * than its parent declares for it fails the read with InvalidBlockError,
 * whole or ranged, instead of streaming a file of the wrong length (or with
 * its later bytes at the wrong offsets) as if it were whole.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { readContent } from '../../../node/content/index.js'
import { collectBytes, randomBytes } from '../../helpers/bytes.js'
import { openBlockStore, type CleanupContext } from '../../helpers/temp.js'
import type { Block } from '../../helpers/dags.js'

/** A UnixFS file node with inline `data` and `children`, each declared to hold `size` bytes. */
async function fileNode (data: Uint8Array | undefined, children: Array<{ block: Block, size: number }>): Promise<Block> {
  const unixfs = new UnixFS({ type: 'file', data, blockSizes: children.map(c => BigInt(c.size)) })
  const bytes = dagPb.encode(dagPb.prepare({
    Data: unixfs.marshal(),
    Links: children.map(c => ({ Hash: c.block.cid, Tsize: c.block.bytes.byteLength }))
  }))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

async function rawLeaf (bytes: Uint8Array): Promise<Block> {
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

/**
 * A file of 1300 bytes as its root declares it: a dag-pb child declared to
 * hold 1000 bytes (holding `held`), then a raw leaf of 300.
 */
async function storeLyingFile (t: CleanupContext, held: number): Promise<{ store: Awaited<ReturnType<typeof openBlockStore>>, root: CID }> {
  const store = await openBlockStore(t)
  const inner = await fileNode(randomBytes(held, 1), [])
  const tail = await rawLeaf(randomBytes(300, 2))
  const root = await fileNode(undefined, [{ block: inner, size: 1000 }, { block: tail, size: 300 }])
  for (const b of [inner, tail, root]) await store.put(b.cid, b.bytes)
  return { store, root: root.cid }
}

async function rejectsInvalidBlock (read: Promise<unknown>): Promise<void> {
  await assert.rejects(read, (err: any) => {
    assert.equal(err?.name, 'InvalidBlockError', `expected InvalidBlockError, got ${String(err?.name)}: ${String(err?.message)}`)
    return true
  })
}

describe('ranged reads of a DAG whose sizes disagree', () => {
  it('a dag-pb child holding less than its parent declares fails the read (not a short file)', async t => {
    const { store, root } = await storeLyingFile(t, 500)
    await rejectsInvalidBlock(collectBytes(readContent(store, root)))
    await rejectsInvalidBlock(collectBytes(readContent(store, root, { offset: 100, length: 1000 })))
  })

  it('a dag-pb child holding more than its parent declares fails the read (not later bytes at wrong offsets)', async t => {
    const { store, root } = await storeLyingFile(t, 1500)
    await rejectsInvalidBlock(collectBytes(readContent(store, root)))
    await rejectsInvalidBlock(collectBytes(readContent(store, root, { offset: 900, length: 200 })))
  })

  it('an honest DAG of the same shape reads whole and by range', async t => {
    const { store, root } = await storeLyingFile(t, 1000)
    const all = await collectBytes(readContent(store, root))
    assert.equal(all.byteLength, 1300)
    assert.deepEqual(await collectBytes(readContent(store, root, { offset: 990, length: 20 })), all.subarray(990, 1010))
    assert.equal((await collectBytes(readContent(store, root, { offset: 1300 }))).byteLength, 0)
  })
})
