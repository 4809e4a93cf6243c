/**
 * The file system a mount shows: the namespace, overlaid with the files
 * being written on this node (staged on local disk until their commit
 * lands). Path in, values or typed errors out — nothing here knows FUSE;
 * `ops.ts` adapts it to the binding.
 *
 * Semantics (docs/fuse.md): a file written through the mount is committed
 * as one namespace write when its last writer closes it (in the background,
 * bounded) or on fsync (which waits). Until its commit lands, this node
 * serves the path from the staged file, so close-to-open holds on this node.
 *
 * @module
 */
import { mkdir, rm, statfs as statfsCall } from 'node:fs/promises'
import { dirname } from 'node:path'
import { AlreadyExistsError, DirectoryNotEmptyError, IsADirectoryError, NotADirectoryError, NotFoundError, InvalidArgumentError } from '../errors.js'
import { baseName, isWithin, parentOf, rewriteFile } from '../namespace/index.js'
import type { Entry, Namespace, VectorClock } from '../namespace/index.js'
import type { FileInfo, Files } from '../files/index.js'
import type { ChunkerSpec } from '../content/index.js'
import type { Logger } from '../logger.js'
import { AttrCache, type Attr } from './attrs.js'
import { CommitQueue } from './commits.js'
import { ERRNO } from './errno.js'
import { CommitCancelledError, ErrnoError } from './errors.js'
import { KeyedLock } from './locks.js'
import { HandleReader } from './reader.js'
import { DEFAULT_READ_BUDGET_BYTES, ReadBudget } from './read-budget.js'
import { RecordPlaces, type RecordPlace } from './record-places.js'
import { isAppendOf, type FileEntry } from './appended.js'
import type { BlockStore } from '../blocks/index.js'
import type { CachedContent, ContentCache } from './cache.js'
import type { StagedFile, StagingArea } from './staging.js'
import type { ClosedJournal } from './journal.js'
import { giveKeptAttrs, keptFolder, keptHint, keptPathIn } from '../repo/uncommitted.js'

export type { Attr } from './attrs.js'

const O_ACCMODE = 0o3
const O_RDONLY = 0o0
const O_TRUNC = 0o1000
const O_APPEND = 0o2000
/** uid/gid `-1` (as the binding passes it): leave unchanged. */
const UNCHANGED_ID = 0xffffffff
/**
 * The binding turns `UTIME_NOW` / `UTIME_OMIT` (tv_sec 0, tv_nsec ≈ 2^30)
 * into ~1,073 ms: any time this close to the epoch means "now".
 */
const TIME_NOW_BELOW = 10_000
/**
 * Files made through the mount whose start ({@link ShoalFilesystem}'s
 * `madeSeeing`) is kept for a save by rename: the newest this many. One made
 * earlier and renamed over a file replaces what the target shows then.
 */
const MADE_KEPT = 4096

/** What a {@link ShoalFilesystem} is built from. */
export interface FilesystemComponents {
  files: Pick<Files, 'add' | 'addMany' | 'catEntry' | 'layoutOf'>
  namespace: Pick<Namespace, 'lookup' | 'stat' | 'list' | 'mkdir' | 'move' | 'remove' | 'putFile' | 'setDirAttrs' | 'seen' | 'arrivedSince'>
  chunker: ChunkerSpec
  logger: Logger
  /** The block store, when its reads can be placed for the binding's threads (record-places.ts). */
  blockstore?: Pick<BlockStore, 'locate' | 'holdPack'>
}

/** Options of {@link ShoalFilesystem}. */
export interface FilesystemOptions {
  staging: StagingArea
  /** Keeps committed files' bytes for reads (docs/fuse.md, "Caching"); none: every read goes to the block store. */
  cache?: ContentCache
  /** How long (ms) looked-up attributes are reused before asking the namespace again. @default 1000 */
  attrCacheMs?: number
  /** Commits running at once. @default 2 */
  commitConcurrency?: number
  /** Commits waiting or running before `close(2)` waits for room. @default 256 */
  maxPendingCommits?: number
  /** Owner every file is shown with. @default this process's uid */
  uid?: number
  /** Group every file is shown with. @default this process's gid */
  gid?: number
  /** Where `statfs` reports free space from. @default the staging folder */
  statfsPath?: string
  /** Bytes that disk keeps free (`storage.reserve`: staged files stop there), not shown as free by `statfs`. @default 0 */
  statfsReserve?: number
  /**
   * Where files whose commit fails as the mount goes are kept (a folder per
   * time it happens, each file at its path in the namespace); none: they
   * are lost, with a line in the log.
   */
  uncommittedDir?: string
  /**
   * Where `close` acknowledgments are noted until their commit lands, for a
   * start after a crash to commit (journal.ts); none: a crash loses files
   * closed and not yet committed.
   */
  journal?: ClosedJournal
  /** Bytes the read handles keep behind their streams, all together, beyond those with a request in flight (read-budget.ts). @default {@link DEFAULT_READ_BUDGET_BYTES} */
  readBudgetBytes?: number
}

/**
 * Identities of staged files, for the journal of closed files: counted from
 * the start time in µs, so that no two lives of the daemon share one (a start
 * rescues and deletes the journal a crash left before one is written; this
 * holds even if it did not).
 */
let stagedIds = Date.now() * 1000

/** A file being written (or written and not yet committed) on this node. */
class Staged {
  /** Its identity in the journal of closed files (a rename keeps it). */
  readonly id = ++stagedIds
  /** Open handles of any kind. */
  handles = 0
  /** Open handles that may write. */
  writers = 0
  /** Bumped by every change; the file is dirty while it differs from {@link committedGen}. */
  gen = 0
  committedGen = 0
  /** Content CID of the version committed at {@link committedGen}. */
  committedCid?: string
  /**
   * Set by a rename of this file, not yet committed under its old name,
   * over a file: the version at its new path that its next commit replaces.
   * That version stays in the namespace until then, so no node sees the
   * path empty meanwhile; one written there meanwhile by another node is
   * kept beside this file, a conflict. Cleared once a commit lands.
   */
  replaces?: string
  /**
   * Set instead of {@link replaces} when the version at the new path arrived
   * from another node after this file was made here: that version is kept
   * beside this file's commit, a conflict (and stays where it is should this
   * file be renamed on before it). Cleared once a commit lands.
   */
  keptBeside?: string
  committing?: Promise<void>
  /** Stops the commit that runs, if any (the file was removed: that version need not land). */
  cancel?: AbortController
  /**
   * Renames under way that change this file's path: no commit of it starts
   * while any is held (a commit that began mid-rename would write the file
   * under its old name after the rename decided what that name holds).
   */
  readonly holds = new Set<Promise<void>>()
  queued = false
  unlinked = false
  /**
   * A writer still held it open when its mount went (a forced unmount, a
   * daemon that stops): what it had written so far may be a file cut off in
   * the middle. Its commit is then kept beside the version it started from,
   * a conflict, instead of replacing it (see {@link startedFrom}).
   */
  cut = false
  /**
   * Bytes at the start of the staged file that are still those of
   * {@link base}: a read handle of that version may read on in this file
   * when it reaches its end ({@link ShoalFilesystem.followed}: an append
   * made here by a writer that holds the file open).
   */
  intact = 0
  /** Bytes of {@link base} (0 for a new file). */
  baseSize = 0

  constructor (
    public path: string,
    readonly file: StagedFile,
    public mode: number,
    public mtime: number,
    /** CID of the version it was copied from (none for a new file). */
    readonly base?: string
  ) {}

  get dirty (): boolean { return this.gen !== this.committedGen }

  /** Bytes from `offset` on are about to change (a write there, a cut): no longer {@link intact}. */
  changesFrom (offset: number): void {
    if (offset < this.intact) this.intact = offset
  }

  touch (now = Date.now()): void {
    this.gen++
    this.mtime = now
  }

  attr (): Attr {
    return { type: 'file', size: this.file.size, mode: this.mode, mtime: this.mtime }
  }
}

/**
 * An open file. A read handle notes the path it was opened at (moved by a
 * rename here) and the attributes of the version it reads; a staged one has
 * both in its staged file.
 */
