/**
 * The user-facing file operations: a namespace path or a CID in, records and
 * byte streams out. Composes the namespace (where things are) with content
 * (what the bytes are).
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import PQueue from 'p-queue'
import { parseTarget } from '../../protocol/target.js'
import { IsADirectoryError } from '../errors.js'
import { DirectoryDags, entrySize, FileLayout, importContent, localPresence, notFileOrDirectory, readContent, resolveEntry, type BlockPresence, type ChunkerSpec, type ImportProgressEvents } from '../content/index.js'
import { conflictCopyError, filePath, parentOf, rewriteFile } from '../namespace/index.js'
import type { BlockStore, OwnedWrites } from '../blocks/index.js'
import type { Entry, FileRecord, Namespace, RemoveResult } from '../namespace/index.js'
import type { Logger } from '../logger.js'
import type { BlockExchange, PeerHaves } from '../exchange/index.js'
import { Blocks } from '../reads/index.js'
import type { BlockGetter, BlockReader, ReadSession } from '../reads/api.js'
import { contentSession } from '../reads/content-session.js'
import { SessionScope, closingAfter, inSessionScope, withSession } from '../reads/session-scope.js'
import { PinIndex } from '../reads/pin-index.js'
import type { ProgressOptions } from 'progress-events'
import type { UnixFSEntry } from 'ipfs-unixfs-exporter'
import type { DurabilityService, GcLock, PinStatus, PlaceResult, ManifestShape, RebindResult } from '../durability/index.js'
import { formatPolicy, isCodedPolicy, parsePolicy, placementShortfall, type Stripe } from '../../protocol/durability.js'
import { mapAtOnce } from '../at-once.js'
import { raceAbort } from '../abort.js'
import { InvalidArgumentError, isDiskFull, NotADirectoryError, NotFoundError, PolicyNotMetError, ShoalError, WriteInterruptedError } from '../errors.js'
import { pinCold, pinHot, type ColdComponents, type FileReadOptions, type Tier } from './cold.js'
import { exportCar } from '../car/index.js'
import { importAndBind, type CarImportOptions, type CarImportResult } from './car-import.js'
import { TreeShapes, type FileShape } from './car-tree.js'
import { DamageNotes, DAMAGE_ERRORS, namesFile, type DamageNote } from './damage.js'
import { filledDuring, type DiskGuard } from '../repo/disk.js'
import type { LeafWorker } from '../content/leaf-chunker.js'
import type { TierService } from '../tiers/service.js'
import type { ColdCopyHealth } from '../tiers/cold-health.js'
import type { FilePin } from '../namespace/index.js'

/** What the files service is built from. */
export interface FilesComponents {
  blockstore: BlockStore
  namespace: Namespace
  logger: Logger
  /** Fetches content this node does not hold from the swarm, and announces what it adds. */
  exchange?: BlockExchange
  /** Encodes and places pinned files (absent: files get no pin). */
  durability?: DurabilityService
  /**
   * Where every read gets its blocks (local, peers, stripes, cold tier).
   * @default a block service over `blockstore`, `exchange`, `durability` (striped reads) and `tiers`
   */
  blocks?: BlockReader
  /**
   * The namespace's pinned files by content, for reads by CID (the node's,
   * shared with its gateway). @default an index of `namespace`, made at the first read by CID
   */
  pins?: PinIndex
  /** Writes hold it shared so garbage collection never takes their blocks. */
  gcLock?: GcLock
  /** The S3 cold tier (absent: cold pins are refused, cold copies unreadable). */
  tiers?: TierService
  /** Checks room on the repo disk before new data comes in (absent: no check). */
  disk?: DiskGuard
  /** Cuts and hashes the leaves of imports on a worker thread (absent: on the main thread). */
  leafWorker?: LeafWorker
}

/** A pinned file as `pin ls` shows it. */
export interface PinInfo {
  path: string
  cid: string
  size: number
  policy: string
  manifest?: string
  /** Where its cold copy is (no credentials), when it has one. */
  cold?: { endpoint: string, bucket: string, key: string }
  /** Set by `pin add` when the policy is not met yet: why (see {@link FileInfo.pending}). */
  pending?: string
}

/** Where `pin add CID` binds a CID that is not in the namespace. */
export const PINS_DIR = '/pins'

/** Children of a directory CID whose root blocks `ls` reads at once. */
const LS_CONCURRENCY = 16

/**
 * `pin add CID` of content that is not a UnixFS file or raw leaf (a dag-cbor
 * node, a dag-pb node without UnixFS data, a UnixFS symlink…): no file could
 * be read from it, so nothing is bound and nothing is pinned.
 */
export class NotUnixFSFileError extends ShoalError {
  override name = 'NotUnixFSFileError'
  override readonly status = 400
}

/**
 * `entry` when it is a UnixFS file, raw leaf or directory.
 *
 * @throws {NotUnixFSFileError} for anything else (a dag-cbor node, a UnixFS symlink…): it has no bytes or size to show
 */
function unixfsOnly<E extends UnixFSEntry> (entry: E): E {
  const why = notFileOrDirectory(entry)
  if (why !== undefined) throw new NotUnixFSFileError(`${entry.cid.toString()} is ${why}`)
  return entry
}

/** A file or directory as the API and CLI show it. */
export interface FileInfo {
  /** Namespace path, absent for a bare CID. */
  path?: string
  name: string
  type: 'file' | 'dir'
  /** Content CID (for a namespace directory: its UnixFS directory DAG, HAMT-sharded when large). */
  cid: string
  size: number
  mode?: number
  mtime?: number
  /** A conflict copy: the path it lost to. */
  conflictOf?: string
  /**
   * Set by a `stat` that names when its caller began (`started`): this
   * entry arrived from another node after that moment, so the caller never
   * saw it (`add DIR --to` adds a folder into a folder only when it saw it).
   */
  arrivedAfterStart?: true
  /**
   * Set by an add (without `wait`) whose policy cannot be met yet, one line:
   * too few live nodes to code it, or fewer than its shards. The file is
   * durable here; it is coded and placed (again) by itself once enough nodes
   * are live, and `pin status` shows it pending meanwhile.
   */
  pending?: string
}

/** Options for {@link Files.add}. */
export interface AddOptions extends ProgressOptions<ImportProgressEvents> {
  chunker: ChunkerSpec
  mode?: number
  mtime?: number
  signal?: AbortSignal
  /** Durability policy (`ec:K+M`, `replicas:N`, `none`); default: the configured one for the file's size. */
  pin?: string
  /** The content's size when known up front (an upload's Content-Length): room for it and its local parity is checked before anything is read. */
  expectedBytes?: number
  /**
   * Resolve only when the policy is met: every shard placed, on k+m distinct
   * peers. Otherwise the add resolves once the content and its namespace
   * entry are durable here, and placement runs in the background.
   * @default false
   */
  wait?: boolean
  /**
   * The CID of the version this write started from (`null`: a new file): a
   * different version written there meanwhile is kept beside it as a
   * conflict (see the namespace's `PutOptions`). Absent: the version
   * visible when the add began (none: a new file), so a version another
   * node wrote while the bytes were uploading is never replaced unseen.
   */
  replacing?: string | null
  /**
   * The write began when the path was no directory and its parents were
   * directories (a file written through the mount): a directory or file
   * another node put in its way meanwhile does not fail it, the file is
   * kept beside it as a conflict copy (the namespace's `PutOptions`).
   * @default false
   */
  besideTypeChanges?: boolean
  /**
   * When the writer began (ms on this node's wall clock: a CLI command's
   * start, before the daemon served it): without {@link replacing}, a
   * version another node wrote that arrived after that moment is kept
   * beside this one, a conflict, as one arriving during the upload is
   * (the namespace's `seenAt`). Ignored for a moment more than a minute ago.
   */
  startedAt?: number
}

