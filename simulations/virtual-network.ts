/**
 * A virtual network for namespace sync: every node gets an endpoint that
 * implements `SyncNetwork`. Gossip (`publish`) fans out to every node in the
 * sender's connected component (full-mesh gossip); requests travel to one
 * peer and back. Each message leg gets a random delay and may be dropped or
 * duplicated, all drawn from a seeded {@link Prng}, on the virtual clock of a
 * {@link VirtualTime}. Partitions split the nodes into groups that cannot
 * talk; healing fires `connected` on both sides of every re-joined pair,
 * like a reconnect.
 *
 * A request that is dropped, or sent to an unreachable peer, rejects after
 * the network's own virtual timeout (the `AbortSignal` a caller passes is
 * honoured too, but `AbortSignal.timeout` runs on real time, so the virtual
 * timeout is what a simulation relies on).
 *
 * @module
 */
import type { SyncHandlers, SyncNetwork } from '../node/namespace/sync.js'
import type { Prng } from './prng.js'
import type { VirtualTime } from './virtual-time.js'

/** Link conditions (can be changed during a run with {@link VirtualNetwork.setConditions}). */
export interface NetworkConditions {
  /** Smallest one-way delay of a message (virtual ms). @default 1 */
  minDelay: number
  /** Largest one-way delay of a message (virtual ms). @default 50 */
  maxDelay: number
  /** Probability that one message leg (gossip, request or response) is lost. @default 0 */
  drop: number
  /** Probability that one message leg is delivered twice. @default 0 */
  duplicate: number
  /** A request with no answer by then rejects (virtual ms). @default 1000 */
  requestTimeout: number
}

/** Counters of what the network did. */
export interface NetworkStats {
  /** Message legs sent (gossip copies, requests, responses). */
  sent: number
  delivered: number
  dropped: number
  duplicated: number
  /** Legs lost because the two ends were not connected when it arrived. */
  unreachable: number
  requests: number
  timeouts: number
  connects: number
}

/** Raised when a virtual request times out, is aborted or its endpoint closes. */
export class VirtualRequestError extends Error {
  override name = 'VirtualRequestError'
}

const DEFAULTS: NetworkConditions = { minDelay: 1, maxDelay: 50, drop: 0, duplicate: 0, requestTimeout: 1000 }

interface Outstanding { fail: (err: Error) => void }

/** One node's attachment to a {@link VirtualNetwork}; a `SyncNetwork`. */
export class VirtualEndpoint implements SyncNetwork {
  /** @internal the handlers while handling */
  handlers: SyncHandlers | undefined
  /** @internal requests this endpoint is waiting on */
  readonly outstanding = new Set<Outstanding>()

  /** @param id the node's peer id */
  constructor (readonly id: string, private readonly net: VirtualNetwork) {}

  /** Start receiving; the peers this node reaches see it connect. */
  async handle (handlers: SyncHandlers): Promise<void> {
    this.handlers = handlers
    this.net.joined(this)
  }

  /** Stop receiving; requests this node is waiting on reject. */
  async unhandle (): Promise<void> {
    this.handlers = undefined
    for (const o of [...this.outstanding]) o.fail(new VirtualRequestError(`${this.id} closed`))
  }

  /** Gossip to every node this one reaches (each copy delayed, maybe dropped or duplicated). */
  async publish (data: Uint8Array): Promise<void> {
    this.net.gossip(this.id, data)
  }

  /** Ask `peer`; rejects after the network's virtual timeout when there is no answer. */
  async request (peer: string, data: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    return await this.net.request(this, peer, data, signal)
  }

  /** The nodes this one reaches now. */
  peers (): string[] {
    return this.net.peersOf(this.id)
  }

  /** Send one gossip message to one peer only (tests: targeted injection). */
  sendTo (peer: string, data: Uint8Array): void {
    this.net.send(this.id, peer, data)
  }
}

