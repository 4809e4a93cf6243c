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
 * This file is the facade: {@link Replica} keeps the public API and wires
 * the modules that do the work, each owning its state (docs/architecture.md,
 * "The namespace's modules"): store.ts (the store, clock, heads, the batch
 * and the lock), members.ts (members and the stable clock), apply.ts
 * (applying an entry), log.ts (receiving and serving entries), snapshots.ts
 * (snapshots and compaction), reads.ts and writes.ts (the tree as the API
 * reads and writes it), recovery.ts (a store behind its own writes) and
 * upgrade.ts (stores of older builds). The modules talk through the small
 * `components` objects built here; none imports this file.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { MAX_SHARD_PATHS, headsDigest, type Dot } from '../../protocol/namespace.js'
import { cborCID } from '../blocks/verify.js'
import { versionSeen, type VectorClock } from './clock.js'
import { normalizePath } from './paths.js'
import type { KV } from './kv.js'
import { Applier } from './apply.js'
import { EntryLog, type PreparedEntries, type PullAnswer, type ReceiveResult } from './log.js'
import { Members, type ForgetResult, type Member } from './members.js'
import { ClockHistory } from './clock-history.js'
import { Retirements } from './retire.js'
import { VisibleTreeReader } from './reads.js'
import { ReplicaRecovery, type RecoveryTimers } from './recovery.js'
import { Snapshots } from './snapshots.js'
import type { SnapshotFetch, SnapshotLoadFaults } from './snapshot-load.js'
import { PendingRepublish } from './republish.js'
import { ReplicaStore, sortedHeads } from './store.js'
import { TRUST_EVERYONE, type TrustPolicy } from './trust.js'
import { loadHeads, migrateSingleNode, upgradeHeadRows, upgradeRows, upgradeSnapshot, type UpgradeComponents } from './upgrade.js'
import { LocalWrites } from './writes.js'
import { StateTrees } from './state-tree.js'
import { repairPaths, type PathRepair, type RepairResult } from './state-repair.js'
import type { CheckedState } from './state-check.js'
import { scrubRows, type ScrubResult } from './state-scrub.js'
import { blockKey } from './rows.js'
import type { Signer, Verifier } from './identity.js'
import type { ConflictInfo, Entry, FileRecord, MkdirOptions, Namespace, PutOptions, RemoveOptions, RemoveResult, WallClock } from './api.js'
import type { Logger } from '../logger.js'

export type { WallClock } from './api.js'
export type { ReceiveResult, PullAnswer } from './log.js'
export { InvalidSnapshotError, UntrustedSnapshotError, mergeStates } from './snapshots.js'

/** Multicodec of dag-cbor. */
export const DAG_CBOR = 0x71

export { cborCID }

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
  /** Most entries held while waiting for their causal past, once a received batch has been applied (its ready entries never wait for room). @default 100000 */
  maxPending?: number
  /** Accepted and ignored: snapshots are trees whose node sizes follow their chunking rule (protocol/snapshot-tree.ts). */
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
  /**
   * After opening a store that knows trusted members or holds other
   * authors' entries (a swarm's member, perhaps an old backup of it; a lone
   * node's store is not checked): local writes wait for trusted peers' views (`recoveryQuorum`) of this
   * node's own seq, at most `restartTimeout`, then go ahead (recovery.ts: a
   * store restored from an old backup is caught before a write reuses a
   * seq). The daemon sets it. @default false
   */
  checkOnRestart?: boolean
  /** Longest a local write waits for the check after a restart (ms). @default 10000 (at most `recoveryTimeout`) */
  restartTimeout?: number
  /**
   * Distinct trusted peers whose view of this node's own seq ends a
   * recovery or the check after a restart (recovery.ts: one peer may itself
   * be behind). @default 2
   */
  recoveryQuorum?: number
  /** Longest a recovery waits for its quorum after the first peer's view, then goes on with the views it has (ms). @default 2000 */
  recoverySettleMs?: number
  /**
   * Most authors a snapshot root names inline; a snapshot of more links
   * author blocks of this many each (snapshot-authors.ts). @default 2048
   */
  inlineRootAuthors?: number
  /** Fault injection for tests: points a crash cannot be made to hit for real. */
  faults?: SnapshotLoadFaults
}

