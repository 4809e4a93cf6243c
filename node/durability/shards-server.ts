/**
 * The serving side of `/shoal/shards/1.1.0 (and 1.0.0)`: answers peers' `info`,
 * `holdings`, `reserve` and `hold`. Owns the quota for others and the lock
 * that checks a hold or a reservation against it and records it before the
 * next check.
 *
 * @module
 */
import { compareRefs, MAX_SHARD_REFS, type ShardRef, type ShardsRequest, type ShardsResponse } from '../../protocol/shards.js'
import { InvalidArgumentError, TooLargeError } from '../errors.js'
import { HoldQuota, type QuotaReport } from './quota.js'
import { fileSkeleton, loadManifestRoot, readStripes, shardCID } from './stripes.js'
import { stripeName } from './stripe-releases.js'
import { presentShards } from './view.js'
import type { DurabilityParts } from './components.js'
import type { ShardToHold } from './holdings.js'
import type { ShardReclaimer } from './reclaim.js'
import type { CID } from 'multiformats/cid'

/** Settings of a {@link ShardsServer}. */
export interface ShardsServerInit {
  /** This node's zone, if any (answered to `info`). */
  zone?: string
  /** Most bytes of shards held for others; absent: see {@link HoldQuota}. */
  maxForOthers?: number
  /** A folder on the repo's disk, for the default quota. */
  storagePath?: string
  /** While the holdings store recovers: a manifest's shards are looked up again before its `holdings` is answered. */
  reclaim?: Pick<ShardReclaimer, 'manifest'>
}

/** How long a `reserve` holds its share of the quota for others, waiting for its `hold` (ms): as long as the puts it allows. */
export const RESERVATION_MS = 10 * 60_000

/** Answers peers' shards requests. */
export class ShardsServer {
  private readonly quota: HoldQuota
  /** Quota checks and the records they allow, one hold at a time. */
  private holding: Promise<unknown> = Promise.resolve()

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
   * @throws {InvalidArgumentError} for a `hold` of shards its manifest does not have: past its stripes or its k+m shards, or a zero shard of its short last stripe (nothing is recorded)
   * @throws {TooLargeError} for a `holdings` whose answer would name more than {@link MAX_SHARD_REFS} shards (answered `error`, never cut)
   * @throws {QuotaExceededError} (counted) for a `hold` that does not fit the quota for others
   * @throws {StripeReleasingError} for a release check (`holdings` with `release`) of a stripe this node is releasing in, or past the most stripes it holds for peers (nothing held)
   */
  async handle (from: string, request: ShardsRequest, signal: AbortSignal): Promise<ShardsResponse> {
    if (request.type === 'info') return this.init.zone === undefined ? { v: 1, type: 'info' } : { v: 1, type: 'info', zone: this.init.zone }
    if (request.type === 'holdings') {
      // a release check: this node's copies of the stripe stay while the asker releases (or it is refused, nothing
      // held), from before they are looked up, so none of those answered goes meanwhile
      const checked = request.release === true ? [stripeName(request.manifest, request.from)] : []
      if (checked.length > 0) this.components.releases.hold(checked)
      // a recovered holdings store names a shard of the block store once it is looked up: never answered without it
      await this.init.reclaim?.manifest(request.manifest)
      const shards: ShardRef[] = []
      for await (const held of presentShards(this.components.holdings, this.components.blockstore, request.manifest, request.from, request.count)) {
        // never a partial answer: the asker would take the shards left out for lost
        if (shards.length >= MAX_SHARD_REFS) throw new TooLargeError(`holdings: more than ${MAX_SHARD_REFS} shards held in stripes ${request.from}..${request.from + request.count - 1}; ask fewer stripes`)
        shards.push([held.stripe, held.shard])
      }
      // no copy here to keep: no hold taking room (a check of a stripe this node does not hold, made up or not)
      if (shards.length === 0) this.components.releases.drop(checked)
      return { v: 1, type: 'holdings', shards }
    }
    if (request.type === 'reserve') return await this.reserve(from, request)
    return await this.hold(from, request, signal)
  }

  /**
   * A `reserve`: the blocks this node lacks may be pushed for a while, each
   * exactly of its stated size, and count against the quota for others
   * (a durable record) until a `hold` binds them or the reservation expires
   * (garbage collection then drops the record and the blocks no hold took).
   * The blocks it holds already are named in the answer's `held`: the
   * sender does not push them (content added again, a stripe equal to one
   * placed before), and they are reserved too, counting nothing new.
   */
  private async reserve (from: string, request: Extract<ShardsRequest, { type: 'reserve' }>): Promise<ShardsResponse> {
    const { expected, blockstore, holdings, clock, stats } = this.components
    const missing: Array<{ cid: CID, size: number }> = []
    const held: number[] = []
    for (const [index, block] of request.blocks.entries()) {
      // one here already is not pushed (named in `held`): a collection under way keeps it (told before `has`, see BlockStore.touch)
      blockstore.touch(block.cid)
      if (await blockstore.has(block.cid)) held.push(index)
      else missing.push(block)
    }
    const present = held.map(i => request.blocks[i].cid)
    const bytes = missing.reduce((sum, b) => sum + b.size, 0)
    await this.serialHold(async () => {
      if (missing.length > 0) await this.checkQuota(bytes - await holdings.reservedOf(from, missing.map(b => b.cid)))
      const cids = missing.map(b => b.cid)
      expected.expect(from, cids, missing.map(b => b.size))
      try {
        // those held already are reserved too (counting no new bytes): a collection before the hold keeps them
        await holdings.reserve(from, missing, clock.now() + RESERVATION_MS, present)
      } catch (err) {
        expected.cancel(from, cids)
        throw err
      }
    })
    stats.reservesAccepted++
    return { v: 1, type: 'ok', ...await this.stillHeld(from, request.blocks, held) }
  }