/** One file of {@link Files.addMany}. */
export interface AddManyItem {
  path: string
  source: AsyncIterable<Uint8Array>
  mode?: number
  mtime?: number
  /** Durability policy; default: the configured one for the file's size. */
  pin?: string
  /** See {@link AddOptions.replacing}. */
  replacing?: string | null
  /** See {@link AddOptions.besideTypeChanges}. */
  besideTypeChanges?: boolean
  /** Bytes the source holds, when known: room for them is checked before anything is read. */
  expectedBytes?: number
}

/** Options for {@link Files.addMany}. */
export interface AddManyOptions {
  chunker: ChunkerSpec
  signal?: AbortSignal
  /** See {@link AddOptions.startedAt}: for every item of the batch. */
  startedAt?: number
  /** Set `pending` on each file whose coded policy cannot be met yet, as {@link Files.add} does (a look at the live nodes per file). */
  tellPending?: boolean
}

/** What {@link Files.finishPlacement} did. */
export interface PlacementFinish {
  /** Files queued for background placement when it began. */
  queued: number
  /** Files still not placed when it gave up waiting (placed by the repair pass after the next start). */
  left: number
  /** Files whose placement ended while it waited, short of their holders: waiting for live nodes, or a peer failed (placed by the repair pass). */
  short: number
}

/** Options of {@link Files}. */
export interface FilesInit {
  /**
   * Files whose coding and placement may wait in the background, in memory;
   * past it, a batch's files are left to the durability service's periodic
   * pass, which codes and places every file whose deferred record waits
   * (on disk). @default 4096
   */
  maxPlacementBacklog?: number
  /**
   * Files coded and placed at once in the background, while no add runs.
   * Each is a few round trips to its holders and a few fsyncs, seldom CPU:
   * one at a time, a node placed ~20 small files a second. While adds run
   * (and for `foregroundQuietMs` after the last), one at a time, so that the
   * writes a user waits for keep the node. @default 8
   */
  placementConcurrency?: number
  /** How long after the last add background placement stays at one file at a time (ms). @default 2000 */
  foregroundQuietMs?: number
}

/** Range options for {@link Files.cat}. */
/** Options of {@link Files.pinAdd}. */
export interface PinAddOptions {
  /** `ec:K+M`, `replicas:N` or `none`. @default the configured policy for the file's size */
  policy?: string
  /** Move the file to the cold tier (S3) or back to the hot one; absent: keep its tier. */
  tier?: Tier
  signal?: AbortSignal
}

export interface CatOptions { offset?: number, length?: number, signal?: AbortSignal }


/** The coded policy a file entry waits to be coded under (an add left it uncoded), if any. */
function uncodedPolicy (entry: Entry): string | undefined {
  return entry.type === 'file' && entry.pin !== undefined && entry.pin.manifest === undefined && isCodedPolicy(entry.pin.policy) ? entry.pin.policy : undefined
}

/** The namespace record of a file just imported (mode 0644 and now unless given). */
function fileRecord (cid: CID, size: number, meta: { mode?: number, mtime?: number }): Parameters<Namespace['putFile']>[1] {
  return { cid: cid.toString(), size, mode: meta.mode ?? 0o644, mtime: meta.mtime ?? Date.now() }
}

/**
 * Whether a file that is not coded still has its blocks (`pin status`):
 * this node's DAG walk ({@link BlockPresence}) and, when some are missing,
 * the connected peers asked `have` about the first of them (up to 256).
 */
export interface FileBlocks extends BlockPresence {
  /** Peers that answered, each with how many of the missing blocks asked it holds. */
  peers?: PeerHaves[]
  /** Of the missing blocks asked about, how many no peer that answered holds: above 0, the file does not read now. */
  heldByNone?: number
}

/** Paths an {@link Files.rm} lists as kept, at most (the count says how many in all). */
const MAX_KEPT_LISTED = 100

/** What {@link Files.rm} left: the paths that arrived from another node after the caller began, if any. */
export interface RmResult {
  /** The first {@link MAX_KEPT_LISTED} of them, the path itself first when it is one. */
  kept?: string[]
  /** How many in all. */
  keptCount?: number
}

/** File operations over one node's namespace and block store. */
export class Files {
  private readonly components: FilesComponents
  private readonly blocks: BlockReader
  /** Background coding and placement of the files adds wrote, a few at once. */
  private readonly placing: PQueue
  private readonly placementConcurrency: number
  private readonly foregroundQuietMs: number
  /** Adds running now; background placement goes one file at a time meanwhile. */
  private adding = 0
  /** Restores the placement's concurrency once adds have been quiet a while. */
  private quietTimer: ReturnType<typeof setTimeout> | undefined
  private readonly maxPlacementBacklog: number
  /** Aborts the background placements under way once a stop stops waiting for them ({@link finishPlacement}). */
  private readonly placementAbort = new AbortController()
  /** Files an {@link addMany} left to the periodic pass (the backlog was full), since start. */
  leftToRepair = 0
  /** Files whose background coding and placement ended short of their holders (waiting for live nodes, or a peer failed), since start. */
  private placedShort = 0
  /** The namespace's pinned files by content, for reads by CID; made at the first one. */
  private pins: PinIndex | undefined
  /** The directory DAGs of the namespace, built on first use. */
  private dirs: DirectoryDags | undefined
  /** Files found damaged here by reads and `pin status` (see {@link damaged}). */
  private readonly damage = new DamageNotes()

  constructor (components: FilesComponents, init: FilesInit = {}) {
    this.components = components
    this.blocks = components.blocks ?? defaultBlocks(components)
    this.maxPlacementBacklog = init.maxPlacementBacklog ?? 4096
    this.placementConcurrency = Math.max(1, init.placementConcurrency ?? 8)
    this.placing = new PQueue({ concurrency: this.placementConcurrency })
    this.foregroundQuietMs = init.foregroundQuietMs ?? 2000
  }

  /**
   * A session for content named by a CID alone: a plain read, which turns
   * to the pin of a visible file with that content (stripes, rebuilds, the
   * cold tier) when a block is wanting, as a read by path would read it
   * (node/reads/content-session.ts).
   */
  private cidReader (root: CID, signal?: AbortSignal): ReadSession {
    this.pins ??= this.components.pins ?? new PinIndex(this.components.namespace)
    const pins = this.pins
    return contentSession({ blocks: this.blocks, lookup: async cid => await pins.lookup(cid), root, signal })
  }

  /** The namespace's directory DAGs (node/content/directory.ts). */
  private directories (): DirectoryDags {
    this.dirs ??= new DirectoryDags(this.components)
    return this.dirs
  }

  /** A read session for the DAG under `root`, wherever `options.pin` says its blocks are; the caller closes it. */
  private reader (root: CID, options: FileReadOptions = {}): ReadSession {
    const { pin, ...session } = options
    return this.blocks.session({
      root,
      manifest: pin?.manifest === undefined ? undefined : CID.parse(pin.manifest),
      cold: pin?.cold
    }, session)
  }

  /** What the cold-tier paths need (node/files/cold.ts). */
  private coldComponents (): ColdComponents {
    const { tiers, blockstore, namespace, durability } = this.components
    if (tiers === undefined) throw new InvalidArgumentError('this node has no cold tier service')
    return {
      tiers,
      blockstore,
      namespace,
      durability,
      writing: async fn => await this.writing(fn),
      reader: (root, options) => this.reader(root, options)
    }
  }

  /** Run a write so that garbage collection keeps its blocks. */
  private async writing<T> (fn: () => Promise<T>): Promise<T> {
    return this.components.gcLock === undefined ? await fn() : await this.components.gcLock.shared(fn)
  }

