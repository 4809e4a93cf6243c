/**
 * The members of the swarm as this replica knows them: per trusted peer,
 * the latest clock heard from it (gossip, pulls, its own entries) and when.
 * From them comes the **stable** clock — what every active member has seen
 * — which decides what compaction may prune (docs/namespace.md,
 * "Compaction").
 *
 * It owns the members map and their rows (`p!<peer>`, rows.ts). Members are
 * heard from on every message, so rows are not written each time: a new
 * member's row goes with the next commit (through the store's commit hook,
 * {@link Members.writeNew}), the others at most every {@link MEMBER_SAVE_MS}
 * and at close. What a member has seen only grows, so a row a crash left
 * behind only holds compaction back a little longer.
 *
 * Members × authors counters is what this module holds, so they are kept
 * compactly: the replica numbers the authors it has heard of (an
 * append-only list, stored one row per author, {@link authorKey}, written
 * once each; older stores hold the first ones as one list row,
 * {@link AUTHORS_KEY}, still read) and each member
 * keeps its counters by that number (member-counters.ts: a map while it
 * names few authors, a typed array beyond), and in its row
 * (`{ seen, counters }`, no author ids; `{ seen, sparse }` with the
 * author numbers of the counters not zero, when that is shorter: a member
 * that joined a namespace of many authors has seen few of them, and a row
 * of every author number up to its own cost O(lifetime authors) per new
 * member). Rows of the older form
 * (`{ clock, seen }`, a clock keyed by author id) are read at open and
 * rewritten in the compact form with the next save.
 *
 * @module
 */
import type { LogEntry } from '../../protocol/namespace.js'
import type { VectorClock } from './clock.js'
import { everyDependency } from './causal.js'
import { decodeJSON, encodeJSON, type KV, type Txn } from './kv.js'
import { AUTHORS_KEY, AUTHOR_RANGE, MEMBER_RANGE, authorKey, memberKey, numberOfAuthorKey, peerOfMemberKey } from './rows.js'
import type { TrustPolicy } from './trust.js'
import type { WallClock } from './api.js'
import { Counters } from './member-counters.js'

/** What a member has seen, and when it was last heard from (ms): the older row form, and the whole-members record of older stores. */
export interface Member { clock: VectorClock, seen: number }

/** A member's stored row: its counters by author number ({@link AUTHORS_KEY}), trailing zeros left out; `forgotten` when set ({@link Members.forget}). */
export interface MemberRow { seen: number, counters: number[], forgotten?: number }

/** A member's stored row when few of its counters are not zero: pairs of author number and counter, flat. */
export interface SparseMemberRow { seen: number, sparse: number[], forgotten?: number }

/** Members heard from are saved at most this often (ms), new members with the next commit. */
export const MEMBER_SAVE_MS = 60_000


/** What {@link Members} is built from. */
export interface MembersComponents {
  kv: KV
  /** This replica's author id. */
  id: string
  trust: TrustPolicy
  clock: WallClock
  /** This replica's applied clock (part of the stable clock). */
  applied: () => VectorClock
  /** A trusted peer's clock showed this node's own seq as `seen` (recovery.ts). */
  heardSelf: (seen: number, peer: string) => void
  /** A member not heard from for this long no longer holds back compaction (ms). */
  memberTimeout: number
}

/**
 * A member in memory: its counters by author number, when it was last
 * heard from, and when a user said its node is gone for good
 * ({@link Members.forget}; cleared when it is heard from itself again).
 */
interface Slot { counters: Counters, seen: number, forgotten?: number }

/** Options of {@link Members.noteMember}. */
export interface NoteMemberOptions {
  /** The clock also tells how far this node's own writes got (recovery.ts). @default true */
  tellsSelf?: boolean
  /** Heard from the member itself (its gossip, a pull with it), not of it through another node: a member forgotten here is a member again. @default false */
  direct?: boolean
}

/** What {@link Members.forget} did. */
export interface ForgetResult {
  /** The member's own writes its last clock named that this node has not applied: gone with it, unless another node holds them. */
  unapplied: number
  /** When it was last heard from (ms since the epoch; 0: never). */
  seen: number
}

/** The authors the members' counters are numbered by: id ↔ number, append-only. */
class AuthorIndex {
  readonly ids: string[] = []
  private readonly numbers = new Map<string, number>()

