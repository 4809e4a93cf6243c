import { exporter, type UnixFSEntry } from 'ipfs-unixfs-exporter'
import { fileSizeOf, readRange } from './ranged-reader.js'
import { InvalidArgumentError, NotFoundError } from '../errors.js'
import type { BlockGetter } from '../reads/api.js'
import type { CID } from 'multiformats/cid'

/** Options for {@link readContent}. */
export interface ReadContentOptions {
  /** First byte to read. @default 0 */
  offset?: number
  /** Bytes to read. @default to the end */
  length?: number
  signal?: AbortSignal
}

/**
 * The UnixFS entry at `cid` (a file, raw leaf or directory), resolved from
 * local blocks only.
 *
 * @throws {NotFoundError} when its root block is not here
 */
export async function resolveEntry (blockstore: BlockGetter, cid: CID, signal?: AbortSignal): Promise<UnixFSEntry> {
  // the exporter reads through the v7 blockstore contract (a generator per block)
  const source = { async * get (c: CID, options?: { signal?: AbortSignal }) { yield await blockstore.getBytes(c, options) } }
  try {
    return await exporter(cid, source, { signal })
  } catch (err: any) {
    if (err?.name === 'NotFoundError' || err?.code === 'ERR_NOT_FOUND') throw new NotFoundError(`content ${cid.toString()} not found`, { cause: err })
    throw err
  }
}

/**
 * Why `entry` is neither a UnixFS file (or raw leaf) nor a UnixFS directory —
 * a dag-cbor node, a UnixFS symlink… — or undefined when it is one. What is
 * not has no bytes to read and no size to show: `stat`, `ls` and `car import`
 * say so instead of calling it an empty file.
 */
export function notFileOrDirectory (entry: UnixFSEntry): string | undefined {
  if (entry.type === 'object') return `a ${entry.cid.code === 0x71 ? 'dag-cbor' : `codec 0x${entry.cid.code.toString(16)}`} node, not a UnixFS file or directory`
  if (entry.type === 'file' && entry.unixfs.type !== 'file' && entry.unixfs.type !== 'raw') return `a UnixFS ${entry.unixfs.type}, not a file or directory`
  return undefined
}

/** Size in bytes of a file entry. */
export function entrySize (entry: UnixFSEntry): number {
  if (entry.type === 'file') return Number(entry.unixfs.fileSize())
  if (entry.type === 'raw' || entry.type === 'identity') return entry.node.byteLength
  return 0
}

/**
 * Stream a file's bytes, or the range `[offset, offset + length)` of them.
 * Only the blocks that hold the range are read, each hash-checked, with a
 * bounded read-ahead (backpressure reaches the block store).
 *
 * @throws {IsADirectoryError} for a directory
 * @throws {InvalidArgumentError} for a range outside the file
 */
export async function * readContent (blockstore: BlockGetter, cid: CID, options: ReadContentOptions = {}): AsyncGenerator<Uint8Array> {
  const root = { cid, bytes: await blockstore.getBytes(cid, { signal: options.signal }) }
  const size = fileSizeOf(root)
  const offset = options.offset ?? 0
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) {
    throw new InvalidArgumentError(`offset ${offset} outside the file (size ${size})`)
  }
  const length = Math.min(options.length ?? size - offset, size - offset)
  if (!Number.isSafeInteger(length) || length < 0) throw new InvalidArgumentError(`invalid length ${String(options.length)}`)
  // not the exporter's entry.content(): it reads ahead without bound when the
  // consumer is slow; readRange keeps a small fixed window
  yield * readRange(blockstore, root, offset, offset + length, options.signal)
}
