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
import type { Entry as LogEntry, RetireOp } from '../../protocol/namespace.js'
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
   * @param text the entry's CIDs as text, when the caller has them (made here otherwise)
   */
  async apply (batch: Batch, cid: CID, entry: LogEntry, bytes: Uint8Array, text?: EntryText): Promise<void> {
    const superseded = await this.takeSuperseded(batch.txn, [entry.author, entry.seq])
    // what it depends on by authors not applied here, noted before its ops are placed in its past
    const ahead = batch.ahead ?? this.components.state.ahead
    const skipped = skippedDeps(entry, batch.clock)
    if (skipped !== undefined) batch.ahead = merge(ahead, skipped)
    // a v2 entry does not carry its clock: a replaced dot this replica cannot place in its past is not taken as superseded (see inKnownPast)
    const replaced = (dots: Dot[]): Dot[] => entry.v === 1 ? dots : dots.filter(d => this.inKnownPast(batch, d))
    for (const op of entry.ops) {
      if (op.op === 'retire') {
        this.components.retired?.(batch, op, [entry.author, entry.seq])
        continue
      }
      await this.noteSuperseded(batch, op.path, replaced(op.replaces))
      if (op.op === 'del') {
        await batch.tree.change(op.path, op.replaces)
      } else {
        const version: Version = op.op === 'put'
          ? { author: entry.author, seq: entry.seq, time: entry.time, type: 'file', cid: cidText(op.cid), size: op.size, mode: op.mode, mtime: op.mtime }
          : { author: entry.author, seq: entry.seq, time: entry.time, type: 'dir', mode: op.mode, mtime: op.mtime }
        if (op.op === 'put' && op.pin !== undefined) version.pin = storedPin(op.pin)
        await batch.tree.change(op.path, op.replaces, superseded.has(op.path) ? undefined : version)
      }
    }
    const key = text?.cid ?? cid.toString()
    batch.txn.putBytes(entryKey(key), bytes)
    batch.clock[entry.author] = entry.seq
    batch.changed.add(entry.author)
    batch.total++
    // applied in causal order, so the running count orders entries causally (pull serves by it)
    batch.txn.put(seqKey(entry.author, entry.seq), { cid: key, w: batch.total })
    batch.setTip([entry.author, entry.seq], key)
    for (const [i, p] of entry.parents.entries()) batch.heads.delete(text?.parents[i] ?? p.toString())
    if (!covers(ahead, [entry.author, entry.seq])) batch.heads.set(key, [entry.author, entry.seq])
    batch.applied.push(bytes)
    this.components.noteAuthor(entry)
  }

  /**
   * Why a ready v2 entry cannot be applied, if it cannot: a parent whose
   * entry this replica holds under the dot the entry names must be that
   * entry (the dot and the hash link agree). Pruned parents are not checked.
   */
  async badLinks (batch: Batch, entry: LogEntry, text?: EntryText): Promise<string | undefined> {
    if (entry.v !== 2) return undefined
    for (const [i, dep] of entry.deps.entries()) {
      if (!covers(batch.clock, dep) || covers(this.components.state.pruned, dep)) continue
      const parent = text?.parents[i] ?? entry.parents[i].toString()
      // most parents are current heads, whose dots are in memory: no read
      const head = batch.heads.get(parent)
      if (head !== undefined && head[0] === dep[0] && head[1] === dep[1]) continue
      // and most other parents are their author's latest entry, also in memory
      const applied = batch.tip(dep) ?? (await batch.txn.get<{ cid: string }>(seqKey(dep[0], dep[1])))?.cid
      if (applied !== undefined && applied !== parent) return `parent ${parent} is not the entry [${dep[0]}, ${dep[1]}] it names`
    }
    return undefined
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
