/**
 * The repair pass: for every manifest this node knows whose file is still
 * in the namespace, retry an unfinished placement, then, for each stripe
 * this node coordinates, rebuild shards whose holder has been away longer
 * than the grace period onto the next closest live peers. Owns the last
 * holder seen of every shard, and the pass's schedule (on the injected
 * timers, clock and randomness).
 *
 * The schedule's phase is random: each wait is the period ±
 * {@link REPAIR_JITTER} of it, drawn anew each time. With a fixed wait,
 * nodes started together (a cluster restarted at once, a rack back from a
 * power cut) ran their passes in the same second for as long as they ran:
 * every pass asks the connected peers what they hold, so each peer met the
 * whole swarm's questions at once every period, and after a loss every
 * coordinator began its rebuilds in the same second. Drawn waits spread the
 * passes over the period after the first, and the phases drift further
 * apart with each pass; the mean period is unchanged. The namespace's sync
 * rounds and the connection pings (node/net/connection-pinger.ts) are spread
 * the same way.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { stripeKey, type ManifestRoot, type Stripe } from '../../protocol/durability.js'
import { AbortedError } from '../errors.js'
import { RemoteError } from '../exchange/index.js'
import { assessStripe, countHealth, emptySummary, fileState, summaryDelta, type FileState, type HealthSummary, type ShardHolders } from './health.js'
import type { DeferredCoder } from './deferred.js'
import type { CopyKeeper } from './conflict-copies.js'
import type { ShardReclaimer } from './reclaim.js'
import { liveManifests, noteReferences, referenceChanges } from './live-manifests.js'
import type { ManifestRecord } from './holdings.js'
import { planRepair, repairCoordinator, type RepairPlan, type StripeHealth } from './repair-plan.js'
import { SharedPass } from './shared-pass.js'
import { stripeName, type StripeRelease } from './stripe-releases.js'
import { releaseConfirmed, surplusCopies, type SurplusCopy } from './surplus.js'
import { loadManifestRoot, readStripes, shardCID } from './stripes.js'
import { gatherView, presentShards, type HolderView } from './view.js'
import { adoptLostShards, liveShards } from './adopt.js'
import type { DurabilityParts } from './components.js'
import type { Placer } from './placer.js'
import type { RebuildCounts, ShardRebuilder } from './rebuilder.js'
import type { Logger } from '../logger.js'
import { jittered } from '../timers.js'

/** Progress of a repair pass: manifests checked of those whose files are live, and shards rebuilt so far. */
export type RepairProgressEvents = ProgressEvent<'shoal:durability:repair', { manifests: number, total: number, repaired: number }>
/** What one repair pass did. */
export interface RepairReport extends HealthSummary, RebuildCounts {
  manifests: number
  stripes: number
  /** Extra copies this node released (another live peer keeps each; node/durability/surplus.ts). */
  released: number
  /** Shards whose holder is down but within the grace period. */
  waiting: number
  /**
   * Lost shards past the grace period that this pass could not rebuild: no
   * live node can take them (or fewer than k shards are left); a joining
   * node gives them a holder.
   */
  unplaced: number
  /** Origin placements retried. */
  placed: number
  /** Deferred files coded and placed in this pass (enough nodes became live). */
  coded: number
  /** Deferred files still waiting for enough live nodes. */
  uncoded: number
  /** Deferred files whose coding failed for want of their blocks, here and on every peer: lost before their coding. */
  uncodedLost: number
  /** Conflict copies (uncoded until resolved) this node fetched whole in this pass, to hold them for their pin (conflict-copies.ts). */
  copiesFetched: number
  errors: string[]
}

