/**
 * The serving side of `/shoal/shards/1.0.0`: answers peers' `info`,
 * `holdings`, `reserve` and `hold`. Owns the quota for others and the lock that
 * checks a hold against it and records it before the next check.
 *
 * @module
 */
import { compareRefs, MAX_SHARD_REFS, type ShardRef, type ShardsRequest, type ShardsResponse } from '../../protocol/shards.js'
import { InvalidArgumentError } from '../errors.js'
import { metaGetter } from './meta-getter.js'
import { HoldQuota, type QuotaReport } from './quota.js'
import { fileSkeleton, loadManifestRoot, readStripes, shardCID } from './stripes.js'
import { presentShards } from './view.js'
import type { DurabilityParts } from './components.js'
import type { ShardToHold } from './holdings.js'
import type { CID } from 'multiformats/cid'

/** Settings of a {@link ShardsServer}. */
export interface ShardsServerInit {
  /** This node's zone, if any (answered to `info`). */
  zone?: string
  /** Most bytes of shards held for others; absent: see {@link HoldQuota}. */
  maxForOthers?: number
  /** A folder on the repo's disk, for the default quota. */
  storagePath?: string
}

/** How long a `reserve` holds its share of the quota for others, waiting for its `hold` (ms): as long as the puts it allows. */
const RESERVATION_MS = 10 * 60_000

/** Answers peers' shards requests. */
export class ShardsServer {
  private readonly quota: HoldQuota
  /** Quota checks and the records they allow, one hold at a time. */
  private holding: Promise<unknown> = Promise.resolve()
  /** Bytes each peer reserved (`reserve`) and has not bound by a `hold` yet, until when. */
  private readonly reserved = new Map<string, { bytes: number, until: number }>()

  constructor (private readonly components: DurabilityParts, private readonly init: ShardsServerInit = {}) {
    const { holdings } = components
    this.quota = new HoldQuota({ heldForOthers: async () => await holdings.heldForOthers() }, { maxForOthers: init.maxForOthers, path: init.storagePath })
  }

  /** The quota for others and what is held of it. */
  async storage (): Promise<QuotaReport> {
    return await this.quota.report()
  }

  /**
   * Answer one request of `from`.
   *
   * @throws {InvalidArgumentError} for a `hold` of shards its manifest does not have
   * @throws {QuotaExceededError} (counted) for a `hold` that does not fit the quota for others
   */
  async handle (from: string, request: ShardsRequest, signal: AbortSignal): Promise<ShardsResponse> {
    if (request.type === 'info') return this.init.zone === undefined ? { v: 1, type: 'info' } : { v: 1, type: 'info', zone: this.init.zone }
    if (request.type === 'holdings') {
      const shards: ShardRef[] = []
      for await (const held of presentShards(this.components.holdings, this.components.blockstore, request.manifest, request.from, request.count)) {
        if (shards.length >= MAX_SHARD_REFS) break
        shards.push([held.stripe, held.shard])
      }
      return { v: 1, type: 'holdings', shards }
    }
    if (request.type === 'reserve') return await this.reserve(from, request)
    return await this.hold(from, request, signal)
  }

  /**
   * A `reserve`: the blocks may be pushed for a while, and count against the
   * quota for others until a `hold` binds them (or the reservation expires:
   * blocks no hold names are garbage).
   */
  private async reserve (from: string, request: Extract<ShardsRequest, { type: 'reserve' }>): Promise<ShardsResponse> {
    const { expected, blockstore, stats } = this.components
    const missing: Array<{ cid: CID, size: number }> = []
    for (const block of request.blocks) if (!await blockstore.has(block.cid)) missing.push(block)
    const bytes = missing.reduce((sum, b) => sum + b.size, 0)
    await this.serialHold(async () => {
      await this.checkQuota(bytes + this.reservedBytes())
      expected.expect(from, missing.map(b => b.cid))
      const mine = this.reserved.get(from)
      this.reserved.set(from, { bytes: (mine?.bytes ?? 0) + bytes, until: this.components.clock.now() + RESERVATION_MS })
    })
    stats.reservesAccepted++
    return { v: 1, type: 'ok' }
  }

