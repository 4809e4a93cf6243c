/**
 * The contract of the read path (types only): the one block-getter type
 * every reader takes (`readContent`, CAR export, the cold-tier push, the
 * encoder), what a read session reads, and its progress events. The
 * implementation is {@link Blocks} in `./blocks.ts`; see docs/reads.md.
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import type { StoredColdCopy } from '../namespace/index.js'

/** Options of one block read. */
export interface GetBytesOptions {
  signal?: AbortSignal
}

/**
 * Where a reader gets blocks from: the local store, a read session, a cold
 * copy. Every block it returns matches its CID (hash-checked).
 */
export interface BlockGetter {
  getBytes: (cid: CID, options?: GetBytesOptions) => Promise<Uint8Array>
}

/**
 * A read session: a {@link BlockGetter} for one read, with background work
 * of its own (the cold tier's read-ahead). It ends when its signal fires or
 * when its owner closes it, which the owner does once the read is over
 * (finished, failed or given up): nothing it started goes on after that.
 */
export interface ReadSession extends BlockGetter {
  /** End the session: stop its GETs and read-ahead; reads still waiting fail with `AbortedError`. Closing twice is harmless. */
  close: () => void
}

/** Where a block of a read came from. */
export type BlockOrigin = 'local' | 'peer' | 'rebuilt' | 'cold'

/** A progress event of a read: one block delivered to the reader. */
export interface ReadProgress {
  cid: CID
  bytes: number
  from: BlockOrigin
}

/** What a read session reads: a DAG, and what its file's pin says about where its blocks are. */
export interface ReadTarget {
  root: CID
  /** The stripes manifest of a coded pin: leaves are fetched from their shard holders or rebuilt. */
  manifest?: CID
  /** A cold copy: blocks no other source has are read from the tier. */
  cold?: StoredColdCopy
}

/** Options of {@link BlockReader.session}. */
export interface ReadSessionOptions {
  /** The read's lifetime: when it fires the session ends (as {@link ReadSession.close}). */
  signal?: AbortSignal
  /** Called once per block delivered, with where it came from. */
  onProgress?: (event: ReadProgress) => void
  /**
   * Keep every block read here: from peers, rebuilt, from the cold tier
   * (for a pin that needs the file local, e.g. re-coding it). Without it,
   * blocks of a plain DAG fetched from peers are still kept (a cache the next
   * garbage collection may drop, as IPFS nodes do) up to
   * `READ_CACHE_BYTES` (./blocks.ts) of leaves per read (its inner nodes always), so
   * that a large read streams through instead of being written to disk; a
   * striped file's leaves and cold blocks are not kept: the file's holders
   * or its tier keep it, and a read leaves no full copy behind. A corrupt
   * local copy is always replaced.
   */
  keep?: boolean
}

/** Options of {@link BlockReader.get}. */
export interface GetBlockOptions extends GetBytesOptions {
  /** Ask these peers (in this order) instead of discovering providers. */
  providers?: string[]
}

/** The block service: one way to read a block or a DAG, wherever its bytes are. */
export interface BlockReader {
  /**
   * One block: the local store, else `providers` or the swarm. A local copy
   * that fails its check is fetched again and replaced.
   */
  get: (cid: CID, options?: GetBlockOptions) => Promise<Uint8Array>
  /** {@link get} as a {@link BlockGetter} (for manifest and skeleton walks). */
  getter: (options?: GetBlockOptions) => BlockGetter
  /**
   * A getter for the DAG of `target`: local packs → peers (the shard holders
   * of a striped file, all k data shards of the next stripes at once) →
   * Reed-Solomon rebuild → cold tier. The caller closes it when its read is over.
   */
  session: (target: ReadTarget, options?: ReadSessionOptions) => ReadSession
}
