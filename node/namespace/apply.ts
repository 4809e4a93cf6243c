/**
 * Applying one entry to a {@link Batch}: its ops change the tree, the entry
 * is stored (`e!`) and indexed by author and seq (`s!`), the clock and heads
 * move on. Remote entries (log.ts) and local writes (writes.ts) are applied
 * by the same code, so a node's own write and a peer's copy of it leave the
 * same state.
 *
 * It owns the versions superseded before they arrived (`r!` rows, and the
 * set of their authors kept in memory so that most entries cost no read):
 * an op may replace a version by an author this replica does not trust
 * (yet); the dot is remembered at that path so the version never becomes
 * live should its entry arrive later, as if entries had been applied in
 * causal order.
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import type { LogEntry, MkdirOp, Op, PutOp, RetireOp } from '../../protocol/namespace.js'
import { cidText } from '../../protocol/cid-text.js'
import { covers, merge, type Dot, type VectorClock } from './clock.js'
import { skippedDeps } from './causal.js'
import { decodeJSON, type KV, type Txn } from './kv.js'
import { storedPin } from './pins.js'
import { SUPERSEDED_RANGE, dotOfSupersededKey, entryKey, seqKey, supersededKey } from './rows.js'
import type { Batch } from './store.js'
import type { Version } from './tree.js'

/** An entry's CID and its parents' CIDs as text, when the caller has them already (log.ts). */
export interface EntryText {
  cid: string
  /** In the entry's order of parents. */
  parents: readonly string[]
}

/** What {@link Applier} is built from. */
export interface ApplierComponents {
  kv: KV
  /** The replica's state this module reads (store.ts). */
  state: {
    /** Untrusted authors' entries that applied entries depend on. */
    readonly ahead: VectorClock
    /** History before this clock has been pruned. */
    readonly pruned: VectorClock
  }
  /** An applied entry tells what its author had seen (members.ts). */
  noteAuthor: (entry: LogEntry) => void
  /** A retire op applied in `batch` by the entry `dot` (retire.ts). */
  retired?: (batch: Batch, op: RetireOp, dot: Dot) => void
}

/** No path (what most entries have superseded before they arrived). */
const NONE: ReadonlySet<string> = new Set()

/** What {@link Applier} `linkInMemory` answers when only a read can tell. */
const UNKNOWN: unique symbol = Symbol('unknown')

/** A log entry of version 2 (it names its parents' dots). */
type EntryV2 = Extract<LogEntry, { v: 2 }>

/** The `i`-th parent's CID as text. */
function parentText (entry: LogEntry, i: number, text?: EntryText): string {
  return text?.parents[i] ?? entry.parents[i].toString()
}

/** Why {@link Applier.badLinks} refuses the `i`-th parent of `entry`. */
function badLink (entry: EntryV2, i: number, text?: EntryText): string {
  const dep = entry.deps[i]
  return `parent ${parentText(entry, i, text)} is not the entry [${dep[0]}, ${dep[1]}] it names`
}

/** The version a put or mkdir op of `entry` makes. */
function versionOf (entry: LogEntry, op: PutOp | MkdirOp): Version {
  const version: Version = op.op === 'put'
    ? { author: entry.author, seq: entry.seq, time: entry.time, type: 'file', cid: cidText(op.cid), size: op.size, mode: op.mode, mtime: op.mtime }
    : { author: entry.author, seq: entry.seq, time: entry.time, type: 'dir', mode: op.mode, mtime: op.mtime }
  if (op.op === 'put' && op.pin !== undefined) version.pin = storedPin(op.pin)
  return version
}

/** Applies entries into batches; owns the superseded-before-arrival rows. */
export class Applier {
  /** Authors with versions superseded here before they were applied (`r!` keys). */
  private readonly supersededAuthors = new Set<string>()

  constructor (private readonly components: ApplierComponents) {}

  /** Load the authors of the superseded rows (at open). */
  async load (): Promise<void> {
    for await (const [key] of this.components.kv.iterate({ ...SUPERSEDED_RANGE })) this.supersededAuthors.add(dotOfSupersededKey(key)[0])
  }

