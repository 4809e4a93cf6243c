/**
 * Which blocks a gateway CAR holds: the `follow` and `revisit` hooks of the
 * node's CAR export (node/car/export.ts) for a resolved content path and a
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
 * Each block is written once (`dups=n`). A subtree may occur more than once
 * in a file (the same bytes at two offsets, under one parent or two); each
 * occurrence the range meets needs its own part of the subtree. So the walk
 * keeps, for every file node below the terminal, the parts of its own bytes
 * (node-local intervals) that occurrences met so far need, and a node met
 * again for a part not yet walked is walked again (read, not written again)
 * for that part: the CAR holds the union of the blocks every occurrence
 * needs. At most one occurrence of a node can hold each end of the range,
 * so a node is walked for at most three distinct parts (whole, the range's
 * start, its end); a DAG whose sizes lie is walked whole for the node past
 * that, so the walk stays bounded.
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

/** An inclusive interval of one node's own bytes (0: the node's first byte). */
type Interval = ByteRange

/** All of a node's bytes. */
const WHOLE: Interval = { first: 0, last: Number.MAX_SAFE_INTEGER }

/** Distinct parts a node is walked for before it is walked whole (a bound for DAGs whose sizes lie). */
const MAX_PARTS = 3

/** The hooks of {@link exportCar} for a scoped CAR. */
export interface ScopedWalk {
  follow: (block: WalkedBlock) => CID[]
  revisit: (cid: CID) => boolean
}

/** True when the union of `parts` holds every byte of `interval`. */
function covered (parts: Interval[], interval: Interval): boolean {
  const sorted = [...parts].sort((a, b) => a.first - b.first)
  let run: Interval | undefined
  for (const p of sorted) {
    if (run !== undefined && p.first <= run.last + 1) { run.last = Math.max(run.last, p.last); continue }
    if (run !== undefined && run.first <= interval.first && run.last >= interval.last) return true
    run = { ...p }
  }
  return run !== undefined && run.first <= interval.first && run.last >= interval.last
}

/**
 * The export hooks that make the CAR of `path` hold what `selection` asks
 * for (see the module comment).
 */
export function scopedWalk (path: ResolvedPath, selection: CarSelection): ScopedWalk {
  const terminalKey = nodeKey(path.terminal)
  /** File nodes below the terminal: the parts of their bytes still to walk… */
  const pending = new Map<string, Interval[]>()
  /** …and the parts already walked. */
  const walked = new Map<string, Interval[]>()
  /** Sub-shards of a HAMT-sharded terminal directory. */
  const shards = new Set<string>()

  /** Record that `key` needs `part`; false when an earlier occurrence already covers it. */
  const want = (key: string, part: Interval): boolean => {
    const known = [...(walked.get(key) ?? []), ...(pending.get(key) ?? [])]
    if (covered(known, part)) return false
    pending.set(key, known.length + 1 > MAX_PARTS ? [WHOLE] : [...(pending.get(key) ?? []), part])
    return true
  }

  const fileLinks = (node: dagPB.PBNode, fs: UnixFS, parts: Interval[]): CID[] => {
    // a malformed node (sizes not matching links): every link, a superset the client can verify
    if (fs.blockSizes.length !== node.Links.length) return node.Links.map(l => l.Hash)
    const out: CID[] = []
    const listed = new Set<string>()
    let offset = fs.data?.byteLength ?? 0
    node.Links.forEach((link, i) => {
      const size = Number(fs.blockSizes[i])
      let needed = false
      for (const part of parts) {
        const whole = selection.range === undefined
        if (!whole && (size === 0 || offset > part.last || offset + size - 1 < part.first)) continue
        if (link.Hash.code !== DAG_PB) { needed = true; continue }
        const childPart = whole ? WHOLE : { first: Math.max(part.first, offset) - offset, last: Math.min(part.last, offset + size - 1) - offset }
        if (want(nodeKey(link.Hash), childPart)) needed = true
      }
      const key = nodeKey(link.Hash)
      if (needed && !listed.has(key)) { listed.add(key); out.push(link.Hash) }
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

  const entityLinks = (block: WalkedBlock, parts: Interval[]): CID[] => {
    const unixfs = unixfsOf(block.cid, block.bytes)
    if (unixfs === undefined) return []
    if (unixfs.fs.type === 'file' || unixfs.fs.type === 'raw') return fileLinks(unixfs.node, unixfs.fs, parts)
    if (unixfs.fs.type === 'hamt-sharded-directory') return shardLinks(unixfs.node, unixfs.fs)
    return []
  }

  const follow = (block: WalkedBlock): CID[] => {
    const key = nodeKey(block.cid)
    if (key !== terminalKey && path.pathBlocks.has(key)) {
      return linksOf(block.cid, block.bytes).filter(l => { const k = nodeKey(l); return k === terminalKey || path.pathBlocks.has(k) })
    }
    if (selection.scope === 'all') return linksOf(block.cid, block.bytes)
    if (key === terminalKey) return selection.scope === 'block' ? [] : entityLinks(block, [selection.range ?? WHOLE])
    const parts = pending.get(key)
    if (parts !== undefined) {
      pending.delete(key)
      walked.set(key, [...(walked.get(key) ?? []), ...parts])
      return entityLinks(block, parts)
    }
    if (shards.has(key)) return entityLinks(block, [WHOLE])
    return []
  }

  return { follow, revisit: cid => pending.has(nodeKey(cid)) }
}
