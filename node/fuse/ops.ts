/**
 * The operations table: fuse-native's callbacks → {@link ShoalFilesystem}'s
 * promises, every failure answered with its errno (errno.ts). Operations
 * Shoal does not support answer EOPNOTSUPP; xattrs and `access` are left
 * out so the kernel answers them itself (see docs/fuse.md).
 *
 * @module
 */
import type { Logger } from '../logger.js'
import type { FuseOps, FuseStat, FuseStatfs, Reply } from './adapter.js'
import { ERRNO, errnoOf } from './errno.js'
import type { Attr, ShoalFilesystem } from './filesystem.js'

const S_IFDIR = 0o040000
const S_IFREG = 0o100000
/** Block size programs are told to use (one FUSE request). */
const BLKSIZE = 128 * 1024
/** Largest value a statfs field can carry through the binding (32 bits). */
const U32 = 0xffffffff

/** The FUSE view of attributes. */
export function statOf (attr: Attr, uid: number, gid: number): FuseStat {
  const dir = attr.type === 'dir'
  const size = dir ? 4096 : attr.size
  return {
    mode: (dir ? S_IFDIR : S_IFREG) | (attr.mode & 0o7777),
    uid,
    gid,
    size,
    nlink: dir ? 2 : 1,
    blocks: Math.ceil(size / 512),
    blksize: BLKSIZE,
    mtime: attr.mtime,
    atime: attr.mtime,
    ctime: attr.mtime
  }
}

/** Options of {@link createOps}. */
export interface OpsOptions {
  /**
   * The handles opened through this mount (the file system's are shared by
   * every mount): a file the kernel holds whose path is gone is answered
   * from these only. @default all of the file system's handles
   */
  opened?: ReadonlySet<number>
}

/** Build the table for `fs`. Unexpected failures (EIO) are logged. */
export function createOps (fs: ShoalFilesystem, logger: Logger, options: OpsOptions = {}): FuseOps {
  const fail = (op: string, path: string, err: unknown): number => {
    const errno = errnoOf(err)
    if (errno === ERRNO.EIO) logger.warn({ op, path, err: (err as Error)?.message }, 'fuse: operation failed')
    else logger.debug({ op, path, errno }, 'fuse: operation refused')
    return -errno
  }
  /** Answer `cb` with the promise's outcome. */
  const answer = <T extends unknown[]>(op: string, path: string, work: Promise<T>, cb: Reply<T>): void => {
    work.then(values => { cb(0, ...values) }, err => { (cb as unknown as Reply)(fail(op, path, err)) })
  }
  const done = (op: string, path: string, work: Promise<unknown>, cb: Reply): void => {
    work.then(() => { cb(0) }, err => { cb(fail(op, path, err)) })
  }
  const unsupported = (cb: Reply): void => { cb(-ERRNO.EOPNOTSUPP) }

  return {
    init: cb => { cb(0) },
    getattr: (path, cb) => {
      fs.findAttr(path).then(attr => {
        if (attr === undefined) cb(-ERRNO.ENOENT)
        else cb(0, statOf(attr, fs.uid, fs.gid))
      }, err => { cb(fail('getattr', path, err)) })
    },
    getattrHeld: (path, cb) => {
      fs.heldAttr(path, options.opened).then(attr => {
        if (attr === undefined) cb(-ERRNO.ENOENT)
        else cb(0, statOf(attr, fs.uid, fs.gid))
      }, err => { cb(fail('getattr', path, err)) })
    },
    fgetattr: (path, fd, cb) => {
      fs.fgetattr(path, fd).then(attr => { cb(0, statOf(attr, fs.uid, fs.gid)) }, err => { cb(fail('fgetattr', path, err)) })
    },
    readdir: (path, cb) => { answer('readdir', path, fs.readdir(path).then(names => [names] as [string[]]), cb) },
    statfs: (path, cb) => {
      answer('statfs', path, fs.statfs().then((s): [FuseStatfs] => [{
        bsize: s.bsize,
        frsize: s.bsize,
        blocks: Math.min(s.blocks, U32),
        bfree: Math.min(s.bfree, U32),
        bavail: Math.min(s.bavail, U32),
        files: Math.min(s.files, U32),
        ffree: Math.min(s.ffree, U32),
        favail: Math.min(s.ffree, U32),
        fsid: 0,
        flag: 0,
        namemax: 255
      }]), cb)
    },
    open: (path, flags, cb) => { answer('open', path, fs.open(path, flags).then(fh => [fh] as [number]), cb) },
    create: (path, mode, cb) => { answer('create', path, fs.create(path, mode).then(fh => [fh] as [number]), cb) },
    read: (path, fd, buf, len, pos, cb, options) => {
      const read = (): void => { fs.read(fd, buf, len, pos).then(cb, err => { cb(fail('read', path, err)) }) }
      if (options?.retried === true) fs.retriedReads++
      if (options?.places !== true) { read(); return }
      fs.places(fd, len, pos).then(places => {
        if (places === undefined) read()
        else cb(0, places)
      }, read)
    },
    write: (path, fd, buf, len, pos, cb) => {
      fs.write(fd, buf, len, pos).then(cb, err => { cb(fail('write', path, err)) })
    },
    flush: (path, fd, cb) => { done('flush', path, fs.flush(fd), cb) },
    fsync: (path, _datasync, fd, cb) => { done('fsync', path, fs.fsync(fd === 0 ? undefined : fd, path), cb) },
    release: (path, fd, cb) => { done('release', path, fs.release(fd), cb) },
    truncate: (path, size, cb) => { done('truncate', path, fs.truncate(path, size), cb) },
    ftruncate: (path, fd, size, cb) => { done('ftruncate', path, fs.ftruncate(fd, size), cb) },
    mkdir: (path, mode, cb) => { done('mkdir', path, fs.mkdir(path, mode), cb) },
    rmdir: (path, cb) => { done('rmdir', path, fs.rmdir(path), cb) },
    unlink: (path, cb) => { done('unlink', path, fs.unlink(path), cb) },
    rename: (from, to, cb) => { done('rename', from, fs.rename(from, to), cb) },
    chmod: (path, mode, cb) => { done('chmod', path, fs.chmod(path, mode), cb) },
    chown: (path, uid, gid, cb) => { done('chown', path, fs.chown(path, uid, gid), cb) },
    // the binding passes the access time in both places (docs/fuse.md, "Times")
    utimens: (path, _atime, mtime, cb) => { done('utimens', path, fs.utimens(path, mtime), cb) },
    link: (_src, _dest, cb) => { unsupported(cb) },
    symlink: (_src, _dest, cb) => { unsupported(cb) },
    mknod: (_path, _mode, _dev, cb) => { unsupported(cb) },
    readlink: (_path, cb) => { cb(-ERRNO.EINVAL) }
  }
}
