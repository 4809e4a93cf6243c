/**
 * The block store's contract, types only: the {@link BlockStore} interface,
 * what a store is built from ({@link BlockStoreComponents},
 * {@link BlockStoreInit}) and the options every call takes.
 *
 * Why a file of its own: the stores (pack-blockstore.ts,
 * level-blockstore.ts, store-base.ts, util.ts) need these types, and
 * index.ts re-exports the stores. Were the types in index.ts, each store
 * would import the index that imports it — a circle. They import
 * `./api.js`, which imports no implementation; index.ts re-exports it.
 *
 * @module
 */
import type { Blockstore, Pair } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'
import type { Counter } from 'prom-client'
import type { RecoveryReport } from './recover.js'
import type { AuditReport } from './index-audit.js'
import type { IndexRebuildReport } from './index-rebuild.js'
import type { ReindexReport } from './reindex.js'

/** Options every block store call accepts. */
export interface AbortOptions {
  signal?: AbortSignal
  /** Hash-check bytes on `put` (for blocks from untrusted sources). @default false */
  verify?: boolean
}

/** Counters the block store updates when given. */
export interface BlockStoreMetrics {
  blocksWritten: Counter
  bytesWritten: Counter
  blocksRead: Counter
}

/** What the block store needs from the node. */
export interface BlockStoreComponents {
  metrics?: BlockStoreMetrics
}

/** Where and how to open the store. */
export interface BlockStoreInit {
  /** Directory of the LevelDB database (the index); packs go in its `packs/` folder. */
  path: string
  /** Bytes buffered in memory before a background write to the pack. @default 8 MiB */
  flushBytes?: number
  /** LevelDB memtable size. @default 16 MiB (the index) */
  writeBufferSize?: number
  /** LevelDB block cache. @default 32 MiB (the index) */
  cacheSize?: number
  /** A new pack is started when the current one would grow past this (compaction needs free room for up to half a pack). @default 64 MiB */
  maxPackBytes?: number
  /** Packs whose live share falls under this are rewritten. @default 0.5 */
  compactBelow?: number
  /** Bytes of live records compaction copies per second at most. @default 32 MiB */
  compactBytesPerSecond?: number
  /** Compact in the background after deletes. @default true */
  autoCompact?: boolean
  /** Bytes per committed batch when migrating a former-layout store at open. @default 64 MiB */
  migrateBatchBytes?: number
  /** Fault injection for tests. */
  faults?: {
    /** Called after each committed migration batch; throwing stops the open there. */
    afterMigrateBatch?: (batch: number) => void
    /**
     * Awaited while compaction removes a rewritten pack that nothing points
     * into any more: `counters` before its counters are deleted, `file` after
     * that and before its file is unlinked (a test stops the process there).
     */
    beforePackRemoval?: (pack: number, step: PackRemovalStep) => Promise<void> | void
  }
}

/** Options of {@link BlockStore.compact}. */
export interface CompactOptions extends AbortOptions {
  /**
   * Rewrite the packs whose live share is under this (the one being written
   * included) rather than under `compactBelow`: garbage collection asks
   * its `GC_COMPACT_BELOW` (node/durability/gc.ts), so that the space of what it removed comes back
   * before it returns. @default the store's `compactBelow`
   */
  liveBelow?: number
}

/** Where a pack's removal by compaction stands (see `faults.beforePackRemoval`). */
export type PackRemovalStep = 'counters' | 'file'

/**
 * The `interface-blockstore` contract plus what Shoal needs on top:
 * whole-block reads, durable commit points, lifecycle.
 */
