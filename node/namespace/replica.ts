/**
 * One replica of the shared namespace: a Merkle-CRDT log of signed entries
 * with vector clocks, and the tree materialized from it.
 *
 * - Local writes (`putFile`, `mkdir`, `move`, `remove`) become entries whose
 *   ops name exactly the versions they supersede; they are applied like
 *   remote ones, in one fsynced batch with the heads and the clock.
 * - Remote entries are hash-, signature- and shape-checked, buffered until
 *   their causal past is applied, then applied in batches.
 * - The replica serves what a peer lacks by vector clock (one page per round
 *   trip, in causal order), snapshots its state as sharded dag-cbor blocks,
 *   prunes history every known member has seen, and bootstraps from a
 *   peer's snapshot when it is behind the peer's pruned history.
 *
 * The network, the clock and the store are injected, so simulations run the
 * same code on a virtual network with an in-memory store.
 *
 * @module
 */
import { checkPin, copyPin, storedPin, wirePin } from './pins.js'
import { CID } from 'multiformats/cid'
import {
  MAX_BATCH_ENTRIES, MAX_BLOCKS_WANT, MAX_ENTRY_BYTES, MAX_OPS, MAX_PARENTS, MAX_SHARD_PATHS, MAX_SNAPSHOT_BLOCK_BYTES,
  decodeEntry, decodeSnapshotRoot, decodeSnapshotShard, encodeEntry, encodeEntryBody,
  encodeSnapshotRoot, encodeSnapshotRootBody, encodeSnapshotShard,
  type Entry as LogEntry, type EntryBodyV2, type Op, type Pin, type PutOp, type SnapshotRoot, type SnapshotShard, type SnapshotVersion
} from '../../protocol/namespace.js'
import { cborCID } from '../blocks/verify.js'
import {
  AlreadyExistsError, DirectoryNotEmptyError, InvalidArgumentError, IsADirectoryError,
  NotADirectoryError, NotFoundError, ShoalError
} from '../errors.js'
import { covers, dominates, meet, merge, missing, weight, type Dot, type VectorClock } from './clock.js'
import { CLOCK_RANGE, LEGACY_CLOCK_KEY, LEGACY_MEMBERS_KEY, MEMBER_RANGE, authorOfClockKey, clockKey, memberKey, peerOfMemberKey } from './rows.js'
import { Txn, decodeJSON, encodeJSON, type KV } from './kv.js'
import { baseName, isWithin, joinPath, normalizePath, parentOf } from './paths.js'
import { TreeWriter, childRange, pathOfVisibleKey, versionsKey, visibleKey, type PathState, type Version, type Visible } from './tree.js'
import { LEGACY_RANGE, NamespaceFormatError, parseLegacyRecord, parseStoredHeads, type LegacyRecord } from './upgrade.js'
import { TRUST_EVERYONE, WarnLimit, type TrustPolicy } from './trust.js'
import type { Signer, Verifier } from './identity.js'
import { RECOVERING_KEY, Recovery, type RecoveryState, type RecoveryTimers } from './recovery.js'
import type { ConflictInfo, Entry, FileRecord, MkdirOptions, Namespace, RemoveOptions } from './index.js'
import type { Logger } from '../logger.js'

/** Multicodec of dag-cbor. */
export const DAG_CBOR = 0x71

export { cborCID }

/** A snapshot that failed its checks. */
export class InvalidSnapshotError extends ShoalError {
  override name = 'InvalidSnapshotError'
  override readonly status = 502
}

/** A snapshot signed by an author this replica does not trust: refused before its shards are fetched. */
export class UntrustedSnapshotError extends InvalidSnapshotError {
  override name = 'UntrustedSnapshotError'
}

/** Time source (virtual in simulations). */
export interface WallClock { now: () => number }

/** What a replica is built from. */
export interface ReplicaComponents {
  /** Where state lives (LevelDB in production). */
  kv: KV
  /** Signs this replica's entries; its id is the author. */
  signer: Signer
  /** Checks other authors' signatures. */
  verifier: Verifier
  clock: WallClock
  logger: Logger
  /** Whose entries and snapshots are applied (docs/namespace.md, "Trusted writers"). @default every author */
  trust?: TrustPolicy
  /** Timers a write waits on while the replica recovers its own past writes. @default the process's timers */
  timers?: RecoveryTimers
}

/** Tuning. */
export interface ReplicaOptions {
  /** A member not heard from for this long no longer holds back compaction (ms). @default 7 days */
  memberTimeout?: number
  /** Compact once this many entries became stable since the last compaction. @default 10000 */
  compactAfter?: number
  /** Most entries held while waiting for their causal past. @default 100000 */
  maxPending?: number
  /** Paths per snapshot shard. @default 2048 */
  shardPaths?: number
  /**
   * An empty store that lacks the new-store marker (`m!new`, written
   * by the repo's `init`, recovery.ts) belongs to an identity that existed before
   * (a lost or replaced store): recover this node's own past writes from a
   * peer before the first local write. The daemon sets it; embedders that
   * create stores without `init` leave it off. @default false
   */
  recoverEmptyStore?: boolean
  /**
   * Never recover (the lone-node way out, `SHOAL_NAMESPACE_RECOVERY=skip`):
   * a stored recovery is dropped and writes go ahead at once, at the risk of
   * reusing a seq this node used before. @default false
   */
  skipRecovery?: boolean
  /** Longest a local write waits for recovery before {@link NamespaceRecoveringError} (ms). @default 30000 */
  recoveryTimeout?: number
}

/** What {@link Replica.receive} did. */
export interface ReceiveResult {
  applied: number
  duplicates: number
  rejected: number
  /** Entries dropped because their author is not trusted (never stored). */
  untrusted: number
  /** Entries still waiting for their causal past. */
  pending: number
}

/** A page of what a peer lacks, or the snapshot it must start from. */
export type PullAnswer =
  | { type: 'entries', entries: Uint8Array[], more: boolean }
  | { type: 'snapshot', root: CID, clock: VectorClock }

/** What a replica's state looks like from outside. */
export interface ReplicaState {
  clock: VectorClock
  heads: CID[]
  /** History before this clock has been pruned. */
  pruned: VectorClock
}

interface Member { clock: VectorClock, seen: number }

interface Pending { cid: CID, entry: LogEntry, bytes: Uint8Array }

interface SnapshotMeta { root: string, clock: VectorClock, blocks: string[] }

/** The mutable state one batch works on; adopted only after its commit. */
class Batch {
  readonly txn: Txn
  readonly tree: TreeWriter
  readonly clock: VectorClock
  readonly heads: Map<string, Dot>
  /** Authors whose counter this batch changed: only their clock rows are written. */
  readonly changed = new Set<string>()
  /** Entries applied so far, pruned ones included (the sum of {@link clock}): each applied entry's place in causal order. */
  total: number
  applied: Uint8Array[] = []
  /** The new {@link Replica.aheadState} when an entry of this batch changed it. */
  ahead?: VectorClock

  constructor (kv: KV, clock: VectorClock, heads: Map<string, Dot>) {
    this.txn = new Txn(kv)
    this.tree = new TreeWriter(this.txn)
    this.clock = { ...clock }
    this.heads = new Map(heads)
    this.total = weight(clock)
  }
}

const SEQ_WIDTH = 15
function seqKey (author: string, seq: number): string { return `s!${author}!${String(seq).padStart(SEQ_WIDTH, '0')}` }
/** Paths where the version of `dot` was superseded before this replica applied it (see {@link Replica.apply}). */
function supersededKey (dot: Dot): string { return `r!${dot[0]}!${String(dot[1]).padStart(SEQ_WIDTH, '0')}` }
const SUPERSEDED_RANGE = { gt: 'r!', lt: 'r"' } as const
function dotOfSupersededKey (key: string): Dot {
  const i = key.lastIndexOf('!')
  return [key.slice(2, i), Number(key.slice(i + 1))]
}

const DAY = 24 * 3600 * 1000
/** Members heard from are saved at most this often (ms), new members with the next commit. */
const MEMBER_SAVE_MS = 60_000

