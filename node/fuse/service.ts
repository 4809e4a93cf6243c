/**
 * The FUSE service of a node: mounts the namespace on directories, keeps the
 * record of active mounts, restores mounts a killed daemon left stale.
 *
 * @module
 */
import { realpath } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Files } from '../files/index.js'
import type { BlockStore } from '../blocks/index.js'
import type { DiskGuard } from '../repo/disk.js'
import type { ChunkerSpec } from '../content/index.js'
import type { Logger } from '../logger.js'
import type { Namespace } from '../namespace/index.js'
import type { RepoConfig, RepoLayout } from '../repo/index.js'
import { keptUncommitted } from '../repo/uncommitted.js'
import { checkFuse, DEFAULT_READ_AHEAD_KB, mountFuse, type FuseBindingName, type FuseOps, type MountedFuse } from './adapter.js'
import type { FuseReadCounts } from './fuse3.js'
import { FuseUnavailableError, MountpointInsideMountError, NotMountedError, MountpointBusyError, UncommittedFilesError } from './errors.js'
import { ShoalFilesystem } from './filesystem.js'
import { checkMountpoint, cleanStaleMount, isFuseMountAt, isStaleMount, mountpointPath, readMountRecords, writeMountRecords } from './mounts.js'
import { createOps } from './ops.js'
import { StagingArea } from './staging.js'
import { ContentCache } from './cache.js'
import { ClosedJournal } from './journal.js'
import { commitRescued, rescueClosedFiles, type Rescue, type RescueCommits } from './rescue.js'

/** What the FUSE service is built from (a subset of the node's components). */
export interface FuseComponents {
  files: Pick<Files, 'add' | 'addMany' | 'catEntry' | 'layoutOf'>
  /** The namespace; `onRemoteChange` tells when other nodes' changes arrive. */
  namespace: Pick<Namespace, 'lookup' | 'stat' | 'list' | 'mkdir' | 'move' | 'remove' | 'putFile' | 'setDirAttrs' | 'seen' | 'arrivedSince'> & {
    onRemoteChange?: (listener: () => void) => () => void
  }
  /** The block store, when its reads can be placed for the binding's threads (record-places.ts). */
  blockstore?: Pick<BlockStore, 'locate' | 'holdPack'>
  repo: Pick<RepoLayout, 'root' | 'tmp' | 'uncommitted' | 'fuseJournal'>
  /** Room on the repo disk: files staged there stop at its reserve (absent: no check). */
  disk?: Pick<DiskGuard, 'ensureRoom' | 'reserveBytes'>
  config: Pick<RepoConfig, 'fuse'>
  chunker: ChunkerSpec
  logger: Logger
}

/** An active mount. */
export interface MountInfo {
  /** Absolute mountpoint. */
  dir: string
  /** When it was mounted (ms since the epoch). */
  since: number
  /** The FUSE binding that serves it (docs/fuse.md, "Bindings"). */
  binding: FuseBindingName
  /** Largest read or write request the kernel sends it, bytes. */
  maxRequest: number
  /** The kernel's read-ahead window of the mount, KiB (libfuse3 only; {@link MountedFuse.readAheadKb}). */
  readAheadKb?: number
}

/** Options of {@link FuseService.unmount}. */
export interface UnmountOptions {
  /** Unmount even with files open (they fail; what they wrote so far is committed). @default false */
  force?: boolean
}

/** A mount of this service: its binding, when it was made, and the handles opened through it. */
interface ActiveMount {
  mounted: MountedFuse
  since: number
  /** Handles opened through this mount and not released (the file system's handles are shared by every mount). */
  opened: Set<number>
}

/**
 * `ops` with the handles opened through them noted in `opened` (and taken
 * out at release): what an unmount of this mount waits for, and releases
 * when forced.
 */