  /**
   * Throw the error of `what`, a write that failed. On a full disk, what it
   * left is given back first, with no other write in flight: its own blocks
   * no commit covered are dropped and cut off their packs (`owned`), then a
   * commit settles what other writes left pending (or fails again,
   * harmlessly) — so that the disk does not stay full of a write nobody will
   * see, and the next add's or `gc`'s commit is not failed by it.
   */
  private async failedWrite (what: string, err: unknown, owned?: OwnedWrites): Promise<never> {
    if (isDiskFull(err)) {
      const drop = async (): Promise<void> => {
        await owned?.discard().catch(() => 0)
        await this.components.blockstore.commit().catch(() => {})
      }
      await (this.components.gcLock?.exclusive(drop) ?? drop())
    }
    throw filledDuring(what, err)
  }

  /**
   * A check to run before a write binds its blocks to a path: it throws
   * {@link WriteInterruptedError} when a commit of the block store failed
   * since the check was made (see `BlockStore.failedCommits`: blocks of this
   * write may be gone).
   */
  private commitsHold (what: string): () => void {
    const { blockstore } = this.components
    const before = blockstore.failedCommits ?? 0
    return () => {
      if ((blockstore.failedCommits ?? 0) !== before) throw new WriteInterruptedError(`a commit of the block store failed during ${what}, which was not kept: some of its blocks may be lost; add it again`)
    }
  }

  /** Describe a namespace entry; a directory gets the CID of its UnixFS DAG. */
  private async infoOf (entry: Entry): Promise<FileInfo> {
    if (entry.type === 'file') {
      const info: FileInfo = { path: entry.path, name: entry.name, type: 'file', cid: entry.cid, size: entry.size, mode: entry.mode, mtime: entry.mtime }
      if (entry.conflictOf !== undefined) info.conflictOf = entry.conflictOf
      return info
    }
    const cid = await this.directories().cidOf(entry.path)
    return { path: entry.path, name: entry.name, type: 'dir', cid: cid.toString(), size: 0, mode: entry.mode, mtime: entry.mtime }
  }

  /**
   * Import a byte stream and bind it to `path` (missing parents are created,
   * an existing file is replaced). Durable when it resolves.
   */
  async add (path: string, source: AsyncIterable<Uint8Array>, options: AddOptions): Promise<FileInfo> {
    const target = filePath(path)
    if (options.pin !== undefined) parsePolicy(options.pin)
    const existing = await this.components.namespace.lookup(target)
    const beside = options.besideTypeChanges === true || await this.besideUnseen(target, existing, options.startedAt)
    // the version there as the add begins: one written meanwhile (another node's,
    // arrived during the upload) is kept beside this one as a conflict, never replaced unseen
    const replacing = options.replacing !== undefined ? options.replacing : await this.replacedVersion(target, existing, options.startedAt)
    const durability = this.components.durability
    await this.components.disk?.ensureRoom(localBytes(options.expectedBytes ?? 0, options.pin ?? durability?.defaultPolicy(options.expectedBytes ?? 0)), `an add of ${target}`)
    const started = performance.now()
    const ms: Record<string, number> = {}
    let waiting: string | undefined
    /** Why the file's policy is not met yet, for the caller (a plain add of a coded policy only). */
    let pending: string | undefined
    /** The most bytes of the file its coding and placement held at once (0: not coded during the add). */
    let peakBytes = 0
    let placement: Promise<PlaceResult> | undefined
    const intact = this.commitsHold(`the add of ${target}`)
    // the import's puts, to drop if the add fails on a full disk
    const owned = this.components.blockstore.ownedWrites?.()
    const store = owned?.store ?? this.components.blockstore
    const entry = await this.foreground(async () => await this.writing(async () => {
      if (durability !== undefined && options.wait !== true) {
        // acknowledged once the file and its entry are durable here: coding and placement follow in the background
        const { cid, size } = await importContent(store, source, { ...options, commit: false, leafWorker: this.components.leafWorker })
        ms.import = Math.round(performance.now() - started)
        const record = fileRecord(cid, size, options)
        record.pin = { policy: await this.deferCoding(durability, { root: cid, size, policy: options.pin, path: target }) }
        await durability.sync()
        intact()
        return await this.ownVersion(target, record.cid, await this.components.namespace.putFile(target, record, { replacing, besideTypeChanges: beside }))
      }
      // --wait: stripes are coded from the leaves while the import holds them (no read-back), and their shards pushed to their holders as they are coded
      const coding = durability?.addEncoder({ policy: options.pin, signal: options.signal, sync: true, place: true })
      const { cid, size } = await importContent(store, source, { ...options, onLeaf: coding?.onLeaf, commit: coding === undefined, leafWorker: this.components.leafWorker })
      ms.import = Math.round(performance.now() - started)
      const encoded = await coding?.finish(cid, size)
      waiting = encoded?.waiting
      placement = encoded?.placement
      peakBytes = encoded?.peakBytes ?? 0
      ms.encode = Math.round(performance.now() - started) - ms.import
      const record = fileRecord(cid, size, options)
      if (encoded !== undefined) record.pin = encoded.pin
      intact()
      return await this.ownVersion(target, record.cid, await this.components.namespace.putFile(target, record, { replacing, besideTypeChanges: beside }))
    })).catch(async err => await this.failedWrite(`the add of ${target}`, err, owned))
    const committed = performance.now()
    if (entry.type === 'file') {
      if (entry.pin?.manifest !== undefined && durability !== undefined) {
        await this.placeNow(durability, entry, { signal: options.signal, streamed: placement })
        ms.place = Math.round(performance.now() - committed)
      } else if (durability !== undefined && entry.pin !== undefined && isCodedPolicy(entry.pin.policy) && options.wait !== true) {
        // told to the caller: the add succeeded, the policy is not met yet
        pending = await durability.shortfall(entry.pin.policy, { root: CID.parse(entry.cid), signal: options.signal })
        if (pending !== undefined) this.components.logger.info({ path: target, pending }, 'policy not met yet')
        this.codeSoon(durability, CID.parse(entry.cid), entry.pin.policy)
      } else void this.components.exchange?.announce(CID.parse(entry.cid))
      if (waiting !== undefined) {
        this.components.logger.info({ path: target, waiting }, 'coding waits for live nodes')
        throw new PolicyNotMetError(`${target} is added and durable here, but its policy is not met: ${waiting} (\`shoal pin status ${target}\`)`)
      }
    }
    this.components.logger.info({ path: target, cid: entry.type === 'file' ? entry.cid : '', pin: entry.type === 'file' ? entry.pin?.policy : undefined, ms, heldMiB: peakBytes > 0 ? Math.ceil(peakBytes / (1024 * 1024)) : undefined }, 'added')
    const info = await this.infoOf(entry)
    if (pending !== undefined) info.pending = pending
    return info
  }

  /**
   * The entry of the version a put at `path` just wrote: `shown` (what the
   * namespace shows there), or — when a version written meanwhile was kept
   * beside it and won — the conflict copy that holds it. The caller codes,
   * places and caches what it wrote, never the other writer's version.
   */
  private async ownVersion (path: string, cid: string, shown: Entry): Promise<Entry> {
    // a directory shown at the path (put there meanwhile, see besideTypeChanges): the file is its conflict copy
    if (shown.type === 'file' && shown.cid === cid) return shown
    const copy = (await this.components.namespace.conflicts()).find(c => c.path === path && c.cid === cid)
    return copy === undefined ? shown : await this.components.namespace.stat(copy.copy)
  }

