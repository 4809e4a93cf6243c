import type { PeerId } from '@libp2p/interface'

/** How peer scores move. */
export interface PeerScoreInit {
  /** Below this score a peer is not asked again until its ban ends. @default -50 */
  threshold?: number
  /** How long a peer under the threshold is left alone. @default 300_000 ms */
  banMs?: number
}

/** Score changes for the events the exchange sees. */
export const SCORE = {
  /** A block that did not match its CID: one is enough for a ban. */
  corrupt: -100,
  /** A malformed or unexpected message. */
  invalid: -60,
  /** A timeout, a dead stream, a failed dial. */
  failure: -10,
  /** A verified block. */
  success: 1
} as const

const MAX_SCORE = 100

/**
 * A small in-memory reputation table: each peer starts at 0, gains a point per
 * good block, loses points per fault, and is banned for a while once under the
 * threshold (the ban lifts with the score reset to 0). The points gained offset
 * failures only: a corrupt block or an invalid message counts from a score of
 * 0 at most.
 */
export class PeerScores {
  /** `misbehaved`: it sent a corrupt block or an invalid message (not only timeouts and failed dials). */
  private readonly scores = new Map<string, { score: number, bannedUntil: number, misbehaved: boolean }>()
  private readonly threshold: number
  private readonly banMs: number

  constructor (init: PeerScoreInit = {}) {
    this.threshold = init.threshold ?? -50
    this.banMs = init.banMs ?? 300_000
  }

  /** The peer's current score (0 when unknown). */
  score (peer: PeerId): number {
    this.expire(peer)
    return this.scores.get(peer.toString())?.score ?? 0
  }

  /** Add `delta` to the peer's score; returns true when this bans it. */
  adjust (peer: PeerId, delta: number): boolean {
    this.expire(peer)
    const key = peer.toString()
    const entry = this.scores.get(key) ?? { score: 0, bannedUntil: 0, misbehaved: false }
    const wasBanned = entry.bannedUntil > Date.now()
    // misbehaviour is not paid for with blocks served before: a corrupt block
    // or an invalid message bans a peer whatever its score (from 60 or more, it
    // was only hung up on, and asked again when it connected again)
    const misbehaves = delta < SCORE.failure
    entry.score = Math.min(MAX_SCORE, (misbehaves ? Math.min(entry.score, 0) : entry.score) + delta)
    if (misbehaves) entry.misbehaved = true
    if (entry.score < this.threshold && !wasBanned) entry.bannedUntil = Date.now() + this.banMs
    this.scores.set(key, entry)
    return !wasBanned && entry.bannedUntil > Date.now()
  }

  /**
   * The peer connected again: what only timeouts and failed dials cost it
   * is forgiven, its ban lifted (a holder that restarted was shunned for
   * five minutes after it was back, reads failing while `pin status` said
   * healthy). A peer that sent a corrupt block or an invalid message keeps
   * its score and its ban.
   */
  reconnected (peer: PeerId): void {
    const entry = this.scores.get(peer.toString())
    if (entry !== undefined && !entry.misbehaved) this.scores.delete(peer.toString())
  }

  /**
   * The peer disconnected: its entry goes unless it holds a ban or
   * misbehaviour (what it gained is forgiven at its next connect anyway), so
   * the table holds only the peers that need remembering.
   */
  disconnected (peer: PeerId): void {
    const key = peer.toString()
    const entry = this.scores.get(key)
    if (entry !== undefined && !entry.misbehaved && entry.bannedUntil <= Date.now()) this.scores.delete(key)
  }

  /** True while the peer must not be asked. */
  isBanned (peer: PeerId): boolean {
    this.expire(peer)
    return (this.scores.get(peer.toString())?.bannedUntil ?? 0) > Date.now()
  }

  private expire (peer: PeerId): void {
    const entry = this.scores.get(peer.toString())
    if (entry !== undefined && entry.bannedUntil !== 0 && entry.bannedUntil <= Date.now()) {
      entry.bannedUntil = 0
      entry.score = 0
      entry.misbehaved = false
    }
  }
}
