/**
 * The log as peers see it: entries received from them, and entries served
 * to them.
 *
 * - **Receiving**: every entry is checked (canonical dag-cbor, shape, a
 *   trusted author, its author's signature, no second entry for one author
 *   and seq) before anything is done with it. A received batch is
 *   authenticated as a whole: an entry in the hash-ancestry of a signed
 *   entry of the same author in the batch is covered by that signature
 *   (identity.ts, `authenticateBatch`), so a page of history costs about
 *   one signature check per author; an entry whose causal past is missing
 *   waits in a bounded buffer; every entry that is ready is applied
 *   (apply.ts), in batches. Rejected and untrusted entries are counted.
 * - **Serving**: what a peer lacks by vector clock, one page in causal order
 *   (or the snapshot to start from when it is behind the pruned history),
 *   and the newest entries of an author (status views).
 *
 * It owns the buffer of held entries and the reject/untrusted counters; the
 * clock and heads are the store's, the snapshot the snapshots module's.
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import { MAX_BATCH_ENTRIES, decodeEntryParts, entryBodyOf, type DecodedEntry, type LogEntry } from '../../protocol/namespace.js'
import { cidText } from '../../protocol/cid-text.js'
import { cborCID } from '../blocks/verify.js'
import { covers, merge, missing, type VectorClock } from './clock.js'
import { ready } from './causal.js'
import { decodeJSON, getMany } from './kv.js'
import { entryKey, seqKey } from './rows.js'
import { WarnLimit, type TrustPolicy } from './trust.js'
import type { Applier, EntryText } from './apply.js'
import { authenticateBatch, type LinkedEntry, type Verifier } from './identity.js'
import type { ReplicaStore } from './store.js'
import type { WallClock } from './api.js'
import type { Logger } from '../logger.js'

/**
 * A drain lets the event loop run after this many applied entries. Applying
 * is CPU work whose awaits are all microtasks, so a page of 1,000 would
 * otherwise hold the main thread for its whole length: the request for the
 * next page a pull has just asked ahead (a new stream, its protocol
 * negotiation, the request's bytes) would wait for it, and the peer with
 * it. Measured on a history pull from a peer in another process: the new
 * node's main thread was 78–86 % busy, waiting on each next page; 95 % with
 * this (docs/benchmarks.md, "Namespace convergence and bootstrap").
 */
const DRAIN_YIELD_EVERY = 100

/** What {@link EntryLog.receive} did. */
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

/** An entry that passed its checks. */
interface Pending { cid: CID, entry: LogEntry, bytes: Uint8Array, text?: EntryText }

/**
 * A batch of entries {@link EntryLog.prepare} checked and authenticated,
 * not yet held or applied (nothing of the replica's state changed). It may
 * be taken by {@link EntryLog.accept} after other batches were applied: a
 * pull checks the next page while the one before is committed.
 */
export interface PreparedEntries {
  /** The entries that passed, in the batch's order. */
  readonly fresh: readonly Pending[]
  /** What the checks counted (duplicates, rejected, untrusted). */
  readonly counted: Readonly<ReceiveResult>
  readonly from?: string
}

/** An entry that passed every check but its signature: what batch authentication takes. */
interface Candidate extends Omit<Pending, 'text'>, LinkedEntry {
  /** Where its signature lies in its bytes, when the decoder found it. */
  sigField: DecodedEntry['sigField']
}

/** What {@link EntryLog} is built from. */
export interface EntryLogComponents {
  store: ReplicaStore
  applier: Pick<Applier, 'apply' | 'badLinks'>
  /** This replica's author id. */
  id: string
  trust: TrustPolicy
  verifier: Verifier
  clock: WallClock
  logger: Logger
  /** Most entries held while waiting for their causal past. */
  maxPending: number
  /** A peer showed this node's own seq as `seen` (recovery.ts). */
  heardSelf: (seen: number, peer: string) => void
  /** The snapshot a peer behind the pruned history starts from (snapshots.ts). */
  snapshot: () => Promise<{ root: CID, clock: VectorClock } | undefined>
  /** Remote entries changed the tree. */
  changed: () => void
  /** Called before a batch of other replicas' entries is applied (the clock before them is what a writer who began then saw: clock-history.ts). */
  arriving?: () => void
}

