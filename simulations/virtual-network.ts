/**
 * A virtual network for namespace sync: every node gets an endpoint that
 * implements `SyncNetwork`, on the virtual clock of a {@link VirtualTime},
 * every random choice drawn from a seeded {@link Prng}.
 *
 * Two shapes. **Full mesh** (the default, `degree: 0`): gossip (`publish`)
 * reaches every node of the sender's group in one hop, each copy with a
 * random delay — simple, and its work grows as N² per message round.
 * **Bounded** (`degree: D`): the shape of a libp2p swarm, so that thousands
 * of nodes fit in one process. Each node that starts dials ⌈D/2⌉ random
 * nodes already up (at most `maxLinks` links per node), so the graph is
 * connected and averages about D links a node ({@link Topology}). Gossip
 * travels as gossipsub floods its mesh: the publisher sends to its links,
 * each receiver delivers once (a per-message seen set, which lives only
 * while copies of that message are in flight, so it is bounded by the
 * messages in flight) and forwards to its other links; it reaches everyone
 * in O(log N) hops, and the handler's `from` is the author, as gossipsub's
 * signed `msg.from` is, its `via` the link it came over (gossipsub's
 * propagation source). Each direction of a link has its own base latency
 * (drawn at link creation from `minDelay`..`maxDelay`) plus per-message
 * `jitter`, a `bandwidth` (a message of B bytes occupies the direction for
 * B / bandwidth ms; later messages queue behind it), loss, duplication and
 * `reorder` (an extra delay). Requests go only to linked peers. Faults:
 * group partitions as in the full mesh (after which each group is made
 * connected again by dialling, as a connection manager would), links cut
 * both ways (a partial partition) or one way (an asymmetric link: A→B lost,
 * B→A delivered, and both still list each other as peers).
 *
 * Partitions split the nodes into groups that cannot talk; healing fires
 * `connected` on both sides of every re-joined pair (full mesh) or link
 * (bounded), like a reconnect.
 *
 * A request that is dropped, or sent to an unreachable peer, rejects after
 * the network's own virtual timeout (the `AbortSignal` a caller passes is
 * honoured too, but `AbortSignal.timeout` runs on real time, so the virtual
 * timeout is what a simulation relies on).
 *
 * @module
 */
import type { SyncHandlers, SyncNetwork } from '../node/namespace/sync.js'
import { ShoalError } from '../node/errors.js'
import type { Prng } from './prng.js'
import { Topology, type Direction, type Link } from './topology.js'
import type { VirtualTime } from './virtual-time.js'

/** Link conditions (can be changed during a run with {@link VirtualNetwork.setConditions}). */
export interface NetworkConditions {
  /** Smallest one-way delay of a message (virtual ms); bounded mode: of a link's base latency. @default 1 */
  minDelay: number
  /** Largest one-way delay of a message (virtual ms); bounded mode: of a link's base latency. @default 50 */
  maxDelay: number
  /** Probability that one message leg (gossip, request or response) is lost. @default 0 */
  drop: number
  /** Probability that one message leg is delivered twice. @default 0 */
  duplicate: number
  /** A request with no answer by then rejects (virtual ms). @default 1000 */
  requestTimeout: number
  /** Bounded mode: extra delay of each message, uniform in 0..jitter (virtual ms). @default 0 */
  jitter: number
  /** Bounded mode: probability that a message is held back by up to `maxDelay` more (reordering). @default 0 */
  reorder: number
  /** Bounded mode: bytes per virtual ms one direction of a link carries (1000 = 1 MB/s). @default Infinity */
  bandwidth: number
}

/** The shape of the network (fixed at construction). */
export interface TopologyOptions {
  /**
   * Links per node on average: 0 is the full mesh; D > 0 is the bounded
   * mode, where each node that starts dials ⌈D/2⌉ random nodes already up.
   * @default 0
   */
  degree: number
  /** Bounded mode: most links one node accepts. @default 50 */
  maxLinks: number
}

/** Everything a {@link VirtualNetwork} is built with. */
export type NetworkOptions = NetworkConditions & TopologyOptions

