/**
 * Errors the pack block store raises on top of the shared ones.
 *
 * @module
 */
import { DiskFullError, InvalidBlockError, isDiskFull } from '../errors.js'

/**
 * A record in a pack file whose crc32c does not match (a flipped bit, a torn
 * or truncated pack): its bytes are never served. It is an
 * {@link InvalidBlockError} (`instanceof`), with its own `name`.
 */
export class CorruptBlockError extends InvalidBlockError {
  override name = 'CorruptBlockError'
}

/** The disk (or quota) is full: the write was not acknowledged (the one error class of the whole node). */
export { DiskFullError }

/** Turn a file system error into a typed one where there is one (ENOSPC, EDQUOT). */
export function typedWriteError (err: any): Error {
  // typed already (a pack's write failed, then the commit that waited on it): its message is not wrapped twice
  if (err instanceof DiskFullError) return err
  if (isDiskFull(err)) {
    return new DiskFullError(`disk full while writing blocks: ${String(err.message)}`, { cause: err })
  }
  return err
}
