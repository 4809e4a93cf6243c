/**
 * Shoal errors → Linux errno, the one place where a failure becomes what a
 * program calling the mount sees.
 *
 * @module
 */

/** The Linux errno values the mount answers with (positive; FUSE wants them negated). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  EILSEQ: 84,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
  ECANCELED: 125
} as const

/** Error `name` (Shoal's classes) → errno. */
const BY_NAME: Record<string, number> = {
  NotFoundError: ERRNO.ENOENT,
  AlreadyExistsError: ERRNO.EEXIST,
  DirectoryNotEmptyError: ERRNO.ENOTEMPTY,
  NotADirectoryError: ERRNO.ENOTDIR,
  IsADirectoryError: ERRNO.EISDIR,
  InvalidArgumentError: ERRNO.EINVAL,
  InvalidPathError: ERRNO.EINVAL,
  NameTooLongError: ERRNO.ENAMETOOLONG,
  InvalidPolicyError: ERRNO.EINVAL,
  UnauthorizedError: ERRNO.EACCES,
  TooLargeError: ERRNO.EFBIG,
  // a commit (fsync) that would eat into storage.reserve, or met a full disk
  DiskFullError: ERRNO.ENOSPC,
  AbortedError: ERRNO.ECANCELED,
  // content that cannot be had right now (no peer holds it, too few shards)
  StripeUnavailableError: ERRNO.EIO,
  BlockUnavailableError: ERRNO.EIO,
  InvalidBlockError: ERRNO.EIO,
  PeerUnreachableError: ERRNO.EIO,
  // a chmod or utime of a version removed or replaced meanwhile (by the CLI or a peer): it is not there any more
  VersionGoneError: ERRNO.ENOENT,
  // a chmod or utime of a conflict copy: it would end the conflict unseen (`shoal mv` the copy first)
  ConflictCopyError: ERRNO.EPERM
}

/** Node's `err.code` of a system call (staging files on local disk) → errno. */
const BY_CODE: Record<string, number> = {
  ENOENT: ERRNO.ENOENT,
  ENOSPC: ERRNO.ENOSPC,
  EDQUOT: ERRNO.ENOSPC,
  EACCES: ERRNO.EACCES,
  EPERM: ERRNO.EPERM,
  EBADF: ERRNO.EBADF,
  EFBIG: ERRNO.EFBIG,
  EROFS: ERRNO.EROFS,
  EINVAL: ERRNO.EINVAL
}

/**
 * The errno a program should see for `err`: an {@link ErrnoError}'s own, a
 * Shoal error by its `name`, a system error by its `code`; anything else is
 * `EIO` (an I/O error the caller can do nothing about).
 */
export function errnoOf (err: unknown): number {
  const e = err as { name?: unknown, code?: unknown, errno?: unknown } | undefined
  if (e?.name === 'ErrnoError' && typeof e.errno === 'number') return e.errno
  if (typeof e?.name === 'string' && e.name in BY_NAME) return BY_NAME[e.name]
  if (typeof e?.code === 'string' && e.code in BY_CODE) return BY_CODE[e.code]
  return ERRNO.EIO
}
