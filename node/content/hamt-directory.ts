/**
 * HAMT-sharded UnixFS directories: the form IPFS gives a directory too large
 * for one block, built from a directory's links.
 *
 * Why: a directory's DAG is one dag-pb block of links, and a block has a
 * size limit (directory.ts, {@link MAX_DIRECTORY_BLOCK}): a flat folder of
 * 20,000 mails passes it. Kubo, Helia and the gateways read the sharded form
 * (UnixFS `HAMTShard`), so a sharded directory keeps a CID that `car export`,
 * `get`, `ls CID` and IPFS tools understand.
 *
 * How: each name's murmur3-x64-64 hash (the first 8 bytes of murmur3-x64-128,
 * reversed, as go-unixfs does; hash type 0x22) picks, 8 bits per level, one of
 * the 256 slots of a shard. A slot holds one entry (linked as `XX<name>`, XX
 * the slot in two upper-case hex digits) or, when several names share the
 * prefix, a sub-shard (linked as `XX`). A shard's data is the bit field of its
 * occupied slots. The trie is `hamt-sharding`'s, the library Helia's importer
 * builds the same nodes with (ipfs-unixfs-importer, dir-sharded.js): the same
 * links give the same CID (checked against the importer in
 * test/node/content/hamt-directory.test.ts). The shape depends only on the set
 * of names, never on their order.
 *
 * When: only for a directory whose flat block would pass the limit, so every
 * directory that fits one block keeps the CID it always had.
 *
 * @module
 */
import * as dagPb from '@ipld/dag-pb'
import { murmur3128 } from '@multiformats/murmur3'
import { Bucket, createHAMT } from 'hamt-sharding'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'

/** Bits of the hash each level of the trie uses: 256 slots per shard, as IPFS's default. */
export const SHARD_FANOUT_BITS = 8

/** Multicodec of the names' hash: murmur3-x64-64. */
const MURMUR3_X64_64 = 0x22n

/** A link of a directory: a name, the CID it names and the size of its DAG. */
export interface DirectoryLink {
  Name: string
  Hash: CID
  Tsize: number
}

/** A stored directory node (or shard): its CID and the size of its whole DAG. */
export interface StoredNode {
  cid: CID
  tsize: number
}

/** Stores an encoded dag-pb node and gives its CID. */
export type PutNode = (bytes: Uint8Array) => Promise<CID>

/** The hash a name's slots are taken from (go-unixfs's: murmur3-x64-128's first 8 bytes, reversed). */
async function nameHash (name: Uint8Array): Promise<Uint8Array> {
  return (await murmur3128.encode(name)).slice(0, 8).reverse()
}

/**
 * Build a HAMT-sharded directory of `links`, handing each shard to `put`
 * (sub-shards before the shards that link them); the root's CID and the size
 * of the whole DAG (its blocks and its entries' `Tsize`).
 */
export async function shardedDirectory (links: readonly DirectoryLink[], put: PutNode): Promise<StoredNode> {
  const trie = createHAMT<DirectoryLink>({ hashFn: nameHash, bits: SHARD_FANOUT_BITS })
  for (const link of links) await trie.put(link.Name, link)
  return await storeShard(trie, put)
}

async function storeShard (shard: Bucket<DirectoryLink>, put: PutNode): Promise<StoredNode> {
  const slots = shard._children
  const digits = (shard.tableSize() - 1).toString(16).length
  const links: dagPb.PBLink[] = []
  let below = 0
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.get(i)
    if (slot == null) continue
    const label = i.toString(16).toUpperCase().padStart(digits, '0')
    if (slot instanceof Bucket) {
      const sub = await storeShard(slot, put)
      links.push({ Name: label, Hash: sub.cid, Tsize: sub.tsize })
      below += sub.tsize
    } else {
      links.push({ Name: label + slot.key, Hash: slot.value.Hash, Tsize: slot.value.Tsize })
      below += slot.value.Tsize
    }
  }
  const data = new UnixFS({
    type: 'hamt-sharded-directory',
    // go-unixfs writes the bit field little-endian
    data: Uint8Array.from(slots.bitField().reverse()),
    fanout: BigInt(shard.tableSize()),
    hashType: MURMUR3_X64_64
  })
  const bytes = dagPb.encode(dagPb.prepare({ Data: data.marshal(), Links: links }))
  return { cid: await put(bytes), tsize: bytes.byteLength + below }
}
