/**
 * Liveness pings of a node's open connections, each at its own moment of
 * the interval: what libp2p's connection monitor does, without its burst.
 *
 * Why: libp2p's monitor (libp2p/src/connection-monitor.ts) pings every
 * connection of a node at the same instant, from one `setInterval` of 10 s.
 * Each ping opens a stream, negotiates its protocol and echoes 32 bytes, on
 * both ends, so a node with many connections stalls for that burst, and
 * nodes started together burst together every 10 s for as long as they run
 * (a cluster deployed at once, a swarm on one machine). Measured on 16 node
 * processes on 2 cores (bench/converge-procs.ts): every write that fell in
 * such a burst took 200–420 ms to be seen by every node, and those writes
 * were exactly 10 s apart (writes 76–78, 126–128, 176–178 of one run); the
 * p99 was 247–262 ms, and 52–70 ms with the monitor off
 * (docs/benchmarks.md, "Convergence: connection pings spread out").
 *
 * The mechanism: a connection gets a random moment within the interval when
 * the pinger first sees it ({@link PingSchedule}), and is pinged at that
 * moment of every interval after. A tick every `interval / TICKS` pings the
 * connections whose moment has come, at most one ping in flight on each.
 * A ping is libp2p's (`/ipfs/ping/1.0.0`, 32 random bytes echoed, under an
 * adaptive timeout): its round trip becomes the connection's `rtt`; a ping
 * that fails or times out aborts the connection, as libp2p's does, so a
 * peer that vanished without closing is noticed within about an interval;
 * a peer that does not speak the protocol answered the negotiation, so it is
 * alive.
 *
 * When it applies: every host `createHost` builds (host.ts turns libp2p's
 * monitor off and adds this service as `pinger`).
 *
 * @module
 */
import { setMaxListeners } from 'node:events'
import { PING_PROTOCOL } from '@libp2p/ping'
import { AdaptiveTimeout, byteStream, type AdaptiveTimeoutInit } from '@libp2p/utils'
import type { ComponentLogger, Connection, Logger, Metrics, Startable } from '@libp2p/interface'

/** libp2p's ping protocol, which every host answers (the `ping` service). */
export { PING_PROTOCOL }
/** Bytes a ping sends and gets back. */
const PING_LENGTH = 32
/** Ticks per interval: how finely the pings are spread. */
const TICKS = 20

/** What {@link ConnectionPinger} is built from (libp2p's components). */
export interface ConnectionPingerComponents {
  connectionManager: { getConnections: () => Connection[] }
  logger: ComponentLogger
  metrics?: Metrics
}

/** Options of {@link ConnectionPinger}. */
export interface ConnectionPingerInit {
  /** Each connection is pinged once per interval, in ms (libp2p's default: 10,000). */
  interval?: number
  /** The ping's adaptive timeout (libp2p's defaults). */
  timeout?: AdaptiveTimeoutInit
  /** Where a new connection's moment falls in the interval, in [0, 1) (tests). */
  random?: () => number
  /** A monotonic time in ms (default `performance.now`: a wall clock set back or forward would stop the pings or bunch them). */
  now?: () => number
}

/**
 * When each connection is due: a random moment of the interval, chosen when
 * it is first seen, then every interval after. Pure bookkeeping, no timers.
 */
export class PingSchedule {
  private readonly due = new Map<string, number>()

  constructor (private readonly interval: number, private readonly random: () => number) {}

  /**
   * The ids among `open` (every connection open now) whose moment has come
   * at `now`; each is due again one interval later. Connections no longer
   * open are forgotten.
   */
  take (open: Iterable<string>, now: number): string[] {
    const out: string[] = []
    const seen = new Set<string>()
    for (const id of open) {
      seen.add(id)
      let at = this.due.get(id)
      if (at === undefined) {
        at = now + this.random() * this.interval
        this.due.set(id, at)
      }
      if (at > now) continue
      out.push(id)
      this.due.set(id, this.nextAfter(at, now))
    }
    for (const id of this.due.keys()) if (!seen.has(id)) this.due.delete(id)
    return out
  }

