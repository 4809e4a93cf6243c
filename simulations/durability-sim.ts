/**
 * A churn simulation of placement and repair: N peers (real Ed25519 ids
 * from the seed, spread over zones) hold the shards of many k+m stripes;
 * peers leave (restart within the grace period, come back later, or never)
 * and new peers join, on a {@link VirtualTime} clock. Every peer runs the
 * real planner ({@link planRepair}) on a period for the stripes it
 * coordinates ({@link repairCoordinator}); a repair reads k shards and
 * writes one, paced by the coordinator's {@link RateLimiter} and a link
 * rate, and commits only if its coordinator, target and sources are still
 * there when it ends.
 *
 * What each peer actually stores is tracked apart from the holder lists
 * (a peer that leaves for good loses its disk; a returning peer keeps it,
 * except copies that a repair replaced meanwhile, which it drops), so
 * "recoverable" is judged from the data, not from the bookkeeping.
 *
 * @module
 */
import { explainPlacement, placeStripe, type PlacementPeer } from '../node/durability/placement.js'
import { RateLimiter, planRepair, repairCoordinator, type PeerLiveness, type RepairAction } from '../node/durability/repair-plan.js'
import { simPeerIds } from './durability-balance.js'
import { Prng } from './prng.js'
import { VirtualTime, type VirtualTimer } from './virtual-time.js'

/** How a churn simulation is built. */
export interface ChurnOptions {
  seed: number
  /** Peers at the start. @default 50 */
  peers?: number
  /** Peer ids kept in reserve for joins (at most this many joins). @default 10 */
  spares?: number
  /** @default 300 */
  stripes?: number
  /** @default 4 */
  k?: number
  /** @default 2 */
  m?: number
  /** Zones the peers are spread over round-robin. @default 5 */
  zones?: number
  /** @default 1 MiB */
  shardBytes?: number
  /** @default 10 min */
  graceMs?: number
  /** How often each peer runs the planner. @default 60 s */
  planEveryMs?: number
  /** Link rate of one repair transfer (bytes/s). @default 64 MiB/s */
  linkBytesPerSecond?: number
  /** Repair rate limit of each peer (bytes/s). @default 4 MiB/s */
  repairBytesPerSecond?: number
  /** Repair burst of each peer (bytes). @default 16 MiB */
  repairBurstBytes?: number
}

/** A churn event, at `at` virtual ms after the start. */
export type ChurnEvent =
  /** A live peer (the `pick`-th live one, modulo) leaves; back after `downFor` ms, or never when absent. */
  | { t: 'leave', at: number, pick: number, downFor?: number }
  /** A new peer joins (while spare ids last). */
  | { t: 'join', at: number }
  /** Every live peer of zone `zone` (modulo the zone count) leaves at once; back after `downFor` ms, or never. */
  | { t: 'zone-out', at: number, zone: number, downFor?: number }

/** Counters of a run. */
export interface ChurnStats {
  leaves: number
  returns: number
  joins: number
  /** Repairs started. */
  started: number
  /** Repairs that committed. */
  completed: number
  /** Repairs dropped because their coordinator, target or a source went away. */
  aborted: number
  /** Shard bytes read by committed repairs. */
  bytesRead: number
  /** Shard bytes written by committed repairs. */
  bytesWritten: number
  /** Bytes of aborted repairs whose transfer had begun (an upper bound of the waste). */
  wastedBytes: number
}

/** A shard copy rebuilt by a committed repair. */
export interface RepairRecord {
  stripe: number
  index: number
  from: string
  to: string
  /** The coordinator that rebuilt it. */
  by: string
  sources: number[]
  plannedAt: number
  doneAt: number
}

interface SimPeer extends PlacementPeer {
  alive: boolean
  downSince?: number
  /** Bumped at each departure: repairs of an earlier session die with it. */
  session: number
  limiter: RateLimiter
  /** `${stripe}:${index}` of every shard copy on this peer's disk. */
  store: Set<string>
  leases: Set<Lease>
}

