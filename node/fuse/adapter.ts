/**
 * The only module that touches the FUSE binding (fuse-native over Debian's
 * libfuse2): loads it on first use, adds the mount options it does not pass
 * itself, and turns its callback API into promises.
 *
 * Why it loads late: fuse-native is an optional dependency (its prebuilt
 * binaries cover few platforms, and a node is useful without a mount), so
 * it may be absent, or present without the libfuse2 it links to. Nothing
 * loads it until a mount is made: a node without it starts, adds, reads and
 * serves the swarm, and only `shoal mount` (or a recorded mount restored at
 * start) fails, with a {@link FuseUnavailableError} that says what to install.
 *
 * How: a dynamic `import()` on the first {@link checkFuse} or
 * {@link mountFuse} (an ESM import, so Node's resolve hooks see it as they
 * would a missing package), cached once it succeeds.
 *
 * @module
 */
import { access, constants } from 'node:fs/promises'
import { FuseUnavailableError } from './errors.js'

/** What to do when the binding is not installed (one line, shown by `shoal mount`). */
export const INSTALL_FUSE_HINT = 'install Debian\'s `fuse` and `libfuse2` packages (apt-get install fuse libfuse2), then `npm install fuse-native` in Shoal\'s folder, and restart the daemon'

/** A FUSE reply callback: an errno (0 or negative) and the values of the op. */
export type Reply<A extends unknown[] = []> = (code: number, ...values: A) => void

/** What `getattr` answers (fuse-native's stat shape; times in ms or Dates). */
export interface FuseStat {
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
  mtime: number
  atime: number
  ctime: number
  blocks?: number
  blksize?: number
}

/** What `statfs` answers. */
export interface FuseStatfs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  fsid: number
  flag: number
  namemax: number
}

/**
 * The operations table handed to the binding (callback style, as
 * fuse-native calls them). Absent operations answer ENOSYS, which the
 * kernel remembers for xattrs and `access` (it stops asking).
 */
export interface FuseOps {
  init?: (cb: Reply) => void
  getattr: (path: string, cb: Reply<[FuseStat?]>) => void
  readdir?: (path: string, cb: Reply<[string[]?, FuseStat[]?]>) => void
  statfs?: (path: string, cb: Reply<[FuseStatfs?]>) => void
  open?: (path: string, flags: number, cb: Reply<[number?]>) => void
  create?: (path: string, mode: number, cb: Reply<[number?]>) => void
  read?: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void) => void
  write?: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void) => void
  flush?: (path: string, fd: number, cb: Reply) => void
  fsync?: (path: string, datasync: number, fd: number, cb: Reply) => void
  release?: (path: string, fd: number, cb: Reply) => void
  truncate?: (path: string, size: number, cb: Reply) => void
  ftruncate?: (path: string, fd: number, size: number, cb: Reply) => void
  mkdir?: (path: string, mode: number, cb: Reply) => void
  rmdir?: (path: string, cb: Reply) => void
  unlink?: (path: string, cb: Reply) => void
  rename?: (src: string, dest: string, cb: Reply) => void
  chmod?: (path: string, mode: number, cb: Reply) => void
  chown?: (path: string, uid: number, gid: number, cb: Reply) => void
  utimens?: (path: string, atime: number, mtime: number, cb: Reply) => void
  link?: (src: string, dest: string, cb: Reply) => void
  symlink?: (src: string, dest: string, cb: Reply) => void
  readlink?: (path: string, cb: Reply<[string?]>) => void
  mknod?: (path: string, mode: number, dev: number, cb: Reply) => void
}

/** How a file system is mounted. */
export interface FuseMountOptions {
  /** Seconds the kernel caches attributes. @default 1 */
  attrTimeout?: number
  /** Seconds the kernel caches name lookups. @default 1 */
  entryTimeout?: number
  /**
   * Keep file pages in the kernel's cache across opens, dropped on open when
   * the file's mtime or size changed (libfuse `auto_cache`). @default true
   */
  autoCache?: boolean
  /** Name shown in the mount table. @default 'shoal' */
  fsname?: string
  /**
   * Per-operation timeouts in ms (`false`: none); an operation over its
   * bound answers ETIMEDOUT. @default 60 s for most, none for those that wait on commits
   */
  timeout?: Record<string, number | false>
}

/**
 * Options every Shoal mount (and the bench's reference file system) adds to
 * fuse-native's: `big_writes` (128 KiB writes instead of 4 KiB, ×9 on
 * sequential writes: docs/fuse.md), `atomic_o_trunc` (`open(O_TRUNC)` comes
 * as one open, not a truncate then an open).
 */
export const EXTRA_MOUNT_OPTIONS: readonly string[] = ['big_writes', 'atomic_o_trunc']

