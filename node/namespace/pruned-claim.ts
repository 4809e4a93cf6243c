/**
 * Checks a peer's word that it *pruned* what this replica lacks, before the
 * replica takes that peer's snapshot instead of entries.
 *
 * Why: a peer answers a pull with a snapshot when the asker is behind the
 * history it pruned. The asker cannot check that claim against the peer
 * alone, and a snapshot is a state, not a history: merging it drops every
 * version the snapshot's clock covers but its tree leaves out. A version
 * whose signed entry the asker still holds is kept whatever the snapshot
 * says (snapshot-load.ts), but one the asker pruned itself (old, stable
 * history, kept only as its own snapshot's rows) has no entry left to
 * prove it. So one member, hostile or with a damaged store, could hide such
 * a version from every replica it serves a snapshot to, without signing
 * the delete that would have to travel as an entry.
 *
 * How: when a replica that holds pruned history of its own is served a
 * snapshot, it first asks up to `max` other trusted peers, at once, for one
 * entry after its own clock. One that answers with an entry still holds the
 * history the server says is pruned: the replica pulls it from there and
 * leaves the snapshot; a later pull from the server finds the replica's
 * clock past what the snapshot proves, and the snapshot is not merged
 * (Snapshots.loadSnapshot). Only when no other peer has entries to give —
 * the whole reachable swarm pruned past this replica, as after an absence
 * longer than the members' timeout — is the snapshot taken, so a snapshot
 * bootstraps a node only when it is behind the swarm's pruned frontier, not
 * on one server's word.
 *
 * When it applies: only to replicas with a pruned frontier. A fresh replica
 * (nothing pruned, nothing of its own a snapshot could leave out) takes the
 * first snapshot as before: asking peers for history first would turn a
 * bootstrap of a large namespace from a tree walk into a replay of every
 * entry. A snapshot is declined at most once per server until this
 * replica's clock moves, so a peer that answers with entries the replica
 * cannot apply (held, rejected) never keeps it from the snapshot for good.
 *
 * @module
 */
import { dominates, type VectorClock } from './clock.js'
import { chooseHelpers } from './snapshot-fetch.js'

/** What {@link entriesElsewhere} needs. */
export interface PrunedClaimComponents {
  /** Trusted peers connected now. */
  peers: () => string[]
  /** The clock last heard from a peer, if any (ranks whom to ask first). */
  clockOf: (peer: string) => VectorClock | undefined
  /**
   * Ask `peer` for at most one entry this replica lacks; true when it
   * answered with an entry (false for a snapshot, or nothing after the
   * replica's clock). Rejects when the request fails.
   */
  hasEntries: (peer: string) => Promise<boolean>
  /** Uniform in [0, 1) (seeded in simulations). */
  random: () => number
}

/** Which snapshot the other peers are asked about. */
export interface PrunedClaim {
  /** The peer that answered with a snapshot. */
  server: string
  /** The snapshot's clock. */
  clock: VectorClock
  /** Most other peers asked. */
  max: number
}

/**
 * The first of up to `max` other peers (chosen as snapshot helpers are,
 * snapshot-fetch.ts: those last heard at or past the snapshot's clock first,
 * at random within a rank; asked at once) that still serves, as entries,
 * history `server` answered with a snapshot for; undefined when none does
 * (or none answered).
 */
export async function entriesElsewhere (components: PrunedClaimComponents, claim: PrunedClaim): Promise<string | undefined> {
  const asked = chooseHelpers({ ...claim, peers: components.peers(), trusts: () => true, clockOf: components.clockOf, random: components.random })
  if (asked.length === 0) return undefined
  return await Promise.any(asked.map(async peer => {
    if (await components.hasEntries(peer)) return peer
    throw new Error(`${peer} has no entries to give`)
  })).catch(() => undefined)
}

/**
 * Remembers, per server, the pull clock at which its snapshot was last
 * declined, so that it is declined again only once the clock has moved.
 */
export class DeclinedSnapshots {
  private readonly at = new Map<string, VectorClock>()

  /** Whether a snapshot `server` served at this replica's pull clock `clock` may be declined. */
  mayDecline (server: string, clock: VectorClock): boolean {
    const last = this.at.get(server)
    return last === undefined || !dominates(last, clock)
  }

  /** A snapshot of `server` was declined at `clock`. */
  declined (server: string, clock: VectorClock): void {
    this.at.set(server, { ...clock })
  }

  /** A snapshot of `server` was taken (or the peer is gone): forget it. */
  forget (server: string): void {
    this.at.delete(server)
  }
}