interface SimStripe {
  key: Uint8Array
  holders: string[]
  leases: Map<number, Lease>
  /** Most shards whose holder was down at one time. */
  maxDown: number
  liveNow: number
  lastChange: number
}

interface Lease {
  stripe: number
  action: RepairAction
  by: SimPeer
  session: number
  plannedAt: number
  startsAt: number
  bytes: number
  timer?: VirtualTimer
}

const MiB = 1024 * 1024

/** A placement-and-repair simulation under churn. */
export class DurabilitySim {
  /** The virtual clock every peer runs on. */
  readonly time = new VirtualTime()
  readonly k: number
  readonly m: number
  readonly shardBytes: number
  readonly graceMs: number
  readonly stats: ChurnStats = { leaves: 0, returns: 0, joins: 0, started: 0, completed: 0, aborted: 0, bytesRead: 0, bytesWritten: 0, wastedBytes: 0 }
  /** Committed repairs, in order. */
  readonly repairs: RepairRecord[] = []
  /** Violations seen while running (should stay empty). */
  readonly violations: string[] = []
  /** Virtual ms spent by all stripes at each live-shard count (index = live shards). */
  readonly liveTime: number[]
  private readonly peers: SimPeer[] = []
  private readonly byId = new Map<string, SimPeer>()
  private readonly stripes: SimStripe[] = []
  private readonly holdings = new Map<string, Set<number>>()
  private readonly spares: string[]
  private readonly repaired = new Set<string>()
  private readonly rng: Prng
  private readonly options: Required<ChurnOptions>
  /** Virtual time of the last scheduled churn event or return. */
  churnEnd = VirtualTime.START

  private constructor (options: Required<ChurnOptions>, rng: Prng, ids: string[]) {
    this.options = options
    this.rng = rng
    this.k = options.k
    this.m = options.m
    this.shardBytes = options.shardBytes
    this.graceMs = options.graceMs
    this.liveTime = new Array<number>(options.k + options.m + 1).fill(0)
    this.spares = ids.slice(options.peers)
    for (const id of ids.slice(0, options.peers)) this.addPeer(id)
  }

  /** Build the peers, place every stripe and start every peer's planner. */
  static async create (options: ChurnOptions): Promise<DurabilitySim> {
    const full: Required<ChurnOptions> = {
      peers: 50, spares: 10, stripes: 300, k: 4, m: 2, zones: 5, shardBytes: MiB, graceMs: 600_000, planEveryMs: 60_000,
      linkBytesPerSecond: 64 * MiB, repairBytesPerSecond: 4 * MiB, repairBurstBytes: 16 * MiB, ...options
    }
    const rng = new Prng(full.seed)
    const ids = await simPeerIds(rng.fork(), full.peers + full.spares)
    const sim = new DurabilitySim(full, rng, ids)
    sim.placeAll()
    for (const peer of sim.peers) sim.startPlanner(peer)
    return sim
  }

  private addPeer (id: string): SimPeer {
    const n = this.peers.length
    const peer: SimPeer = {
      id,
      zone: `z${n % this.options.zones}`,
      alive: true,
      session: 0,
      limiter: new RateLimiter(this.options.repairBytesPerSecond, this.options.repairBurstBytes),
      store: new Set(),
      leases: new Set()
    }
    this.peers.push(peer)
    this.byId.set(id, peer)
    this.holdings.set(id, new Set())
    return peer
  }

  private placeAll (): void {
    const shards = this.k + this.m
    for (let s = 0; s < this.options.stripes; s++) {
      const key = this.rng.bytes(32)
      const holders = placeStripe(key, this.peers, shards, Math.max(1, this.m))
      this.stripes.push({ key, holders, leases: new Map(), maxDown: 0, liveNow: shards, lastChange: this.time.now() })
      holders.forEach((id, index) => {
        this.holdings.get(id)?.add(s)
        this.byId.get(id)?.store.add(`${s}:${index}`)
      })
    }
  }

