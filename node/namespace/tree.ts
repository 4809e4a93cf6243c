/**
 * The materialized tree of the Merkle-CRDT: the live versions of every path
 * (`v!`) and what a reader sees (`t!`): one record per visible name,
 * conflict copies included, with a child count per directory so that
 * directories that exist only because something lives below them appear and
 * vanish by themselves. A conflict copy is never shown over a name that
 * shows something else; it waits for the name (`w!`) and is shown when the
 * name is free.
 *
 * Everything here works inside a transaction (kv.ts `Txn`), so a batch of entries changes
 * the tree atomically together with the log and the heads.
 *
 * @module
 */
import { baseName, joinPath, parentOf } from './paths.js'
import { MAX_NAME_BYTES, MAX_PATH_BYTES } from './paths.js'
import type { Dot } from './clock.js'
import type { FilePin } from './api.js'
import { UNREAD } from './kv.js'

/** A live version of a path: one write that nothing has superseded yet. */
export interface Version {
  author: string
  seq: number
  /** Entry time of the write (ms). */
  time: number
  type: 'file' | 'dir'
  cid?: string
  size?: number
  mode: number
  mtime: number
  /** Files only: the durability policy the write carried (absent: none). */
  pin?: FilePin
}

/** What is stored per path that has versions. */
export interface PathState {
  versions: Version[]
  /** Conflict-copy paths currently materialized for this path. */
  copies: string[]
}

/** A visible name. */
export interface Visible {
  type: 'file' | 'dir'
  cid?: string
  size?: number
  mode: number
  mtime: number
  /** Files (conflict copies too): the pin of the version shown. */
  pin?: FilePin
  /** The versions this name stands for (what a write or delete of it supersedes). */
  dots: Dot[]
  /** Directories: number of visible names directly inside. */
  children?: number
  /** A directory with no version of its own, present because something lives below it. */
  implicit?: boolean
  /** Conflict copies: the path whose losing version this is. */
  conflictOf?: string
  /** Conflict copies: who wrote the losing version, and when. */
  author?: string
  time?: number
}

const SEP = '\x00'

/** Key of a visible name: children of a directory are one key range. */
export function visibleKey (path: string): string {
  return 't!' + parentOf(path) + SEP + baseName(path)
}

/** Key range of the visible children of a directory. */
export function childRange (dir: string): { gt: string, lt: string } {
  return { gt: 't!' + dir + SEP, lt: 't!' + dir + '\x01' }
}

/** Path of a visible key. */
export function pathOfVisibleKey (key: string): string {
  const i = key.indexOf(SEP)
  return joinPath(key.slice(2, i), key.slice(i + 1))
}

/** Key of a path's versions. */
export function versionsKey (path: string): string { return 'v!' + path }
/** Key marking a path with conflict copies. */
export function conflictKey (path: string): string { return 'c!' + path }
/**
 * Key marking a path whose versions changed since the latest snapshot
 * (snapshots.ts writes the next one from these alone, and deletes them).
 */
export function dirtyKey (path: string): string { return 'd!' + path }
/** Key range of the dirty marks. */
export const DIRTY_RANGE = { gt: 'd!', lt: 'd"' } as const
/**
 * Key of the paths whose conflict copy would be shown at `name` and waits
 * while something else is shown there (a file of that very name, a
 * directory, another path's copy): they are refreshed when it is free.
 */
export function waitingKey (name: string): string { return 'w!' + name }
/** The prefixes of the rows the tree derives from the versions (cleared together when the tree is rebuilt). */
export const TREE_PREFIXES = ['t!', 'v!', 'c!', 'w!'] as const

/** Deterministic order of versions: the greatest is the winner. */
export function compareVersions (a: Version, b: Version): number {
  if (a.mtime !== b.mtime) return a.mtime - b.mtime
  if (a.time !== b.time) return a.time - b.time
  if (a.author !== b.author) return a.author < b.author ? -1 : 1
  return a.seq - b.seq
}

function pad (n: number, width = 2): string { return String(n).padStart(width, '0') }