  /** Forget what was loaded (an open that failed). */
  clear (): void { this.supersededAuthors.clear() }

  /**
   * Apply one entry whose causal past is applied — except entries of authors
   * this replica does not trust (causal.ts, `ready`). So an op may replace a
   * version this replica has not applied yet (it was written by an author
   * not trusted when the op arrived): the tree has nothing to drop, and the
   * dot is remembered as superseded at that path (`r!`), so that the version
   * never becomes live should its entry arrive later (its author trusted
   * again), as if the entries had been applied in causal order.
   *
   * Done at once (returns undefined) when no step needs to wait: no
   * version of its author was superseded here, every version its ops
   * replace is applied, and each op is a usual tree change (tree.ts
   * `changeNow`) — what nearly every entry of a page of history is. Else
   * returns the promise of the rest; the state it leaves is the same.
   *
   * @param text the entry's CIDs as text, when the caller has them (made here otherwise)
   */
  apply (batch: Batch, cid: CID, entry: LogEntry, bytes: Uint8Array, text?: EntryText): Promise<void> | undefined {
    if (this.supersededAuthors.has(entry.author)) return this.applyWaiting(batch, cid, entry, bytes, text)
    const ahead = this.noteSkipped(batch, entry)
    for (let i = 0; i < entry.ops.length; i++) {
      if (!this.applyOpNow(batch, entry, entry.ops[i])) return this.applyOps(batch, entry, NONE, i).then(() => { this.record(batch, cid, entry, bytes, ahead, text) })
    }
    this.record(batch, cid, entry, bytes, ahead, text)
    return undefined
  }

  /** {@link apply}, each step awaited. */
  private async applyWaiting (batch: Batch, cid: CID, entry: LogEntry, bytes: Uint8Array, text?: EntryText): Promise<void> {
    const superseded = await this.takeSuperseded(batch.txn, [entry.author, entry.seq])
    const ahead = this.noteSkipped(batch, entry)
    await this.applyOps(batch, entry, superseded, 0)
    this.record(batch, cid, entry, bytes, ahead, text)
  }

  /**
   * Note what `entry` depends on by authors not applied here, before its
   * ops are placed in its past; `ahead` as it was before (what decides
   * whether the entry becomes a head).
   */
  private noteSkipped (batch: Batch, entry: LogEntry): VectorClock {
    const ahead = batch.ahead ?? this.components.state.ahead
    const skipped = skippedDeps(entry, batch.clock)
    if (skipped !== undefined) batch.ahead = merge(ahead, skipped)
    return ahead
  }

  /** The ops of `entry` from the `from`-th on, each awaited; `superseded`: the paths where its version was superseded before it arrived. */
  private async applyOps (batch: Batch, entry: LogEntry, superseded: ReadonlySet<string>, from: number): Promise<void> {
    // a v2 entry does not carry its clock: a replaced dot this replica cannot place in its past is not taken as superseded (see inKnownPast)
    const replaced = (dots: Dot[]): Dot[] => entry.v === 1 ? dots : dots.filter(d => this.inKnownPast(batch, d))
    for (let i = from; i < entry.ops.length; i++) {
      const op = entry.ops[i]
      if (op.op === 'retire') {
        this.components.retired?.(batch, op, [entry.author, entry.seq])
        continue
      }
      await this.noteSuperseded(batch, op.path, replaced(op.replaces))
      await batch.tree.change(op.path, op.replaces, op.op === 'del' || superseded.has(op.path) ? undefined : versionOf(entry, op))
    }
  }

  /**
   * One op of {@link apply} done at once, when it can be: every version it
   * replaces is applied here (so none is remembered as superseded) and the
   * tree changes at once. False, having changed nothing, otherwise.
   */
  private applyOpNow (batch: Batch, entry: LogEntry, op: Op): boolean {
    if (op.op === 'retire') {
      this.components.retired?.(batch, op, [entry.author, entry.seq])
      return true
    }
    for (const dot of op.replaces) if (!covers(batch.clock, dot)) return false
    return batch.tree.changeNow(op.path, op.replaces, op.op === 'del' ? undefined : versionOf(entry, op))
  }

