/**
 * Scores of the peers namespace sync hears from, for the bad input they
 * send: malformed gossip or requests, answers that do not decode, entries
 * the replica rejects (a bad signature, a second entry for one dot, a bad
 * shape), snapshots that fail their checks.
 *
 * Why: every such message is refused and changes nothing, but each one
 * costs the node a decode, a signature check or a whole snapshot walk, and
 * a peer that sends them keeps being pulled from. Gossipsub's peer scoring
 * is the model (a behaviour penalty that decays): a peer that misbehaves
 * again and again is set aside for a while, one that erred once is not.
 *
 * Mechanism: each offence adds its weight ({@link PENALTIES}) to the peer's
 * score; the score halves every `halfLife` of the injected clock (virtual
 * in simulations). A peer whose score reaches `threshold` is **shunned**:
 * namespace sync drops its gossip unread, does not pull from it and does
 * not ask it for snapshot tree nodes, until the score has decayed to half
 * the threshold (at least one half-life; longer the more it sent). Requests
 * from it are still served (reads are not the writers' trust; the network
 * layer limits their rate). With the defaults, ten malformed messages in a
 * row, or two snapshots that fail their checks, shun a peer for five
 * minutes; one bad message a minute never does.
 *
 * Memory is bounded: at most `maxPeers` scores are kept, the lowest
 * dropped first.
 *
 * @module
 */
import type { WallClock } from './api.js'

/** The weight of each offence. */
export const PENALTIES = {
  /** A gossip message that does not decode. */
  invalidMessage: 1,
  /** A sync request that does not decode. */
  invalidRequest: 1,
  /** An answer to our request that does not decode, or answers another request. */
  invalidResponse: 1,
  /** A batch of entries (gossip or a page) of which the replica rejected some. */
  rejectedEntries: 2,
  /** A snapshot whose root, author blocks or tree failed their checks. */
  invalidSnapshot: 5
} as const

/** What a peer did wrong. */
export type Offence = keyof typeof PENALTIES

/** Tuning of {@link OffenceScores}. */
export interface PeerScoreOptions {
  /** Score from which a peer is shunned. @default 10 */
  threshold?: number
  /** Time in which a score halves (ms). @default 300000 (5 min) */
  halfLife?: number
  /** Most peers scored at once (the lowest scores are dropped first). @default 10000 */
  maxPeers?: number
}

/** Counters of {@link OffenceScores}. */
export interface PeerScoreStats {
  /** Offences counted, every peer. */
  penalties: number
  /** Times a peer became shunned. */
  shunnings: number
}

interface Score { value: number, at: number, shunned: boolean }

/** Decaying scores of bad input, by peer. */
export class OffenceScores {
  readonly stats: PeerScoreStats = { penalties: 0, shunnings: 0 }
  private readonly scores = new Map<string, Score>()
  private readonly threshold: number
  private readonly halfLife: number
  private readonly maxPeers: number

  constructor (private readonly clock: WallClock, options: PeerScoreOptions = {}) {
    this.threshold = options.threshold ?? 10
    this.halfLife = Math.max(1, options.halfLife ?? 5 * 60_000)
    this.maxPeers = Math.max(1, options.maxPeers ?? 10_000)
  }

  /**
   * Count `offence` against `peer`; true when this made it shunned (it was
   * not before).
   */
  penalize (peer: string, offence: Offence): boolean {
    const was = this.shunned(peer)
    const value = this.score(peer) + PENALTIES[offence]
    this.scores.delete(peer)
    this.scores.set(peer, { value, at: this.clock.now(), shunned: was || value >= this.threshold })
    this.stats.penalties++
    if (this.scores.size > this.maxPeers) this.dropLowest()
    const now = !was && value >= this.threshold
    if (now) this.stats.shunnings++
    return now
  }

  /** The peer's score now (0 for a peer with no offence kept). */
  score (peer: string): number {
    const s = this.scores.get(peer)
    if (s === undefined) return 0
    const elapsed = Math.max(0, this.clock.now() - s.at)
    return s.value * Math.pow(0.5, elapsed / this.halfLife)
  }

  /** True from when the peer's score reached the threshold until it decays to half of it. */
  shunned (peer: string): boolean {
    const s = this.scores.get(peer)
    if (s === undefined || !s.shunned) return false
    if (this.score(peer) >= this.threshold / 2) return true
    s.shunned = false
    return false
  }

  /** The peers shunned now. */
  shunnedPeers (): string[] {
    return [...this.scores.keys()].filter(peer => this.shunned(peer))
  }

  /** Drop the lowest score (and any that decayed to almost nothing). */
  private dropLowest (): void {
    let lowest: string | undefined
    let min = Infinity
    for (const peer of this.scores.keys()) {
      const v = this.score(peer)
      if (v < 0.01) {
        this.scores.delete(peer)
        return
      }
      if (v < min) {
        min = v
        lowest = peer
      }
    }
    if (lowest !== undefined) this.scores.delete(lowest)
  }
}