  /**
   * Import several byte streams and bind each to its path as **one** write:
   * the blocks of all of them (content, parity, manifests) are fsynced once,
   * then one namespace write (one log entry, one fsync) binds them all.
   * Durable when it resolves; all or nothing for the namespace. Placing
   * their shards on peers and announcing them run after it resolves, in the
   * background (bounded: a large backlog makes the next call wait), as a
   * failed placement already does for {@link add}: repair retries it.
   *
   * @throws {IsADirectoryError} when a path is a directory (then nothing is bound)
   */
  async addMany (items: readonly AddManyItem[], options: AddManyOptions): Promise<FileInfo[]> {
    if (items.length === 0) return []
    const { blockstore, namespace, durability } = this.components
    const targets = items.map(item => {
      if (item.pin !== undefined) parsePolicy(item.pin)
      return filePath(item.path)
    })
    if (new Set(targets).size !== targets.length) throw new InvalidArgumentError('a batch names one path twice')
    // the version at each path as the batch begins: one written meanwhile is kept beside this one as a conflict (as add does)
    const replacing: Array<string | null> = []
    const beside: boolean[] = []
    const dirs = new Set<string>()
    for (const [i, target] of targets.entries()) {
      const existing = await namespace.lookup(target)
      beside.push(items[i].besideTypeChanges === true || await this.besideUnseen(target, existing, options.startedAt, dirs))
      const given = items[i].replacing
      replacing.push(given !== undefined ? given : await this.replacedVersion(target, existing, options.startedAt))
    }
    // room for what the items say they hold (a batch of the API declares every size), as add checks a Content-Length
    const expected = items.reduce((n, item) => n + localBytes(item.expectedBytes ?? 0, item.pin ?? durability?.defaultPolicy(item.expectedBytes ?? 0)), 0)
    await this.components.disk?.ensureRoom(expected, `${items.length} new file${items.length === 1 ? '' : 's'}`)
    const started = performance.now()
    const intact = this.commitsHold(`the add of ${items.length} file${items.length === 1 ? '' : 's'}`)
    const entries = await this.foreground(async () => await this.writing(async () => {
      const files: Parameters<Namespace['putFiles']>[0][number][] = []
      for (let i = 0; i < items.length; i++) {
        const item = items[i]
        const { cid, size } = await importContent(blockstore, item.source, { chunker: options.chunker, signal: options.signal, commit: false, leafWorker: this.components.leafWorker })
        const record = fileRecord(cid, size, item)
        if (durability !== undefined) record.pin = { policy: await this.deferCoding(durability, { root: cid, size, policy: item.pin, path: targets[i] }) }
        files.push({ path: targets[i], record, replacing: replacing[i], besideTypeChanges: beside[i] })
      }
      // one fsync for every block (and deferred record) of the batch, before the entry that names them
      if (durability !== undefined) await durability.sync(); else await blockstore.commit()
      intact()
      const shown = await namespace.putFiles(files)
      return await Promise.all(shown.map(async (entry, i) => await this.ownVersion(targets[i], files[i].record.cid, entry)))
    })).catch(async err => await this.failedWrite(`the add of ${items.length} file${items.length === 1 ? '' : 's'}`, err))
    this.components.logger.info({ files: entries.length, ms: Math.round(performance.now() - started) }, 'added a batch')
    this.placeLater(entries)
    const infos = await Promise.all(entries.map(async entry => await this.infoOf(entry)))
    if (durability !== undefined && options.tellPending === true) {
      // told to the caller, as add tells it: a file whose policy cannot be met yet (shortfall says none for an uncoded one)
      for (const [i, entry] of entries.entries()) {
        if (entry.type !== 'file' || entry.pin === undefined) continue
        const pending = await durability.shortfall(entry.pin.policy, { root: CID.parse(entry.cid), signal: options.signal })
        if (pending !== undefined) infos[i].pending = pending
      }
    }
    return infos
  }

  /** Code and place (or announce) what {@link addMany} wrote, after it returned, a few files at once. */
  private placeLater (entries: Entry[]): void {
    const { durability, exchange } = this.components
    if (durability !== undefined && this.placementBacklog + entries.length > this.maxPlacementBacklog) {
      // never a writer held back for placement (a mount's close(2) waited three minutes once 4,096 small files
      // waited, each coded and placed in ~50 ms): their deferred records are on disk, the periodic pass takes them
      let left = 0
      for (const entry of entries) {
        if (uncodedPolicy(entry) !== undefined) left++
        else if (entry.type === 'file' && entry.pin?.manifest === undefined) exchange?.announceSoon(CID.parse(entry.cid))
      }
      if (this.leftToRepair === 0) this.components.logger.info({ backlog: this.placementBacklog, files: left }, 'placement backlog full: files left to the periodic durability pass')
      this.leftToRepair += left
      return
    }
    for (const entry of entries) {
      if (entry.type !== 'file') continue
      const policy = uncodedPolicy(entry)
      if (durability !== undefined && policy !== undefined) this.codeSoon(durability, CID.parse(entry.cid), policy)
      else if (entry.pin?.manifest === undefined) exchange?.announceSoon(CID.parse(entry.cid))
    }
  }

  /**
   * Run an add: background placement goes one file at a time until adds
   * have been quiet for `foregroundQuietMs` (eight placements at once
   * made a directory of small files add 1.4–3 × slower).
   */
  private async foreground<T> (fn: () => Promise<T>): Promise<T> {
    this.adding++
    clearTimeout(this.quietTimer)
    this.placing.concurrency = 1
    try {
      return await fn()
    } finally {
      if (--this.adding === 0) {
        this.quietTimer = setTimeout(() => { if (this.adding === 0) this.placing.concurrency = this.placementConcurrency }, this.foregroundQuietMs)
        this.quietTimer.unref?.()
      }
    }
  }

  /** Files queued for coding and placement and not done yet. */
  private get placementBacklog (): number {
    return this.placing.size + this.placing.pending
  }

  /**
   * The policy of a file just imported (`policy`, else the configured one
   * for its size), canonical; under a coded policy the file is left uncoded
   * for {@link codeSoon} (a deferred record, fsynced by the caller's
   * `durability.sync()`).
   */
  private async deferCoding (durability: DurabilityService, file: { root: CID, size: number, policy?: string, path: string }): Promise<string> {
    const text = formatPolicy(parsePolicy(file.policy ?? durability.defaultPolicy(file.size)))
    if (isCodedPolicy(text)) await durability.defer(file.root, file.size, text, { paths: [file.path], sync: false })
    return text
  }

  /** Queue the coding and placement of a file an add left uncoded under `policy` (it never fails: see {@link codeQuietly}). */
  private codeSoon (durability: DurabilityService, root: CID, policy: string): void {
    void this.placing.add(async () => { await this.codeQuietly(durability, root, policy) })
  }

  /**
   * Code, bind and place a file an add left uncoded; a failure is logged and
   * left to the repair pass (the file is durable here). A file that waits for
   * live nodes, or whose placement failed on a peer, is counted in
   * {@link placedShort}.
   */
  private async codeQuietly (durability: DurabilityService, root: CID, policy: string): Promise<void> {
    try {
      const outcome = await durability.codeDeferred(root, policy, this.placementAbort.signal)
      if (outcome.kind === 'waiting' || (outcome.kind === 'coded' && outcome.short)) this.placedShort++
    } catch (err: any) {
      // a stop gave up on it: its deferred record is on disk, and the next start's repair pass places it
      if (this.placementAbort.signal.aborted) return
      this.components.logger.warn({ root: root.toString(), err: err?.message }, 'coding after an add failed; the repair pass retries')
    }
  }