/** One replica of the namespace. */
export class Replica implements Namespace {
  private readonly kv: KV
  private readonly log: Logger
  private readonly options: Required<Omit<ReplicaOptions, 'recoverEmptyStore' | 'skipRecovery' | 'recoveryTimeout'>>
  private readonly recovery: Recovery
  private clockState: VectorClock = {}
  /** Heads (entry CIDs) with the dot of each. */
  private headState = new Map<string, Dot>()
  private prunedState: VectorClock = {}
  /**
   * Per untrusted author, the highest of its entries that an applied entry
   * depends on ({@link ready}): its entries up to there are in the past of an
   * applied entry, so should they arrive (the author trusted later), none
   * becomes a head.
   */
  private aheadState: VectorClock = {}
  private readonly members = new Map<string, Member>()
  /** Members whose stored row is behind memory: new ones are written with the next commit, the others at most every {@link MEMBER_SAVE_MS}. */
  private readonly unsavedMembers = new Set<string>()
  private readonly newMembers = new Set<string>()
  private membersSavedAt = 0
  private readonly pending = new Map<string, Map<number, Pending>>()
  private pendingCount = 0
  private queue: Promise<unknown> = Promise.resolve()
  private readonly listeners = new Set<(entries: Uint8Array[]) => void>()
  private readonly changeListeners = new Set<() => void>()
  private opened = false
  /** Entries rejected since start (bad signature, shape, equivocation). */
  rejected = 0
  /** Entries dropped since start because their author is not trusted (never stored, never applied). */
  untrusted = 0
  /** Whose entries and snapshots this replica applies. */
  readonly trust: TrustPolicy
  private readonly untrustedWarnings = new WarnLimit()
  /** Authors with versions superseded here before they were applied (`r!` keys). */
  private readonly supersededAuthors = new Set<string>()