type Handle =
  /**
   * `append`: opened with O_APPEND, every write goes to the end of the staged file ({@link ShoalFilesystem.write}).
   * `places`: those of the committed version a read handle followed into the staged file from, held until its release.
   * `reading`: reads under way through a read-only one (it moves onto the committed version only between reads).
   */
  | { kind: 'staged', staged: Staged, writable: boolean, append?: boolean, places?: RecordPlaces, reading?: number }
  | ReadingHandle

/**
 * A handle reading a committed version (`entry`): through a stream of the
 * block store (`read`), or from the mount's copy of a file written here
 * (`cached`). `places` answers a `read` handle's requests with the places of
 * their bytes; a `cached` one only holds them, carried over from the
 * version it followed ({@link ShoalFilesystem.followed}), until its release.
 */
type ReadingHandle =
  | { kind: 'read', reader: HandleReader } & Reading
  | { kind: 'cached', content: CachedContent } & Reading

/** What both kinds of reading handle hold. */
interface Reading {
  path: string
  entry: FileEntry
  attr: Attr
  places?: RecordPlaces
  /** Reads under way through this handle object (it is closed once none is, after another took its place). */
  reading: number
  /** Another handle object reads on for it: close this one once {@link reading} is 0. */
  superseded?: true
  /** A look for a longer version of the path that begins with this one's bytes, under way. */
  following?: Promise<void>
  /** The path's attributes when a look ended without moving on: not looked at again while it shows them, until `until` (ms). */
  stay?: { size: number, mtime: number, until: number }
}

/** How long a check of whether a file grew may take (ms): reading its last leaves from peers, at worst. */
const FOLLOW_CHECK_MS = 15_000

/** How long after a check that failed (a leaf no peer could give) a handle looks again (ms). */
const FOLLOW_RETRY_MS = 5_000

/** The path a handle is open at now, and the attributes of what it reads. */
function handleState (h: Handle): { path: string, attr: Attr } {
  return h.kind === 'staged' ? { path: h.staged.path, attr: h.staged.attr() } : { path: h.path, attr: h.attr }
}

/**
 * True when a read of `h` up to `end` reaches past the end of what it reads:
 * where it may move on ({@link ShoalFilesystem.followed}). Reads within a
 * file never wait for that look (a FUSE read's every request passes here).
 */
function reachesPastEnd (h: Handle, end: number): boolean {
  return h.kind === 'staged' ? !h.writable && end > h.staged.file.size : end > h.attr.size
}

/** Stop a read handle: its stream, the packs its places hold, or its kept copy. */
async function closeReading (h: ReadingHandle): Promise<void> {
  h.places?.close()
  if (h.kind === 'cached') await h.content.close()
  else h.reader.close()
}

/** The namespace as a file system, with this node's writes in progress on top. */
export class ShoalFilesystem {
  private readonly staged = new Map<string, Staged>()
  /** When this file system was made (ms): the time its root shows. */
  private readonly startedAt = Date.now()
  /**
   * Per path of a file made through this mount (moved by its renames, the
   * newest {@link MADE_KEPT}): what the namespace had applied when it was
   * made. A rename of it over a file keeps a version of the target that
   * arrived from another node since — one its writer never saw — beside it,
   * a conflict, instead of replacing it (a save by rename: write `f.tmp`,
   * `fsync`, `mv f.tmp f`, as vim, rsync and git do).
   */
  private readonly madeSeeing = new Map<string, Readonly<VectorClock>>()
  private readonly handles = new Map<number, Handle>()
  /** What the read handles keep, bounded for all of them together (every mount of the daemon). */
  readonly readBudget: ReadBudget
  private nextHandle = 1
  private readonly locks = new KeyedLock()
  private readonly attrs: AttrCache
  private readonly queue: CommitQueue<Staged>
  private readonly log: Logger
  readonly uid: number
  readonly gid: number

  constructor (private readonly components: FilesystemComponents, private readonly options: FilesystemOptions) {
    this.attrs = new AttrCache(options.attrCacheMs ?? 1000)
    this.readBudget = new ReadBudget(options.readBudgetBytes ?? DEFAULT_READ_BUDGET_BYTES)
    this.queue = new CommitQueue<Staged>(async list => await this.commitBatch(list), { concurrency: options.commitConcurrency, maxPending: options.maxPendingCommits })
    this.log = components.logger
    this.uid = options.uid ?? process.getuid?.() ?? 0
    this.gid = options.gid ?? process.getgid?.() ?? 0
  }

  /** Forget cached attributes (another node changed the namespace). */
  invalidate (): void {
    this.attrs.clear()
  }

  // ------------------------------------------------------------ reads

  /** Attributes of a path. @throws {NotFoundError} */
  async getattr (path: string): Promise<Attr> {
    const attr = await this.findAttr(path)
    if (attr === undefined) throw new NotFoundError(`no such file or directory: ${path}`)
    return attr
  }

  /**
   * Attributes asked through an open handle (`fstat`, and the kernel's
   * size checks before a read): the path's, or — when the path is gone,
   * removed or renamed on another node — those of the version the handle
   * opened and goes on reading. Without them a read of a file another node
   * removed failed with ENOENT (a removal on this node keeps the name
   * through the kernel's hidden file, so only remote ones did).
   *
   * @throws {NotFoundError} when neither the path nor the handle is there
   */
  async fgetattr (path: string, fh: number): Promise<Attr> {
    const attr = await this.findAttr(path)
    if (attr !== undefined) return attr
    const h = this.handles.get(fh)
    if (h === undefined) throw new NotFoundError(`no such file or directory: ${path}`)
    return handleState(h).attr
  }

  /**
   * Attributes of a file the kernel holds, asked by its inode rather than
   * by a name: `fstat` (which comes without the handle), or a `stat` of a
   * name the kernel still has cached. The path's, or, when the path is gone
   * (removed or renamed away on another node), those of the newest handle
   * open at it — among `among` when given (the handles opened through one
   * mount). A lookup of the name must not use this: the path is gone, and
   * `stat PATH` answers ENOENT.
   *
   * @returns undefined when neither the path nor a handle open at it is there
   */
  async heldAttr (path: string, among?: ReadonlySet<number>): Promise<Attr | undefined> {
    const attr = await this.findAttr(path)
    if (attr !== undefined) return attr
    let newest: Attr | undefined
    // in the order they were opened: the last one found is the newest
    for (const [fh, h] of this.handles) {
      if (among !== undefined && !among.has(fh)) continue
      const state = handleState(h)
      if (state.path === path) newest = state.attr
    }
    return newest
  }

  /**
   * Attributes of a path, undefined when there is none: the kernel looks
   * every new name up before creating it, and a miss answered without an
   * error object costs nothing.
   */
  async findAttr (path: string): Promise<Attr | undefined> {
    const s = this.staged.get(path)
    if (s !== undefined) return s.attr()
    const cached = this.attrs.get(path)
    if (cached === null) return undefined
    if (cached !== undefined) return cached
    const entry = await this.components.namespace.lookup(path)
    if (entry === undefined) {
      // the kernel looks a name up before creating it: the create asks again
      this.attrs.set(path, null)
      return undefined
    }
    // the root has no version of its own (the namespace dates it 0, 1970): shown as made when the mount began
    return this.attrs.set(path, path === '/' ? { ...attrOf(entry), mtime: this.startedAt } : attrOf(entry))
  }

  /** Names in a directory (with `.` and `..`). @throws {NotFoundError} {NotADirectoryError} */
  async readdir (path: string): Promise<string[]> {
    if (this.staged.has(path)) throw new NotADirectoryError(`not a directory: ${path}`)
    // the staged names first: a file whose commit ends while the namespace is listed leaves the overlay then, and a
    // list begun before that commit does not hold it yet (a directory being filled listed fewer names than it held)
    const staged: string[] = []
    for (const s of this.staged.values()) if (parentOf(s.path) === path && s.path !== '/') staged.push(baseName(s.path))
    const entries = await this.components.namespace.list(path)
    const names = ['.', '..']
    const seen = new Set<string>()
    for (const entry of entries) {
      names.push(entry.name)
      seen.add(entry.name)
      // `ls -l` stats every name next: answer those from memory
      this.attrs.set(entry.path, attrOf(entry))
    }
    for (const name of staged) if (!seen.has(name)) names.push(name)
    return names
  }

