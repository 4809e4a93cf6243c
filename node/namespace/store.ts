/**
 * The replica's store: the key-value store, the state every other module of
 * the replica reads — the applied vector clock, the heads, the pruned
 * frontier and the untrusted authors' entries applied ones depend on
 * (`m!ahead`) — and the one way that state changes: a {@link Batch}
 * committed by {@link ReplicaStore.commit}.
 *
 * Why one owner: the clock, the heads and the tree must change together, in
 * one fsynced LevelDB batch, or a crash leaves a tree that disagrees with
 * the clock peers are told. So every writer (remote entries, local writes, a
 * snapshot merge, an upgrade) fills a {@link Batch} and hands it here; the
 * in-memory state is adopted only once the batch is durable. Other modules
 * that keep rows of their own in the same batch (new members, the recovery
 * marker) join through {@link CommitHook}s rather than reaching into the
 * batch's owner.
 *
 * It also owns the replica's lock ({@link ReplicaStore.exclusive}): applying,
 * writing, compacting and serving a pull never interleave.
 *
 * @module
 */
import { Txn, decodeJSON, type KV } from './kv.js'
import { TreeWriter } from './tree.js'
import { weight, type Dot, type VectorClock } from './clock.js'
import { CLOCK_RANGE, authorOfClockKey, clockKey, headKey, metaKey } from './rows.js'

/** The mutable state one batch works on; adopted only after its commit. */
export class Batch {
  readonly txn: Txn
  readonly tree: TreeWriter
  /**
   * The batch's clock. A batch of the replica's own clock reads it through
   * (a copy-on-write view: the counters this batch sets are its own, the
   * rest are the replica's), so opening a batch costs O(1), not
   * O(authors); only the counters named in {@link changed} are adopted.
   * Read it by author; do not enumerate it.
   */
  readonly clock: VectorClock
  readonly heads: Map<string, Dot>
  /** Authors whose counter this batch changed: only their clock rows are written. */
  readonly changed = new Set<string>()
  /** Entries applied so far, pruned ones included (the sum of {@link clock}): each applied entry's place in causal order. */
  total: number
  applied: Uint8Array[] = []
  /** The new {@link ReplicaStore.ahead} when an entry of this batch changed it. */
  ahead?: VectorClock
  /** Per author whose entry this batch applied, that entry's seq and CID (see {@link ReplicaStore.tip}). */
  readonly tips = new Map<string, Tip>()
  /** Manifests of the files this batch shows pinned to one (told once the batch is committed: replica.ts `onReferences`). */
  referenced?: Set<string>
  /** The replica's tips, when the batch reads through to the replica's clock. */
  private readonly baseTips?: ReadonlyMap<string, Tip>

  /**
   * @param clock the clock the batch starts from, copied unless `over` says it is the replica's own
   * @param over the replica's clock and its sum: the batch's clock reads through to it
   */
  constructor (kv: KV, clock: VectorClock, heads: Map<string, Dot>, over?: { total: number, tips: ReadonlyMap<string, Tip> }) {
    this.txn = new Txn(kv)
    this.tree = new TreeWriter(this.txn, { onPinned: manifest => { (this.referenced ??= new Set()).add(manifest) } })
    this.clock = over === undefined ? { ...clock } : Object.create(clock)
    this.heads = new Map(heads)
    this.total = over?.total ?? weight(clock)
    this.baseTips = over?.tips
  }

  /** An applied entry (`cid` at `dot`) is now its author's latest in this batch. */
  setTip (dot: Dot, cid: string): void { this.tips.set(dot[0], { seq: dot[1], cid }) }

  /**
   * The CID of the entry this batch (or the replica under it) applied at
   * `dot`, when it is its author's latest and so held in memory; undefined
   * when only the `s!` row can tell.
   */
  tip (dot: Dot): string | undefined {
    return cidAt(this.tips.get(dot[0]) ?? this.baseTips?.get(dot[0]), dot)
  }
}

/** An author's latest applied entry: its seq and CID. */
export interface Tip { seq: number, cid: string }

/** The CID of `tip` when it is the entry at `dot` (its author's latest is that seq). */
function cidAt (tip: Tip | undefined, dot: Dot): string | undefined {
  return tip !== undefined && tip.seq === dot[1] ? tip.cid : undefined
}

/**
 * Something another module writes with every commit: called before the
 * batch is written (it may add to `batch.txn`); returns what to do once the
 * batch is durable and adopted, if anything.
 */
export type CommitHook = (batch: Batch) => (() => void) | undefined

/** Head CIDs in a stable order. */
export function sortedHeads (heads: Map<string, Dot>): string[] {
  return [...heads.keys()].sort()
}

/** The store, the replica's clock, heads, pruned frontier and `ahead`, and its lock. */
export class ReplicaStore {
  private clockState: VectorClock = {}
  /** The sum of {@link clockState}'s counters. */
  private totalState = 0
  /** Heads (entry CIDs) with the dot of each. */
  private headState = new Map<string, Dot>()
  private prunedState: VectorClock = {}
  /**
   * Per untrusted author, the highest of its entries that an applied entry
   * depends on (causal.ts, `ready`): its entries up to there are in the past
   * of an applied entry, so should they arrive (the author trusted later),
   * none becomes a head.
   */
  private aheadState: VectorClock = {}
  /**
   * Per author, the seq and CID of its latest entry applied since open
   * (what an applied `s!` row holds, kept in memory): the entries that
   * arrive name their parents by dot and CID, and a parent is nearly always
   * its author's latest, so checking that the two agree (apply.ts
   * `badLinks`), or that an entry received again is the one applied
   * (log.ts), costs no read. O(authors), as the clock.
   */
  private tipState = new Map<string, Tip>()
  private queue: Promise<unknown> = Promise.resolve()
  private readonly hooks: CommitHook[] = []

