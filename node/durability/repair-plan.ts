/**
 * Repair decisions for one stripe: pure functions of the stripe's holders,
 * the peers' liveness and the time, so every node reaches the same
 * decision and the simulator can run them on a virtual clock.
 *
 * - A shard whose holder has been down for less than the grace period is
 *   *waiting*: nothing happens (a restart costs no repair).
 * - A shard whose holder has been down for the grace period or longer is
 *   *due*: it is rebuilt from k live shards (data shards first: a systematic
 *   code then needs no decoding when they are all there) onto a new holder.
 * - New holders: live peers in the placement preference order
 *   ({@link preferenceOrder}: XOR-closest candidates, rendezvous-ordered)
 *   that hold no shard of the stripe, honouring the zone cap against the
 *   holders that stay (live and waiting ones, and targets of repairs in
 *   progress). When there are too few such peers for the stripe to survive
 *   the loss of any one node (fewer than k+m nodes, as the first placement
 *   over ⌈(k+m)/m⌉ to k+m−1 nodes), the remaining due shards double up on
 *   the least loaded live peers, at most min(m, ⌈(k+m)/nodes⌉) shards each
 *   ({@link doubleUp}), as the first placement does; a due shard that would
 *   add no such protection stays unplaced until a peer joins, and so do all
 *   of them when doubling up cannot make the stripe survive a lost node (a
 *   node alone, or with too few live peers, never rebuilds shards onto
 *   itself: a copy that dies with its node protects nothing).
 * - Exactly one peer acts per stripe: the {@link repairCoordinator}, the
 *   live holder closest to the stripe key.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'
import {
  assertStripeKey, candidateCount, compareDistance, peerKadKey, pickSpread, preferenceOrder, zoneOf,
  type PlacementPeer
} from './placement.js'

export type { PlacementPeer }

/** One shard of a stripe and the peer that holds it. */
export interface ShardState {
  index: number
  /** Peer id. */
  holder: string
}

/** What a node knows of a peer's reachability. */
export interface PeerLiveness {
  /** ms timestamp since which the peer is unreachable; absent = alive. */
  downSince?: number
}

/** A repair already under way (announced by its coordinator). */
export interface PendingRepair {
  /** Shard index being rebuilt. */
  index: number
  /** Peer receiving it. */
  to: string
}

/** Everything {@link planRepair} decides from. */
export interface RepairPlanInput {
  /** The stripe key (32 bytes). */
  key: Uint8Array
  k: number
  m: number
  /** index → current holder (k+m entries). */
  holders: string[]
  liveness: (peer: string) => PeerLiveness
  /** Every known peer, down ones included. */
  peers: PlacementPeer[]
  /** Current time (ms). */
  now: number
  /** How long a holder may be down before its shards are rebuilt elsewhere (ms). */
  graceMs: number
  /**
   * Peers seen holding a copy of some shard of this stripe besides the one
   * holder per shard in `holders` (a holder back after its shard was
   * rebuilt elsewhere keeps its copy): never a target, or they would hold
   * two shards of the stripe. @default []
   */
  alsoHolding?: string[]
  /**
   * Shards of the stripe seen on more than one live node (a shard moved off
   * an overloaded node whose old copy is not released yet): no shard moves
   * while there is any ({@link planMoves}). @default 0
   */
  doubled?: number
  /** Repairs in progress: not planned again; their targets count as holders. @default [] */
  pending?: PendingRepair[]
  /** Candidate set size of the placement order. @default CANDIDATE_FACTOR × (k+m) */
  candidates?: number
}

/** Rebuild shard `index` (held by `from`, gone) onto `to`. */
export interface RepairAction {
  index: number
  /** Old holder. */
  from: string
  /** New holder. */
  to: string
  /** The k shard indexes to rebuild from, live data shards first. */
  sources: number[]
}

/** healthy: all k+m holders alive; degraded: ≥ k alive; lost: < k alive. */
/**
 * A stripe's health: `healthy` (k+m shards on k+m distinct live nodes),
 * `at-risk` (every shard exists but some share a node: see health.ts),
 * `degraded` (at least k shards), `lost` (fewer than k).
 */
export type StripeHealth = 'healthy' | 'at-risk' | 'degraded' | 'lost'