  /** The number of `author`, undefined when no member counter names it. */
  find (author: string): number | undefined { return this.numbers.get(author) }

  /** The number of `author`, given the next one when it is new. */
  number (author: string): number {
    let n = this.numbers.get(author)
    if (n === undefined) {
      n = this.ids.length
      this.ids.push(author)
      this.numbers.set(author, n)
    }
    return n
  }

  clear (): void {
    this.ids.length = 0
    this.numbers.clear()
  }
}

/** The members map, its rows, and the stable clock. */
export class Members {
  private readonly members = new Map<string, Slot>()
  private readonly authors = new AuthorIndex()
  /** Members whose stored row is behind memory: new ones are written with the next commit, the others at most every {@link MEMBER_SAVE_MS}. */
  private readonly unsavedMembers = new Set<string>()
  private readonly newMembers = new Set<string>()
  /** Authors numbered so far whose rows are durable (the first ones may be in the {@link AUTHORS_KEY} list). */
  private savedAuthors = 0
  private membersSavedAt = 0

  constructor (private readonly components: MembersComponents) {}

  /**
   * Load the members from their rows (either form), or from `legacy` (the
   * whole-members record of an older store). Rows of the older form are
   * marked for rewriting in the compact one with the next save. A counter
   * whose author number the authors row does not hold is left out (it
   * counts as 0: it can only hold compaction back).
   */
  async load (legacy: Record<string, Member> | undefined): Promise<void> {
    const { kv } = this.components
    const stored = await kv.get(AUTHORS_KEY)
    const ids = stored === undefined ? [] : decodeJSON<unknown>(stored)
    if (Array.isArray(ids)) for (const id of ids) if (typeof id === 'string') this.authors.number(id)
    // then the author rows, in number order, as long as they follow on (a gap: counters numbered past it read as 0)
    for await (const [key, value] of kv.iterate({ ...AUTHOR_RANGE })) {
      const n = numberOfAuthorKey(key)
      if (n < this.authors.ids.length) continue
      const id = n === this.authors.ids.length ? decodeJSON<unknown>(value) : undefined
      if (typeof id !== 'string' || this.authors.find(id) !== undefined) break
      this.authors.number(id)
    }
    this.savedAuthors = this.authors.ids.length
    if (legacy !== undefined) {
      for (const [peer, m] of Object.entries(legacy)) this.setOld(peer, m)
    } else {
      for await (const [key, value] of kv.iterate({ ...MEMBER_RANGE })) {
        const peer = peerOfMemberKey(key)
        const row = decodeJSON<Partial<MemberRow & SparseMemberRow & Member>>(value)
        if (Array.isArray(row.sparse)) this.setPairs(peer, row.sparse, row.seen)
        else if (Array.isArray(row.counters)) this.setRow(peer, row.counters, row.seen)
        else this.setOld(peer, { clock: row.clock ?? {}, seen: row.seen ?? 0 })
        const slot = this.members.get(peer)
        if (slot !== undefined && typeof row.forgotten === 'number' && Number.isFinite(row.forgotten)) slot.forgotten = row.forgotten
      }
    }
    this.membersSavedAt = this.components.clock.now()
  }

  /** Forget what was loaded (an open that failed). */
  clear (): void {
    this.members.clear()
    this.authors.clear()
    this.unsavedMembers.clear()
    this.newMembers.clear()
    this.savedAuthors = 0
  }

  /**
   * Record what a peer has seen (from its gossip or a sync exchange). Only
   * trusted peers are members: a stranger's clock is neither kept nor stored,
   * so it cannot hold back compaction. Unless `tellsSelf` is false, the
   * clock also tells how far this node's own writes got (recovery.ts).
   * Heard `direct`ly, a member {@link forget}ten here is one again.
   */
  noteMember (peer: string, clock: VectorClock, options: NoteMemberOptions = {}): void {
    const { id, trust } = this.components
    if (!trust.trusts(peer)) return
    if (peer !== id && options.tellsSelf !== false) this.components.heardSelf(clock[id] ?? 0, peer)
    let m = this.members.get(peer)
    if (m === undefined) {
      m = { counters: new Counters(), seen: 0 }
      this.members.set(peer, m)
      this.newMembers.add(peer)
    }
    if (options.direct === true && m.forgotten !== undefined) {
      m.forgotten = undefined
      // saved at once, synced: a stale row read back after a crash would count a live member out again
      this.saveRow(peer, m)
    }
    this.unsavedMembers.add(peer)
    m.seen = this.components.clock.now()
    // in place: a member has one counter per author, copying them per message would cost O(authors)
    for (const author in clock) this.raise(m, this.authors.number(author), clock[author])
  }

