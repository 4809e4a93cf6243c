/**
 * Copies of a lost stripe's shards found outside its holders. A stripe with
 * fewer than k shards on their holders cannot be rebuilt from them, yet its
 * data shards are the file's leaves, and a node that read the file keeps
 * them (a cached copy no holdings record names). Before it gives the stripe
 * up as lost, the repair pass asks the swarm for each shard that has no live
 * holder, as any read would (this node's store, then every connected peer's
 * `have`, then the DHT), and makes what comes back a held shard (here, or
 * on a live peer holding none of the stripe when this node holds one): the
 * stripe then has k shards again, and the same pass rebuilds the rest onto
 * their holders. docs/durability.md, "Copies outside the holders".
 *
 * @module
 */
import { shardCID } from './stripes.js'
import type { DurabilityParts } from './components.js'
import type { HolderView } from './view.js'
import type { Stripe } from '../../protocol/durability.js'
import type { CID } from 'multiformats/cid'

/** How long the swarm is asked for one shard before it counts as nowhere. */
export const ADOPT_TIMEOUT_MS = 10_000

/** One stripe whose shards on live holders are fewer than it needs. */
export interface AdoptRequest {
  manifest: CID
  k: number
  m: number
  stripe: Stripe
  /** Index of `stripe` in the manifest. */
  index: number
  /** Who holds the stripe's shards now; this node is added for each shard adopted. */
  view: HolderView
  /** Whether a peer is up. */
  isAlive: (peer: string) => boolean
  signal?: AbortSignal
  /**
   * Give a found shard to a live peer holding none of the stripe's shards
   * (so that the copy found does not share a node with another shard);
   * returns that peer, or undefined to keep the shard here.
   */
  giveAway?: (shard: number, cid: CID, bytes: Uint8Array) => Promise<string | undefined>
  /** Per shard asked of the swarm. @default {@link ADOPT_TIMEOUT_MS} */
  timeoutMs?: number
}

/**
 * How many of a stripe's stored shards have a live holder, and which have
 * none: a stripe with fewer live ones than its stored leaves cannot be
 * rebuilt from its holders.
 */
export function liveShards (at: Pick<AdoptRequest, 'k' | 'm' | 'stripe' | 'index' | 'view' | 'isAlive'>): { live: number, missing: number[] } {
  const { k, m, stripe, index, view, isAlive } = at
  let live = 0
  const missing: number[] = []
  for (let i = 0; i < k + m; i++) {
    if (shardCID(stripe, k, i) === undefined) continue
    if (view.holders(index, i).some(isAlive)) live++
    else missing.push(i)
  }
  return { live, missing }
}

/**
 * Fetch each shard of the stripe that no live node holds (a copy found
 * anywhere, hash-checked by the exchange) and make it held: given to
 * `giveAway`'s peer, else stored and recorded here. Stops as soon as the stripe has as many live shards as it has
 * stored leaves (enough to rebuild the rest).
 *
 * @returns the shard indexes adopted
 */
export async function adoptLostShards (components: Pick<DurabilityParts, 'exchange' | 'blockstore' | 'holdings' | 'clock' | 'network' | 'logger'>, request: AdoptRequest): Promise<number[]> {
  const { manifest, k, m, stripe, index, view, isAlive, signal } = request
  const { exchange, blockstore, holdings, clock, network } = components
  const needed = stripe.data.length
  const { live: liveAtStart, missing } = liveShards({ k, m, stripe, index, view, isAlive })
  let live = liveAtStart
  const adopted: number[] = []
  const holders: string[] = []
  for (const [n, i] of missing.entries()) {
    // enough found, or too few left to ask to reach enough: each miss costs a timeout
    if (live >= needed || live + missing.length - n < needed) break
    const cid = shardCID(stripe, k, i) as CID
    try {
      const timeout = AbortSignal.timeout(request.timeoutMs ?? ADOPT_TIMEOUT_MS)
      const bytes = await exchange.getBlock(cid, { signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) })
      const to = await request.giveAway?.(i, cid, bytes)
      if (to !== undefined) {
        view.add(index, i, to)
        holders.push(to)
      } else {
        await blockstore.put(cid, bytes, { signal })
        await blockstore.commit()
        await holdings.hold(manifest, [{ ref: [index, i], cid, size: bytes.byteLength }], { now: clock.now() })
        view.add(index, i, network.self)
        holders.push(network.self)
      }
      adopted.push(i)
      live++
    } catch (err: any) {
      if (signal?.aborted === true) throw err
      components.logger.debug({ manifest: manifest.toString(), stripe: index, shard: i, err: err?.message }, 'no copy of a lost shard found')
    }
  }
  if (adopted.length > 0) {
    components.logger.child({ component: 'durability' }).info({ manifest: manifest.toString(), stripe: index, shards: adopted, to: holders }, 'lost stripe: copies of its shards found outside its holders are held again')
  }
  return adopted
}