/** Counters of what the network did. */
export interface NetworkStats {
  /** Message legs sent (gossip copies, requests, responses). */
  sent: number
  delivered: number
  dropped: number
  duplicated: number
  /** Legs lost because the two ends were not connected when it arrived (or the direction was cut). */
  unreachable: number
  requests: number
  timeouts: number
  connects: number
  /** Bounded mode: gossip copies a node had seen already (not delivered again). */
  seen: number
  /** Bounded mode: requests to a peer that is not linked (they time out). */
  notLinked: number
  /** Bounded mode: links made (dials). */
  links: number
  /** Bounded mode: most hops one gossip message took to reach a node. */
  maxHops: number
}

/** Raised when a virtual request times out, is aborted or its endpoint closes. */
export class VirtualRequestError extends ShoalError {
  override name = 'VirtualRequestError'
}

const DEFAULTS: NetworkOptions = {
  minDelay: 1,
  maxDelay: 50,
  drop: 0,
  duplicate: 0,
  requestTimeout: 1000,
  jitter: 0,
  reorder: 0,
  bandwidth: Infinity,
  degree: 0,
  maxLinks: 50
}

interface Outstanding { fail: (err: Error) => void }

/** A gossip message while copies of it are in flight (bounded mode). */
interface Flood {
  author: string
  data: Uint8Array
  /** Bit i: node i has delivered it. */
  seen: Uint8Array
}

/** One node's attachment to a {@link VirtualNetwork}; a `SyncNetwork`. */
export class VirtualEndpoint implements SyncNetwork {
  /** @internal the handlers while handling */
  handlers: SyncHandlers | undefined
  /** @internal requests this endpoint is waiting on */
  readonly outstanding = new Set<Outstanding>()

  /**
   * @param id the node's peer id
   * @param index the node's number in its network
   */
  constructor (readonly id: string, readonly index: number, private readonly net: VirtualNetwork) {}

  /** Start receiving; the peers this node reaches see it connect. */
  async handle (handlers: SyncHandlers): Promise<void> {
    this.handlers = handlers
    this.net.joined(this)
  }

  /** Stop receiving; requests this node is waiting on reject. */
  async unhandle (): Promise<void> {
    this.handlers = undefined
    this.net.left(this)
    for (const o of [...this.outstanding]) o.fail(new VirtualRequestError(`${this.id} closed`))
  }

  /** Gossip to every node this one reaches (full mesh: one hop; bounded: flooded over links). */
  async publish (data: Uint8Array): Promise<void> {
    this.net.gossip(this.id, data)
  }

  /** Ask `peer`; rejects after the network's virtual timeout when there is no answer. */
  async request (peer: string, data: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    return await this.net.request(this, peer, data, signal)
  }

  /** The nodes this one is connected to now. */
  peers (): string[] {
    return this.net.peersOf(this.id)
  }

  /** Send one gossip message to one peer only, linked or not (tests: targeted injection). */
  sendTo (peer: string, data: Uint8Array): void {
    this.net.send(this.id, peer, data)
  }
}

