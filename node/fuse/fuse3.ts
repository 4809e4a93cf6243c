/**
 * The JavaScript half of Shoal's libfuse3 binding (`native/fuse3/`, built by
 * `npm run build:fuse3`): loads the addon, mounts, and answers the native
 * side's calls with the operations table of `adapter.ts`.
 *
 * Why a binding of our own: over libfuse2 (fuse-native) the kernel sends
 * reads of 128 KiB at most, one serial round trip each through the binding
 * and the event loop; libfuse3 negotiates `max_pages` and the kernel sends
 * up to 1 MiB per request (docs/decisions.md, "FUSE binding over libfuse3").
 *
 * How: the addon runs libfuse's loop on its threads. For each operation a
 * FUSE thread stores the arguments in its own block of memory, wakes the
 * event loop and waits; the addon then calls the handler of that operation
 * here with the block and the arguments, and the handler answers through
 * `fuse3_signal_<op>(block, result, …values)`, which copies the values into
 * libfuse's structures and releases the thread. Every answer carries the
 * values its signal reads (a zeroed stat on an error, fd 0…): a missing one
 * would throw inside the addon and leave the FUSE thread waiting.
 *
 * @module
 */
import { createRequire } from 'node:module'
import { execFile } from 'node:child_process'
import { readFile, realpath, writeFile } from 'node:fs/promises'
import { packageFile } from '../package-files.js'
import type { FuseOps, FuseStat, FuseStatfs, OpenPages } from './adapter.js'
import { MAX_MULTIHASH, MAX_PLACES, packPlaces } from './record-places.js'


const ETIMEDOUT = -110
const ENOSYS = -38

/** What the kernel granted at the FUSE handshake. */
export interface Fuse3ConnInfo {
  /** Largest write request, bytes (1 MiB when `max_pages` was negotiated). */
  maxWrite: number
  /** Largest read request the mount allows, bytes. */
  maxRead: number
  /** The kernel's read-ahead window at the handshake, bytes. */
  maxReadahead: number
  /** FUSE protocol minor version of the kernel. */
  protoMinor: number
}

/** Options of {@link mountFuse3}. */
export interface Fuse3MountOptions {
  /** libfuse3 `-o` options (`fsname=…`, `auto_cache`, `attr_timeout=…`). */
  options: readonly string[]
  /** Per-operation timeouts in ms (`false`: none), `default` for the others. */
  timeout: Record<string, number | false>
  /** The mount's read-ahead window (`read_ahead_kb` of its bdi; root only). @default unchanged */
  readAheadKb?: number
  /** Keep a file's pages across opens when the ops answer `keep` (false: dropped at every open). @default true */
  keepPages?: boolean
}

/**
 * What the binding's threads read from pack records for one mount, since it
 * was mounted (native/fuse3/records.h): reads that bypass the block store,
 * so its own counters do not see them.
 */
export interface FuseReadCounts {
  /** Records read from disk and checked good. */
  records: number
  /** Block bytes those records held. */
  bytes: number
  /** Records that failed a check (length, multihash or crc32c): never served, read again through the block store. */
  refused: number
}

/** A file system mounted through the libfuse3 binding. */
export interface Fuse3Mount {
  /** What the kernel granted. */
  conn: Fuse3ConnInfo
  /** The mount's reads from pack records so far (zeros from a binding built before it counted them). */
  readCounts: () => FuseReadCounts
  /** The mount's read-ahead window after mounting, KiB (undefined: not readable). */
  readAheadKb?: number
  /** Detach the mount (lazily: a busy mount goes at once). */
  unmount: () => Promise<void>
}

interface Addon {
  sizeof_fuse3_thread_t: number
  OP_COUNT: number
  fuse3_mount: (mnt: string, opts: string, thread: Buffer, ctx: object, malloc: (size: number) => Buffer, handlers: Function[], implemented: Uint32Array) => void
  fuse3_unmount: (mnt: string, thread: Buffer) => number
  fuse3_conn_info: (thread: Buffer) => Fuse3ConnInfo
  [name: string]: any
}

let addon: Addon | undefined

/**
 * The addon's per-mount state, kept for the life of the process: libfuse's
 * threads may still use it after a lazy unmount, while open files drain.
 */
