/**
 * Round trip to each connected peer, for the status page
 * (`GET /api/v0/status/peers`), without a ping per peer per poll.
 *
 * Why: the page asks every 5 s; pinging every peer each time would add a
 * stream per peer per poll per open page, and wait up to the ping's
 * deadline for one that does not answer.
 *
 * How: the connection pinger (net/connection-pinger.ts) pings every
 * connection every 10 s and keeps the result in the connection's `rtt`:
 * that is read first (the smallest of a peer's connections). A peer with no
 * `rtt` yet (a connection not pinged yet) is pinged at most
 * once per {@link PING_EVERY_MS}, one ping per peer at a time, each within
 * {@link PING_TIMEOUT_MS}; a request waits only for a peer's first ping,
 * later ones refresh the figure in the background.
 *
 * @module
 */
import type { Connection, PeerId } from '@libp2p/interface'
import type { ShoalLibp2p } from '../net/host.js'
import { onePer } from './one-per.js'

/** Least time between two pings of one peer (ms). */
export const PING_EVERY_MS = 30_000
/** Deadline of one ping (ms). */
export const PING_TIMEOUT_MS = 2_000

/** The part of libp2p the latency cache needs. */
export type LatencyLibp2p = Pick<ShoalLibp2p, 'services'>

interface PingRecord {
  /** When the last ping started (performance.now()). */
  at: number
  /** Its round trip, when it answered. */
  rtt?: number
  /** Set while a ping runs. */
  running?: Promise<void>
}

/** Latency of the peers of one libp2p node. */
export class PeerLatency {
  private readonly pings = new Map<string, PingRecord>()

  constructor (private readonly libp2p: LatencyLibp2p) {}

  /**
   * The round trip to `peer` in ms (its connections' `rtt`, else the last
   * ping), or undefined when unknown or unanswered.
   */
  async of (peer: PeerId, conns: readonly Connection[]): Promise<number | undefined> {
    const rtts = conns.map(c => c.rtt).filter((t): t is number => typeof t === 'number' && Number.isFinite(t))
    if (rtts.length > 0) return Math.round(Math.min(...rtts))
    const id = peer.toString()
    let record = this.pings.get(id)
    const first = record === undefined
    if (record === undefined || (record.running === undefined && performance.now() - record.at >= PING_EVERY_MS)) {
      const r: PingRecord = record ?? { at: 0 }
      r.at = performance.now()
      r.running = this.libp2p.services.ping.ping(peer, { signal: AbortSignal.timeout(PING_TIMEOUT_MS) })
        .then(ms => { r.rtt = Math.round(ms) }, () => { r.rtt = undefined })
        .finally(() => { r.running = undefined })
      this.pings.set(id, r)
      record = r
    }
    if (first && record.running !== undefined) await record.running
    return record.rtt
  }

  /** Forget the peers not in `connected`. */
  keepOnly (connected: ReadonlySet<string>): void {
    for (const id of this.pings.keys()) if (!connected.has(id)) this.pings.delete(id)
  }
}

/** The one latency cache of a libp2p node (made on first use). */
export const peerLatencyOf = onePer((libp2p: LatencyLibp2p) => new PeerLatency(libp2p))