  constructor (private readonly components: ReplicaComponents, options: ReplicaOptions = {}) {
    this.kv = components.kv
    this.log = components.logger
    this.trust = components.trust ?? TRUST_EVERYONE
    this.options = {
      memberTimeout: options.memberTimeout ?? 7 * DAY,
      compactAfter: options.compactAfter ?? 10_000,
      maxPending: options.maxPending ?? 100_000,
      shardPaths: Math.min(options.shardPaths ?? 2048, MAX_SHARD_PATHS)
    }
    this.recoveryOptions = { empty: options.recoverEmptyStore ?? false, skip: options.skipRecovery ?? false }
    const timers: RecoveryTimers = components.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => { clearTimeout(h as NodeJS.Timeout) } }
    this.recovery = new Recovery({ timers, timeout: options.recoveryTimeout ?? 30_000, where: this.kv.location ?? 'the namespace store' })
  }

  private readonly recoveryOptions: { empty: boolean, skip: boolean }

  /**
   * True while this replica recovers its own past writes from its peers
   * (local writes wait; docs/namespace.md, "A node that lost its store").
   */
  get recovering (): boolean { return this.recovery.active }

  /** This replica's author id. */
  get id (): string { return this.components.signer.id }

  /**
   * Open the store and load clock, heads, pruned frontier and members. A
   * store written by an older build is upgraded first, atomically: the
   * single-node namespace's records become local writes of this replica, and
   * a development build's heads get their dots from the stored entries
   * (docs/namespace.md, "On-disk format and upgrades").
   *
   * @throws {NamespaceFormatError} when the store cannot be upgraded without losing data (nothing is changed)
   */
  async open (): Promise<void> {
    if (this.opened) return
    await this.kv.open()
    try {
      await this.openRecovery()
      const legacyClock = await this.meta<VectorClock>('clock')
      const legacyMembers = await this.meta<Record<string, Member>>('members')
      this.clockState = legacyClock ?? await this.loadClock()
      this.prunedState = await this.meta<VectorClock>('pruned') ?? {}
      this.aheadState = await this.meta<VectorClock>('ahead') ?? {}
      if (legacyMembers !== undefined) for (const [peer, m] of Object.entries(legacyMembers)) this.members.set(peer, m)
      else for await (const [key, value] of this.kv.iterate({ ...MEMBER_RANGE })) this.members.set(peerOfMemberKey(key), decodeJSON<Member>(value))
      this.membersSavedAt = this.components.clock.now()
      this.headState = await this.loadHeads()
      // after the checks that refuse a store without changing it
      if (legacyClock !== undefined || legacyMembers !== undefined) await this.upgradeRows(legacyClock, legacyMembers)
      for await (const [key] of this.kv.iterate({ ...SUPERSEDED_RANGE })) this.supersededAuthors.add(dotOfSupersededKey(key)[0])
      await this.migrateSingleNode()
    } catch (err) {
      this.members.clear()
      this.supersededAuthors.clear()
      await this.kv.close().catch(() => {})
      throw err
    }
    this.opened = true
  }

  async close (): Promise<void> {
    if (!this.opened) return
    this.opened = false
    await this.queue.catch(() => {})
    await this.kv.batch(this.memberRows(), true)
    await this.kv.close()
  }

  /** Called with the encoded entries of every local write, after it is durable. */
  onLocalEntries (listener: (entries: Uint8Array[]) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Called after remote entries or a snapshot changed the tree. */
  onRemoteChange (listener: () => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  /** Clock, heads and pruned frontier. */
  state (): ReplicaState {
    return { clock: { ...this.clockState }, heads: sortedHeads(this.headState).map(h => CID.parse(h)), pruned: { ...this.prunedState } }
  }

  // ---------------------------------------------------------------- reads

  async lookup (path: string): Promise<Entry | undefined> {
    const p = normalizePath(path)
    if (p === '/') return { type: 'dir', mode: 0o755, mtime: 0, path: '/', name: '' }
    const bytes = await this.kv.get(visibleKey(p))
    return bytes === undefined ? undefined : toEntry(p, decodeJSON<Visible>(bytes))
  }

  async stat (path: string): Promise<Entry> {
    const entry = await this.lookup(path)
    if (entry === undefined) throw new NotFoundError(`no such file or directory: ${path}`)
    return entry
  }

  async list (path: string): Promise<Entry[]> {
    const dir = await this.stat(path)
    if (dir.type !== 'dir') throw new NotADirectoryError(`not a directory: ${dir.path}`)
    const out: Entry[] = []
    for await (const [key, value] of this.kv.iterate(childRange(dir.path))) {
      out.push(toEntry(pathOfVisibleKey(key), decodeJSON<Visible>(value)))
    }
    return out
  }

  async * walk (path: string): AsyncGenerator<Entry> {
    const root = await this.stat(path)
    if (root.type !== 'dir') return
    const stack = (await this.list(root.path)).reverse()
    while (stack.length > 0) {
      const entry = stack.pop() as Entry
      yield entry
      if (entry.type === 'dir') stack.push(...(await this.list(entry.path)).reverse())
    }
  }

  /** Every conflict copy, by path. */
  async conflicts (): Promise<ConflictInfo[]> {
    const out: ConflictInfo[] = []
    for await (const [key] of this.kv.iterate({ gt: 'c!', lt: 'c"' })) {
      const path = key.slice(2)
      const bytes = await this.kv.get(versionsKey(path))
      if (bytes === undefined) continue
      const state = decodeJSON<PathState>(bytes)
      for (const copy of state.copies) {
        const record = await this.kv.get(visibleKey(copy))
        if (record === undefined) continue
        const v = decodeJSON<Visible>(record)
        out.push({ path, copy, author: v.author ?? '', time: v.time ?? 0, cid: v.cid ?? '', size: v.size ?? 0 })
      }
    }
    return out
  }

  /**
   * Every visible file entry, conflict copies included: one scan of the
   * visible-name index, grouped by directory.
   */
  async * files (): AsyncGenerator<Entry> {
    for await (const [key, value] of this.kv.iterate({ gt: 't!', lt: 't"' })) {
      const v = decodeJSON<Visible>(value)
      if (v.type === 'file') yield toEntry(pathOfVisibleKey(key), v)
    }
  }

  private async visible (path: string): Promise<Visible | undefined> {
    const bytes = await this.kv.get(visibleKey(path))
    return bytes === undefined ? undefined : decodeJSON<Visible>(bytes)
  }

  // --------------------------------------------------------------- writes

  /**
   * Create or replace the file at `path`: the new version replaces the one
   * this replica sees there, and carries `record.pin` (or no pin). Changing
   * a file's pin is a put of the same record with another pin.
   *
   * @throws {IsADirectoryError} {NotADirectoryError} {InvalidArgumentError} (a bad pin)
   */
  async putFile (path: string, record: Omit<FileRecord, 'type'>): Promise<Entry> {
    const p = normalizePath(path)
    if (p === '/') throw new IsADirectoryError('cannot write a file at /')
    const pin = checkPin(record.pin)
    return await this.writing(async () => {
      const ops = new OpSet()
      await this.putOps(ops, p, record, pin)
      await this.commitLocal(ops.list())
      return await this.stat(p)
    })
  }

  /** The ops of a put at `p`: missing parents, the put, replacing what this replica sees there. */
  private async putOps (ops: OpSet, p: string, record: Omit<FileRecord, 'type'>, pin: Pin | undefined): Promise<void> {
    await this.parentOps(ops, p, true, record.mtime)
    const current = await this.visible(p)
    if (current?.type === 'dir') throw new IsADirectoryError(`is a directory: ${p}`)
    if (current !== undefined) ops.remove(current.conflictOf ?? p, current.dots)
    const put: PutOp = { op: 'put', path: p, cid: CID.parse(record.cid), size: record.size, mode: record.mode, mtime: record.mtime, replaces: [] }
    if (pin !== undefined) put.pin = pin
    ops.create(put)
  }

  /**
   * Create or replace several files as one write: each file is a put op as
   * {@link putFile} makes it (its missing parents created, the version this
   * replica sees there replaced), and all of them go into one entry (several
   * when they exceed an entry's limits), applied in one fsynced batch. A path
   * given twice takes its last record. All or nothing.
   *
   * @throws {IsADirectoryError} {NotADirectoryError} {InvalidArgumentError} for any of them (then none is written)
   */
  async putFiles (files: ReadonlyArray<{ path: string, record: Omit<FileRecord, 'type'> }>): Promise<Entry[]> {
    const items = files.map(({ path, record }) => {
      const p = normalizePath(path)
      if (p === '/') throw new IsADirectoryError('cannot write a file at /')
      return { p, record, pin: checkPin(record.pin) }
    })
    if (items.length === 0) return []
    const filePaths = new Set(items.map(i => i.p))
    return await this.writing(async () => {
      const ops = new OpSet()
      for (const { p, record, pin } of items) {
        for (let dir = parentOf(p); dir !== '/'; dir = parentOf(dir)) {
          if (filePaths.has(dir)) throw new NotADirectoryError(`not a directory: ${dir} (a file in the same write)`)
        }
        await this.putOps(ops, p, record, pin)
      }
      await this.commitLocal(ops.list())
      const out: Entry[] = []
      for (const { p } of items) out.push(await this.stat(p))
      return out
    })
  }

  async mkdir (path: string, options: MkdirOptions = {}): Promise<Entry> {
    const p = normalizePath(path)
    const parents = options.parents === true
    return await this.writing(async () => {
      const existing = await this.lookup(p)
      if (existing !== undefined) {
        if (existing.type === 'dir' && parents) return existing
        throw new AlreadyExistsError(`already exists: ${p}`)
      }
      const mtime = options.mtime ?? this.components.clock.now()
      const ops = new OpSet()
      await this.parentOps(ops, p, parents, mtime)
      ops.create({ op: 'mkdir', path: p, mode: options.mode ?? 0o755, mtime, replaces: [] })
      await this.commitLocal(ops.list())
      return await this.stat(p)
    })
  }

  async move (from: string, to: string): Promise<Entry> {
    const src = normalizePath(from)
    let dst = normalizePath(to)
    if (src === '/') throw new InvalidArgumentError('cannot move /')
    return await this.writing(async () => {
      const entry = await this.stat(src)
      const target = await this.lookup(dst)
      if (target?.type === 'dir') dst = joinPath(dst, entry.name)
      if (dst === src) return entry
      if (isWithin(dst, src)) throw new InvalidArgumentError(`cannot move ${src} into itself (${dst})`)
      if (await this.lookup(dst) !== undefined) throw new AlreadyExistsError(`already exists: ${dst}`)
      const parent = await this.lookup(parentOf(dst))
      if (parent === undefined) throw new NotFoundError(`no such directory: ${parentOf(dst)}`)
      if (parent.type !== 'dir') throw new NotADirectoryError(`not a directory: ${parent.path}`)
      const ops = new OpSet()
      const items: Entry[] = [entry]
      if (entry.type === 'dir') for await (const below of this.walk(src)) items.push(below)
      for (const item of items) {
        const record = await this.visible(item.path) as Visible
        ops.remove(record.conflictOf ?? item.path, record.dots)
        const path = dst + item.path.slice(src.length)
        if (record.type === 'dir') ops.create({ op: 'mkdir', path, mode: record.mode, mtime: record.mtime, replaces: [] })
        else {
          // a moved file keeps its pin
          const put: PutOp = { op: 'put', path, cid: CID.parse(record.cid as string), size: record.size ?? 0, mode: record.mode, mtime: record.mtime, replaces: [] }
          if (record.pin !== undefined) put.pin = wirePin(record.pin)
          ops.create(put)
        }
      }
      await this.commitLocal(ops.list())
      return await this.stat(dst)
    })
  }

  async remove (path: string, options: RemoveOptions = {}): Promise<void> {
    const p = normalizePath(path)
    if (p === '/') throw new InvalidArgumentError('cannot remove /')
    await this.writing(async () => {
      const entry = await this.stat(p)
      const ops = new OpSet()
      const record = await this.visible(p) as Visible
      ops.remove(record.conflictOf ?? p, record.dots)
      if (entry.type === 'dir') {
        for await (const below of this.walk(p)) {
          if (options.recursive !== true) throw new DirectoryNotEmptyError(`directory not empty: ${p} (use recursive removal)`)
          const r = await this.visible(below.path) as Visible
          ops.remove(r.conflictOf ?? below.path, r.dots)
        }
      }
      await this.commitLocal(ops.list())
    })
  }

  /** mkdir ops for the missing parents of `path`. */
  private async parentOps (ops: OpSet, path: string, create: boolean, mtime: number): Promise<void> {
    const missingDirs: string[] = []
    for (let dir = parentOf(path); dir !== '/'; dir = parentOf(dir)) {
      const record = await this.visible(dir)
      if (record?.type === 'dir') break
      if (record !== undefined) throw new NotADirectoryError(`not a directory: ${dir}`)
      if (!create) throw new NotFoundError(`no such directory: ${dir}`)
      missingDirs.push(dir)
    }
    for (const dir of missingDirs.reverse()) ops.create({ op: 'mkdir', path: dir, mode: 0o755, mtime, replaces: [] })
  }

  /**
   * Turn ops into signed entries (split to fit), apply them in one batch,
   * tell listeners. `alsoInBatch` adds writes of its own to the same batch.
   */
  private async commitLocal (ops: Op[], alsoInBatch?: (txn: Txn) => void): Promise<void> {
    if (ops.length === 0 && alsoInBatch === undefined) return
    const batch = new Batch(this.kv, this.clockState, this.headState)
    const me = this.id
    for (const chunk of splitOps(ops)) {
      const seq = (batch.clock[me] ?? 0) + 1
      const parents = sortedHeads(batch.heads).slice(0, MAX_PARENTS)
      const body: EntryBodyV2 = {
        v: 2,
        author: me,
        seq,
        time: this.components.clock.now(),
        parents: parents.map(h => CID.parse(h)),
        deps: parents.map(h => batch.heads.get(h) as Dot),
        ops: chunk
      }
      const sig = await this.components.signer.sign(encodeEntryBody(body))
      const entry: LogEntry = { ...body, sig }
      const bytes = encodeEntry(entry)
      await this.apply(batch, cborCID(bytes), entry, bytes)
    }
    alsoInBatch?.(batch.txn)
    await this.commit(batch)
    if (batch.applied.length > 0) for (const listener of this.listeners) listener(batch.applied)
  }

  // ------------------------------------------------------------ applying

  /**
   * Apply one entry whose causal past is applied — except entries of authors
   * this replica does not trust ({@link ready}). So an op may replace a
   * version this replica has not applied yet (it was written by an author
   * not trusted when the op arrived): the tree has nothing to drop, and the
   * dot is remembered as superseded at that path (`r!`), so that the version
   * never becomes live should its entry arrive later (its author trusted
   * again), as if the entries had been applied in causal order.
   */
  private async apply (batch: Batch, cid: CID, entry: LogEntry, bytes: Uint8Array): Promise<void> {
    const superseded = await this.takeSuperseded(batch.txn, [entry.author, entry.seq])
    // what it depends on by authors not applied here, noted before its ops are placed in its past
    const ahead = batch.ahead ?? this.aheadState
    const skipped = skippedDeps(entry, batch.clock)
    if (skipped !== undefined) batch.ahead = merge(ahead, skipped)
    // a v2 entry does not carry its clock: a replaced dot this replica cannot place in its past is not taken as superseded (see inKnownPast)
    const replaced = (dots: Dot[]): Dot[] => entry.v === 1 ? dots : dots.filter(d => this.inKnownPast(batch, d))
    for (const op of entry.ops) {
      await this.noteSuperseded(batch, op.path, replaced(op.replaces))
      if (op.op === 'del') {
        await batch.tree.change(op.path, op.replaces)
      } else {
        const version: Version = op.op === 'put'
          ? { author: entry.author, seq: entry.seq, time: entry.time, type: 'file', cid: op.cid.toString(), size: op.size, mode: op.mode, mtime: op.mtime }
          : { author: entry.author, seq: entry.seq, time: entry.time, type: 'dir', mode: op.mode, mtime: op.mtime }
        if (op.op === 'put' && op.pin !== undefined) version.pin = storedPin(op.pin)
        await batch.tree.change(op.path, op.replaces, superseded.has(op.path) ? undefined : version)
      }
    }
    const key = cid.toString()
    batch.txn.putBytes('e!' + key, bytes)
    batch.clock[entry.author] = entry.seq
    batch.changed.add(entry.author)
    batch.total++
    // applied in causal order, so the running count orders entries causally (pull serves by it)
    batch.txn.put(seqKey(entry.author, entry.seq), { cid: key, w: batch.total })
    for (const p of entry.parents) batch.heads.delete(p.toString())
    if (!covers(ahead, [entry.author, entry.seq])) batch.heads.set(key, [entry.author, entry.seq])
    batch.applied.push(bytes)
    this.noteAuthor(entry)
  }

  /** Remember the dots of `replaces` this replica has not applied yet as superseded at `path`. */
  private async noteSuperseded (batch: Batch, path: string, replaces: Dot[]): Promise<void> {
    for (const dot of replaces) {
      if (covers(batch.clock, dot)) continue
      const key = supersededKey(dot)
      const paths = await batch.txn.get<string[]>(key) ?? []
      if (!paths.includes(path)) batch.txn.put(key, [...paths, path])
      this.supersededAuthors.add(dot[0])
    }
  }

  /**
   * True when `dot` can be placed in the past of an entry being applied in
   * `batch`: applied here, or by an author this replica does not trust and
   * no further than what applied entries were seen to depend on. An op of a
   * v2 entry naming a dot beyond that (a version nobody here has heard of)
   * cannot have seen it: that name is ignored rather than remembered as
   * superseded, so no member can hide another author's future writes.
   */
  private inKnownPast (batch: Batch, dot: Dot): boolean {
    return covers(batch.clock, dot) || covers(batch.ahead ?? this.aheadState, dot)
  }

  /**
   * Why a ready v2 entry cannot be applied, if it cannot: a parent whose
   * entry this replica holds under the dot the entry names must be that
   * entry (the dot and the hash link agree). Pruned parents are not checked.
   */
  private async badLinks (batch: Batch, entry: LogEntry): Promise<string | undefined> {
    if (entry.v !== 2) return undefined
    for (const [i, dep] of entry.deps.entries()) {
      if (!covers(batch.clock, dep) || covers(this.prunedState, dep)) continue
      const row = await batch.txn.get<{ cid: string }>(seqKey(dep[0], dep[1]))
      if (row !== undefined && row.cid !== entry.parents[i].toString()) return `parent ${entry.parents[i].toString()} is not the entry [${dep[0]}, ${dep[1]}] it names`
    }
    return undefined
  }

  /** The paths where the version of `dot` was superseded before it arrived (forgotten from now on). */
  private async takeSuperseded (txn: Txn, dot: Dot): Promise<Set<string>> {
    if (!this.supersededAuthors.has(dot[0])) return new Set()
    const key = supersededKey(dot)
    const paths = await txn.get<string[]>(key)
    if (paths === undefined) return new Set()
    txn.del(key)
    return new Set(paths)
  }

  private async commit (batch: Batch): Promise<void> {
    const recovered = this.recovery.done(batch.clock[this.id] ?? 0)
    if (recovered) batch.txn.del(RECOVERING_KEY)
    for (const author of batch.changed) batch.txn.put(clockKey(author), batch.clock[author])
    batch.txn.put('m!heads', [...batch.heads])
    for (const peer of this.newMembers) this.saveMemberRow(batch.txn, peer)
    this.newMembers.clear()
    if (batch.ahead !== undefined) batch.txn.put('m!ahead', batch.ahead)
    await batch.txn.commit(true)
    this.clockState = batch.clock
    this.headState = batch.heads
    if (batch.ahead !== undefined) this.aheadState = batch.ahead
    if (recovered) this.endRecovery()
  }

  /**
   * Take entries from a peer: check each (canonical dag-cbor, shape, a
   * trusted author, signature, no second entry for one author and seq), hold
   * those whose causal past is missing, apply every one that is ready.
   */
  async receive (list: Uint8Array[], from?: string): Promise<ReceiveResult> {
    const result: ReceiveResult = { applied: 0, duplicates: 0, rejected: 0, untrusted: 0, pending: 0 }
    const fresh: Pending[] = []
    for (const bytes of list) {
      const checked = await this.check(bytes, from)
      if (checked === 'duplicate') result.duplicates++
      else if (checked === 'untrusted') result.untrusted++
      else if (checked === undefined) result.rejected++
      else fresh.push(checked)
    }
    await this.exclusive(async () => {
      for (const p of fresh) this.hold(p)
      result.applied = await this.drain()
    })
    result.pending = this.pendingCount
    if (result.applied > 0) for (const l of this.changeListeners) l()
    return result
  }

  /**
   * Check one encoded entry; undefined when rejected. An entry by an author
   * this replica does not trust (now) is dropped here, before anything else
   * is done with it.
   */
  private async check (bytes: Uint8Array, from?: string): Promise<Pending | 'duplicate' | 'untrusted' | undefined> {
    let entry: LogEntry
    try {
      // size limit and canonical form (one CID per entry) are the decoder's
      entry = decodeEntry(bytes)
    } catch (err: any) {
      return this.reject(from, undefined, err?.message ?? String(err))
    }
    if (!this.trust.trusts(entry.author)) return this.distrust(entry.author, 1, from)
    const cid = cborCID(bytes)
    const held = this.pending.get(entry.author)?.get(entry.seq)
    if (held !== undefined) return held.cid.equals(cid) ? 'duplicate' : this.reject(from, cid, `second entry ${entry.seq} by ${entry.author}`)
    if (covers(this.clockState, [entry.author, entry.seq])) {
      const known = await this.kv.get(seqKey(entry.author, entry.seq))
      if (known !== undefined && decodeJSON<{ cid: string }>(known).cid !== cid.toString()) {
        if (entry.author === this.id) this.log.error({ from, seq: entry.seq }, 'a peer holds another entry of this node with a seq this node used: this node reused one of its own past seqs (a store lost or restored from a backup while writes went on); those writes diverge')
        return this.reject(from, cid, `second entry ${entry.seq} by ${entry.author}`)
      }
      return 'duplicate'
    }
    if (!await this.components.verifier(entry.author, encodeEntryBody(entry), entry.sig)) {
      return this.reject(from, cid, `bad signature by ${entry.author}`)
    }
    // one of this node's own past entries that its store lacks: it is behind its own writes
    if (entry.author === this.id && from !== undefined) this.heardSelf(entry.seq, from)
    return { cid, entry, bytes }
  }

  private reject (from: string | undefined, cid: CID | undefined, reason: string): undefined {
    this.rejected++
    this.log.warn({ from, cid: cid?.toString(), reason }, 'namespace entry rejected')
    return undefined
  }

  /** Count `n` entries by `author` dropped as untrusted; log it, at most once a minute per author. */
  private distrust (author: string, n: number, from?: string): 'untrusted' {
    this.untrusted += n
    const suppressed = this.untrustedWarnings.take(author, this.components.clock.now())
    if (suppressed !== undefined) this.log.warn({ from, author, dropped: n, suppressed }, 'namespace entries by an untrusted author dropped')
    return 'untrusted'
  }

  private hold (p: Pending): void {
    if (covers(this.clockState, [p.entry.author, p.entry.seq])) return
    let byAuthor = this.pending.get(p.entry.author)
    if (byAuthor === undefined) {
      byAuthor = new Map()
      this.pending.set(p.entry.author, byAuthor)
    }
    if (byAuthor.has(p.entry.seq)) return
    if (this.pendingCount >= this.options.maxPending) return
    byAuthor.set(p.entry.seq, p)
    this.pendingCount++
  }

  /**
   * Apply every held entry whose causal past is applied, in batches. Held
   * entries of an author no longer trusted are dropped.
   */
  private async drain (): Promise<number> {
    let applied = 0
    let batch = new Batch(this.kv, this.clockState, this.headState)
    let progress = true
    while (progress) {
      progress = false
      for (const [author, byAuthor] of this.pending) {
        if (!this.trust.trusts(author)) {
          this.pending.delete(author)
          this.pendingCount -= byAuthor.size
          this.distrust(author, byAuthor.size)
          continue
        }
        for (;;) {
          const next = byAuthor.get((batch.clock[author] ?? 0) + 1)
          if (next === undefined || !ready(next.entry, batch.clock, this.trust)) break
          byAuthor.delete(next.entry.seq)
          this.pendingCount--
          const bad = await this.badLinks(batch, next.entry)
          if (bad !== undefined) {
            // its author's later entries never become ready either: they wait behind the gap
            this.reject(undefined, next.cid, bad)
            break
          }
          await this.apply(batch, next.cid, next.entry, next.bytes)
          applied++
          progress = true
          if (batch.applied.length >= 1000) {
            await this.commit(batch)
            batch = new Batch(this.kv, this.clockState, this.headState)
          }
        }
        // what the clock already covers will never apply: drop it
        for (const seq of byAuthor.keys()) {
          if (seq <= (batch.clock[author] ?? 0)) { byAuthor.delete(seq); this.pendingCount-- }
        }
        if (byAuthor.size === 0) this.pending.delete(author)
      }
    }
    if (batch.applied.length > 0) await this.commit(batch)
    return applied
  }

  // --------------------------------------------------------------- serving

  /** What a peer with clock `remote` lacks: one page in causal order, or the snapshot to start from. */
  async pull (remote: VectorClock, limit: number, maxBytes = 3 * 1024 * 1024): Promise<PullAnswer> {
    return await this.exclusive(async () => {
      for (const [author, n] of Object.entries(this.prunedState)) {
        if ((remote[author] ?? 0) < n) {
          const snap = await this.meta<SnapshotMeta>('snapshot')
          if (snap !== undefined) return { type: 'snapshot' as const, root: CID.parse(snap.root), clock: snap.clock }
        }
      }
      limit = Math.max(1, Math.min(limit, MAX_BATCH_ENTRIES))
      const candidates: Array<{ cid: string, w: number }> = []
      for (const [author, n] of Object.entries(this.clockState)) {
        const from = Math.max(remote[author] ?? 0, this.prunedState[author] ?? 0)
        if (from >= n) continue
        for await (const [, value] of this.kv.iterate({ gt: seqKey(author, from), lte: seqKey(author, n), limit })) {
          candidates.push(decodeJSON<{ cid: string, w: number }>(value))
        }
      }
      candidates.sort((a, b) => a.w - b.w)
      const total = missing(this.clockState, merge(remote, this.prunedState))
      const entries: Uint8Array[] = []
      let bytes = 0
      for (const c of candidates.slice(0, limit)) {
        const entry = await this.kv.get('e!' + c.cid)
        if (entry === undefined) break
        if (entries.length > 0 && bytes + entry.byteLength > maxBytes) break
        entries.push(entry)
        bytes += entry.byteLength
      }
      return { type: 'entries' as const, entries, more: entries.length < total }
    })
  }

  /**
   * Snapshot blocks this replica holds: the longest prefix of `cids` that it
   * holds and that fits in `maxBytes` (at least one block when it has the
   * first). The asker asks again for the rest.
   */
  async blocks (cids: CID[], maxBytes = 4 * 1024 * 1024): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    let total = 0
    for (const cid of cids.slice(0, MAX_BLOCKS_WANT)) {
      const bytes = await this.kv.get('b!' + cid.toString())
      if (bytes === undefined) break
      if (out.length > 0 && total + bytes.byteLength > maxBytes) break
      out.push(bytes)
      total += bytes.byteLength
    }
    return out
  }

  // ------------------------------------------------- members and compaction

  /**
   * Record what a peer has seen (from its gossip or a sync exchange). Only
   * trusted peers are members: a stranger's clock is neither kept nor stored,
   * so it cannot hold back compaction.
   */
  noteMember (peer: string, clock: VectorClock): void {
    if (!this.trust.trusts(peer)) return
    if (peer !== this.id) this.heardSelf(clock[this.id] ?? 0, peer)
    const m = this.members.get(peer)
    if (m === undefined) this.newMembers.add(peer)
    this.unsavedMembers.add(peer)
    const now = this.components.clock.now()
    if (m === undefined) this.members.set(peer, { clock: { ...clock }, seen: now })
    else {
      // in place: a member's clock has one counter per author, copying it per message would cost O(authors)
      for (const [author, n] of Object.entries(clock)) if ((m.clock[author] ?? 0) < n) m.clock[author] = n
      m.seen = now
    }
  }

  /** An author's entry tells what it had seen when it wrote it (for a v2 entry: its parents' dots and its own). */
  private noteAuthor (entry: LogEntry): void {
    if (entry.author === this.id) return
    const seen = entry.v === 1 ? entry.clock : Object.fromEntries([...dependencies(entry), [entry.author, entry.seq]])
    const m = this.members.get(entry.author)
    if (m === undefined || !dominates(m.clock, seen)) this.noteMember(entry.author, seen)
  }

  /** The stored rows of the members whose row is behind memory (all of them are written). */
  private memberRows (): Array<{ type: 'put', key: string, value: Uint8Array }> {
    const rows = [...this.unsavedMembers].map(peer => ({ type: 'put' as const, key: memberKey(peer), value: encodeJSON(this.members.get(peer)) }))
    this.unsavedMembers.clear()
    this.newMembers.clear()
    this.membersSavedAt = this.components.clock.now()
    return rows
  }

  private saveMemberRow (txn: Txn, peer: string): void {
    const m = this.members.get(peer)
    if (m === undefined) return
    txn.put(memberKey(peer), m)
    this.unsavedMembers.delete(peer)
  }

  /**
   * Write the members heard from since they were last saved, at most every
   * {@link MEMBER_SAVE_MS}: what every member has seen only grows, so a
   * row a crash left behind only holds compaction back a little longer.
   */
  private async saveMembers (): Promise<void> {
    if (this.unsavedMembers.size === 0 || this.components.clock.now() - this.membersSavedAt < MEMBER_SAVE_MS) return
    await this.kv.batch(this.memberRows(), false)
  }

  /**
   * What every member heard from within the member timeout and trusted now
   * has seen (causally stable). A member no longer trusted no longer holds
   * back compaction.
   */
  stableClock (): VectorClock {
    const now = this.components.clock.now()
    const clocks = [this.clockState]
    for (const [peer, m] of this.members) {
      if (peer !== this.id && now - m.seen <= this.options.memberTimeout && this.trust.trusts(peer)) clocks.push(m.clock)
    }
    return meet(clocks)
  }

  /**
   * The newest `limit` log entries of `author` this replica holds, newest
   * first, encoded. Read-only and outside the replica's lock (for status
   * views): an entry compacted away meanwhile is skipped.
   */
  async * newestEntries (author: string, limit: number): AsyncGenerator<Uint8Array> {
    const n = this.clockState[author] ?? 0
    if (n === 0 || limit < 1) return
    for await (const [, value] of this.kv.iterate({ gt: seqKey(author, 0), lte: seqKey(author, n), limit, reverse: true })) {
      const entry = await this.kv.get('e!' + decodeJSON<{ cid: string }>(value).cid)
      if (entry !== undefined) yield entry
    }
  }

  /** The latest clock heard from member `peer` (undefined for a peer not trusted or not heard from). */
  memberClock (peer: string): VectorClock | undefined {
    const m = this.members.get(peer)
    return m === undefined || !this.trust.trusts(peer) ? undefined : { ...m.clock }
  }

  /** True when `clock` holds entries by trusted authors this replica lacks (what is worth a pull). */
  lacks (clock: VectorClock): boolean {
    for (const [author, n] of Object.entries(clock)) {
      if ((this.clockState[author] ?? 0) < n && this.trust.trusts(author)) return true
    }
    return false
  }

  /**
   * The clock to pull from a peer with: this replica's, with the counters of
   * authors it does not trust raised to the peer's (`peer`, as last heard).
   * So the peer sends none of their entries (they would be dropped) and no
   * snapshot for their pruned history, and counts them as seen here: they do
   * not hold back its compaction either.
   */
  pullClock (peer: VectorClock): VectorClock {
    const out = { ...this.clockState }
    for (const [author, n] of Object.entries(peer)) {
      if ((out[author] ?? 0) < n && !this.trust.trusts(author)) out[author] = n
    }
    return out
  }

  /**
   * When enough history is stable, snapshot the tree and prune the stable
   * entries. Returns whether it compacted.
   */
  async compact (force = false): Promise<boolean> {
    return await this.exclusive(async () => {
      await this.saveMembers()
      const stable = this.stableClock()
      const gain = missing(stable, this.prunedState)
      if (gain === 0 || (!force && gain < this.options.compactAfter)) return false
      const txn = new Txn(this.kv)
      await this.writeSnapshot(txn, await this.collectState(), this.clockState, this.headState)
      for (const [author, n] of Object.entries(stable)) {
        const from = this.prunedState[author] ?? 0
        if (from >= n) continue
        for await (const [key, value] of this.kv.iterate({ gt: seqKey(author, from), lte: seqKey(author, n) })) {
          txn.del('e!' + decodeJSON<{ cid: string }>(value).cid)
          txn.del(key)
        }
      }
      const pruned = merge(this.prunedState, stable)
      txn.put('m!pruned', pruned)
      await txn.commit(true)
      this.prunedState = pruned
      this.log.info({ pruned: gain }, 'namespace history compacted')
      return true
    })
  }

  /**
   * Heads after merging a snapshot: the maximal entries of both sides. A head
   * of one side that the other side's clock covers, and that the other side
   * does not list as a head, is behind the other side's heads. The
   * snapshot's heads by authors this replica does not trust are left out:
   * their entries are not here (heads only name an entry's parents).
   */
  private mergeHeads (snap: SnapshotRoot): Map<string, Dot> {
    const theirs = new Map<string, Dot>()
    for (const [i, h] of snap.heads.entries()) if (this.trust.trusts(snap.headDots[i][0])) theirs.set(h.toString(), snap.headDots[i])
    const out = new Map<string, Dot>()
    for (const [h, dot] of this.headState) if (theirs.has(h) || !covers(snap.clock, dot)) out.set(h, dot)
    for (const [h, dot] of theirs) if (this.headState.has(h) || !covers(this.clockState, dot)) out.set(h, dot)
    return out
  }

  /** The counters of `clock` for the authors this replica trusts. */
  private trustedClock (clock: VectorClock): VectorClock {
    const out: VectorClock = {}
    for (const [author, n] of Object.entries(clock)) if (this.trust.trusts(author)) out[author] = n
    return out
  }

  /** Every superseded dot's key (`r!`) with its paths. */
  private async readSuperseded (): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>()
    for await (const [key, value] of this.kv.iterate({ ...SUPERSEDED_RANGE })) out.set(key, decodeJSON<string[]>(value))
    return out
  }

  /**
   * Drop from a snapshot's versions (in place) those by authors this replica
   * does not trust, unless it holds the same version itself, and those it
   * saw superseded before they arrived. Returns how many were dropped.
   */
  private dropRefused (theirs: Map<string, Version[]>, ours: Map<string, Version[]>, superseded: Map<string, string[]>): number {
    let dropped = 0
    for (const [path, versions] of theirs) {
      const held = new Set((ours.get(path) ?? []).map(v => `${v.author}\n${v.seq}`))
      const keep = versions.filter(v => {
        if (superseded.get(supersededKey([v.author, v.seq]))?.includes(path) === true) return false
        return this.trust.trusts(v.author) || held.has(`${v.author}\n${v.seq}`)
      })
      dropped += versions.length - keep.length
      if (keep.length > 0) theirs.set(path, keep)
      else theirs.delete(path)
    }
    return dropped
  }

  /** Every path's live versions, from the store (sorted by path). */
  private async collectState (): Promise<Map<string, Version[]>> {
    const state = new Map<string, Version[]>()
    for await (const [key, value] of this.kv.iterate({ gt: 'v!', lt: 'v"' })) {
      const versions = decodeJSON<PathState>(value).versions
      if (versions.length > 0) state.set(key.slice(2), versions)
    }
    return state
  }

  /**
   * Write a snapshot of `state` at `clock` (blocks under `b!`, replacing the
   * previous snapshot) into `txn`.
   */
  private async writeSnapshot (txn: Txn, state: Map<string, Version[]>, clock: VectorClock, heads: Map<string, Dot>): Promise<CID> {
    const old = await this.meta<SnapshotMeta>('snapshot')
    const blocks: string[] = []
    const shards: CID[] = []
    let count = 0
    let paths: SnapshotShard['paths'] = []
    let size = 0
    const flush = (): void => {
      if (paths.length === 0) return
      const bytes = encodeSnapshotShard({ v: 1, paths })
      const cid = cborCID(bytes)
      txn.putBytes('b!' + cid.toString(), bytes)
      blocks.push(cid.toString())
      shards.push(cid)
      paths = []
      size = 0
    }
    const sorted = [...state.keys()].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
    for (const path of sorted) {
      const versions = (state.get(path) as Version[]).map(toSnapshotVersion)
      const estimate = Buffer.byteLength(path) + 160 * versions.length
      if (paths.length >= this.options.shardPaths || size + estimate > MAX_SNAPSHOT_BLOCK_BYTES * 0.75) flush()
      paths.push([path, versions])
      size += estimate
      count++
    }
    flush()
    const body: Omit<SnapshotRoot, 'sig'> = {
      v: 1,
      author: this.id,
      time: this.components.clock.now(),
      clock: { ...clock },
      heads: sortedHeads(heads).map(h => CID.parse(h)),
      headDots: sortedHeads(heads).map(h => heads.get(h) as Dot),
      count,
      shards
    }
    const sig = await this.components.signer.sign(encodeSnapshotRootBody(body))
    const rootBytes = encodeSnapshotRoot({ ...body, sig })
    const root = cborCID(rootBytes)
    txn.putBytes('b!' + root.toString(), rootBytes)
    blocks.push(root.toString())
    const keep = new Set(blocks)
    for (const b of old?.blocks ?? []) if (!keep.has(b)) txn.del('b!' + b)
    txn.put('m!snapshot', { root: root.toString(), clock: body.clock, blocks } satisfies SnapshotMeta)
    return root
  }

  /** Make a snapshot now (tests, benchmarks); returns its root. */
  async snapshot (): Promise<CID> {
    return await this.exclusive(async () => {
      const txn = new Txn(this.kv)
      const root = await this.writeSnapshot(txn, await this.collectState(), this.clockState, this.headState)
      await txn.commit(true)
      return root
    })
  }

  /**
   * Merge a peer's snapshot into this replica: the state-based merge of two
   * observed-remove sets. A version both sides hold stays; a version only one
   * side holds stays unless the other side's clock covers it (then the other
   * side saw it and removed it). So writes this replica made while away, and
   * history it pruned that the peer never saw, are kept; what the peer
   * removed knowingly goes. Every block is hash-checked and the root's
   * signature verified before anything changes; then this replica writes its
   * own snapshot of the merged state, so it can serve peers that are behind.
   *
   * Trust: a snapshot by an author this replica does not trust is refused
   * before its shards are fetched. A trusted snapshot may come from a node
   * that trusts more authors: their versions in it are dropped (unless this
   * replica holds the same version, applied while the author was trusted),
   * and so are versions this replica saw superseded before they arrived.
   * Their counters in the snapshot's clock are not adopted, so this
   * replica's clock keeps saying it has not seen their entries (should they
   * be trusted later, they are pulled then) and its own snapshots do not
   * claim them. The snapshot's clock still decides which of this replica's
   * versions the snapshot's author saw and removed: a snapshot is a state,
   * not a history, and cannot tell who removed a version, so a removal by an
   * author only the snapshot's author trusts is taken with it.
   *
   * @param author - the peer serving the snapshot: only its own snapshots are accepted
   * @throws {UntrustedSnapshotError} for a snapshot by an author this replica does not trust
   * @throws {InvalidSnapshotError} for a snapshot that fails its checks
   */
  async loadSnapshot (root: CID, fetch: (cids: CID[]) => Promise<Uint8Array[]>, author?: string): Promise<boolean> {
    const [rootBytes] = await fetch([root])
    if (rootBytes === undefined || !cborCID(rootBytes).equals(root)) throw new InvalidSnapshotError(`snapshot root ${root.toString()} missing or corrupt`)
    let snap: SnapshotRoot
    try {
      snap = decodeSnapshotRoot(rootBytes)
    } catch (err: any) {
      throw new InvalidSnapshotError(`snapshot root: ${String(err?.message ?? err)}`)
    }
    if (author !== undefined && snap.author !== author) throw new InvalidSnapshotError(`snapshot by ${snap.author} served by ${author}`)
    if (!this.trust.trusts(snap.author)) throw new UntrustedSnapshotError(`snapshot ${root.toString()} by ${snap.author}, an author this node does not trust`)
    const { sig, ...body } = snap
    if (!await this.components.verifier(snap.author, encodeSnapshotRootBody(body), sig)) throw new InvalidSnapshotError(`snapshot root ${root.toString()} has a bad signature`)
    const theirClock = this.trustedClock(snap.clock)
    if (dominates(this.clockState, theirClock)) return false
    const theirs = new Map<string, Version[]>()
    for (let i = 0; i < snap.shards.length;) {
      const want = snap.shards.slice(i, i + MAX_BLOCKS_WANT)
      // the peer answers with a prefix of what was asked (bounded in bytes)
      const got = (await fetch(want)).slice(0, want.length)
      if (got.length === 0) throw new InvalidSnapshotError(`snapshot shard ${want[0].toString()} missing`)
      for (let j = 0; j < got.length; j++) {
        const bytes = got[j]
        if (!cborCID(bytes).equals(want[j])) throw new InvalidSnapshotError(`snapshot shard ${want[j].toString()} corrupt`)
        let shard: SnapshotShard
        try {
          shard = decodeSnapshotShard(bytes)
        } catch (err: any) {
          throw new InvalidSnapshotError(`snapshot shard ${want[j].toString()}: ${String(err?.message ?? err)}`)
        }
        for (const [path, versions] of shard.paths) theirs.set(path, versions.map(fromSnapshotVersion))
      }
      i += got.length
    }
    if (theirs.size !== snap.count) throw new InvalidSnapshotError(`snapshot holds ${theirs.size} paths, its root says ${snap.count}`)
    await this.exclusive(async () => {
      const ours = await this.collectState()
      const superseded = await this.readSuperseded()
      const dropped = this.dropRefused(theirs, ours, superseded)
      const merged = mergeStates(ours, this.clockState, theirs, snap.clock)
      const clock = merge(this.clockState, theirClock)
      const heads = this.mergeHeads(snap)
      const batch = new Batch(this.kv, clock, heads)
      for (const [author, n] of Object.entries(clock)) if ((this.clockState[author] ?? 0) !== n) batch.changed.add(author)
      const txn = batch.txn
      for (const prefix of ['t!', 'v!', 'c!']) await txn.clearPrefix(prefix)
      for (const [path, versions] of merged) await batch.tree.load(path, versions)
      // a superseded version the merged clock covers never arrives as an entry
      for (const key of superseded.keys()) if (covers(clock, dotOfSupersededKey(key))) txn.del(key)
      // history the snapshot covers can no longer be served entry by entry
      const pruned = merge(this.prunedState, theirClock)
      for await (const [key, value] of this.kv.iterate({ gt: 's!', lt: 's"' })) {
        const rest = key.slice(2)
        const i = rest.lastIndexOf('!')
        if (covers(pruned, [rest.slice(0, i), Number(rest.slice(i + 1))])) {
          txn.del(key)
          txn.del('e!' + decodeJSON<{ cid: string }>(value).cid)
        }
      }
      txn.put('m!pruned', pruned)
      await this.writeSnapshot(txn, merged, clock, heads)
      await this.commit(batch)
      this.prunedState = pruned
      this.noteMember(snap.author, snap.clock)
      this.log.info({ root: root.toString(), paths: snap.count, merged: merged.size, dropped }, 'namespace merged a snapshot')
      // held entries may have become ready
      await this.drain()
    })
    for (const l of this.changeListeners) l()
    return true
  }

  // ------------------------------------------------------------ upgrades

  /** Where the store lives, for messages. */
  private get where (): string {
    return this.kv.location ?? 'the namespace store'
  }

  /** The vector clock from its rows. */
  private async loadClock (): Promise<VectorClock> {
    const clock: VectorClock = {}
    for await (const [key, value] of this.kv.iterate({ ...CLOCK_RANGE })) clock[authorOfClockKey(key)] = decodeJSON<number>(value)
    return clock
  }

  /**
   * A store whose clock and members are whole records (`m!clock`,
   * `m!members`, before the per-row layout) gets one row per author and per
   * member instead, in one batch.
   */
  private async upgradeRows (clock: VectorClock | undefined, members: Record<string, Member> | undefined): Promise<void> {
    const txn = new Txn(this.kv)
    for (const [author, n] of Object.entries(clock ?? {})) txn.put(clockKey(author), n)
    for (const [peer, m] of Object.entries(members ?? {})) txn.put(memberKey(peer), m)
    txn.del(LEGACY_CLOCK_KEY)
    txn.del(LEGACY_MEMBERS_KEY)
    await txn.commit(true)
    this.log.info({ authors: Object.keys(clock ?? {}).length, members: Object.keys(members ?? {}).length }, 'namespace store upgraded: clock and members stored per row')
  }

  /** The stored heads, upgraded from the development build's format when needed. */
  private async loadHeads (): Promise<Map<string, Dot>> {
    const bytes = await this.kv.get('m!heads')
    if (bytes === undefined) return new Map()
    const stored = parseStoredHeads(bytes, this.where)
    if (stored.format === 'dots') return new Map(stored.heads)
    return await this.upgradeHeads(stored.heads)
  }

  /**
   * Heads of the development build (CIDs without dots): read each head's dot
   * from its stored entry; then, in the same batch, recompute the visible
   * tree from the live versions (that build could hide a second conflict copy
   * of one author within one second) and rewrite the snapshot, if any (its
   * root had no head dots, which peers now require).
   *
   * @throws {NamespaceFormatError} when a head's entry is no longer stored (nothing is changed)
   */
  private async upgradeHeads (cids: string[]): Promise<Map<string, Dot>> {
    const heads = new Map<string, Dot>()
    for (const head of cids) {
      const bytes = await this.kv.get('e!' + head)
      let dot: Dot | undefined
      try {
        if (bytes !== undefined && cborCID(bytes).toString() === head) {
          const entry = decodeEntry(bytes)
          dot = [entry.author, entry.seq]
        }
      } catch {}
      if (dot === undefined) {
        throw new NamespaceFormatError(`${this.where} was written by a development build of the replica (heads without their dots), ` +
          `and head entry ${head} is no longer stored (pruned by compaction, or corrupt), so its place in the history cannot be recovered. ` +
          `Nothing was changed. Move ${this.where} aside and restart the node: it bootstraps the namespace from a peer's snapshot, ` +
          'recovering its own past writes before it writes again (writes wait until a peer answered) ' +
          '(paths written only on this node and never synced must then be added again; their content is still in the block store)')
      }
      heads.set(head, dot)
    }
    const state = await this.collectState()
    const batch = new Batch(this.kv, this.clockState, heads)
    for (const prefix of ['t!', 'v!', 'c!']) await batch.txn.clearPrefix(prefix)
    for (const [path, versions] of state) await batch.tree.load(path, versions)
    const rewrite = await this.meta<SnapshotMeta>('snapshot') !== undefined
    if (rewrite) await this.writeSnapshot(batch.txn, state, this.clockState, heads)
    await this.commit(batch)
    this.log.info({ heads: heads.size, paths: state.size, snapshot: rewrite }, 'namespace store upgraded: heads with dots')
    return heads
  }

  /**
   * Records of the single-node namespace (keys `<parent>\0<name>`) become
   * ordinary local writes of this replica — mkdir and put ops that replace
   * nothing, so a record at a path this replica already holds stays visible
   * next to it (as a conflict copy, or merged for directories) — and the old
   * keys go, all in one batch. A directory this replica already shows, and a
   * file it already shows with the same content, need no op.
   *
   * @throws {NamespaceFormatError} for a record that build could not have written (nothing is changed)
   */
  private async migrateSingleNode (): Promise<void> {
    const keys: string[] = []
    const records: LegacyRecord[] = []
    for await (const [key, value] of this.kv.iterate({ ...LEGACY_RANGE })) {
      keys.push(key)
      records.push(parseLegacyRecord(key, value, this.where))
    }
    if (keys.length === 0) return
    await this.exclusive(async () => {
      const ops: Op[] = []
      // key order (`<parent>\0<name>`) puts every directory before what it holds
      for (const r of records) {
        const current = await this.visible(r.path)
        if (r.type === 'dir') {
          if (current?.type !== 'dir') ops.push({ op: 'mkdir', path: r.path, mode: r.mode, mtime: r.mtime, replaces: [] })
        } else if (!(current?.type === 'file' && current.conflictOf === undefined && current.cid === r.cid.toString() && current.size === r.size)) {
          ops.push({ op: 'put', path: r.path, cid: r.cid, size: r.size, mode: r.mode, mtime: r.mtime, replaces: [] })
        }
      }
      await this.commitLocal(ops, txn => { for (const key of keys) txn.del(key) })
      this.log.info({ records: keys.length, ops: ops.length }, 'namespace store upgraded: single-node records migrated into the replica')
    })
  }

  // ------------------------------------------------------------ recovery

  /**
   * Load or enter the recovery state at open: a stored recovery goes on; an
   * empty store without the new-store marker starts one when
   * `recoverEmptyStore` is set. `skipRecovery` drops it.
   */
  private async openRecovery (): Promise<void> {
    if (this.recoveryOptions.skip) {
      if (await this.kv.get(RECOVERING_KEY) !== undefined) {
        await this.kv.batch([{ type: 'del', key: RECOVERING_KEY }], true)
        this.log.warn('namespace recovery skipped as configured: local writes may reuse seqs this node used before')
      }
      return
    }
    let state = await this.meta<RecoveryState>('recovering')
    if (state === undefined && this.recoveryOptions.empty) {
      let empty = true
      for await (const _ of this.kv.iterate({ limit: 1 })) empty = false // eslint-disable-line @typescript-eslint/no-unused-vars
      if (empty) {
        state = { target: 0, heard: false, reason: 'empty-store' }
        await this.kv.batch([{ type: 'put', key: RECOVERING_KEY, value: encodeJSON(state) }], true)
      }
    }
    if (state !== undefined) {
      this.recovery.set(state)
      this.log.warn({ ...state }, 'namespace store is behind this node\'s own past writes: recovering them from peers before the next local write')
    }
  }

  /**
   * A trusted peer showed this node's own seq as `seen`: start or advance
   * recovery when that is ahead of what the store holds, end it when done.
   */
  private heardSelf (seen: number, peer: string): void {
    if (this.recoveryOptions.skip || !this.opened) return
    const local = this.clockState[this.id] ?? 0
    const next = this.recovery.heard(seen, local)
    if (next === undefined) return
    if (!this.recovery.active) this.log.warn({ peer, seen, local }, 'a peer holds writes of this node that its store lacks: recovering them before the next local write')
    this.recovery.set(next)
    if (this.recovery.done(local)) {
      this.endRecovery()
      void this.exclusive(async () => { if (!this.recovery.active) await this.kv.batch([{ type: 'del', key: RECOVERING_KEY }], true) }).catch(() => {})
    } else {
      void this.exclusive(async () => {
        const s = this.recovery.current
        if (s !== undefined) await this.kv.batch([{ type: 'put', key: RECOVERING_KEY, value: encodeJSON(s) }], true)
      }).catch(() => {})
    }
  }

  private endRecovery (): void {
    if (!this.recovery.active) return
    this.log.info({ seq: this.clockState[this.id] ?? 0 }, 'namespace recovery done: this node holds its own past writes again')
    this.recovery.set(undefined)
  }

  /**
   * Run a local write once this replica is not recovering: wait for recovery
   * (bounded), then run `fn` under the lock, unless recovery started again
   * meanwhile (a peer showed a higher own seq): then wait again, at most a
   * few times.
   *
   * @throws {NamespaceRecoveringError} when recovery does not end in time
   */
  private async writing<T> (fn: () => Promise<T>): Promise<T> {
    const RETRY = Symbol('retry')
    for (let attempt = 0; attempt < 4; attempt++) {
      await this.recovery.wait()
      const out = await this.exclusive(async () => this.recovery.active ? RETRY : await fn())
      if (out !== RETRY) return out as T
    }
    throw this.recovery.error()
  }

  // ------------------------------------------------------------- helpers

  private async meta<T> (name: string): Promise<T | undefined> {
    const bytes = await this.kv.get('m!' + name)
    return bytes === undefined ? undefined : decodeJSON<T>(bytes)
  }

  private async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => {})
    return await run
  }
}