  private startPlanner (peer: SimPeer): void {
    const every = this.options.planEveryMs
    const tick = (): void => {
      this.planFor(peer)
      this.time.setTimeout(tick, every)
    }
    this.time.setTimeout(tick, this.rng.int(1, every))
  }

  /** Liveness of a peer as every node sees it (a shared failure detector). */
  readonly liveness = (id: string): PeerLiveness => {
    const peer = this.byId.get(id)
    if (peer === undefined) return { downSince: VirtualTime.START }
    return peer.alive ? {} : { downSince: peer.downSince }
  }

  private readonly isAlive = (id: string): boolean => this.byId.get(id)?.alive === true

  /** Run the planner of `peer` over the stripes it coordinates. */
  private planFor (peer: SimPeer): void {
    if (!peer.alive) return
    for (const s of [...this.holdings.get(peer.id) ?? []]) {
      const stripe = this.stripes[s]
      if (repairCoordinator(stripe.key, stripe.holders, this.isAlive) !== peer.id) continue
      const plan = planRepair({
        key: stripe.key,
        k: this.k,
        m: this.m,
        holders: stripe.holders,
        liveness: this.liveness,
        peers: this.peers,
        now: this.time.now(),
        graceMs: this.graceMs,
        pending: [...stripe.leases.values()].map(l => ({ index: l.action.index, to: l.action.to }))
      })
      for (const action of plan.actions) this.startRepair(peer, s, action)
    }
  }

  private startRepair (by: SimPeer, s: number, action: RepairAction): void {
    const stripe = this.stripes[s]
    const now = this.time.now()
    this.checkDue(s, action)
    if (stripe.leases.has(action.index)) this.violations.push(`stripe ${s} shard ${action.index}: two repairs at once`)
    const bytes = (this.k + 1) * this.shardBytes
    const wait = by.limiter.delay(bytes, now)
    const transfer = Math.ceil(bytes * 1000 / this.options.linkBytesPerSecond)
    const lease: Lease = { stripe: s, action, by, session: by.session, plannedAt: now, startsAt: now + wait, bytes }
    lease.timer = this.time.setTimeout(() => { this.finishRepair(lease) }, wait + transfer)
    stripe.leases.set(action.index, lease)
    by.leases.add(lease)
    this.stats.started++
  }

  /** Independent check of the planner: the old holder must have been gone for the whole grace period. */
  private checkDue (s: number, action: RepairAction): void {
    const from = this.byId.get(action.from)
    const since = from?.downSince
    if (from === undefined || from.alive || since === undefined || this.time.now() - since < this.graceMs) {
      this.violations.push(`stripe ${s} shard ${action.index}: repair of ${action.from} before its grace period ended`)
    }
    if (action.sources.length !== this.k || new Set(action.sources).size !== this.k) {
      this.violations.push(`stripe ${s} shard ${action.index}: sources ${action.sources.join(',')} are not k distinct shards`)
    }
  }

  private finishRepair (lease: Lease): void {
    const stripe = this.stripes[lease.stripe]
    const { action } = lease
    this.dropLease(lease)
    const to = this.byId.get(action.to)
    const sourcesThere = action.sources.every(i => this.byId.get(stripe.holders[i])?.alive === true &&
      this.byId.get(stripe.holders[i])?.store.has(`${lease.stripe}:${i}`) === true)
    const ok = lease.by.alive && lease.by.session === lease.session && to?.alive === true && sourcesThere &&
      stripe.holders[action.index] === action.from
    if (!ok || to === undefined) {
      this.abort(lease)
      return
    }
    this.commit(lease, to)
  }

