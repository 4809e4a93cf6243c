/**
 * The durability service: encodes pinned files into stripes, places their
 * shards on the peers closest to each stripe key, answers peers' `hold` and
 * `holdings`, reports the health of every stripe, repairs lost shards after
 * a grace period, rate-limited, and scrubs the disk. See docs/durability.md.
 *
 * A thin facade: each job is done by a part that owns its state, every part
 * built from the same components ({@link Encoder}, {@link Placer},
 * {@link ShardsServer}, {@link readPinStatus}, {@link ShardRebuilder},
 * {@link Repairer}, {@link Scrubber}).
 *
 * @module
 */
import { codingOf, formatPolicy, minNodesOf, parsePolicy, type Stripe } from '../../protocol/durability.js'
import { AddEncoder, shortage, thinSpread, waitingWhy, type AddEncoderOptions } from './add-encoder.js'
import { countLeaves } from './stripes.js'
import { DeferredCoder, type DeferredOutcome } from './deferred.js'
import { CopyKeeper } from './conflict-copies.js'
import { collectGarbage, type GcProgressEvents, type GcResult } from './gc.js'
import type { StripeReleases } from './stripe-releases.js'
import type { RemovalClocks } from './removal-clocks.js'
import { resolveParts, type DurabilityComponents, type DurabilityParts, type DurabilityStats } from './components.js'
import { Encoder, type EncodeOptions } from './encoder.js'
import { filePinState, readPinStatus, type PinStatus } from './pin-status.js'
import { Placer, type PlaceOptions, type PlaceResult } from './placer.js'
import { ShardRebuilder } from './rebuilder.js'
import { Repairer, type RepairProgressEvents, type RepairReport } from './repairer.js'
import { ShardReclaimer } from './reclaim.js'
import { Scrubber, type ScrubProgressEvents } from './scrubber.js'
import { resolveSettings, type DurabilityInit, type DurabilitySettings } from './settings.js'
import { ShardsServer } from './shards-server.js'
import type { DeferredRecord } from './holdings.js'
import { countFileStates, type FileState, type HealthSummary } from './health.js'
import type { ShardsNetwork } from './network.js'
import { gatherView, type GatherOptions, type HolderView, type ManifestShape } from './view.js'
import type { QuotaReport } from './quota.js'
import type { ScrubFindings, ScrubReport } from './scrub.js'
import type { FilePin } from '../namespace/index.js'
import type { CID } from 'multiformats/cid'
import type { ProgressOptions } from 'progress-events'

export type { DurabilityComponents, DurabilityMetrics, DurabilityStats, ShardExchange } from './components.js'
export type { FileState } from './health.js'
export type { DurabilityInit } from './settings.js'
export type { AddEncoder, AddEncoderOptions, AddEncoding } from './add-encoder.js'
export type { DeferredOutcome } from './deferred.js'
export type { EncodeOptions, EncodeProgressEvents, FsyncOptions } from './encoder.js'
export type { PlaceOptions, PlaceProgressEvents, PlaceResult } from './placer.js'
export type { RepairProgressEvents } from './repairer.js'
export type { ScrubProgressEvents } from './scrubber.js'
export type { GcProgress, GcProgressEvents } from './gc.js'
export type { FilePinState, PinStatus, ShardStatus, StripeStatus } from './pin-status.js'
export type { RepairReport } from './repairer.js'

/** What the last repair pass found ({@link DurabilityService.health}). */
export interface DurabilityHealth extends HealthSummary {
  /** When the pass finished (ms). */
  at: number
  /** Pinned files (manifests) it looked at. */
  manifests: number
  stripes: number
  /** Files not coded yet because too few nodes are live. */
  uncoded: number
  /** Files whose coding failed for want of their blocks (neither here nor on a peer): lost before their coding. */
  uncodedLost: number
  /** Shards whose holder is away but within the grace period. */
  waiting: number
}

/** The durability service of one node. */
export class DurabilityService {
  /** Counters since start. */
  readonly stats: DurabilityStats
  private readonly parts: DurabilityParts
  private readonly settings: DurabilitySettings
  private readonly encoder: Encoder
  private readonly placer: Placer
  private readonly deferred: DeferredCoder
  private readonly server: ShardsServer
  private readonly repairer: Repairer
  private readonly scrubber: Scrubber
  private readonly reclaimer: ShardReclaimer
  /** Keeps conflict copies whole on the nodes picked for them. */
  private readonly copies: CopyKeeper