const threads = new Set<Buffer>()

/**
 * Load the addon once. Throws what `require` throws: a missing file
 * (`MODULE_NOT_FOUND`: not built) or a dlopen error (libfuse3 missing).
 */
export function loadFuse3Addon (): Addon {
  if (addon !== undefined) return addon
  // where `npm run build:fuse3` puts it
  addon = createRequire(import.meta.url)(packageFile('native', 'fuse3', 'build', 'Release', 'fuse3.node')) as Addon
  return addon
}

/** The operations the addon binds, by the name the ops table uses. */
const OP_NAMES = ['init', 'statfs', 'getattr', 'flush', 'fsync', 'readdir', 'truncate', 'ftruncate', 'utimens', 'readlink', 'chown', 'chmod', 'mknod', 'open', 'read', 'write', 'release', 'create', 'unlink', 'rename', 'link', 'symlink', 'mkdir', 'rmdir'] as const
type OpName = typeof OP_NAMES[number]

type Signal = (res: number, ...values: unknown[]) => void

/** A read answered with the places of its bytes (`fuse3_signal_read_places`; record-places.ts). */
type PlacesSignal = (count: number, packed: Buffer, buffer: ArrayBuffer) => void

const EIO = -5

/**
 * How each operation's arguments (after the locals block and the opcode)
 * reach the ops table, and which values its answer carries. A read may be
 * answered with places (`replyPlaces`) when the addon takes them.
 */
function callOp (ops: FuseOps, name: OpName, reply: Signal, args: any[], replyPlaces?: PlacesSignal, keepPages = true): void {
  const o = ops as Required<FuseOps>
  // an open's use of the file's pages, as fuse3_signal_open reads it: 0 drop them, 1 keep them, 2 read past them
  // (direct_io); with 4 the kernel's attributes of the file are stale, forgotten before the answer (refresh_attrs)
  const pages = (p?: OpenPages, stale?: boolean): number => (p === 'direct' ? 2 : p === 'keep' && keepPages ? 1 : 0) | (stale === true ? 4 : 0)
  const done = (err: number): void => { reply(err) }
  switch (name) {
    case 'statfs': o.statfs(args[0], (err, st) => { reply(err, statfsArray(err === 0 ? st : undefined)) }); return
    // a handle (args[1], 0 for none) when the kernel asks through an open file; args[2] true when it asks
    // about an inode it holds (FUSE_GETATTR: fstat), false for the lookup of a name and libfuse's own checks
    case 'getattr': {
      const answer = (err: number, st?: FuseStat): void => { reply(err, statArray(err === 0 ? st : undefined)) }
      if (args[1] > 0 && o.fgetattr !== undefined) o.fgetattr(args[0], args[1], answer)
      else if (args[2] === true && o.getattrHeld !== undefined) o.getattrHeld(args[0], answer)
      else o.getattr(args[0], answer)
      return
    }
    case 'readdir': o.readdir(args[0], (err, names, stats) => { reply(err, err === 0 ? names ?? [] : [], err === 0 && stats !== undefined ? stats.map(statArray) : []) }); return
    case 'open': o.open(args[0], args[1], (err, fd, p, stale) => { reply(err, fd ?? 0, pages(p, stale)) }); return
    case 'create': o.create(args[0], args[1], (err, fd, p, stale) => { reply(err, fd ?? 0, pages(p, stale)) }); return
    case 'read': o.read(args[0], args[1], args[2], args[3], args[4] + args[5] * 4294967296, (result, places) => {
      if (places === undefined) reply(result, 0, args[2].buffer)
      else if (replyPlaces !== undefined && places.length > 0 && places.length <= MAX_PLACES) replyPlaces(places.length, packPlaces(places), args[2].buffer)
      // never answered as a short read: the kernel would take it for the end of the file
      else reply(EIO, 0, args[2].buffer)
    }, { places: args[6] !== true && replyPlaces !== undefined, retried: args[6] === true }); return
    case 'write': o.write(args[0], args[1], args[2], args[3], args[4] + args[5] * 4294967296, result => { reply(result, 0, args[2].buffer) }); return
    case 'flush': o.flush(args[0], args[1], done); return
    case 'fsync': o.fsync(args[0], args[1], args[2], done); return
    case 'release': o.release(args[0], args[1], done); return
    case 'truncate': o.truncate(args[0], args[1] + args[2] * 4294967296, done); return
    case 'ftruncate': o.ftruncate(args[0], args[1], args[2] + args[3] * 4294967296, done); return
    case 'utimens': o.utimens(args[0], args[1] + args[2] * 4294967296, args[3] + args[4] * 4294967296, done); return
    case 'readlink': o.readlink(args[0], (err, target) => { reply(err, err === 0 ? target ?? '' : '') }); return
    case 'chown': o.chown(args[0], args[1], args[2], done); return
    case 'chmod': o.chmod(args[0], args[1], done); return
    case 'mknod': o.mknod(args[0], args[1], args[2], done); return
    case 'unlink': o.unlink(args[0], done); return
    case 'rename': o.rename(args[0], args[1], done); return
    case 'link': o.link(args[0], args[1], done); return
    case 'symlink': o.symlink(args[0], args[1], done); return
    case 'mkdir': o.mkdir(args[0], args[1], done); return
    case 'rmdir': o.rmdir(args[0], done); return
    case 'init': if (o.init !== undefined) o.init(done); else reply(0)
  }
}

