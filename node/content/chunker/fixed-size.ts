/**
 * Fixed-size chunking, identical to Kubo's `size-N` chunker: every chunk is
 * exactly N bytes except the last. Wraps ipfs-unixfs-importer's `fixedSize`,
 * which (like Kubo) yields one empty chunk for empty input, so imports with
 * `size-262144` give the same CIDs as Kubo's defaults for the same layout.
 */

import { fixedSize as importerFixedSize } from 'ipfs-unixfs-importer/chunker'
import type { Chunker } from 'ipfs-unixfs-importer/chunker'
import { InvalidArgumentError } from '../../errors.js'

/** Largest accepted fixed chunk size, in bytes (4 MiB). */
export const FIXED_SIZE_MAX = 4 * 1024 * 1024

/**
 * A chunker that cuts the stream every `size` bytes.
 *
 * @throws InvalidArgumentError unless `size` is an integer in 1..4 MiB.
 */
export function fixedSize (size: number): Chunker {
  if (!Number.isSafeInteger(size) || size < 1 || size > FIXED_SIZE_MAX) {
    throw new InvalidArgumentError(`fixed-size chunker: size must be an integer in 1..${FIXED_SIZE_MAX}, got ${String(size)}`)
  }
  return importerFixedSize({ chunkSize: size })
}