/** Settings of a {@link Repairer}. */
export interface RepairerInit {
  /** A holder away this long has its shards rebuilt elsewhere (ms). */
  graceMs: number
  /** Period of the pass (ms); 0 = only on demand. */
  checkIntervalMs: number
  /** Places again what was placed over too few peers, and knows the live peers. */
  placer: Pick<Placer, 'place' | 'livePeers' | 'noteRefusal' | 'zoneOf' | 'sendHold'>
  rebuilder: Pick<ShardRebuilder, 'rebuildOnto'>
  /** Codes the files added without coding (waiting for live nodes, or interrupted). */
  deferred: Pick<DeferredCoder, 'codeAll'>
  /** Keeps conflict copies, never coded while they are copies, whole on the nodes picked for them. */
  copies?: Pick<CopyKeeper, 'keep'>
  /** While the holdings store recovers, looks up the shards held here first (node/durability/reclaim.ts). */
  reclaim?: Pick<ShardReclaimer, 'run'>
  /**
   * Every this many passes, a healthy file's holders are checked against
   * every connected peer, not only those last seen: that is how an extra
   * copy (a holder back after the grace period, or restored from an old
   * backup) is found and released. @default {@link FULL_VIEW_EVERY}
   */
  fullViewEvery?: number
}

/** Each wait of the repair schedule is the period times 1 ± this (drawn uniformly). */
export const REPAIR_JITTER = 0.25

/** Default of {@link RepairerInit.fullViewEvery}. */
export const FULL_VIEW_EVERY = 10

/** Holder name for the zero shards of a short last stripe: always "alive", never a peer. */
const VIRTUAL = '(zero)'
/** Holder name for a shard never seen on any peer since start (away since this node learned of its file, or since start). */
const UNSEEN = '(unseen)'
/** Holder name for a shard whose last holder answers but no longer has it (lost to a scrub, a disk): due at once. */
const GONE = '(gone)'
/** A lost stripe's copies are asked of the swarm at most this often (or the grace period, when shorter). */
const ADOPT_AGAIN_MS = 60_000

/** Runs repair passes, on demand and on a period. */
export class Repairer {
  private readonly log: Logger
  private readonly lastHolder = new Map<string, { peer: string }>()
  private readonly startedAt: number
  private timer?: unknown
  private readonly pass = new SharedPass<RepairReport>()
  private stopped = false
  /** Shards this node holds → when a pass first saw it hold them (network clock): a copy is released only once held a grace period. */
  private readonly ownSince = new Map<string, number>()
  /** When the swarm was last asked for copies of a lost stripe's shards (`slotOf(manifest, stripe, -1)`): at most once a minute. */
  private readonly adoptAsked = new Map<string, number>()
  private latest?: { report: RepairReport, at: number, files: ReadonlyMap<string, FileState> }

  constructor (private readonly components: DurabilityParts, private readonly init: RepairerInit) {
    this.log = components.logger.child({ component: 'durability' })
    // liveness is measured on the network's clock (monotonic), never the wall clock
    this.startedAt = components.network.now()
  }

  /** Run a pass every `checkIntervalMs` (none when 0). */
  start (): void {
    this.stopped = false
    if (this.init.checkIntervalMs > 0) this.schedule()
  }