/** What {@link planRepair} decided. */
export interface RepairPlan {
  health: StripeHealth
  /** Repairs to start now. */
  actions: RepairAction[]
  /** Shards whose holder is down but still within the grace period. */
  waiting: number
  /** Shards whose holder is alive. */
  live: number
  /** Due shards that got no action: no eligible peer, or fewer than k live shards. */
  unplaced: number
}

/** Health from the number of live shards alone (never `at-risk`: that needs where they are, see health.ts). */
export function stripeHealth (live: number, k: number, m: number): StripeHealth {
  if (live >= k + m) return 'healthy'
  return live >= k ? 'degraded' : 'lost'
}

function assertShape (input: RepairPlanInput): void {
  assertStripeKey(input.key)
  const { k, m, holders, graceMs } = input
  if (!Number.isInteger(k) || k < 1) throw new InvalidArgumentError(`k must be a positive integer, got ${k}`)
  if (!Number.isInteger(m) || m < 0) throw new InvalidArgumentError(`m must be a non-negative integer, got ${m}`)
  if (holders.length !== k + m) throw new InvalidArgumentError(`a ${k}+${m} stripe has ${k + m} holders, got ${holders.length}`)
  if (!(graceMs >= 0)) throw new InvalidArgumentError(`graceMs must be ≥ 0, got ${graceMs}`)
}

/** True when `peer` is alive according to `liveness`. */
function alive (liveness: RepairPlanInput['liveness'], peer: string): boolean {
  return liveness(peer).downSince === undefined
}

/** Shards by state: live, waiting (down within grace) and due (down past grace), pending excluded from due. */
function classify (input: RepairPlanInput): { live: number[], waiting: ShardState[], due: ShardState[] } {
  const pending = new Set((input.pending ?? []).map(p => p.index))
  const out = { live: [] as number[], waiting: [] as ShardState[], due: [] as ShardState[] }
  input.holders.forEach((holder, index) => {
    const since = input.liveness(holder).downSince
    if (since === undefined) out.live.push(index)
    else if (pending.has(index)) return
    else if (input.now - since < input.graceMs) out.waiting.push({ index, holder })
    else out.due.push({ index, holder })
  })
  return out
}

/**
 * The k shard indexes to rebuild from: live data shards (index < k) first,
 * then live parity shards, in index order; undefined when fewer than k are live.
 */
export function repairSources (k: number, liveIndexes: number[]): number[] | undefined {
  if (liveIndexes.length < k) return undefined
  const sorted = [...liveIndexes].sort((a, b) => a - b)
  return sorted.slice(0, k)
}

/**
 * Decide what to do for one stripe now. Pure: the same input gives the same
 * plan on every node.
 *
 * @throws InvalidArgumentError on a malformed input (key, k, m, holder count)
 */
export function planRepair (input: RepairPlanInput): RepairPlan {
  assertShape(input)
  const { k, m } = input
  const { live, waiting, due } = classify(input)
  const health = stripeHealth(live.length, k, m)
  const plan: RepairPlan = { health, actions: [], waiting: waiting.length, live: live.length, unplaced: 0 }
  const sources = repairSources(k, live)
  // shards moved off a node whose loss alone would lose the stripe: never while a holder may come back, nor when
  // fewer than k shards are live. The due shards wait for the next pass, placed against the load the moves leave
  // (placed now beside a moved shard, its new holder would hold two and its old one would never release its copy)
  const moves = waiting.length === 0 && sources !== undefined ? planMoves(input, live) : []
  if (moves.length > 0) {
    // the due shards are not unplaced: the next pass places them
    plan.actions = moves
    return plan
  }
  if (due.length === 0) return plan
  if (sources === undefined) {
    plan.unplaced = due.length
    return plan
  }
  const targets = chooseTargets(input, due, waiting)
  due.forEach((shard, i) => {
    const to = targets[i]
    if (to === undefined) plan.unplaced++
    else plan.actions.push({ index: shard.index, from: shard.holder, to, sources: [...sources] })
  })
  return plan
}

/**
 * New holders for the due shards, in order: live non-holders in placement
 * preference order, zone cap (m, at least 1) counted against the holders
 * that stay. Shorter than `due` when too few peers are eligible.
 */