/** A simulated network between endpoints, driven by virtual time and a seeded random source. */
export class VirtualNetwork {
  /** What the network did so far. */
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, unreachable: 0, requests: 0, timeouts: 0, connects: 0 }
  private conditions: NetworkConditions
  private readonly endpoints = new Map<string, VirtualEndpoint>()
  /** Node → group; nodes in one group can talk. */
  private readonly group = new Map<string, number>()
  /**
   * When false, a node that starts handling is not announced to the others
   * with `connected` (a swarm booting together: each node pulls from those
   * already up when it starts, which is enough). @default true
   */
  announceJoins = true

  /**
   * @param time the clock every delay and timeout runs on
   * @param rng the source of every delay, drop and duplicate
   */
  constructor (private readonly time: VirtualTime, private readonly rng: Prng, conditions: Partial<NetworkConditions> = {}) {
    this.conditions = { ...DEFAULTS, ...conditions }
  }

  /** The endpoint of node `id` (created on first use). */
  endpoint (id: string): VirtualEndpoint {
    let e = this.endpoints.get(id)
    if (e === undefined) {
      e = new VirtualEndpoint(id, this)
      this.endpoints.set(id, e)
      this.group.set(id, 0)
    }
    return e
  }

  /** Change link conditions from now on. */
  setConditions (conditions: Partial<NetworkConditions>): void {
    this.conditions = { ...this.conditions, ...conditions }
  }

  /** Current link conditions. */
  getConditions (): NetworkConditions { return { ...this.conditions } }

  /** True when `a` and `b` are both up and in one group. */
  reachable (a: string, b: string): boolean {
    if (a === b) return false
    const ea = this.endpoints.get(a)
    const eb = this.endpoints.get(b)
    return ea?.handlers !== undefined && eb?.handlers !== undefined && this.group.get(a) === this.group.get(b)
  }

  /** Nodes `id` can reach now. */
  peersOf (id: string): string[] {
    const out: string[] = []
    for (const other of this.endpoints.keys()) if (this.reachable(id, other)) out.push(other)
    return out
  }

  /**
   * Split the nodes: each listed group becomes its own connected component;
   * nodes listed in no group form one more component together. Pairs that
   * become connected get `connected` events.
   */
  partition (groups: string[][]): void {
    const next = new Map<string, number>()
    for (const id of this.endpoints.keys()) next.set(id, 0)
    groups.forEach((members, i) => { for (const id of members) if (next.has(id)) next.set(id, i + 1) })
    this.regroup(next)
  }

  /** Put `id` alone in its own component. */
  isolate (id: string): void {
    const next = new Map(this.group)
    next.set(id, Math.max(0, ...this.group.values()) + 1)
    this.regroup(next)
  }

  /** Reconnect everything; every re-joined pair gets `connected` on both sides. */
  heal (): void {
    const next = new Map<string, number>()
    for (const id of this.endpoints.keys()) next.set(id, 0)
    this.regroup(next)
  }

  private regroup (next: Map<string, number>): void {
    const ids = [...this.endpoints.keys()]
    const was = new Map(this.group)
    for (const [id, g] of next) this.group.set(id, g)
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        const a = ids[i]
        const b = ids[j]
        if (was.get(a) !== was.get(b) && this.reachable(a, b)) {
          this.connect(a, b)
          this.connect(b, a)
        }
      }
    }
  }

  /** @internal an endpoint started handling: its peers see it connect. */
  joined (endpoint: VirtualEndpoint): void {
    if (!this.announceJoins) return
    for (const other of this.endpoints.keys()) {
      if (this.reachable(endpoint.id, other)) this.connect(other, endpoint.id)
    }
  }

  /** Tell `at` (after a delay) that `peer` connected. */
  private connect (at: string, peer: string): void {
    this.time.setTimeout(() => {
      const h = this.endpoints.get(at)?.handlers
      if (h === undefined || !this.reachable(at, peer)) return
      this.stats.connects++
      h.connected(peer)
    }, this.delay())
  }

  private delay (): number {
    const { minDelay, maxDelay } = this.conditions
    return this.rng.int(minDelay, Math.max(minDelay, maxDelay))
  }

  /** How many copies of one leg arrive (0 dropped, 1, or 2 duplicated). */
  private copies (): number {
    this.stats.sent++
    if (this.rng.chance(this.conditions.drop)) {
      this.stats.dropped++
      return 0
    }
    if (this.rng.chance(this.conditions.duplicate)) {
      this.stats.duplicated++
      return 2
    }
    return 1
  }

  /** Deliver `fn` after a random delay per copy, if `from` still reaches `to` then. */
  private leg (from: string, to: string, fn: () => void): void {
    const n = this.copies()
    for (let i = 0; i < n; i++) {
      this.time.setTimeout(() => {
        if (!this.reachable(from, to)) {
          this.stats.unreachable++
          return
        }
        this.stats.delivered++
        fn()
      }, this.delay())
    }
  }

  /** @internal gossip from `from` to every node it reaches. */
  gossip (from: string, data: Uint8Array): void {
    for (const to of this.peersOf(from)) this.send(from, to, data)
  }

  /** @internal one gossip message from `from` to `to`. */
  send (from: string, to: string, data: Uint8Array): void {
    if (!this.reachable(from, to)) return
    this.leg(from, to, () => { this.endpoints.get(to)?.handlers?.message(from, data.slice()) })
  }

  /** @internal a request from `client` to `peer`. */
  async request (client: VirtualEndpoint, peer: string, data: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    this.stats.requests++
    return await new Promise<Uint8Array>((resolve, reject) => {
      let done = false
      const finish = (): boolean => {
        if (done) return false
        done = true
        this.time.clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        client.outstanding.delete(outstanding)
        return true
      }
      const fail = (err: Error): void => { if (finish()) reject(err) }
      const outstanding: Outstanding = { fail }
      const onAbort = (): void => { fail(new VirtualRequestError(`request to ${peer} aborted`)) }
      const timer = this.time.setTimeout(() => {
        this.stats.timeouts++
        fail(new VirtualRequestError(`request to ${peer} timed out`))
      }, this.conditions.requestTimeout)
      if (signal.aborted) { onAbort(); return }
      signal.addEventListener('abort', onAbort)
      client.outstanding.add(outstanding)
      if (!this.reachable(client.id, peer)) return
      this.leg(client.id, peer, () => {
        const server = this.endpoints.get(peer)?.handlers
        if (server === undefined) return
        server.request(client.id, data.slice()).then(
          (response) => { this.leg(peer, client.id, () => { if (finish()) resolve(response.slice()) }) },
          (err: any) => { this.leg(peer, client.id, () => { fail(new VirtualRequestError(`${peer} failed: ${String(err?.message ?? err)}`)) }) }
        )
      })
    })
  }
}