/**
 * State-based merge of two replicas' live versions, each at its clock: keep a
 * version both hold, or one side holds and the other has not seen.
 */
export function mergeStates (a: Map<string, Version[]>, clockA: VectorClock, b: Map<string, Version[]>, clockB: VectorClock): Map<string, Version[]> {
  const out = new Map<string, Version[]>()
  const key = (v: Version): string => `${v.author}\n${v.seq}`
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const va = a.get(path) ?? []
    const vb = b.get(path) ?? []
    const inA = new Set(va.map(key))
    const inB = new Set(vb.map(key))
    const keep: Version[] = []
    for (const v of va) if (inB.has(key(v)) || !covers(clockB, [v.author, v.seq])) keep.push(v)
    for (const v of vb) if (!inA.has(key(v)) && !covers(clockA, [v.author, v.seq])) keep.push(v)
    if (keep.length > 0) out.set(path, keep)
  }
  return out
}

/**
 * True when it is its author's next entry and everything it depends on by
 * trusted authors is in `clock`. Dependencies on authors `trust` refuses are
 * ignored: their entries never arrive here (a writer trusted by more nodes
 * than this one), and waiting for them would hold back every later entry of
 * the trusted writers who saw them.
 */
function ready (entry: LogEntry, clock: VectorClock, trust: TrustPolicy): boolean {
  if ((clock[entry.author] ?? 0) + 1 !== entry.seq) return false
  for (const [author, n] of dependencies(entry)) {
    if ((clock[author] ?? 0) < n && trust.trusts(author)) return false
  }
  return true
}