/** A simulated network between endpoints, driven by virtual time and a seeded random source. */
export class VirtualNetwork {
  /** What the network did so far. */
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, unreachable: 0, requests: 0, timeouts: 0, connects: 0, seen: 0, notLinked: 0, links: 0, maxHops: 0 }
  private conditions: NetworkConditions
  private readonly shape: TopologyOptions
  private readonly endpoints = new Map<string, VirtualEndpoint>()
  private readonly byIndex: VirtualEndpoint[] = []
  /** Node index → group; nodes in one group can talk. */
  private readonly group: number[] = []
  /** Bounded mode: the links. */
  readonly topology = new Topology()
  /** Bounded mode: indices of the nodes up (handling), for dialling. */
  private readonly up: number[] = []
  private readonly isUp: boolean[] = []
  /**
   * When false, a node that starts handling is not announced to the others
   * with `connected` (a swarm booting together: each node pulls from those
   * already up when it starts, which is enough). @default true
   */
  announceJoins = true

  /**
   * @param time the clock every delay and timeout runs on
   * @param rng the source of every delay, drop, duplicate and link
   * @param options conditions and shape (see {@link NetworkOptions})
   */
  constructor (private readonly time: VirtualTime, private readonly rng: Prng, options: Partial<NetworkOptions> = {}) {
    const { degree, maxLinks, ...conditions } = { ...DEFAULTS, ...options }
    this.conditions = conditions
    this.shape = { degree, maxLinks }
  }

  /** True in the bounded mode (explicit links, multi-hop gossip). */
  get bounded (): boolean { return this.shape.degree > 0 }

  /** The endpoint of node `id` (created on first use). */
  endpoint (id: string): VirtualEndpoint {
    let e = this.endpoints.get(id)
    if (e === undefined) {
      e = new VirtualEndpoint(id, this.byIndex.length, this)
      this.endpoints.set(id, e)
      this.byIndex.push(e)
      this.group.push(0)
      this.topology.ensure(e.index)
    }
    return e
  }

  /** Change link conditions from now on. */
  setConditions (conditions: Partial<NetworkConditions>): void {
    this.conditions = { ...this.conditions, ...conditions }
  }

  /** Current link conditions. */
  getConditions (): NetworkConditions { return { ...this.conditions } }

  private up_ (i: number): boolean { return this.byIndex[i]?.handlers !== undefined }

  /** Both up and in one group (a targeted send in bounded mode needs no link). */
  private listedLoose (a: number, b: number): boolean {
    return a !== b && this.up_(a) && this.up_(b) && this.group[a] === this.group[b]
  }

  /** Both ends up, in one group, and (bounded) linked by a link not cut both ways. */
  private listed (a: number, b: number): boolean {
    if (!this.listedLoose(a, b)) return false
    if (!this.bounded) return true
    const link = this.topology.link(a, b)
    return link !== undefined && !(link.ab.cut && link.ba.cut)
  }

  /** Messages from `a` to `b` can arrive now: listed, and (bounded) the direction a → b not cut. */
  private passes (a: number, b: number): boolean {
    if (!this.listed(a, b)) return false
    if (!this.bounded) return true
    return !Topology.direction(this.topology.link(a, b) as Link, a).cut
  }

  private index (id: string): number { return this.endpoints.get(id)?.index ?? -1 }

  /** True when `a` and `b` are both up, in one group and (bounded mode) linked. */
  reachable (a: string, b: string): boolean {
    return this.listed(this.index(a), this.index(b))
  }

  /** Nodes `id` is connected to now. */
  peersOf (id: string): string[] {
    const i = this.index(id)
    const out: string[] = []
    if (i < 0) return out
    if (this.bounded) {
      for (const n of this.topology.neighbours(i).keys()) if (this.listed(i, n)) out.push(this.byIndex[n].id)
    } else {
      for (let n = 0; n < this.byIndex.length; n++) if (this.listed(i, n)) out.push(this.byIndex[n].id)
    }
    return out
  }

  /**
   * Split the nodes: each listed group becomes its own component; nodes
   * listed in no group form one more component together. Pairs (bounded:
   * links) that become connected get `connected` events.
   */
  partition (groups: string[][]): void {
    const next = this.byIndex.map(() => 0)
    groups.forEach((members, g) => { for (const id of members) { const i = this.index(id); if (i >= 0) next[i] = g + 1 } })
    this.regroup(next)
  }

  /** Put `id` alone in its own component. */
  isolate (id: string): void {
    const next = [...this.group]
    const i = this.index(id)
    if (i >= 0) next[i] = Math.max(0, ...this.group) + 1
    this.regroup(next)
  }

  /** Reconnect everything (bounded: cut links too); every re-joined pair or link gets `connected` on both sides. */
  heal (): void {
    this.regroup(this.byIndex.map(() => 0), () => {
      for (const link of this.topology.all()) { link.ab.cut = false; link.ba.cut = false }
    })
  }

  /**
   * Bounded mode: cut links. Each pair `[a, b]` loses messages a → b, and
   * b → a too unless `oneWay` (an asymmetric link: both still list each
   * other as peers while only b → a works). Links cut both ways stop being
   * peers. {@link heal} or {@link restore} undoes it.
   */
  cut (pairs: Array<[string, string]>, options: { oneWay?: boolean } = {}): void {
    this.relink(pairs, (link, a) => {
      Topology.direction(link, a).cut = true
      if (options.oneWay !== true) Topology.direction(link, a === link.a ? link.b : link.a).cut = true
    })
  }

  /** Bounded mode: restore cut links (both directions); those that become usable get `connected` on both sides. */
  restore (pairs: Array<[string, string]>): void {
    this.relink(pairs, (link) => { link.ab.cut = false; link.ba.cut = false })
  }

  /** The links of bounded mode as peer-id pairs (tests: choosing links to cut). */
  links (): Array<[string, string]> {
    return [...this.topology.all()].map(l => [this.byIndex[l.a].id, this.byIndex[l.b].id])
  }

  private relink (pairs: Array<[string, string]>, change: (link: Link, a: number) => void): void {
    for (const [x, y] of pairs) {
      const a = this.index(x)
      const b = this.index(y)
      const link = this.topology.link(a, b)
      if (link === undefined) continue
      const was = this.listed(a, b)
      change(link, a)
      if (!was && this.listed(a, b)) { this.connect(a, b); this.connect(b, a) }
    }
  }

  private regroup (next: number[], alsoChange?: () => void): void {
    if (!this.bounded) {
      const was = [...this.group]
      for (let i = 0; i < next.length; i++) this.group[i] = next[i]
      for (let i = 0; i < next.length; i++) {
        for (let j = i + 1; j < next.length; j++) {
          if (was[i] !== was[j] && this.listed(i, j)) {
            this.connect(i, j)
            this.connect(j, i)
          }
        }
      }
      return
    }
    const before = [...this.topology.all()].map(l => this.listed(l.a, l.b))
    for (let i = 0; i < next.length; i++) this.group[i] = next[i]
    alsoChange?.()
    ;[...this.topology.all()].forEach((l, k) => {
      if (!before[k] && this.listed(l.a, l.b)) { this.connect(l.a, l.b); this.connect(l.b, l.a) }
    })
    this.mend()
  }

  /**
   * Bounded mode: make every group connected over usable links again by
   * dialling from one component into the next (a connection manager
   * replacing lost connections); new links get `connected` on both sides.
   */
  private mend (): void {
    const byGroup = new Map<number, number[]>()
    for (const i of this.up) {
      let g = byGroup.get(this.group[i])
      if (g === undefined) { g = []; byGroup.set(this.group[i], g) }
      g.push(i)
    }
    for (const members of byGroup.values()) {
      const parts = this.topology.components(members, l => this.listed(l.a, l.b))
      for (let k = 1; k < parts.length; k++) {
        const a = this.rng.pick(parts[k])
        const b = this.rng.pick(parts[this.rng.int(0, k - 1)])
        this.dial(a, b, true)
      }
    }
  }

  /** Link `a` to `b` (bounded mode); `announce`: both sides see `connected`. */
  private dial (a: number, b: number, announce: boolean): void {
    const fresh = this.topology.link(a, b) === undefined
    this.topology.connect(a, b, this.rng, { min: this.conditions.minDelay, max: this.conditions.maxDelay })
    if (fresh) this.stats.links++
    if (announce) { this.connect(a, b); this.connect(b, a) }
  }

  /** @internal an endpoint stopped handling (bounded: it no longer takes dials). */
  left (endpoint: VirtualEndpoint): void {
    if (!this.isUp[endpoint.index]) return
    this.isUp[endpoint.index] = false
    this.up.splice(this.up.indexOf(endpoint.index), 1)
  }

  /** @internal an endpoint started handling: (bounded) it dials; its peers see it connect. */
  joined (endpoint: VirtualEndpoint): void {
    const i = endpoint.index
    if (!this.bounded) {
      if (!this.announceJoins) return
      for (let n = 0; n < this.byIndex.length; n++) if (this.listed(i, n)) this.connect(n, i)
      return
    }
    if (!this.isUp[i]) { this.isUp[i] = true; this.up.push(i) }
    // random nodes already up, with room, in the same group (bounded tries: no scan of every node)
    const want = Math.ceil(this.shape.degree / 2)
    for (let tries = 0, made = 0; made < want && tries < 20 * want && this.topology.degree(i) < this.shape.maxLinks; tries++) {
      const n = this.up[this.rng.int(0, this.up.length - 1)]
      if (!this.listedLoose(i, n) || this.topology.link(i, n) !== undefined || this.topology.degree(n) >= this.shape.maxLinks) continue
      this.dial(i, n, false)
      made++
    }
    if (this.topology.degree(i) === 0) this.mend()
    if (!this.announceJoins) return
    for (const n of this.topology.neighbours(i).keys()) if (this.listed(i, n)) this.connect(n, i)
  }

  /** Tell `at` (after a delay) that `peer` connected. */
  private connect (at: number, peer: number): void {
    this.time.setTimeout(() => {
      const h = this.byIndex[at]?.handlers
      if (h === undefined || !this.listed(at, peer)) return
      this.stats.connects++
      h.connected(this.byIndex[peer].id)
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

  /**
   * Delay of one message of `bytes` over the direction `d` sent now: queue
   * behind what the direction is still sending, transmit at the bandwidth,
   * then the base latency, jitter and maybe a reordering hold-back.
   */
  private transit (d: Direction, bytes: number): number {
    const { bandwidth, jitter, reorder, maxDelay } = this.conditions
    const now = this.time.now()
    const start = Math.max(now, d.busyUntil)
    const send = Number.isFinite(bandwidth) && bandwidth > 0 ? bytes / bandwidth : 0
    d.busyUntil = start + send
    let delay = start - now + send + d.latency
    if (jitter > 0) delay += this.rng.int(0, jitter)
    if (this.rng.chance(reorder)) delay += this.rng.int(1, Math.max(1, maxDelay))
    return delay
  }

  /** Deliver `fn` once per arriving copy, if `from` still reaches `to` then. */
  private leg (from: number, to: number, bytes: number, fn: () => void): void {
    const n = this.copies()
    const link = this.bounded ? this.topology.link(from, to) : undefined
    for (let i = 0; i < n; i++) {
      const delay = link !== undefined ? this.transit(Topology.direction(link, from), bytes) : this.delay()
      this.time.setTimeout(() => {
        if (!this.passes(from, to) && !(link === undefined && this.bounded && this.listedLoose(from, to))) {
          this.stats.unreachable++
          return
        }
        this.stats.delivered++
        fn()
      }, delay)
    }
  }

  /** @internal gossip from `from`: full mesh, one hop to every reachable node; bounded, a flood over links. */
  gossip (from: string, data: Uint8Array): void {
    const i = this.index(from)
    if (i < 0) return
    if (!this.bounded) {
      for (let n = 0; n < this.byIndex.length; n++) if (this.listed(i, n)) this.send(from, this.byIndex[n].id, data)
      return
    }
    const flood: Flood = { author: from, data, seen: new Uint8Array((this.byIndex.length + 7) >> 3) }
    flood.seen[i >> 3] |= 1 << (i & 7)
    this.forward(flood, i, -1, 0)
  }

  /** Bounded mode: send `flood` from node `at` to its links except `came`. */
  private forward (flood: Flood, at: number, came: number, hops: number): void {
    for (const [n, link] of this.topology.neighbours(at)) {
      if (n === came || (flood.seen[n >> 3] & (1 << (n & 7))) !== 0 || !this.listed(at, n) || Topology.direction(link, at).cut) continue
      this.leg(at, n, flood.data.byteLength, () => { this.arrive(flood, n, at, hops + 1) })
    }
  }

  private arrive (flood: Flood, at: number, came: number, hops: number): void {
    const bit = 1 << (at & 7)
    if ((flood.seen[at >> 3] & bit) !== 0) {
      this.stats.seen++
      return
    }
    flood.seen[at >> 3] |= bit
    if (hops > this.stats.maxHops) this.stats.maxHops = hops
    this.forward(flood, at, came, hops)
    // the same bytes for every receiver: handlers only read them
    this.byIndex[at].handlers?.message(flood.author, flood.data, this.byIndex[came].id)
  }

  /** @internal one gossip message from `from` to `to` (full mesh; bounded: targeted injection, no link needed). */
  send (from: string, to: string, data: Uint8Array): void {
    const a = this.index(from)
    const b = this.index(to)
    if (!(this.bounded ? this.listedLoose(a, b) : this.listed(a, b))) return
    this.leg(a, b, data.byteLength, () => { this.byIndex[b].handlers?.message(from, data.slice()) })
  }

  /** @internal a request from `client` to `peer`. */
  async request (client: VirtualEndpoint, peer: string, data: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    this.stats.requests++
    const a = client.index
    const b = this.index(peer)
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
      if (!this.listed(a, b)) {
        if (this.bounded && this.listedLoose(a, b)) this.stats.notLinked++
        return
      }
      this.leg(a, b, data.byteLength, () => {
        const server = this.byIndex[b].handlers
        if (server === undefined) return
        server.request(client.id, data.slice()).then(
          (response) => { this.leg(b, a, response.byteLength, () => { if (finish()) resolve(response.slice()) }) },
          (err: any) => { this.leg(b, a, 64, () => { fail(new VirtualRequestError(`${peer} failed: ${String(err?.message ?? err)}`)) }) }
        )
      })
    })
  }
}
