/**
 * The durability service: encodes pinned files into stripes, places their
 * shards on the peers closest to each stripe key, answers peers' `hold` and
 * `holdings`, reports the health of every stripe, and repairs lost shards
 * after a grace period, rate-limited. See docs/durability.md.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { codingOf, formatPolicy, parsePolicy, stripeKey, type Stripe } from '../../protocol/durability.js'
import { compareRefs, MAX_SHARD_REFS, type ShardRef, type ShardsRequest, type ShardsResponse } from '../../protocol/shards.js'
import { AbortedError, InvalidArgumentError } from '../errors.js'
import { createErasureCoder, type ErasureCoder } from './erasure.js'
import { type ShardGetter, buildManifest, encodeStripes, fileLeaves, fileSkeleton, loadManifestRoot, readStripes, rebuildShard, shardCID } from './stripes.js'
import { explainPlacement, placeStripe, type PlacementPeer } from './placement.js'
import { planRepair, RateLimiter, repairCoordinator, type StripeHealth } from './repair-plan.js'
import { assessStripe, countHealth, emptySummary, type HealthSummary, type ShardHolders } from './health.js'
import { gatherView, presentShards, type HolderView } from './view.js'
import { collectGarbage, type GcLock, type GcResult } from './gc.js'
import type { Holdings, PlacementRecord, ShardToHold } from './holdings.js'
import { HoldQuota, type QuotaReport } from './quota.js'
import { emptyScrubReport, findCorruptBlocks, type ScrubReport } from './scrub.js'
import { sleep } from './sleep.js'
import { blockKey } from '../blocks/index.js'
import type { ShardsNetwork } from './network.js'
import type { BlockStore } from '../blocks/index.js'
import type { BlockExchange, PutExpectations } from '../exchange/index.js'
import type { Logger } from '../logger.js'
import type { Entry, FilePin } from '../namespace/index.js'

/** The pin carried by a namespace file record. */

/** Options of {@link DurabilityService.encode} and {@link DurabilityService.place}. */
export interface SyncOptions {
  /**
   * Fsync what the call wrote before it resolves. `false` leaves that to one
   * {@link DurabilityService.sync} for a whole batch of calls. @default true
   */
  sync?: boolean
}

/** What the service is built from. */
export interface DurabilityComponents {
  blockstore: BlockStore
  exchange: BlockExchange
  network: ShardsNetwork
  holdings: Holdings
  /** Told which shards peers may push once a `hold` is accepted (the exchange's put policy). */
  expected: PutExpectations
  /** Every visible file of the namespace (for repair and GC). */
  files: () => AsyncIterable<Entry>
  /** Writers share it; garbage collection takes it to start. */
  gcLock: GcLock
  logger: Logger
}

/** Settings (from the repo config). */
export interface DurabilityInit {
  /** This node's zone, if any. */
  zone?: string
  /** Policy of files of `largeFrom` bytes and more. @default 'ec:4+2' */
  largePolicy?: string
  /** Policy of smaller files. @default 'replicas:3' */
  smallPolicy?: string
  /** @default 1 MiB */
  largeFrom?: number
  /** A holder away this long has its shards rebuilt elsewhere (ms). @default 10 min */
  graceMs?: number
  /** Period of the repair check (ms); 0 = only on demand. @default 60 s */
  checkIntervalMs?: number
  /** Repair traffic budget (bytes/s). @default 32 MiB/s */
  repairBytesPerSecond?: number
  /** Period of the scrub (ms); 0 = only on demand. @default 7 days */
  scrubIntervalMs?: number
  /** Scrub read budget (bytes/s). @default 64 MiB/s */
  scrubBytesPerSecond?: number
  /** Most bytes of shards held for others (config `storage.maxForOthers`). @default half the free space of `storagePath`'s disk plus what is held */
  maxForOthers?: number
  /** A folder on the repo's disk, for the default quota; absent with no `maxForOthers`: no quota. */
  storagePath?: string
  /** How long a peer that refused a hold over its quota is left out of placement and repair (ms). @default 10 min */
  fullPeerMs?: number
}

/** How a placement went. */
export interface PlaceResult {
  manifest: string
  stripes: number
  /** Shards sent to other peers. */
  pushed: number
  /** Shards kept here. */
  local: number
  /** Distinct peers holding shards. */
  peers: number
  /** Peers that failed (their shards are retried by the next repair pass). */
  failed: string[]
}

