/**
 * What the status page's endpoints answer (`GET /api/v0/status/…`, see
 * status-routes.ts), and their bounds.
 *
 * @module
 */
import type { PinInfo } from '../files/index.js'

/** Most items a `limit` may ask for. */
export const MAX_LIMIT = 200
/** Items answered when no `limit` is given. */
export const DEFAULT_LIMIT = 20
/** Ops listed per namespace change (the rest are counted). */
export const OPS_PER_CHANGE = 5
/** Stripes whose health is listed per pin (the summary counts all). */
export const MAX_STRIPES_LISTED = 1024

/** `GET /api/v0/status/node`. */
export interface NodeInfo {
  /** This node's peer id. */
  id: string
  /** Shoal's version (package.json). */
  version: string
  /** Node.js version. */
  node: string
  /** `platform-arch`. */
  platform: string
  /** Seconds the daemon's process has run. */
  uptimeSeconds: number
  /** `private` when the swarm has a key (only its members connect), else `open`. */
  swarm: 'private' | 'open'
  /** The multiaddrs libp2p listens on. */
  addresses: string[]
  /** The repo folder. */
  repo: string
  /** The file system of the repo (what the repo takes of it: `disk` of `/api/v0/status`). */
  disk: {
    /** Bytes an unprivileged writer may still use. */
    free: number
    /** Size of the file system. */
    total: number
    /** Kept free for rm, gc and restarts (storage.reserve): writes stop there. */
    reserve: number
  }
}

/** One peer of `GET /api/v0/status/peers`. */
export interface PeerInfo {
  /** Its peer id. */
  id: string
  /** The remote addresses of its open connections. */
  addresses: string[]
  /** `outbound` when this node dialled one of its connections, else `inbound`. */
  direction: 'inbound' | 'outbound'
  /**
   * Round trip (ms): libp2p's connection monitor's last measure, else a ping
   * at most every 30 s; absent while unknown or when the last ping got no answer.
   */
  latencyMs?: number
  /** When the oldest open connection to it opened (ms). */
  connectedSince?: number
  /** Streams open on its connections now. */
  streams: number
  /** Bytes received from it since the node started (absent when unknown). */
  bytesIn?: number
  /** Bytes sent to it since the node started (absent when unknown). */
  bytesOut?: number
}

/** One namespace log entry of `GET /api/v0/status/changes`. */
export interface ChangeInfo {
  /** Peer id of the writer. */
  author: string
  /** The entry's number in its author's log. */
  seq: number
  /** The author's wall time of the write (ms). */
  time: number
  /** Ops in the entry. */
  ops: number
  /** The first {@link OPS_PER_CHANGE} ops. */
  changes: Array<{ op: 'put' | 'mkdir' | 'del', path: string, size?: number }>
}

/**
 * Where a pin stands: the worst health of its stripes, `failed` when its
 * health could not be read, `unknown` before it was checked, `pending`
 * while its placement is not final (or its coding waits for live nodes),
 * `not-coded` for a pin without stripes (a cold copy only).
 */
export type PinState = 'lost' | 'degraded' | 'at-risk' | 'failed' | 'unknown' | 'pending' | 'healthy' | 'not-coded'

/** One pin of `GET /api/v0/status/pins`. */
export interface PinHealthInfo extends PinInfo {
  /** Where it stands (the listing is ordered by it, worst first). */
  state: PinState
  /** When its health was read (ms); absent while `unknown`. */
  checkedAt?: number
  /** `pin status`, stripes shortened to their state; absent when unknown or failed. */
  status?: {
    k?: number
    m?: number
    summary: { healthy: number, atRisk: number, degraded: number, lost: number }
    /** Stripes of the file. */
    stripeCount: number
    /** State of the first {@link MAX_STRIPES_LISTED} stripes, in order, as `pin status` gives it: pending, placing, or the stripe's health (healthy, at-risk, degraded, lost). */
    stripes: string[]
    /** Peers that answered, this node included. */
    peersAsked: number
    pending?: boolean
    waiting?: string
    placing?: { pushed: number, total: number }
  }
  /** Why its health could not be read (a manifest nowhere to be found, a deadline). */
  error?: { name: string, message: string }
}

/** `GET /api/v0/status/pins`. */
export interface PinsAnswer {
  /** Pins in the namespace (only the first `limit`, worst first, are listed). */
  total: number
  /** Pins not checked yet (their health is being read, or waits for the next check). */
  unknown: number
  /** True while a check runs: figures may change at the next request. */
  checking: boolean
  /** The first `limit` pins, worst first, then by path. */
  pins: PinHealthInfo[]
}