  /** Free space where staged writes go, but the reserve they may not take ({@link FilesystemOptions.statfsReserve}). */
  async statfs (): Promise<{ bsize: number, blocks: number, bfree: number, bavail: number, files: number, ffree: number }> {
    const s = await statfsCall(this.options.statfsPath ?? this.options.staging.dir).catch(async () => await statfsCall('/'))
    // `df` of the mount shows what a write may take: a write into the reserve fails with ENOSPC (staging.ts)
    const kept = Math.ceil((this.options.statfsReserve ?? 0) / s.bsize)
    return { bsize: s.bsize, blocks: s.blocks, bfree: Math.max(0, s.bfree - kept), bavail: Math.max(0, s.bavail - kept), files: s.files, ffree: s.ffree }
  }

  // ----------------------------------------------------------- handles

  /** Open a file; returns its handle number. @throws {NotFoundError} {IsADirectoryError} */
  async open (path: string, flags: number): Promise<number> {
    const truncate = (flags & O_TRUNC) !== 0
    if ((flags & O_ACCMODE) === O_RDONLY && !truncate) {
      const s = this.staged.get(path)
      if (s !== undefined) {
        s.handles++
        return this.addHandle({ kind: 'staged', staged: s, writable: false })
      }
      const entry = await this.components.namespace.stat(path)
      if (entry.type !== 'file') throw new IsADirectoryError(`is a directory: ${path}`)
      return this.addHandle(this.readingHandle(path, entry, await this.options.cache?.open(entry.cid)))
    }
    return await this.locks.run([path], async () => {
      const s = await this.stageForWrite(path, truncate)
      return this.addHandle({ kind: 'staged', staged: s, writable: true, append: (flags & O_APPEND) !== 0 })
    })
  }

  /** Create (or, if it exists, open for writing) a file; returns its handle number. */
  async create (path: string, mode: number): Promise<number> {
    return await this.locks.run([path], async () => {
      await this.checkParent(path)
      if (this.staged.has(path) || (this.attrs.get(path) !== null && await this.components.namespace.lookup(path) !== undefined)) {
        // O_CREAT on a name that exists (the kernel's lookup raced a write): open it, keep its bytes
        const s = await this.stageForWrite(path, false)
        return this.addHandle({ kind: 'staged', staged: s, writable: true })
      }
      const s = new Staged(path, await this.options.staging.create(), mode & 0o7777, Date.now())
      this.made(path, this.components.namespace.seen())
      s.touch()
      s.handles++
      s.writers++
      this.staged.set(path, s)
      this.attrs.delete(path)
      return this.addHandle({ kind: 'staged', staged: s, writable: true })
    })
  }

  /**
   * What handle `fh` reads, and what the other handles open at its path
   * read (among `among`: the handles opened through one mount): a
   * committed version's content CID, or undefined for a file staged here.
   * The kernel keeps one set of pages per file, shared by all its handles
   * (ops.ts, `pagesOf`). Undefined when `fh` is not open.
   */
  versionsAt (fh: number, among?: ReadonlySet<number>): { path: string, cid?: string, others: Array<string | undefined> } | undefined {
    const h = this.handles.get(fh)
    if (h === undefined) return undefined
    const path = handleState(h).path
    const others: Array<string | undefined> = []
    for (const [other, o] of this.handles) {
      if (other === fh || (among !== undefined && !among.has(other)) || handleState(o).path !== path) continue
      others.push(o.kind === 'staged' ? undefined : o.entry.cid)
    }
    return { path, cid: h.kind === 'staged' ? undefined : h.entry.cid, others }
  }

  /** Read up to `length` bytes at `offset` into `buf`. */
  async read (fh: number, buf: Buffer, length: number, offset: number): Promise<number> {
    const first = this.handle(fh)
    if (reachesPastEnd(first, offset + length)) await this.followed(fh, first)
    // taken in the same turn as the count below: a handle that moves on is closed only once no read holds it
    const h = this.handle(fh)
    if (h.kind === 'staged') {
      h.reading = (h.reading ?? 0) + 1
      try {
        return await h.staged.file.read(buf, length, offset)
      } finally {
        h.reading--
      }
    }
    h.reading++
    try {
      if (h.kind === 'cached') return await h.content.read(buf, length, offset)
      return await h.reader.read(buf, length, offset)
    } finally {
      if (--h.reading === 0 && h.superseded === true) await closeReading(h).catch(() => {})
    }
  }

  /**
   * Move handle `fh` on to a longer version of its path when a read reaches
   * past the end of the version it reads and the longer one begins with
   * every byte of it (an append, here or on another node: appended.ts). So a
   * program that reads a file as it grows (`tail -f` of a log written on
   * another node) reads the appended bytes, while a handle whose file was
   * replaced by other bytes goes on reading the version it opened
   * (docs/fuse.md, "Open files keep their version"). The kernel asks past
   * the end at every end of file; the path is looked at only when it shows
   * more bytes than the handle's version has (the size the kernel was given,
   * and asks up to), and not again while it shows the attributes a look
   * ended on without moving (a check that failed is tried again after
   * {@link FOLLOW_RETRY_MS}). `h` is the handle `fh` is, whose read reaches
   * past its end ({@link reachesPastEnd}, checked by the caller in this turn).
   * A read-only handle on a staged file moves onto its committed version
   * instead, when it can ({@link moveReadersOff}).
   */
  private async followed (fh: number, h: Handle): Promise<void> {
    if (h.kind === 'staged') {
      await this.moveReadersOff(h.staged)
      // moved off: the staged copy goes if nothing else holds it
      this.letGo(h.staged)
      return
    }
    const attr = await this.findAttr(h.path).catch(() => undefined)
    // moved on (or released) meanwhile
    if (this.handles.get(fh) !== h) return
    if (attr?.type !== 'file' || attr.size <= h.attr.size) return
    const stay = h.stay
    if (stay !== undefined && stay.size === attr.size && stay.mtime === attr.mtime && Date.now() < stay.until) return
    if (h.following === undefined) {
      h.following = (async () => {
        try {
          const compared = await this.follow(fh, h)
          // kept only for the version compared: attributes of a staged file here, or ones the cache kept of an
          // earlier version, may be those of a version still to come
          if (compared !== undefined && compared.size === attr.size && compared.mtime === attr.mtime) h.stay = { size: attr.size, mtime: attr.mtime, until: Infinity }
        } catch (err: any) {
          h.stay = { size: attr.size, mtime: attr.mtime, until: Date.now() + FOLLOW_RETRY_MS }
          this.log.debug({ path: h.path, err: err?.message }, 'fuse: a read handle could not tell whether its file grew; it reads the version it opened')
        }
      })().finally(() => { h.following = undefined })
    }
    await h.following
  }

  /**
   * {@link followed}'s look: when the path's version is an append of `h`'s,
   * a handle on it takes `h`'s place as `fh`. Returns the version found not
   * to be an append; undefined when the handle moved on (or went), or when
   * the path holds no file now.
   */
  private async follow (fh: number, h: ReadingHandle): Promise<FileEntry | undefined> {
    const { files, namespace } = this.components
    // a writer here holds the file open: its staged copy of this version, grown, and unchanged up to this version's end
    const s = this.staged.get(h.path)
    if (s !== undefined && !s.unlinked && s.base === h.entry.cid && s.intact >= h.entry.size && s.file.size > h.entry.size) {
      s.handles++
      this.supersede(fh, h, { kind: 'staged', staged: s, writable: false, places: h.places, reading: 0 })
      return undefined
    }
    const entry = await namespace.lookup(h.path)
    if (entry?.type !== 'file') return undefined
    if (!await isAppendOf({ files }, h.entry, entry, { signal: AbortSignal.timeout(FOLLOW_CHECK_MS) })) return entry
    const cached = await this.options.cache?.open(entry.cid)
    if (this.handles.get(fh) !== h) {
      // released meanwhile, or the mount went
      await cached?.close()
      return undefined
    }
    this.supersede(fh, h, this.readingHandle(h.path, entry, cached, h.places))
    return undefined
  }

