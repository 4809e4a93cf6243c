import { exporter, type UnixFSEntry } from 'ipfs-unixfs-exporter'
import { InvalidArgumentError, IsADirectoryError, NotFoundError } from '../errors.js'
import type { BlockStore } from '../blocks/index.js'
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
export async function resolveEntry (blockstore: BlockStore, cid: CID, signal?: AbortSignal): Promise<UnixFSEntry> {
  try {
    return await exporter(cid, blockstore, { signal, offline: true })
  } catch (err: any) {
    if (err?.name === 'NotFoundError' || err?.code === 'ERR_NOT_FOUND') throw new NotFoundError(`content ${cid.toString()} not found`, { cause: err })
    throw err
  }
}

/** Size in bytes of a file entry. */
export function entrySize (entry: UnixFSEntry): number {
  if (entry.type === 'file') return Number(entry.unixfs.fileSize())
  if (entry.type === 'raw' || entry.type === 'identity') return entry.node.byteLength
  return 0
}

/**
 * Stream a file's bytes, or the range `[offset, offset + length)` of them.
 * Only the blocks that hold the range are read, each hash-checked.
 *
 * @throws {IsADirectoryError} for a directory
 * @throws {InvalidArgumentError} for a range outside the file
 */
export async function * readContent (blockstore: BlockStore, cid: CID, options: ReadContentOptions = {}): AsyncGenerator<Uint8Array> {
  const entry = await resolveEntry(blockstore, cid, options.signal)
  if (entry.type === 'directory') throw new IsADirectoryError(`${cid.toString()} is a directory`)
  if (entry.type === 'object') throw new InvalidArgumentError(`${cid.toString()} is not a file`)
  const size = entrySize(entry)
  const offset = options.offset ?? 0
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) {
    throw new InvalidArgumentError(`offset ${offset} outside the file (size ${size})`)
  }
  const length = Math.min(options.length ?? size - offset, size - offset)
  if (!Number.isSafeInteger(length) || length < 0) throw new InvalidArgumentError(`invalid length ${String(options.length)}`)
  if (length === 0) return
  yield * entry.content({ offset, length, signal: options.signal })
}