  private commit (lease: Lease, to: SimPeer): void {
    const { action, stripe: s } = lease
    const stripe = this.stripes[s]
    const from = this.byId.get(action.from)
    // one repair per departure of a holder: its session counts departures
    const once = `${s}:${action.index}:${action.from}:${from?.session ?? 0}`
    if (this.repaired.has(once)) this.violations.push(`stripe ${s} shard ${action.index}: repaired twice for one departure of ${action.from}`)
    this.repaired.add(once)
    // the old copy is garbage now: its peer drops it when it is back
    from?.store.delete(`${s}:${action.index}`)
    to.store.add(`${s}:${action.index}`)
    stripe.holders[action.index] = to.id
    if (!stripe.holders.includes(action.from)) this.holdings.get(action.from)?.delete(s)
    this.holdings.get(to.id)?.add(s)
    this.stats.completed++
    this.stats.bytesRead += action.sources.length * this.shardBytes
    this.stats.bytesWritten += this.shardBytes
    this.repairs.push({ stripe: s, index: action.index, from: action.from, to: to.id, by: lease.by.id, sources: action.sources, plannedAt: lease.plannedAt, doneAt: this.time.now() })
    this.noteStripe(s)
  }

  private abort (lease: Lease): void {
    this.stats.aborted++
    if (this.time.now() > lease.startsAt) this.stats.wastedBytes += lease.bytes
  }

  private dropLease (lease: Lease): void {
    const stripe = this.stripes[lease.stripe]
    if (stripe.leases.get(lease.action.index) === lease) stripe.leases.delete(lease.action.index)
    lease.by.leases.delete(lease)
  }

  /** Account the time a stripe spent at its previous live count and record the new one. */
  private noteStripe (s: number): void {
    const stripe = this.stripes[s]
    const now = this.time.now()
    this.liveTime[stripe.liveNow] += now - stripe.lastChange
    stripe.lastChange = now
    const down = stripe.holders.filter(id => !this.isAlive(id)).length
    stripe.liveNow = stripe.holders.length - down
    stripe.maxDown = Math.max(stripe.maxDown, down)
  }

  private noteHolder (id: string): void {
    for (const s of this.holdings.get(id) ?? []) this.noteStripe(s)
  }

  /** Schedule churn events (times relative to the start). */
  schedule (events: readonly ChurnEvent[]): void {
    for (const e of [...events].sort((a, b) => a.at - b.at)) {
      const at = VirtualTime.START + e.at
      this.churnEnd = Math.max(this.churnEnd, at + (e.t === 'join' ? 0 : e.downFor ?? 0))
      this.time.setTimeout(() => { this.apply(e) }, at - this.time.now())
    }
  }

  private apply (e: ChurnEvent): void {
    if (e.t === 'join') {
      this.join()
    } else if (e.t === 'leave') {
      const live = this.peers.filter(p => p.alive)
      if (live.length > 0) this.leave(live[e.pick % live.length], e.downFor)
    } else {
      const zone = `z${e.zone % this.options.zones}`
      for (const peer of this.peers.filter(p => p.alive && p.zone === zone)) this.leave(peer, e.downFor)
    }
  }

  private leave (peer: SimPeer, downFor: number | undefined): void {
    peer.alive = false
    peer.downSince = this.time.now()
    peer.session++
    for (const lease of [...peer.leases]) {
      if (lease.timer !== undefined) this.time.clearTimeout(lease.timer)
      this.dropLease(lease)
      this.abort(lease)
    }
    this.stats.leaves++
    if (downFor === undefined) peer.store.clear()
    else this.time.setTimeout(() => { this.comeBack(peer) }, downFor)
    this.noteHolder(peer.id)
  }

  private comeBack (peer: SimPeer): void {
    peer.alive = true
    peer.downSince = undefined
    this.stats.returns++
    this.noteHolder(peer.id)
  }

  private join (): void {
    const id = this.spares.shift()
    if (id === undefined) return
    const peer = this.addPeer(id)
    this.stats.joins++
    this.startPlanner(peer)
  }

  /** Run until the last churn event (and every scheduled return) has happened. */
  async runChurn (): Promise<void> {
    await this.time.runUntil(this.churnEnd, { maxEvents: 2_000_000 })
  }

