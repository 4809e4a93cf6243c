/**
 * A block store filled directly (no import, no network) with many small
 * blocks: half of them the leaves of visible files, half garbage. For the
 * tests and the bench of garbage collection's memory on large stores.
 *
 * Block `i` is 32 bytes derived from `seed` and `i`, so a caller finds any
 * of them again without keeping a list of CIDs.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import * as dagPb from '@ipld/dag-pb'
import type { BlockStore } from '../../node/blocks/index.js'
import type { Entry } from '../../node/namespace/index.js'

/** Options of {@link fillStore}. */
export interface FillOptions {
  /** Leaf blocks: the even ones kept (a file's), the odd ones garbage. */
  blocks: number
  /** Makes the blocks differ from another fill's. @default 'blocks' */
  seed?: string
  /** Leaves linked from each file's root. @default 1000 */
  linksPerFile?: number
  /** Puts between two commits. @default 8192 */
  commitEvery?: number
}

/** What {@link fillStore} wrote. */
export interface Filled {
  /** The visible files: one dag-pb root per `linksPerFile` kept leaves. */
  files: Entry[]
  /** Blocks a collection must keep: the kept leaves and the files' roots. */
  kept: number
  /** Blocks no file refers to. */
  garbage: number
}

/** The bytes of block `i` of the fill `seed`. */
export function blockBytes (seed: string, i: number): Uint8Array {
  return createHash('sha256').update(seed).update(String(i)).digest()
}

/** The raw CID of `bytes`. */
export async function rawCid (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(bytes))
}

/** Put `blocks` leaves and the files' roots into `store`, committed. */
export async function fillStore (store: BlockStore, options: FillOptions): Promise<Filled> {
  const { blocks, seed = 'blocks', linksPerFile = 1000, commitEvery = 8192 } = options
  const files: Entry[] = []
  let links: dagPb.PBLink[] = []
  let puts = 0
  const put = async (cid: CID, bytes: Uint8Array): Promise<void> => {
    await store.put(cid, bytes)
    if (++puts % commitEvery === 0) await store.commit()
  }
  const addFile = async (): Promise<void> => {
    const node = dagPb.encode(dagPb.prepare({ Links: links }))
    const cid = CID.createV1(dagPb.code, await sha256.digest(node))
    await put(cid, node)
    files.push({ type: 'file', cid: cid.toString(), size: links.length * 32, mode: 0o644, mtime: 0, path: `/f${files.length}`, name: `f${files.length}` })
    links = []
  }
  // the kept blocks first, then the garbage: with small packs, garbage fills packs of its own (a collection drops them whole rather than rewriting them)
  for (let i = 0; i < blocks; i += 2) {
    const bytes = blockBytes(seed, i)
    const cid = await rawCid(bytes)
    await put(cid, bytes)
    links.push({ Hash: cid, Tsize: bytes.byteLength })
    if (links.length === linksPerFile) await addFile()
  }
  if (links.length > 0) await addFile()
  for (let i = 1; i < blocks; i += 2) {
    const bytes = blockBytes(seed, i)
    await put(await rawCid(bytes), bytes)
  }
  await store.commit()
  const keptLeaves = Math.ceil(blocks / 2)
  return { files, kept: keptLeaves + files.length, garbage: blocks - keptLeaves }
}