/** Operations that may wait for a commit or a copy: never timed out. */
const UNBOUNDED_OPS = ['open', 'create', 'release', 'flush', 'fsync', 'truncate', 'ftruncate', 'rename', 'unlink', 'utimens', 'chmod']

/** A mounted file system. */
export interface MountedFuse {
  /** Absolute mountpoint. */
  dir: string
  /** Unmount (lazily: a busy mount is detached at once) and end the FUSE session. */
  unmount: () => Promise<void>
}

interface FuseInstance {
  mount: (cb: (err: Error | null) => void) => void
  unmount: (cb: (err: Error | null) => void) => void
}
type FuseClass = new (mnt: string, ops: FuseOps, opts: Record<string, unknown>) => FuseInstance

let fuseClass: FuseClass | undefined

/** Load the binding and subclass it once. @throws {FuseUnavailableError} */
async function loadFuseClass (): Promise<FuseClass> {
  if (fuseClass !== undefined) return fuseClass
  let Fuse: any
  try {
    Fuse = (await import('fuse-native' as string) as { default: unknown }).default
  } catch (err: any) {
    throw bindingError(err)
  }
  // fuse-native builds its `-o` list in a private method and has no way to
  // add options it does not know: extend that list.
  fuseClass = class ShoalFuse extends Fuse {
    _fuseOptions (): string {
      const base: string = super._fuseOptions()
      const extra = [...EXTRA_MOUNT_OPTIONS, ...((this as any).opts.extraOptions as string[] ?? [])].join(',')
      return base === '' ? `-o${extra}` : `${base},${extra}`
    }
  } as unknown as FuseClass
  return fuseClass
}

/** The typed error for a binding that does not load: not installed, or its libfuse2 missing. */
function bindingError (err: any): FuseUnavailableError {
  const message = String(err?.message ?? err).split('\n')[0]
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && message.includes('fuse-native')) {
    return new FuseUnavailableError(`FUSE support is not installed (the optional module fuse-native is missing): ${INSTALL_FUSE_HINT}`)
  }
  if (/libfuse/.test(message)) {
    return new FuseUnavailableError(`the FUSE binding cannot load libfuse2 (${message}): install Debian's \`libfuse2\` package (apt-get install fuse libfuse2), then restart the daemon (the binding is loaded once per process)`)
  }
  return new FuseUnavailableError(`cannot load the FUSE binding fuse-native (${message}): ${INSTALL_FUSE_HINT}`)
}

/**
 * Check that this machine can mount: the binding loads (first: a missing
 * module is what `npm install` fixes, whatever the machine), `/dev/fuse`
 * opens for reading and writing, `fusermount` is on the PATH.
 *
 * @throws {FuseUnavailableError} saying which is missing
 */
export async function checkFuse (): Promise<void> {
  await loadFuseClass()
  try {
    await access('/dev/fuse', constants.R_OK | constants.W_OK)
  } catch (err: any) {
    throw new FuseUnavailableError(`/dev/fuse is not usable (${String(err?.code ?? err?.message)}): FUSE needs the fuse kernel module and access to /dev/fuse`)
  }
  const path = (process.env.PATH ?? '').split(':').filter(p => p !== '')
  let found = false
  for (const dir of path) {
    try { await access(`${dir}/fusermount`, constants.X_OK); found = true; break } catch {}
  }
  if (!found) throw new FuseUnavailableError('fusermount is not on the PATH: install Debian\'s `fuse` package')
}

/**
 * Mount `ops` at `dir` (an existing, empty directory) with Shoal's options.
 * The FUSE loop runs on the binding's threads; every operation is answered
 * on this process's event loop — which must therefore never make a
 * synchronous call on the mount (it would wait for itself).
 *
 * @throws {FuseUnavailableError} when the binding does not load
 */
export async function mountFuse (dir: string, ops: FuseOps, options: FuseMountOptions = {}): Promise<MountedFuse> {
  const Fuse = await loadFuseClass()
  const timeout: Record<string, number | false> = { default: 60_000 }
  for (const op of UNBOUNDED_OPS) timeout[op] = false
  Object.assign(timeout, options.timeout)
  const fuse = new Fuse(dir, ops, {
    fsname: options.fsname ?? 'shoal',
    subtype: 'shoal',
    autoCache: options.autoCache ?? true,
    // fuse-native drops a timeout of 0: pass both ourselves
    extraOptions: [`attr_timeout=${options.attrTimeout ?? 1}`, `entry_timeout=${options.entryTimeout ?? 1}`],
    timeout
  })
  await new Promise<void>((resolve, reject) => {
    fuse.mount(err => { if (err === null || err === undefined) resolve(); else reject(err) })
  })
  let unmounting: Promise<void> | undefined
  return {
    dir,
    async unmount () {
      unmounting ??= new Promise<void>((resolve, reject) => {
        fuse.unmount(err => { if (err === null || err === undefined) resolve(); else reject(err) })
      })
      await unmounting
    }
  }
}
