/**
 * Errors of the FUSE service. Each has a stable `name`; the API turns them
 * into `{ error: { name, message } }` with their status.
 *
 * @module
 */
import { AbortedError, ShoalError } from '../errors.js'

/** FUSE cannot be used on this machine (no `/dev/fuse`, no binding, no `fusermount` for libfuse2). */
export class FuseUnavailableError extends ShoalError {
  override name = 'FuseUnavailableError'
  override readonly status = 503
}

/** The mountpoint is in use: already mounted (by this node or anything else) or not empty; or, at unmount, files are open through it. */
export class MountpointBusyError extends ShoalError {
  override name = 'MountpointBusyError'
  override readonly status = 409
}

/**
 * The mountpoint lies inside a mount of this node (or a symlink leads
 * there): mounting on it would hang the node, whose mount call the kernel
 * resolves through the node's own file system while the node waits in it.
 */
export class MountpointInsideMountError extends ShoalError {
  override name = 'MountpointInsideMountError'
  override readonly status = 400
}

/**
 * `unmount` refused because files written through the mount could not be
 * committed (a full repo disk…): they stay staged, readable in the mount,
 * and the next unmount tries them again.
 */
export class UncommittedFilesError extends ShoalError {
  override name = 'UncommittedFilesError'
  override readonly status = 409
}

/** `unmount` of a directory this node has not mounted. */
export class NotMountedError extends ShoalError {
  override name = 'NotMountedError'
  override readonly status = 404
}

/**
 * A file-system call that carries its own errno (a bad file handle, an
 * unsupported operation…): the ops table answers with `errno` as it is.
 */
export class ErrnoError extends ShoalError {
  override name = 'ErrnoError'
  /** Positive Linux errno (see {@link ERRNO}). */
  readonly errno: number

  constructor (errno: number, message: string) {
    super(message)
    this.errno = errno
  }
}

/** A background commit stopped because its file was removed meanwhile: the version it would bind need not land. */
export class CommitCancelledError extends AbortedError {
  override name = 'CommitCancelledError'
}