  /**
   * An author's entry tells what it had seen when it wrote it (for a v2
   * entry: its parents' dots and its own). It is no word on how far this
   * node's own writes got (recovery.ts): a v2 entry names only its parents,
   * and any entry is what its author saw then, not now — taken as a view, a
   * writer's entry that names none of this node's writes counted as a peer
   * saying this node wrote nothing (found by the scale simulation's lost
   * stores).
   */
  noteAuthor (entry: LogEntry): void {
    if (entry.author === this.components.id) return
    const seen = entry.v === 1 ? entry.clock : ownAndDependencies(entry)
    const m = this.members.get(entry.author)
    if (m === undefined || !this.covers(m, seen)) this.noteMember(entry.author, seen, { tellsSelf: false })
  }

  /**
   * The rows of the members heard from since the last commit for the first
   * time, and of the authors numbered since the last durable commit,
   * written into `txn` (the store's commit hook); returns what marks those
   * authors saved once the commit is durable. An author's row is written
   * once, whatever the number of authors (the whole list was rewritten each
   * time it grew: nearly every commit of a swarm where many write). Should
   * the commit fail, the next one writes them again; until then counters
   * numbered past the stored rows read as 0 (they hold compaction back).
   */
  writeNew (txn: Txn): (() => void) | undefined {
    for (const peer of this.newMembers) {
      const m = this.members.get(peer)
      if (m === undefined) continue
      txn.put(memberKey(peer), row(m))
      this.unsavedMembers.delete(peer)
    }
    this.newMembers.clear()
    const upTo = this.authors.ids.length
    if (this.savedAuthors >= upTo) return undefined
    this.putAuthors((key, value) => { txn.put(key, value) }, upTo)
    return () => { this.savedAuthors = Math.max(this.savedAuthors, upTo) }
  }

  /** Put the rows of the authors numbered from the last durable one up to `upTo`. */
  private putAuthors (put: (key: string, value: string) => void, upTo: number): void {
    for (let n = this.savedAuthors; n < upTo; n++) put(authorKey(n), this.authors.ids[n])
  }

  /**
   * The stored rows of the members whose row is behind memory (all of them
   * are written), with the rows of the authors not yet saved by a durable
   * commit (at most once a minute, and at close; they stay unsaved until a
   * commit writes them, so a save that fails is made good).
   */
  rows (): Array<{ type: 'put', key: string, value: Uint8Array }> {
    const rows: Array<{ type: 'put', key: string, value: Uint8Array }> = []
    this.putAuthors((key, value) => { rows.push({ type: 'put', key, value: encodeJSON(value) }) }, this.authors.ids.length)
    for (const peer of this.unsavedMembers) {
      const m = this.members.get(peer)
      if (m !== undefined) rows.push({ type: 'put', key: memberKey(peer), value: encodeJSON(row(m)) })
    }
    this.unsavedMembers.clear()
    this.newMembers.clear()
    this.membersSavedAt = this.components.clock.now()
    return rows
  }

  /**
   * Write the members heard from since they were last saved, at most every
   * {@link MEMBER_SAVE_MS}: what every member has seen only grows, so a
   * row a crash left behind only holds compaction back a little longer.
   */
  async save (): Promise<void> {
    if (this.unsavedMembers.size === 0 || this.components.clock.now() - this.membersSavedAt < MEMBER_SAVE_MS) return
    await this.components.kv.batch(this.rows(), false)
  }

  /**
   * What every member heard from within the member timeout and trusted now
   * has seen (causally stable). A member no longer trusted no longer holds
   * back compaction.
   */
  stableClock (): VectorClock {
    const active = this.activeOthers().map(([, m]) => m.counters)
    const applied = this.components.applied()
    const out: VectorClock = {}
    for (const author in applied) {
      let min = applied[author]
      if (active.length > 0) {
        const k = this.authors.find(author)
        if (k === undefined) continue
        for (let i = 0; i < active.length && min > 0; i++) min = Math.min(min, active[i].get(k))
      }
      if (min > 0) out[author] = min
    }
    return out
  }

