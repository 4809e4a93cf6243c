/**
 * A count of the streams each peer has open towards one protocol handler,
 * over all its connections (libp2p's `maxInboundStreams` counts per
 * connection only, and a peer may open several connections).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'

/** Open streams per peer, bounded. */
export class PeerStreams {
  private readonly open = new Map<string, number>()

  /** @param max streams one peer may have open at once (≥ 1) */
  constructor (readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new InvalidArgumentError(`max streams per peer must be ≥ 1, got ${max}`)
  }

  /** Count a new stream of `peer`; false (nothing counted) when it already has `max` open. */
  enter (peer: string): boolean {
    const count = this.open.get(peer) ?? 0
    if (count >= this.max) return false
    this.open.set(peer, count + 1)
    return true
  }

  /** A stream counted by {@link enter} ended. */
  leave (peer: string): void {
    const left = (this.open.get(peer) ?? 1) - 1
    if (left <= 0) this.open.delete(peer)
    else this.open.set(peer, left)
  }
}