/** One shard in a status report. */
export interface ShardStatus {
  index: number
  /** Absent for the zero shards of a short last stripe. */
  cid?: string
  /** Live peers holding it now. */
  holders: string[]
  /** Where placement put it (this node's record, if it placed it). */
  placed?: string
}

/** One stripe in a status report. */
export interface StripeStatus {
  index: number
  health: StripeHealth
  live: number
  shards: ShardStatus[]
  /** Why placement chose these peers, when this node placed the stripe. */
  why?: string
}

/** `pin status` of one file. */
export interface PinStatus {
  root: string
  policy: string
  manifest?: string
  k?: number
  m?: number
  stripes: StripeStatus[]
  summary: HealthSummary
  /** Peers that answered (a peer that is down cannot say what it holds). */
  peersAsked: string[]
}

/** What one repair pass did. */
export interface RepairReport extends HealthSummary {
  manifests: number
  stripes: number
  /** Shards whose holder is down but within the grace period. */
  waiting: number
  /** Shards rebuilt onto new holders. */
  repaired: number
  /** Shard bytes fetched from peers to rebuild. */
  bytesIn: number
  /** Shard bytes pushed to new holders. */
  bytesOut: number
  /** Origin placements retried. */
  placed: number
  errors: string[]
}

/** Counters since start. */
export interface DurabilityStats {
  shardsPushed: number
  shardsRepaired: number
  repairBytesIn: number
  repairBytesOut: number
  holdsAccepted: number
  /** Holds refused because they would exceed the quota for others. */
  holdsRefused: number
}

/** Holder name for the zero shards of a short last stripe: always "alive", never a peer. */
const VIRTUAL = '(zero)'
/** Holder name for a shard never seen on any peer since start. */
const UNSEEN = '(unseen)'
/** Holder name for a shard whose last holder answers but no longer has it (lost to a scrub, a disk): due at once. */
const GONE = '(gone)'

/** The durability service of one node. */
export class DurabilityService {
  private readonly log: Logger
  private readonly init: Required<Omit<DurabilityInit, 'zone' | 'maxForOthers' | 'storagePath'>> & { zone?: string }
  private readonly quota: HoldQuota
  /** Peers that refused a hold over their quota → until when they are left out (ms). */
  private readonly full = new Map<string, number>()
  /** Quota checks and the records they allow, one hold at a time. */
  private holding: Promise<unknown> = Promise.resolve()
  private coder?: Promise<ErasureCoder>
  private readonly zones = new Map<string, string | undefined>()
  private readonly lastHolder = new Map<string, { peer: string }>()
  private readonly limiter: RateLimiter
  private readonly startedAt = Date.now()
  private timer?: NodeJS.Timeout
  private scrubTimer?: NodeJS.Timeout
  private running?: Promise<RepairReport>
  private scrubbing?: Promise<ScrubReport>
  private stopScrub = new AbortController()
  private stopped = false
  readonly stats: DurabilityStats = { shardsPushed: 0, shardsRepaired: 0, repairBytesIn: 0, repairBytesOut: 0, holdsAccepted: 0, holdsRefused: 0 }

  constructor (private readonly components: DurabilityComponents, init: DurabilityInit = {}) {
    this.log = components.logger.child({ component: 'durability' })
    this.init = {
      zone: init.zone,
      largePolicy: init.largePolicy ?? 'ec:4+2',
      smallPolicy: init.smallPolicy ?? 'replicas:3',
      largeFrom: init.largeFrom ?? 1024 * 1024,
      graceMs: init.graceMs ?? 10 * 60_000,
      checkIntervalMs: init.checkIntervalMs ?? 60_000,
      repairBytesPerSecond: init.repairBytesPerSecond ?? 32 * 1024 * 1024,
      scrubIntervalMs: init.scrubIntervalMs ?? 7 * 24 * 3600_000,
      scrubBytesPerSecond: init.scrubBytesPerSecond ?? 64 * 1024 * 1024,
      fullPeerMs: init.fullPeerMs ?? 10 * 60_000
    }
    this.quota = new HoldQuota({ heldForOthers: async () => await components.holdings.heldForOthers() }, { maxForOthers: init.maxForOthers, path: init.storagePath })
    parsePolicy(this.init.largePolicy)
    parsePolicy(this.init.smallPolicy)
    this.limiter = new RateLimiter(this.init.repairBytesPerSecond, this.init.repairBytesPerSecond)
  }