  /** Stop the schedule and wait for a running pass. */
  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) this.components.timers.clearTimeout(this.timer)
    await this.pass.settled()
  }

  /** One repair pass; concurrent calls share one pass (its progress goes to the caller that started it). */
  async repair (signal?: AbortSignal, options: ProgressOptions<RepairProgressEvents> = {}): Promise<RepairReport> {
    return await this.pass.run(async () => {
      const files = new Map<string, FileState>()
      const report = await this.repairPass(signal, options, files)
      this.latest = { report, at: this.components.clock.now(), files }
      return report
    })
  }

  /**
   * The report of the last finished pass, when it finished (ms) and the state
   * of each live manifest (manifest → state), if one ran: every live manifest
   * the pass listed has one — `unknown` when its check failed, the previous
   * pass's state when the pass stopped before reaching it.
   */
  last (): { report: RepairReport, at: number, files: ReadonlyMap<string, FileState> } | undefined {
    return this.latest
  }

  /** The next pass, after the period ± {@link REPAIR_JITTER}. */
  private schedule (): void {
    if (this.stopped) return
    const wait = jittered(this.init.checkIntervalMs, REPAIR_JITTER, this.components.random)
    this.timer = this.components.timers.setTimeout(() => {
      this.repair().catch(err => { this.log.warn({ err: err?.message }, 'repair pass failed') })
        .finally(() => { this.schedule() })
    }, wait)
  }

  private async repairPass (signal: AbortSignal | undefined, options: ProgressOptions<RepairProgressEvents>, files: Map<string, FileState>): Promise<RepairReport> {
    const report = emptyRepairReport()
    const { holdings } = this.components
    const { placer } = this.init
    this.components.stats.repairPasses++
    // each step's failure is reported and the rest of the pass (placement, repair, health) goes on
    // the manifests this node holds shards of, known again before they are listed
    await this.step(report, 'looking up held shards', async () => { await this.init.reclaim?.run(signal) })
    await this.step(report, 'deferred coding', async () => {
      const deferred = await this.init.deferred.codeAll(signal)
      report.coded = deferred.coded
      report.uncoded = deferred.waiting
      report.uncodedLost = deferred.lost
      report.errors.push(...deferred.errors)
    })
    await this.step(report, 'conflict copies', async () => {
      const copies = await this.init.copies?.keep(signal)
      report.copiesFetched = copies?.fetched ?? 0
      report.errors.push(...copies?.errors ?? [])
    })
    // who has seen what, and where the references told stand, before the walk of the visible files
    const removals = this.components.removals.beginWalk()
    const live = await liveManifests(this.components.files, signal)
    const known: Array<[string, ManifestRecord]> = []
    /** Live peers, counted once per pass when an at-risk placement may be retried. */
    let livePeers: number | undefined
    for await (const entry of holdings.manifests()) known.push(entry)
    // the grace period of the shards of a removed file runs from the first pass (or collection) that finds it removed
    await noteReferences(referenceChanges(known, m => live.has(m), removals.stands), { holdings, now: this.components.clock.now(), removals })
    const total = known.filter(([text]) => live.has(text)).length
    let checked = 0
    for (const [text, record] of known) {
      if (!live.has(text)) continue
      if (this.stopped) {
        // not reached: the state the last pass found stands (each live manifest is counted once)
        files.set(text, this.latest?.files.get(text) ?? 'unknown')
        continue
      }
      if (signal?.aborted === true) throw new AbortedError('repair aborted')
      const manifest = CID.parse(text)
      report.manifests++
      try {
        if (record.role === 'origin' && record.placed === undefined && (record.spreadOver === undefined || (livePeers ??= (await placer.livePeers(signal)).length) > record.spreadOver)) {
          const placed = await placer.place(manifest, { signal })
          if (placed.failed.length === 0) report.placed++
        }
        const before = { ...report }
        await this.repairManifest(manifest, report, signal)
        // the writer's placement is final once it is on k+m distinct peers (pin status's `pending`)
        const own = record.role === 'origin' && record.placed === undefined ? await holdings.manifest(text) : record
        files.set(text, fileState(summaryDelta(report, before), own?.role === 'origin' && own.placed === undefined))
      } catch (err: any) {
        // not checked to the end: counted as such, never dropped (the states add up to the live manifests);
        // a pass aborted in the middle of it leaves the last pass's state
        files.set(text, err?.name === 'AbortedError' ? (this.latest?.files.get(text) ?? 'unknown') : 'unknown')
        report.errors.push(`${text}: ${String(err?.message ?? err)}`)
        this.log.warn({ manifest: text, err: err?.message }, 'repair of manifest failed')
      }
      options.onProgress?.(new CustomProgressEvent('shoal:durability:repair', { manifests: ++checked, total, repaired: report.repaired }))
    }
    return report
  }

  /** Run one step of a pass: a failure other than an abort is reported in `report` and logged, and the pass goes on. */
  private async step (report: RepairReport, what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn()
    } catch (err: any) {
      if (err?.name === 'AbortedError') throw err
      report.errors.push(`${what}: ${String(err?.message ?? err)}`)
      this.log.warn({ err: err?.message }, `${what} failed`)
    }
  }

  /**
   * Check every stripe of `manifest` and rebuild what is due. The holders
   * seen last time are asked first: when they still hold every shard and
   * each stripe is healthy, that is the answer (nothing to do); otherwise
   * every connected peer is asked, as the first time, and when that leaves a
   * shard without a holder, the file root's DHT providers too (holders this
   * node is not connected to are live holders, not lost shards). So a pass over healthy
   * files asks O(k+m) peers per stripe, not every peer of the swarm; every
   * `fullViewEvery` passes it asks every peer anyway (extra copies show there).
   */
  private async repairManifest (manifest: CID, report: RepairReport, signal?: AbortSignal): Promise<void> {
    const getter = this.components.blocks.getter({ signal })
    const mroot = await loadManifestRoot(getter, manifest, signal)
    const last = this.lastHolders(manifest, mroot)
    if (last.size > 0 && this.components.stats.repairPasses % (this.init.fullViewEvery ?? FULL_VIEW_EVERY) !== 0) {
      const narrow = await gatherView(this.components, manifest, mroot.stripes, { signal, peers: last, width: mroot.k + mroot.m })
      const healthy = { ...emptySummary(), stripes: 0 }
      if (await this.allHealthy(mroot, narrow, healthy, signal)) {
        report.stripes += healthy.stripes
        report.healthy += healthy.healthy
        return
      }
    }
    const view = await gatherView(this.components, manifest, mroot.stripes, { signal, width: mroot.k + mroot.m })
    await this.checkStripes(manifest, mroot, view, report, signal)
  }

  /** The peers last seen holding a shard of `manifest` (this node aside). */
  private lastHolders (manifest: CID, { k, m, stripes }: Pick<ManifestRoot, 'k' | 'm' | 'stripes'>): Set<string> {
    const out = new Set<string>()
    for (let s = 0; s < stripes; s++) {
      for (let i = 0; i < k + m; i++) {
        const peer = this.lastHolder.get(slotOf(manifest, s, i))?.peer
        if (peer !== undefined && peer !== this.components.network.self) out.add(peer)
      }
    }
    return out
  }

  /**
   * Whether `view` shows every stripe healthy (each shard on a
   * live holder, k+m distinct nodes, the zone cap kept): then no repair is
   * due. Counts the stripes in `counted` as it goes; false at the first
   * stripe that is not.
   */
  private async allHealthy (mroot: ManifestRoot, view: HolderView, counted: HealthSummary & { stripes: number }, signal?: AbortSignal): Promise<boolean> {
    const { network } = this.components
    const { placer } = this.init
    const { k, m } = mroot
    const isAlive = (p: string): boolean => p === VIRTUAL || network.downSince(p) === undefined || view.answered(p)
    for await (const { index, stripe } of readStripes(this.components.blocks.getter({ signal }), mroot, signal)) {
      for (let i = 0; i < k + m; i++) {
        if (shardCID(stripe, k, i) !== undefined && !view.holders(index, i).some(isAlive)) return false
      }
      if (spreadHealth(k, m, stripe, index, view, isAlive, p => placer.zoneOf(p)) !== 'healthy') return false
      counted.stripes++
      counted.healthy++
    }
    return true
  }

  /** Check each stripe of `manifest` against `view` (every connected peer asked, and the holders found beyond them) and rebuild the shards due. */
  private async checkStripes (manifest: CID, mroot: ManifestRoot, view: HolderView, report: RepairReport, signal?: AbortSignal): Promise<void> {
    const { network } = this.components
    const { placer, rebuilder, graceMs } = this.init
    const getter = this.components.blocks.getter({ signal })
    const { k, m } = mroot
    const peers = await placer.livePeers(signal)
    // a shard never seen counts as away since this node started, or since it learned of the file if later: a node
    // that has just become a holder must not rebuild at once the shards of holders it has not reached yet (the age
    // of the record is read on the wall clock, which can step; never earlier than start, so at worst as before)
    const record = await this.components.holdings.manifest(manifest)
    const knownFor = record === undefined ? Infinity : Math.max(0, this.components.clock.now() - record.since)
    const unseenSince = Math.max(this.startedAt, network.now() - knownFor)
    // a holder that answered this view is live, connected or not (found through the DHT and dialled: a connection
    // manager may have closed that connection since); only holders neither connected nor answering are away
    const isAlive = (p: string): boolean => p === VIRTUAL || (p !== UNSEEN && p !== GONE && (network.downSince(p) === undefined || view.answered(p)))
    for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
      report.stripes++
      const key = stripeKey(stripe)
      let holders = this.holdersOf(manifest, mroot, { index, stripe }, view)
      // every peer seen with a shard of this stripe, not only the one holder per shard kept in `holders`
      const seen = (): string[] => [...new Set(Array.from({ length: k + m }, (_, i) => view.holders(index, i)).flat())]
      // of every live holder seen, not only the one per shard each node keeps (which one that is depends on the
      // order answers came in): two nodes that kept different holders of a shard copied twice chose two coordinators
      const coordinator = (): string | undefined => repairCoordinator(key, [...holders.filter(h => h !== VIRTUAL && h !== UNSEEN && h !== GONE), ...seen()], isAlive)
      const planFor = (holders: string[]): RepairPlan => {
        const known = [...peers]
        for (const h of holders) if (h !== VIRTUAL && !known.some(p => p.id === h)) known.push({ id: h })
        const alsoHolding = seen().filter(p => !holders.includes(p))
        let doubled = 0
        for (let i = 0; i < k + m; i++) if (view.holders(index, i).filter(isAlive).length > 1) doubled++
        return planRepair({
          key,
          k,
          m,
          holders,
          alsoHolding,
          doubled,
          liveness: p => {
            if (p === VIRTUAL) return {}
            if (p === UNSEEN) return { downSince: unseenSince }
            if (p === GONE) return { downSince: 0 }
            if (view.answered(p)) return {}
            const since = network.downSince(p)
            return since === undefined ? {} : { downSince: since }
          },
          peers: known.filter(p => p.id !== UNSEEN && p.id !== GONE),
          now: network.now(),
          graceMs
        })
      }
      let plan = planFor(holders)
      // lost on its holders, none of them still within the grace period: copies elsewhere are asked for, by
      // the stripe's coordinator (every node when no holder is left); docs/durability.md, "Copies outside the holders"
      if (plan.waiting === 0 && plan.unplaced > 0 && liveShards({ k, m, stripe, index, view, isAlive }).live < stripe.data.length) {
        const acting = coordinator()
        const slot = slotOf(manifest, index, -1)
        const asked = this.adoptAsked.get(slot)
        if ((acting === undefined || acting === network.self) && (asked === undefined || network.now() - asked >= Math.min(graceMs, ADOPT_AGAIN_MS))) {
          this.adoptAsked.set(slot, network.now())
          const giveAway = async (shard: number, cid: CID, bytes: Uint8Array): Promise<string | undefined> => {
            const taken = new Set(Array.from({ length: k + m }, (_, j) => view.holders(index, j)).flat())
            if (!taken.has(network.self)) return undefined
            const to = peers.find(p => !taken.has(p.id) && isAlive(p.id))?.id
            if (to === undefined) return undefined
            await placer.sendHold(to, manifest, mroot.root, [[index, shard]], signal)
            await this.components.exchange.putBlocks(peerIdFromString(to), [{ cid, bytes }], { signal })
            // a shard given to a new holder, as a rebuild gives one
            report.repaired++
            report.bytesOut += bytes.byteLength
            this.components.stats.shardsRepaired++
            this.components.stats.repairBytesOut += bytes.byteLength
            this.components.metrics?.shardsRepaired.inc()
            this.components.metrics?.repairBytes.inc({ direction: 'out' }, bytes.byteLength)
            return to
          }
          const adopted = await adoptLostShards(this.components, { manifest, k, m, stripe, index, view, isAlive, signal, giveAway })
          if (adopted.length > 0) {
            holders = this.holdersOf(manifest, mroot, { index, stripe }, view)
            plan = planFor(holders)
          }
        }
      }
      countHealth(report, plan.health === 'healthy' ? spreadHealth(k, m, stripe, index, view, isAlive, p => placer.zoneOf(p)) : plan.health)
      report.waiting += plan.waiting
      report.unplaced += plan.unplaced
      await this.releaseSurplus({ manifest, index, key, k, shards: k + m, view, isAlive, report, signal })
      if (plan.actions.length === 0) continue
      if (coordinator() !== network.self) continue
      for (const action of plan.actions) {
        try {
          await rebuilder.rebuildOnto({ manifest, mroot, stripe, stripeIndex: index, shard: action.index, to: action.to, view, previous: holders[action.index], counts: report, signal })
          this.lastHolder.set(slotOf(manifest, index, action.index), { peer: action.to })
          holders[action.index] = action.to
        } catch (err: any) {
          placer.noteRefusal(action.to, err)
          report.errors.push(`stripe ${index} shard ${action.index}: ${String(err?.message ?? err)}`)
        }
      }
    }
  }

  /**
   * Release the copies of one stripe's shards that {@link surplusCopies}
   * gives up, each only once this node has held it a grace period (a copy
   * just received may be a handover still under way) and once the stripe's
   * holders, asked once right before the stripe's releases, confirm it (its
   * keeper still has it and comes first; the stripe is no worse without it).
   * Garbage collection then frees the blocks.
   */
  private async releaseSurplus (at: { manifest: CID, index: number, key: Uint8Array, k: number, shards: number, view: HolderView, isAlive: (p: string) => boolean, report: RepairReport, signal?: AbortSignal }): Promise<void> {
    const { network } = this.components
    const { manifest, index, view } = at
    const now = network.now()
    for (let i = 0; i < at.shards; i++) {
      const slot = slotOf(manifest, index, i)
      if (!view.holders(index, i).includes(network.self)) this.ownSince.delete(slot)
      else if (!this.ownSince.has(slot)) this.ownSince.set(slot, now)
    }
    const surplus = surplusCopies({ key: at.key, k: at.k, self: network.self, shards: at.shards, holders: i => view.holders(index, i), isAlive: at.isAlive })
      .filter(copy => now - (this.ownSince.get(slotOf(manifest, index, copy.index)) ?? now) >= this.init.graceMs)
    if (surplus.length === 0) return
    // one node releases in a stripe at a time: not while a peer's check holds it (node/durability/stripe-releases.ts)
    const release = this.components.releases.begin(stripeName(manifest, index))
    if (release === undefined) {
      this.log.debug({ manifest: manifest.toString(), stripe: index }, 'extra copies not released: a peer checks the stripe for a release of its own')
      return
    }
    try {
      await this.releaseChecked({ ...at, surplus, release })
    } finally {
      release.end()
    }
  }

  /** {@link releaseSurplus} once this node's releases in the stripe have begun: check the stripe with its holders, then release. */
  private async releaseChecked (at: { manifest: CID, index: number, k: number, shards: number, view: HolderView, isAlive: (p: string) => boolean, report: RepairReport, signal?: AbortSignal, surplus: SurplusCopy[], release: StripeRelease }): Promise<void> {
    const { network, holdings } = this.components
    const { manifest, index, view, report, signal, release } = at
    // the stripe as its holders answer now, asked once (an earlier pass's release, another node's, a keeper that
    // took more shards: the view's counts may be stale), each holding its copies while this node releases; this
    // node's own releases below are applied to it as made
    const peers = new Set<string>()
    for (let i = 0; i < at.shards; i++) for (const p of view.holders(index, i)) if (p !== network.self && at.isAlive(p)) peers.add(p)
    let held: string[][]
    try {
      held = await this.stripeNow({ manifest, index, shards: at.shards, peers, signal })
    } catch (err: any) {
      this.log.debug({ manifest: manifest.toString(), stripe: index, err: err?.message }, 'extra copies not released')
      return
    }
    for (const copy of at.surplus) {
      const { index: shard, keeper } = copy
      // past half the holders' hold, a copy counted may be gone: the rest waits for the next pass
      if (!release.inTime()) break
      if (!releaseConfirmed(held, at.k, network.self, copy)) continue
      try {
        await holdings.releaseShards(manifest, [[index, shard]])
      } catch (err: any) {
        this.log.debug({ keeper, err: err?.message }, 'extra copy not released')
        continue
      }
      held[shard] = held[shard].filter(p => p !== network.self)
      this.ownSince.delete(slotOf(manifest, index, shard))
      report.released++
      this.log.info({ manifest: manifest.toString(), stripe: index, shard, keeper }, 'extra copy released')
    }
  }

  /**
   * The holders of each shard of stripe `index` of `manifest` now: this
   * node's shards whose blocks are present, and those `peers` answer. Asked
   * as a release check: each peer that answers holds its copies of the
   * stripe a while. A peer that does not answer is not taken for one holding
   * nothing: its copies may be what keeps the stripe able to lose a node
   * (one shard already lost, say), so the stripe's releases wait.
   *
   * @throws {StripeReleasingError} when a peer is releasing in the stripe itself; the error of any peer that does not answer (a timeout, a refusal, a peer of an earlier version that does not know the check)
   */
  private async stripeNow (at: { manifest: CID, index: number, shards: number, peers: ReadonlySet<string>, signal?: AbortSignal }): Promise<string[][]> {
    const { network, holdings, blockstore } = this.components
    const { manifest, index } = at
    const held: string[][] = Array.from({ length: at.shards }, () => [])
    const add = (stripe: number, shard: number, peer: string): void => { if (stripe === index && shard >= 0 && shard < at.shards) held[shard].push(peer) }
    for await (const h of presentShards(holdings, blockstore, manifest, index, 1)) add(h.stripe, h.shard, network.self)
    await Promise.all([...at.peers].map(async peer => {
      const answer = await network.request(peer, { v: 1, type: 'holdings', manifest, from: index, count: 1, release: true }, at.signal)
      if (answer.type !== 'holdings') throw new RemoteError(`peer ${peer} answered a release check with ${answer.type}`)
      for (const [stripe, shard] of answer.shards) add(stripe, shard, peer)
    }))
    return held
  }

  /** One holder per shard of a stripe: one seen now, else the last one seen (or a placeholder name). */
  private holdersOf (manifest: CID, { k, m }: Pick<ManifestRoot, 'k' | 'm'>, { index, stripe }: { index: number, stripe: Stripe }, view: HolderView): string[] {
    const holders: string[] = []
    for (let i = 0; i < k + m; i++) {
      const slot = slotOf(manifest, index, i)
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
    return holders
  }
}

/** An empty report. */
export function emptyRepairReport (): RepairReport {
  return { manifests: 0, stripes: 0, released: 0, ...emptySummary(), waiting: 0, unplaced: 0, repaired: 0, bytesIn: 0, bytesOut: 0, placed: 0, coded: 0, uncoded: 0, uncodedLost: 0, copiesFetched: 0, errors: [] }
}

function slotOf (manifest: CID, stripe: number, shard: number): string {
  return `${manifest.toString()}:${stripe}:${shard}`
}

/** `healthy` when the stripe's shards sit on k+m distinct live nodes (at most m per zone), else `at-risk`. */
function spreadHealth (k: number, m: number, stripe: Stripe, index: number, view: HolderView, isAlive: (p: string) => boolean, zoneOf: (p: string) => string | undefined): StripeHealth {
  const seen: ShardHolders[] = []
  for (let i = 0; i < k + m; i++) seen.push(shardCID(stripe, k, i) === undefined ? undefined : view.holders(index, i).filter(isAlive))
  return assessStripe(k, m, seen, zoneOf).health
}