/**
 * What `entry` depends on by other authors, as (author, seq): a v1 entry's
 * clock, a v2 entry's parent dots (each stands for its author's chain up to
 * it; what those parents depended on was checked when they were applied).
 */
function * dependencies (entry: LogEntry): Iterable<[string, number]> {
  if (entry.v === 1) {
    for (const [author, n] of Object.entries(entry.clock)) if (author !== entry.author) yield [author, n]
  } else {
    for (const [author, n] of entry.deps) if (author !== entry.author) yield [author, n]
  }
}

/** The dependencies of `entry` on other authors that `applied` does not cover (untrusted ones, see {@link ready}); undefined when none. */
function skippedDeps (entry: LogEntry, applied: VectorClock): VectorClock | undefined {
  let out: VectorClock | undefined
  for (const [author, n] of dependencies(entry)) {
    if ((applied[author] ?? 0) < n && (out?.[author] ?? 0) < n) (out ??= {})[author] = n
  }
  return out
}

/** Head CIDs in a stable order. */
function sortedHeads (heads: Map<string, Dot>): string[] {
  return [...heads.keys()].sort()
}

function toEntry (path: string, v: Visible): Entry {
  const base = { path, name: baseName(path), mode: v.mode, mtime: v.mtime }
  let entry: Entry
  if (v.type === 'dir') {
    entry = { type: 'dir', ...base }
  } else {
    entry = { type: 'file', ...base, cid: v.cid as string, size: v.size ?? 0 }
    if (v.pin !== undefined) entry.pin = copyPin(v.pin)
  }
  if (v.conflictOf !== undefined) entry.conflictOf = v.conflictOf
  return entry
}

