import { importByteStream } from 'ipfs-unixfs-importer'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CustomProgressEvent } from 'progress-events'
import { AbortedError } from '../errors.js'
import { createChunker, type ChunkerSpec } from './chunker/index.js'
import type { BlockStore } from '../blocks/index.js'
import type { CID } from 'multiformats/cid'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

/** Kubo's balanced-layout fan-out: 174 links per internal node. */
export const KUBO_MAX_CHILDREN = 174

/** Emitted as bytes are read during an import. */
export type ImportProgressEvents = ProgressEvent<'shoal:import:bytes', { bytes: number }>

/** Options for {@link importContent}. */
export interface ImportContentOptions extends ProgressOptions<ImportProgressEvents> {
  /** How to split the bytes into leaves. */
  chunker: ChunkerSpec
  signal?: AbortSignal
}

/** Result of an import. */
export interface ImportedContent {
  /** Root of the UnixFS DAG (a raw CID when the file fits one leaf). */
  cid: CID
  /** Bytes read from the source. */
  size: number
}

/**
 * Turn a byte stream into a UnixFS file DAG: CIDv1, raw leaves, balanced
 * layout with 174 links a node — the settings of `ipfs add --cid-version=1`,
 * so `size-262144` gives Kubo's CIDs. Blocks are written through the block
 * store's write-behind batch and fsynced before this resolves.
 */
export async function importContent (blockstore: BlockStore, source: AsyncIterable<Uint8Array>, options: ImportContentOptions): Promise<ImportedContent> {
  let size = 0
  const { signal, onProgress } = options
  async function * counted (): AsyncGenerator<Uint8Array> {
    for await (const piece of source) {
      if (signal?.aborted === true) throw new AbortedError('import aborted')
      size += piece.byteLength
      onProgress?.(new CustomProgressEvent('shoal:import:bytes', { bytes: size }))
      yield piece
    }
  }
  const result = await importByteStream(counted(), blockstore, {
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: createChunker(options.chunker),
    layout: balanced({ maxChildrenPerNode: KUBO_MAX_CHILDREN }),
    // hashing is synchronous; a few blocks in flight keep LevelDB busy
    // without holding tens of MiB of leaves in memory
    blockWriteConcurrency: 8
  })
  await blockstore.commit()
  return { cid: result.cid, size }
}
