/**
 * Bytes sent to and received from each peer, for the status page
 * (`GET /api/v0/status/peers`).
 *
 * Why: libp2p v3 counts bytes per protocol (its Prometheus metrics,
 * `libp2p_data_transfer_bytes_total`) but not per peer — a `Connection` has
 * no byte counters — while a user looking at a list of peers (Syncthing's
 * devices, IPFS WebUI's peers) expects to see which peer moves the data.
 *
 * Mechanism: libp2p's `Connection` class keeps the raw transport connection
 * it was upgraded from in its `maConn` field (not part of the typed
 * interface). That is a message stream: its `send` is wrapped to count the
 * bytes going out, and its `dispatchEvent` to count the `message` events
 * coming in — the way `@libp2p/prometheus-metrics` counts its `global`
 * figure, and for the same reason without adding a `message` listener (a
 * listener would make the stream hand out buffered data before the upper
 * layers listen). What is counted crosses the socket: encrypted, with the
 * noise and yamux framing, so it matches what the machine's network sees.
 *
 * When it applies: from {@link PeerTraffic.start} (the node's start, just
 * before libp2p's): connections open then are wrapped at once, later ones
 * on libp2p's `connection:open` event; the counts are totals since then, per peer, kept
 * after a disconnect (at most {@link MAX_PEERS} peers, the oldest
 * disconnected one dropped first). A libp2p whose connections lack `maConn`
 * leaves traffic unknown ({@link PeerTraffic.tracking} false); nothing else
 * changes.
 *
 * @module
 */
import type { Connection, Libp2p } from '@libp2p/interface'
import { onePer } from './one-per.js'

/** Peers whose totals are kept; beyond it the oldest disconnected one is dropped. */
export const MAX_PEERS = 4096

/** Bytes moved with one peer since counting started. */
export interface PeerTrafficTotals {
  /** Bytes received from the peer. */
  bytesIn: number
  /** Bytes sent to the peer. */
  bytesOut: number
}

/** The part of libp2p the meter needs. */
export type TrafficLibp2p = Pick<Libp2p, 'getConnections' | 'addEventListener' | 'removeEventListener'>

interface Counted extends PeerTrafficTotals {
  /** Wrapped connections of this peer that are still open. */
  open: number
}

/** The parts of a message stream that are wrapped. */
interface MessageStreamLike {
  send: (data: { byteLength: number }) => boolean
  dispatchEvent: (evt: Event) => boolean
  addEventListener: (type: 'close', listener: () => void, options?: { once?: boolean }) => void
}

/** Counts bytes per peer on every connection of one libp2p node. */
export class PeerTraffic {
  private readonly totals = new Map<string, Counted>()
  private readonly wrapped = new WeakSet<object>()
  private running = false
  private sawConnection = false
  private sawStream = false
  private readonly onOpen = (evt: CustomEvent<Connection>): void => { this.track(evt.detail) }

  constructor (private readonly libp2p: TrafficLibp2p) {}

  /** Wrap the open connections and every later one. Idempotent. */
  start (): void {
    if (this.running) return
    this.running = true
    this.libp2p.addEventListener('connection:open', this.onOpen)
    for (const conn of this.libp2p.getConnections()) this.track(conn)
  }

  /** Stop counting (wrapped connections pass bytes through uncounted). */
  stop (): void {
    this.running = false
    this.libp2p.removeEventListener('connection:open', this.onOpen)
  }

  /**
   * False when connections were seen but none exposed a stream to count on
   * (a libp2p whose internals changed): traffic is then unknown, not zero.
   */
  get tracking (): boolean {
    return !this.sawConnection || this.sawStream
  }

  /** Totals for `peer` (string peer id), or undefined when nothing was counted for it. */
  get (peer: string): PeerTrafficTotals | undefined {
    const c = this.totals.get(peer)
    return c === undefined ? undefined : { bytesIn: c.bytesIn, bytesOut: c.bytesOut }
  }

  private track (conn: Connection): void {
    if (!this.running) return
    this.sawConnection = true
    const stream = (conn as unknown as { maConn?: Partial<MessageStreamLike> }).maConn
    if (stream === undefined || typeof stream.send !== 'function' || typeof stream.dispatchEvent !== 'function' || typeof stream.addEventListener !== 'function') return
    this.sawStream = true
    const ma = stream as MessageStreamLike
    if (this.wrapped.has(ma)) return
    this.wrapped.add(ma)
    const counted = this.entry(conn.remotePeer.toString())
    counted.open++
    const send = ma.send.bind(ma)
    ma.send = data => {
      if (this.running) counted.bytesOut += data.byteLength
      return send(data)
    }
    const dispatch = ma.dispatchEvent.bind(ma)
    ma.dispatchEvent = evt => {
      const data = (evt as Event & { data?: { byteLength?: number } }).data
      if (evt.type === 'message' && this.running && typeof data?.byteLength === 'number') counted.bytesIn += data.byteLength
      return dispatch(evt)
    }
    ma.addEventListener('close', () => { counted.open-- }, { once: true })
  }

  /** The totals of `peer`, made (and moved last in age order) on use. */
  private entry (peer: string): Counted {
    let c = this.totals.get(peer)
    if (c !== undefined) {
      this.totals.delete(peer)
      this.totals.set(peer, c)
      return c
    }
    if (this.totals.size >= MAX_PEERS) {
      for (const [id, old] of this.totals) {
        if (old.open <= 0) { this.totals.delete(id); break }
      }
    }
    c = { bytesIn: 0, bytesOut: 0, open: 0 }
    this.totals.set(peer, c)
    return c
  }
}

/**
 * The one meter of a libp2p node (made on first use, not started): the node
 * starts and stops it with libp2p (node.ts), the status routes read it.
 */
export const peerTrafficOf = onePer((libp2p: TrafficLibp2p) => new PeerTraffic(libp2p))
