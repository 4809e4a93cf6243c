/**
 * What the scrub keeps of the corrupt blocks that still decode as dag-pb
 * nodes: their bytes, so the walk that tells which corrupt blocks a file
 * needs (kept.ts) can go on below a file's inner node the scrub had to
 * delete. The bytes are not trusted as data: a link is only used when its
 * multihash is that of a block held here or of another corrupt block, and
 * then it names that block with its codec. A link bit rot changed matches
 * nothing: the blocks below it cannot be told from leftovers
 * ({@link CorruptNodes.linksAccounted}).
 *
 * Bounded: past {@link CorruptNodesInit.maxBytes} nothing more is kept
 * (the nodes not kept count as hiding what lies below them).
 *
 * @module
 */
import * as dagPb from '@ipld/dag-pb'
import { blockKey, type BlockStore } from '../blocks/index.js'
import type { CID } from 'multiformats/cid'

/** Bytes of corrupt nodes kept at most by one scrub. */
export const CORRUPT_NODES_MAX_BYTES = 64 * 1024 * 1024

/** Options of {@link CorruptNodes}. */
export interface CorruptNodesInit {
  /** @default {@link CORRUPT_NODES_MAX_BYTES} */
  maxBytes?: number
}

/** The corrupt dag-pb nodes of one scrub, by block key. */
export class CorruptNodes {
  private readonly nodes = new Map<string, Uint8Array>()
  private bytes = 0
  private readonly maxBytes: number

  constructor (init: CorruptNodesInit = {}) {
    this.maxBytes = init.maxBytes ?? CORRUPT_NODES_MAX_BYTES
  }

  /** Keep `bytes`, the corrupt copy of `cid`, if it decodes as a dag-pb node and there is room. */
  add (cid: CID, bytes: Uint8Array): void {
    if (this.bytes + bytes.byteLength > this.maxBytes) return
    if (linksOf(bytes) === undefined) return
    this.nodes.set(blockKey(cid), bytes)
    this.bytes += bytes.byteLength
  }

  /** A reader of `local` that answers a block it lacks with its corrupt copy, when kept. */
  over (local: Pick<BlockStore, 'getBytes'>): Pick<BlockStore, 'getBytes'> {
    return {
      getBytes: async (cid, options) => {
        try {
          return await local.getBytes(cid, options)
        } catch (err) {
          const kept = this.nodes.get(blockKey(cid))
          if (kept === undefined) throw err
          return kept
        }
      }
    }
  }

  /**
   * Whether every block below the lost block `cid` is accounted for: it is
   * raw (a leaf links nothing), or a kept dag-pb node each of whose links
   * names a block held here (`has`) or one of `corrupt` (by key). False for
   * anything else: its links are gone with it, or bit rot changed one.
   */
  async linksAccounted (cid: CID, corrupt: ReadonlySet<string>, has: (cid: CID) => Promise<boolean>): Promise<boolean> {
    if (cid.code === RAW || cid.multihash.code === IDENTITY) return true
    const bytes = this.nodes.get(blockKey(cid))
    const links = bytes === undefined || cid.code !== dagPb.code ? undefined : linksOf(bytes)
    if (links === undefined) return false
    for (const link of links) {
      if (link.multihash.code === IDENTITY || corrupt.has(blockKey(link))) continue
      if (!await has(link)) return false
    }
    return true
  }
}

const RAW = 0x55
const IDENTITY = 0x00

/**
 * The links of a dag-pb node with Data (as every UnixFS node has), or
 * undefined when the bytes do not decode as one. Data is encoded after the
 * links: bytes cut short (a short pack, a missing one reads as none) lose
 * it first, so a node cut short is never taken for one with fewer links.
 */
function linksOf (bytes: Uint8Array): CID[] | undefined {
  try {
    const node = dagPb.decode(bytes)
    return node.Data === undefined ? undefined : node.Links.map(l => l.Hash)
  } catch {
    return undefined
  }
}