/** Receives, holds and applies remote entries; serves pulls. */
export class EntryLog {
  private readonly pending = new Map<string, Map<number, Pending>>()
  private pendingCount = 0
  private readonly untrustedWarnings = new WarnLimit()
  /** Entries rejected since start (bad signature, shape, equivocation). */
  rejected = 0
  /** Entries dropped since start because their author is not trusted (never stored, never applied). */
  untrusted = 0

  constructor (private readonly components: EntryLogComponents) {}

  /**
   * Take entries from a peer: check each (canonical dag-cbor, shape, a
   * trusted author, no second entry for one author and seq), authenticate
   * the batch (each entry signed by its author, itself or through hash links
   * from a signed entry of its author in `list`), hold those whose causal
   * past is missing, apply every one that is ready. Nothing is held or
   * applied before the whole batch is authenticated.
   */
  async receive (list: Uint8Array[], from?: string): Promise<ReceiveResult> {
    return await this.accept(await this.prepare(list, from))
  }

  /**
   * The checks of {@link receive}, and the batch's authentication, without
   * holding or applying anything: each entry is decoded and checked
   * against what this replica holds now, and the batch authenticated as a
   * whole. Rejections are counted and logged here.
   */
  async prepare (list: Uint8Array[], from?: string): Promise<PreparedEntries> {
    const result: ReceiveResult = { applied: 0, duplicates: 0, rejected: 0, untrusted: 0, pending: 0 }
    const candidates: Candidate[] = []
    const inBatch = new Set<string>()
    let previous: Candidate | undefined
    for (const bytes of list) {
      const checked = await this.check(bytes, from, previous)
      if (checked === 'duplicate') result.duplicates++
      else if (checked === 'untrusted') result.untrusted++
      else if (checked === undefined) result.rejected++
      else if (inBatch.has(checked.key)) result.duplicates++
      else {
        inBatch.add(checked.key)
        candidates.push(checked)
        previous = checked
      }
    }
    const fresh = await this.authenticate(candidates, from)
    result.rejected += candidates.length - fresh.length
    return { fresh, counted: result, from }
  }

  /**
   * Hold the entries of a prepared batch and apply every one that is ready,
   * under the store's lock. An entry whose dot was applied since it was
   * checked (another batch came first) is checked against the applied one
   * as {@link receive} checks it: the same entry is a duplicate, another
   * one with that dot is rejected.
   */
  async accept (prepared: PreparedEntries): Promise<ReceiveResult> {
    const { store } = this.components
    const result: ReceiveResult = { ...prepared.counted }
    await store.exclusive(async () => {
      const held: Pending[] = []
      for (const p of prepared.fresh) {
        if (covers(store.clock, [p.entry.author, p.entry.seq])) {
          if (await this.againstApplied(p.entry, p.cid, p.text?.cid ?? cidText(p.cid), prepared.from) === 'duplicate') result.duplicates++
          else result.rejected++
          continue
        }
        if (this.hold(p)) held.push(p)
      }
      if (held.length > 0) this.components.arriving?.()
      result.applied = await this.drain()
      // the bound holds after the batch had its turn: a ready entry is never refused for want of room
      this.release(held)
    })
    result.pending = this.pendingCount
    if (result.applied > 0) this.components.changed()
    return result
  }

