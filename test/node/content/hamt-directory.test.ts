/**
 * HAMT-sharded directories (node/content/hamt-directory.ts) against the
 * reference: Helia's importer builds the same shards from the same links,
 * and the exporter lists and resolves every name through them.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagPb from '@ipld/dag-pb'
import { exporter } from 'ipfs-unixfs-exporter'
import { importer } from 'ipfs-unixfs-importer'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from '../../../node/blocks/index.js'
import { shardedDirectory, type DirectoryLink } from '../../../node/content/index.js'

/** A block store in a map, as the importer and the exporter take it. */
function memoryBlocks (): { blocks: Map<string, Uint8Array>, put: (cid: CID, bytes: Uint8Array) => Promise<CID>, get: (cid: CID) => AsyncGenerator<Uint8Array>, bytes: (cid: CID) => Uint8Array } {
  const blocks = new Map<string, Uint8Array>()
  return {
    blocks,
    put: async (cid, bytes) => { blocks.set(cid.toString(), bytes); return cid },
    async * get (cid) {
      const bytes = blocks.get(cid.toString())
      if (bytes === undefined) throw new Error(`no block ${cid.toString()}`)
      yield bytes
    },
    bytes: cid => {
      const bytes = blocks.get(cid.toString())
      if (bytes === undefined) throw new Error(`no block ${cid.toString()}`)
      return bytes
    }
  }
}

/** Small files, each with its own bytes, imported as `dir/<name>` by the importer with sharding forced. */
async function referenceDirectory (names: string[], store = memoryBlocks()): Promise<{ root: CID, links: DirectoryLink[] }> {
  const source = names.map(name => ({ path: `dir/${name}`, content: new TextEncoder().encode(`content of ${name}`) }))
  const links: DirectoryLink[] = []
  let root: CID | undefined
  for await (const entry of importer(source, store as any, { shardSplitThresholdBytes: 1 })) {
    if (entry.path === 'dir') root = entry.cid
    else links.push({ Name: (entry.path ?? '').slice('dir/'.length), Hash: entry.cid, Tsize: Number(entry.size) })
  }
  assert.ok(root !== undefined)
  return { root, links }
}

describe('HAMT-sharded directories', () => {
  it('give the CID Helia\'s importer gives the same links, whatever their order', async () => {
    const names = Array.from({ length: 2000 }, (_, i) => `mail-${String(i).padStart(5, '0')}.eml`)
    const { root, links } = await referenceDirectory(names)
    const store = memoryBlocks()
    const put = async (bytes: Uint8Array): Promise<CID> => await store.put(CID.createV1(dagPb.code, Digest.create(0x12, sha256(bytes))), bytes)
    const built = await shardedDirectory(links, put)
    assert.equal(built.cid.toString(), root.toString())
    const reversed = await shardedDirectory([...links].reverse(), put)
    assert.equal(reversed.cid.toString(), root.toString())
    // a root with sub-shards: 2,000 names do not fit 256 slots
    const top = dagPb.decode(store.bytes(built.cid))
    const fs = UnixFS.unmarshal(top.Data as Uint8Array)
    assert.equal(fs.type, 'hamt-sharded-directory')
    assert.equal(fs.fanout, 256n)
    assert.ok(top.Links.some(l => l.Name?.length === 2), 'some slot holds a sub-shard')
  })

  it('list and resolve every name through the exporter', async () => {
    const names = Array.from({ length: 700 }, (_, i) => `${i % 7 === 0 ? 'é' : 'n'}${i}.txt`)
    const store = memoryBlocks()
    const { links } = await referenceDirectory(names, store)
    for (const key of [...store.blocks.keys()]) if (CID.parse(key).code === dagPb.code) store.blocks.delete(key)
    const put = async (bytes: Uint8Array): Promise<CID> => await store.put(CID.createV1(dagPb.code, Digest.create(0x12, sha256(bytes))), bytes)
    const { cid, tsize } = await shardedDirectory(links, put)
    const dir = await exporter(cid, store)
    assert.equal(dir.type, 'directory')
    const listed = new Map<string, string>()
    for await (const e of dir.entries()) listed.set(e.name, e.cid.toString())
    assert.equal(listed.size, names.length)
    for (const l of links) assert.equal(listed.get(l.Name), l.Hash.toString(), l.Name)
    const one = await exporter(`${cid.toString()}/${links[123].Name}`, store)
    assert.equal(one.cid.toString(), links[123].Hash.toString())
    // Tsize: every shard's bytes and every entry's size
    let shardBytes = 0
    for (const [key, bytes] of store.blocks) if (CID.parse(key).code === dagPb.code) shardBytes += bytes.byteLength
    assert.equal(tsize, shardBytes + links.reduce((n, l) => n + l.Tsize, 0))
  })
})