  /**
   * The next moment of a connection due at `at` and pinged at `now`: its own
   * moment of the next interval after `now`, at least half an interval on. A
   * late tick (a busy event loop, a paused process) skips the intervals it
   * missed rather than pinging twice in a row, and keeps each connection at
   * its own moment: moving every overdue one to the same moment would bring
   * back the burst this avoids.
   */
  private nextAfter (at: number, now: number): number {
    let next = at + this.interval * (Math.floor((now - at) / this.interval) + 1)
    if (next < now + this.interval / 2) next += this.interval
    return next
  }

  /** Connections tracked (tests). */
  get size (): number { return this.due.size }
}

/** Pings each open connection once per interval, spread over it (see the module comment). */
export class ConnectionPinger implements Startable {
  private readonly log: Logger
  private readonly interval: number
  private readonly schedule: PingSchedule
  private readonly timeout: AdaptiveTimeout
  private readonly now: () => number
  private readonly inflight = new Set<string>()
  private timer?: ReturnType<typeof setInterval>
  private abort?: AbortController
  /** Pings answered, failed (their connection aborted), and sent to peers without the protocol, since start. */
  readonly stats = { answered: 0, failed: 0, unsupported: 0 }

  constructor (private readonly components: ConnectionPingerComponents, init: ConnectionPingerInit = {}) {
    this.log = components.logger.forComponent('shoal:connection-pinger')
    this.interval = init.interval ?? 10_000
    this.schedule = new PingSchedule(this.interval, init.random ?? Math.random)
    this.now = init.now ?? (() => performance.now())
    this.timeout = new AdaptiveTimeout({ ...init.timeout, metrics: components.metrics, metricName: 'libp2p_connection_monitor_ping_time_milliseconds' })
  }

  readonly [Symbol.toStringTag] = 'shoal:connection-pinger'

  start (): void {
    this.abort = new AbortController()
    // every ping in flight listens on it (through its timeout signal), as many as there are connections
    setMaxListeners(Infinity, this.abort.signal)
    this.timer = setInterval(() => { this.tick() }, Math.max(1, Math.floor(this.interval / TICKS)))
    this.timer.unref?.()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.abort?.abort()
  }

  /** Ping the connections whose moment has come. */
  private tick (): void {
    const connections = new Map(this.components.connectionManager.getConnections().filter(c => c.status === 'open').map(c => [c.id, c]))
    for (const id of this.schedule.take(connections.keys(), this.now())) {
      const conn = connections.get(id)
      if (conn === undefined || this.inflight.has(id)) continue
      this.inflight.add(id)
      this.ping(conn)
        .catch(err => { this.log.error('ping of %p failed unexpectedly - %e', conn.remotePeer, err) })
        .finally(() => this.inflight.delete(id))
    }
  }

  /** One ping of `conn`; a failure aborts it. */
  private async ping (conn: Connection): Promise<void> {
    const signal = this.timeout.getTimeoutSignal({ signal: this.abort?.signal })
    // the round trip on the monotonic clock (a wall clock step would make it negative or huge)
    let start = performance.now()
    let stream: Awaited<ReturnType<Connection['newStream']>> | undefined
    try {
      stream = await conn.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
      const bytes = byteStream(stream)
      start = performance.now()
      await Promise.all([
        bytes.write(crypto.getRandomValues(new Uint8Array(PING_LENGTH)), { signal }),
        bytes.read({ bytes: PING_LENGTH, signal })
      ])
      conn.rtt = performance.now() - start
      await stream.close({ signal })
      this.stats.answered++
    } catch (err: any) {
      stream?.abort(err)
      // stopping, or the connection closed meanwhile: nothing to tell
      if (this.abort?.signal.aborted === true || conn.status !== 'open') return
      if (err?.name === 'UnsupportedProtocolError') {
        // it answered the negotiation (two round trips): alive
        conn.rtt = (performance.now() - start) / 2
        this.stats.unsupported++
        return
      }
      this.stats.failed++
      this.log.error('ping of %p failed, closing its connection - %e', conn.remotePeer, err)
      conn.abort(err)
    } finally {
      this.timeout.cleanUp(signal)
    }
  }
}

/** The service factory for libp2p's `services`. */
export function connectionPinger (init: ConnectionPingerInit = {}): (components: ConnectionPingerComponents) => ConnectionPinger {
  return (components) => new ConnectionPinger(components, init)
}