  /**
   * Apply every held entry whose causal past is applied, in batches. Held
   * entries of an author no longer trusted are dropped. Runs under the
   * store's lock (the caller holds it).
   */
  async drain (): Promise<number> {
    const { store, applier, trust } = this.components
    let applied = 0
    let batch = store.batch()
    let progress = true
    while (progress) {
      progress = false
      for (const [author, byAuthor] of this.pending) {
        if (!trust.trusts(author)) {
          this.pending.delete(author)
          this.pendingCount -= byAuthor.size
          this.distrust(author, byAuthor.size)
          continue
        }
        for (;;) {
          const next = byAuthor.get((batch.clock[author] ?? 0) + 1)
          if (next === undefined || !ready(next.entry, batch.clock, trust)) break
          byAuthor.delete(next.entry.seq)
          this.pendingCount--
          // both answer at once for nearly every entry of a page (apply.ts): awaited only when they could not
          let bad = applier.badLinks(batch, next.entry, next.text)
          if (bad instanceof Promise) bad = await bad
          if (bad !== undefined) {
            // its author's later entries never become ready either: they wait behind the gap
            this.reject(undefined, next.cid, bad)
            break
          }
          const applying = applier.apply(batch, next.cid, next.entry, next.bytes, next.text)
          if (applying !== undefined) await applying
          applied++
          progress = true
          if (applied % DRAIN_YIELD_EVERY === 0) await new Promise(resolve => setImmediate(resolve))
          if (batch.applied.length >= 1000) {
            await store.commit(batch)
            batch = store.batch()
          }
        }
        // what the clock already covers will never apply: drop it
        for (const seq of byAuthor.keys()) {
          if (seq <= (batch.clock[author] ?? 0)) { byAuthor.delete(seq); this.pendingCount-- }
        }
        if (byAuthor.size === 0) this.pending.delete(author)
      }
    }
    if (batch.applied.length > 0) await store.commit(batch)
    return applied
  }

  /** What a peer with clock `remote` lacks: one page in causal order, or the snapshot to start from. */
  async pull (remote: VectorClock, limit: number, maxBytes = 3 * 1024 * 1024): Promise<PullAnswer> {
    const { store } = this.components
    return await store.exclusive(async () => {
      for (const [author, n] of Object.entries(store.pruned)) {
        if ((remote[author] ?? 0) < n) {
          const snap = await this.components.snapshot()
          if (snap !== undefined) return { type: 'snapshot' as const, root: snap.root, clock: snap.clock }
        }
      }
      limit = Math.max(1, Math.min(limit, MAX_BATCH_ENTRIES))
      const total = missing(store.clock, merge(remote, store.pruned))
      const entries: Uint8Array[] = []
      let bytes = 0
      // the page's entries in one read (the index rows above say which)
      const cids = await this.firstLacked(remote, limit)
      for (const entry of await getMany(store.kv, cids.map(entryKey))) {
        if (entry === undefined) break
        if (entries.length > 0 && bytes + entry.byteLength > maxBytes) break
        entries.push(entry)
        bytes += entry.byteLength
      }
      return { type: 'entries' as const, entries, more: entries.length < total }
    })
  }

  /**
   * The CIDs of the first `limit` entries a peer with clock `remote` lacks,
   * in the order they were applied here (causal order). Each author's rows
   * come in that order already: they are merged lazily, so about `limit`
   * rows are read whatever the number of authors behind. Under the lock.
   */
  private async firstLacked (remote: VectorClock, limit: number): Promise<string[]> {
    const { store } = this.components
    const cursors: Array<{ rows: AsyncIterator<[string, Uint8Array]>, row: { cid: string, w: number } }> = []
    const out: string[] = []
    try {
      for (const [author, n] of Object.entries(store.clock)) {
        const from = Math.max(remote[author] ?? 0, store.pruned[author] ?? 0)
        if (from >= n) continue
        const rows = store.kv.iterate({ gt: seqKey(author, from), lte: seqKey(author, n), limit })[Symbol.asyncIterator]()
        const first = await rows.next()
        if (first.done !== true) cursors.push({ rows, row: decodeJSON(first.value[1]) })
      }
      while (out.length < limit && cursors.length > 0) {
        let min = 0
        for (let i = 1; i < cursors.length; i++) if (cursors[i].row.w < cursors[min].row.w) min = i
        const c = cursors[min]
        out.push(c.row.cid)
        const next = await c.rows.next()
        if (next.done === true) cursors.splice(min, 1)
        else c.row = decodeJSON(next.value[1])
      }
    } finally {
      await Promise.all(cursors.map(async c => await c.rows.return?.()))
    }
    return out
  }