  /**
   * At a stop, once nothing new can be added: give the background placement
   * of files added just before up to `options.timeoutMs` to finish (all its
   * files at once), then abort what is left and start nothing more. A file
   * added and the daemon stopped a second later was on this node only until
   * its next start: unreadable on every other node meanwhile, and lost with
   * this node's disk. What is left keeps its deferred record on disk and is
   * placed by the first repair pass after the next start. Files an add left
   * to the periodic pass (a full backlog) are not waited for.
   */
  async finishPlacement (options: { timeoutMs: number }): Promise<PlacementFinish> {
    const { logger } = this.components
    const queued = this.placementBacklog
    const shortBefore = this.placedShort
    if (queued > 0 && options.timeoutMs > 0) {
      clearTimeout(this.quietTimer)
      this.placing.concurrency = this.placementConcurrency
      logger.info({ files: queued, waitS: options.timeoutMs / 1000 }, 'stopping: placing the files added just before on their holders first')
      await raceAbort(this.placing.onIdle(), AbortSignal.timeout(options.timeoutMs)).catch(() => {})
    }
    const left = this.placementBacklog
    this.placing.clear()
    this.placementAbort.abort()
    const short = this.placedShort - shortBefore
    if (left > 0) logger.warn({ files: left, of: queued }, 'stopping before the files added last were placed: they are on this node only until its next start, which places them')
    else if (short > 0) logger.info({ files: queued, short }, `the placement of the files added just before is done; ${short} of them ${short === 1 ? 'waits' : 'wait'} on this node for holders (too few live nodes, or a peer that did not take its shards): the repair pass places ${short === 1 ? 'it' : 'them'} (\`shoal pin status\` says where each stands)`)
    else if (queued > 0) logger.info({ files: queued }, 'the placement of the files added just before is done (`shoal pin status` says where each stands)')
    return { queued, left, short }
  }

  /** Resolves once the background placements queued so far are done. */
  async settled (): Promise<void> {
    await this.placing.onIdle()
  }

  /**
   * Place a file's shards now (or end the placement `streamed` during its
   * add; peers that failed in it get a placement of the whole file again)
   * and check the policy is met.
   *
   * @throws {PolicyNotMetError} naming what is missing (the file stays added; repair keeps placing it)
   */
  private async placeNow (durability: DurabilityService, entry: Entry & { type: 'file' }, options: { signal?: AbortSignal, streamed?: Promise<PlaceResult> } = {}): Promise<void> {
    const pin = entry.pin as FilePin & { manifest: string }
    let result = await options.streamed?.catch(() => undefined)
    if (result === undefined || result.failed.length > 0) result = await durability.place(CID.parse(pin.manifest), options.signal)
    const missing = placementShortfall(pin.policy, result)
    if (missing.length > 0) {
      throw new PolicyNotMetError(`${entry.path} is added and durable here, but its policy is not met: ${missing.join('; ')}; placement goes on in the background (\`shoal pin status ${entry.path}\`)`)
    }
  }

  /** Place a manifest's shards; a failure is logged and left to repair (the write is already durable here). */
  private async placeQuietly (durability: DurabilityService, manifest: string, signal?: AbortSignal): Promise<PlaceResult | undefined> {
    try {
      return await durability.place(CID.parse(manifest), signal)
    } catch (err: any) {
      this.components.logger.warn({ manifest, err: err?.message }, 'placement failed; repair will retry')
      return undefined
    }
  }

  /**
   * Pin a file with `policy` (default: the configured one for its size):
   * encode it (fetching what is not here), record the pin in its namespace
   * record, place its shards. A CID that is not in the namespace is bound
   * at `/pins/<cid>` first, if it is a UnixFS file or raw leaf.
   *
   * @throws {NotUnixFSFileError} for a CID that is not a UnixFS file or raw leaf (nothing is bound or pinned)
   * @throws {IsADirectoryError} for a directory
   */
  async pinAdd (arg: string, options: PinAddOptions = {}): Promise<PinInfo> {
    const { policy, signal, tier } = options
    const durability = this.requireDurability()
    if (policy !== undefined) parsePolicy(policy)
    const target = parseTarget(arg)
    let entry: Entry
    if (target.kind === 'path') {
      entry = await this.components.namespace.stat(target.path)
    } else {
      const path = `${PINS_DIR}/${target.cid.toString()}`
      const found = await this.components.namespace.lookup(path)
      if (found !== undefined) entry = found
      else {
        const file = await this.fileAt(target.cid, signal)
        entry = await this.components.namespace.putFile(path, { cid: target.cid.toString(), size: file.record.size, mode: 0o644, mtime: Date.now() })
      }
    }
    if (entry.type !== 'file') throw new IsADirectoryError(`pin add takes files; ${entry.path} is a directory`)
    // refused before any encoding or push: its pin could not be written (rewriteFile)
    if (entry.conflictOf !== undefined) throw conflictCopyError(entry)
    const root = CID.parse(entry.cid)
    let current: Entry = entry
    if (tier !== undefined) {
      const cold = this.coldComponents()
      current = tier === 'cold' ? await pinCold(cold, entry, { policy, signal }) : await pinHot(cold, entry, { policy, signal })
    } else {
      const want = formatPolicy(parsePolicy(policy ?? durability.defaultPolicy(entry.size)))
      if (entry.pin?.policy !== want || (entry.pin.manifest === undefined && isCodedPolicy(want))) {
        const tooFew = await durability.tooFewNodes(want, signal)
        if (tooFew !== undefined && entry.pin?.manifest !== undefined) {
          // its stripes stay as they are: dropping them for a policy that cannot be carried would leave one copy
          throw new PolicyNotMetError(`${entry.path} stays ${entry.pin.policy}: ${tooFew}; pin it again once they are live`)
        }
        if (tooFew !== undefined) {
          // no useless parity: coded and placed by the repair pass once enough nodes are live
          await durability.defer(root, entry.size, want)
          if (entry.pin?.policy !== want || entry.pin.manifest !== undefined) current = await this.bindPolicy(entry, { policy: want })
        } else {
          // leaves that are not here are fetched (and kept) as the encoder reads them
          const encoded = await withSession(this.reader(root, { signal, pin: entry.pin, keep: true }), async getter =>
            await this.writing(async () => await durability.encode(root, entry.size, want, { signal, getter })))
          current = await this.bindPolicy(entry, encoded)
        }
      }
    }
    if (current.type === 'file' && current.pin?.manifest !== undefined) await this.placeQuietly(durability, current.pin.manifest, signal)
    const info = pinInfo(current)
    if (tier === undefined && isCodedPolicy(info.policy)) {
      const pending = await durability.shortfall(info.policy, { root, signal })
      if (pending !== undefined) info.pending = pending
    }
    return info
  }

  /**
   * What `pin add CID` may bind: the UnixFS file (or raw leaf) at `cid`,
   * decided as `car import` decides what it binds ({@link TreeShapes}), its
   * root block read once (here or from the swarm) and nothing under it.
   *
   * @throws {IsADirectoryError} for a UnixFS directory (`pin add` takes files)
   * @throws {NotUnixFSFileError} for anything else that is not a UnixFS file or raw leaf
   * @throws {BlockUnavailableError} when no one has its root block (from the read path, as `cat` throws it)
   */
  private async fileAt (cid: CID, signal?: AbortSignal): Promise<FileShape> {
    const reader = this.cidReader(cid, signal)
    // one read of the root block (or one failure) for both looks at it
    const read = new Map<string, Promise<Uint8Array>>()
    const once: BlockGetter = {
      getBytes: async (c, options) => {
        const key = c.toString()
        let bytes = read.get(key)
        if (bytes === undefined) { bytes = reader.getBytes(c, options); read.set(key, bytes) }
        return await bytes
      }
    }
    // a directory is refused on its root block alone: its shape would be read from the whole tree under it
    const entry = await resolveEntry(once, cid, signal).catch(() => undefined)
    if (entry?.type === 'directory') throw new IsADirectoryError(`pin add takes files; ${cid.toString()} is a directory`)
    const shape = await new TreeShapes(once, { maxEntries: 1, signal }).root(cid)
    if (shape.kind === 'dir') throw new IsADirectoryError(`pin add takes files; ${cid.toString()} is a directory`)
    if (shape.kind === 'unbound') throw new NotUnixFSFileError(`${cid.toString()} is not a UnixFS file (${shape.why}): pin add takes UnixFS files and raw leaves; nothing was pinned`)
    return shape
  }

