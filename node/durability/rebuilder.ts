/**
 * Rebuilding one shard from k others of its stripe (this node's own first,
 * the rest fetched from their holders) and giving it to a new holder, at a
 * bounded rate. Owns the repair rate limiter, which repair and scrub share.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { StripeUnavailableError } from '../errors.js'
import { RateLimiter } from './repair-plan.js'
import { sleepOn } from './sleep.js'
import { rebuildShard, shardCID } from './stripes.js'
import type { DurabilityParts } from './components.js'
import type { ErasureCoder } from './erasure.js'
import type { Placer } from './placer.js'
import type { HolderView } from './view.js'
import type { ManifestRoot, Stripe } from '../../protocol/durability.js'
import type { Logger } from '../logger.js'
import type { CID } from 'multiformats/cid'

/** What rebuilds count (a repair report). */
export interface RebuildCounts {
  /** Shards rebuilt onto new holders. */
  repaired: number
  /** Shard bytes fetched from peers to rebuild (over the network: shards read from this node's store are not counted). */
  bytesIn: number
  /** Shard bytes pushed to new holders. */
  bytesOut: number
}

/** One shard to rebuild, and where to. */
export interface RebuildRequest {
  manifest: CID
  /** The manifest's root record: the file's root, k and m. */
  mroot: Pick<ManifestRoot, 'root' | 'k' | 'm'>
  stripe: Stripe
  /** Index of `stripe` in the manifest. */
  stripeIndex: number
  /** Index of the shard to rebuild in its stripe. */
  shard: number
  /** The peer that gets it (this node's id: kept here). */
  to: string
  /** Who holds the stripe's other shards now. */
  view: HolderView
  /** The shard's previous holder (for the log). */
  previous?: string
  /** Counted into. */
  counts: RebuildCounts
  signal?: AbortSignal
}

/** Settings of a {@link ShardRebuilder}. */
export interface ShardRebuilderInit {
  /** Rebuild traffic budget (bytes/s), one second of it as a burst. */
  bytesPerSecond: number
  /** The erasure coder (loaded once, shared). */
  coder: () => Promise<ErasureCoder>
  /** Asks a peer to hold shards before they are pushed. */
  placer: Pick<Placer, 'sendHold'>
}

/** Rebuilds lost shards onto new holders, rate-limited. */
export class ShardRebuilder {
  private readonly log: Logger
  private readonly limiter: RateLimiter

  constructor (private readonly components: DurabilityParts, private readonly init: ShardRebuilderInit) {
    this.log = components.logger.child({ component: 'durability' })
    this.limiter = new RateLimiter(init.bytesPerSecond, init.bytesPerSecond)
  }

  /**
   * Rebuild shard `shard` from k live shards (this node's own first) and give it to `to`.
   *
   * @throws {StripeUnavailableError} when fewer than the stripe's stored shards are reachable
   * @throws {AbortedError} when `signal` aborts during the rate wait
   */
  async rebuildOnto (request: RebuildRequest): Promise<void> {
    const { manifest, mroot, stripe, stripeIndex, shard: index, to, view, counts, signal } = request
    const { k, m } = mroot
    const { network, blockstore, exchange, holdings, clock, timers, stats } = this.components
    // this node's own shards first: they cost no transfer
    const local: number[] = []
    const remote: number[] = []
    for (let i = 0; i < k + m; i++) {
      if (i === index || shardCID(stripe, k, i) === undefined) continue // zero shards are known without fetching
      const holders = view.holders(stripeIndex, i)
      if (holders.includes(network.self)) local.push(i)
      else if (holders.length > 0) remote.push(i)
    }
    const sources = [...local, ...remote]
    // a short last stripe's missing data shards are known zeros: only its stored leaves count
    const needed = stripe.data.length
    if (sources.length < needed) throw new StripeUnavailableError(`only ${sources.length} of ${needed} shards reachable`)
    const shards = new Map<number, Uint8Array>()
    await Promise.all(sources.slice(0, needed).map(async i => {
      const cid = shardCID(stripe, k, i) as CID
      const providers = view.holders(stripeIndex, i).filter(p => p !== network.self).map(p => peerIdFromString(p))
      // counted only when the bytes crossed the network: the holder view may say a peer has
      // the shard while a copy sits here (this node wrote the file, or fetched it before)
      let fetched = false
      const bytes = providers.length === 0
        ? await blockstore.getBytes(cid, { signal })
        : await exchange.getBlock(cid, { providers, signal, onSource: from => { fetched = from === 'peer' } })
      if (fetched) {
        counts.bytesIn += bytes.byteLength
        stats.repairBytesIn += bytes.byteLength
        this.components.metrics?.repairBytes.inc({ direction: 'in' }, bytes.byteLength)
      }
      shards.set(i, bytes)
    }))
    const bytes = rebuildShard(stripe, k, m, index, shards, await this.init.coder())
    const cid = shardCID(stripe, k, index) as CID
    const wait = this.limiter.delay(bytes.byteLength, clock.now())
    if (wait > 0) await sleepOn(timers, wait, signal)
    if (to === network.self) {
      await blockstore.put(cid, bytes, { signal })
      await blockstore.commit()
      await holdings.hold(manifest, [{ ref: [stripeIndex, index], cid, size: bytes.byteLength }], { now: clock.now() })
    } else {
      await this.init.placer.sendHold(to, manifest, mroot.root, [[stripeIndex, index]], signal)
      await exchange.putBlocks(peerIdFromString(to), [{ cid, bytes }], { signal })
      counts.bytesOut += bytes.byteLength
      stats.repairBytesOut += bytes.byteLength
      this.components.metrics?.repairBytes.inc({ direction: 'out' }, bytes.byteLength)
    }
    counts.repaired++
    stats.shardsRepaired++
    this.components.metrics?.shardsRepaired.inc()
    this.log.info({ manifest: manifest.toString(), stripe: stripeIndex, shard: index, to, previous: request.previous }, 'shard repaired')
  }
}
