/**
 * Which blocks a gateway CAR holds: the `follow` hook of the node's CAR
 * export (node/car/export.ts) for a resolved content path and a
 * `dag-scope`, so the one depth-first export writes a partial DAG.
 *
 * The walk starts at the path's root. Blocks read to resolve the path
 * (directories, HAMT shards) lead only towards the path's end; at the end,
 * the terminal entity is walked as the trustless-gateway spec scopes it:
 *
 * - `block`: the terminal block alone;
 * - `entity`: a UnixFS file whole (every block of it) or, with
 *   `entity-bytes`, only the blocks holding that byte range — a file node's
 *   own data and `blocksizes` give each child's offset, so a child is
 *   followed only when its bytes meet the range; a directory's block, or
 *   every shard of a HAMT-sharded directory (its entries are not followed);
 *   anything else (raw, dag-cbor, symlink) is its block;
 * - `all`: everything below the terminal.
 *
 * Each block appears once (`dups=n`): a subtree that occurs twice in a file
 * is written where it first occurs, with the part of it the range needed
 * there.
 *
 * @module
 */
import { DAG_PB, linksOf, nodeKey } from '../car/links.js'
import { unixfsOf } from './unixfs.js'
import type * as dagPB from '@ipld/dag-pb'
import type { UnixFS } from 'ipfs-unixfs'
import type { ByteRange } from './range.js'
import type { DagScope } from './negotiate.js'
import type { ResolvedPath } from './resolve.js'
import type { CID } from 'multiformats/cid'

/** What part of the DAG a CAR holds. */
export interface CarSelection {
  scope: DagScope
  /** With `entity` on a file: the bytes whose blocks are sent (the whole file when absent). */
  range?: ByteRange
}

/** A block as the export walks it. */
interface WalkedBlock { cid: CID, bytes: Uint8Array }

/**
 * The `follow` hook that makes the CAR of `path` hold what `selection`
 * asks for (see the module comment).
 */
export function scopedFollow (path: ResolvedPath, selection: CarSelection): (block: WalkedBlock) => CID[] {
  const terminalKey = nodeKey(path.terminal)
  /** File nodes below the terminal that the walk will reach, with the offset of their first byte. */
  const fileStarts = new Map<string, number>()
  /** Sub-shards of a HAMT-sharded terminal directory. */
  const shards = new Set<string>()

  const fileLinks = (node: dagPB.PBNode, fs: UnixFS, start: number): CID[] => {
    const { range } = selection
    // a malformed node (sizes not matching links): every link, a superset the client can verify
    if (fs.blockSizes.length !== node.Links.length) return node.Links.map(l => l.Hash)
    const out: CID[] = []
    let offset = start + (fs.data?.byteLength ?? 0)
    node.Links.forEach((link, i) => {
      const size = Number(fs.blockSizes[i])
      if (range === undefined || (size > 0 && offset <= range.last && offset + size - 1 >= range.first)) {
        out.push(link.Hash)
        if (link.Hash.code === DAG_PB) fileStarts.set(nodeKey(link.Hash), offset)
      }
      offset += size
    })
    return out
  }

  const shardLinks = (node: dagPB.PBNode, fs: UnixFS): CID[] => {
    // sub-shards are the links named by their bucket alone (hex of fanout - 1 wide); entries add their name
    const width = (Number(fs.fanout ?? 256n) - 1).toString(16).length
    const out = node.Links.filter(l => (l.Name ?? '').length === width).map(l => l.Hash)
    for (const cid of out) shards.add(nodeKey(cid))
    return out
  }

  const entityLinks = (block: WalkedBlock, start: number): CID[] => {
    const unixfs = unixfsOf(block.cid, block.bytes)
    if (unixfs === undefined) return []
    if (unixfs.fs.type === 'file' || unixfs.fs.type === 'raw') return fileLinks(unixfs.node, unixfs.fs, start)
    if (unixfs.fs.type === 'hamt-sharded-directory') return shardLinks(unixfs.node, unixfs.fs)
    return []
  }

  return block => {
    const key = nodeKey(block.cid)
    if (key !== terminalKey && path.pathBlocks.has(key)) {
      return linksOf(block.cid, block.bytes).filter(l => { const k = nodeKey(l); return k === terminalKey || path.pathBlocks.has(k) })
    }
    if (selection.scope === 'all') return linksOf(block.cid, block.bytes)
    if (key === terminalKey) return selection.scope === 'block' ? [] : entityLinks(block, 0)
    const start = fileStarts.get(key)
    if (start !== undefined) {
      fileStarts.delete(key)
      return entityLinks(block, start)
    }
    if (shards.has(key)) return entityLinks(block, 0)
    return []
  }
}
