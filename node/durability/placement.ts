/**
 * Placement of a stripe's k+m shards on peers: pure functions of the
 * stripe key and the peer list, the same on every node.
 *
 * The rules (see `docs/placement.md`):
 *
 * 1. **Candidates by XOR.** Peers are ranked by the XOR distance of their
 *    kad key (sha-256 of the peer id's multihash, as kad-dht does) to the
 *    stripe key; the closest `candidates` peers of each zone (default
 *    {@link CANDIDATE_FACTOR}·(k+m); zoneless peers form one pool here) are
 *    the candidates.
 * 2. **Balance by rendezvous.** Candidates are ordered by a rendezvous hash,
 *    sha-256(stripe key ‖ kad key), smallest first; the other peers follow
 *    in XOR order (reached only when repair excludes many candidates).
 *    Pure XOR-closest placement overloads peers that sit alone in a sparse
 *    part of the key space (max/mean up to 2.3 on 50 peers); picking among
 *    a wider candidate set spreads that load.
 * 3. **Zones.** No zone receives more than `maxPerZone` (= m) shards when
 *    the peers allow it: Σ over zones of min(peers in zone, m) ≥ k+m.
 *    Otherwise the cap is raised one step at a time until every shard has
 *    a peer, so the fullest zone holds as few shards as possible. A peer
 *    without a zone (absent or empty string) counts as a zone of its own.
 * 4. **Distinct peers** when there are at least k+m peers; with fewer, the
 *    peers (in the order above) take the shards round-robin, so none holds
 *    more than ceil(k+m / peers).
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { sha256 } from '../blocks/verify.js'
import { InvalidArgumentError } from '../errors.js'

/** A peer placement may choose. */
export interface PlacementPeer {
  /** Peer id string (base58btc multihash or CID form). */
  id: string
  /** Failure domain (rack, site, region…); absent or '' = the peer is its own zone. */
  zone?: string
}

/** Tuning of {@link placeStripe}. */
export interface PlacementOptions {
  /** Size of the XOR-closest candidate set. @default CANDIDATE_FACTOR × shards */
  candidates?: number
}

/** Why a placement is what it is (for `pin status`). */
export interface PlacementExplanation {
  /** Number of shards (k+m). */
  shards: number
  /** Distinct peers holding shards. */
  peersUsed: number
  /** Every shard on a different peer. */
  distinct: boolean
  /** Most shards on one peer. */
  maxPerPeer: number
  /** Distinct zones holding shards (a zoneless peer is its own zone). */
  zonesUsed: number
  /** Most shards in one zone. */
  maxInZone: number
  /** No zone holds more than the cap. */
  zoneCapHonoured: boolean
  /** The known peers could honour the cap (Σ min(peers in zone, cap) ≥ shards). */
  zoneCapPossible: boolean
  /** Present when the placement falls short of a rule: what and why. */
  reason?: string
}

/** Length of a stripe key and of a kad key (sha-256). */
export const KEY_BYTES = 32
/** Default candidate set: this many times k+m XOR-closest peers (see `docs/placement.md` for the measurements behind 4). */
export const CANDIDATE_FACTOR = 4
/** Kad keys kept in the cache before it is cleared. */
const KAD_CACHE_LIMIT = 65_536

const kadCache = new Map<string, Uint8Array>()

/**
 * Kad key of a peer id: sha-256 of its multihash bytes, the key kad-dht
 * uses for XOR distances. Cached.
 *
 * @throws InvalidArgumentError when `id` is not a peer id
 */
export function peerKadKey (id: string): Uint8Array {
  let key = kadCache.get(id)
  if (key === undefined) {
    key = sha256(parsePeerId(id).toMultihash().bytes)
    if (kadCache.size >= KAD_CACHE_LIMIT) kadCache.clear()
    kadCache.set(id, key)
  }
  return key
}

function parsePeerId (id: string): ReturnType<typeof peerIdFromString> {
  try {
    return peerIdFromString(id)
  } catch (err) {
    throw new InvalidArgumentError(`not a peer id: ${JSON.stringify(id.slice(0, 80))}`, { cause: err })
  }
}

