/**
 * Hand-made DAGs for tests: raw blocks, UnixFS directory nodes whose names
 * are not checked (so a test can build what no honest tool writes: `..`,
 * `a/b`, a NUL, a name twice), and CARv1 files of them.
 */
import { createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as dagPb from '@ipld/dag-pb'
import { CarWriter } from '@ipld/car/writer'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

/** A block and its CID. */
export interface Block { cid: CID, bytes: Uint8Array }

/** A raw block holding `text`. */
export async function rawBlock (text: string): Promise<Block> {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

/** A UnixFS directory node linking `entries` by name (sorted, as dag-pb wants; names unchecked). */
export async function directory (entries: Array<{ name: string, block: Block }>): Promise<Block> {
  const bytes = dagPb.encode(dagPb.prepare({
    Data: new UnixFS({ type: 'directory' }).marshal(),
    Links: entries.map(e => ({ Name: e.name, Hash: e.block.cid, Tsize: e.block.bytes.byteLength }))
  }))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

/** Write a CARv1 of `blocks` with `root` as its one root to `file`. */
export async function writeCarFile (file: string, root: Block, blocks: Block[]): Promise<void> {
  const { writer, out } = CarWriter.create([root.cid])
  const written = pipeline(Readable.from(out), createWriteStream(file))
  for (const b of blocks) await writer.put(b)
  await writer.close()
  await written
}
