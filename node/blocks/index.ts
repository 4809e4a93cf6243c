/**
 * Content-addressed block storage. The contract ({@link BlockStore} and its
 * types) is in api.ts and re-exported here; the implementation files import
 * it from there, never from this file.
 *
 * @module
 */
import { LegacyLevelBlockStore } from './level-blockstore.js'
import { PackBlockStore } from './pack-blockstore.js'
import type { BlockStoreComponents, BlockStoreInit } from './api.js'
import type { CID } from 'multiformats/cid'
export type { ReindexReport } from './reindex.js'
export type { AbortOptions, BlockStoreMetrics, BlockStoreComponents, BlockStoreInit, BlockStore, CompactOptions, HeldPack, OwnedWrites, PutWatch, RecordLocation } from './api.js'

export { verifyBlock, matchesCID, matchesCIDOffThread, sha256 } from './verify.js'
export { LegacyLevelBlockStore, PackBlockStore }
export { CorruptBlockError, DiskFullError } from './errors.js'
export type { RecoveryReport } from './recover.js'
export type { AuditReport } from './index-audit.js'
export type { IndexRebuildReport } from './index-rebuild.js'

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

/**
 * Create (not yet open) the block store: pack files indexed in LevelDB. A
 * store in the former layout (bytes as LevelDB values) is migrated at open.
 */
export function createBlockStore (components: BlockStoreComponents, init: BlockStoreInit): PackBlockStore {
  return new PackBlockStore(components, init)
}