  constructor (readonly kv: KV) {}

  /** Where the store lives, for messages. */
  get where (): string {
    return this.kv.location ?? 'the namespace store'
  }

  /** What this replica has applied (the live record, changed in place by commits: read it at once, never keep or change it). */
  get clock (): VectorClock { return this.clockState }
  /** The heads with their dots (the live record: read, never change it). */
  get heads (): Map<string, Dot> { return this.headState }

  /** Entries applied (the sum of {@link clock}'s counters, kept as they change: O(1)). */
  get total (): number { return this.totalState }
  /** History before this clock has been pruned. */
  get pruned (): VectorClock { return this.prunedState }
  /** See {@link aheadState}. */
  get ahead (): VectorClock { return this.aheadState }

  /**
   * Load the clock (from its rows, or `legacyClock`: the whole-clock record
   * of an older store, upgraded later at open), the pruned frontier and
   * `ahead`. The heads are loaded apart ({@link setHeads}): their format may
   * need an upgrade that needs the rest of the replica.
   */
  async load (legacyClock: VectorClock | undefined): Promise<void> {
    this.clockState = legacyClock ?? await this.loadClock()
    this.tipState = new Map()
    this.totalState = weight(this.clockState)
    this.prunedState = await this.meta<VectorClock>('pruned') ?? {}
    this.aheadState = await this.meta<VectorClock>('ahead') ?? {}
  }

  /** The heads read at open. */
  setHeads (heads: Map<string, Dot>): void { this.headState = heads }

  /** The pruned frontier, once the batch that pruned up to it is durable. */
  setPruned (pruned: VectorClock): void { this.prunedState = pruned }

  /** A batch starting from `clock` and `heads` (by default the replica's; its clock then reads through to the replica's, see {@link Batch.clock}). */
  batch (clock: VectorClock = this.clockState, heads: Map<string, Dot> = this.headState): Batch {
    return new Batch(this.kv, clock, heads, clock === this.clockState ? { total: this.totalState, tips: this.tipState } : undefined)
  }

  /** The CID of the entry applied at `dot` when it is its author's latest applied since open (no read); undefined otherwise. */
  tip (dot: Dot): string | undefined { return cidAt(this.tipState.get(dot[0]), dot) }

  /** Write with every commit (see {@link CommitHook}). */
  onCommit (hook: CommitHook): void { this.hooks.push(hook) }

  /**
   * Write a batch — its tree and log changes, the clock rows it changed, the
   * head rows it added and removed, `ahead`, and what the commit hooks add —
   * in one fsynced batch, then adopt its state.
   */
  async commit (batch: Batch): Promise<void> {
    const after = this.hooks.map(hook => hook(batch))
    for (const author of batch.changed) batch.txn.put(clockKey(author), batch.clock[author])
    // the head rows are those of the heads adopted last (loadHeads made them so at open)
    for (const head of this.headState.keys()) if (!batch.heads.has(head)) batch.txn.del(headKey(head))
    for (const [head, dot] of batch.heads) if (!this.headState.has(head)) batch.txn.put(headKey(head), dot)
    if (batch.ahead !== undefined) batch.txn.put(metaKey('ahead'), batch.ahead)
    await batch.txn.commit(true)
    if (Object.getPrototypeOf(batch.clock) === this.clockState) {
      // a batch of this clock: its counters are adopted in place (O(changed), not O(authors); no reader keeps the record across a commit)
      for (const author of batch.changed) this.clockState[author] = batch.clock[author]
      for (const [author, tip] of batch.tips) this.tipState.set(author, tip)
    } else {
      // a clock of its own (an upgrade, a snapshot merge): only the tips it applied are known
      this.clockState = batch.clock
      this.tipState = new Map(batch.tips)
    }
    this.totalState = batch.total
    this.headState = batch.heads
    if (batch.ahead !== undefined) this.aheadState = batch.ahead
    for (const done of after) done?.()
  }

  /** One of the replica's `m!` records, or undefined. */
  async meta<T> (name: string): Promise<T | undefined> {
    const bytes = await this.kv.get(metaKey(name))
    return bytes === undefined ? undefined : decodeJSON<T>(bytes)
  }

  /** Run `fn` under the replica's lock, after everything queued before it. */
  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => {})
    return await run
  }

  /** Resolves once everything queued so far has run. */
  async settled (): Promise<void> {
    await this.queue.catch(() => {})
  }

  /** The vector clock from its rows. */
  private async loadClock (): Promise<VectorClock> {
    const clock: VectorClock = {}
    for await (const [key, value] of this.kv.iterate({ ...CLOCK_RANGE })) clock[authorOfClockKey(key)] = decodeJSON<number>(value)
    return clock
  }
}