function trackHandles (ops: FuseOps, opened: Set<number>): FuseOps {
  const { open, create, release } = ops
  return {
    ...ops,
    ...(open === undefined ? {} : { open: (path: string, flags: number, cb: Parameters<NonNullable<FuseOps['open']>>[2]) => { open(path, flags, (err, fh, pages, stale) => { if (err === 0 && fh !== undefined) opened.add(fh); cb(err, fh, pages, stale) }) } }),
    ...(create === undefined ? {} : { create: (path: string, mode: number, cb: Parameters<NonNullable<FuseOps['create']>>[2]) => { create(path, mode, (err, fh, pages, stale) => { if (err === 0 && fh !== undefined) opened.add(fh); cb(err, fh, pages, stale) }) } }),
    ...(release === undefined ? {} : { release: (path: string, fd: number, cb: Parameters<NonNullable<FuseOps['release']>>[2]) => { opened.delete(fd); release(path, fd, cb) } })
  }
}

/** The first three of `paths`, for a message. */
function firstFew (paths: string[]): string {
  return `${paths.slice(0, 3).join(', ')}${paths.length > 3 ? ', …' : ''}`
}

/** `1 file`, `2 files`. */
function files (n: number): string {
  return `${n} file${n === 1 ? '' : 's'}`
}

/** How long an unmount waits for files just closed to be released before it calls the mount busy (ms). */
const RELEASE_WAIT_MS = 2000

/** Options of {@link FuseService.stop}. */
export interface FuseStopOptions {
  /**
   * Leave `<repo>/mounts.json` as it is, so that the next start mounts
   * them again ({@link FuseService.restore}), as after a crash: the daemon
   * was killed rather than asked to stop. @default false: cleared
   */
  keepMounts?: boolean
}

/** Mounts of one node. Every mount shows the same namespace and shares one set of staged writes. */
export class FuseService {
  private readonly active = new Map<string, ActiveMount>()
  /** Every mount made, unmounted ones too: their reads count for as long as the process lives (a detached mount serves its open files on). */
  private readonly made: MountedFuse[] = []
  private fs?: ShoalFilesystem
  private unsubscribe?: () => void
  private chain: Promise<unknown> = Promise.resolve()
  private readonly log: Logger
  /** `<repo>/mounts.json`. */
  readonly recordsFile: string
  /** Set by a stop that keeps the record for the next start ({@link FuseStopOptions.keepMounts}). */
  private keepingRecords = false

  constructor (private readonly components: FuseComponents) {
    this.log = components.logger.child({ component: 'fuse' })
    this.recordsFile = join(components.repo.root, 'mounts.json')
  }

  /**
   * Mount the namespace on `dir` (absolute, existing, empty).
   *
   * @throws {InvalidArgumentError} {NotFoundError} {NotADirectoryError} {MountpointBusyError} {FuseUnavailableError}
   */
  async mount (dir: string): Promise<MountInfo> {
    return await this.serial(async () => await this.mountNow(dir))
  }

  /**
   * Unmount `dir`, then commit what was written through it. A mount with
   * files open is refused, as `umount` refuses a busy file system (a writer
   * cut off mid-file would leave its half-written file committed), unless
   * `force`: then it goes at once, open files fail and what they wrote so
   * far is committed.
   *
   * @returns the mountpoint unmounted (its path normalised: `DIR/` is `DIR`)
   * @throws {InvalidArgumentError} {NotMountedError} {MountpointBusyError} {UncommittedFilesError}
   */
  async unmount (dir: string, options: UnmountOptions = {}): Promise<string> {
    const path = mountpointPath(dir)
    return await this.serial(async () => {
      if (options.force !== true) {
        await this.refuseWhileOpen(path)
        await this.refuseUncommitted(path)
      }
      await this.unmountNow(path)
      return path
    })
  }

  /**
   * Commit what was written and closed, and throw {@link UncommittedFilesError}
   * when some of it cannot be (a full disk…): an unmount lets the staged files
   * go, so it would lose what `close` acknowledged. They stay in the mount.
   */
  private async refuseUncommitted (dir: string): Promise<void> {
    const failed = await this.fs?.commitClosed() ?? []
    if (failed.length === 0) return
    throw new UncommittedFilesError(`${dir} was not unmounted: ${files(failed.length)} written there could not be committed (${firstFew(failed.map(f => f.path))}: ${failed[0].err}); they stay in the mount: fix that and unmount again, or \`shoal unmount --force ${dir}\` (they are then kept in ${this.components.repo.uncommitted}, out of the namespace, to add again by hand)`)
  }