  /**
   * Read-only handles on staged file `s` whose version is committed, with no
   * writer left and nothing written since: moved onto that committed
   * version (the same bytes), so that the staged copy can go. Otherwise a
   * reader that keeps the file open (`tail -f`) kept this node's staged copy
   * for as long as it ran: every open and `stat` here showed that copy
   * rather than the versions other nodes wrote meanwhile, and the next write
   * here started from it. On the committed version a handle follows the
   * namespace again. Asked once a commit of `s` lands ({@link settle}) and
   * when a read of such a handle reaches past the staged file's end; a
   * handle with a read under way is left for the next time.
   */
  private async moveReadersOff (s: Staged): Promise<void> {
    const settledHere = (): boolean => s.handles > 0 && !s.dirty && s.writers === 0 && s.committing === undefined && !s.queued && !s.unlinked && s.committedCid !== undefined
    if (!settledHere()) return
    const entry = await this.components.namespace.lookup(s.path)
    if (entry?.type !== 'file' || entry.cid !== s.committedCid || !settledHere()) return
    for (const [fh, h] of this.handles) {
      if (h.kind !== 'staged' || h.staged !== s || h.writable || (h.reading ?? 0) > 0) continue
      this.handles.set(fh, this.readingHandle(s.path, entry, undefined, h.places))
      s.handles--
    }
  }

  /**
   * `next` reads on for `h` as handle `fh`; `h` is closed once no read uses
   * it. Its places (and the packs they hold) went on with `next`: the binding
   * may still serve those it kept of the old version.
   */
  private supersede (fh: number, h: ReadingHandle, next: Handle): void {
    h.places = undefined
    this.handles.set(fh, next)
    h.superseded = true
    if (h.reading === 0) void closeReading(h).catch(() => {})
  }

  /** A handle reading `entry` at `path`: from `cached` when the mount keeps its bytes, else through the block store. */
  private readingHandle (path: string, entry: FileEntry, cached: CachedContent | undefined, places?: RecordPlaces): ReadingHandle {
    const reading = { path, entry, attr: attrOf(entry), reading: 0 }
    if (places !== undefined) places.follow(async () => await this.components.files.layoutOf(entry))
    if (cached !== undefined) return { kind: 'cached', content: cached, places, ...reading }
    const reader = new HandleReader(entry.size, (offset, signal) => this.components.files.catEntry(entry, { offset, signal }), { budget: this.readBudget })
    return { kind: 'read', reader, places: places ?? this.placesOf(entry), ...reading }
  }

  /**
   * The places of `[offset, offset + length)` in this node's pack records,
   * for the binding to read and check (record-places.ts): a read handle of a
   * committed file whose leaves there are all records here; undefined
   * otherwise (then {@link read} reads them, and reports what goes wrong).
   */
  async places (fh: number, length: number, offset: number): Promise<RecordPlace[] | undefined> {
    const first = this.handle(fh)
    if (reachesPastEnd(first, offset + length)) await this.followed(fh, first)
    const h = this.handle(fh)
    if (h.kind !== 'read' || h.places === undefined) return undefined
    const places = await h.places.places(offset, length).catch(() => undefined)
    if (places !== undefined) this.placedReads++
    return places
  }

  /** Reads of committed files answered with record places (see {@link places}). */
  placedReads = 0
  /** Placed reads the binding asked again because a record failed its check there (or could not be read). */
  retriedReads = 0

  /**
   * Write `length` bytes of `buf` at `offset`; through a handle opened with
   * O_APPEND, at the end of the file whatever `offset` says. The kernel
   * places an appending write at the size it last saw of the file: after a
   * version written elsewhere reached this node within its attribute
   * timeout, that is the old version's size, and the write landed in the
   * middle of the new version, over its bytes.
   *
   * @throws {ErrnoError} EBADF on a read-only handle
   */
  async write (fh: number, buf: Buffer, length: number, offset: number): Promise<number> {
    const h = this.writableHandle(fh)
    const s = h.staged
    const at = h.append === true ? s.file.size : offset
    await this.keepAcknowledged(s, at)
    s.changesFrom(at)
    const n = await s.file.write(buf, length, at)
    s.touch()
    return n
  }

  /** Cut or extend an open file. */
  async ftruncate (fh: number, size: number): Promise<void> {
    const s = this.writable(fh)
    await this.keepAcknowledged(s, size)
    s.changesFrom(size)
    await s.file.truncate(size)
    s.touch()
  }

  /** Commit a file now (or the staged file at `path` without a handle) and wait for it. */
  async fsync (fh: number | undefined, path: string): Promise<void> {
    const h = fh === undefined ? undefined : this.handles.get(fh)
    const s = h?.kind === 'staged' ? h.staged : this.staged.get(path)
    if (s === undefined || s.unlinked) return
    await this.commit(s)
  }

  /**
   * A `close(2)` of a handle (the kernel waits for it; `release` comes
   * later, on its own). A writer waits here while the commit queue is full:
   * this is where writers feel backpressure.
   */
  async flush (fh: number): Promise<void> {
    const h = this.handles.get(fh)
    if (h?.kind !== 'staged' || !h.writable) return
    await this.queue.room()
    await this.acknowledged(h.staged)
  }

  /**
   * What a `close(2)` (or a `chmod`, `utime`, `truncate` of a file nobody
   * writes) acknowledges of a staged file: noted in the journal of closed
   * files until its commit lands, so that a crash before that does not lose
   * it (journal.ts).
   */
  private async acknowledged (s: Staged): Promise<void> {
    const journal = this.options.journal
    // noted already at this generation: a second close of the same bytes (a dup, a child's copy of the descriptor)
    if (journal === undefined || !s.dirty || s.unlinked || journal.noted(s.id, s.gen)) return
    // a small file's bytes may go into the disk's reserve, as an unmount's keeping of it does (docs/decisions.md):
    // a full disk is when commits fail and files wait, what the journal is for
    const where = s.file.whereNow()
    if (where === undefined) return
    journal.closed({ id: s.id, gen: s.gen, path: s.path, mode: s.mode, mtime: s.mtime, replacing: startedFrom(s), size: s.file.size }, where)
  }

  /**
   * Before bytes from `from` on of `s` change: when a waiting journal record
   * names them in a staging file on disk (acknowledged by a close, not yet
   * committed), that version is committed first, so that a crash meanwhile
   * never rescues a mix of it and the new writes (an `O_TRUNC` open of a file
   * just copied, an editor's save). Appends past it change nothing of it, nor
   * does anything when the record holds the bytes (a file in memory then). A
   * commit that fails (no room) lets the change go on, and the record is
   * forgotten: the file's next close notes it again.
   */
  private async keepAcknowledged (s: Staged, from: number): Promise<void> {
    const journal = this.options.journal
    const acknowledged = journal?.stagedLength(s.id)
    if (journal === undefined || acknowledged === undefined || from >= acknowledged) return
    try {
      await this.commit(s)
    } catch (err: any) {
      journal.forget(s.id)
      if (!(err instanceof CommitCancelledError)) this.log.warn({ path: s.path, err: err?.message }, 'fuse: a closed file rewritten before its commit could not be committed first: a crash before its next close would lose it')
    }
  }

  /**
   * Drop a handle. The last writer's release queues the file's commit; a read
   * handle stops its stream. `cut`: the handle's mount went while it was
   * open (its owner never closed it): a writable one's file is committed
   * beside the version it started from ({@link Staged.cut}).
   */
  async release (fh: number, options: { cut?: boolean } = {}): Promise<void> {
    const h = this.handles.get(fh)
    if (h === undefined) return
    this.handles.delete(fh)
    if (h.kind !== 'staged') { await closeReading(h); return }
    h.places?.close()
    const s = h.staged
    s.handles--
    if (h.writable) {
      s.writers--
      if (options.cut === true) this.cutOff(s)
    }
    await this.settle(s)
  }

