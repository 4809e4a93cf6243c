import { importByteStream } from 'ipfs-unixfs-importer'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CustomProgressEvent } from 'progress-events'
import { AbortedError } from '../errors.js'
import { createChunker, type ChunkerSpec } from './chunker/index.js'
import type { BlockStore } from '../blocks/index.js'
import { CID } from 'multiformats/cid'
import { rawCID, rawCIDOfDigest } from '../blocks/verify.js'
import type { LeafDigests, LeafWorker } from './leaf-chunker.js'
import type { ProgressEvent, ProgressOptions } from 'progress-events'
import type { BufferImporter } from 'ipfs-unixfs-importer'

/** Kubo's balanced-layout fan-out: 174 links per internal node. */
export const KUBO_MAX_CHILDREN = 174

/** Emitted as bytes are read during an import. */
export type ImportProgressEvents = ProgressEvent<'shoal:import:bytes', { bytes: number }>

/** Options for {@link importContent}. */
export interface ImportContentOptions extends ProgressOptions<ImportProgressEvents> {
  /** How to split the bytes into leaves. */
  chunker: ChunkerSpec
  signal?: AbortSignal
  /**
   * Fsync the blocks before resolving. `false` leaves that to the caller's
   * own `blockstore.commit()` (one fsync for a batch of imports). @default true
   */
  commit?: boolean
  /**
   * Called with every raw leaf, in file order (a leaf that occurs twice is
   * seen twice), as the import makes it and before the import goes on: what
   * codes stripes from the leaves while they are in memory. Its promise is
   * awaited, so a slow consumer slows the import (bounded memory).
   */
  onLeaf?: LeafSink
  /** Cut and hash the leaves on this worker thread (absent: on the calling thread). */
  leafWorker?: LeafWorker
}

/** Receives the raw leaves of an import in file order ({@link ImportContentOptions.onLeaf}). */
export type LeafSink = (leaf: { cid: CID, bytes: Uint8Array }) => Promise<void> | void

/** Largest file that `spec` never cuts: it is one leaf whatever its bytes. */
function singleChunkLimit (spec: ChunkerSpec): number {
  // FastCDC never cuts before minSize; to be safe with "at minSize", stay below it
  return spec.type === 'fixed' ? spec.size : spec.minSize - 1
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
  const iterator = source[Symbol.asyncIterator]()
  const next = async (): Promise<Uint8Array | undefined> => {
    const step = await iterator.next()
    if (step.done === true) return undefined
    if (signal?.aborted === true) throw new AbortedError('import aborted')
    size += step.value.byteLength
    onProgress?.(new CustomProgressEvent('shoal:import:bytes', { bytes: size }))
    return step.value
  }
  // a file that is one chunk whatever its bytes is one raw leaf, its own
  // root (what the importer makes of it): no need for the importer's machinery
  const head: Uint8Array[] = []
  const oneChunk = singleChunkLimit(options.chunker)
  let ended = false
  while (size <= oneChunk) {
    const piece = await next()
    if (piece === undefined) { ended = true; break }
    head.push(piece)
  }
  if (ended && size > 0) {
    const bytes = head.length === 1 ? head[0] : Buffer.concat(head)
    const cid = rawCID(bytes)
    await options.onLeaf?.({ cid, bytes })
    await blockstore.put(cid, bytes)
    if (options.commit !== false) await blockstore.commit()
    return { cid, size }
  }
  async function * counted (): AsyncGenerator<Uint8Array> {
    yield * head
    for (let piece = await next(); piece !== undefined; piece = await next()) yield piece
  }
  const digests: LeafDigests | undefined = options.leafWorker === undefined ? undefined : new WeakMap()
  const result = await importByteStream(counted(), blockstore, {
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: digests === undefined ? createChunker(options.chunker) : (options.leafWorker as LeafWorker).chunker(options.chunker, digests),
    layout: balanced({ maxChildrenPerNode: KUBO_MAX_CHILDREN }),
    // hashing is synchronous; a few blocks in flight keep LevelDB busy
    // without holding tens of MiB of leaves in memory
    blockWriteConcurrency: 8,
    ...(options.onLeaf === undefined && digests === undefined ? {} : { bufferImporter: leafTap(options.onLeaf, digests) })
  })
  if (options.commit !== false) await blockstore.commit()
  return { cid: result.cid, size }
}

/**
 * The importer's leaf step with a tap: each chunk's CID comes from the
 * digest the leaf worker computed (else it is hashed here), in file order;
 * the chunk goes to `sink` (awaited), then is stored by the step the
 * importer runs in parallel. Raw leaves only (the import always asks for
 * them), so the CID is the one the default step would compute.
 */
function leafTap (sink: LeafSink | undefined, digests: LeafDigests | undefined): BufferImporter {
  return async function * (file, blockstore) {
    for await (const bytes of file.content) {
      const digest = digests?.get(bytes)
      const cid = digest === undefined ? rawCID(bytes) : rawCIDOfDigest(digest)
      await sink?.({ cid, bytes })
      yield async () => {
        await blockstore.put(cid, bytes)
        return { cid, size: BigInt(bytes.byteLength), block: bytes }
      }
    }
  }
}
