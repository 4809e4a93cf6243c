/**
 * Placement balance: place many stripes (random keys from a seeded
 * {@link Prng}) on a set of peers with real Ed25519 peer ids derived from
 * the same seed, and measure how evenly the shards spread (max/mean shards
 * per peer).
 *
 * @module
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { placeStripe, type PlacementPeer } from '../node/durability/placement.js'
import { Prng } from './prng.js'

/** How a balance measurement is set up. */
export interface BalanceOptions {
  seed: number
  /** @default 50 */
  peers?: number
  /** @default 1000 */
  stripes?: number
  /** @default 4 */
  k?: number
  /** @default 2 */
  m?: number
  /** Zones the peers are spread over round-robin (0 = no zones). @default 0 */
  zones?: number
  /** Candidate set size (placement option); 1×(k+m) is pure XOR-closest placement. */
  candidates?: number
}

/** Shards per peer after placing every stripe. */
export interface BalanceResult {
  seed: number
  min: number
  max: number
  mean: number
  /** max / mean. */
  ratio: number
}

/** min / median / max of some values. */
export interface Spread { min: number, median: number, max: number }

/**
 * `n` real Ed25519 peer ids, each from a 32-byte seed drawn from `rng`
 * (as the namespace simulation derives its keys), so runs replay.
 */
export async function simPeerIds (rng: Prng, n: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const key = await generateKeyPairFromSeed('Ed25519', rng.bytes(32))
    ids.push(peerIdFromPrivateKey(key).toString())
  }
  return ids
}

/** Peers with ids from `rng`, spread over `zones` zones round-robin (none when 0). */
export async function simPeers (rng: Prng, n: number, zones = 0): Promise<PlacementPeer[]> {
  const ids = await simPeerIds(rng, n)
  return ids.map((id, i) => zones > 0 ? { id, zone: `z${i % zones}` } : { id })
}

/** Place `stripes` random stripes and count shards per peer. */
export async function measureBalance (options: BalanceOptions): Promise<BalanceResult> {
  const { seed, peers: n = 50, stripes = 1000, k = 4, m = 2, zones = 0 } = options
  const rng = new Prng(seed)
  const peers = await simPeers(rng, n, zones)
  const load = new Map(peers.map(p => [p.id, 0]))
  const placement = options.candidates === undefined ? {} : { candidates: options.candidates }
  for (let s = 0; s < stripes; s++) {
    for (const id of placeStripe(rng.bytes(32), peers, k + m, Math.max(1, m), placement)) {
      load.set(id, (load.get(id) ?? 0) + 1)
    }
  }
  const counts = [...load.values()]
  const mean = stripes * (k + m) / n
  const max = Math.max(...counts)
  return { seed, min: Math.min(...counts), max, mean, ratio: max / mean }
}

/** min / median / max of `values` (median: the lower middle one). */
export function spread (values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  return { min: sorted[0], median: sorted[(sorted.length - 1) >> 1], max: sorted[sorted.length - 1] }
}
