/**
 * What every part of the durability service is built from: one
 * `components` object (the store, the exchange, the shards network, the
 * holdings table, the clock and timers, shared counters). The clock and
 * timers are injected, as in namespace sync, so simulations and tests run
 * the real code on virtual time.
 *
 * @module
 */
import type { GcLock } from './gc.js'
import { HolderSearch } from './holder-search.js'
import { StripeReleases } from './stripe-releases.js'
import { RemovalClocks } from './removal-clocks.js'
import type { Holdings } from './holdings.js'
import type { ShardsNetwork } from './network.js'
import type { BlockStore } from '../blocks/index.js'
import type { BlockExchange, PutExpectations } from '../exchange/index.js'
import type { BlockReader } from '../reads/api.js'
import type { Logger } from '../logger.js'
import type { Entry, FilePin, WallClock } from '../namespace/index.js'
import type { VectorClock } from '../namespace/clock.js'
import type { CID } from 'multiformats/cid'
import { systemTimers, type Timers } from '../timers.js'
import type { Counter } from 'prom-client'

/** Counters since start, shared by the parts of the service. */
export interface DurabilityStats {
  shardsPushed: number
  /** Shard blocks a placement did not push because their peer named them held already (its `reserve` or `hold` answer). */
  shardsHeldAlready: number
  shardsRepaired: number
  repairBytesIn: number
  repairBytesOut: number
  holdsAccepted: number
  /** `reserve`s accepted (the batches of a placement streamed during an add). */
  reservesAccepted: number
  /** Holds refused because they would exceed the quota for others. */
  holdsRefused: number
  /** Repair passes started (scheduled or asked for). */
  repairPasses: number
}

/**
 * Prometheus counters the service adds to where the work happens, when
 * given (the node's metrics; see docs/api.md, "Metrics").
 */
export interface DurabilityMetrics {
  /** Shard blocks pushed to peers by placement. */
  shardsPlaced: Counter
  /** Shards rebuilt from their stripe and given to a holder (by repair, or here by a scrub). */
  shardsRepaired: Counter
  /** Bytes repair fetched (`direction="in"`) and sent (`"out"`). */
  repairBytes: Counter<'direction'>
  /** Blocks the scrub read back and re-hashed. */
  scrubBlocks: Counter
  /** Bytes the scrub read back. */
  scrubBytes: Counter
  /** Blocks the scrub found corrupt. */
  scrubCorrupt: Counter
  /** Corrupt blocks the scrub could not rebuild from their stripe: fetched again from a peer (`outcome="refetched"`) or lost (`"lost"`). */
  scrubLost: Counter<'outcome'>
}

/**
 * What the service uses of the block exchange: fetch a block (from given
 * peers), push blocks a peer agreed to hold, announce a root. The seam a
 * simulation fills with a virtual exchange.
 */
export type ShardExchange = Pick<BlockExchange, 'getBlock' | 'putBlocks' | 'announceSoon'>

/**
 * What the service asks of the namespace before it collects the shards of a
 * file no longer in it (removal-clocks.ts): who has seen which changes. The
 * node's replica is one.
 */
export interface NamespaceClocks {
  /** Every change applied here now. */
  clockNow: () => Readonly<VectorClock>
  /** What every active member has seen and this node has applied (namespace compaction's stable clock). */
  stableClock: () => VectorClock
  /** Active members whose own writes, as far as their latest clock tells, are not all applied here. */
  behindMembers: () => string[]
  /** Active members whose latest clock does not cover `clock`. */
  membersNotSeen: (clock: VectorClock) => string[]
  /** How long a member not heard from still counts as active (ms): the longest a removal waits for the members. */
  readonly memberTimeout: number
}

/** What the service is built from. */
export interface DurabilityComponents {
  blockstore: BlockStore
  exchange: ShardExchange
  /** Where manifest and skeleton blocks are read from: the local store, else given peers or the swarm. */
  blocks: BlockReader
  network: ShardsNetwork
  holdings: Holdings
  /** Told which shards peers may push once a `hold` is accepted (the exchange's put policy). */
  expected: PutExpectations
  /** Every visible file of the namespace (for repair and GC). */
  files: () => AsyncIterable<Entry>
  /** The visible conflict copies (from the namespace's index of conflicts). Absent: found by a scan of {@link files}. */
  conflictCopies?: () => AsyncIterable<Entry>
  /**
   * Who has seen which changes of the namespace: a removed file's shards are
   * collected only once every active member has seen the removal
   * (removal-clocks.ts). Absent: the grace period alone decides.
   */
  namespace?: NamespaceClocks
  /**
   * Bind `pin` to the visible files whose content is `root` and whose pin
   * has the same policy and no manifest yet (a deferred coding is done):
   * those at `paths`, or, without `paths`, every one (conflict copies
   * left out: a write to one would end its conflict). Absent: deferred
   * files stay uncoded.
   */
  rebind?: (root: CID, pin: FilePin, paths?: readonly string[]) => Promise<RebindResult>
  /** Writers share it; garbage collection takes it to start. */
  gcLock: GcLock
  logger: Logger
  /** Time of grace periods, records and rate limits. @default {@link systemClock} */
  clock?: WallClock
  /** Schedules of repair and scrub, and rate-limit waits. @default {@link systemTimers} */
  timers?: Timers
  /** Randomness of the repair schedule's phase, in [0, 1). @default Math.random */
  random?: () => number
  /** Counters of the node's metrics. */
  metrics?: DurabilityMetrics
}

/** {@link DurabilityComponents} with the clock, the timers, the randomness, the counters, the holder search, the release holds and the removals' clocks every part shares. */
export interface DurabilityParts extends DurabilityComponents {
  clock: WallClock
  timers: Timers
  random: () => number
  stats: DurabilityStats
  /** Finds holders this node is not connected to (holder views: reads, `pin status`, scrub, repair). */
  search: HolderSearch
  /** The stripes this node holds its copies of for peers' releases, and those it releases in (repair's releases, the shards server's release checks). */
  releases: StripeReleases
  /** The namespace clocks of removals whose shards are kept (repair passes and collections note them, collections ask them). */
  removals: RemovalClocks
}

/** The real clock. */
export const systemClock: WallClock = { now: () => Date.now() }

/** Real timers, unref'd: a pending repair or scrub never keeps a process alive. */
export { systemTimers }

/** Zeroed counters. */
export function emptyStats (): DurabilityStats {
  return { shardsPushed: 0, shardsHeldAlready: 0, shardsRepaired: 0, repairBytesIn: 0, repairBytesOut: 0, holdsAccepted: 0, reservesAccepted: 0, holdsRefused: 0, repairPasses: 0 }
}

/** `components` with the real clock and timers where none is given, fresh counters, a holder search, no release held and no removal's clock noted. */
export function resolveParts (components: DurabilityComponents): DurabilityParts {
  const timers = components.timers ?? systemTimers
  const search = new HolderSearch({ network: components.network, timers, logger: components.logger })
  const releases = new StripeReleases({ now: () => components.network.now() })
  const clock = components.clock ?? systemClock
  const removals = new RemovalClocks({ namespace: components.namespace, clock })
  return { ...components, clock, timers, random: components.random ?? Math.random, stats: emptyStats(), search, releases, removals }
}

/** What a {@link DurabilityComponents.rebind} did. */
export interface RebindResult {
  /** Files bound now. */
  bound: number
  /**
   * Of the `paths` asked, those that show no file waiting for this coding
   * and none bound to it already: moved, removed, replaced or re-pinned
   * since they were noted (empty without `paths`).
   */
  left: string[]
}