export interface BlockStore extends Blockstore<{}, AbortOptions, AbortOptions, AbortOptions, AbortOptions, AbortOptions, AbortOptions, AbortOptions> {
  open: () => Promise<void>
  close: () => Promise<void>
  /** The block's bytes in one buffer, hash-checked. */
  getBytes: (cid: CID, options?: AbortOptions) => Promise<Uint8Array>
  /** Fsync every write so far. */
  commit: () => Promise<void>
  /**
   * Commits that failed since the store opened. A commit covers every
   * write so far, whoever made it, and one that fails can lose blocks of
   * other writers still at work (those in a pack that could not be
   * written): a writer that sees this number change while it writes must
   * not acknowledge its write. Absent: a store whose failed writes lose
   * only their own.
   */
  readonly failedCommits?: number
  getAll: (options?: AbortOptions) => AsyncGenerator<Pair>
  /** Every stored block's CID (raw codec), without reading values. */
  cids: (options?: AbortOptions) => AsyncGenerator<CID>
  /**
   * Every stored block with its bytes exactly as stored, NOT hash-checked,
   * in key order (CIDs with the raw codec). For the scrub, which checks them
   * itself and must go on past a corrupt block.
   */
  storedEntries: (options?: AbortOptions) => AsyncGenerator<{ cid: CID, bytes: Uint8Array }>
  /**
   * A view of the store whose puts belong to one write, to be discarded if
   * that write fails (a failed add gives its space back at once, even when
   * the disk filled up before its commit). Absent: a store whose failed
   * writes are left to garbage collection.
   */
  ownedWrites?: () => OwnedWrites
  /** Record every block put from now until `stop()` (garbage collection keeps them). */
  watchPuts: () => PutWatch
  /**
   * Tell the open watches that a stored block is in use, as a put of it
   * would (a writer reusing a block already here). Call it before `has`:
   * a collection decides to delete a block when no watch has it, and `has`
   * answers after a delete called before it.
   */
  touch: (cid: CID) => void
  approximateSize: () => Promise<number>
  /** What the last open found in the packs and repaired (absent: nothing to report for this kind of store). */
  readonly recovery?: RecoveryReport
  /** Set when the last open found the index damaged and rebuilt it from the packs (absent: it was not, or a store with no separate index). */
  readonly indexRebuilt?: IndexRebuildReport
  /** What the last open's index audit found: entries lost inside packs, restored (absent: nothing to report for this kind of store). */
  readonly audit?: AuditReport
  /**
   * Give the space of deleted blocks back now (rewrite mostly-dead packs, or
   * with `liveBelow` the packs less live than that) and wait for it; stores
   * that free space as they delete have none.
   */
  compact?: (options?: CompactOptions) => Promise<void>
  /**
   * Bytes of deleted blocks' records still on disk: what a compaction would
   * give back (absent: a store that frees space as it deletes).
   */
  deadBytes?: () => number
  /** Check the index against the packs and rebuild it from them (absent: a store with no separate index). */
  reindex?: (options?: AbortOptions) => Promise<ReindexReport>
  /**
   * Where the committed record of `cid` lies, for a reader that reads and
   * checks records itself (the FUSE binding's threads); undefined when the
   * block is not here, or not yet committed. Absent: a store without records.
   */
  locate?: (cid: CID) => Promise<RecordLocation | undefined>
  /**
   * Keep pack `pack` open for reading until `release()` (a pack compacted
   * away meanwhile stays readable through it). Absent with {@link locate}.
   */
  holdPack?: (pack: number) => Promise<HeldPack>
}

/** The place of one committed record (see {@link BlockStore.locate}). */
export interface RecordLocation {
  pack: number
  /** The record's offset in its pack file. */
  offset: number
  /** The record's length: its header (9 bytes and the multihash), then the block's bytes. */
  length: number
  /** Where the block's bytes start in the record. */
  bytesAt: number
}

/** A pack file kept open (see {@link BlockStore.holdPack}). */
export interface HeldPack {
  /** Its file descriptor, valid until `release()`. */
  fd: number
  release: () => void
}

/**
 * One write's puts, tagged so that they can be dropped together if the write
 * fails (see {@link BlockStore.ownedWrites}).
 */
export interface OwnedWrites {
  /** The store, every put through it tagged as this write's. */
  store: BlockStore
  /**
   * Drop this write's blocks that no commit has covered yet and that no
   * other write put too (those stay, for their writer's commit), and cut
   * their bytes off the end of their pack when nothing kept lies after
   * them. Returns the bytes cut off. Puts of this write still under way
   * settle first and are dropped too; a put through `store` after it
   * throws `WriteInterruptedError`.
   */
  discard: () => Promise<number>
}

/** Blocks put since {@link BlockStore.watchPuts} was called. */
export interface PutWatch {
  /** True when a block with this multihash was put since the watch began. */
  seen: (cid: CID) => boolean
  stop: () => void
}
