import * as dagPB from '@ipld/dag-pb'
import * as dagCBOR from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { UnixFS } from 'ipfs-unixfs'
import { InvalidCARError } from '../errors.js'

/** Multicodec of dag-pb (UnixFS nodes). */
export const DAG_PB = 0x70
/** Multicodec of dag-cbor. */
export const DAG_CBOR = 0x71
/** Multicodec of raw leaves. */
export const RAW = 0x55

/**
 * Every CID inside a decoded dag-cbor value, in document order, found with an
 * explicit stack (no recursion).
 */
function cidsIn (value: unknown): CID[] {
  const found: CID[] = []
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const item = stack.pop()
    if (item === null || typeof item !== 'object') continue
    const cid = CID.asCID(item)
    if (cid !== null) {
      found.push(cid)
    } else if (item instanceof Uint8Array) {
      continue
    } else if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) stack.push(item[i])
    } else {
      const values = Object.values(item)
      for (let i = values.length - 1; i >= 0; i--) stack.push(values[i])
    }
  }
  return found
}

/**
 * The CIDs a block links to, in link order.
 *
 * dag-pb: every `Links[].Hash`; dag-cbor: every CID in the value; raw: none.
 *
 * @throws {InvalidCARError} for any other codec, or bytes that do not decode
 */
export function linksOf (cid: CID, bytes: Uint8Array): CID[] {
  switch (cid.code) {
    case RAW:
      return []
    case DAG_PB: {
      let node: dagPB.PBNode
      try {
        node = dagPB.decode(bytes)
      } catch (err: any) {
        throw new InvalidCARError(`block ${cid.toString()} is not valid dag-pb: ${String(err?.message ?? err)}`, { cause: err })
      }
      return node.Links.map(link => link.Hash)
    }
    case DAG_CBOR: {
      let value: unknown
      try {
        value = dagCBOR.decode(bytes)
      } catch (err: any) {
        throw new InvalidCARError(`block ${cid.toString()} is not valid dag-cbor: ${String(err?.message ?? err)}`, { cause: err })
      }
      return cidsIn(value)
    }
    default:
      throw new InvalidCARError(`unsupported codec 0x${cid.code.toString(16)} in block ${cid.toString()}: only dag-pb, dag-cbor and raw are supported`)
  }
}

/**
 * A key naming a DAG node during a walk: codec plus multihash, so a CIDv0 and
 * a CIDv1 of the same dag-pb block are one node, while the same bytes linked
 * as raw and as dag-pb (decoded differently) are two.
 */
export function nodeKey (cid: CID): string {
  const mh = cid.multihash.bytes
  return `${cid.code}:${Buffer.from(mh.buffer, mh.byteOffset, mh.byteLength).toString('base64')}`
}

/**
 * Whether `block` is a UnixFS directory or HAMT shard: its links name entries,
 * each a DAG of its own (a block that does not decode is not).
 */
export function isUnixFSDirectory (block: { cid: CID, bytes: Uint8Array }): boolean {
  if (block.cid.code !== DAG_PB) return false
  try {
    const data = dagPB.decode(block.bytes).Data
    return data !== undefined && UnixFS.unmarshal(data).isDirectory()
  } catch {
    return false
  }
}