/** What an operation answers when it fails before its handler answers (a timeout). */
function failed (name: OpName, args: any[]): unknown[] {
  switch (name) {
    case 'statfs': return [statfsArray()]
    case 'getattr': return [statArray()]
    case 'readdir': return [[], []]
    case 'open': case 'create': return [0, 0]
    case 'read': case 'write': return [0, args[2].buffer]
    case 'readlink': return ['']
    default: return []
  }
}

/**
 * Mount `ops` at `dir` through libfuse3; resolves once the kernel's
 * handshake is done (the `init` operation).
 *
 * @throws what the addon throws when libfuse3 refuses the options or the mount
 */
export async function mountFuse3 (dir: string, ops: FuseOps, options: Fuse3MountOptions): Promise<Fuse3Mount> {
  const a = loadFuse3Addon()
  const thread = Buffer.alloc(a.sizeof_fuse3_thread_t)
  threads.add(thread)
  const implemented = new Uint32Array(a.OP_COUNT)
  const handlers: Function[] = new Array(a.OP_COUNT)
  let initialised: (() => void) | undefined
  const init = new Promise<void>(resolve => { initialised = resolve })
  // a binding built before reads could be answered with places has none
  const placesSignal: ((block: Buffer, count: number, packed: Buffer, buffer: ArrayBuffer) => void) | undefined = a.fuse3_signal_read_places
  if (placesSignal !== undefined && (a.FUSE3_MAX_PLACES !== MAX_PLACES || a.FUSE3_MAX_MULTIHASH !== MAX_MULTIHASH)) throw new Error('the libfuse3 binding does not match this build: rebuild it (npm run build:fuse3)')
  for (const name of OP_NAMES) {
    const op: number = a[`op_${name}`]
    const signal: (block: Buffer, res: number, ...values: unknown[]) => void = a[`fuse3_signal_${name}`]
    const bound = options.timeout[name] ?? options.timeout.default ?? false
    if (name === 'init' || (ops as unknown as Record<string, unknown>)[name] !== undefined) implemented[op] = 1
    handlers[op] = (block: Buffer, _op: number, ...args: any[]) => {
      let answered = false
      let timer: NodeJS.Timeout | undefined
      /** True for the first answer only (with bytes or places, or the timeout's): it stops the timer. */
      const first = (): boolean => {
        if (answered) return false
        answered = true
        if (timer !== undefined) clearTimeout(timer)
        return true
      }
      const reply: Signal = (res, ...values) => {
        if (!first()) return
        signal(block, res, ...values)
        if (name === 'init') initialised?.()
      }
      const replyPlaces: PlacesSignal | undefined = placesSignal === undefined
        ? undefined
        : (count, packed, buffer) => { if (first()) placesSignal(block, count, packed, buffer) }
      if (implemented[op] === 0) { reply(ENOSYS, ...failed(name, args)); return }
      if (bound !== false) timer = setTimeout(() => { reply(ETIMEDOUT, ...failed(name, args)) }, bound)
      callOp(ops, name, reply, args, replyPlaces, options.keepPages ?? true)
    }
  }
  // a FUSE thread's block: the addon holds a reference to it
  const malloc = (size: number): Buffer => Buffer.alloc(size)
  const opts = options.options.length > 0 ? `-o${options.options.join(',')}` : ''
  // the mount table names the mountpoint by its canonical path (no symlinks); resolved before
  // the mount, whose root this process would then have to answer itself
  const mountPoint = await realpath(dir).catch(() => dir)
  a.fuse3_mount(dir, opts, thread, {}, malloc, handlers, implemented)
  await init
  const readAheadKb = await setReadAhead(mountPoint, options.readAheadKb)
  let unmounting: Promise<void> | undefined
  return {
    conn: a.fuse3_conn_info(thread),
    readAheadKb,
    readCounts () {
      const [records, bytes, refused] = (a.fuse3_read_counts?.(thread) as number[] | undefined) ?? [0, 0, 0]
      return { records, bytes, refused }
    },
    async unmount () {
      unmounting ??= (async () => {
        const res = a.fuse3_unmount(dir, thread)
        if (res === 0) return
        // not root: libfuse3's own helper detaches it
        await new Promise<void>((resolve, reject) => {
          execFile('fusermount3', ['-uz', dir], err => { if (err === null) resolve(); else reject(err) })
        })
      })()
      await unmounting
    }
  }
}