function toSnapshotVersion (v: Version): SnapshotVersion {
  if (v.type === 'dir') return { author: v.author, seq: v.seq, time: v.time, type: 'dir', mode: v.mode, mtime: v.mtime }
  const out: SnapshotVersion = { author: v.author, seq: v.seq, time: v.time, type: 'file', cid: CID.parse(v.cid as string), size: v.size ?? 0, mode: v.mode, mtime: v.mtime }
  if (v.pin !== undefined) out.pin = wirePin(v.pin)
  return out
}

function fromSnapshotVersion (v: SnapshotVersion): Version {
  if (v.type === 'dir') return { author: v.author, seq: v.seq, time: v.time, type: 'dir', mode: v.mode, mtime: v.mtime }
  if (v.cid === undefined) throw new InvalidSnapshotError(`snapshot version [${v.author}, ${v.seq}] is a file without a cid`)
  const out: Version = { author: v.author, seq: v.seq, time: v.time, type: 'file', cid: v.cid.toString(), size: v.size ?? 0, mode: v.mode, mtime: v.mtime }
  if (v.pin !== undefined) out.pin = storedPin(v.pin)
  return out
}

/** The ops of one local write, one per path: removals merge into the creation at the same path. */
class OpSet {
  private readonly ops = new Map<string, Op>()