  /**
   * Write `pin` into a file's record (its cold copy stays), in place
   * ({@link rewriteFile}: made again over a change of its pin, mode or time
   * meanwhile, such as the background coding's bind of the same content).
   *
   * @throws {VersionGoneError} when the file is no longer at its path (removed, moved or replaced since `entry` was read): nothing is written
   */
  private async bindPolicy (entry: Entry & { type: 'file' }, pin: FilePin): Promise<Entry> {
    return await rewriteFile(this.components.namespace, entry, now => withPin(now, pin))
  }

  /**
   * Bind `pin` (a deferred coding, done) to the visible files whose content
   * is `root` and whose pin has the same policy and no manifest yet: those
   * at `paths` (what an add bound), or without `paths` every one (a scan of
   * the namespace); a cold copy stays. A conflict copy is left alone: the
   * write would make it a plain file and end its conflict, which is the
   * user's to resolve. Returns how many files were bound, and which of
   * `paths` show no such file and none bound to `pin` already.
   */
  async bindPin (root: CID, pin: FilePin, paths?: readonly string[]): Promise<RebindResult> {
    const { namespace } = this.components
    const cid = root.toString()
    // a version written at that path since the add (or the scan), or one bound already, is left alone
    const waits = (entry: Entry): entry is Entry & { type: 'file' } => entry.type === 'file' && entry.cid === cid && entry.pin?.policy === pin.policy && entry.pin.manifest === undefined && entry.conflictOf === undefined
    const carries = (entry: Entry | undefined): boolean => entry?.type === 'file' && entry.cid === cid && entry.pin?.policy === pin.policy && entry.pin.manifest === pin.manifest
    const due: string[] = []
    if (paths !== undefined) due.push(...paths)
    else {
      for await (const entry of namespace.files()) if (waits(entry)) due.push(entry.path)
    }
    let bound = 0
    const left: string[] = []
    for (const path of due) {
      const now = await namespace.lookup(path)
      if (now === undefined || !waits(now)) {
        if (paths !== undefined && !carries(now)) left.push(path)
        continue
      }
      // the version the filter was asked of last: the one rewriteFile found there (no look again to tell what it is)
      let last: Entry = now
      try {
        // the filter asked again if its mode, time or pin changed meanwhile
        if (await rewriteFile(namespace, now, version => { last = version; return waits(version) ? withPin(version, pin) : undefined }) !== undefined) bound++
        else if (paths !== undefined && !carries(last)) left.push(path)
      } catch (err: any) {
        // removed, moved or replaced between the look and the write: a removal the coding must not undo
        if (err?.name !== 'VersionGoneError') throw err
        if (paths !== undefined) left.push(path)
      }
    }
    return { bound, left }
  }

  /** Drop a file's pin (policy `none`: it stays where its blocks are); a CID pinned at `/pins/<cid>` is removed. */
  async pinRm (arg: string): Promise<void> {
    const target = parseTarget(arg)
    if (target.kind === 'cid') {
      const path = `${PINS_DIR}/${target.cid.toString()}`
      if (await this.components.namespace.lookup(path) === undefined) throw new NotFoundError(`${target.cid.toString()} is not pinned (no ${path})`)
      await this.components.namespace.remove(path)
      return
    }
    const entry = await this.components.namespace.stat(target.path)
    if (entry.type !== 'file') throw new IsADirectoryError(`pin rm takes files; ${entry.path} is a directory`)
    if (entry.pin === undefined || entry.pin.policy === 'none') {
      if (entry.pin?.cold !== undefined) throw new InvalidArgumentError(`${entry.path} is kept only in the cold tier: bring it back with \`pin add --tier hot\` first`)
      throw new NotFoundError(`${entry.path} is not pinned`)
    }
    // a cold copy stays (it may be the only one): withPin keeps the one the version has when it is written
    await rewriteFile(this.components.namespace, entry, now => withPin(now, { policy: 'none' }))
  }

  /** Every visible file with a pin other than `none`. */
  async pinLs (): Promise<PinInfo[]> {
    const out: PinInfo[] = []
    for await (const entry of this.components.namespace.files()) {
      if (entry.type === 'file' && entry.pin !== undefined && (entry.pin.policy !== 'none' || entry.pin.cold !== undefined)) out.push(pinInfo(entry))
    }
    return out
  }

  /**
   * Health of every stripe of a file's pin, and of its cold copy when it
   * has one (`cold`: both objects there at their sizes, see
   * node/tiers/cold-health.ts; with `verify`, the whole copy read back and
   * checked against its index). For a file that is not coded (no
   * manifest) and has no cold copy, or one found not whole, `blocks` says whether this node holds its blocks, and, when
   * some are missing, which connected peers hold the first of them
   * (see {@link FileBlocks}; `blocks: false` leaves it out).
   */
  async pinStatus (arg: string, options: { signal?: AbortSignal, verify?: boolean, blocks?: boolean } = {}): Promise<PinStatus & { path: string, cold?: ColdCopyHealth, blocks?: FileBlocks }> {
    const { signal } = options
    const durability = this.requireDurability()
    const target = parseTarget(arg)
    const path = target.kind === 'path' ? target.path : `${PINS_DIR}/${target.cid.toString()}`
    const entry = await this.components.namespace.stat(path)
    if (entry.type !== 'file') throw new IsADirectoryError(`pin status takes files; ${entry.path} is a directory`)
    const root = CID.parse(entry.cid)
    const copy = entry.pin?.cold
    const { tiers } = this.components
    const [status, cold] = await Promise.all([
      durability.status(root, entry.pin, signal),
      copy === undefined || tiers === undefined ? undefined : tiers.check(root, copy, { signal, verify: options.verify })
    ])
    // a conflict copy is coded once the user resolves its conflict (its pin cannot be written at the copy's name)
    if (entry.conflictOf !== undefined && status.waiting !== undefined) status.waiting = `a conflict copy of ${entry.conflictOf}: coded once the conflict is resolved (\`shoal mv\` it to a path of its own)`
    const out = cold === undefined ? { path: entry.path, ...status } : { path: entry.path, ...status, cold }
    // a coded file's stripes, or a cold copy's objects, say where its blocks are; a cold copy that is not whole
    // (altered, gone, unreachable, or no tier here to read it) leaves the file readable where its blocks are, as
    // one without a copy: those are walked then (the copy was the only one of a file whose hot blocks went at a gc)
    if (status.manifest !== undefined || (copy !== undefined && cold?.state === 'ok') || options.blocks === false) return out
    const blocks = await this.fileBlocks(root, signal)
    // blocks of a file with a cold copy that is only out of reach now are missing here by design, not damage
    const damaged = copy === undefined || cold?.state === 'damaged' || cold?.state === 'missing'
    if (blocks.missing > 0 && damaged) this.damage.note({ path: entry.path, cid: entry.cid, by: 'pin-status', at: Date.now(), what: `${blocks.missing} of ${blocks.checked}${blocks.complete ? '' : ' looked up'} blocks missing here` })
    else if (blocks.missing === 0 && blocks.complete) this.damage.clear(entry.path, entry.cid)
    return { ...out, blocks }
  }