/**
 * `name.conflict-<peer>-<time>.ext` for a losing version of `path`; `-<seq>`
 * is added to the time when one author has several losing versions of the
 * path within one second.
 *
 * The copy is always a path the API takes (at most {@link MAX_NAME_BYTES}
 * a name, {@link MAX_PATH_BYTES} in all), so it can be read, moved and
 * removed: the stem is shortened first, then the extension, then, in a
 * path a few dozen bytes short of the limit, the name itself
 * (docs/namespace.md, "Examples": conflict copies of long names).
 */
export function conflictPath (path: string, version: Version, withSeq = false): string {
  const parent = parentOf(path)
  const name = baseName(path)
  const dot = name.lastIndexOf('.')
  let stem = [...(dot > 0 ? name.slice(0, dot) : name)]
  let ext = [...(dot > 0 ? name.slice(dot) : '')]
  const d = new Date(version.time)
  const stamp = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`
  const suffix = `.conflict-${version.author.slice(-8)}-${stamp}${withSeq ? `-${version.seq}` : ''}`
  // what the name may take: NAME_MAX, and what PATH_MAX leaves after the parent and its /
  const room = Math.min(MAX_NAME_BYTES, MAX_PATH_BYTES - Buffer.byteLength(parent) - (parent === '/' ? 0 : 1))
  const over = (): boolean => Buffer.byteLength(stem.join('') + suffix + ext.join('')) > room
  while (over() && stem.length > 1) stem = stem.slice(0, -1)
  while (over() && ext.length > 0) ext = ext.slice(0, -1)
  let copy = [...(stem.join('') + suffix + ext.join(''))]
  while (Buffer.byteLength(copy.join('')) > room && copy.length > 1) copy = copy.slice(0, -1)
  // a name cut to `.` or `..` would be a step in a path, not a name
  const cut = copy.join('')
  return joinPath(parent, cut === '.' || cut === '..' ? '_'.repeat(cut.length) : cut)
}

/**
 * False when no {@link conflictPath} can be `path`: its name holds no
 * `.conflict-` and the path is not one cut to fit PATH_MAX (those end
 * within a few bytes of it). Every other path takes no look for copies.
 */
export function mayBeConflictCopy (path: string): boolean {
  return path.includes('.conflict-') || (path.length * 3 > MAX_PATH_BYTES - 128 && Buffer.byteLength(path) > MAX_PATH_BYTES - 128)
}

function dotOf (v: Version): Dot { return [v.author, v.seq] }

function fileRecord (v: Version): Visible {
  const record: Visible = { type: 'file', cid: v.cid, size: v.size, mode: v.mode, mtime: v.mtime, dots: [dotOf(v)] }
  if (v.pin !== undefined) record.pin = copyPin(v.pin)
  return record
}

import { copyPin } from './pins.js'

/** No conflict copies. */
const NO_COPIES: ReadonlyMap<string, Visible> = new Map()
/** No names. */
const NO_NAMES: ReadonlySet<string> = new Set()

/** `versions` without those named in `replaces`, with `add` (a new list). */
function changed (versions: readonly Version[], replaces: readonly Dot[], add: Version | undefined): Version[] {
  let out: Version[]
  if (replaces.length === 0) {
    out = versions.slice()
  } else {
    const drop = new Set(replaces.map(([a, s]) => `${a}\n${s}`))
    out = versions.filter(v => !drop.has(`${v.author}\n${v.seq}`))
  }
  if (add !== undefined) out.push(add)
  return out
}

/**
 * What a path with `versions` and `children` visible names below it shows:
 * its record (undefined: nothing), and the file versions that lose to it
 * (each shown as a conflict copy where it can be). A losing file version
 * with the winner's content, mode and pin policy is no loser: it is shown
 * with the winner, as one file.
 */
function visibleOf (versions: readonly Version[], children: number): { main?: Visible, losers: Version[] } {
  // one version and no children: what nearly every path is
  if (versions.length === 1 && children === 0) {
    const only = versions[0]
    return { main: only.type === 'file' ? fileRecord(only) : { type: 'dir', mode: only.mode, mtime: only.mtime, dots: [dotOf(only)], children }, losers: [] }
  }
  const dirs = versions.filter(v => v.type === 'dir').sort(compareVersions)
  const files = versions.filter(v => v.type === 'file').sort(compareVersions)
  if (dirs.length > 0 || children > 0) {
    const top = dirs.at(-1)
    const main: Visible = top === undefined
      ? { type: 'dir', mode: 0o755, mtime: Math.max(0, ...files.map(f => f.mtime)), dots: [], children, implicit: true }
      : { type: 'dir', mode: top.mode, mtime: top.mtime, dots: dirs.map(dotOf), children }
    return { main, losers: files }
  }
  if (files.length > 0) {
    const top = files[files.length - 1]
    const main = fileRecord(top)
    // the winner's content written again concurrently (the same bytes on two
    // nodes, with the same mode and policy) is no conflict: one file, whose
    // removal, move or overwrite takes every such version (its dots are the
    // file's); another policy for the same bytes is a conflict, as before
    const same = (v: Version): boolean => v.cid === top.cid && v.mode === top.mode && v.pin?.policy === top.pin?.policy
    const twins = files.slice(0, -1).filter(same)
    if (twins.length > 0) main.dots = [...twins.map(dotOf), dotOf(top)]
    return { main, losers: files.slice(0, -1).filter(v => !same(v)) }
  }
  return { losers: [] }
}

/**
 * What a {@link TreeWriter} reads and writes through: a transaction
 * (kv.ts `Txn`), or the bulk rows of a new node's first snapshot load
 * (bulk-rows.ts). Reads see the writes made before them.
 */
export interface TreeTxn {
  get: <T>(key: string) => Promise<T | undefined>
  /** The value when it is known without waiting, else {@link UNREAD} (optional; see kv.ts `Txn.peek`). */
  peek?: <T>(key: string) => T | undefined | typeof UNREAD
  /** True when {@link peek} reads every key now, until control returns to the event loop (optional; see kv.ts `Txn.readsNow`). */
  readsNow?: () => boolean
  put: (key: string, value: unknown) => void
  del: (key: string) => void
}

/** Options of {@link TreeWriter}. */
export interface TreeWriterOptions {
  /**
   * Mark each path whose versions change as dirty (`d!`), for the next
   * snapshot (default true). A snapshot merge writes its own snapshot of
   * what it changes and marks nothing.
   */
  markDirty?: boolean
  /** Called with each conflict-copy path the writer makes visible (a bulk load tracks where it wrote names other than the path it loads). */
  onCopy?: (path: string) => void
  /** Called with the manifest of each file (or conflict copy) the writer shows whose pin names one (replica.ts `onReferences`). */
  onPinned?: (manifest: string) => void
}

/** What the caller of {@link TreeWriter.load} knows of a path's rows without reading them. */
export interface KnownRows {
  /** The path's stored state (`v!`). */
  stored: PathState
  /** True when no visible name (`t!`) is stored at the path either. */
  unseen?: boolean
}

/** Tree maintenance inside one transaction. */
export class TreeWriter {
  private readonly markDirty: boolean
  private readonly onCopy: ((path: string) => void) | undefined
  private readonly onPinned: ((manifest: string) => void) | undefined

  constructor (private readonly txn: TreeTxn, options: TreeWriterOptions = {}) {
    this.markDirty = options.markDirty ?? true
    this.onCopy = options.onCopy
    this.onPinned = options.onPinned
  }

  async versions (path: string): Promise<PathState> {
    return await this.read<PathState>(versionsKey(path)) ?? { versions: [], copies: [] }
  }

  /**
   * A row, without waiting when the transaction knows it already (see
   * {@link TreeTxn.peek}): a batch applying a page reads most of its rows
   * that way, and an `await` for each would cost a turn of the microtask
   * queue and its promises.
   */
  private read<T> (key: string): T | undefined | Promise<T | undefined> {
    const known = this.peek<T>(key)
    return known === UNREAD ? this.txn.get<T>(key) : known
  }

  /** See {@link TreeTxn.peek}; {@link UNREAD} when the transaction has none. */
  private peek<T> (key: string): T | undefined | typeof UNREAD {
    return this.txn.peek === undefined ? UNREAD : this.txn.peek<T>(key)
  }

  /**
   * Change the versions of a path: drop those named in `replaces`, add `add`,
   * then bring the visible tree up to date.
   */
  async change (path: string, replaces: Dot[], add?: Version): Promise<void> {
    let stored = this.read<PathState>(versionsKey(path))
    if (stored instanceof Promise) stored = await stored
    const state = stored ?? { versions: [], copies: [] }
    const versions = changed(state.versions, replaces, add)
    if (this.markDirty) this.txn.put(dirtyKey(path), 1)
    await this.refresh(path, { versions, copies: state.copies })
  }

  /**
   * {@link change}, done at once when it is the usual change of a page of
   * history: the transaction reads every row now ({@link TreeTxn.readsNow}),
   * the path ends with no conflict copies to make or drop, and its parent's
   * record needs at most its child count adjusted. Returns false, having
   * read but written nothing, otherwise: the caller runs {@link change}.
   * The rows it writes are the ones {@link change} would.
   */
  changeNow (path: string, replaces: Dot[], add?: Version): boolean {
    // a name a conflict copy may take: its rows tell whose copy waits for it
    if (this.txn.readsNow?.() !== true || mayBeConflictCopy(path)) return false
    const stored = this.peek<PathState>(versionsKey(path))
    const current = this.peek<Visible>(visibleKey(path))
    if (stored === UNREAD || current === UNREAD) return false
    const state = stored ?? { versions: [], copies: [] }
    if (state.copies.length > 0) return false
    const versions = changed(state.versions, replaces, add)
    const { main, losers } = visibleOf(versions, current?.type === 'dir' ? current.children ?? 0 : 0)
    if (losers.length > 0) return false
    const delta = main === undefined ? (current === undefined ? 0 : -1) : (current === undefined ? 1 : 0)
    const dir = parentOf(path)
    let parent: Visible | undefined
    if (delta !== 0 && dir !== '/') {
      const record = this.peek<Visible>(visibleKey(dir))
      if (record === UNREAD) return false
      // what adjustChildren does when it does not refresh the directory
      if (record?.type === 'dir') {
        const children = (record.children ?? 0) + delta
        if (children <= 0 && record.implicit === true) return false
        parent = { ...record, children: Math.max(0, children) }
      } else if (delta > 0) {
        return false
      }
    }
    if (this.markDirty) this.txn.put(dirtyKey(path), 1)
    this.writeVisible(path, { versions, copies: state.copies }, current, main, NO_COPIES, NO_NAMES)
    if (parent !== undefined) this.txn.put(visibleKey(dir), parent)
    return true
  }

  /**
   * Load a path's versions wholesale (snapshot bootstrap). `known` is what
   * the caller knows of the path's rows without a read (a first load,
   * walking paths in tree order, knows there are none yet).
   */
  async load (path: string, versions: Version[], known?: KnownRows): Promise<void> {
    const state = known?.stored ?? await this.versions(path)
    if (this.markDirty) this.txn.put(dirtyKey(path), 1)
    await this.refresh(path, { versions, copies: state.copies }, undefined, known?.unseen === true)
  }

  /**
   * Recompute what is visible for `path` from its versions and its child
   * count, write the difference, and adjust the parent's child count.
   * `unseen`: the caller knows no visible name is stored at `path`.
   */
  private async refresh (path: string, state: PathState, childrenOverride?: number, unseen = false): Promise<void> {
    let current = unseen ? undefined : this.read<Visible>(visibleKey(path))
    if (current instanceof Promise) current = await current
    const children = childrenOverride ?? (current?.type === 'dir' ? current.children ?? 0 : 0)
    const { main, losers } = visibleOf(state.versions, children)
    // another path's conflict copy shown here gives way to what this path shows, and waits for the name
    if (current?.conflictOf !== undefined && main !== undefined) await this.wait(path, current.conflictOf)

    // conflict copies: never over a name that shows something else (a path's own versions, a directory, another path's copy)
    const copies = new Map<string, Visible>()
    const plain = losers.map(l => conflictPath(path, l))
    for (const [i, loser] of losers.entries()) {
      const clash = plain.some((p, j) => j !== i && p === plain[i])
      const copy = clash ? conflictPath(path, loser, true) : plain[i]
      if (copy === path || copies.has(copy)) continue
      const own = await this.txn.get<PathState>(versionsKey(copy))
      const shown = await this.txn.get<Visible>(visibleKey(copy))
      if ((own !== undefined && own.versions.length > 0) || (shown !== undefined && shown.conflictOf !== path)) {
        await this.wait(copy, path)
        continue
      }
      copies.set(copy, { ...fileRecord(loser), conflictOf: path, author: loser.author, time: loser.time })
    }
    // the names that show this path's copies now (a copy whose name another path's file took since is no longer one)
    const mine = new Set<string>()
    for (const name of new Set([...state.copies, ...copies.keys()])) {
      if ((await this.txn.get<Visible>(visibleKey(name)))?.conflictOf === path) mine.add(name)
    }

    const freed: string[] = []
    const delta = this.writeVisible(path, state, current, main, copies, mine, freed)
    if (delta !== 0) await this.adjustChildren(parentOf(path), delta)
    for (const name of freed) await this.wake(name)
  }

  /** `path`'s conflict copy waits for `name`, which shows something else now. */
  private async wait (name: string, path: string): Promise<void> {
    const waiting = await this.txn.get<string[]>(waitingKey(name)) ?? []
    if (!waiting.includes(path)) this.txn.put(waitingKey(name), [...waiting, path])
  }

  /** `name` shows nothing now: the paths whose copies waited for it show them (or wait again). */
  private async wake (name: string): Promise<void> {
    if (!mayBeConflictCopy(name)) return
    const waiting = await this.txn.get<string[]>(waitingKey(name))
    if (waiting === undefined) return
    this.txn.del(waitingKey(name))
    for (const path of waiting) await this.refresh(path, await this.versions(path))
  }

  /**
   * Write what is visible for `path` (`main`, and its conflict `copies`),
   * where `current` was, and the path's versions (`state`, whose copies
   * are those visible before; `mine`: the names among them and `copies`
   * that show this path's copies now); the change in the parent's child
   * count. The names it leaves showing nothing go into `freed`.
   */
  private writeVisible (path: string, state: PathState, current: Visible | undefined, main: Visible | undefined, copies: ReadonlyMap<string, Visible>, mine: ReadonlySet<string>, freed?: string[]): number {
    let delta = 0
    if (main !== undefined) {
      if (current === undefined) delta++
      this.txn.put(visibleKey(path), main)
      if (main.pin?.manifest !== undefined) this.onPinned?.(main.pin.manifest)
    } else if (current !== undefined && current.conflictOf === undefined) {
      // (another path's copy shown here stays)
      delta--
      this.txn.del(visibleKey(path))
      freed?.push(path)
    }
    for (const old of state.copies) {
      // a name that shows another path's file or copy by now is not this path's to drop
      if (!copies.has(old) && mine.has(old)) { this.txn.del(visibleKey(old)); delta--; freed?.push(old) }
    }
    for (const [copy, record] of copies) {
      if (!mine.has(copy)) delta++
      this.txn.put(visibleKey(copy), record)
      this.onCopy?.(copy)
      if (record.pin?.manifest !== undefined) this.onPinned?.(record.pin.manifest)
    }
    const next: PathState = { versions: state.versions, copies: copies.size === 0 ? [] : [...copies.keys()] }
    if (next.versions.length === 0 && next.copies.length === 0) this.txn.del(versionsKey(path))
    else this.txn.put(versionsKey(path), next)
    if (next.copies.length > 0) this.txn.put(conflictKey(path), 1)
    else if (state.copies.length > 0) this.txn.del(conflictKey(path))
    return delta
  }

  /** A directory gained or lost visible names. */
  private async adjustChildren (dir: string, delta: number): Promise<void> {
    if (dir === '/') return
    let record = this.read<Visible>(visibleKey(dir))
    if (record instanceof Promise) record = await record
    if (record?.type === 'dir') {
      const children = (record.children ?? 0) + delta
      if (children > 0 || !(record.implicit === true)) {
        this.txn.put(visibleKey(dir), { ...record, children: Math.max(0, children) })
        return
      }
      // an implicit directory that became empty disappears
      await this.refresh(dir, await this.versions(dir), 0)
      return
    }
    if (delta <= 0) return
    // missing, or a file that now has something below it: it becomes a directory
    await this.refresh(dir, await this.versions(dir), delta)
  }
}