  remove (path: string, dots: Dot[]): void {
    if (dots.length === 0) return
    const op = this.ops.get(path)
    if (op === undefined) this.ops.set(path, { op: 'del', path, replaces: [...dots] })
    else op.replaces = unionDots(op.replaces, dots)
  }

  create (op: Op): void {
    const existing = this.ops.get(op.path)
    if (existing !== undefined) op.replaces = unionDots(existing.replaces, op.replaces)
    this.ops.set(op.path, op)
  }

  list (): Op[] { return [...this.ops.values()] }
}

function unionDots (a: Dot[], b: Dot[]): Dot[] {
  const seen = new Set(a.map(d => `${d[0]}\n${d[1]}`))
  const out = [...a]
  for (const d of b) if (!seen.has(`${d[0]}\n${d[1]}`)) { out.push(d); seen.add(`${d[0]}\n${d[1]}`) }
  return out
}

/** Split ops into entry-sized chunks (count and an estimate of encoded bytes). */
function splitOps (ops: Op[]): Op[][] {
  const chunks: Op[][] = []
  let chunk: Op[] = []
  let size = 0
  const budget = MAX_ENTRY_BYTES / 2
  for (const op of ops) {
    const estimate = Buffer.byteLength(op.path) + 120 + op.replaces.length * 80
    if (chunk.length > 0 && (chunk.length >= MAX_OPS || size + estimate > budget)) {
      chunks.push(chunk)
      chunk = []
      size = 0
    }
    chunk.push(op)
    size += estimate
  }
  if (chunk.length > 0) chunks.push(chunk)
  return chunks
}
