/**
 * The only module that touches a FUSE binding: picks one, loads it on first
 * use, builds its mount options, and turns its callback API into promises.
 *
 * Two bindings: Shoal's own over libfuse3 (`native/fuse3/`, driven by
 * `fuse3.ts`, built by `npm run build:fuse3`), where the kernel sends reads
 * and writes of up to 1 MiB; and fuse-native over Debian's libfuse2, where
 * it sends 128 KiB (docs/fuse.md, "Bindings"). The libfuse3 binding is the
 * default where it is usable — built, loading (libfuse3 is installed) and
 * able to mount (root, or `fusermount3` on the PATH); otherwise fuse-native,
 * and the daemon's `mounted` line says why. `SHOAL_FUSE_BINDING=libfuse3`
 * or `=libfuse2` forces one (a forced libfuse3 that is not usable is an
 * error). Each mount reports its binding (`shoal mounts`, the daemon's
 * log).
 *
 * Why it loads late: both are optional (fuse-native's prebuilt binaries
 * cover few platforms, the addon needs libfuse3's headers to build, and a
 * node is useful without a mount), so neither may be there. Nothing loads
 * until a mount is made: a node without them starts, adds, reads and
 * serves the swarm, and only `shoal mount` (or a recorded mount restored at
 * start) fails, with a {@link FuseUnavailableError} that says what to install.
 *
 * How: fuse-native by a dynamic `import()` (an ESM import, so Node's resolve
 * hooks see it as they would a missing package), the addon by `require` of
 * its built file; the choice is cached once it succeeds.
 *
 * @module
 */
import { access, constants } from 'node:fs/promises'
import { ERRNO } from './errno.js'
import { FuseUnavailableError } from './errors.js'
import { loadFuse3Addon, mountFuse3, type FuseReadCounts } from './fuse3.js'
import { isFuseMountAt } from './mounts.js'
import type { RecordPlace } from './record-places.js'

/** What to do when no binding is installed (one line, shown by `shoal mount`). */
export const INSTALL_FUSE_HINT = 'install Debian\'s `fuse` and `libfuse2` packages (apt-get install fuse libfuse2), then `npm install fuse-native` in Shoal\'s folder (or, for 1 MiB requests, `apt-get install libfuse3-dev pkg-config make g++` and `npm run build:fuse3`), and restart the daemon'

/** The environment variable that forces a binding: `libfuse3` or `libfuse2` (unset: libfuse3 where usable). */
export const FUSE_BINDING_ENV = 'SHOAL_FUSE_BINDING'

/** A FUSE binding: Shoal's own over libfuse3, or fuse-native over libfuse2. */
export type FuseBindingName = 'libfuse3' | 'libfuse2'

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
  /** `getattr` through an open handle (the kernel's checks before a read); absent: `getattr` by path. */
  fgetattr?: (path: string, fd: number, cb: Reply<[FuseStat?]>) => void
  /**
   * `getattr` of a file the kernel holds, asked by its inode and not by a
   * name (`fstat`, which comes without the handle): the libfuse3 binding
   * tells it from a lookup, which libfuse answers with `getattr` too;
   * absent, or over libfuse2 (which cannot tell them apart): `getattr`.
   */
  getattrHeld?: (path: string, cb: Reply<[FuseStat?]>) => void
  readdir?: (path: string, cb: Reply<[string[]?, FuseStat[]?]>) => void
  statfs?: (path: string, cb: Reply<[FuseStatfs?]>) => void
  /**
   * Answers the handle, how it uses the kernel's pages of the file
   * ({@link OpenPages}), and whether the kernel's attributes of the file are
   * another version's (`stale`: the binding has the kernel forget them
   * before the open is answered). Both libfuse3 only.
   */
  open?: (path: string, flags: number, cb: Reply<[number?, OpenPages?, boolean?]>) => void
  create?: (path: string, mode: number, cb: Reply<[number?, OpenPages?, boolean?]>) => void
  /**
   * Read into `buf`. With `options.places` (the libfuse3 binding, on a read
   * not already refused in that form) the answer may be the places of the
   * bytes in pack records instead (`cb(0, places)`), which the binding's
   * thread reads and checks; a record that fails is asked again without it
   * (`retried`).
   */
  read?: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number, places?: readonly RecordPlace[]) => void, options?: { places: boolean, retried?: boolean }) => void
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