function chooseTargets (input: RepairPlanInput, due: ShardState[], waiting: ShardState[]): string[] {
  const { key, k, m, holders, peers, liveness } = input
  const pending = input.pending ?? []
  const dueIndexes = new Set(due.map(s => s.index))
  const taken = new Set([...holders, ...(input.alsoHolding ?? []), ...pending.map(p => p.to)])
  const byId = new Map(peers.map(p => [p.id, p]))
  const zoneCounts = new Map<string, number>()
  const staying = [
    ...holders.filter((h, i) => !dueIndexes.has(i) && (alive(liveness, h) || waiting.some(w => w.index === i))),
    ...pending.map(p => p.to)
  ]
  for (const id of staying) {
    const zone = zoneOf(byId.get(id) ?? { id })
    zoneCounts.set(zone, (zoneCounts.get(zone) ?? 0) + 1)
  }
  const livePeers = uniqueById(peers).filter(p => alive(liveness, p.id))
  const ranked = preferenceOrder(key, livePeers, candidateCount(k + m, { candidates: input.candidates }))
  const order = ranked.filter(p => !taken.has(p.id))
  const chosen = pickSpread(order, due.length, Math.max(1, m), zoneCounts).map(p => p.id)
  if (chosen.length === due.length) return chosen
  // too few free peers: the staying shards per node (a holder not among the peers, such as a short stripe's
  // zero shard, counts as a node of its own), then the targets just chosen
  const known = new Set(peers.map(p => p.id))
  const load = new Map<string, number>()
  holders.forEach((h, i) => {
    if (dueIndexes.has(i) || !(alive(liveness, h) || waiting.some(w => w.index === i))) return
    const node = known.has(h) ? h : `${h}#${i}`
    load.set(node, (load.get(node) ?? 0) + 1)
  })
  for (const id of [...pending.map(p => p.to), ...chosen]) load.set(id, (load.get(id) ?? 0) + 1)
  // the nodes that can hold shards of the stripe: live peers and holders expected back
  const nodes = new Set([...livePeers.map(p => p.id), ...waiting.map(w => w.holder)]).size
  const alsoHolding = new Set(input.alsoHolding ?? [])
  const eligible = ranked.map(p => p.id).filter(id => !alsoHolding.has(id))
  return [...chosen, ...doubleUp({ k, m, nodes, load, eligible, count: due.length - chosen.length })]
}

/**
 * Moves of shards off a node that holds more of a stripe than the stripe
 * can lose (more than m: three shards of an `ec:4+2` stripe), so that its
 * loss alone no longer loses the stripe. Such a node came about when
 * placements and repairs ran while nodes were cut off, and stayed so for
 * good, `at-risk` while every shard was live and stuck once one was not
 * (no rebuild could make the stripe survive a lost node while that node
 * kept three, so none was made): repair only rebuilt shards whose holder
 * was gone. Each move rebuilds one of the node's shards (the highest index
 * it holds) onto a live peer that holds no shard of the stripe, in
 * placement order, within the zone cap (m per zone, counted against the
 * holders); with no such peer left, onto the holder with the fewest shards
 * that stays at or below the cap with one more (three, two and one shards
 * on three nodes become two on each); moves go on until the node is at or
 * below the cap, min(m, ⌈(k+m)/nodes⌉) shards, or no target is left. The
 * node then holds a copy of a shard that a node holding fewer shards also
 * holds, which it releases by the surplus rule (node/durability/surplus.ts:
 * the copy of the holder with fewer shards stays). Once that rule only
 * kept a copy whose holder held no other shard, so moves went only to
 * nodes holding nothing, and a stripe on exactly as many nodes as it needs
 * stayed one loss from lost until a node joined. Only the `live` shards (indexes) count: the
 * due ones (their holder gone) are placed by the next pass, against the
 * load the moves leave. A node at or below m shards is left alone, so a stripe doubled up
 * on five nodes stays as it is when a sixth joins.
 */