  /**
   * A writer of `s` was cut off by its mount's going: kept beside what it
   * started from, said once in the log. Not a writer that only appended to
   * the version it was copied from (a log): replacing that version loses
   * none of its bytes.
   */
  private cutOff (s: Staged): void {
    if (s.cut || !s.dirty) return
    const from = startedFrom(s)
    if (from !== null && from === s.base && s.intact >= s.baseSize) return
    s.cut = true
    if (from !== null) this.log.warn({ path: s.path, replaced: from }, 'fuse: a file still open for writing when its mount went is committed beside the version it started from, a conflict: its writer may have been cut off in the middle')
  }

  // ----------------------------------------------------------- changes

  /** Set a file's length. */
  async truncate (path: string, size: number): Promise<void> {
    await this.locks.run([path], async () => {
      let s = this.staged.get(path)
      if (s === undefined) {
        const entry = await this.components.namespace.stat(path)
        if (entry.type !== 'file') throw new IsADirectoryError(`is a directory: ${path}`)
        s = await this.stageFrom(entry, size)
        this.staged.set(path, s)
      }
      // held while we work on it: a commit finishing meanwhile must not let it go
      s.handles++
      try {
        // a commit streams the staged file: cutting it under the commit would tear that version
        if (s.writers === 0) await this.quiet(s)
        await this.keepAcknowledged(s, size)
        s.changesFrom(size)
        await s.file.truncate(size)
        s.touch()
        if (s.writers === 0) await this.acknowledged(s)
      } finally {
        s.handles--
      }
      await this.settle(s)
    })
  }

  /** Create a directory. */
  async mkdir (path: string, mode: number): Promise<void> {
    await this.locks.run([path], async () => {
      if (this.staged.has(path)) throw new AlreadyExistsError(`already exists: ${path}`)
      if (this.staged.has(parentOf(path))) throw new NotADirectoryError(`not a directory: ${parentOf(path)}`)
      await this.components.namespace.mkdir(path, { mode: mode & 0o7777 })
      this.attrs.delete(path)
    })
  }

  /** Remove an empty directory. */
  async rmdir (path: string): Promise<void> {
    if (path === '/') throw new ErrnoError(ERRNO.EBUSY, 'cannot remove the root of the mount')
    await this.locks.run([path], async () => {
      if (this.staged.has(path)) throw new NotADirectoryError(`not a directory: ${path}`)
      const entry = await this.components.namespace.stat(path)
      if (entry.type !== 'dir') throw new NotADirectoryError(`not a directory: ${path}`)
      if (this.stagedBelow(path).length > 0) throw new DirectoryNotEmptyError(`directory not empty: ${path}`)
      await this.components.namespace.remove(path)
      this.attrs.delete(path)
    })
  }

  /** Remove a file. */
  async unlink (path: string): Promise<void> {
    await this.locks.run([path], async () => {
      const s = this.staged.get(path)
      if (s !== undefined) await this.drop(s)
      const entry = await this.components.namespace.lookup(path)
      this.attrs.delete(path)
      if (entry?.type === 'dir') throw new IsADirectoryError(`is a directory: ${path}`)
      if (entry === undefined && s === undefined) throw new NotFoundError(`no such file or directory: ${path}`)
      // a file made at this path again later is another save
      this.madeSeeing.delete(path)
      if (entry !== undefined) await this.components.namespace.remove(path)
    })
  }

  /** The note of the file at `from` moves to `to` with it; one at `to` was of the file it replaced. */
  private moveNote (from: string, to: string): void {
    const seen = this.madeSeeing.get(from)
    this.madeSeeing.delete(to)
    if (seen === undefined) return
    this.madeSeeing.delete(from)
    this.made(to, seen)
  }

  /** The notes of files made below directory `from` (renamed to `to`) move with them; those below `to` were of files gone. */
  private moveNotesBelow (from: string, to: string): void {
    for (const [path, seen] of [...this.madeSeeing]) {
      if (isWithin(path, to)) this.madeSeeing.delete(path)
      else if (isWithin(path, from)) {
        this.madeSeeing.delete(path)
        this.madeSeeing.set(to + path.slice(from.length), seen)
      }
    }
  }

  /** Note that the file at `path` was made when the namespace had applied `seen` ({@link madeSeeing}). */
  private made (path: string, seen: Readonly<VectorClock>): void {
    this.madeSeeing.delete(path)
    this.madeSeeing.set(path, seen)
    if (this.madeSeeing.size > MADE_KEPT) this.madeSeeing.delete(this.madeSeeing.keys().next().value as string)
  }

  /**
   * Whether the file at `to` holds a version that arrived from another node
   * after the file at `from` was made here: what a save by rename of `from`
   * must not replace ({@link madeSeeing}).
   */
  private async unseenBy (from: string, to: string): Promise<boolean> {
    const seen = this.madeSeeing.get(from)
    return seen !== undefined && await this.components.namespace.arrivedSince(to, seen)
  }

  /**
   * Rename, replacing a file or an empty directory at `to` as POSIX does.
   * Replacing a file is two namespace writes (put at `to`, remove `from`):
   * `to` always names a whole version, never nothing. A file not yet
   * committed under `from` (an editor's save without fsync) is put at `to`
   * by its commit, which replaces the version there then; until that
   * commit, other nodes see the old version at `to`.
   */
  async rename (from: string, to: string): Promise<void> {
    if (from === to) return
    if (from === '/' || to === '/') throw new ErrnoError(ERRNO.EBUSY, 'cannot rename the root of the mount')
    if (isWithin(to, from)) throw new InvalidArgumentError(`cannot move ${from} into itself`)
    await this.locks.run([from, to], async () => {
      const s = this.staged.get(from)
      // what moves: the staged file itself, or the staged files below a directory
      const moving = s !== undefined ? [s] : this.stagedBelow(from)
      await this.holdingCommits(moving, async () => { await this.renameHeld(from, to, s) })
      this.moveReadHandles(from, to)
    })
  }

  /**
   * Read handles open at `from` or below it are open at `to` now: the
   * kernel goes on asking for their attributes by the new name
   * ({@link heldAttr}). Staged files move with {@link rekey}.
   */
  private moveReadHandles (from: string, to: string): void {
    for (const h of this.handles.values()) {
      if (h.kind === 'staged' || !isWithin(h.path, from)) continue
      h.path = to + h.path.slice(from.length)
    }
  }