/**
 * How an open file uses the kernel's pages of it (the page cache, one per
 * file, shared by all its handles): `keep` those earlier opens left, `drop`
 * them at this open, or read `direct`ly, past them. The libfuse3 binding
 * answers an open with it; over libfuse2 libfuse's `auto_cache` decides.
 */
export type OpenPages = 'keep' | 'drop' | 'direct'

/** How a file system is mounted. */
export interface FuseMountOptions {
  /** Seconds the kernel caches attributes. @default 1 */
  attrTimeout?: number
  /** Seconds the kernel caches name lookups. @default 1 */
  entryTimeout?: number
  /**
   * Keep file pages in the kernel's cache across opens: over libfuse3 while
   * they hold the version opened (the ops' {@link OpenPages}), over libfuse2
   * dropped on open when the file's mtime or size changed (libfuse
   * `auto_cache`). @default true
   */
  autoCache?: boolean
  /** Name shown in the mount table. @default 'shoal' */
  fsname?: string
  /**
   * Per-operation timeouts in ms (`false`: none); an operation over its
   * bound answers ETIMEDOUT. @default 60 s for most, none for those that wait on commits
   */
  timeout?: Record<string, number | false>
  /**
   * The kernel's read-ahead window of the mount, KiB (libfuse3 only, root
   * only: its bdi's `read_ahead_kb`). The kernel's default (128 KiB) sends
   * a sequential read as 128 KiB requests even where 1 MiB ones are allowed;
   * 2 MiB keeps about two requests in flight, which the binding's threads
   * answer at once from pack records (docs/benchmarks.md, "FUSE").
   * @default {@link DEFAULT_READ_AHEAD_KB}
   */
  readAheadKb?: number
}

/** The read-ahead window a libfuse3 mount asks for, KiB ({@link FuseMountOptions.readAheadKb}). */
export const DEFAULT_READ_AHEAD_KB = 2048

/**
 * Options every Shoal mount over libfuse2 (and the bench's reference file
 * system) adds to fuse-native's: `big_writes` (128 KiB writes instead of 4 KiB, ×9 on
 * sequential writes: docs/fuse.md), `atomic_o_trunc` (`open(O_TRUNC)` comes
 * as one open, not a truncate then an open). libfuse3 has both by default
 * (and refuses the names).
 */
export const EXTRA_MOUNT_OPTIONS: readonly string[] = ['big_writes', 'atomic_o_trunc']

/** Operations that may wait for a commit or a copy: never timed out. */
const UNBOUNDED_OPS = ['open', 'create', 'release', 'flush', 'fsync', 'truncate', 'ftruncate', 'rename', 'unlink', 'utimens', 'chmod']

/** A mounted file system. */
export interface MountedFuse {
  /** Absolute mountpoint. */
  dir: string
  /** The binding that serves it. */
  binding: FuseBindingName
  /** Largest read or write request the kernel sends, bytes (128 KiB over libfuse2). */
  maxRequest: number
  /**
   * The kernel's read-ahead window of the mount, KiB: a sequential read of a
   * cached file comes as requests of at most this (and `maxRequest`). Below
   * the window asked ({@link FuseMountOptions.readAheadKb}) where /sys is
   * read-only or the node is not root; absent over libfuse2, or when not readable.
   */
  readAheadKb?: number
  /** Unmount (lazily: a busy mount is detached at once) and end the FUSE session. */
  unmount: () => Promise<void>
  /** What the libfuse3 binding's threads read from pack records for this mount (absent over libfuse2: none are). */
  readCounts?: () => FuseReadCounts
}

interface FuseInstance {
  mount: (cb: (err: Error | null) => void) => void
  unmount: (cb: (err: Error | null) => void) => void
}
type FuseClass = new (mnt: string, ops: FuseOps, opts: Record<string, unknown>) => FuseInstance

let fuseClass: FuseClass | undefined

/** Load fuse-native and subclass it once. @throws {FuseUnavailableError} */
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
    // fuse-native's own calls `getattr`, dropping the handle: run its getattr
    // step (which converts the answer) over a getattr that asks through the handle
    _op_fgetattr (signal: unknown, path: string, fd: number): void {
      const ops = (this as any).ops as FuseOps
      const { fgetattr } = ops
      if (fgetattr === undefined) { super._op_fgetattr(signal, path, fd); return }
      super._op_getattr.call({ ops: { getattr: (p: string, cb: Reply<[FuseStat?]>) => { fgetattr(p, fd, cb) } } }, signal, path)
    }

    _fuseOptions (): string {
      const base: string = super._fuseOptions()
      const extra = [...EXTRA_MOUNT_OPTIONS, ...((this as any).opts.extraOptions as string[] ?? [])].join(',')
      return base === '' ? `-o${extra}` : `${base},${extra}`
    }
  } as unknown as FuseClass
  return fuseClass
}