/** What a replica's state looks like from outside. */
export interface ReplicaState {
  clock: VectorClock
  heads: CID[]
  /** History before this clock has been pruned. */
  pruned: VectorClock
}

const DAY = 24 * 3600 * 1000

/** `value` when it is undefined or a positive integer; a RangeError naming the option otherwise. */
function positiveInteger (value: number | undefined, name: string): number | undefined {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) throw new RangeError(`${name} must be a positive integer, not ${String(value)}`)
  return value
}

/** Told what visible files may now refer to (see {@link Replica.onReferences}). */
export interface ReferenceListener {
  /** A visible file may now refer to `manifest` (its CID as text). */
  referenced: (manifest: string) => void
  /** Visible files may now refer to any manifest. */
  referencedAny: () => void
}

/** One replica of the namespace. */
export class Replica implements Namespace {
  /** Whose entries and snapshots this replica applies. */
  readonly trust: TrustPolicy
  private readonly store: ReplicaStore
  private readonly recovery: ReplicaRecovery
  private readonly members: Members
  private readonly retirements: Retirements
  private readonly applier: Applier
  private readonly log: EntryLog
  private readonly snapshots: Snapshots
  private readonly reads: VisibleTreeReader
  private readonly writes: LocalWrites
  private readonly republish: PendingRepublish
  private readonly upgrades: UpgradeComponents
  /** Parsed head CIDs by their text ({@link headCid}). */
  private readonly headCids = new Map<string, CID>()
  private readonly stateTrees: StateTrees
  private readonly changeListeners = new Set<() => void>()
  /** {@link seen}'s record, and the entries of other replicas applied when it was copied. */
  private seenMark?: { others: number, clock: Readonly<VectorClock> }
  private readonly history: ClockHistory
  private readonly referenceListeners = new Set<ReferenceListener>()
  private opened = false
  private readonly checkOnRestart: boolean