  /** The end of {@link apply}: the entry is stored and indexed, the clock and heads move on. */
  private record (batch: Batch, cid: CID, entry: LogEntry, bytes: Uint8Array, ahead: VectorClock, text?: EntryText): void {
    const key = text?.cid ?? cid.toString()
    batch.txn.putBytes(entryKey(key), bytes)
    batch.clock[entry.author] = entry.seq
    batch.changed.add(entry.author)
    batch.total++
    // applied in causal order, so the running count orders entries causally (pull serves by it)
    batch.txn.put(seqKey(entry.author, entry.seq), { cid: key, w: batch.total })
    batch.setTip([entry.author, entry.seq], key)
    for (let i = 0; i < entry.parents.length; i++) batch.heads.delete(text?.parents[i] ?? entry.parents[i].toString())
    if (!covers(ahead, [entry.author, entry.seq])) batch.heads.set(key, [entry.author, entry.seq])
    batch.applied.push(bytes)
    this.components.noteAuthor(entry)
  }

  /**
   * Why a ready v2 entry cannot be applied, if it cannot: a parent whose
   * entry this replica holds under the dot the entry names must be that
   * entry (the dot and the hash link agree). Pruned parents are not checked.
   * Answered at once (not a promise) when every parent is a head or its
   * author's latest entry, whose dots are in memory.
   */
  badLinks (batch: Batch, entry: LogEntry, text?: EntryText): string | undefined | Promise<string | undefined> {
    if (entry.v !== 2) return undefined
    for (let i = 0; i < entry.deps.length; i++) {
      const known = this.linkInMemory(batch, entry, i, text)
      if (known === UNKNOWN) return this.badLinksFrom(batch, entry, i, text)
      if (known !== undefined) return known
    }
    return undefined
  }

  /** {@link badLinks} from the `from`-th parent on, reading the `s!` rows memory does not tell. */
  private async badLinksFrom (batch: Batch, entry: EntryV2, from: number, text?: EntryText): Promise<string | undefined> {
    for (let i = from; i < entry.deps.length; i++) {
      const known = this.linkInMemory(batch, entry, i, text)
      if (known !== UNKNOWN) {
        if (known !== undefined) return known
        continue
      }
      const dep = entry.deps[i]
      const applied = (await batch.txn.get<{ cid: string }>(seqKey(dep[0], dep[1])))?.cid
      if (applied !== undefined && applied !== parentText(entry, i, text)) return badLink(entry, i, text)
    }
    return undefined
  }

  /**
   * What memory tells of the `i`-th parent of `entry`: nothing wrong
   * (undefined), why it is wrong, or {@link UNKNOWN} when only its `s!` row can tell.
   */
  private linkInMemory (batch: Batch, entry: EntryV2, i: number, text?: EntryText): string | undefined | typeof UNKNOWN {
    const dep = entry.deps[i]
    if (!covers(batch.clock, dep) || covers(this.components.state.pruned, dep)) return undefined
    const parent = parentText(entry, i, text)
    // most parents are current heads, whose dots are in memory: no read
    const head = batch.heads.get(parent)
    if (head !== undefined && head[0] === dep[0] && head[1] === dep[1]) return undefined
    // and most other parents are their author's latest entry, also in memory
    const applied = batch.tip(dep)
    if (applied === undefined) return UNKNOWN
    return applied !== parent ? badLink(entry, i, text) : undefined
  }

  /** Every superseded dot's key (`r!`) with its paths (a snapshot merge drops those versions). */
  async superseded (): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>()
    for await (const [key, value] of this.components.kv.iterate({ ...SUPERSEDED_RANGE })) out.set(key, decodeJSON<string[]>(value))
    return out
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
    return covers(batch.clock, dot) || covers(batch.ahead ?? this.components.state.ahead, dot)
  }

  /** The paths where the version of `dot` was superseded before it arrived (forgotten from now on). */
  private async takeSuperseded (txn: Txn, dot: Dot): Promise<ReadonlySet<string>> {
    if (!this.supersededAuthors.has(dot[0])) return NONE
    const key = supersededKey(dot)
    const paths = await txn.get<string[]>(key)
    if (paths === undefined) return NONE
    txn.del(key)
    return new Set(paths)
  }
}