  /**
   * Files found damaged here, newest first: reads that failed for want of a
   * block and `pin status` walks that found blocks missing (damage.ts). A
   * note whose path names another file now (rewritten or removed) is
   * dropped. No DAG is walked: one namespace lookup per note.
   */
  async damaged (): Promise<DamageNote[]> {
    const out: DamageNote[] = []
    for (const note of this.damage.list()) {
      if (await namesFile(this.components.namespace, note.path, note.cid)) out.push(note)
      else this.damage.drop(note.path)
    }
    return out
  }

  /**
   * The version a write at `target` replaces when its caller names none:
   * the file shown there now (`existing`, as looked up), unless another
   * node's version arrived after `startedAt` (the writer never saw it:
   * then none, and it stays beside the new one, a conflict).
   */
  private async replacedVersion (target: string, existing: Entry | undefined, startedAt: number | undefined): Promise<string | null> {
    if (existing?.type !== 'file') return null
    return startedAt !== undefined && await this.arrivedAfter(target, startedAt) ? null : existing.cid
  }

  /**
   * Whether a file added at `target` (`existing` there now) by a caller who
   * began at `startedAt` is written beside what it never saw: a directory at
   * `target`, or a file at one of its parents, that arrived from another
   * node after that moment, now or before the write lands (during the
   * upload). The directory wins and the file is its conflict copy, as when
   * the two are written at once. Without `startedAt`, never.
   *
   * @throws {IsADirectoryError} a directory at `target` that was there when the caller began
   * @throws {NotADirectoryError} a file at a parent of `target` that was there then
   *
   * `dirs`: folders found so far (a batch's files share their parents: one
   * lookup of each, not one per file).
   */
  private async besideUnseen (target: string, existing: Entry | undefined, startedAt: number | undefined, dirs?: Set<string>): Promise<boolean> {
    if (existing?.type === 'dir' && (startedAt === undefined || !await this.arrivedAfter(target, startedAt))) throw new IsADirectoryError(`is a directory: ${target}`)
    if (startedAt === undefined) return false
    await this.besideUnseenParents(target, startedAt, dirs)
    return true
  }

  /**
   * Check that no file the caller could have seen (there before
   * `startedAt`) is at a parent of `target`: a file that arrived from
   * another node after it is kept beside the folder made there.
   *
   * @throws {NotADirectoryError} a file at a parent that was there when the caller began
   */
  private async besideUnseenParents (target: string, startedAt: number, dirs?: Set<string>): Promise<void> {
    const { namespace } = this.components
    for (let dir = parentOf(target); dir !== '/' && dirs?.has(dir) !== true; dir = parentOf(dir)) {
      const above = await namespace.lookup(dir)
      if (above === undefined) continue
      if (above.type === 'dir') { dirs?.add(dir); break }
      if (!await this.arrivedAfter(dir, startedAt)) throw new NotADirectoryError(`not a directory: ${dir}`)
    }
  }

  /**
   * Whether what the namespace shows at `path` (a file version or a
   * directory) arrived from another node after `startedAt` (ms on this
   * node's clock): one a caller who began then never saw. False for a
   * moment more than a minute ago (the namespace's `seenAt`).
   */
  async arrivedAfter (path: string, startedAt: number): Promise<boolean> {
    const { namespace } = this.components
    const seen = namespace.seenAt(startedAt)
    // nothing arrived since the caller began (the common case: the same record as now): no read of the path
    if (seen === undefined || seen === namespace.seen()) return false
    return await namespace.arrivedSince(path, seen)
  }

  /** {@link FileBlocks} of the file whose root is `root`: a bounded local walk, then peers asked about the first missing blocks. */
  private async fileBlocks (root: CID, signal?: AbortSignal): Promise<FileBlocks> {
    const here = await localPresence(this.components.blockstore, root, { signal })
    if (here.missing === 0) return here
    // a node without an exchange fetches nothing: every missing block is missing for its reads
    if (this.components.exchange === undefined) return { ...here, heldByNone: here.firstMissing.length }
    const { peers, heldByNone } = await this.components.exchange.askHave(here.firstMissing.map(c => CID.parse(c)), { signal })
    return { ...here, peers, heldByNone }
  }

  private requireDurability (): DurabilityService {
    if (this.components.durability === undefined) throw new NotFoundError('this node has no durability service')
    return this.components.durability
  }

  /** The CID a `PATH|CID` argument stands for (directories get their DAG built). */
  async cidOf (arg: string): Promise<CID> {
    const target = parseTarget(arg)
    if (target.kind === 'cid') return target.cid
    const entry = await this.components.namespace.stat(target.path)
    if (entry.type === 'file') return CID.parse(entry.cid)
    return await this.directories().cidOf(entry.path)
  }

  /** Stream a file's bytes (or a range of them). */
  async * cat (arg: string, options: CatOptions = {}): AsyncGenerator<Uint8Array> {
    const target = parseTarget(arg)
    if (target.kind === 'cid') {
      const session = this.cidReader(target.cid, options.signal)
      yield * closingAfter(readContent(session, target.cid, options), session)
      return
    }
    const entry = await this.components.namespace.stat(target.path)
    if (entry.type === 'dir') throw new IsADirectoryError(`is a directory: ${entry.path}`)
    yield * this.catEntry(entry, options)
  }

  /**
   * The content of a file entry the caller holds already (the version it
   * names, read from its stripes or its cold copy as its pin says): no
   * second lookup of its path, and no newer version read under an older size.
   */
  async * catEntry (entry: Entry & { type: 'file' }, options: CatOptions = {}): AsyncGenerator<Uint8Array> {
    const cid = CID.parse(entry.cid)
    try {
      const session = this.reader(cid, { signal: options.signal, pin: entry.pin })
      yield * closingAfter(readContent(session, cid, options), session)
    } catch (err: any) {
      // a block of the file could be got nowhere, or its cold copy is altered or gone: `shoal status` says so (damage.ts)
      if (DAMAGE_ERRORS.has(err?.name)) this.damage.note({ path: entry.path, cid: entry.cid, by: 'read', at: Date.now(), what: `${String(err.name)}: ${String(err.message)}` })
      throw err
    }
    // the whole file read back: what a note said of it is no longer so
    if ((options.offset ?? 0) === 0 && options.length === undefined) this.damage.clear(entry.path, entry.cid)
  }

  /**
   * The leaves of a file entry by offset, its inner nodes read through a
   * session on its pin (the FUSE mount places its reads with it). That
   * session lives as long as the layout and is not closed: it reads inner
   * nodes only, one at a time when asked, and so never reads ahead.
   */
  async layoutOf (entry: Entry & { type: 'file' }, options: { signal?: AbortSignal } = {}): Promise<FileLayout> {
    const cid = CID.parse(entry.cid)
    return await FileLayout.open(this.reader(cid, { signal: options.signal, pin: entry.pin }), cid, options.signal)
  }

  /**
   * The DAG under a path or CID as a CARv1 byte stream: blocks this node
   * does not hold are fetched as a read would fetch them (the swarm, the
   * file's stripes, its cold copy), every one hash-checked.
   */
  async exportCar (arg: string, options: { signal?: AbortSignal } = {}): Promise<{ root: CID, car: AsyncGenerator<Uint8Array> }> {
    const { signal } = options
    const target = parseTarget(arg)
    const entry = target.kind === 'path' ? await this.components.namespace.stat(target.path) : undefined
    const root = entry?.type === 'file' ? CID.parse(entry.cid) : await this.cidOf(arg)
    const pin = entry?.type === 'file' ? entry.pin : undefined
    // each entry of a directory is read as `cat CID` (and `get`) reads it: through its own pin when a block is wanting
    // the sessions open when the CAR's first bytes are asked for, so a stream never read holds none
    const open = (scope: SessionScope): AsyncIterable<Uint8Array> => {
      const session = scope.add(pin === undefined ? this.cidReader(root, signal) : this.reader(root, { signal, pin }))
      return exportCar(session, root, { signal, entryReader: entry => scope.add(this.cidReader(entry, signal)) })
    }
    return { root, car: inSessionScope(open) }
  }

