/**
 * Reading one UnixFS node without the exporter: what the CAR scoping and
 * `entity-bytes` need to know of a block (its kind, its file size).
 *
 * @module
 */
import * as dagPB from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { DAG_PB } from '../car/links.js'
import type { CID } from 'multiformats/cid'

/** A decoded UnixFS node. */
export interface UnixFSNode { node: dagPB.PBNode, fs: UnixFS }

/** The UnixFS node of a block, or undefined when it is not one (raw, dag-cbor, plain dag-pb, undecodable). */
export function unixfsOf (cid: CID, bytes: Uint8Array): UnixFSNode | undefined {
  if (cid.code !== DAG_PB) return undefined
  try {
    const node = dagPB.decode(bytes)
    if (node.Data === undefined) return undefined
    return { node, fs: UnixFS.unmarshal(node.Data) }
  } catch {
    return undefined
  }
}

/** The size of the UnixFS file a dag-pb block is the root of; undefined when it is no file. */
export function unixfsFileSize (cid: CID, bytes: Uint8Array): number | undefined {
  const unixfs = unixfsOf(cid, bytes)
  if (unixfs === undefined || (unixfs.fs.type !== 'file' && unixfs.fs.type !== 'raw')) return undefined
  return Number(unixfs.fs.fileSize())
}