  /** @throws {InvalidPolicyError} when a configured policy does not parse */
  constructor (components: DurabilityComponents, init: DurabilityInit = {}) {
    const parts = resolveParts(components)
    const settings = resolveSettings(init)
    this.parts = parts
    this.settings = settings
    this.stats = parts.stats
    this.encoder = new Encoder(parts)
    this.placer = new Placer(parts, { zone: settings.zone, fullPeerMs: settings.fullPeerMs })
    this.deferred = new DeferredCoder(parts, { encoder: this.encoder, placer: this.placer })
    this.reclaimer = new ShardReclaimer(parts)
    this.server = new ShardsServer(parts, { zone: settings.zone, maxForOthers: settings.maxForOthers, storagePath: settings.storagePath, reclaim: this.reclaimer })
    this.copies = new CopyKeeper({
      copies: parts.conflictCopies ?? (async function * () { for await (const entry of parts.files()) if (entry.conflictOf !== undefined) yield entry }),
      livePeers: async signal => (await this.placer.livePeers(signal)).map(p => p.id),
      network: parts.network,
      blockstore: parts.blockstore,
      blocks: parts.blocks,
      logger: parts.logger
    })
    const rebuilder = new ShardRebuilder(parts, { bytesPerSecond: settings.repairBytesPerSecond, coder: async () => await this.encoder.getCoder(), placer: this.placer })
    this.repairer = new Repairer(parts, { graceMs: settings.graceMs, checkIntervalMs: settings.checkIntervalMs, placer: this.placer, rebuilder, deferred: this.deferred, copies: this.copies, reclaim: this.reclaimer })
    this.scrubber = new Scrubber(parts, { scrubIntervalMs: settings.scrubIntervalMs, scrubBytesPerSecond: settings.scrubBytesPerSecond, graceMs: settings.graceMs, rebuilder })
  }

  /**
   * Serve peers' shards requests, and start the repair and scrub schedules.
   * A holdings store created anew in a repo whose block store has blocks
   * (moved aside after damage) is recovered first: the shards held here
   * are looked up again in the background (see {@link ShardReclaimer}).
   */
  async start (): Promise<void> {
    const recovering = await this.reclaimer.begin()
    await this.parts.network.start(async (from, request, signal) => await this.server.handle(from, request, signal))
    if (recovering) {
      this.reclaimer.run().catch((err: any) => {
        if (err?.name !== 'AbortedError') this.parts.logger.warn({ err: err?.message }, 'looking up the shards held here failed (tried again at the next repair pass)')
      })
    }
    this.repairer.start()
    await this.scrubber.start()
  }

  /** Stop serving and the schedules, and wait for a running repair, scrub or look-up of held shards. */
  async stop (): Promise<void> {
    // a conflict copy's fetch under way ends now: the pass it is in would otherwise hold the stop for the whole copy
    this.copies.stop()
    const repairer = this.repairer.stop()
    const scrubber = this.scrubber.stop()
    const reclaimer = this.reclaimer.stop()
    await this.parts.network.stop()
    await repairer
    await scrubber
    await reclaimer
    await this.encoder.close()
  }

  /** The shards protocol endpoint. */
  get network (): ShardsNetwork { return this.parts.network }

  /** The stripes this node holds its copies of for peers' releases, and those it is releasing in (node/durability/stripe-releases.ts). */
  get releases (): StripeReleases { return this.parts.releases }

  /** The namespace clocks of removals whose shards are kept, told of the files that refer to manifests (node/durability/removal-clocks.ts). */
  get removals (): RemovalClocks { return this.parts.removals }

  /**
   * Which live peers (this node included) hold which shards of `manifest`,
   * of `shape.stripes` stripes of `shape.width` shards (striped reads start
   * from it: `searchWhen: 'a-stripe-unreadable'`, see {@link GatherOptions}).
   */
  async holderView (manifest: CID, shape: ManifestShape, options: Pick<GatherOptions, 'signal' | 'searchWhen'> = {}): Promise<HolderView> {
    return await gatherView(this.parts, manifest, shape.stripes, { ...options, width: shape.width })
  }

  /** The quota for others and what is held of it. */
  async storage (): Promise<QuotaReport> {
    return await this.server.storage()
  }

  /** The policy a file of `size` bytes gets when none is given. */
  defaultPolicy (size: number): string {
    return size >= this.settings.largeFrom ? this.settings.largePolicy : this.settings.smallPolicy
  }

  /**
   * Encode the file under `root` for `policy`, reading its leaves through
   * `options.getter` (default: the local store; parity and manifest blocks
   * go to it) and return the pin for its namespace record. See {@link Encoder.encode}.
   */
  async encode (root: CID, size: number, policyText: string, options: EncodeOptions = {}): Promise<FilePin> {
    return await this.encoder.encode(root, size, policyText, options)
  }

