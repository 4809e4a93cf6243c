/**
 * The operations table: fuse-native's callbacks → {@link ShoalFilesystem}'s
 * promises, every failure answered with its errno (errno.ts). Operations
 * Shoal does not support answer EOPNOTSUPP; xattrs and `access` are left
 * out so the kernel answers them itself (see docs/fuse.md).
 *
 * @module
 */
import type { Logger } from '../logger.js'
import type { FuseOps, FuseStat, FuseStatfs, OpenPages, Reply } from './adapter.js'
import { ERRNO, errnoOf } from './errno.js'
import type { Attr, ShoalFilesystem } from './filesystem.js'

const S_IFDIR = 0o040000
const S_IFREG = 0o100000
/** Block size programs are told to use (one FUSE request). */
const BLKSIZE = 128 * 1024
/** Largest value a statfs field can carry through the binding (32 bits). */
const U32 = 0xffffffff
/** Paths whose cached version a mount remembers (ops' `pagesOf`); past it the least recently opened is forgotten. */
const PAGE_VERSIONS_KEPT = 200_000

/** What {@link ShoalFilesystem.versionsAt} answers of a handle. */
type VersionsAt = ReturnType<ShoalFilesystem['versionsAt']>

/** Set `key` in `map` as its newest entry, the oldest dropped past {@link PAGE_VERSIONS_KEPT}. */
function noteNewest<V> (map: Map<string, V>, key: string, value: V): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > PAGE_VERSIONS_KEPT) map.delete(map.keys().next().value as string)
}

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
  /** Per path, the committed version (content CID) whose bytes the kernel may hold in its pages of the file, through this mount. */
  const pageVersions = new Map<string, string>()
  /**
   * How handle `fh`, just opened, uses the kernel's pages of its file: one
   * set per file, shared by every handle of it. While a handle of another
   * version is open at the path (opened before a new version arrived, it
   * reads on the one it opened), its reads fill those pages with its bytes:
   * this handle reads past them. Otherwise they are kept only when they hold
   * this very version (libfuse's auto_cache kept them whenever the mtime and
   * size were unchanged: a file opened after its content was replaced read
   * the old version's pages that such a handle had filled).
   */
  const pagesOf = (at: VersionsAt | undefined): OpenPages => {
    if (at === undefined) return 'drop'
    if (at.cid === undefined) {
      // a file staged here: its writes fill the pages
      pageVersions.delete(at.path)
      return 'drop'
    }
    if (at.others.some(cid => cid !== at.cid)) return 'direct'
    const keep = pageVersions.get(at.path) === at.cid
    // forgotten, the least recently opened: its next open drops its pages
    noteNewest(pageVersions, at.path, at.cid)
    return keep ? 'keep' : 'drop'
  }
  /**
   * Per path, the file size this mount last answered the kernel (getattr,
   * through a handle or not): the size the kernel keeps for the file up to
   * `attrTimeout`, and where its reads through the pages stop.
   */
  const sizesTold = new Map<string, number>()
  const tell = (path: string, st: FuseStat): FuseStat => {
    noteNewest(sizesTold, path, st.size)
    return st
  }
  /**
   * Whether the kernel may hold another size for the file of handle `fh`,
   * just opened, than its version's: another node's version arrived within
   * the attribute timeout. Its reads through the pages would then stop at
   * the old size (the new bytes cut short, exit 0), so the binding has the
   * kernel forget its attributes (and the open drops its pages) before the
   * open is answered. A size never
   * told (or forgotten past the bound) counts as stale. A file staged here
   * is not: its writes through the kernel made its size.
   */
  const staleSize = async (path: string, fh: number, at: VersionsAt | undefined): Promise<boolean> => {
    if (at?.cid === undefined) return false
    const told = sizesTold.get(path)
    // the open succeeded: it is answered whatever this finds (a handle the kernel is not told of is never released)
    const attr = await fs.fgetattr(path, fh).catch(() => undefined)
    if (attr === undefined) return true
    // not noted as told here: the kernel asks again (getattr), and that answer is what it holds
    return told !== attr.size
  }
  /** Answer an open: the handle, its use of the pages, and whether the kernel's size of the file is stale. */
  const opened = async (path: string, fh: number): Promise<[number, OpenPages, boolean]> => {
    const at = fs.versionsAt(fh, options.opened)
    return [fh, pagesOf(at), await staleSize(path, fh, at)]
  }
  /** A rename here moves the kernel's files, and their pages, to other names: what those hold is not known by name any more. */
  const renamed = async (from: string, to: string): Promise<void> => {
    pageVersions.delete(from)
    pageVersions.delete(to)
    // the kernel's file moved with its attributes: the size told is the one it holds at its new name
    const size = sizesTold.get(from)
    sizesTold.delete(from)
    sizesTold.delete(to)
    if (size !== undefined) sizesTold.set(to, size)
    if ((await fs.findAttr(to).catch(() => undefined))?.type !== 'dir') return
    for (const map of [pageVersions, sizesTold]) {
      for (const path of [...map.keys()]) if (path.startsWith(`${from}/`) || path.startsWith(`${to}/`)) map.delete(path)
    }
  }

  return {
    init: cb => { cb(0) },
    getattr: (path, cb) => {
      fs.findAttr(path).then(attr => {
        if (attr === undefined) cb(-ERRNO.ENOENT)
        else cb(0, tell(path, statOf(attr, fs.uid, fs.gid)))
      }, err => { cb(fail('getattr', path, err)) })
    },
    getattrHeld: (path, cb) => {
      fs.heldAttr(path, options.opened).then(attr => {
        if (attr === undefined) cb(-ERRNO.ENOENT)
        else cb(0, tell(path, statOf(attr, fs.uid, fs.gid)))
      }, err => { cb(fail('getattr', path, err)) })
    },
    fgetattr: (path, fd, cb) => {
      fs.fgetattr(path, fd).then(attr => { cb(0, tell(path, statOf(attr, fs.uid, fs.gid))) }, err => { cb(fail('fgetattr', path, err)) })
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
    open: (path, flags, cb) => { answer('open', path, fs.open(path, flags).then(async fh => await opened(path, fh)), cb) },
    // a new file's attributes are the create's own (the kernel's FUSE_CREATE names the parent, not the file)
    create: (path, mode, cb) => { answer('create', path, fs.create(path, mode).then(fh => [fh, pagesOf(fs.versionsAt(fh, options.opened)), false] as [number, OpenPages, boolean]), cb) },
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
    rename: (from, to, cb) => { done('rename', from, fs.rename(from, to).then(async () => { await renamed(from, to) }), cb) },
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
