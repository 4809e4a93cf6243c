/**
 * Content-addressed block storage.
 *
 * @module
 */
import { LegacyLevelBlockStore } from './level-blockstore.js'
import { PackBlockStore } from './pack-blockstore.js'
import type { ReindexReport } from './reindex.js'
export type { ReindexReport } from './reindex.js'
import type { Blockstore, Pair } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'
import type { Counter } from 'prom-client'
import type { RecoveryReport } from './recover.js'

export { verifyBlock, matchesCID, sha256 } from './verify.js'
export { LegacyLevelBlockStore, PackBlockStore }
export { CorruptBlockError, DiskFullError } from './errors.js'
export type { RecoveryReport } from './recover.js'

/**
 * The block store class {@link createBlockStore} returns (the name the
 * former LevelDB-only store had, kept for callers that name the type).
 */
export type LevelBlockStore = PackBlockStore

/**
 * A block's identity across CID versions and codecs, as text: its multihash
 * in base64 (blocks are stored by multihash). For sets and maps of blocks.
 */
export function blockKey (cid: CID): string {
  const mh = cid.multihash.bytes
  return Buffer.from(mh.buffer, mh.byteOffset, mh.byteLength).toString('base64')
}

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
  }
}

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
  getAll: (options?: AbortOptions) => AsyncGenerator<Pair>
  /** Every stored block's CID (raw codec), without reading values. */
  cids: (options?: AbortOptions) => AsyncGenerator<CID>
  /**
   * Every stored block with its bytes exactly as stored, NOT hash-checked,
   * in key order (CIDs with the raw codec). For the scrub, which checks them
   * itself and must go on past a corrupt block.
   */
  storedEntries: (options?: AbortOptions) => AsyncGenerator<{ cid: CID, bytes: Uint8Array }>
  /** Record every block put from now until `stop()` (garbage collection keeps them). */
  watchPuts: () => PutWatch
  /** Tell the open watches that a stored block is in use, as a put of it would (a writer reusing a block already here). */
  touch: (cid: CID) => void
  approximateSize: () => Promise<number>
  /** What the last open found in the packs and repaired (absent: nothing to report for this kind of store). */
  readonly recovery?: RecoveryReport
  /** Give the space of deleted blocks back now (rewrite mostly-dead packs) and wait for it; stores that free space as they delete have none. */
  compact?: (options?: AbortOptions) => Promise<void>
  /** Check the index against the packs and rebuild it from them (absent: a store with no separate index). */
  reindex?: () => Promise<ReindexReport>
}

/** Blocks put since {@link BlockStore.watchPuts} was called. */
export interface PutWatch {
  /** True when a block with this multihash was put since the watch began. */
  seen: (cid: CID) => boolean
  stop: () => void
}

/**
 * Create (not yet open) the block store: pack files indexed in LevelDB. A
 * store in the former layout (bytes as LevelDB values) is migrated at open.
 */
export function createBlockStore (components: BlockStoreComponents, init: BlockStoreInit): PackBlockStore {
  return new PackBlockStore(components, init)
}
