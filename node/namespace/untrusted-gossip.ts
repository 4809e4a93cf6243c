/**
 * The warning a node logs when a peer it does not trust as a writer keeps
 * writing: a member removed from the writers (`shoal trust rm`, or left out
 * of `namespace.writers: listed`), or a stranger in an open swarm.
 *
 * Sync ignores such a peer's gossip before reading it (sync.ts), so the
 * entries it carries never reach the replica's checks, which are what log
 * untrusted authors (log.ts). Without this, the writes of a removed member
 * were refused by every other node in silence: only a metric counted the
 * messages, and the removed node's operator saw its own writes succeed.
 *
 * What counts as a write: the sender's gossip names a counter for itself
 * above what this node applied of it. A peer that only reads (an open
 * swarm's readers, a member kept out of the writers that writes nothing)
 * announces nothing new and is never named. At most one warning a minute
 * per peer and lines about at most 100 peers a minute ({@link WarnLimit});
 * while a peer's warning is not due, its messages are not even read. (The
 * messages are bounded as all gossip is, limits.md, and read with the same
 * strict codec as a trusted peer's.)
 *
 * The writer is told too: with each warning, the peer (when connected) is
 * sent a writer notice (protocol/writer-notice.ts, {@link
 * UntrustedGossipComponents.notify}), so the same rate bounds the notices.
 * A sync request by such a peer whose clock names more of its own entries
 * than this node applied counts as gossip does ({@link
 * UntrustedGossip.observeCounter}): a writer whose gossip did not reach
 * this node (no gossip mesh yet) still pulls from it.
 *
 * @module
 */
import { decodeHeadsMessage } from '../../protocol/namespace.js'
import { WarnLimit } from './trust.js'
import type { Logger } from '../logger.js'
import type { WallClock } from './api.js'

/** What {@link UntrustedGossip} reads. */
export interface UntrustedGossipComponents {
  logger: Logger
  /** Monotonic clock (ms). */
  clock: WallClock
  /** How many of `author`'s entries this node applied (its counter in the replica's clock). */
  applied: (author: string) => number
  /** Tell `peer` its writes are refused here, `applied` of them taken before (a writer notice); best effort. */
  notify?: (peer: string, applied: number) => void
}

/** Settings of {@link UntrustedGossip}. */
export interface UntrustedGossipInit {
  /** Least time between two warnings about one peer (ms). @default 60000 */
  warnInterval?: number
}

/** See the module doc. */
export class UntrustedGossip {
  private readonly warnings: WarnLimit
  /** Warnings logged since start (tests, metrics). */
  warned = 0

  constructor (private readonly components: UntrustedGossipComponents, init: UntrustedGossipInit = {}) {
    this.warnings = new WarnLimit({ interval: init.warnInterval ?? 60_000 })
  }

  /** A gossip message `data` from `from`, a peer this node does not trust, that sync ignored. */
  observe (from: string, data: Uint8Array): void {
    const now = this.components.clock.now()
    if (!this.warnings.due(from, now)) return
    let announced: number
    try {
      announced = decodeHeadsMessage(data).clock[from] ?? 0
    } catch {
      return // ignored anyway; a trusted peer's bad gossip is what gets penalized
    }
    this.observeCounter(from, announced)
  }

  /**
   * `from`, a peer this node does not trust, said it wrote `announced`
   * entries (its own counter in a clock it sent: gossip, a pull request).
   */
  observeCounter (from: string, announced: number | undefined): void {
    const now = this.components.clock.now()
    if (announced === undefined || announced === 0) return // it wrote nothing: a reader
    if (!this.warnings.due(from, now)) return
    const applied = this.components.applied(from)
    if (announced <= applied) return
    if (this.warnings.take(from, now) === undefined) return
    this.warned++
    this.components.logger.warn(
      { peer: from, unapplied: announced - applied, applied },
      `namespace writes by a peer that is not a trusted writer ignored (\`shoal trust add ${from}\` here to apply them; see \`shoal trust ls\`)`
    )
    this.components.notify?.(from, applied)
  }
}