  async start (): Promise<void> {
    this.stopped = false
    this.stopScrub = new AbortController()
    await this.components.network.start(async (from, request, signal) => await this.handle(from, request, signal))
    if (this.init.checkIntervalMs > 0) this.schedule(this.init.checkIntervalMs)
    if (this.init.scrubIntervalMs > 0) await this.scheduleScrub()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.scrubTimer !== undefined) clearTimeout(this.scrubTimer)
    this.stopScrub.abort()
    await this.components.network.stop()
    await this.running?.catch(() => {})
    await this.scrubbing?.catch(() => {})
  }

  /** The shards protocol endpoint (reads ask holders through it). */
  get network (): ShardsNetwork { return this.components.network }

  /** The quota for others and what is held of it. */
  async storage (): Promise<QuotaReport> {
    return await this.quota.report()
  }

  /** The policy a file of `size` bytes gets when none is given. */
  defaultPolicy (size: number): string {
    return size >= this.init.largeFrom ? this.init.largePolicy : this.init.smallPolicy
  }

  /**
   * Encode the file under `root` for `policy`, reading its leaves through
   * `getter` (default: the local store; parity and manifest blocks go to it) and return the pin for its namespace record. `none`
   * needs no work. `replicas:N` is coded as `1+(N-1)`: with one data shard
   * Reed-Solomon parity is a copy (see docs/durability.md).
   */
  async encode (root: CID, size: number, policyText: string, signal?: AbortSignal, getter: ShardGetter = this.components.blockstore, options: SyncOptions = {}): Promise<FilePin> {
    const policy = parsePolicy(policyText)
    const coding = codingOf(policy)
    if (coding === undefined) return { policy: formatPolicy(policy) }
    const coder = await this.getCoder()
    const { blockstore } = this.components
    const stripes: Stripe[] = []
    for await (const { stripe, parity } of encodeStripes(fileLeaves(getter, root, signal), coding.k, coding.m, coder)) {
      if (signal?.aborted === true) throw new AbortedError('encode aborted')
      const stored = new Set(stripe.data.map(String))
      for (const block of parity) {
        // a copy of a block stored already (replicas: the parity is the leaf) is not written again
        const key = block.cid.toString()
        if (stored.has(key)) continue
        stored.add(key)
        await blockstore.put(block.cid, block.bytes)
      }
      stripes.push(stripe)
    }
    const manifest = buildManifest(root, coding.k, coding.m, size, stripes)
    for (const block of manifest.blocks) await blockstore.put(block.cid, block.bytes)
    const sync = options.sync !== false
    if (sync) await blockstore.commit()
    await this.components.holdings.noteManifest(manifest.cid, { root: root.toString(), k: coding.k, m: coding.m, role: 'origin', since: Date.now() }, sync)
    return { policy: formatPolicy(policy), manifest: manifest.cid.toString() }
  }

  /** Fsync what {@link encode} and {@link place} wrote with `sync: false` (blocks and records). */
  async sync (): Promise<void> {
    await this.components.blockstore.commit()
    await this.components.holdings.sync()
  }

  /**
   * Place every shard of `manifest` (encoded here) on the peers closest to
   * each stripe's key: `hold` then push, one peer at a time in parallel.
   * Shards that go nowhere stay here and are retried by repair.
   */
  async place (manifest: CID, signal?: AbortSignal, options: SyncOptions = {}): Promise<PlaceResult> {
    const { blockstore, holdings, network, exchange } = this.components
    const sync = options.sync !== false
    const root = await loadManifestRoot(blockstore, manifest, signal)
    const { k, m } = root
    const peers = await this.livePeers(signal)
    const perPeer = new Map<string, Array<{ ref: ShardRef, cid: CID }>>()
    const records: PlacementRecord[] = []
    const now = Date.now()
    for await (const { index, stripe } of readStripes(blockstore, root, signal)) {
      const holders = placeStripe(stripeKey(stripe), peers, k + m, m)
      const why = explainPlacement(holders, peers, m)
      records.push({ stripe: index, holders, why: describePlacement(why, peers.length), time: now })
      holders.forEach((peer, shard) => {
        const cid = shardCID(stripe, k, shard)
        if (cid === undefined) return
        let list = perPeer.get(peer)
        if (list === undefined) { list = []; perPeer.set(peer, list) }
        list.push({ ref: [index, shard], cid })
      })
    }
    await holdings.noteManifest(manifest, { root: root.root.toString(), k, m, role: 'origin', since: now }, sync)
    await holdings.notePlacements(manifest, records)
    const mine = perPeer.get(network.self) ?? []
    await holdings.hold(manifest, mine, { now, sync })
    const failed: string[] = []
    let pushed = 0
    await Promise.all([...perPeer].filter(([peer]) => peer !== network.self).map(async ([peer, shards]) => {
      try {
        // hold then push, a part at a time: the peer expects the blocks of one part at once, for a while
        for (let i = 0; i < shards.length; i += PLACE_PART) {
          const part = shards.slice(i, i + PLACE_PART)
          await this.sendHold(peer, manifest, root.root, part.map(s => s.ref), signal)
          // one push per block: shards with equal bytes (replica copies, repeated leaves) share a CID, and the holder expects it once
          const cids = [...new Map(part.map(s => [blockKey(s.cid), s.cid])).values()]
          const result = await exchange.putBlocks(peerIdFromString(peer), this.blocksOf(cids, signal), { signal })
          pushed += result.blocks
          this.stats.shardsPushed += result.blocks
        }
      } catch (err: any) {
        this.noteRefusal(peer, err)
        this.log.warn({ peer, manifest: manifest.toString(), err: err?.message }, 'placement on peer failed')
        failed.push(peer)
      }
    }))
    if (failed.length === 0) {
      // placed for good only on k+m distinct peers; with fewer the stripes are
      // at risk, and the repair pass places again once more peers are live
      const done = peers.length >= k + m ? { placed: Date.now() } : { spreadOver: peers.length }
      await holdings.noteManifest(manifest, { root: root.root.toString(), k, m, role: 'origin', since: now, ...done }, sync)
    }
    exchange.announceSoon(root.root)
    return { manifest: manifest.toString(), stripes: root.stripes, pushed, local: mine.length, peers: perPeer.size, failed }
  }

  /** Health of every stripe of a file's pin. */
  async status (root: CID, pin: FilePin | undefined, signal?: AbortSignal): Promise<PinStatus> {
    const policy = pin?.policy ?? 'none'
    if (pin?.manifest === undefined) {
      return { root: root.toString(), policy, stripes: [], summary: emptySummary(), peersAsked: [] }
    }
    const manifest = CID.parse(pin.manifest)
    const getter = this.metaGetter(signal)
    const mroot = await loadManifestRoot(getter, manifest, signal)
    const view = await gatherView(this.components, manifest, mroot.stripes, signal)
    const stripes: StripeStatus[] = []
    const summary = emptySummary()
    for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
      const record = await this.components.holdings.placement(manifest, index)
      const shards: ShardStatus[] = []
      const seen: ShardHolders[] = []
      for (let i = 0; i < mroot.k + mroot.m; i++) {
        const cid = shardCID(stripe, mroot.k, i)
        const holders = cid === undefined ? [] : view.holders(index, i)
        seen.push(cid === undefined ? undefined : holders)
        const s: ShardStatus = { index: i, holders }
        if (cid !== undefined) s.cid = cid.toString()
        if (record !== undefined) s.placed = record.holders[i]
        shards.push(s)
      }
      const { health, live } = assessStripe(mroot.k, mroot.m, seen)
      countHealth(summary, health)
      const st: StripeStatus = { index, health, live, shards }
      if (record !== undefined) st.why = record.why
      stripes.push(st)
    }
    return { root: root.toString(), policy, manifest: pin.manifest, k: mroot.k, m: mroot.m, stripes, summary, peersAsked: view.asked }
  }

  /**
   * One repair pass over every manifest this node knows whose file is still
   * in the namespace: retry unfinished placements, then, for each stripe this
   * node coordinates, rebuild shards whose holder has been away longer than
   * the grace period onto the next closest live peers. Concurrent calls share
   * one pass.
   */
  async repair (signal?: AbortSignal): Promise<RepairReport> {
    this.running ??= this.repairPass(signal).finally(() => { this.running = undefined })
    return await this.running
  }

  /** Collect garbage in the block store (see gc.ts); orphaned holdings are kept for the grace period. */
  async collectGarbage (signal?: AbortSignal): Promise<GcResult> {
    const { blockstore, holdings, files, gcLock, logger } = this.components
    return await collectGarbage({ blockstore, holdings, files, lock: gcLock, logger }, this.init.graceMs, signal)
  }

  /**
   * Scrub: read back every block this node stores and re-hash it (at most
   * `scrubBytesPerSecond`). A corrupt block is deleted — a read would refuse
   * it anyway — then a shard this node holds is rebuilt here from k shards
   * of its stripe, and any other block is fetched again from peers that have
   * it. What can be got nowhere is reported in `lost`. Concurrent calls
   * share one pass.
   */
  async scrub (signal?: AbortSignal): Promise<ScrubReport> {
    this.scrubbing ??= this.scrubPass(signal).finally(() => { this.scrubbing = undefined })
    return await this.scrubbing
  }

  /** The erasure coder, loaded once (reads use it too). */
  async getCoder (): Promise<ErasureCoder> {
    this.coder ??= createErasureCoder()
    return await this.coder
  }

  // ------------------------------------------------------------------ peers' requests

  private async handle (from: string, request: ShardsRequest, signal: AbortSignal): Promise<ShardsResponse> {
    if (request.type === 'info') return this.init.zone === undefined ? { v: 1, type: 'info' } : { v: 1, type: 'info', zone: this.init.zone }
    if (request.type === 'holdings') {
      const shards: ShardRef[] = []
      for await (const held of presentShards(this.components.holdings, this.components.blockstore, request.manifest, request.from, request.count)) {
        if (shards.length >= MAX_SHARD_REFS) break
        shards.push([held.stripe, held.shard])
      }
      return { v: 1, type: 'holdings', shards }
    }
    // hold: learn the manifest and the file's skeleton from the sender, then record
    const getter = this.metaGetter(signal, [from])
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
    const { holdings, expected } = this.components
    // refused before the skeleton is fetched when it cannot fit anyway
    await this.checkQuota(await holdings.addedForOthers(request.manifest, shards))
    for await (const block of fileSkeleton(getter, request.root, signal)) void block
    await this.serialHold(async () => {
      // checked again with the holds accepted meanwhile, then recorded before another check
      await this.checkQuota(await holdings.addedForOthers(request.manifest, shards))
      const cids = shards.map(s => s.cid)
      expected.expect(from, cids)
      try {
        await holdings.noteManifest(request.manifest, { root: request.root.toString(), k: mroot.k, m: mroot.m, role: 'holder', since: Date.now() })
        await holdings.hold(request.manifest, shards, { now: Date.now(), from })
      } catch (err) {
        expected.cancel(from, cids)
        throw err
      }
    })
    this.stats.holdsAccepted++
    this.components.exchange.announceSoon(request.root)
    return { v: 1, type: 'ok' }
  }

  // ------------------------------------------------------------------ repair

  private schedule (ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.repair().catch(err => { this.log.warn({ err: err?.message }, 'repair pass failed') })
        .finally(() => { this.schedule(this.init.checkIntervalMs) })
    }, ms)
    this.timer.unref()
  }

  private async repairPass (signal?: AbortSignal): Promise<RepairReport> {
    const report = emptyRepairReport()
    const live = await this.liveManifests()
    const { holdings } = this.components
    const known: Array<[string, { role: string, placed?: number, spreadOver?: number }]> = []
    /** Live peers, counted once per pass when an at-risk placement may be retried. */
    let livePeers: number | undefined
    for await (const entry of holdings.manifests()) known.push(entry)
    for (const [text, record] of known) {
      if (this.stopped) break
      if (!live.has(text)) continue
      const manifest = CID.parse(text)
      report.manifests++
      try {
        if (record.role === 'origin' && record.placed === undefined && (record.spreadOver === undefined || (livePeers ??= (await this.livePeers(signal)).length) > record.spreadOver)) {
          const placed = await this.place(manifest, signal)
          if (placed.failed.length === 0) report.placed++
        }
        await this.repairManifest(manifest, report, signal)
      } catch (err: any) {
        report.errors.push(`${text}: ${String(err?.message ?? err)}`)
        this.log.warn({ manifest: text, err: err?.message }, 'repair of manifest failed')
      }
    }
    return report
  }

  private async scheduleScrub (): Promise<void> {
    let last = await this.components.holdings.lastScrub()
    if (last === undefined) {
      // a new repo: its first scrub comes one period from now, not at every first start
      last = Date.now()
      await this.components.holdings.noteScrub(last)
    }
    this.armScrub(last + this.init.scrubIntervalMs)
  }

  /** Scrub at `due` (ms timestamp), then every period after. */
  private armScrub (due: number): void {
    if (this.stopped) return
    // setTimeout takes at most 2^31-1 ms (~24.8 days): wake up early and re-arm
    const wait = Math.min(Math.max(0, due - Date.now()), 2 ** 31 - 1)
    this.scrubTimer = setTimeout(() => {
      if (Date.now() < due) { this.armScrub(due); return }
      this.scrub(this.stopScrub.signal)
        .then(r => { if (r.corrupt > 0) this.log.warn({ ...r, lost: r.lost.length }, 'scrub found corrupt blocks') })
        .catch(err => { if (!this.stopped) this.log.warn({ err: err?.message }, 'scrub failed') })
        .finally(() => { this.armScrub(Date.now() + this.init.scrubIntervalMs) })
    }, wait)
    this.scrubTimer.unref()
  }

  private async scrubPass (signal?: AbortSignal): Promise<ScrubReport> {
    const { blockstore, holdings, exchange } = this.components
    const report = emptyScrubReport()
    const corrupt = await findCorruptBlocks(blockstore, report, { bytesPerSecond: this.init.scrubBytesPerSecond, signal })
    if (corrupt.length > 0) {
      for (const cid of corrupt) await blockstore.delete(cid, { signal })
      const pending = new Map(corrupt.map(cid => [blockKey(cid), cid]))
      // shards this node holds come back from their stripes
      const heldCorrupt = new Map<string, Array<{ stripe: number, shard: number }>>()
      for await (const [manifest] of holdings.manifests()) {
        for await (const held of holdings.held(manifest)) {
          if (!pending.has(blockKey(CID.parse(held.cid)))) continue
          let list = heldCorrupt.get(manifest)
          if (list === undefined) { list = []; heldCorrupt.set(manifest, list) }
          list.push({ stripe: held.stripe, shard: held.shard })
        }
      }
      for (const [manifest, shards] of heldCorrupt) {
        try {
          for (const cid of await this.rebuildHere(CID.parse(manifest), shards, report, signal)) pending.delete(blockKey(cid))
        } catch (err: any) {
          report.errors.push(`${manifest}: ${String(err?.message ?? err)}`)
        }
      }
      // anything else (and shards that could not be rebuilt): fetch it again from a peer that has it
      for (const cid of pending.values()) {
        try {
          await exchange.getBlock(cid, { signal: signal === undefined ? AbortSignal.timeout(SCRUB_FETCH_TIMEOUT_MS) : AbortSignal.any([signal, AbortSignal.timeout(SCRUB_FETCH_TIMEOUT_MS)]) })
          report.refetched++
        } catch (err: any) {
          report.lost.push(cid.toString())
          this.log.error({ cid: cid.toString(), err: err?.message }, 'corrupt block lost: no peer has it')
        }
      }
      await blockstore.commit()
    }
    await holdings.noteScrub(Date.now())
    this.log.info({ ...report, lost: report.lost.length, errors: report.errors.length }, 'scrub done')
    return report
  }

  /** Rebuild `shards` of `manifest` here, each from k shards of its stripe; returns the CIDs rebuilt. */
  private async rebuildHere (manifest: CID, shards: Array<{ stripe: number, shard: number }>, report: ScrubReport, signal?: AbortSignal): Promise<CID[]> {
    const getter = this.metaGetter(signal)
    const mroot = await loadManifestRoot(getter, manifest, signal)
    const view = await gatherView(this.components, manifest, mroot.stripes, signal)
    const wanted = new Map<number, number[]>()
    for (const { stripe, shard } of shards) wanted.set(stripe, [...(wanted.get(stripe) ?? []), shard])
    const rebuilt: CID[] = []
    const counts = emptyRepairReport()
    for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
      for (const shard of wanted.get(index) ?? []) {
        const cid = shardCID(stripe, mroot.k, shard)
        if (cid === undefined) continue
        try {
          await this.rebuildOnto(manifest, mroot.root, stripe, index, mroot.k, mroot.m, shard, this.components.network.self, view, [], counts, signal)
          rebuilt.push(cid)
          report.rebuilt++
        } catch (err: any) {
          report.errors.push(`stripe ${index} shard ${shard}: ${String(err?.message ?? err)}`)
        }
      }
    }
    return rebuilt
  }

  private async repairManifest (manifest: CID, report: RepairReport, signal?: AbortSignal): Promise<void> {
    const { network } = this.components
    const getter = this.metaGetter(signal)
    const mroot = await loadManifestRoot(getter, manifest, signal)
    const { k, m } = mroot
    const view = await gatherView(this.components, manifest, mroot.stripes, signal)
    const peers = await this.livePeers(signal)
    const isAlive = (p: string): boolean => p === VIRTUAL || (p !== UNSEEN && p !== GONE && network.downSince(p) === undefined)
    for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
      report.stripes++
      const key = stripeKey(stripe)
      const holders: string[] = []
      for (let i = 0; i < k + m; i++) {
        const slot = `${manifest.toString()}:${index}:${i}`
        if (shardCID(stripe, k, i) === undefined) { holders.push(VIRTUAL); continue }
        const now = view.holders(index, i)
        if (now.length > 0) {
          this.lastHolder.set(slot, { peer: now[0] })
          holders.push(now[0])
        } else {
          const last = this.lastHolder.get(slot)?.peer
          // a holder that answered without the shard has lost it: no grace for a peer that is up
          holders.push(last === undefined ? UNSEEN : view.asked.includes(last) ? GONE : last)
        }
      }
      const known = [...peers]
      for (const h of holders) if (h !== VIRTUAL && !known.some(p => p.id === h)) known.push({ id: h })
      const plan = planRepair({
        key,
        k,
        m,
        holders,
        liveness: p => {
          if (p === VIRTUAL) return {}
          if (p === UNSEEN) return { downSince: this.startedAt }
          if (p === GONE) return { downSince: 0 }
          const since = network.downSince(p)
          return since === undefined ? {} : { downSince: since }
        },
        peers: known.filter(p => p.id !== UNSEEN && p.id !== GONE),
        now: Date.now(),
        graceMs: this.init.graceMs
      })
      countHealth(report, plan.health === 'healthy' ? this.spreadHealth(k, m, stripe, index, view, isAlive) : plan.health)
      report.waiting += plan.waiting
      if (plan.actions.length === 0) continue
      if (repairCoordinator(key, holders.filter(h => h !== VIRTUAL && h !== UNSEEN && h !== GONE), isAlive) !== network.self) continue
      for (const action of plan.actions) {
        try {
          await this.rebuildOnto(manifest, mroot.root, stripe, index, k, m, action.index, action.to, view, holders, report, signal)
          this.lastHolder.set(`${manifest.toString()}:${index}:${action.index}`, { peer: action.to })
          holders[action.index] = action.to
        } catch (err: any) {
          this.noteRefusal(action.to, err)
          report.errors.push(`stripe ${index} shard ${action.index}: ${String(err?.message ?? err)}`)
        }
      }
    }
  }

  /** `healthy` when the stripe's shards sit on k+m distinct live nodes, else `at-risk`. */
  private spreadHealth (k: number, m: number, stripe: Stripe, index: number, view: HolderView, isAlive: (p: string) => boolean): StripeHealth {
    const seen: ShardHolders[] = []
    for (let i = 0; i < k + m; i++) seen.push(shardCID(stripe, k, i) === undefined ? undefined : view.holders(index, i).filter(isAlive))
    return assessStripe(k, m, seen).health
  }

  /** Rebuild shard `index` from k live shards (this node's own first) and give it to `to`. */
  private async rebuildOnto (manifest: CID, root: CID, stripe: Stripe, stripeIndex: number, k: number, m: number, index: number, to: string, view: HolderView, holders: string[], report: RepairReport, signal?: AbortSignal): Promise<void> {
    const { network, blockstore, exchange, holdings } = this.components
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
    if (sources.length < needed) throw new Error(`only ${sources.length} of ${needed} shards reachable`)
    const shards = new Map<number, Uint8Array>()
    await Promise.all(sources.slice(0, needed).map(async i => {
      const cid = shardCID(stripe, k, i) as CID
      const providers = view.holders(stripeIndex, i).filter(p => p !== network.self).map(p => peerIdFromString(p))
      const had = providers.length === 0
      const bytes = had ? await blockstore.getBytes(cid) : await exchange.getBlock(cid, { providers, signal })
      if (!had) { report.bytesIn += bytes.byteLength; this.stats.repairBytesIn += bytes.byteLength }
      shards.set(i, bytes)
    }))
    const bytes = rebuildShard(stripe, k, m, index, shards, await this.getCoder())
    const cid = shardCID(stripe, k, index) as CID
    const wait = this.limiter.delay(bytes.byteLength, Date.now())
    if (wait > 0) await sleep(wait, signal)
    if (to === network.self) {
      await blockstore.put(cid, bytes)
      await blockstore.commit()
      await holdings.hold(manifest, [{ ref: [stripeIndex, index], cid, size: bytes.byteLength }], { now: Date.now() })
    } else {
      await this.sendHold(to, manifest, root, [[stripeIndex, index]], signal)
      await exchange.putBlocks(peerIdFromString(to), [{ cid, bytes }], { signal })
      report.bytesOut += bytes.byteLength
      this.stats.repairBytesOut += bytes.byteLength
    }
    report.repaired++
    this.stats.shardsRepaired++
    this.log.info({ manifest: manifest.toString(), stripe: stripeIndex, shard: index, to, previous: holders[index] }, 'shard repaired')
  }

  // ------------------------------------------------------------------ helpers

  /** @throws {QuotaExceededError} (counted) when `bytes` more do not fit the quota for others */
  private async checkQuota (bytes: number): Promise<void> {
    try {
      await this.quota.check(bytes)
    } catch (err) {
      this.stats.holdsRefused++
      throw err
    }
  }

  /** Run `fn` after every hold recording started before it. */
  private async serialHold (fn: () => Promise<void>): Promise<void> {
    const run = this.holding.then(fn)
    this.holding = run.catch(() => {})
    await run
  }

  /** A peer that refused a hold over its quota is left out of placement and repair for a while. */
  private noteRefusal (peer: string, err: unknown): void {
    if ((err as { name?: string } | undefined)?.name !== 'QuotaExceededError') return
    this.full.set(peer, Date.now() + this.init.fullPeerMs)
  }

  /** True while `peer` is left out for having refused a hold over its quota. */
  private isFull (peer: string): boolean {
    const until = this.full.get(peer)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.full.delete(peer)
    return false
  }

  private async sendHold (peer: string, manifest: CID, root: CID, refs: ShardRef[], signal?: AbortSignal): Promise<void> {
    const sorted = [...refs].sort(compareRefs)
    for (let i = 0; i < sorted.length; i += MAX_SHARD_REFS) {
      const answer = await this.components.network.request(peer, { v: 1, type: 'hold', manifest, root, shards: sorted.slice(i, i + MAX_SHARD_REFS) }, signal)
      if (answer.type !== 'ok') throw new Error(`peer ${peer} answered hold with ${answer.type}`)
    }
  }

  private async * blocksOf (cids: CID[], signal?: AbortSignal): AsyncGenerator<{ cid: CID, bytes: Uint8Array }> {
    for (const cid of cids) {
      if (signal?.aborted === true) throw new AbortedError('placement aborted')
      yield { cid, bytes: await this.components.blockstore.getBytes(cid) }
    }
  }

  /** Manifest and skeleton blocks: local first, else from `providers` or the swarm. */
  private metaGetter (signal?: AbortSignal, providers?: string[]): { getBytes: (cid: CID, o?: { signal?: AbortSignal }) => Promise<Uint8Array> } {
    const exchange = this.components.exchange
    const ids = providers?.map(p => peerIdFromString(p))
    return {
      getBytes: async (cid, o) => await exchange.getBlock(cid, { signal: o?.signal ?? signal, providers: ids })
    }
  }

  /** This node and every connected peer, with their zones (asked once per peer). */
  private async livePeers (signal?: AbortSignal): Promise<PlacementPeer[]> {
    const { network } = this.components
    const out: PlacementPeer[] = [{ id: network.self, zone: this.init.zone }]
    await Promise.all(network.connected().filter(peer => !this.isFull(peer)).map(async peer => {
      if (!this.zones.has(peer)) {
        try {
          const answer = await network.request(peer, { v: 1, type: 'info' }, signal)
          if (answer.type !== 'info') return
          this.zones.set(peer, answer.zone)
        } catch (err: any) {
          // not a Shoal node with durability (or gone): not a candidate
          this.log.debug({ peer, err: err?.message }, 'no placement info')
          return
        }
      }
      out.push({ id: peer, zone: this.zones.get(peer) })
    }))
    return out
  }

  /** Manifests referenced by a visible file now. */
  async liveManifests (): Promise<Set<string>> {
    const live = new Set<string>()
    for await (const entry of this.components.files()) {
      const manifest = entry.type === 'file' ? entry.pin?.manifest : undefined
      if (manifest !== undefined) live.add(manifest)
    }
    return live
  }
}

/** Shards placed on one peer per `hold` before they are pushed (the peer expects them for a while). */
const PLACE_PART = 4096

/** How long the scrub waits for a peer to send back one corrupt block. */
const SCRUB_FETCH_TIMEOUT_MS = 30_000

function emptyRepairReport (): RepairReport {
  return { manifests: 0, stripes: 0, ...emptySummary(), waiting: 0, repaired: 0, bytesIn: 0, bytesOut: 0, placed: 0, errors: [] }
}

function describePlacement (why: ReturnType<typeof explainPlacement>, candidates: number): string {
  const parts = [`${why.shards} shards on ${why.peersUsed} of ${candidates} live peers`, `${why.zonesUsed} zone${why.zonesUsed === 1 ? '' : 's'}`]
  if (why.reason !== undefined) parts.push(why.reason)
  return parts.join(', ')
}