  constructor (private readonly components: ReplicaComponents, options: ReplicaOptions = {}) {
    const { kv, signer, verifier, clock, logger } = components
    const id = signer.id
    this.checkOnRestart = options.checkOnRestart ?? false
    const trust = this.trust = components.trust ?? TRUST_EVERYONE
    // the clock before other replicas' entries arrive is kept for a minute, with the time (clock-history.ts)
    const history = this.history = new ClockHistory({ clock, seen: () => this.seen(), others: () => this.store.total - (this.store.clock[id] ?? 0) })
    const changed = (): void => {
      history.changed()
      for (const l of this.changeListeners) l()
    }
    const store = this.store = new ReplicaStore(kv)
    const timers: RecoveryTimers = components.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => { clearTimeout(h as NodeJS.Timeout) } }
    const recovery = this.recovery = new ReplicaRecovery({
      kv,
      id,
      logger,
      store,
      timers,
      timeout: options.recoveryTimeout ?? 30_000,
      restartTimeout: Math.min(options.restartTimeout ?? 10_000, options.recoveryTimeout ?? 30_000),
      quorum: options.recoveryQuorum,
      settleMs: options.recoverySettleMs,
      unchecked: () => { logger.warn('namespace restarted and no trusted peer confirmed this node\'s own seq in time: local writes go ahead (a store restored from an old backup would reuse seqs; docs/namespace.md, "A node that lost its store")') },
      where: store.where,
      isOpen: () => this.opened,
      empty: options.recoverEmptyStore ?? false,
      skip: options.skipRecovery ?? false,
      // what a merge left to publish again while local writes had to wait
      ended: () => { if (this.opened) void this.publishPending() }
    })
    const heardSelf = (seen: number, peer: string): void => { recovery.heardSelf(seen, peer) }
    const members = this.members = new Members({ kv, id, trust, clock, applied: () => store.clock, heardSelf, memberTimeout: options.memberTimeout ?? 7 * DAY })
    store.onCommit(batch => recovery.onCommit(batch))
    store.onCommit(batch => members.writeNew(batch.txn))
    // told once committed, when a walk of the visible files can see them
    store.onCommit(batch => {
      const manifests = batch.referenced
      return manifests === undefined ? undefined : () => { for (const m of manifests) for (const l of this.referenceListeners) l.referenced(m) }
    })
    const retirements = this.retirements = new Retirements({ kv })
    store.onCommit(batch => retirements.onCommit(batch))
    const applier = this.applier = new Applier({
      kv,
      state: store,
      noteAuthor: entry => { members.noteAuthor(entry) },
      retired: (batch, op, dot) => { retirements.record(batch, op, dot) }
    })
    const log: EntryLog = this.log = new EntryLog({
      store,
      applier,
      id,
      trust,
      verifier,
      clock,
      logger,
      maxPending: options.maxPending ?? 100_000,
      heardSelf: (seen, peer) => { recovery.heardSelf(seen, peer, 'entry') },
      snapshot: async () => await snapshots.current(),
      changed,
      arriving: () => { history.arriving() }
    })
    const snapshots: Snapshots = this.snapshots = new Snapshots({
      store,
      id,
      signer,
      verifier,
      trust,
      clock,
      logger,
      members,
      superseded: async () => await applier.superseded(),
      drain: async () => await log.drain(),
      changed,
      republish: this.republish = new PendingRepublish({
        kv,
        logger,
        recovering: () => recovery.active,
        commit: async (groups, alsoInBatch) => { await this.writes.commitGroups(groups, alsoInBatch) }
      }),
      faults: options.faults,
      shardPaths: Math.min(options.shardPaths ?? 2048, MAX_SHARD_PATHS),
      retirements,
      compactAfter: options.compactAfter ?? 10_000,
      inlineRootAuthors: positiveInteger(options.inlineRootAuthors, 'inlineRootAuthors'),
      stateNode: cid => this.stateTrees.node(cid)
    })
    this.stateTrees = new StateTrees({
      digest: () => this.headsDigest(),
      exclusive: async fn => await store.exclusive(fn),
      build: async put => await snapshots.stateTree(put),
      snapshot: async () => (await snapshots.current())?.root.toString()
    })
    const reads = this.reads = new VisibleTreeReader(kv)
    const writes = this.writes = new LocalWrites({ store, applier, reads, signer, clock, writing: async fn => await recovery.writing(fn) })
    this.upgrades = {
      store,
      logger,
      snapshots,
      visible: async path => await reads.visible(path),
      commitLocal: async (ops, alsoInBatch) => { await writes.commitLocal(ops, alsoInBatch) }
    }
  }

  /**
   * True while this replica recovers its own past writes from its peers
   * (local writes wait; docs/namespace.md, "A node that lost its store").
   */
  get recovering (): boolean { return this.recovery.active }

  /** Whether this replica holds entries of another author than itself (it has been part of a swarm). */
  get holdsOthersEntries (): boolean {
    for (const author in this.store.clock) if (author !== this.id && this.store.clock[author] > 0) return true
    return false
  }

  /** This replica's author id. */
  get id (): string { return this.components.signer.id }

  /** Entries rejected since start (bad signature, shape, equivocation). */
  get rejected (): number { return this.log.rejected }

  /** Entries dropped since start because their author is not trusted (never stored, never applied). */
  get untrusted (): number { return this.log.untrusted }

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
    const { store } = this
    await store.kv.open()
    try {
      await this.recovery.open()
      const legacyClock = await store.meta<VectorClock>('clock')
      const legacyMembers = await store.meta<Record<string, Member>>('members')
      await store.load(legacyClock)
      await this.members.load(legacyMembers)
      store.setHeads(await loadHeads(this.upgrades))
      // after the checks that refuse a store without changing it
      if (legacyClock !== undefined || legacyMembers !== undefined) await upgradeRows(this.upgrades, legacyClock, legacyMembers)
      await upgradeHeadRows(this.upgrades)
      await upgradeSnapshot(this.upgrades)
      await this.applier.load()
      await this.retirements.load()
      await this.snapshots.resume()
      await migrateSingleNode(this.upgrades)
      // a store of a swarm's member (it may be an old backup): the first write waits for a peer to confirm this node's own seq
      if (this.checkOnRestart && (this.members.known() || this.holdsOthersEntries)) this.recovery.checkAfterRestart()
      // versions a merge kept that a crash (or a recovery) left unpublished; while local writes wait, once they go ahead
      if (!this.recovery.active) await this.publishPending()
    } catch (err) {
      this.members.clear()
      this.applier.clear()
      this.retirements.clear()
      await store.kv.close().catch(() => {})
      throw err
    }
    this.opened = true
    this.history.changed()
  }

  /**
   * Publish again the versions a snapshot merge kept without proof and
   * that wait (republish.ts), under the lock. A failure (a full disk)
   * leaves them waiting for the next merge or open, with a warning.
   */
  private async publishPending (): Promise<void> {
    try {
      await this.store.exclusive(async () => await this.republish.publish())
    } catch (err: any) {
      this.components.logger.warn({ err: err?.message ?? String(err) }, 'namespace versions a snapshot left out not published again yet (kept: published at the next merge or open)')
    }
  }

  async close (): Promise<void> {
    if (!this.opened) return
    this.opened = false
    await this.store.settled()
    try {
      await this.store.kv.batch(this.members.rows(), true)
    } catch (err: any) {
      // what members have seen only grows: rows left older hold compaction back a little longer (members.ts); a full disk must not stop a shutdown
      this.components.logger.warn({ err: err?.message ?? String(err) }, 'namespace members not saved at close')
    }
    await this.store.kv.close()
  }

  /** Called with the encoded entries of every local write, after it is durable. */
  onLocalEntries (listener: (entries: Uint8Array[]) => void): () => void {
    return this.writes.onLocalEntries(listener)
  }

  /**
   * Told when a visible file may now refer to a manifest (a batch of local
   * or remote entries showed a file, or a conflict copy, whose pin names
   * it), or to any (a snapshot merged or tried, paths repaired): once the
   * change is committed, so that a walk of the visible files begun after it
   * is told sees it (durability: removal-clocks.ts).
   */
  onReferences (listener: ReferenceListener): () => void {
    this.referenceListeners.add(listener)
    return () => this.referenceListeners.delete(listener)
  }

  private referencedAny (): void { for (const l of this.referenceListeners) l.referencedAny() }

  /** Called after remote entries or a snapshot changed the tree. */
  onRemoteChange (listener: () => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  /**
   * What this replica has applied, as it is now: the live record, without
   * the copy {@link state} makes (O(authors)). For a comparison made at
   * once; never keep or change it.
   */
  clockNow (): Readonly<VectorClock> { return this.store.clock }

  /** See {@link Namespace.seen}. */
  seen (): Readonly<VectorClock> {
    const { clock, total } = this.store
    // own entries change no answer of arrivedSince: the record is copied again only when another replica's arrive
    const others = total - (clock[this.id] ?? 0)
    if (this.seenMark?.others !== others) this.seenMark = { others, clock: Object.freeze({ ...clock }) }
    return this.seenMark.clock
  }

  /** See {@link Namespace.seenAt}. */
  seenAt (time: number): Readonly<VectorClock> | undefined { return this.history.at(time) }

  /** See {@link Namespace.arrivedSince}. */
  async arrivedSince (path: string, clock: Readonly<VectorClock>): Promise<boolean> {
    const p = normalizePath(path)
    const v = await this.reads.visible(p)
    // a version is what all its dots stand for (the same bytes written more than once): one seen, or this replica's, is enough
    const seenDot = (dots: readonly Dot[]): boolean => versionSeen(dots, clock, this.id)
    if (v === undefined || v.dots.length === 0 || seenDot(v.dots)) return false
    // a directory whose own version is new may still be one that was there: another node that set its attributes
    // (a chmod, an mtime set by rsync or tar) wrote it again. It is new only when nothing inside it was seen either
    // (a folder taken for new by mistake joined the add DIR --to into it, which then replaced its files)
    return v.type !== 'dir' || !await this.reads.anyChild(p, child => seenDot(child.dots))
  }

  /**
   * Whether this replica pruned history into its own snapshot: versions it
   * keeps only as snapshot rows, with no signed entry left to prove them
   * (sync checks a server's claim to have pruned before taking its
   * snapshot then, pruned-claim.ts).
   */
  hasPruned (): boolean { return holdsAny(this.store.pruned) }

  /** Clock, heads and pruned frontier. */
  state (): ReplicaState {
    const { clock, heads, pruned } = this.store
    return { clock: { ...clock }, heads: sortedHeads(heads).map(h => this.headCid(h)), pruned: { ...pruned } }
  }

  /**
   * The CID of head `text`, parsed once while it stays a head: sync asks
   * for the heads on every request it serves and every clock it publishes,
   * and a log of many concurrent writers has thousands of them.
   */
  private headCid (text: string): CID {
    let cid = this.headCids.get(text)
    if (cid === undefined) {
      // heads come and go: keep the memo near the heads' own size
      if (this.headCids.size > 2 * this.store.heads.size + 64) this.headCids.clear()
      cid = CID.parse(text)
      this.headCids.set(text, cid)
    }
    return cid
  }

  // ---------------------------------------------------------------- reads (reads.ts)

  async lookup (path: string): Promise<Entry | undefined> { return await this.reads.lookup(path) }

  async stat (path: string): Promise<Entry> { return await this.reads.stat(path) }

  async list (path: string): Promise<Entry[]> { return await this.reads.list(path) }

  walk (path: string): AsyncGenerator<Entry> { return this.reads.walk(path) }

  /** Every conflict copy, by path. */
  async conflicts (): Promise<ConflictInfo[]> { return await this.reads.conflicts() }

  /**
   * Every visible file entry, conflict copies included: one scan of the
   * visible-name index, grouped by directory.
   */
  files (): AsyncGenerator<Entry> { return this.reads.files() }

  // --------------------------------------------------------------- writes (writes.ts)

  /**
   * Create or replace the file at `path`: the new version replaces the one
   * this replica sees there, and carries `record.pin` (or no pin). Changing
   * a file's pin is a put of the same record with another pin.
   *
   * @throws {IsADirectoryError} {NotADirectoryError} {InvalidArgumentError} (a bad pin)
   */
  async putFile (path: string, record: Omit<FileRecord, 'type'>, options: PutOptions = {}): Promise<Entry> {
    return await this.writes.putFile(path, record, options)
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
  async putFiles (files: ReadonlyArray<{ path: string, record: Omit<FileRecord, 'type'> } & Omit<PutOptions, 'rewriting'>>): Promise<Entry[]> {
    return await this.writes.putFiles(files)
  }

  async mkdir (path: string, options: MkdirOptions = {}): Promise<Entry> { return await this.writes.mkdir(path, options) }

  async setDirAttrs (path: string, attrs: { mode: number, mtime: number }): Promise<Entry> { return await this.writes.setDirAttrs(path, attrs) }

  async move (from: string, to: string): Promise<Entry> { return await this.writes.move(from, to) }

  async remove (path: string, options: RemoveOptions = {}): Promise<RemoveResult> { return await this.writes.remove(path, options) }

  // ------------------------------------------------------ entries (log.ts)

  /**
   * Take entries from a peer: check each (canonical dag-cbor, shape, a
   * trusted author, signature, no second entry for one author and seq), hold
   * those whose causal past is missing, apply every one that is ready.
   */
  async receive (list: Uint8Array[], from?: string): Promise<ReceiveResult> { return await this.log.receive(list, from) }

  /**
   * The checks and authentication of {@link receive}, nothing held or
   * applied yet: what {@link accept} takes, maybe after other batches (a
   * pull checks its next page while the one before is committed).
   */
  async prepare (list: Uint8Array[], from?: string): Promise<PreparedEntries> { return await this.log.prepare(list, from) }

  /** Hold and apply a batch {@link prepare} checked: the rest of {@link receive}. */
  async accept (prepared: PreparedEntries): Promise<ReceiveResult> { return await this.log.accept(prepared) }

  /** What a peer with clock `remote` lacks: one page in causal order, or the snapshot to start from. */
  async pull (remote: VectorClock, limit: number, maxBytes?: number): Promise<PullAnswer> { return await this.log.pull(remote, limit, maxBytes) }

  /**
   * The newest `limit` log entries of `author` this replica holds, newest
   * first, encoded. Read-only and outside the replica's lock (for status
   * views): an entry compacted away meanwhile is skipped.
   */
  newestEntries (author: string, limit: number): AsyncGenerator<Uint8Array> { return this.log.newestEntries(author, limit) }

  /**
   * A pull from `peer` ended with everything it had for this replica (namespace
   * sync calls it): a claim of this node's own writes that the peer did not
   * back with entries stops holding recovery open (recovery.ts).
   */
  pulledFrom (peer: string): void { this.recovery.pulledFrom(peer) }

  /** True when `clock` holds entries by trusted authors this replica lacks (what is worth a pull). */
  lacks (clock: VectorClock): boolean { return this.log.lacks(clock) }

  /**
   * The clock to pull from a peer with: this replica's, with the counters of
   * authors it does not trust raised to the peer's (`peer`, as last heard).
   * So the peer sends none of their entries (they would be dropped) and no
   * snapshot for their pruned history, and counts them as seen here: they do
   * not hold back its compaction either.
   */
  pullClock (peer: VectorClock): VectorClock { return this.log.pullClock(peer) }

  // ------------------------------------------------------ members (members.ts)

  /**
   * Record what a peer has seen (from its gossip or a sync exchange). Only
   * trusted peers are members: a stranger's clock is neither kept nor stored,
   * so it cannot hold back compaction. `wire`: the clock as received, when
   * `clock` was read back from it ({@link readClock}); a wire clock that
   * leaves this node out says nothing of how far its own writes got (it may
   * have been retired), so it does not end a recovery (recovery.ts); nor
   * does the clock of a peer that holds no entry at all (a node that joined
   * a moment ago knows nothing of this node's past writes: found by the
   * lifecycle simulation, a node that lost its disk took two new nodes'
   * word and reused its seqs).
   */
  noteMember (peer: string, clock: VectorClock, wire?: Readonly<VectorClock>): void {
    // a wire clock that leaves this node out may have retired it: that is no word on how far its writes got (recovery)
    const tellsSelf = (wire === undefined || Object.hasOwn(wire, this.id) || (clock[this.id] ?? 0) > 0) && holdsAny(clock)
    // heard from the peer itself (its signed gossip, a pull with it): a member forgotten here is one again
    this.members.noteMember(peer, clock, { tellsSelf, direct: true })
  }

  /**
   * A user's word that member `peer`'s node is gone for good: it no longer
   * holds back compaction, the collection of removed files' shards, or the
   * retirement of authors here, until it is heard from itself again
   * (members.ts, {@link Members.forget}; docs/namespace.md, "Forgetting a
   * member").
   *
   * @returns undefined when `peer` is no member this node knows
   */
  async forgetMember (peer: string): Promise<ForgetResult | undefined> { return await this.members.forget(peer) }

  /** Members forgotten here and not heard from since ({@link forgetMember}). */
  forgottenMembers (): Array<{ peer: string, at: number }> { return this.members.forgotten() }

  /**
   * What every member heard from within the member timeout and trusted now
   * has seen (causally stable). A member no longer trusted no longer holds
   * back compaction.
   */
  stableClock (): VectorClock { return this.members.stableClock() }

  /** Active members whose own writes, as far as their latest clock tells, are not all applied here (members.ts). */
  behindMembers (): string[] { return this.members.behindMembers() }

  /** How long a member not heard from still counts as active (ms; `namespace.memberTimeout`). */
  get memberTimeout (): number { return this.members.memberTimeout }

  /** Active members whose latest clock does not cover `clock` (members.ts). */
  membersNotSeen (clock: VectorClock): string[] { return this.members.membersNotSeen(clock) }

  /** The latest clock heard from member `peer` (undefined for a peer not trusted or not heard from). */
  memberClock (peer: string): VectorClock | undefined { return this.members.memberClock(peer) }

  // ------------------------------------------ retired authors (retire.ts)

  /**
   * `clock` in its wire form: retired authors held at their retired seq
   * left out (docs/namespace.md, "Retired authors"). With `peer` (what the
   * receiver is known to hold), only those whose retirement it covers.
   */
  wireClock (clock: Readonly<VectorClock>, peer?: Readonly<VectorClock>): VectorClock { return this.retirements.toWire(clock, peer) }

  /** A clock received in wire form, with the retired authors it left out read back (as 0 unless the sender covers their retirement). */
  readClock (wire: Readonly<VectorClock>): Readonly<VectorClock> { return this.retirements.readClock(wire) }

  /** Number of retired authors this replica knows. */
  get retired (): number { return this.retirements.size }

  /**
   * Retire the authors that left: one entry of retire ops (at most
   * {@link MAX_OPS}) for authors other than this node, not active members,
   * whose entries held here are stable and not yet retired at that seq.
   * The active member with the smallest id retires them; the others only
   * authors silent for twice the member timeout (should that member not
   * retire them: it does not trust them, say), so a swarm writes about one
   * retirement per author. Nothing while this replica recovers its own
   * writes. Returns how many authors it retired.
   */
  async retire (): Promise<number> {
    return await this.store.exclusive(async () => {
      if (this.recovery.active) return 0
      const { members } = this
      const leads = members.leads()
      const ops = this.retirements.due({
        self: this.id,
        clock: this.store.clock,
        stable: () => members.stableClock(),
        active: author => members.active(author) || (!leads && !members.silentFor(author, 2))
      })
      if (ops.length > 0) await this.writes.commitLocal(ops)
      return ops.length
    })
  }

  // ---------------------------------------------- snapshots (snapshots.ts)

  /**
   * Snapshot blocks this replica holds: the longest prefix of `cids` that it
   * holds and that fits in `maxBytes` (at least one block when it has the
   * first). The asker asks again for the rest.
   */
  async blocks (cids: CID[], maxBytes?: number): Promise<Uint8Array[]> { return await this.snapshots.blocks(cids, maxBytes) }

  /**
   * When enough history is stable, snapshot the tree and prune the stable
   * entries. Returns whether it compacted.
   */
  async compact (force = false): Promise<boolean> { return await this.snapshots.compact(force) }

  /** Make a snapshot now (tests, benchmarks); returns its root. */
  async snapshot (): Promise<CID> { return await this.snapshots.snapshot() }

  // ------------------------------------------ state checks (state-check.ts)

  /**
   * What state checks compare first: the digest of this replica's heads and
   * clock (protocol/namespace.ts `headsDigest`).
   */
  headsDigest (): Uint8Array {
    // headsDigest puts them in order
    return headsDigest([...this.store.heads.keys()].map(h => CID.parse(h)), this.store.clock)
  }

  /**
   * This replica's current state as a state check compares it: the digest
   * of its heads, the root of its state's snapshot tree, and a reader of
   * that tree's nodes (state-tree.ts; computed when the heads moved).
   *
   * @throws {StateTooLargeError} when the state is too far from the last snapshot to hold its tree in memory
   */
  async checkedState (): Promise<CheckedState> {
    const held = await this.stateTrees.current()
    const { kv } = this.store
    return { digest: held.digest, node: async cid => held.node(cid) ?? await kv.get(blockKey(cid.toString())) }
  }

  /**
   * Compare every path's rows with this replica's own latest snapshot and
   * mark those that differ where no write changed them, for the next state
   * check to compare with peers (state-scrub.ts). O(paths); runs without
   * the lock.
   */
  async scrubRows (): Promise<ScrubResult> {
    const result = await scrubRows({ kv: this.store.kv, snapshotTree: async () => await this.snapshots.currentTree() })
    if (result.marked > 0) this.stateTrees.forget()
    return result
  }

  /**
   * Give `repairs`' paths the versions two peers with this replica's heads
   * agree on (state-repair.ts: a version whose signed entry is held here is
   * never removed); undefined, nothing changed, when the heads are no longer
   * those of `heads`.
   */
  async repairState (repairs: PathRepair[], heads: Uint8Array): Promise<RepairResult | undefined> {
    const result = await repairPaths({ store: this.store, digest: () => this.headsDigest() }, repairs, heads)
    if (result !== undefined && result.paths > 0) {
      this.referencedAny()
      this.stateTrees.forget()
      for (const l of this.changeListeners) l()
    }
    return result
  }

  /**
   * Merge a peer's snapshot into this replica (the state-based merge of two
   * observed-remove sets; see snapshots.ts for what is kept, dropped and
   * trusted).
   *
   * @param author - the peer serving the snapshot: only its own snapshots are accepted
   * @throws {UntrustedSnapshotError} for a snapshot by an author this replica does not trust
   * @throws {InvalidSnapshotError} for a snapshot that fails its checks
   */
  async loadSnapshot (root: CID, fetch: SnapshotFetch, author?: string): Promise<boolean> {
    try {
      return await this.snapshots.loadSnapshot(root, fetch, author)
    } finally {
      // a merged snapshot may show any file (no listener can tell which), and a merge may have committed before a
      // later step failed; a merge a crash interrupted is finished at open, before any listener has noted anything
      this.referencedAny()
    }
  }
}

/** Whether `clock` names any entry (a counter above 0). */
function holdsAny (clock: Readonly<VectorClock>): boolean {
  for (const author in clock) if (clock[author] > 0) return true
  return false
}
