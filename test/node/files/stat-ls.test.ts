/**
 * `stat` and `ls` of a CID that is no UnixFS file or directory — a dag-cbor
 * node (a stripe manifest, say), a UnixFS symlink — say so with a typed
 * error, as `cat` and `get` do, instead of showing an empty file; files,
 * raw leaves and directories still show their type and size. Real `Files`
 * over a real block store and namespace on disk.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { directory, rawBlock, type Block } from '../../helpers/dags.js'
import { filesOnDisk } from './fixtures.js'

async function cborBlock (value: unknown): Promise<Block> {
  const bytes = dagCbor.encode(value)
  return { cid: CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes }
}

async function symlinkBlock (target: string): Promise<Block> {
  const bytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'symlink', data: new TextEncoder().encode(target) }).marshal(), Links: [] }))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

describe('stat and ls of what is not UnixFS', () => {
  it('a dag-cbor node or a UnixFS symlink asked for is refused with NotUnixFSFileError; inside a directory it is listed; files and directories show as before', async t => {
    const { files, blockstore } = await filesOnDisk(t)
    const cbor = await cborBlock({ stripes: [1, 2, 3] })
    const link = await symlinkBlock('/etc/passwd')
    const leaf = await rawBlock('twelve bytes')
    const good = await directory([{ name: 'leaf.txt', block: leaf }])
    const mixed = await directory([{ name: 'leaf.txt', block: leaf }, { name: 'manifest', block: cbor }])
    for (const b of [cbor, link, leaf, good, mixed]) await blockstore.put(b.cid, b.bytes)

    const refused = (what: string, why: RegExp) => (err: Error) => err.name === 'NotUnixFSFileError' && err.message.startsWith(what) && why.test(err.message)
    await assert.rejects(files.stat(cbor.cid.toString()), refused(cbor.cid.toString(), /is a dag-cbor node, not a UnixFS file or directory/))
    await assert.rejects(files.ls(cbor.cid.toString()), refused(cbor.cid.toString(), /dag-cbor node/))
    await assert.rejects(files.stat(link.cid.toString()), refused(link.cid.toString(), /is a UnixFS symlink, not a file or directory/))
    // inside a directory it is listed all the same (a UnixFS symlink in a tree from Kubo must not make the tree unlistable)
    assert.deepEqual((await files.ls(mixed.cid.toString())).map(e => e.name), ['leaf.txt', 'manifest'])

    assert.deepEqual(await files.stat(leaf.cid.toString()), { name: leaf.cid.toString(), type: 'file', cid: leaf.cid.toString(), size: 12 })
    assert.equal((await files.stat(good.cid.toString())).type, 'dir')
    assert.deepEqual(await files.ls(good.cid.toString()), [{ name: 'leaf.txt', type: 'file', cid: leaf.cid.toString(), size: 12 }])
  })
})