  /** {@link rename}'s work, with the path locks held and no commit of the staged files that move running. */
  private async renameHeld (from: string, to: string, s: Staged | undefined): Promise<void> {
    const { namespace } = this.components
    const source = await namespace.lookup(from)
    if (s === undefined && source === undefined) throw new NotFoundError(`no such file or directory: ${from}`)
    await this.checkParent(to)
    const sStaged = this.staged.get(to)
    let target = await namespace.lookup(to)
    if (s === undefined && source?.type === 'dir') {
      if (sStaged !== undefined || target?.type === 'file') throw new NotADirectoryError(`not a directory: ${to}`)
      if (target !== undefined) {
        if ((await namespace.list(to)).length > 0 || this.stagedBelow(to).length > 0) throw new DirectoryNotEmptyError(`directory not empty: ${to}`)
        await namespace.remove(to)
      }
      // their commits are held (see rename): none writes under the old name meanwhile
      const moving = this.stagedBelow(from)
      await namespace.move(from, to)
      for (const child of moving) this.rekey(child, to + child.path.slice(from.length))
      this.moveNotesBelow(from, to)
      this.attrs.clear()
      return
    }
    // a file (committed, staged, or both)
    if (target?.type === 'dir') throw new IsADirectoryError(`is a directory: ${to}`)
    if (sStaged !== undefined) {
      await this.drop(sStaged)
      target = await namespace.lookup(to)
    }
    // a clean staged file whose version at `from` is gone (removed or moved on another node while open here): the
    // mount still shows it, and the rename puts its bytes at `to` by a commit, as for a file not committed yet (before,
    // the target went and the staged file was let go once closed: neither name held anything)
    const revived = s !== undefined && !s.dirty && source === undefined
    if (revived) s.gen++
    // a version of the target that another node wrote since this file was made here is kept beside it, a conflict (not
    // a conflict copy renamed over: it is replaced, as before; kept, it would be hidden under a plain file of its name)
    const unseen = target?.type === 'file' && target.conflictOf === undefined && await this.unseenBy(from, to)
    // the version at `from` is not this uncommitted file's to move when its commit is to replace it (it was renamed
    // over it): that one goes, and the file replaces the target's version instead (moved, other nodes showed the old
    // content under the new name, and kept it there if the commit failed); nor when it was kept beside it (unseen):
    // that one stays where it is
    const behind = s !== undefined && source?.type === 'file' && (source.cid === s.replaces || source.cid === s.keptBeside)
    if (s !== undefined && behind) {
      if (source?.cid === s.replaces) await namespace.remove(from).catch((err: any) => { if (err?.name !== 'NotFoundError') throw err })
      s.replaces = target?.type === 'file' && !unseen ? target.cid : undefined
      s.keptBeside = unseen && target?.type === 'file' ? target.cid : undefined
    } else if (source?.type === 'file') {
      const record: Parameters<Namespace['putFile']>[1] = { cid: source.cid, size: source.size, mode: source.mode, mtime: source.mtime }
      if (source.pin !== undefined) record.pin = source.pin
      const putOver = async (replacing: string | null): Promise<void> => {
        await namespace.putFile(to, record, { replacing })
        // a conflict copy of `to` put at `to` is that path's other version: the put folds it in, and `from` is gone already
        await namespace.remove(from).catch((err: any) => { if (err?.name !== 'NotFoundError') throw err })
      }
      // the version looked up, or (unseen) none: one written there since is kept beside, a conflict
      if (target !== undefined) await putOver(unseen || target.type !== 'file' ? null : target.cid)
      else {
        // a file another node wrote at `to` since the look (the move refuses a taken name: rsync's rename failed with
        // EEXIST, which rename(2) never gives for a file) is kept beside this one, a conflict
        await namespace.move(from, to).catch(async (err: any) => { if (err?.name === 'AlreadyExistsError') await putOver(null); else throw err })
      }
    } else if (target?.type === 'file' && s?.dirty === true) {
      // only staged here: the target's version stays visible until this file's commit replaces it (removed now, other
      // nodes saw no file at `to` until the commit landed: an editor's save by rename made the file vanish there)
      s.replaces = unseen ? undefined : target.cid
      s.keptBeside = unseen ? target.cid : undefined
    } else if (target !== undefined) {
      await namespace.remove(to)
    }
    if (s !== undefined) {
      this.rekey(s, to)
      if (this.options.journal?.waits(s.id) === true) this.options.journal.rebased(s.id, startedFrom(s))
      // its commit starts once the rename ends (commits wait for the rename's hold); with a writer open, at its close
      if (revived && s.writers === 0) this.schedule(s)
    }
    this.moveNote(from, to)
    this.attrs.delete(from)
    this.attrs.delete(to)
  }

  /**
   * Run `work` while no commit of `list` runs or starts: waits for the
   * commits running, holds back those that would start (they start once
   * `work` ends, under the files' new paths).
   */
  private async holdingCommits (list: Staged[], work: () => Promise<void>): Promise<void> {
    let release!: () => void
    const hold = new Promise<void>(resolve => { release = resolve })
    for (const s of list) s.holds.add(hold)
    try {
      for (const s of list) await this.quiet(s)
      await work()
    } finally {
      for (const s of list) s.holds.delete(hold)
      release()
    }
  }

  /**
   * Wait until none of `list` has a commit running or a rename holding its
   * commits. Callers start their commit in the same tick this resolves.
   */
  private async untilFree (list: Staged[]): Promise<void> {
    for (;;) {
      const busy = list.find(s => s.committing !== undefined || s.holds.size > 0)
      if (busy === undefined) return
      if (busy.committing !== undefined) await busy.committing.catch(() => {})
      else await Promise.all(busy.holds)
    }
  }

  /** Change permission bits, of a file or a directory. */
  async chmod (path: string, mode: number): Promise<void> {
    await this.changeFile(path, s => { s.mode = mode & 0o7777 }, entry => ({ mode: mode & 0o7777, mtime: entry.mtime }))
  }

  /**
   * Set the modification time (ms; values near 0 mean "now", values past
   * `Number.MAX_SAFE_INTEGER` "leave it as it is": the libfuse3 binding's
   * UTIME_OMIT, as `touch -a` sends it). A directory's is changed too (the root keeps its own).
   *
   * @throws {NotFoundError} when there is no such path
   */
  async utimens (path: string, mtime: number): Promise<void> {
    if (mtime > Number.MAX_SAFE_INTEGER) { await this.getattr(path); return }
    const time = mtime < TIME_NOW_BELOW ? Date.now() : mtime
    await this.changeFile(path, s => { s.mtime = time }, entry => ({ mode: entry.mode, mtime: time }))
  }

  /** Owners cannot be stored: accepted when unchanged, else EPERM. */
  async chown (path: string, uid: number, gid: number): Promise<void> {
    await this.getattr(path)
    const same = (want: number, have: number): boolean => want === UNCHANGED_ID || want === -1 || want === have
    if (!same(uid, this.uid) || !same(gid, this.gid)) throw new ErrnoError(ERRNO.EPERM, 'file owners are not stored: every file belongs to the mount\'s owner')
  }

  /** Record places for a committed file's reads, when the block store gives them. */
  private placesOf (entry: Entry & { type: 'file' }): RecordPlaces | undefined {
    const { blockstore, files } = this.components
    if (blockstore?.locate === undefined || blockstore.holdPack === undefined) return undefined
    return new RecordPlaces({ blockstore, openLayout: async () => await files.layoutOf(entry) })
  }

  // --------------------------------------------------------- lifecycle

  /**
   * Files open through the mounts now (or among the handles `among`): how
   * many handles, and the paths open for writing (what an unmount would
   * commit half-written).
   */
  openFiles (among?: ReadonlySet<number>): { handles: number, writing: string[] } {
    const writing = new Set<string>()
    let handles = 0
    for (const [fh, h] of this.handles) {
      if (among !== undefined && !among.has(fh)) continue
      handles++
      if (h.kind === 'staged' && h.writable) writing.add(h.staged.path)
    }
    return { handles, writing: [...writing] }
  }

  /**
   * Commit everything staged, open or not (the mount is gone: no handle
   * will be released), as group commits, and wait for every commit.
   * Failures are logged.
   */
  async close (): Promise<void> {
    // taken out first: a handle that moves on to a longer version meanwhile finds its place gone and closes what it opened
    const open = [...this.handles.values()]
    this.handles.clear()
    for (const h of open) {
      if (h.kind !== 'staged') await closeReading(h)
      else h.places?.close()
    }
    for (const s of this.staged.values()) {
      if (s.writers > 0) this.cutOff(s)
      s.handles = 0
      s.writers = 0
    }
    // not let go once committed: they are all disposed of below, none handed to the cache being cleared
    const failed = await this.commitClosed({ letGo: false })
    if (failed.length > 0) await this.keepUncommitted(failed)
    const journal = this.options.journal
    await Promise.all([...this.staged.values()].map(async s => {
      this.staged.delete(s.path)
      // neither committed nor kept: a file the journal names on disk stays there, for the next start to commit (it empties the folder after)
      if (journal?.stagedLength(s.id) !== undefined) await s.file.handOver().catch(() => {})
      else await this.dispose(s).catch((err: any) => { this.log.warn({ path: s.path, err: err?.message }, 'fuse: could not delete a staged file') })
    }))
    // every file committed or kept aside: a journal with nothing waiting is deleted
    journal?.close()
    await this.options.cache?.clear()
  }