  /**
   * Throw {@link MountpointBusyError} when files are open through the mounts,
   * after waiting a little for them to close: the kernel releases a file
   * after `close(2)` has returned, so a script that closes and unmounts at
   * once would be refused without the wait.
   */
  private async refuseWhileOpen (dir: string): Promise<void> {
    const entry = this.active.get(dir)
    if (entry === undefined) throw new NotMountedError(`${dir} is not mounted by this node`)
    const fs = this.fs
    if (fs === undefined) return
    const until = Date.now() + RELEASE_WAIT_MS
    while (entry.opened.size > 0 && Date.now() < until) await sleep(20)
    if (entry.opened.size === 0) return
    const open = fs.openFiles(entry.opened)
    const writing = open.writing.length === 0
      ? ''
      : ` (${open.writing.length} for writing: ${firstFew(open.writing)})`
    const n = entry.opened.size
    throw new MountpointBusyError(`${dir} is in use: ${files(n)} open${writing}; close ${n === 1 ? 'it' : 'them'}, or \`shoal unmount --force ${dir}\` (open files then fail, and what they wrote so far is committed)`)
  }

  /** Reads answered with record places for the binding to read and check (record-places.ts), since the service started. */
  placedReads (): number {
    return this.fs?.placedReads ?? 0
  }

  /** Placed reads asked again because a record failed the binding's check (read through the block store then). */
  retriedReads (): number {
    return this.fs?.retriedReads ?? 0
  }

  /**
   * What the libfuse3 binding's threads read from pack records, over every
   * mount this service made: reads that bypass the block store (its
   * `shoal_blocks_read_total` does not see them).
   */
  recordReads (): FuseReadCounts {
    const sum = { records: 0, bytes: 0, refused: 0 }
    for (const m of this.made) {
      const c = m.readCounts?.()
      if (c === undefined) continue
      sum.records += c.records
      sum.bytes += c.bytes
      sum.refused += c.refused
    }
    return sum
  }

  /** Active mounts, oldest first. */
  mounts (): MountInfo[] {
    return [...this.active].map(([dir, m]) => mountInfo(dir, m.since, m.mounted)).sort((a, b) => a.since - b.since)
  }

  /**
   * At daemon start: every mount recorded in `<repo>/mounts.json` was left by
   * a daemon that did not stop cleanly. Free it if it is stale, mount it
   * again. A mount that cannot be restored is logged and forgotten.
   */
  async restore (): Promise<MountInfo[]> {
    return await this.serial(async () => {
      await this.tellUncommitted()
      const records = await readMountRecords(this.recordsFile)
      const restored: MountInfo[] = []
      // kept when FUSE is not usable here (not installed): restored at a start once it is
      const kept: typeof records = []
      for (const record of records) {
        try {
          if (await isStaleMount(record.dir) || await isFuseMountAt(record.dir)) {
            this.log.warn({ dir: record.dir }, 'freeing a stale mount left by a daemon that did not stop cleanly')
            await cleanStaleMount(record.dir, this.log)
          }
          restored.push(await this.mountNow(record.dir))
        } catch (err: any) {
          if (err instanceof FuseUnavailableError) {
            kept.push(record)
            this.log.warn({ dir: record.dir, err: err.message, name: err.name }, 'cannot restore a recorded mount: FUSE is not usable here; the record is kept for a start where it is')
          } else {
            this.log.warn({ dir: record.dir, err: err?.message }, 'cannot restore a recorded mount; forgetting it')
          }
        }
      }
      await writeMountRecords(this.recordsFile, [...this.mounts().map(({ dir, since }) => ({ dir, since })), ...kept])
      return restored
    })
  }