/**
 * Compare the XOR distances of kad keys `a` and `b` to `key`: negative when
 * `a` is closer, positive when `b` is, 0 only for equal keys.
 */
export function compareDistance (key: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < key.length; i++) {
    const d = (a[i] ^ key[i]) - (b[i] ^ key[i])
    if (d !== 0) return d
  }
  return 0
}

/** Throw unless `key` is a 32-byte stripe key. */
export function assertStripeKey (key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new InvalidArgumentError(`a stripe key is ${KEY_BYTES} bytes`)
  }
}

/**
 * Peers sorted by XOR distance of their kad key to `key`, closest first.
 * Distinct peer ids never tie; a repeated id keeps its input order.
 * Returns a new array.
 */
export function rankByDistance (key: Uint8Array, peers: PlacementPeer[]): PlacementPeer[] {
  assertStripeKey(key)
  const keyed = peers.map(p => ({ p, kad: peerKadKey(p.id) }))
  keyed.sort((a, b) => compareDistance(key, a.kad, b.kad))
  return keyed.map(e => e.p)
}

/** Rendezvous hash of a peer for a stripe: sha-256(stripe key ‖ kad key). */
export function rendezvousHash (key: Uint8Array, id: string): Uint8Array {
  const input = new Uint8Array(KEY_BYTES * 2)
  input.set(key, 0)
  input.set(peerKadKey(id), KEY_BYTES)
  return sha256(input)
}

/** Zone key of a peer: its zone, or the peer itself when it has none. */
export function zoneOf (peer: PlacementPeer): string {
  return peer.zone === undefined || peer.zone === '' ? `peer:${peer.id}` : `zone:${peer.zone}`
}

/**
 * The order in which placement (and repair) prefers peers for a stripe:
 * the candidates (the `candidates` XOR-closest peers of each zone, zoneless
 * peers as one pool) ordered by {@link rendezvousHash}, then the other
 * peers by XOR distance.
 */
export function preferenceOrder (key: Uint8Array, peers: PlacementPeer[], candidates: number): PlacementPeer[] {
  const head: PlacementPeer[] = []
  const tail: PlacementPeer[] = []
  const perZone = new Map<string, number>()
  for (const peer of rankByDistance(key, peers)) {
    const zone = peer.zone === undefined || peer.zone === '' ? '' : zoneOf(peer)
    const n = perZone.get(zone) ?? 0
    perZone.set(zone, n + 1)
    ;(n < candidates ? head : tail).push(peer)
  }
  return [...byRendezvous(key, head), ...tail]
}

function byRendezvous (key: Uint8Array, peers: PlacementPeer[]): PlacementPeer[] {
  return peers
    .map(p => ({ p, h: rendezvousHash(key, p.id) }))
    .sort((a, b) => Buffer.compare(a.h, b.h))
    .map(e => e.p)
}

/**
 * Pick up to `count` distinct peers from `order`, first come first served,
 * without putting more than `cap` peers in one zone; when that leaves
 * shards without a peer, raise the cap one step and go again. `counts`
 * (zone → peers already chosen there) is updated.
 */
export function pickSpread (order: PlacementPeer[], count: number, cap: number, counts = new Map<string, number>()): PlacementPeer[] {
  const chosen: PlacementPeer[] = []
  const used = new Set<string>()
  for (let limit = cap; chosen.length < count && used.size < order.length; limit++) {
    for (const peer of order) {
      if (chosen.length === count) break
      if (used.has(peer.id)) continue
      const zone = zoneOf(peer)
      const n = counts.get(zone) ?? 0
      if (n >= limit) continue
      chosen.push(peer)
      used.add(peer.id)
      counts.set(zone, n + 1)
    }
  }
  return chosen
}