  /**
   * Files whose commit failed as the mount goes (a full repo disk, most
   * often): each is moved, with its mode and time, to its namespace path
   * under a new folder of {@link FilesystemOptions.uncommittedDir} named for
   * the time, and let go here. What `close` acknowledged is not lost with the
   * mount; the log names each file kept and how to add it again.
   */
  private async keepUncommitted (failed: Array<{ path: string, err: string }>): Promise<void> {
    const root = this.options.uncommittedDir
    const folder = root === undefined ? undefined : keptFolder(root)
    for (const { path, err } of failed) {
      const s = this.staged.get(path)
      if (s === undefined) continue
      const kept = folder === undefined ? undefined : keptPathIn(folder, path)
      const journaled = this.options.journal?.waits(s.id) === true ? '; the journal of closed files keeps it for the next start to commit' : ''
      if (kept === undefined) {
        this.log.error({ path, err }, `fuse: commit at unmount failed${journaled !== '' ? journaled : '; the staged bytes are lost'}`)
        continue
      }
      try {
        await mkdir(dirname(kept), { recursive: true })
        await s.file.keepAs(kept)
      } catch (keepErr: any) {
        this.log.error({ path, err, keepErr: keepErr?.message }, `fuse: commit at unmount failed, and keeping the file failed too${journaled}`)
        continue
      }
      this.staged.delete(path)
      this.options.journal?.forget(s.id)
      await giveKeptAttrs(kept, s, (what, e) => { this.log.warn({ kept, err: e.message }, `fuse: could not set a kept file's ${what}`) })
      this.log.error({ path, kept, err }, `fuse: commit at unmount failed; the file is ${keptHint(kept, path)}`)
    }
  }

  /**
   * Commit every staged file nobody writes, as group commits, and wait for
   * them and for every commit under way: what an unmount does before it
   * lets its files go. A file whose commit failed before is tried again.
   *
   * @param options.letGo let a file go once committed, as after any commit (default); else it stays staged, clean
   * @returns the files whose commit failed (they stay staged, served here), with why
   */
  async commitClosed (options: { letGo?: boolean } = {}): Promise<Array<{ path: string, err: string }>> {
    // the commits queued or under way first (files closed just now): one that fails there is tried again below, for its error
    await this.queue.drain()
    const failed: Array<{ path: string, err: string }> = []
    await Promise.all([...this.staged.values()].map(async s => {
      // through the commit queue like any close: grouped with the rest
      if (!s.dirty || s.unlinked || s.queued || s.writers > 0) return
      s.queued = true
      await this.queue.enqueue(s).then(async () => { if (options.letGo !== false) await this.settle(s) }, (err: any) => { failed.push({ path: s.path, err: String(err?.message ?? err) }) })
    }))
    // and those queued meanwhile (a chmod of a file being committed)
    await this.queue.drain()
    return failed
  }

  // ----------------------------------------------------------- helpers

  private addHandle (h: Handle): number {
    const fh = this.nextHandle
    this.nextHandle = this.nextHandle >= 0x7fffffff ? 1 : this.nextHandle + 1
    this.handles.set(fh, h)
    return fh
  }

  private handle (fh: number): Handle {
    const h = this.handles.get(fh)
    if (h === undefined) throw new ErrnoError(ERRNO.EBADF, `no open file with handle ${fh}`)
    return h
  }

  private writable (fh: number): Staged {
    return this.writableHandle(fh).staged
  }

  private writableHandle (fh: number): Extract<Handle, { kind: 'staged' }> {
    const h = this.handle(fh)
    if (h.kind !== 'staged' || !h.writable) throw new ErrnoError(ERRNO.EBADF, `handle ${fh} is not open for writing`)
    return h
  }

  /** The parent of `path` must be a directory. */
  private async checkParent (path: string): Promise<void> {
    const parent = parentOf(path)
    const attr = await this.findAttr(parent)
    if (attr === undefined) throw new NotFoundError(`no such directory: ${parent}`)
    if (attr.type !== 'dir') throw new NotADirectoryError(`not a directory: ${parent}`)
  }

  /** The staged file for a write-open of `path` (made from its committed version when there is none). Holds the path's lock. */
  private async stageForWrite (path: string, truncate: boolean): Promise<Staged> {
    let s = this.staged.get(path)
    if (s !== undefined) {
      s.handles++
      s.writers++
      // a commit streams the staged file: let it finish before writing again
      await this.quiet(s)
      if (truncate) { await this.keepAcknowledged(s, 0); s.changesFrom(0); await s.file.truncate(0); s.touch() }
      return s
    }
    const entry = await this.components.namespace.stat(path)
    if (entry.type !== 'file') throw new IsADirectoryError(`is a directory: ${path}`)
    s = await this.stageFrom(entry, truncate ? 0 : entry.size)
    if (truncate) s.touch()
    s.handles++
    s.writers++
    this.staged.set(path, s)
    return s
  }

  /** A clean staged copy of the first `size` bytes of a committed file (zero-extended past its end). */
  private async stageFrom (entry: Entry & { type: 'file' }, size: number): Promise<Staged> {
    const file = await this.options.staging.create()
    try {
      const copy = Math.min(size, entry.size)
      if (copy > 0) await file.fill(this.components.files.catEntry(entry, { length: copy }))
      if (size !== file.size) await file.truncate(size)
    } catch (err) {
      await file.dispose()
      throw err
    }
    const s = new Staged(entry.path, file, entry.mode, entry.mtime, entry.cid)
    s.intact = Math.min(size, entry.size)
    s.baseSize = entry.size
    return s
  }

  /** After a handle closed or a handle-less change: queue a commit, or let the staged file go. */
  private async settle (s: Staged): Promise<void> {
    if (s.unlinked) { if (s.handles === 0 && s.committing === undefined) await this.dispose(s); return }
    if (s.writers > 0) return
    await this.moveReadersOff(s)
    if (s.dirty) this.schedule(s)
    else this.letGo(s)
  }

  /** Wait until no commit of `s` runs (whatever their outcome). */
  private async quiet (s: Staged): Promise<void> {
    while (s.committing !== undefined) await s.committing.catch(() => {})
  }

  /** Let go of a clean staged file that nothing uses. */
  private letGo (s: Staged): void {
    if (s.handles > 0 || s.dirty || s.committing !== undefined || s.queued || s.unlinked) return
    if (this.staged.get(s.path) === s) this.staged.delete(s.path)
    void this.retire(s)
  }

  /** A clean staged file nothing uses: its bytes go to the content cache (they are the committed version's), else away. */
  private async retire (s: Staged): Promise<void> {
    const cache = this.options.cache
    if (cache === undefined || s.committedCid === undefined || s.dirty || s.unlinked || cache.has(s.committedCid)) return await this.dispose(s)
    const path = await s.file.handOver()
    if (path === undefined) return
    const kept = await cache.adopt(s.committedCid, path, s.file.size).catch((err: any) => {
      this.log.warn({ path: s.path, err: err?.message }, 'fuse: could not keep a committed file in the content cache')
      return false
    })
    if (!kept) await rm(path, { force: true })
  }

  private async dispose (s: Staged): Promise<void> {
    await s.file.dispose()
  }

  /** Queue a background commit (never waits: writers are held back in {@link flush}). */
  private schedule (s: Staged): void {
    if (s.queued) return
    s.queued = true
    // once committed: changed again meanwhile (a chmod, a utime) and nobody writing, once more; else let it go
    this.queue.enqueue(s).then(async () => { await this.settle(s) }, (err: any) => {
      this.log.warn({ path: s.path, err: err?.message }, 'fuse: background commit failed; the file stays staged on this node and is retried at its next close, fsync or unmount')
    })
  }

  /**
   * The commit queue's batch: the files still to commit go in one
   * `files.addMany` (one fsync of their blocks, one namespace entry); a file
   * whose own commit runs (an fsync) is committed after it, alone. When the
   * batch fails, each file is tried alone, so one bad file fails only itself.
   */
  private async commitBatch (list: Staged[]): Promise<Array<Error | undefined>> {
    // a rename under way changes paths: start once it is done (the batch's files then have their new names)
    while (list.some(s => s.holds.size > 0)) await Promise.all(list.flatMap(s => [...s.holds]))
    const outcomes: Array<Error | undefined> = list.map(() => undefined)
    // indices into `list` (a file is queued once at a time: `queued` guards it)
    const together: number[] = []
    const alone: number[] = []
    list.forEach((s, i) => {
      s.queued = false
      if (s.unlinked || s.writers > 0 || !s.dirty) this.letGo(s)
      else if (s.committing !== undefined) alone.push(i)
      else together.push(i)
    })
    if (together.length > 0) {
      try {
        await this.commitMany(together.map(i => list[i]))
      } catch (err: any) {
        // stopped because a file of it was removed: the others are committed alone, as after a failure
        if (!(err instanceof CommitCancelledError)) this.log.warn({ files: together.length, err: err?.message }, 'fuse: a batch commit failed; committing its files one by one')
        alone.push(...together)
      }
    }
    for (const i of alone) {
      try {
        await this.commit(list[i])
      } catch (err: any) {
        outcomes[i] = err instanceof Error ? err : new Error(String(err))
      }
    }
    return outcomes
  }