/** The typed error for fuse-native when it does not load: not installed, or its libfuse2 missing. */
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

/** The binding this process mounts with, and why not libfuse3 when it is libfuse2. */
export interface FuseBindingChoice {
  name: FuseBindingName
  /** Why the libfuse3 binding is not used (absent when it is). */
  whyNotLibfuse3?: string
}

let choice: FuseBindingChoice | undefined

/** Whether `name` is an executable on the PATH. */
async function onPath (name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':').filter(p => p !== '')) {
    try { await access(`${dir}/${name}`, constants.X_OK); return true } catch {}
  }
  return false
}

/** Why the libfuse3 binding cannot mount here, or undefined when it can. */
async function libfuse3Unusable (): Promise<string | undefined> {
  try {
    loadFuse3Addon()
  } catch (err: any) {
    if (err?.code === 'MODULE_NOT_FOUND') return 'not built: `npm run build:fuse3` (needs libfuse3-dev)'
    return `does not load: ${String(err?.message ?? err).split('\n')[0]}`
  }
  if (process.geteuid?.() !== 0 && !await onPath('fusermount3')) return 'not root and no fusermount3 on the PATH (Debian\'s fuse3 package)'
  return undefined
}

/**
 * Pick the binding once per process (see the module comment).
 *
 * @throws {FuseUnavailableError} when none loads, or the one forced does not
 */
export async function chooseFuseBinding (): Promise<FuseBindingChoice> {
  if (choice !== undefined) return choice
  const forced = process.env[FUSE_BINDING_ENV] ?? ''
  if (forced !== '' && forced !== 'libfuse3' && forced !== 'libfuse2') {
    throw new FuseUnavailableError(`${FUSE_BINDING_ENV} must be libfuse3 or libfuse2, not ${JSON.stringify(forced)}`)
  }
  if (forced === 'libfuse3') {
    const why = await libfuse3Unusable()
    if (why !== undefined) throw new FuseUnavailableError(`the libfuse3 binding is ${why}`)
    choice = { name: 'libfuse3' }
    return choice
  }
  // libfuse3 by default when it is usable: 1 MiB requests, reads and writes
  // several times faster (docs/decisions.md); otherwise fuse-native, saying why
  const why = forced === 'libfuse2' ? `not asked for (${FUSE_BINDING_ENV}=libfuse2)` : await libfuse3Unusable()
  if (why === undefined) {
    choice = { name: 'libfuse3' }
    return choice
  }
  try {
    await loadFuseClass()
  } catch (err: any) {
    // neither: say what each lacks
    if (err instanceof FuseUnavailableError && forced === '') throw new FuseUnavailableError(`${String(err.message)}; the libfuse3 binding is ${why}`)
    throw err
  }
  choice = { name: 'libfuse2', whyNotLibfuse3: why }
  return choice
}

/**
 * Check that this machine can mount: a binding loads (first: a missing
 * module is what `npm install` fixes, whatever the machine), `/dev/fuse`
 * opens for reading and writing, and for libfuse2 `fusermount` is on the
 * PATH (libfuse3 mounts as root by itself).
 *
 * @throws {FuseUnavailableError} saying which is missing
 */
export async function checkFuse (): Promise<FuseBindingChoice> {
  const chosen = await chooseFuseBinding()
  try {
    await access('/dev/fuse', constants.R_OK | constants.W_OK)
  } catch (err: any) {
    throw new FuseUnavailableError(`/dev/fuse is not usable (${String(err?.code ?? err?.message)}): FUSE needs the fuse kernel module and access to /dev/fuse`)
  }
  if (chosen.name === 'libfuse2' && !await onPath('fusermount')) throw new FuseUnavailableError('fusermount is not on the PATH: install Debian\'s `fuse` package')
  return chosen
}

/** The operations that take names (symlink's target is not one: it is refused anyway). */
const NAME_OPS = ['getattr', 'readdir', 'open', 'create', 'truncate', 'mkdir', 'rmdir', 'unlink', 'rename', 'chmod', 'chown', 'utimens', 'link', 'readlink', 'mknod'] as const