  /**
   * Active members (as {@link stableClock} counts them) whose own writes, as
   * far as their latest clock tells of them, are not all applied here. Until
   * they are, a change such a member made before it saw one of this
   * replica's may still be on its way (garbage collection of a removed
   * file's shards waits for it: docs/durability.md, "Removals every member
   * has seen").
   */
  behindMembers (): string[] {
    const applied = this.components.applied()
    const out: string[] = []
    for (const [peer, m] of this.activeOthers()) {
      const own = this.authors.find(peer)
      if (own !== undefined && m.counters.get(own) > (applied[peer] ?? 0)) out.push(peer)
    }
    return out
  }

  /** How long a member not heard from still counts as active (ms). */
  get memberTimeout (): number { return this.components.memberTimeout }

  /** Active members (as {@link stableClock} counts them) whose latest clock does not cover `clock`. */
  membersNotSeen (clock: VectorClock): string[] {
    return this.activeOthers().filter(([, m]) => !this.covers(m, clock)).map(([peer]) => peer)
  }

  /** The members other than this replica heard from within the member timeout and trusted now. */
  private activeOthers (): Array<[string, Slot]> {
    const now = this.components.clock.now()
    return [...this.members].filter(([peer, m]) => peer !== this.components.id && this.isActive(peer, m, now))
  }

  /**
   * True when `peer` is an active member: trusted, and heard from within the
   * member timeout (its own entries count). An author that is not may be
   * retired (retire.ts).
   */
  active (peer: string): boolean {
    const m = this.members.get(peer)
    return m !== undefined && this.isActive(peer, m, this.components.clock.now())
  }

  /** {@link active}, for member `m` of `peer` at `now`. */
  private isActive (peer: string, m: Slot, now: number): boolean {
    return m.forgotten === undefined && now - m.seen <= this.components.memberTimeout && this.components.trust.trusts(peer)
  }

  /**
   * A user's word that member `peer`'s node is gone for good (its disk
   * lost): from now on it is not an active member here, so compaction,
   * the collection of removed files' shards and the retirement of authors
   * stop waiting for it, without the member timeout (7 days). Saved at
   * once (its row, synced). Its entries stay; entries of it still arriving
   * through other nodes are applied as any. Heard from itself again
   * (gossip, a pull), it is a member as before.
   *
   * @returns undefined when `peer` is no member this node knows (trusted and heard from)
   */
  async forget (peer: string): Promise<ForgetResult | undefined> {
    const m = this.members.get(peer)
    if (m === undefined || peer === this.components.id || !this.components.trust.trusts(peer)) return undefined
    const own = this.authors.find(peer)
    const unapplied = own === undefined ? 0 : Math.max(0, m.counters.get(own) - (this.components.applied()[peer] ?? 0))
    m.forgotten = this.components.clock.now()
    try {
      await this.components.kv.batch([{ type: 'put', key: memberKey(peer), value: encodeJSON(row(m)) }], true)
    } catch (err) {
      // not saved: not in force either (a command that failed changes nothing)
      m.forgotten = undefined
      throw err
    }
    return { unapplied, seen: m.seen }
  }

  /** Write member `m`'s row now, synced; on failure it is saved with the next save. */
  private saveRow (peer: string, m: Slot): void {
    this.components.kv.batch([{ type: 'put', key: memberKey(peer), value: encodeJSON(row(m)) }], true).catch(() => { this.unsavedMembers.add(peer) })
  }

  /** Members forgotten here ({@link forget}) and not heard from since, with when. */
  forgotten (): Array<{ peer: string, at: number }> {
    const out: Array<{ peer: string, at: number }> = []
    for (const [peer, m] of this.members) if (m.forgotten !== undefined) out.push({ peer, at: m.forgotten })
    return out
  }

  /**
   * True when this replica's id is the smallest of its own and the active
   * members': the one member that retires authors first, so that a swarm
   * writes one retirement of an author, not one per member (retire.ts).
   */
  leads (): boolean {
    const { id } = this.components
    for (const peer of this.members.keys()) if (peer < id && this.active(peer)) return false
    return true
  }

