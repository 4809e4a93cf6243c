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
 *    is cold is not searched for in the swarm before the tier: what is not
 *    here is in the tier. When the tier fails (unreachable, refused, a
 *    damaged object…) the swarm is asked after all, since a peer may still
 *    hold the file hot; the tier's error stands when no peer has it.
 *
 * Durability's manifest and skeleton walks use {@link Blocks.getter}: the
 * local store, else the given peers or the swarm.
 *
 * @module
 */
import { RecentKeys } from '../recent-keys.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { stripedSession, type StripeSources } from './striped.js'
import { localState, replaceCorrupt } from './local-state.js'
import type { BlockGetter, BlockOrigin, BlockReader, GetBlockOptions, GetBytesOptions, ReadSession, ReadSessionOptions, ReadTarget } from './api.js'
import type { BlockStore } from '../blocks/index.js'
import type { BlockExchange } from '../exchange/index.js'
import type { Logger } from '../logger.js'
import type { StoredColdCopy } from '../namespace/index.js'
import type { CID } from 'multiformats/cid'

/** A reader of one cold copy, which its read session closes when the session ends. */
export interface ColdSource extends BlockGetter {
  /** Stop its GETs and read-ahead. */
  close: () => void
}

/** A cold tier's readers (the node's `TierService`). */
export interface ColdTiers {
  /** A reader of the cold copy of the file under `root` (each block hash-checked), closed when `signal` fires. */
  reader: (root: CID, copy: StoredColdCopy, options?: { signal?: AbortSignal }) => ColdSource
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
  /** Roots already logged as read from peers after their tier failed (one warning per file, not per block). */
  private readonly warnedSwarm = new RecentKeys(1024)

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

  session (target: ReadTarget, options: ReadSessionOptions = {}): ReadSession {
    const { tiers } = this.components
    // the session's own end: the work of its swarm sources (a striped read's fetches ahead, the swarm's
    // wants) stops when it closes, not only when the read's signal fires; the tier's reader is closed itself
    const ended = new AbortController()
    const scoped = { ...options, signal: options.signal === undefined ? ended.signal : AbortSignal.any([options.signal, ended.signal]) }
    const hot = this.hotSession(target, scoped)
    if (target.cold === undefined || tiers === undefined) return { getBytes: async (cid, o) => await hot.getBytes(cid, o), close: () => { ended.abort() } }
    // the tier's reader ends on the read's own signal, and on close
    const cold = tiers.reader(target.root, target.cold, { signal: options.signal })
    const getter = this.coldAware(target, cold, hot, options, this.swarmAfterTier(target, scoped))
    return { getBytes: getter.getBytes, close: () => { ended.abort(); cold.close() } }
  }

  /**
   * For a cold-only file (its hot session is the local store alone): the
   * swarm, made on first use, asked only when the tier failed.
   */
  private swarmAfterTier (target: ReadTarget, options: ReadSessionOptions): (() => BlockGetter) | undefined {
    const { exchange } = this.components
    if (exchange === undefined || target.manifest !== undefined) return undefined
    const { signal, onProgress } = options
    const onBlock = onProgress === undefined ? undefined : (cid: CID, bytes: Uint8Array, from: BlockOrigin): void => { onProgress({ cid, bytes: bytes.byteLength, from }) }
    let swarm: BlockGetter | undefined
    return () => {
      swarm ??= exchange.session(target.root, { signal, onBlock, cacheBytes: options.keep === true ? Infinity : READ_CACHE_BYTES })
      return swarm
    }
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
   * `hot` first, the cold copy for blocks it cannot give, then `swarm` (when
   * given) for blocks the tier failed to give; the tier's error stands when
   * the swarm has none either. A block read from the tier or the swarm
   * replaces a corrupt local copy, and is kept here when `keep`.
   */
  private coldAware (target: ReadTarget, cold: BlockGetter, hot: BlockGetter, options: ReadSessionOptions, swarm?: () => BlockGetter): BlockGetter {
    const { blockstore } = this.components
    let tierDown: unknown
    return {
      getBytes: async (cid, opts) => {
        try {
          return await hot.getBytes(cid, opts)
        } catch (err: any) {
          if (!COLD_FALLBACK.has(err?.name) || opts?.signal?.aborted === true || options.signal?.aborted === true) throw err
        }
        // whatever the hot sources said, a local copy that fails its check is replaced below
        const corrupt = await localState(blockstore, cid) === 'corrupt'
        let bytes: Uint8Array
        try {
          // a tier that is down for this read is not asked again for every block
          if (tierDown !== undefined && swarm !== undefined) throw tierDown
          bytes = await cold.getBytes(cid, opts)
          options.onProgress?.({ cid, bytes: bytes.byteLength, from: 'cold' })
        } catch (err: any) {
          if (swarm === undefined || err?.name === 'AbortedError' || aborted(opts?.signal, options.signal)) throw err
          if (TIER_DOWN.has(err?.name)) tierDown ??= err
          bytes = await this.fromSwarm(target, cid, swarm(), err, opts)
          if (!corrupt) return bytes // the swarm session keeps what it fetched as a read does
        }
        if (corrupt) {
          this.log.warn({ cid: cid.toString(), root: target.root.toString() }, 'corrupt local copy replaced by a good one (cold tier or peer)')
          await replaceCorrupt(blockstore, cid, bytes)
        } else if (options.keep === true) await blockstore.put(cid, bytes)
        return bytes
      }
    }
  }

  /**
   * A block of a cold file whose tier read failed with `tierError`, from
   * the swarm; the tier's error is thrown again when no peer has it.
   */
  private async fromSwarm (target: ReadTarget, cid: CID, swarm: BlockGetter, tierError: unknown, opts?: GetBytesOptions): Promise<Uint8Array> {
    try {
      const bytes = await swarm.getBytes(cid, opts)
      if (!this.warnedSwarm.has(target.root.toString())) {
        this.warnedSwarm.add(target.root.toString())
        this.log.warn({ root: target.root.toString(), err: (tierError as Error)?.message }, 'cold copy failed: reading the file from peers')
      }
      return bytes
    } catch (err: any) {
      if (NOT_IN_SWARM.has(err?.name)) throw tierError
      throw err
    }
  }
}

/** Whether either signal fired. */
function aborted (...signals: Array<AbortSignal | undefined>): boolean {
  return signals.some(s => s?.aborted === true)
}

/** Tier errors that hold for the whole copy (not one damaged block): the rest of a read goes to the swarm at once. */
const TIER_DOWN = new Set(['TierUnreachableError', 'TierCredentialsError', 'TierBucketNotFoundError', 'TierObjectNotFoundError', 'TierRequestError'])

/** Errors of the swarm that mean "no peer has it": the tier's error is the one to report then. */
const NOT_IN_SWARM = new Set(['NotFoundError', 'BlockUnavailableError', 'RequestTimeoutError', 'PeerUnavailableError', 'InvalidBlockError', 'CorruptBlockError'])

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