  /** Bytes reserved by every peer and not bound yet (expired reservations dropped), but those of `except`. */
  private reservedBytes (except?: string): number {
    const now = this.components.clock.now()
    let total = 0
    for (const [peer, r] of this.reserved) {
      if (r.until <= now) { this.reserved.delete(peer); continue }
      if (peer !== except) total += r.bytes
    }
    return total
  }

  /** A `hold`: learn the manifest and the file's skeleton from the sender, then record. */
  private async hold (from: string, request: Extract<ShardsRequest, { type: 'hold' }>, signal: AbortSignal): Promise<ShardsResponse> {
    const { holdings, expected, exchange, clock, stats, blockstore } = this.components
    const getter = metaGetter(exchange, signal, [from])
    const mroot = await loadManifestRoot(getter, request.manifest, signal)
    if (!mroot.root.equals(request.root)) throw new InvalidArgumentError('hold: the manifest is not of that root')
    const wanted = new Map<number, number[]>()
    for (const [stripe, shard] of request.shards) {
      if (stripe >= mroot.stripes || shard >= mroot.k + mroot.m) throw new InvalidArgumentError(`hold: no shard ${shard} in stripe ${stripe}`)
      let list = wanted.get(stripe)
      if (list === undefined) { list = []; wanted.set(stripe, list) }
      list.push(shard)
    }
    const shards: ShardToHold[] = []
    for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
      for (const shard of wanted.get(index) ?? []) {
        const cid = shardCID(stripe, mroot.k, shard)
        // a data shard is its leaf; every parity shard is as long as the stripe's longest leaf
        if (cid !== undefined) shards.push({ ref: [index, shard], cid, size: shard < mroot.k ? stripe.sizes[shard] : stripe.shardSize })
      }
    }
    shards.sort((a, b) => compareRefs(a.ref, b.ref))
    // refused before the skeleton is fetched when it cannot fit anyway (this
    // peer's own reservation becomes this hold: it is not counted twice)
    await this.checkQuota(await holdings.addedForOthers(request.manifest, shards) + this.reservedBytes(from))
    for await (const block of fileSkeleton(getter, request.root, signal)) void block
    // shards pushed already (after a `reserve`) are not awaited again
    const cids: CID[] = []
    for (const s of shards) if (!await blockstore.has(s.cid)) cids.push(s.cid)
    await this.serialHold(async () => {
      // checked again with the holds accepted meanwhile, then recorded before another check
      const added = await holdings.addedForOthers(request.manifest, shards)
      await this.checkQuota(added + this.reservedBytes(from))
      expected.expect(from, cids)
      try {
        await holdings.noteManifest(request.manifest, { root: request.root.toString(), k: mroot.k, m: mroot.m, role: 'holder', since: clock.now() })
        await holdings.hold(request.manifest, shards, { now: clock.now(), from })
      } catch (err) {
        expected.cancel(from, cids)
        throw err
      }
      // what this hold records is no longer only reserved
      const mine = this.reserved.get(from)
      if (mine !== undefined) {
        mine.bytes -= Math.min(mine.bytes, added)
        if (mine.bytes === 0) this.reserved.delete(from)
      }
    })
    stats.holdsAccepted++
    exchange.announceSoon(request.root)
    return { v: 1, type: 'ok' }
  }

  /** @throws {QuotaExceededError} (counted) when `bytes` more do not fit the quota for others */
  private async checkQuota (bytes: number): Promise<void> {
    try {
      await this.quota.check(bytes)
    } catch (err) {
      this.components.stats.holdsRefused++
      throw err
    }
  }

  /** Run `fn` after every hold recording started before it. */
  private async serialHold (fn: () => Promise<void>): Promise<void> {
    const run = this.holding.then(fn)
    this.holding = run.catch(() => {})
    await run
  }
}