  /** True when `peer` was not heard from within `factor` member timeouts (or never), or is {@link forget}ten here. */
  silentFor (peer: string, factor: number): boolean {
    const m = this.members.get(peer)
    return m === undefined || m.forgotten !== undefined || this.components.clock.now() - m.seen > factor * this.components.memberTimeout
  }

  /** Whether a trusted member other than this replica is known. */
  known (): boolean {
    const { id, trust } = this.components
    for (const peer of this.members.keys()) if (peer !== id && trust.trusts(peer)) return true
    return false
  }

  /** The latest clock heard from member `peer` (undefined for a peer not trusted or not heard from); counters at 0 are left out. */
  memberClock (peer: string): VectorClock | undefined {
    const m = this.members.get(peer)
    if (m === undefined || !this.components.trust.trusts(peer)) return undefined
    const out: VectorClock = {}
    m.counters.forEach((k, n) => { out[this.authors.ids[k]] = n })
    return out
  }

  /** Whether member `m` has seen everything `clock` names. */
  private covers (m: Slot, clock: VectorClock): boolean {
    for (const author in clock) {
      const k = this.authors.find(author)
      if ((k === undefined ? 0 : m.counters.get(k)) < clock[author]) return false
    }
    return true
  }

  /** Raise member `m`'s counter number `k` to at least `n`. */
  private raise (m: Slot, k: number, n: number): void {
    m.counters.raise(k, n, this.authors.ids.length)
  }

  /** A member from a row of the older form (or the whole-members record). */
  private setOld (peer: string, m: Member): void {
    const slot: Slot = { counters: new Counters(), seen: typeof m.seen === 'number' ? m.seen : 0 }
    for (const author in m.clock) if (isCounter(m.clock[author])) this.raise(slot, this.authors.number(author), m.clock[author])
    this.members.set(peer, slot)
    this.unsavedMembers.add(peer)
  }

  /** A member from a compact row: counters whose number the authors row lacks are left out. */
  private setRow (peer: string, counters: unknown[], seen: unknown): void {
    const slot: Slot = { counters: new Counters(), seen: typeof seen === 'number' ? seen : 0 }
    const known = Math.min(counters.length, this.authors.ids.length)
    for (let k = 0; k < known; k++) {
      const n = counters[k]
      if (isCounter(n)) this.raise(slot, k, n)
    }
    this.members.set(peer, slot)
  }

  /**
   * A member from a sparse row (pairs of author number and counter): pairs
   * that are not a valid author number the authors row holds and a counter
   * are left out (they read as 0).
   */
  private setPairs (peer: string, pairs: unknown[], seen: unknown): void {
    const slot: Slot = { counters: new Counters(), seen: typeof seen === 'number' ? seen : 0 }
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const k = pairs[i]
      const n = pairs[i + 1]
      if (typeof k === 'number' && Number.isSafeInteger(k) && k >= 0 && k < this.authors.ids.length && isCounter(n)) this.raise(slot, k, n)
    }
    this.members.set(peer, slot)
  }
}

/** A member's stored row: sparse when fewer than half its counters up to the last are not zero. */
function row (m: Slot): MemberRow | SparseMemberRow {
  const sparse: number[] = []
  m.counters.forEach((k, n) => { sparse.push(k, n) })
  const nonZero = sparse.length / 2
  const end = nonZero === 0 ? 0 : sparse[sparse.length - 2] + 1
  const forgotten = m.forgotten === undefined ? {} : { forgotten: m.forgotten }
  if (nonZero * 2 < end) return { seen: m.seen, sparse, ...forgotten }
  const counters = new Array<number>(end).fill(0)
  for (let i = 0; i < sparse.length; i += 2) counters[sparse[i]] = sparse[i + 1]
  return { seen: m.seen, counters, ...forgotten }
}

/** A counter worth keeping: a positive safe integer. */
function isCounter (n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0
}

/** What a v2 entry says its author had seen: its dependencies and its own dot (a later pair for one author wins). */
function ownAndDependencies (entry: LogEntry): VectorClock {
  const seen: VectorClock = {}
  everyDependency(entry, (author, n) => { seen[author] = n; return true })
  seen[entry.author] = entry.seq
  return seen
}