/**
 * Set (when asked) and read the mount's read-ahead window, found through
 * its device number in /proc/self/mountinfo — not by a `stat` of the
 * mountpoint, which this process would have to answer itself. `mountPoint`
 * is canonical (as the table has it); the table escapes space, tab,
 * newline and backslash as octal. The write fails where /sys is read-only
 * (a container's) or the node is not root: the window read back says so.
 */
async function setReadAhead (mountPoint: string, kb: number | undefined): Promise<number | undefined> {
  const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
  const line = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').reverse().find(l => unescape(l.split(' ')[4] ?? '') === mountPoint)
  const dev = line?.split(' ')[2]
  if (dev === undefined) return undefined
  const file = `/sys/class/bdi/${dev}/read_ahead_kb`
  if (kb !== undefined) await writeFile(file, String(kb)).catch(() => {})
  const now = Number((await readFile(file, 'utf8').catch(() => '')).trim())
  return Number.isFinite(now) && now > 0 ? now : undefined
}

function setDouble (arr: Uint32Array, idx: number, num: number): void {
  arr[idx] = num % 4294967296
  arr[idx + 1] = (num - arr[idx]) / 4294967296
}

function ms (t: number | Date | undefined): number {
  if (typeof t === 'number') return t
  if (t === undefined) return Date.now()
  return t.getTime()
}

/** A stat as the addon reads it (18 uint32s). */
function statArray (st?: FuseStat & { ino?: number, dev?: number, rdev?: number }): Uint32Array {
  const ints = new Uint32Array(18)
  if (st === undefined) return ints
  ints[0] = st.mode
  ints[1] = st.uid
  ints[2] = st.gid
  setDouble(ints, 3, st.size)
  ints[5] = st.dev ?? 0
  ints[6] = st.nlink ?? 1
  ints[7] = st.ino ?? 0
  ints[8] = st.rdev ?? 0
  ints[9] = st.blksize ?? 0
  setDouble(ints, 10, st.blocks ?? 0)
  setDouble(ints, 12, ms(st.atime))
  setDouble(ints, 14, ms(st.mtime))
  setDouble(ints, 16, ms(st.ctime))
  return ints
}

/** A statfs as the addon reads it (11 uint32s). */
function statfsArray (st?: FuseStatfs): Uint32Array {
  const ints = new Uint32Array(11)
  if (st === undefined) return ints
  const v = [st.bsize, st.frsize, st.blocks, st.bfree, st.bavail, st.files, st.ffree, st.favail, st.fsid, st.flag, st.namemax]
  for (let i = 0; i < v.length; i++) ints[i] = v[i] ?? 0
  return ints
}