  /**
   * The coding of one add, fed leaf by leaf by the import (its `onLeaf`):
   * stripes are coded from the leaves in memory, or deferred when too few
   * nodes are live. See {@link AddEncoder}.
   */
  addEncoder (options: AddEncoderOptions = {}): AddEncoder {
    return new AddEncoder({ components: this.parts, settings: this.settings, encoder: this.encoder, placer: this.placer }, options)
  }

  /** Why the file `root` is not coded yet, when its coding waits for live nodes. */
  async waiting (root: CID, policy: string, signal?: AbortSignal): Promise<string | undefined> {
    if (await this.parts.holdings.deferredHeadOf(root, policy) === undefined) return undefined
    if (this.deferred.coding(root, policy)) return 'it is being coded; its shards are placed next'
    const missing = this.deferred.blocksMissing(root, policy)
    if (missing !== undefined) return `its coding failed: its blocks are neither here nor on a peer (${missing}); lost unless a peer brings them back (tried again at each repair pass)`
    const short = await this.tooFewNodes(policy, signal)
    return short === undefined ? 'enough nodes are live; it is coded and placed in the background (at the latest by the next repair pass)' : waitingWhy(short)
  }

  /**
   * Why a file added now under `policy` would not meet it, one line, or
   * undefined when it would: too few live nodes to code it (it waits,
   * uncoded), or fewer live nodes than its shards (placed over them, it
   * survives fewer lost nodes until more are live). With `root` (the file's,
   * stored here), a file of fewer than k leaves counts only its shards.
   */
  async shortfall (policy: string, options: { root?: CID, signal?: AbortSignal } = {}): Promise<string | undefined> {
    const { root, signal } = options
    const parsed = parsePolicy(policy)
    const coding = codingOf(parsed)
    if (coding === undefined) return undefined
    const text = formatPolicy(parsed)
    const nodes = (await this.placer.livePeers(signal)).length
    const needed = minNodesOf(coding)
    if (nodes < needed) return waitingWhy(shortage(nodes, text, needed))
    if (nodes >= coding.k + coding.m) return undefined
    // a file of fewer than k leaves has fewer shards: its leaves, read from its skeleton here
    const leaves = root === undefined ? undefined : await countLeaves(this.parts.blockstore, root, signal, coding.k).catch(() => undefined)
    const shards = Math.min(coding.k, Math.max(1, leaves ?? coding.k)) + coding.m
    return nodes >= shards ? undefined : thinSpread(nodes, text, coding, shards)
  }

  /** Why `policy` cannot be carried now (too few live nodes for its parity to survive a lost node, one line), or undefined when it can. */
  async tooFewNodes (policy: string, signal?: AbortSignal): Promise<string | undefined> {
    const parsed = parsePolicy(policy)
    const coding = codingOf(parsed)
    return coding === undefined ? undefined : await this.placer.shortage(formatPolicy(parsed), coding, signal)
  }

  /**
   * Leave the file `root` uncoded for now: {@link codeDeferred} or the next
   * repair pass with enough live nodes codes and places it, and binds its
   * pin to the files at `paths` (absent: to every visible file with this
   * content and policy). `sync: false` leaves the fsync to a later
   * {@link sync}.
   */
  async defer (root: CID, size: number, policy: string, options: { paths?: string[], sync?: boolean } = {}): Promise<void> {
    const record: DeferredRecord = { policy: formatPolicy(parsePolicy(policy)), size, since: this.parts.clock.now() }
    if (options.paths !== undefined) record.paths = options.paths
    await this.parts.holdings.noteDeferred(root, record, options.sync !== false)
  }

  /**
   * Code, bind and place the file `root` that an add left uncoded under
   * `policy` (see {@link defer}) now, if the live nodes can carry it; else
   * it keeps waiting for a repair pass. See {@link DeferredCoder.code}.
   */
  async codeDeferred (root: CID, policy: string, signal?: AbortSignal): Promise<DeferredOutcome> {
    return await this.deferred.code(root, formatPolicy(parsePolicy(policy)), signal)
  }

  /** Fsync what {@link encode} and {@link place} wrote with `sync: false` (blocks and records). */
  async sync (): Promise<void> {
    await this.parts.blockstore.commit()
    await this.parts.holdings.sync()
  }

  /**
   * Place every shard of `manifest` (encoded here) on the peers closest to
   * each stripe's key. See {@link Placer.place}.
   */
  async place (manifest: CID, signal?: AbortSignal, options: Omit<PlaceOptions, 'signal'> = {}): Promise<PlaceResult> {
    return await this.placer.place(manifest, { ...options, signal })
  }

  /** How far this node's placement of `manifest` is (shard blocks pushed, of how many), while one runs. */
  placing (manifest: CID | string): { pushed: number, total: number } | undefined {
    return this.placer.placing(manifest)
  }