/**
 * fuse-native decodes every path as UTF-8 before JavaScript sees it, so a
 * byte that is not UTF-8 arrives as U+FFFD: `u\xff` and `u\xfe` would name
 * one file, and the second write would replace the first. It cannot be
 * told from a U+FFFD the name really holds, so over libfuse2 a path with
 * U+FFFD is refused with EILSEQ, both kinds. (The libfuse3 binding checks
 * the bytes in C and refuses only names that are not UTF-8.)
 */
function refuseUndecodedNames (ops: FuseOps): FuseOps {
  const guarded: Record<string, unknown> = { ...ops }
  for (const name of NAME_OPS) {
    const op = ops[name] as ((...args: unknown[]) => void) | undefined
    if (op === undefined) continue
    guarded[name] = (...args: unknown[]) => {
      if (args.some(a => typeof a === 'string' && a.includes('\uFFFD'))) {
        (args[args.length - 1] as Reply)(-ERRNO.EILSEQ)
        return
      }
      op(...args)
    }
  }
  return guarded as unknown as FuseOps
}

/**
 * Mount `ops` at `dir` (an existing, empty directory) with Shoal's options,
 * on the binding {@link chooseFuseBinding} picks. The FUSE loop runs on the
 * binding's threads; every operation is answered on this process's event
 * loop — which must therefore never make a synchronous call on the mount
 * (it would wait for itself).
 *
 * @throws {FuseUnavailableError} when no binding loads
 */
export async function mountFuse (dir: string, ops: FuseOps, options: FuseMountOptions = {}): Promise<MountedFuse> {
  const { name } = await chooseFuseBinding()
  const timeout: Record<string, number | false> = { default: 60_000 }
  for (const op of UNBOUNDED_OPS) timeout[op] = false
  Object.assign(timeout, options.timeout)
  const attrTimeout = `attr_timeout=${options.attrTimeout ?? 1}`
  const entryTimeout = `entry_timeout=${options.entryTimeout ?? 1}`
  if (name === 'libfuse3') {
    const mounted = await mountFuse3(dir, ops, {
      // no auto_cache: each open says whether the pages it finds are its version's (OpenPages)
      options: [`fsname=${options.fsname ?? 'shoal'}`, 'subtype=shoal', attrTimeout, entryTimeout],
      keepPages: options.autoCache ?? true,
      timeout,
      readAheadKb: options.readAheadKb ?? DEFAULT_READ_AHEAD_KB
    })
    // max_read 0: no limit but max_pages, which libfuse3 derives from max_write
    const { maxWrite, maxRead } = mounted.conn
    return { dir, binding: name, maxRequest: maxRead > 0 ? Math.min(maxWrite, maxRead) : maxWrite, readAheadKb: mounted.readAheadKb, unmount: unmountedEvenIfDetached(dir, mounted.unmount), readCounts: mounted.readCounts }
  }
  const Fuse = await loadFuseClass()
  const fuse = new Fuse(dir, refuseUndecodedNames(ops), {
    fsname: options.fsname ?? 'shoal',
    subtype: 'shoal',
    autoCache: options.autoCache ?? true,
    // fuse-native drops a timeout of 0: pass both ourselves
    extraOptions: [attrTimeout, entryTimeout],
    timeout
  })
  await new Promise<void>((resolve, reject) => {
    fuse.mount(err => { if (err === null || err === undefined) resolve(); else reject(err) })
  })
  let unmounting: Promise<void> | undefined
  return {
    dir,
    binding: name,
    // libfuse2 does not negotiate max_pages: the kernel's default of 32 pages
    maxRequest: 128 * 1024,
    unmount: unmountedEvenIfDetached(dir, async () => {
      unmounting ??= new Promise<void>((resolve, reject) => {
        fuse.unmount(err => { if (err === null || err === undefined) resolve(); else reject(err) })
      })
      await unmounting
    })
  }
}

/**
 * `unmount`, which also succeeds when the mount at `dir` is gone already:
 * detached by someone else (`fusermount -uz`, `umount -l`, a desktop's
 * eject), the binding's own unmount then fails ("Invalid argument"), and the
 * node would keep a mount that is not there — and, stopping, skip the commit
 * of what was written through it. Any other failure (the mount still there)
 * is thrown as it was.
 */
function unmountedEvenIfDetached (dir: string, unmount: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await unmount()
    } catch (err) {
      if (await isFuseMountAt(dir)) throw err
    }
  }
}