  /**
   * First thing at a start, before `<repo>/tmp` is emptied: take the files
   * that `close` acknowledged and a crash kept from their commit out of the
   * journal of closed files (node/fuse/rescue.ts), for
   * {@link commitRescued} to commit once the node runs.
   */
  async rescueClosed (): Promise<Rescue> {
    return await rescueClosedFiles({ journal: this.components.repo.fuseJournal, logger: this.log })
  }

  /** Once the node runs: commit what {@link rescueClosed} took out (node/fuse/rescue.ts). */
  async commitRescued (): Promise<RescueCommits> {
    const { files, chunker, repo } = this.components
    return await commitRescued({ files, chunker, logger: this.log }, { journal: repo.fuseJournal, uncommitted: repo.uncommitted })
  }

  /** Say at start that files written through a mount and never committed are kept in the repo (until the user adds or deletes them). */
  private async tellUncommitted (): Promise<void> {
    const { dir, files, bytes } = await keptUncommitted(this.components.repo).catch(() => ({ dir: this.components.repo.uncommitted, files: 0, bytes: 0 }))
    if (files > 0) this.log.warn({ dir, files, bytes }, `${files} file(s) written through a mount could not be committed when it went and are kept in ${dir}: add them again with \`shoal add\`, then delete them`)
  }