  /** Health of every stripe of a file's pin. */
  async status (root: CID, pin: FilePin | undefined, signal?: AbortSignal): Promise<PinStatus> {
    // the zones of live peers are learned (once per peer) before health counts them
    if (pin?.manifest !== undefined) await this.placer.livePeers(signal)
    const { network } = this.parts
    const awayWithinGrace = (peer: string): boolean => {
      const since = network.downSince(peer)
      return since !== undefined && network.now() - since < this.settings.graceMs
    }
    const status = await readPinStatus(this.parts, root, pin, { signal, zoneOf: peer => this.placer.zoneOf(peer), underWay: manifest => this.placer.underWay(manifest), awayWithinGrace })
    const why = pin?.manifest === undefined && pin !== undefined ? await this.waiting(root, pin.policy, signal) ?? codedElsewhere(pin.policy) : undefined
    if (why !== undefined) {
      status.pending = true
      status.waiting = why
    }
    status.state = filePinState(status)
    return status
  }

  /**
   * One repair pass over every manifest this node knows whose file is still
   * in the namespace. Concurrent calls share one pass. See {@link Repairer}.
   */
  async repair (signal?: AbortSignal, options: ProgressOptions<RepairProgressEvents> = {}): Promise<RepairReport> {
    return await this.repairer.repair(signal, options)
  }

  /**
   * The health of what this node knows, as the last repair pass found it
   * (every `durability.checkInterval`, or `shoal repair`): stripe counts by
   * health, files waiting for live nodes, when. Undefined before the first
   * pass.
   */
  health (): DurabilityHealth | undefined {
    const last = this.repairer.last()
    if (last === undefined) return undefined
    const { report, at } = last
    return { at, manifests: report.manifests, stripes: report.stripes, healthy: report.healthy, atRisk: report.atRisk, degraded: report.degraded, lost: report.lost, uncoded: report.uncoded, uncodedLost: report.uncodedLost, waiting: report.waiting }
  }

  /**
   * Pinned files this node knows, by state: as the last repair pass found
   * them, with those whose placement runs now counted as `placing`.
   * Undefined before the first pass.
   */
  fileStates (): Record<FileState, number> | undefined {
    const last = this.repairer.last()
    if (last === undefined) return undefined
    return countFileStates(last.files, { uncoded: last.report.uncoded, lost: last.report.uncodedLost }, this.placer.placingNow())
  }

  /** Collect garbage in the block store (see gc.ts); orphaned holdings are kept for the grace period. */
  async collectGarbage (signal?: AbortSignal, options: ProgressOptions<GcProgressEvents> = {}): Promise<GcResult> {
    const { blockstore, holdings, files, gcLock, logger, clock, removals } = this.parts
    return await collectGarbage({ blockstore, holdings, files, lock: gcLock, logger, clock, removals }, this.settings.graceMs, { signal, onProgress: options.onProgress })
  }

  /**
   * Scrub: re-hash every stored block, rebuild or fetch again what is
   * corrupt and still needed here, report what can be got nowhere in `lost`
   * (with the files it belongs to) and count the leftovers nothing needs.
   * Concurrent calls share one pass. See {@link Scrubber}.
   */
  async scrub (signal?: AbortSignal, options: ProgressOptions<ScrubProgressEvents> = {}): Promise<ScrubReport> {
    return await this.scrubber.scrub(signal, options)
  }

  /** What the last scrub found (kept across restarts), if one ran. */
  async lastScrub (): Promise<ScrubFindings | undefined> {
    return await this.parts.holdings.scrubFindings()
  }

  /** Whether a scrub finished since this service was made. */
  scrubbedSinceStart (): boolean {
    return this.scrubber.ranSinceStart
  }

  /** A degraded read's stripe: its data leaves from any k of its checked shards (see {@link Encoder.rebuildStripe}). */
  async rebuildStripe (stripe: Stripe, k: number, m: number, shards: Map<number, Uint8Array>): Promise<Uint8Array[]> {
    return await this.encoder.rebuildStripe(stripe, k, m, shards)
  }
}

/**
 * Why a file whose record asks for coding (`policy`) but carries no
 * manifest, and that this node has no deferred record of, is pending: the
 * node that added it codes it (only that node keeps the record, and the
 * namespace binds the manifest when it is coded). Undefined for a policy that
 * codes nothing (`none`, `replicas:1`): such a file is `not-coded`. Before,
 * every other node said `not-coded` and "kept where its blocks are" for a
 * file its writer said was pending.
 */
function codedElsewhere (policy: string): string | undefined {
  let coding: { k: number, m: number } | undefined
  try { coding = codingOf(parsePolicy(policy)) } catch { return undefined }
  if (coding === undefined) return undefined
  return 'the node that added it codes and places it once enough nodes are live (`shoal pin status` there says why)'
}