function planMoves (input: RepairPlanInput, live: number[]): RepairAction[] {
  const { key, k, m, holders, peers, liveness } = input
  // a shard seen on two live nodes (a move made, its source not released yet) or a copy beyond the holders: left
  // as it is, or the same shard would move again
  if (m < 1 || (input.pending ?? []).length > 0 || (input.alsoHolding ?? []).length > 0 || (input.doubled ?? 0) > 0) return []
  const livePeers = uniqueById(peers).filter(p => alive(liveness, p.id))
  const isPeer = new Set(livePeers.map(p => p.id))
  // the load of live peers only: a holder not among them (a short stripe's zero shards) never moves
  const load = new Map<string, number>()
  for (const i of live) if (isPeer.has(holders[i])) load.set(holders[i], (load.get(holders[i]) ?? 0) + 1)
  if (![...load.values()].some(n => n > m)) return []
  const byId = new Map(peers.map(p => [p.id, p]))
  const zones = new Map<string, number>()
  for (const i of live) {
    const zone = zoneOf(byId.get(holders[i]) ?? { id: holders[i] })
    zones.set(zone, (zones.get(zone) ?? 0) + 1)
  }
  const taken = new Set(holders)
  const ordered = preferenceOrder(key, livePeers, candidateCount(k + m, { candidates: input.candidates }))
  const free = ordered.filter(p => !taken.has(p.id))
  const cap = Math.min(m, Math.ceil((k + m) / livePeers.length))
  const moved = new Set<number>()
  const moves: RepairAction[] = []
  for (;;) {
    let fullest: string | undefined
    for (const [id, n] of load) if (n > cap && (fullest === undefined || n > (load.get(fullest) ?? 0))) fullest = id
    if (fullest === undefined) break
    const fromZone = zoneOf(byId.get(fullest) ?? { id: fullest })
    const zoneTakes = (p: PlacementPeer): boolean => {
      const zone = zoneOf(p)
      return (zones.get(zone) ?? 0) - (zone === fromZone ? 1 : 0) < Math.max(1, m)
    }
    // a node holding nothing of the stripe; with none left, the least loaded holder still below the cap
    const target = free.find(zoneTakes) ?? crowdedTarget(ordered, load, cap, fullest, zoneTakes)
    const index = live.reduce((top, i) => holders[i] === fullest && !moved.has(i) ? i : top, -1)
    const sources = repairSources(k, live.filter(i => i !== index))
    if (target === undefined || index < 0 || sources === undefined) break
    if (free.includes(target)) free.splice(free.indexOf(target), 1)
    moved.add(index)
    load.set(fullest, (load.get(fullest) ?? 0) - 1)
    load.set(target.id, (load.get(target.id) ?? 0) + 1)
    const targetZone = zoneOf(target)
    zones.set(fromZone, (zones.get(fromZone) ?? 0) - 1)
    zones.set(targetZone, (zones.get(targetZone) ?? 0) + 1)
    moves.push({ index, from: fullest, to: target.id, sources })
  }
  return moves
}

/**
 * A move's target when no live peer is free of the stripe: the holder with
 * the fewest shards that would still be below `cap` with one more (in the
 * placement order among equals), never the node the shard leaves. Its copy
 * and the old one are then settled by the surplus rule, which keeps the
 * copy of the node holding fewer.
 */
function crowdedTarget (ordered: PlacementPeer[], load: ReadonlyMap<string, number>, cap: number, from: string, zoneTakes: (p: PlacementPeer) => boolean): PlacementPeer | undefined {
  let best: PlacementPeer | undefined
  for (const p of ordered) {
    const n = load.get(p.id)
    if (p.id === from || n === undefined || n + 1 > cap || !zoneTakes(p)) continue
    if (best === undefined || n < (load.get(best.id) ?? 0)) best = p
  }
  return best
}

/**
 * Second shards of a stripe on nodes that already hold one, when there are
 * too few free peers: a stripe of k+m shards on fewer than k+m nodes (the
 * first placement doubles shards up over ⌈(k+m)/m⌉ to k+m−1 nodes) must get
 * every shard back to survive the loss of its fullest node, so a lost node
 * of three holding two shards of an `ec:4+2` stripe has both rebuilt onto its
 * replacement. Each shard goes to the least loaded of `eligible` (live
 * peers in preference order; ties keep that order), none above
 * min(m, ⌈(k+m)/nodes⌉) shards; it stops as soon as the stripe survives the
 * loss of any one node (what is left then adds no such protection: with
 * five nodes for a 4+2 stripe the sixth shard waits for a sixth node, where
 * it makes the stripe healthy rather than at risk for good).
 *
 * All or nothing: when the shards it may place cannot make the stripe
 * survive the loss of any one node, it places none. A second shard on a
 * node whose loss loses the stripe anyway protects nothing: a node cut off
 * from its swarm (alone, or with too few live peers) would otherwise rebuild
 * the stripes it knows onto itself, from its own shards, and fill its disk
 * with copies that die with it. `load` (node → shards it keeps) is updated
 * only with the shards placed.
 */