function assertCount (name: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got ${n}`)
}

function assertDistinctIds (peers: PlacementPeer[]): void {
  const seen = new Set<string>()
  for (const p of peers) {
    if (seen.has(p.id)) throw new InvalidArgumentError(`peer ${p.id} is listed twice`)
    seen.add(p.id)
  }
}

/** The candidate set size for `shards` shards (option or default). */
export function candidateCount (shards: number, options: PlacementOptions = {}): number {
  const n = options.candidates ?? CANDIDATE_FACTOR * shards
  assertCount('candidates', n)
  return n
}

/**
 * Place the shards of one stripe: index i → peer id of shard i. See the
 * module rules. Deterministic: the same key and peers (in any order) give
 * the same assignment.
 *
 * @param shards k+m
 * @param maxPerZone m (at least 1)
 * @throws InvalidArgumentError on an empty peer list, a repeated peer id,
 * a bad key or counts
 */
export function placeStripe (key: Uint8Array, peers: PlacementPeer[], shards: number, maxPerZone: number, options: PlacementOptions = {}): string[] {
  assertStripeKey(key)
  assertCount('shards', shards)
  assertCount('maxPerZone', maxPerZone)
  if (peers.length === 0) throw new InvalidArgumentError('no peers to place shards on')
  assertDistinctIds(peers)
  const order = preferenceOrder(key, peers, candidateCount(shards, options))
  const chosen = pickSpread(order, Math.min(shards, peers.length), maxPerZone)
  return Array.from({ length: shards }, (_, i) => chosen[i % chosen.length].id)
}

/** Shard slots the peers can take with at most `cap` per zone. */
export function zoneSlots (peers: PlacementPeer[], cap: number): number {
  const perZone = countBy(peers.map(zoneOf))
  let slots = 0
  for (const n of perZone.values()) slots += Math.min(n, cap)
  return slots
}

function countBy (items: string[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const item of items) out.set(item, (out.get(item) ?? 0) + 1)
  return out
}

function maxOf (counts: Map<string, number>): number {
  let max = 0
  for (const n of counts.values()) max = Math.max(max, n)
  return max
}

/**
 * Explain a placement: `holders` (index → peer id, as {@link placeStripe}
 * returns or as repair left it), the `peers` placement could choose from
 * (for zones and feasibility; holders missing from it count as zoneless),
 * and the zone cap (m).
 */
export function explainPlacement (holders: string[], peers: PlacementPeer[], maxPerZone: number): PlacementExplanation {
  const byId = new Map(peers.map(p => [p.id, p]))
  const perPeer = countBy(holders)
  const perZone = countBy(holders.map(id => zoneOf(byId.get(id) ?? { id })))
  const known = new Set([...peers.map(p => p.id), ...holders])
  const all = [...known].map(id => byId.get(id) ?? { id })
  const e: PlacementExplanation = {
    shards: holders.length,
    peersUsed: perPeer.size,
    distinct: perPeer.size === holders.length,
    maxPerPeer: maxOf(perPeer),
    zonesUsed: perZone.size,
    maxInZone: maxOf(perZone),
    zoneCapHonoured: maxOf(perZone) <= maxPerZone,
    zoneCapPossible: zoneSlots(all, maxPerZone) >= holders.length
  }
  const reason = explainReason(e, all.length, maxPerZone)
  if (reason !== undefined) e.reason = reason
  return e
}

function explainReason (e: PlacementExplanation, known: number, cap: number): string | undefined {
  const notes: string[] = []
  if (!e.distinct) {
    notes.push(known < e.shards
      ? `only ${known} peers for ${e.shards} shards: up to ${Math.ceil(e.shards / known)} shards per peer`
      : `a peer holds ${e.maxPerPeer} shards although ${known} peers are known`)
  }
  if (!e.zoneCapHonoured) {
    notes.push(e.zoneCapPossible
      ? `a zone holds ${e.maxInZone} shards, over the cap of ${cap}`
      : `the zones cannot honour the cap of ${cap} shards per zone: the fullest zone holds ${e.maxInZone}`)
  }
  return notes.length > 0 ? notes.join('; ') : undefined
}