  /**
   * Import a CAR (all or nothing) and bind its roots into the namespace, so
   * that garbage collection keeps them (node/files/car-import.ts).
   */
  async importCar (source: AsyncIterable<Uint8Array>, options: CarImportOptions): Promise<CarImportResult> {
    const { blockstore, namespace, durability } = this.components
    const { exchange } = this.components
    return await importAndBind({ blockstore, namespace, durability, writing: async fn => await this.writing(fn), announce: root => { exchange?.announceSoon(root) } }, source, options)
  }

  /** Describe a path or CID. */
  async stat (arg: string, signal?: AbortSignal): Promise<FileInfo> {
    const target = parseTarget(arg)
    if (target.kind === 'path') {
      const entry = await this.components.namespace.stat(target.path)
      return await this.infoOf(entry)
    }
    const entry = unixfsOnly(await resolveEntry(this.cidReader(target.cid, signal), target.cid, signal))
    return {
      name: target.cid.toString(),
      type: entry.type === 'directory' ? 'dir' : 'file',
      cid: target.cid.toString(),
      size: entrySize(entry)
    }
  }

  /** Children of a directory (a namespace path or a UnixFS directory CID); a file lists as itself. */
  async ls (arg: string, signal?: AbortSignal): Promise<FileInfo[]> {
    const target = parseTarget(arg)
    if (target.kind === 'path') {
      const entry = await this.components.namespace.stat(target.path)
      if (entry.type === 'file') return [await this.infoOf(entry)]
      const children = await this.components.namespace.list(entry.path)
      const out: FileInfo[] = []
      for (const child of children) {
        out.push(await this.infoOf(child))
      }
      return out
    }
    // each entry is read as `cat CID` reads it (its own session: local first, then
    // the providers of that entry, then its pin), not through one session on the
    // directory: a tree mixes content of many origins, and a directory DAG each
    // node builds for itself from the namespace often has no provider at all
    const entry = unixfsOnly(await resolveEntry(this.cidReader(target.cid, signal), target.cid, signal))
    if (entry.type !== 'directory') return [{ name: target.cid.toString(), type: 'file', cid: target.cid.toString(), size: entrySize(entry) }]
    const links = []
    for await (const link of entry.entries({ signal })) links.push(link)
    // a child's type and size are in its root block: read several at once (each may be a
    // round trip to a peer: one at a time, 1,000 remote files took 11 s to list)
    return await mapAtOnce(links, LS_CONCURRENCY, async link => {
      // an entry that is no file or directory (a UnixFS symlink, which Kubo keeps in a tree) is listed all the same:
      // one such entry must not make its directory impossible to list
      const child = await resolveEntry(this.cidReader(link.cid, signal), link.cid, signal)
      return { name: link.name, type: child.type === 'directory' ? 'dir' : 'file', cid: link.cid.toString(), size: entrySize(child) }
    })
  }

  /**
   * Make a directory. With `startedAt` (when the caller began), a file shown
   * at `path` that arrived from another node after that moment is kept
   * beside the directory, its conflict copy (the directory wins, as when the
   * two are written at once), rather than refused with AlreadyExistsError;
   * with `parents` too, so is such a file at a parent (as `add` does), while
   * a file at a parent that was there then is still NotADirectoryError.
   */
  async mkdir (path: string, options: { parents?: boolean, mode?: number, startedAt?: number } = {}): Promise<FileInfo> {
    const { startedAt, ...rest } = options
    const { namespace } = this.components
    let besideFile = false
    let besideParentFiles = false
    if (startedAt !== undefined) {
      const existing = await namespace.lookup(path)
      besideFile = existing?.type === 'file' && existing.conflictOf === undefined && await this.arrivedAfter(existing.path, startedAt)
      // past the check, a file at a parent when the write takes its lock is one the caller never saw
      if (options.parents === true) {
        await this.besideUnseenParents(path, startedAt)
        besideParentFiles = true
      }
    }
    return await this.infoOf(await namespace.mkdir(path, { ...rest, besideFile, besideParentFiles }))
  }

  /** Move or rename. */
  async mv (from: string, to: string): Promise<FileInfo> {
    const entry = await this.components.namespace.move(from, to)
    return await this.infoOf(entry)
  }

  /**
   * Remove a path (the blocks stay until garbage collection); on a full disk,
   * the ballast is spent for it ({@link DiskGuard.freeing}). With
   * `startedAt` (the caller's start), what arrived from another node after
   * it is kept, a write concurrent with the removal, and said in `kept`.
   */
  async rm (path: string, options: { recursive?: boolean, startedAt?: number } = {}): Promise<RmResult> {
    // an add into the folder acknowledged while `rm -r` started was removed unseen (an operator's test)
    const seen = options.startedAt === undefined ? undefined : this.components.namespace.seenAt(options.startedAt)
    const remove = async (): Promise<RemoveResult> => await this.components.namespace.remove(path, { recursive: options.recursive, seen })
    const { kept } = await (this.components.disk?.freeing(`rm ${path}`, remove) ?? remove())
    return kept.length === 0 ? {} : { kept: kept.slice(0, MAX_KEPT_LISTED), keptCount: kept.length }
  }
}


/** A block service over what `Files` was given (a node passes its own). */
function defaultBlocks (components: FilesComponents): BlockReader {
  const { blockstore, exchange, logger, tiers, durability } = components
  const stripes = durability === undefined
    ? undefined
    : {
        holders: async (manifest: CID, shape: ManifestShape, signal?: AbortSignal) => await durability.holderView(manifest, shape, { signal, searchWhen: 'a-stripe-unreadable' }),
        rebuild: async (stripe: Stripe, k: number, m: number, shards: Map<number, Uint8Array>) => await durability.rebuildStripe(stripe, k, m, shards),
        self: durability.network.self
      }
  return new Blocks({ blockstore, exchange, logger, tiers, stripes })
}

/** The record of the file version `entry` with `pin`, its cold copy kept. */
function withPin (entry: Entry & { type: 'file' }, pin: FilePin): Omit<FileRecord, 'type'> {
  const next: FilePin = entry.pin?.cold === undefined ? pin : { ...pin, cold: entry.pin.cold }
  return { cid: entry.cid, size: entry.size, mode: entry.mode, mtime: entry.mtime, pin: next }
}

function pinInfo (entry: Entry): PinInfo {
  if (entry.type !== 'file') throw new IsADirectoryError(`${entry.path} is a directory`)
  const info: PinInfo = { path: entry.path, cid: entry.cid, size: entry.size, policy: entry.pin?.policy ?? 'none' }
  if (entry.pin?.manifest !== undefined) info.manifest = entry.pin.manifest
  const cold = entry.pin?.cold
  if (cold !== undefined) info.cold = { endpoint: cold.endpoint, bucket: cold.bucket, key: cold.carKey }
  return info
}

/** Bytes an add of `size` writes here: the content, plus its parity under a coded policy (written locally before placement). */
function localBytes (size: number, policy: string | undefined): number {
  const p = policy === undefined ? undefined : parsePolicy(policy)
  return p?.kind === 'ec' ? Math.ceil(size * (p.k + p.m) / p.k) : size
}