  /** Run until every recoverable stripe is whole again, at most `maxMs` more; true if it got there. */
  async runUntilRestored (maxMs: number): Promise<boolean> {
    const result = await this.time.runUntil(() => this.settled(),
      { deadline: this.time.now() + maxMs, pollEvery: this.options.planEveryMs, maxEvents: 2_000_000 })
    return result === 'done'
  }

  /** Distinct shard indexes of stripe `s` that some live peer stores. */
  recoverableShards (s: number): number {
    const found = new Set<number>()
    for (const peer of this.peers) {
      if (!peer.alive) continue
      for (let i = 0; i < this.k + this.m; i++) if (peer.store.has(`${s}:${i}`)) found.add(i)
    }
    return found.size
  }

  /** Stripes that never had more than m holders down at once but cannot be read now (property a). */
  lostProblems (): string[] {
    const out: string[] = []
    this.stripes.forEach((stripe, s) => {
      const shards = this.recoverableShards(s)
      if (stripe.maxDown <= this.m && shards < this.k) out.push(`stripe ${s}: at most ${stripe.maxDown} holders down at once, yet only ${shards} shards recoverable`)
    })
    return out
  }

  /** Every stripe has all its shards live, or cannot be rebuilt (cheap: zones not checked). */
  settled (): boolean {
    return this.stripes.every((stripe, s) => this.whole(s, stripe) || this.recoverableShards(s) < this.k)
  }

  private whole (s: number, stripe: SimStripe): boolean {
    return stripe.holders.every((id, i) => this.byId.get(id)?.alive === true && this.byId.get(id)?.store.has(`${s}:${i}`) === true)
  }

  /** Stripes that could be whole (≥ k shards recoverable) but are not: k+m live, distinct holders storing their shard, zone cap where possible (property d). */
  restoreProblems (): string[] {
    const out: string[] = []
    const live = this.peers.filter(p => p.alive)
    this.stripes.forEach((stripe, s) => {
      const problem = this.stripeProblem(s, stripe, live)
      if (problem !== undefined && this.recoverableShards(s) >= this.k) out.push(`stripe ${s}: ${problem}`)
    })
    return out
  }

  private stripeProblem (s: number, stripe: SimStripe, live: SimPeer[]): string | undefined {
    if (!this.whole(s, stripe)) return `${stripe.liveNow} of ${stripe.holders.length} holders live`
    const e = explainPlacement(stripe.holders, live, Math.max(1, this.m))
    if (!e.distinct && live.length >= stripe.holders.length) return `holders not distinct (${e.reason ?? ''})`
    if (!e.zoneCapHonoured && e.zoneCapPossible) return `zone cap broken (${e.reason ?? ''})`
    return undefined
  }

  /** Stripes whose data is gone (< k shards recoverable). */
  lostStripes (): number {
    return this.stripes.filter((_, s) => this.recoverableShards(s) < this.k).length
  }

  /** Stripes that at some time had more than m holders down. */
  exposedStripes (): number {
    return this.stripes.filter(s => s.maxDown > this.m).length
  }

  /** Close the live-time accounting at the current time. */
  flushLiveTime (): number[] {
    this.stripes.forEach((_, s) => { this.noteStripe(s) })
    return [...this.liveTime]
  }

  /** One line of counters. */
  summary (): string {
    const s = this.stats
    const t = Math.round((this.time.now() - VirtualTime.START) / 60_000)
    return `${t} virtual min: ${s.leaves} leaves, ${s.returns} returns, ${s.joins} joins; repairs ${s.completed} done ${s.aborted} aborted; ` +
      `read ${s.bytesRead / this.shardBytes} written ${s.bytesWritten / this.shardBytes} wasted ${s.wastedBytes / this.shardBytes} shards; ` +
      `${this.exposedStripes()} stripes had > m down, ${this.lostStripes()} lost`
  }

  /** Stop every timer. */
  stop (): void {
    this.time.clear()
  }
}