  /**
   * `held` (indices of `blocks`) less the blocks no longer here, which `from`
   * may now push (expected at their size): told to collections and asked
   * again once the hold or reservation that keeps them is recorded. A
   * collection whose marks were read before that record, and that did not
   * run when they were first told, deleted them meanwhile: named held, they
   * would never come. Empty: no `held` in the answer.
   */
  private async stillHeld (from: string, blocks: ReadonlyArray<{ cid: CID, size?: number }>, held: number[]): Promise<{ held?: number[] }> {
    const { blockstore, expected } = this.components
    const kept: number[] = []
    const gone: Array<{ cid: CID, size: number }> = []
    for (const index of held) {
      const { cid, size } = blocks[index]
      blockstore.touch(cid)
      if (await blockstore.has(cid)) kept.push(index)
      else gone.push({ cid, size: size ?? 0 })
    }
    if (gone.length > 0) expected.expect(from, gone.map(b => b.cid), gone.map(b => b.size))
    return kept.length > 0 ? { held: kept } : {}
  }

  /**
   * A `hold`: learn the manifest and the file's skeleton from the sender,
   * then record. Every shard it names must be one its manifest stores, or
   * the whole hold is refused before anything is recorded.
   */
  private async hold (from: string, request: Extract<ShardsRequest, { type: 'hold' }>, signal: AbortSignal): Promise<ShardsResponse> {
    const { holdings, expected, blocks, exchange, clock, stats, blockstore } = this.components
    const fetcher = blocks.getter({ signal, providers: [from] })
    // the manifest and skeleton read here, and the shards, may be here already as blocks nothing kept:
    // a collection under way, whose marks read the holdings before this hold, must keep them too
    const getter: typeof fetcher = { getBytes: async (cid, options) => { blockstore.touch(cid); return await fetcher.getBytes(cid, options) } }
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
        // a slot past the leaves of a short last stripe is zeros known to every node: never stored, never held
        if (cid === undefined) throw new InvalidArgumentError(`hold: shard ${shard} of stripe ${index} is a zero shard (the stripe has ${stripe.data.length} leaves), never stored`)
        // a data shard is its leaf; every parity shard is as long as the stripe's longest leaf
        shards.push({ ref: [index, shard], cid, size: shard < mroot.k ? stripe.sizes[shard] : stripe.shardSize })
      }
    }
    shards.sort((a, b) => compareRefs(a.ref, b.ref))
    const cids = shards.map(s => s.cid)
    for (const cid of cids) blockstore.touch(cid)
    // what this peer reserved of them counts already: the hold takes it over
    const added = async (): Promise<number> => await holdings.addedForOthers(request.manifest, shards) - await holdings.reservedOf(from, cids)
    // refused before the skeleton is fetched when it cannot fit anyway
    await this.checkQuota(await added())
    for await (const block of fileSkeleton(getter, request.root, signal)) void block
    // the shards here already (pushed after a reserve, a placement made again, a holder that kept its shards) are
    // named in the answer and not pushed; `shards` is in the request's order. Told first (above), then asked.
    const held: number[] = []
    const missing: ShardToHold[] = []
    for (const [index, s] of shards.entries()) {
      if (await blockstore.has(s.cid)) held.push(index)
      else missing.push(s)
    }
    const awaited = missing.map(s => s.cid)
    await this.serialHold(async () => {
      // checked again with the holds accepted meanwhile, then recorded before another check
      await this.checkQuota(await added())
      // each exactly of its size
      expected.expect(from, awaited, missing.map(s => s.size as number))
      try {
        await holdings.noteManifest(request.manifest, { root: request.root.toString(), k: mroot.k, m: mroot.m, role: 'holder', since: clock.now() })
        await holdings.hold(request.manifest, shards, { now: clock.now(), from })
        await holdings.endReservations(from, cids)
      } catch (err) {
        expected.cancel(from, awaited)
        throw err
      }
    })
    stats.holdsAccepted++
    exchange.announceSoon(request.root)
    return { v: 1, type: 'ok', ...await this.stillHeld(from, shards, held) }
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