  /**
   * Unmount everything (the node stops) and commit what was written — also
   * when an unmount fails: the files written through that mount are
   * committed, or kept in `<repo>/uncommitted`, as for the others (the
   * node's stores close next). The record is cleared, unless
   * `keepMounts`: then the mounts are mounted again at the next start
   * ({@link restore}), as after a crash.
   */
  async stop (options: FuseStopOptions = {}): Promise<void> {
    await this.serial(async () => {
      // kept: the record is not rewritten as each mount goes (a stop forced between two unmounts keeps them all)
      this.keepingRecords = options.keepMounts === true
      for (const dir of [...this.active.keys()]) {
        await this.unmountNow(dir).catch((err: any) => { this.log.warn({ dir, err: err?.message }, 'unmount failed') })
      }
      await this.closeFilesystem()
    })
  }

  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn)
    this.chain = run.catch(() => {})
    return await run
  }

  private filesystem (): ShoalFilesystem {
    if (this.fs !== undefined) return this.fs
    const { config, disk } = this.components
    const fs = new ShoalFilesystem(this.components, {
      staging: new StagingArea(join(this.components.repo.tmp, 'fuse'), {
        memoryTotal: config.fuse.stagingMemoryMiB * 1024 * 1024,
        ensureRoom: disk === undefined ? undefined : async bytes => { await disk.ensureRoom(bytes, 'a file written through the mount') }
      }),
      cache: new ContentCache(join(this.components.repo.tmp, 'fuse-cache'), config.fuse.contentCacheMiB * 1024 * 1024),
      attrCacheMs: Math.round(config.fuse.attrTimeout * 1000),
      commitConcurrency: config.fuse.commitConcurrency,
      maxPendingCommits: config.fuse.maxPendingCommits,
      statfsPath: this.components.repo.root,
      statfsReserve: disk?.reserveBytes,
      uncommittedDir: this.components.repo.uncommitted,
      journal: new ClosedJournal(this.components.repo.fuseJournal, {
        onError: err => { this.log.warn({ err: err.message }, 'fuse: cannot write the journal of closed files: until it can, a crash loses the files closed and not yet committed') }
      })
    })
    this.unsubscribe = this.components.namespace.onRemoteChange?.(() => { fs.invalidate() })
    this.fs = fs
    return fs
  }

  private async mountNow (dir: string): Promise<MountInfo> {
    if (typeof dir === 'string' && this.active.has(dir)) throw new MountpointBusyError(`${dir} is already mounted by this node`)
    // before anything touches the path: a lookup there is a request to this node
    this.refuseInsideOwnMount(mountpointPath(dir))
    const path = await checkMountpoint(dir)
    if (this.active.has(path)) throw new MountpointBusyError(`${path} is already mounted by this node`)
    // a symlink outside leading inside (resolved off the event loop: this node answers the lookups meanwhile)
    this.refuseInsideOwnMount(await realpath(path).catch(() => path))
    const binding = await checkFuse()
    const { config } = this.components
    const fs = this.filesystem()
    let mounted: MountedFuse
    const opened = new Set<number>()
    try {
      mounted = await mountFuse(path, trackHandles(createOps(fs, this.log, { opened }), opened), {
        attrTimeout: config.fuse.attrTimeout,
        entryTimeout: config.fuse.entryTimeout,
        autoCache: config.fuse.autoCache
      })
    } catch (err) {
      if (this.active.size === 0) await this.closeFilesystem()
      throw err
    }
    const since = Date.now()
    this.active.set(path, { mounted, since, opened })
    this.made.push(mounted)
    await this.saveRecords()
    this.log.info({ dir: path, binding: mounted.binding, maxRequest: mounted.maxRequest, readAheadKb: mounted.readAheadKb, whyNotLibfuse3: binding.whyNotLibfuse3 }, 'mounted')
    if (mounted.readAheadKb !== undefined && mounted.readAheadKb < DEFAULT_READ_AHEAD_KB) {
      this.log.warn({ dir: path, readAheadKb: mounted.readAheadKb }, `the mount's read-ahead window could not be raised to ${DEFAULT_READ_AHEAD_KB} KiB (/sys read-only, or not root): sequential reads come as ${mounted.readAheadKb} KiB requests (docs/fuse.md, "Bindings")`)
    }
    return mountInfo(path, since, mounted)
  }

  /**
   * Throw {@link MountpointInsideMountError} when `path` is inside a mount of
   * this node: the kernel resolves a mount call's path through the file
   * systems on it, so mounting there would wait on this node's own mount,
   * whose requests this node, blocked in that call, never answers — the
   * daemon hung for good (and with it every program that touched the mount).
   */
  private refuseInsideOwnMount (path: string): void {
    for (const mount of this.active.keys()) {
      if (path.startsWith(mount + '/')) throw new MountpointInsideMountError(`${path} is inside ${mount}, a mount of this node: mounting there would hang the node (the mount call looks the path up through the node's own file system); choose a directory outside its mounts`)
    }
  }

  private async unmountNow (dir: string): Promise<void> {
    const entry = this.active.get(dir)
    if (entry === undefined) throw new NotMountedError(`${dir} is not mounted by this node`)
    try {
      await entry.mounted.unmount()
    } finally {
      this.active.delete(dir)
      await this.saveRecords()
    }
    // files still open through it (a forced unmount): released here, as the kernel may never send their release
    // once the mount is gone; what was written to them is committed, and they fail from now on
    for (const fh of [...entry.opened]) {
      entry.opened.delete(fh)
      await this.fs?.release(fh, { cut: true }).catch((err: any) => { this.log.warn({ dir, err: err?.message }, 'release at unmount failed') })
    }
    this.log.info({ dir }, 'unmounted')
    if (this.active.size === 0) await this.closeFilesystem()
  }

  private async closeFilesystem (): Promise<void> {
    const fs = this.fs
    if (fs === undefined) return
    this.fs = undefined
    this.unsubscribe?.()
    this.unsubscribe = undefined
    await fs.close()
  }

  private async saveRecords (): Promise<void> {
    if (this.keepingRecords) return
    await writeMountRecords(this.recordsFile, this.mounts().map(({ dir, since }) => ({ dir, since })))
  }
}

/** Build a node's FUSE service (nothing is loaded or mounted until `mount` or `restore`). */
export function createFuseService (components: FuseComponents): FuseService {
  return new FuseService(components)
}

/** What the API says of a mount. */
function mountInfo (dir: string, since: number, mounted: MountedFuse): MountInfo {
  const info: MountInfo = { dir, since, binding: mounted.binding, maxRequest: mounted.maxRequest }
  if (mounted.readAheadKb !== undefined) info.readAheadKb = mounted.readAheadKb
  return info
}
