/**
 * Errors the pack block store raises on top of the shared ones.
 *
 * @module
 */
import { InvalidBlockError, ShoalError } from '../errors.js'

/**
 * A record in a pack file whose crc32c does not match (a flipped bit, a torn
 * or truncated pack): its bytes are never served. It is an
 * {@link InvalidBlockError} (`instanceof`), with its own `name`.
 */
export class CorruptBlockError extends InvalidBlockError {
  override name = 'CorruptBlockError'
}

/** The disk (or quota) is full: the write was not acknowledged. */
export class DiskFullError extends ShoalError {
  override name = 'DiskFullError'
  override readonly status = 507
}

/** Turn a file system error into a typed one where there is one (ENOSPC, EDQUOT). */
export function typedWriteError (err: any): Error {
  // LevelDB reports it as an IO error whose message has the OS text
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT' || /No space left on device|Disk quota exceeded/.test(String(err?.message))) {
    return new DiskFullError(`disk full while writing blocks: ${String(err.message)}`, { cause: err })
  }
  return err
}