  /**
   * The newest `limit` log entries of `author` this replica holds, newest
   * first, encoded. Read-only and outside the replica's lock (for status
   * views): an entry compacted away meanwhile is skipped.
   */
  async * newestEntries (author: string, limit: number): AsyncGenerator<Uint8Array> {
    const { store } = this.components
    const n = store.clock[author] ?? 0
    if (n === 0 || limit < 1) return
    for await (const [, value] of store.kv.iterate({ gt: seqKey(author, 0), lte: seqKey(author, n), limit, reverse: true })) {
      const entry = await store.kv.get(entryKey(decodeJSON<{ cid: string }>(value).cid))
      if (entry !== undefined) yield entry
    }
  }

  /** True when `clock` holds entries by trusted authors this replica lacks (what is worth a pull). */
  lacks (clock: VectorClock): boolean {
    const applied = this.components.store.clock
    for (const [author, n] of Object.entries(clock)) {
      if ((applied[author] ?? 0) < n && this.components.trust.trusts(author)) return true
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
    const out = { ...this.components.store.clock }
    for (const [author, n] of Object.entries(peer)) {
      if ((out[author] ?? 0) < n && !this.components.trust.trusts(author)) out[author] = n
    }
    return out
  }

  /**
   * Check one encoded entry, all but its signature; undefined when rejected.
   * An entry by an author this replica does not trust (now) is dropped
   * here, before anything else is done with it. `previous`, the entry
   * checked before it in the batch, is most often its parent (a page of
   * history is a chain): that parent's text is taken rather than made again.
   */
  private async check (bytes: Uint8Array, from?: string, previous?: Candidate): Promise<Candidate | 'duplicate' | 'untrusted' | undefined> {
    const { store } = this.components
    let entry: LogEntry
    let sigField: DecodedEntry['sigField']
    try {
      // size limit and canonical form (one CID per entry) are the decoder's
      ({ entry, sigField } = decodeEntryParts(bytes))
    } catch (err: any) {
      return this.reject(from, undefined, err?.message ?? String(err))
    }
    if (!this.components.trust.trusts(entry.author)) return this.distrust(entry.author, 1, from)
    const cid = cborCID(bytes)
    const key = cidText(cid)
    const held = this.pending.get(entry.author)?.get(entry.seq)
    if (held !== undefined) return held.cid.equals(cid) ? 'duplicate' : this.reject(from, cid, `second entry ${entry.seq} by ${entry.author}`)
    if (covers(store.clock, [entry.author, entry.seq])) return await this.againstApplied(entry, cid, key, from)
    const parents: string[] = []
    for (let i = 0; i < entry.parents.length; i++) {
      const p = entry.parents[i]
      if (previous !== undefined && p.equals(previous.cid)) {
        // the entry before it in the batch: its CID object (equal, held anyway) replaces the decoded copy, which the page would hold too
        entry.parents[i] = previous.cid
        parents.push(previous.key)
      } else {
        parents.push(cidText(p))
      }
    }
    return { cid, key, entry, bytes, author: entry.author, seq: entry.seq, parents, sigField }
  }

  /** An entry whose dot this replica has applied: a duplicate when it is that entry, else rejected (undefined). */
  private async againstApplied (entry: LogEntry, cid: CID, key: string, from?: string): Promise<'duplicate' | undefined> {
    const { store, id, logger } = this.components
    const known = store.tip([entry.author, entry.seq]) ?? await this.appliedAt(entry.author, entry.seq)
    if (known !== undefined && known !== key) {
      if (entry.author === id) logger.error({ from, seq: entry.seq }, 'a peer holds another entry of this node with a seq this node used: this node reused one of its own past seqs (a store lost or restored from a backup while writes went on); those writes diverge')
      return this.reject(from, cid, `second entry ${entry.seq} by ${entry.author}`)
    }
    return 'duplicate'
  }

  /** The CID of the entry applied at (`author`, `seq`), from its `s!` row (undefined: none). */
  private async appliedAt (author: string, seq: number): Promise<string | undefined> {
    const row = await this.components.store.kv.get(seqKey(author, seq))
    return row === undefined ? undefined : decodeJSON<{ cid: string }>(row).cid
  }

  /**
   * The entries of a batch whose author's signature covers them, directly
   * or through hash links from a signed entry of the same author in the
   * batch (identity.ts, {@link authenticateBatch}); the others are rejected.
   * Of two authenticated entries with one author and seq, the first is kept
   * and the second rejected.
   */
  private async authenticate (candidates: Candidate[], from?: string): Promise<Pending[]> {
    const { verifier, id } = this.components
    const { ok } = await authenticateBatch(candidates, async c => await verifier(c.author, entryBodyOf(c.bytes, c.entry, c.sigField), c.entry.sig))
    const fresh: Pending[] = []
    const dots = new Set<string>()
    for (const [i, c] of candidates.entries()) {
      if (!ok[i]) {
        this.reject(from, c.cid, `bad signature by ${c.author}`)
        continue
      }
      const dot = `${c.seq}:${c.author}`
      if (dots.has(dot)) {
        this.reject(from, c.cid, `second entry ${c.seq} by ${c.author}`)
        continue
      }
      dots.add(dot)
      // one of this node's own past entries that its store lacks: it is behind its own writes
      if (c.author === id && from !== undefined) this.components.heardSelf(c.seq, from)
      fresh.push({ cid: c.cid, entry: c.entry, bytes: c.bytes, text: { cid: c.key, parents: c.parents } })
    }
    return fresh
  }

  private reject (from: string | undefined, cid: CID | undefined, reason: string): undefined {
    this.rejected++
    this.components.logger.warn({ from, cid: cid?.toString(), reason }, 'namespace entry rejected')
    return undefined
  }

  /** Count `n` entries by `author` dropped as untrusted; log it, at most once a minute per author. */
  private distrust (author: string, n: number, from?: string): 'untrusted' {
    this.untrusted += n
    const suppressed = this.untrustedWarnings.take(author, this.components.clock.now())
    if (suppressed !== undefined) this.components.logger.warn({ from, author, dropped: n, suppressed }, 'namespace entries by an untrusted author dropped')
    return 'untrusted'
  }

  /** Hold `p` until its causal past is applied; true when it was not held already. */
  private hold (p: Pending): boolean {
    if (covers(this.components.store.clock, [p.entry.author, p.entry.seq])) return false
    let byAuthor = this.pending.get(p.entry.author)
    if (byAuthor === undefined) {
      byAuthor = new Map()
      this.pending.set(p.entry.author, byAuthor)
    }
    if (byAuthor.has(p.entry.seq)) return false
    byAuthor.set(p.entry.seq, p)
    this.pendingCount++
    return true
  }

  /**
   * Past {@link EntryLogComponents.maxPending}, let go of the entries of
   * `batch` (those it held) still waiting, its last first: a later pull
   * brings them again. The entries held before stay, and so does every
   * entry that was ready: it was applied before the bound was checked.
   */
  private release (batch: readonly Pending[]): void {
    for (let i = batch.length - 1; i >= 0 && this.pendingCount > this.components.maxPending; i--) {
      const { author, seq } = batch[i].entry
      const byAuthor = this.pending.get(author)
      if (byAuthor?.get(seq) !== batch[i]) continue
      byAuthor.delete(seq)
      this.pendingCount--
      if (byAuthor.size === 0) this.pending.delete(author)
    }
  }
}
