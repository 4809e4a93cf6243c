/**
 * Error classes shared by every module. Each has a stable `name` (callers test
 * `err.name`, never `instanceof` across module boundaries) and a `code` that the
 * HTTP API sends back and the CLI maps to a one-line message and exit code.
 *
 * The base class and the errors protocol/ throws are defined in
 * protocol/errors.ts (protocol/ imports nothing from node/) and re-exported
 * here: the same class objects, so `instanceof` holds either way.
 */
import { ShoalError } from '../protocol/errors.js'

export {
  ShoalError, InvalidMessageError, InvalidCIDError, InvalidPathError, NameTooLongError, InvalidArgumentError, InvalidPolicyError, InvalidManifestError
} from '../protocol/errors.js'

/** A path, CID or block that does not exist. */
export class NotFoundError extends ShoalError {
  override name = 'NotFoundError'
  override readonly status = 404
}

/** A request body of a type the endpoint does not take (a multipart form where file bytes are expected). */
export class UnsupportedMediaTypeError extends ShoalError {
  override name = 'UnsupportedMediaTypeError'
  override readonly status = 415
}

/** A block whose bytes do not hash to its CID (corrupt on disk or in transit). */
export class InvalidBlockError extends ShoalError {
  override name = 'InvalidBlockError'
  override readonly status = 422
}

/** The target of a create/move already exists. */
export class AlreadyExistsError extends ShoalError {
  override name = 'AlreadyExistsError'
  override readonly status = 409
}

/** A move whose source and destination are the same path (`mv a a`, `mv /d/a /d/`), as POSIX `mv` refuses it. */
export class SameFileError extends ShoalError {
  override name = 'SameFileError'
  override readonly status = 409
}

/** A file operation on a directory, or a directory operation on a file. */
export class NotADirectoryError extends ShoalError {
  override name = 'NotADirectoryError'
  override readonly status = 409
}

/** A file operation applied to a directory. */
export class IsADirectoryError extends ShoalError {
  override name = 'IsADirectoryError'
  override readonly status = 409
}

/** Removing a non-empty directory without `recursive`. */
export class DirectoryNotEmptyError extends ShoalError {
  override name = 'DirectoryNotEmptyError'
  override readonly status = 409
}

/** A CAR file that is malformed, truncated, tampered with, or whose DAG is incomplete. */
export class InvalidCARError extends ShoalError {
  override name = 'InvalidCARError'
  override readonly status = 422
}

/** A request or payload over a size limit. */
export class TooLargeError extends ShoalError {
  override name = 'TooLargeError'
  override readonly status = 413
}

/** The repo is already used by another running daemon. */
export class RepoLockedError extends ShoalError {
  override name = 'RepoLockedError'
  override readonly status = 409
}

/** No repo at the given location (run `shoal init`). */
export class RepoNotFoundError extends ShoalError {
  override name = 'RepoNotFoundError'
  override readonly status = 500
}

/**
 * A folder of the repo (its root, a missing parent of it, or a folder in it)
 * could not be created: the message names the path and the system's reason
 * (a parent that is a file, no permission, a read-only disk, a file system
 * that takes no new folders such as /proc).
 */
export class RepoFolderError extends ShoalError {
  override name = 'RepoFolderError'
  override readonly status = 500
}

/**
 * A LevelDB store of the repo (the namespace, the holdings) is damaged on
 * disk: the daemon does not start on it. The message names the store, what
 * LevelDB found, and what to do (node/repo/store-damage.ts).
 */
export class StoreDamagedError extends ShoalError {
  override name = 'StoreDamagedError'
  override readonly status = 500
}

/** The CLI could not reach a daemon for this repo. */
export class DaemonNotRunningError extends ShoalError {
  override name = 'DaemonNotRunningError'
}

/** The API rejected the request's token. */
export class UnauthorizedError extends ShoalError {
  override name = 'UnauthorizedError'
  override readonly status = 401
}

/** An operation cancelled through its AbortSignal. */
export class AbortedError extends ShoalError {
  override name = 'AbortedError'
  override readonly status = 499
}

/**
 * A write that changes one version of a file in place (its pin, its mode or
 * time; `PutOptions.rewriting` of the namespace) found that version no longer at its
 * path: removed, moved or replaced meanwhile. Nothing was written: the
 * change must not bring back a file that was removed.
 */
export class VersionGoneError extends ShoalError {
  override name = 'VersionGoneError'
  override readonly status = 409

  /** What became of the version: `changed` (the same bytes, another pin, mode or time) may be changed again from the version now there. */
  constructor (message: string, readonly reason: 'removed' | 'replaced' | 'changed', options?: ErrorOptions) {
    super(message, options)
  }
}

/**
 * A change of a conflict copy's pin, mode or time (`pin add`, `pin rm`, a
 * tier move, a `chmod` through a mount): written at the copy's name, it
 * would make the copy a plain file and end its conflict unseen. Nothing is
 * written; the user resolves the conflict first.
 */
export class ConflictCopyError extends ShoalError {
  override name = 'ConflictCopyError'
  override readonly status = 409
}

/** Names of the errors a read ends with when a block of the file could be had neither here nor from a peer. */
export const MISSING_BLOCK_ERRORS: ReadonlySet<string> = new Set(['BlockUnavailableError', 'StripeUnavailableError', 'CorruptBlockError'])

/** A peer could not be reached or refused the connection. */
export class PeerUnreachableError extends ShoalError {
  override name = 'PeerUnreachableError'
  override readonly status = 502
}

/** `peers forget` of a peer connected now: only a node that is gone can be forgotten. */
export class PeerConnectedError extends ShoalError {
  override name = 'PeerConnectedError'
  override readonly status = 409
}

/** Fewer than k shards of a stripe could be found: its data cannot be rebuilt right now. */
export class StripeUnavailableError extends ShoalError {
  override name = 'StripeUnavailableError'
  override readonly status = 503
}

/** The repo's disk has no room for the write (or only the reserve kept for `rm`, `gc` and restarts). */
export class DiskFullError extends ShoalError {
  override name = 'DiskFullError'
  override readonly status = 507
}

/** True for a file system error that says the disk (or the user's quota) is full: ENOSPC, EDQUOT, or LevelDB's IO error with the OS text. */
export function isDiskFull (err: any): boolean {
  return err?.code === 'ENOSPC' || err?.code === 'EDQUOT' || /No space left on device|ENOSPC|Disk quota exceeded/.test(String(err?.message ?? ''))
}

/**
 * A commit of the block store failed while this write was under way (another
 * writer's, on a full or failing disk): some of its blocks may be gone, so it
 * was not kept. Adding it again writes them again.
 */
export class WriteInterruptedError extends ShoalError {
  override name = 'WriteInterruptedError'
  override readonly status = 503
}

/** A write is durable here, but its durability policy is not met yet (`add --wait`). */
export class PolicyNotMetError extends ShoalError {
  override name = 'PolicyNotMetError'
  override readonly status = 503
}