function doubleUp (at: { k: number, m: number, nodes: number, load: Map<string, number>, eligible: string[], count: number }): string[] {
  const { k, m, nodes, load, eligible } = at
  if (m < 1 || nodes < 1) return []
  const cap = Math.min(m, Math.ceil((k + m) / nodes))
  const trial = new Map(load)
  const out: string[] = []
  while (out.length < at.count && !survivesOneLoss(trial, k)) {
    let best: string | undefined
    for (const id of eligible) {
      const n = trial.get(id) ?? 0
      if (n < cap && (best === undefined || n < (trial.get(best) ?? 0))) best = id
    }
    if (best === undefined) break
    trial.set(best, (trial.get(best) ?? 0) + 1)
    out.push(best)
  }
  if (out.length === 0 || !survivesOneLoss(trial, k)) return []
  for (const [id, n] of trial) load.set(id, n)
  return out
}

/** True when the shards of `load` (node → shards) leave at least k after the loss of the fullest node. */
function survivesOneLoss (load: Map<string, number>, k: number): boolean {
  let total = 0
  let most = 0
  for (const n of load.values()) {
    total += n
    most = Math.max(most, n)
  }
  return total - most >= k
}

function uniqueById (peers: PlacementPeer[]): PlacementPeer[] {
  const seen = new Set<string>()
  return peers.filter(p => {
    if (seen.has(p.id)) return false
    seen.add(p.id)
    return true
  })
}

/**
 * The peer that coordinates repair of a stripe: the live holder whose kad
 * key is closest to the stripe key. Every node computes the same answer
 * from the same liveness view, so one peer acts and the others stay quiet.
 * Undefined when no holder is alive.
 */
export function repairCoordinator (key: Uint8Array, holders: string[], isAlive: (p: string) => boolean): string | undefined {
  assertStripeKey(key)
  let best: string | undefined
  let bestKad: Uint8Array | undefined
  for (const holder of new Set(holders)) {
    if (!isAlive(holder)) continue
    const kad = peerKadKey(holder)
    if (bestKad === undefined || compareDistance(key, kad, bestKad) < 0) {
      best = holder
      bestKad = kad
    }
  }
  return best
}

/**
 * A token bucket over bytes with an injected clock. Reservations may run
 * into debt: a caller takes its bytes now and waits the returned delay
 * before sending, and later callers wait behind it.
 */
export class RateLimiter {
  private tokens: number
  private last: number | undefined

  /**
   * @param bytesPerSecond sustained rate (> 0)
   * @param burstBytes bucket size: bytes that may go out at once after a quiet spell (≥ 0)
   * @throws InvalidArgumentError on a non-positive rate or negative burst
   */
  constructor (readonly bytesPerSecond: number, readonly burstBytes: number) {
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) throw new InvalidArgumentError(`bytesPerSecond must be > 0, got ${bytesPerSecond}`)
    if (!(burstBytes >= 0) || !Number.isFinite(burstBytes)) throw new InvalidArgumentError(`burstBytes must be ≥ 0, got ${burstBytes}`)
    this.tokens = burstBytes
  }

  /**
   * Reserve `bytes` at time `now` (ms); returns the ms to wait before
   * sending them (0 when the bucket covers them). A clock that goes back
   * refills nothing.
   */
  delay (bytes: number, now: number): number {
    if (!(bytes >= 0)) throw new InvalidArgumentError(`bytes must be ≥ 0, got ${bytes}`)
    this.refill(now)
    this.tokens -= bytes
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens * 1000 / this.bytesPerSecond)
  }

  /** Same as {@link RateLimiter.delay}. */
  take (bytes: number, now: number): number {
    return this.delay(bytes, now)
  }

  private refill (now: number): void {
    if (this.last !== undefined && now > this.last) {
      this.tokens = Math.min(this.burstBytes, this.tokens + (now - this.last) * this.bytesPerSecond / 1000)
    }
    if (this.last === undefined || now > this.last) this.last = now
  }
}
