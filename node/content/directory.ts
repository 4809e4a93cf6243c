import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { TooLargeError } from '../errors.js'
import { sha256 } from '../blocks/index.js'
import type { BlockStore } from '../blocks/index.js'
import type { Entry, Namespace } from '../namespace/index.js'

/** Largest directory block written: above this a HAMT would be needed. */
export const MAX_DIRECTORY_BLOCK = 1024 * 1024

interface Built { cid: CID, tsize: number }

/**
 * Build (and store) the UnixFS directory DAG of a namespace directory, so a
 * directory has a CID that `car export`, `ls CID` and IPFS tools understand.
 * Walks the tree bottom-up with an explicit stack. Files link to their stored
 * roots; `Tsize` of a file link is the file size (an estimate of the DAG size).
 *
 * @throws {TooLargeError} when one directory has too many entries for a single block
 */
export async function buildDirectory (components: { blockstore: BlockStore, namespace: Namespace }, path: string): Promise<CID> {
  const { blockstore, namespace } = components
  const root = await namespace.stat(path)
  const built = new Map<string, Built>()
  const stack: Array<{ entry: Entry, children?: Entry[] }> = [{ entry: root }]
  while (stack.length > 0) {
    const top = stack[stack.length - 1]
    if (top.children === undefined) {
      top.children = await namespace.list(top.entry.path)
      for (const child of top.children) if (child.type === 'dir') stack.push({ entry: child })
      continue
    }
    stack.pop()
    const links: dagPb.PBLink[] = top.children.map(child => {
      if (child.type === 'file') return { Name: child.name, Hash: CID.parse(child.cid), Tsize: child.size }
      const sub = built.get(child.path) as Built
      built.delete(child.path)
      return { Name: child.name, Hash: sub.cid, Tsize: sub.tsize }
    })
    const data = new UnixFS({ type: 'directory' }).marshal()
    const bytes = dagPb.encode(dagPb.prepare({ Data: data, Links: links }))
    if (bytes.byteLength > MAX_DIRECTORY_BLOCK) {
      throw new TooLargeError(`directory ${top.entry.path} has too many entries (${links.length}) for one block; sharded directories are not supported yet`)
    }
    const cid = CID.createV1(dagPb.code, Digest.create(0x12, sha256(bytes)))
    if (!(await blockstore.has(cid))) await blockstore.put(cid, bytes)
    built.set(top.entry.path, { cid, tsize: bytes.byteLength + links.reduce((n, l) => n + (l.Tsize ?? 0), 0) })
  }
  // not committed: the nodes are derivable from the namespace and rebuilt on demand,
  // so a stat or ls need not fsync; they become durable with the next commit
  return (built.get(root.path) as Built).cid
}
