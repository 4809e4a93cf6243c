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
 * @module
 */
import type { Entry as LogEntry } from '../../protocol/namespace.js'
import { dominates, meet, type VectorClock } from './clock.js'
import { dependencies } from './causal.js'
import { decodeJSON, encodeJSON, type KV, type Txn } from './kv.js'
import { MEMBER_RANGE, memberKey, peerOfMemberKey } from './rows.js'
import type { TrustPolicy } from './trust.js'
import type { WallClock } from './api.js'

/** What a member has seen, and when it was last heard from (ms). */
export interface Member { clock: VectorClock, seen: number }

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

/** The members map, its rows, and the stable clock. */
export class Members {
  private readonly members = new Map<string, Member>()
  /** Members whose stored row is behind memory: new ones are written with the next commit, the others at most every {@link MEMBER_SAVE_MS}. */
  private readonly unsavedMembers = new Set<string>()
  private readonly newMembers = new Set<string>()
  private membersSavedAt = 0

  constructor (private readonly components: MembersComponents) {}

  /** Load the members from their rows, or from `legacy` (the whole-members record of an older store). */
  async load (legacy: Record<string, Member> | undefined): Promise<void> {
    if (legacy !== undefined) for (const [peer, m] of Object.entries(legacy)) this.members.set(peer, m)
    else for await (const [key, value] of this.components.kv.iterate({ ...MEMBER_RANGE })) this.members.set(peerOfMemberKey(key), decodeJSON<Member>(value))
    this.membersSavedAt = this.components.clock.now()
  }

  /** Forget what was loaded (an open that failed). */
  clear (): void { this.members.clear() }

  /**
   * Record what a peer has seen (from its gossip or a sync exchange). Only
   * trusted peers are members: a stranger's clock is neither kept nor stored,
   * so it cannot hold back compaction.
   */
  noteMember (peer: string, clock: VectorClock): void {
    const { id, trust } = this.components
    if (!trust.trusts(peer)) return
    if (peer !== id) this.components.heardSelf(clock[id] ?? 0, peer)
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
  noteAuthor (entry: LogEntry): void {
    if (entry.author === this.components.id) return
    const seen = entry.v === 1 ? entry.clock : Object.fromEntries([...dependencies(entry), [entry.author, entry.seq]])
    const m = this.members.get(entry.author)
    if (m === undefined || !dominates(m.clock, seen)) this.noteMember(entry.author, seen)
  }

  /** The rows of the members heard from since the last commit for the first time, written into `txn` (the store's commit hook). */
  writeNew (txn: Txn): void {
    for (const peer of this.newMembers) this.saveMemberRow(txn, peer)
    this.newMembers.clear()
  }

  /** The stored rows of the members whose row is behind memory (all of them are written). */
  rows (): Array<{ type: 'put', key: string, value: Uint8Array }> {
    const rows = [...this.unsavedMembers].map(peer => ({ type: 'put' as const, key: memberKey(peer), value: encodeJSON(this.members.get(peer)) }))
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
    const { id, trust, memberTimeout } = this.components
    const now = this.components.clock.now()
    const clocks = [this.components.applied()]
    for (const [peer, m] of this.members) {
      if (peer !== id && now - m.seen <= memberTimeout && trust.trusts(peer)) clocks.push(m.clock)
    }
    return meet(clocks)
  }

  /**
   * True when a trusted member other than `except` (and this replica) was
   * heard claiming `author`'s counter at `n` or more: a second member's word
   * for a counter a snapshot claims without the author's signed entry.
   */
  confirms (author: string, n: number, except: string): boolean {
    const { id, trust } = this.components
    for (const [peer, m] of this.members) {
      if (peer !== except && peer !== id && trust.trusts(peer) && (m.clock[author] ?? 0) >= n) return true
    }
    return false
  }

  /** The latest clock heard from member `peer` (undefined for a peer not trusted or not heard from). */
  memberClock (peer: string): VectorClock | undefined {
    const m = this.members.get(peer)
    return m === undefined || !this.components.trust.trusts(peer) ? undefined : { ...m.clock }
  }

  private saveMemberRow (txn: Txn, peer: string): void {
    const m = this.members.get(peer)
    if (m === undefined) return
    txn.put(memberKey(peer), m)
    this.unsavedMembers.delete(peer)
  }
}
