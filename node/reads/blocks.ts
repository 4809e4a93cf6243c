/**
 * The block service: the one read path of a node (Helia's block brokers are
 * the model). Every reader — `cat`, `get`, ranged reads, `car export`, FUSE,
 * the encoder of `pin add`, the cold-tier push and its way back — asks a
 * {@link Blocks} session for blocks, and the session answers from, in order:
 *
 * 1. the local packs (a copy that fails its check is never served: it is
 *    fetched again and replaced);
 * 2. peers — for a striped file, the data-shard holders of the next stripes
 *    all at once (`./striped.ts`); otherwise the providers of the root;
 * 3. a Reed-Solomon rebuild of the stripe from any k shards;
 * 4. the cold tier, when the file has a cold copy. A file whose only copy
 *    is cold is not searched for in the swarm: what is not here is in the
 *    tier.
 *
 * Durability's manifest and skeleton walks use {@link Blocks.getter}: the
 * local store, else the given peers or the swarm.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { stripedSession, type StripeSources } from './striped.js'
import { localState, replaceCorrupt } from './local-state.js'
import type { BlockGetter, BlockOrigin, BlockReader, GetBlockOptions, ReadSessionOptions, ReadTarget } from './api.js'
import type { BlockStore } from '../blocks/index.js'
import type { BlockExchange } from '../exchange/index.js'
import type { Logger } from '../logger.js'
import type { StoredColdCopy } from '../namespace/index.js'
import type { CID } from 'multiformats/cid'

/** A cold tier's readers (the node's `TierService`). */
export interface ColdTiers {
  /** A getter over the cold copy of the file under `root` (each block hash-checked). */
  reader: (root: CID, copy: StoredColdCopy) => BlockGetter
}

/** What the block service reads from. */
export interface BlocksComponents {
  blockstore: BlockStore
  /** Peers; absent: only this node's store (and the tier) are read. */
  exchange?: BlockExchange
  /** Shard holders and the coder; absent: a striped file is read as a plain DAG. */
  stripes?: StripeSources
  /** The cold tier; absent: cold copies are not read. */
  tiers?: ColdTiers
  logger: Logger
}

/**
 * Bytes of a plain DAG's leaves one read fetched from peers keeps here as a
 * cache (unless `keep`): a small file read twice is read here the second
 * time, while a large one streams through without being written to disk
 * (storing it cost the reader a sixth of its CPU: docs/benchmarks.md,
 * "Transfer"). Inner nodes are always kept.
 */
export const READ_CACHE_BYTES = 64 * 1024 * 1024

/** Errors after which a hot read falls back to the cold copy. */
const COLD_FALLBACK = new Set(['NotFoundError', 'InvalidBlockError', 'CorruptBlockError', 'BlockUnavailableError', 'StripeUnavailableError', 'RequestTimeoutError', 'PeerUnavailableError'])

/** The block service of a node. */
export class Blocks implements BlockReader {
  private readonly components: BlocksComponents
  private readonly log: Logger

  constructor (components: BlocksComponents) {
    this.components = components
    this.log = components.logger.child({ component: 'blocks' })
  }

  async get (cid: CID, options: GetBlockOptions = {}): Promise<Uint8Array> {
    const { exchange, blockstore } = this.components
    if (exchange === undefined) return await blockstore.getBytes(cid, { signal: options.signal })
    return await exchange.getBlock(cid, { signal: options.signal, providers: options.providers?.map(p => peerIdFromString(p)) })
  }

  getter (options: GetBlockOptions = {}): BlockGetter {
    return { getBytes: async (cid, o) => await this.get(cid, { ...options, signal: o?.signal ?? options.signal }) }
  }

  session (target: ReadTarget, options: ReadSessionOptions = {}): BlockGetter {
    const { tiers } = this.components
    const hot = this.hotSession(target, options)
    if (target.cold === undefined || tiers === undefined) return hot
    return this.coldAware(target, tiers.reader(target.root, target.cold), hot, options)
  }

  /** Local, then peers (routed to shard holders and rebuilt when striped). */
  private hotSession (target: ReadTarget, options: ReadSessionOptions): BlockGetter {
    const { exchange, stripes, blockstore } = this.components
    const { signal, onProgress } = options
    const onBlock = onProgress === undefined ? undefined : (cid: CID, bytes: Uint8Array, from: BlockOrigin): void => { onProgress({ cid, bytes: bytes.byteLength, from }) }
    // a cold-only file is not searched for in the swarm: what is not here is in the tier
    if (exchange === undefined || (target.cold !== undefined && target.manifest === undefined)) return localGetter(blockstore, onBlock)
    if (target.manifest !== undefined && stripes !== undefined) {
      return stripedSession({ blockstore, exchange, stripes }, target.root, target.manifest, { signal, onBlock, cache: options.keep === true })
    }
    return exchange.session(target.root, { signal, onBlock, cacheBytes: options.keep === true ? Infinity : READ_CACHE_BYTES })
  }

  /**
   * `hot` first, the cold copy for blocks it cannot give. A block read from
   * the tier replaces a corrupt local copy, and is kept here when `keep`.
   */
  private coldAware (target: ReadTarget, cold: BlockGetter, hot: BlockGetter, options: ReadSessionOptions): BlockGetter {
    const { blockstore } = this.components
    return {
      getBytes: async (cid, opts) => {
        try {
          return await hot.getBytes(cid, opts)
        } catch (err: any) {
          if (!COLD_FALLBACK.has(err?.name) || opts?.signal?.aborted === true || options.signal?.aborted === true) throw err
        }
        // whatever the hot sources said, a local copy that fails its check is replaced below
        const corrupt = await localState(blockstore, cid) === 'corrupt'
        const bytes = await cold.getBytes(cid, opts)
        options.onProgress?.({ cid, bytes: bytes.byteLength, from: 'cold' })
        if (corrupt) {
          this.log.warn({ cid: cid.toString(), root: target.root.toString() }, 'corrupt local copy replaced by the cold copy')
          await replaceCorrupt(blockstore, cid, bytes)
        } else if (options.keep === true) await blockstore.put(cid, bytes)
        return bytes
      }
    }
  }
}

/** The local store alone, as a getter that tells where each block came from. */
function localGetter (blockstore: BlockStore, onBlock?: (cid: CID, bytes: Uint8Array, from: BlockOrigin) => void): BlockGetter {
  if (onBlock === undefined) return blockstore
  return {
    getBytes: async (cid, options) => {
      const bytes = await blockstore.getBytes(cid, options)
      onBlock(cid, bytes, 'local')
      return bytes
    }
  }
}