  /** Commit several staged files as one write (`files.addMany`); none of them has a commit running. */
  private async commitMany (list: Staged[]): Promise<void> {
    const gens = list.map(s => s.gen)
    const cancel = new AbortController()
    let work: Promise<void> | undefined
    work = (async () => {
      try {
        for (const s of list) await this.warnIfChanged(s)
        const infos = await this.components.files.addMany(list.map(s => ({ path: s.path, source: s.file.stream(), mode: s.mode, mtime: s.mtime, replacing: startedFrom(s), besideTypeChanges: true })), { chunker: this.components.chunker, signal: cancel.signal })
        list.forEach((s, i) => this.committed(s, gens[i], infos[i]))
      } catch (err) {
        throw cancel.signal.aborted ? cancel.signal.reason : err
      } finally {
        for (const s of list) if (s.committing === work) { s.committing = undefined; s.cancel = undefined }
      }
    })()
    for (const s of list) { s.committing = work; s.cancel = cancel }
    await work
  }

  /** Log when a version other than the one this write started from is at its path now (the commit keeps both: a conflict). */
  private async warnIfChanged (s: Staged): Promise<void> {
    const base = startedFrom(s)
    const current = await this.components.namespace.lookup(s.path)
    if (current?.type === 'dir') {
      this.log.warn({ path: s.path }, 'fuse: another node made a directory at the path while a file was written here; both are kept, the file as a conflict copy (shoal conflicts)')
      return
    }
    if (current?.type !== 'file' || current.cid === base) return
    if (base === null) this.log.warn({ path: s.path, current: current.cid }, 'fuse: another node created the file while it was written here as a new file; both versions are kept, one as a conflict copy (shoal conflicts)')
    else this.log.warn({ path: s.path, base, current: current.cid }, 'fuse: the file changed elsewhere while it was written here; both versions are kept, one as a conflict copy (shoal conflicts)')
  }

  /** Note that generation `gen` of `s` is committed as `info`. */
  private committed (s: Staged, gen: number, info: FileInfo): void {
    if (gen > s.committedGen) { s.committedGen = gen; s.committedCid = info.cid; s.replaces = undefined; s.keptBeside = undefined }
    const journal = this.options.journal
    if (journal !== undefined) {
      journal.done(s.id, gen)
      // a newer version waits: its commit now replaces the one that landed
      if (journal.waits(s.id)) journal.rebased(s.id, startedFrom(s))
    }
    // kept as a conflict copy (a version written meanwhile is shown at the path): the path's attributes are the other's
    if (info.conflictOf !== undefined) this.attrs.delete(s.path)
    else this.attrs.set(s.path, { type: 'file', size: info.size, mode: info.mode ?? s.mode, mtime: info.mtime ?? s.mtime })
  }

  /** Commit `s` as one namespace write; waits for a commit in flight first. */
  private async commit (s: Staged): Promise<void> {
    await this.untilFree([s])
    if (!s.dirty || s.unlinked) return
    const gen = s.gen
    const path = s.path
    const cancel = new AbortController()
    s.cancel = cancel
    s.committing = (async () => {
      try {
        await this.warnIfChanged(s)
        // a directory another node made at its path (or a file at a parent) meanwhile: kept beside it, as its conflict copy
        const info = await this.components.files.add(path, s.file.stream(), { chunker: this.components.chunker, mode: s.mode, mtime: s.mtime, signal: cancel.signal, replacing: startedFrom(s), besideTypeChanges: true })
        this.committed(s, gen, info)
      } finally {
        s.committing = undefined
        s.cancel = undefined
      }
    })()
    await s.committing
  }

  /** Take a staged file out of the overlay (unlink, replaced by a rename). */
  private async drop (s: Staged): Promise<void> {
    // no commit of it starts from now on, and the one running stops: the version it
    // would bind is removed at once (a 20 GiB file made by `truncate` took a minute
    // to import, and `rm` waited for all of it, uninterruptible)
    s.unlinked = true
    this.options.journal?.forget(s.id)
    s.cancel?.abort(new CommitCancelledError(`${s.path} was removed while it was committed`))
    await this.quiet(s)
    if (this.staged.get(s.path) === s) this.staged.delete(s.path)
    if (s.handles === 0) await this.dispose(s)
  }

  private rekey (s: Staged, to: string): void {
    if (this.staged.get(s.path) === s) this.staged.delete(s.path)
    s.path = to
    this.options.journal?.moved(s.id, to)
    if (s.handles === 0 && !s.dirty && !s.queued) { void this.retire(s); return }
    this.staged.set(to, s)
  }

  /** Staged files strictly below a directory. */
  private stagedBelow (dir: string): Staged[] {
    const out: Staged[] = []
    for (const s of this.staged.values()) if (s.path !== dir && isWithin(s.path, dir)) out.push(s)
    return out
  }

  /** Apply a metadata change to a file or a directory: staged in place, or one namespace write. The root: accepted, unchanged. */
  private async changeFile (path: string, staged: (s: Staged) => void, record: (entry: { mode: number, mtime: number }) => { mode: number, mtime: number }): Promise<void> {
    await this.locks.run([path], async () => {
      const s = this.staged.get(path)
      if (s !== undefined) {
        staged(s)
        s.gen++
        // a file whose close is noted already: its new mode or time alone (rsync's chmod and utime after each file)
        if (s.writers === 0 && this.options.journal?.changed(s.id, s.gen, s) !== true) await this.acknowledged(s)
        await this.settle(s)
        return
      }
      const entry = await this.components.namespace.stat(path)
      if (entry.type === 'dir') {
        // tar, cp -a and rsync make each directory 0700 and give it its mode afterwards; the root keeps its own
        const next = record(entry)
        if (entry.path !== '/' && (next.mode !== entry.mode || next.mtime !== entry.mtime)) await this.components.namespace.setDirAttrs(path, next)
        this.attrs.delete(path)
        return
      }
      // in place: made again over a change of its pin meanwhile (the background coding's bind); a removal by the CLI or a
      // peer since the stat is ENOENT, and the file is not brought back
      await rewriteFile(this.components.namespace, entry, now => {
        const next = record(now)
        if (next.mode === now.mode && next.mtime === now.mtime) return undefined
        const put: Parameters<Namespace['putFile']>[1] = { cid: now.cid, size: now.size, ...next }
        if (now.pin !== undefined) put.pin = now.pin
        return put
      })
      this.attrs.delete(path)
    })
  }
}

/**
 * The version a staged file's next commit started from: the one a rename
 * over its path made it replace ({@link Staged.replaces}), else its own last
 * commit, else the version it was copied from, else none (`null`: a new
 * file). The commit replaces that version only: one written meanwhile, by
 * another node or by the CLI here, is kept as a conflict. A file whose
 * writer was cut off ({@link Staged.cut}) replaces none: the version it
 * started from stays, and the cut one is kept beside it, a conflict
 * (before, a `cp` over a file cut short by a daemon's stop replaced it, on
 * every node, with its first part).
 */
function startedFrom (s: Staged): string | null {
  if (s.cut) return null
  return (s.replaces ?? (s.committedGen !== 0 ? s.committedCid : s.base)) ?? null
}

function attrOf (entry: Entry): Attr {
  return entry.type === 'dir'
    ? { type: 'dir', size: 0, mode: entry.mode, mtime: entry.mtime }
    : { type: 'file', size: entry.size, mode: entry.mode, mtime: entry.mtime }
}
