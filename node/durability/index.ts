/**
 * Durability: pinned files are Reed-Solomon coded into stripes whose shards
 * live on the peers closest to each stripe key, read back healthy or
 * degraded, repaired after a grace period, and garbage-collected safely.
 * See docs/durability.md.
 *
 * @module
 */
import { dirname } from 'node:path'
import { LevelKV } from '../namespace/kv.js'
import { Holdings } from './holdings.js'
import { Libp2pShardsNetwork, type ShardsNetworkInit } from './network.js'
import { DurabilityService, type DurabilityComponents, type DurabilityInit, type DurabilityMetrics } from './service.js'
import { systemClock, systemTimers, type NamespaceClocks } from './components.js'
import type { GcLock } from './gc.js'
import type { BlockStore } from '../blocks/index.js'
import type { BlockExchange, PutExpectations } from '../exchange/index.js'
import type { BlockReader } from '../reads/api.js'
import type { Logger } from '../logger.js'
import type { Entry, WallClock } from '../namespace/index.js'
import type { Timers } from '../namespace/sync.js'
import type { ShoalLibp2p } from '../net/host.js'

export { DurabilityService } from './service.js'
export type { AddEncoder, AddEncoderOptions, AddEncoding, DurabilityComponents, DurabilityHealth, DurabilityMetrics, FileState, DurabilityInit, DurabilityStats, EncodeOptions, EncodeProgressEvents, PinStatus, PlaceOptions, PlaceProgressEvents, PlaceResult, RepairProgressEvents, RepairReport, ScrubProgressEvents, ShardStatus, StripeStatus, FsyncOptions } from './service.js'
export { systemClock, systemTimers } from './components.js'
export type { NamespaceClocks, RebindResult } from './components.js'
export { RemovalClocks, MAX_REMOVAL_MARKS, MAX_TOLD_REFERENCES, type RemovalState, type RemovalWalk } from './removal-clocks.js'
export { Holdings, type HeldShard, type HoldOptions, type ShardToHold } from './holdings.js'
export { HoldQuota, QuotaExceededError, type QuotaInit, type QuotaReport } from './quota.js'
export { DEFAULT_SHARDS_LIMITS, Libp2pShardsNetwork, type ShardsLimits, type ShardsNetworkInit, type ShardsNetworkStats } from './network.js'
export { GcLock, collectGarbage, type GcResult } from './gc.js'
export { registerDurabilityMetrics } from './metrics.js'
export type { LostBlock, ScrubFindings, ScrubReport } from './scrub.js'
export type { ManifestShape } from './view.js'

/** What {@link createDurability} needs. */
export interface CreateDurabilityInit extends DurabilityInit {
  /** Folder of the holdings LevelDB. */
  path: string
  libp2p: ShoalLibp2p
  blockstore: BlockStore
  exchange: BlockExchange
  /** The node's block service (manifest and skeleton reads). */
  blocks: BlockReader
  /** The exchange's put policy: told which shards a peer may push once its hold is accepted. */
  expected: PutExpectations
  files: () => AsyncIterable<Entry>
  /** The visible conflict copies (see {@link DurabilityComponents.conflictCopies}). */
  conflictCopies?: () => AsyncIterable<Entry>
  /** Who has seen which changes of the namespace (see {@link DurabilityComponents.namespace}). */
  namespace?: NamespaceClocks
  /** Binds a deferred file's pin once it is coded (see {@link DurabilityComponents.rebind}). */
  rebind?: DurabilityComponents['rebind']
  gcLock: GcLock
  logger: Logger
  /** Counters of the node's metrics (placement, repair, scrub). */
  metrics?: DurabilityMetrics
  /** Per-peer limits of the shards protocol. @default {@link DEFAULT_SHARDS_LIMITS} */
  shardsLimits?: ShardsNetworkInit
  /** The clock of grace periods, records and rate limits. @default {@link systemClock} */
  clock?: WallClock
  /** Timers of the repair and scrub schedules and rate-limit waits. @default {@link systemTimers} (unref'd) */
  timers?: Timers
}

/**
 * The durability service of a daemon, over libp2p and a LevelDB holdings
 * store. Its quota for others defaults to half the free space of the disk
 * of the holdings folder (the repo's).
 */
export function createDurability (init: CreateDurabilityInit): { service: DurabilityService, holdings: Holdings } {
  const holdings = new Holdings(new LevelKV(init.path))
  const network = new Libp2pShardsNetwork({ libp2p: init.libp2p, logger: init.logger }, init.shardsLimits)
  const service = new DurabilityService({
    blockstore: init.blockstore,
    exchange: init.exchange,
    blocks: init.blocks,
    network,
    holdings,
    expected: init.expected,
    files: init.files,
    conflictCopies: init.conflictCopies,
    namespace: init.namespace,
    rebind: init.rebind,
    gcLock: init.gcLock,
    logger: init.logger,
    clock: init.clock ?? systemClock,
    timers: init.timers ?? systemTimers,
    metrics: init.metrics
  }, { ...init, storagePath: init.storagePath ?? dirname(init.path) })
  return { service, holdings }
}
