/**
 * Encoding a file into stripes: its leaves are grouped k at a time, each
 * group's m parity shards are computed and stored, and the manifest that
 * lists the stripes is written. Owns the erasure coder (loaded once).
 *
 * @module
 */
import { CustomProgressEvent } from 'progress-events'
import { codingOf, formatPolicy, parsePolicy, type Stripe } from '../../protocol/durability.js'
import { AbortedError } from '../errors.js'
import { createErasureCoder, type ErasureCoder } from './erasure.js'
import { checkLeaf, countLeaves, fileLeaves, rebuildStripe } from './stripes.js'
import type { BlockGetter } from '../reads/api.js'
import { StripeWriter } from './stripe-writer.js'
import { inThreadCoder, ParityPool, type StripeCoder } from './parity-pool.js'
import type { DurabilityParts } from './components.js'
import type { FilePin } from '../namespace/index.js'
import type { CID } from 'multiformats/cid'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

/** Options of {@link Encoder.encode} and {@link Placer.place}. */
export interface FsyncOptions {
  /**
   * Fsync what the call wrote before it resolves. `false` leaves that to one
   * `sync()` of the service for a whole batch of calls. @default true
   */
  sync?: boolean
}

/** Progress of an encoding: stripes coded and stored so far, of `total`. */
export type EncodeProgressEvents = ProgressEvent<'shoal:durability:encode', { stripes: number, total: number }>

/** Options of {@link Encoder.encode}. */
export interface EncodeOptions extends FsyncOptions, ProgressOptions<EncodeProgressEvents> {
  signal?: AbortSignal
  /** Where the file's leaves are read. @default the local store (parity and manifest blocks always go to it) */
  getter?: BlockGetter
}

/** Settings of an {@link Encoder}. */
export interface EncoderInit {
  /** Code parity on worker threads (a {@link ParityPool}). @default true */
  workers?: boolean
}

/** Encodes files into stripes, with one erasure coder (and one parity pool) shared by every user. */
export class Encoder {
  private coder?: Promise<ErasureCoder>
  private readonly pool?: ParityPool

  constructor (private readonly components: Pick<DurabilityParts, 'blockstore' | 'holdings' | 'clock'>, init: EncoderInit = {}) {
    if (init.workers !== false) this.pool = new ParityPool(async () => await this.getCoder())
  }

  /** How stripes are coded: on the parity pool's workers, else with `coder` on this thread. */
  stripeCoder (coder: ErasureCoder): StripeCoder {
    return this.pool?.code ?? inThreadCoder(coder)
  }

  /**
   * The data leaves of `stripe` from any k of its shards (index → bytes,
   * checked already: from the block store or the exchange), the missing ones
   * rebuilt and checked against their CIDs: on the parity pool's workers,
   * else on this thread (which checks the given shards again).
   *
   * @throws {StripeUnavailableError} when fewer than k shards are available
   * @throws {InvalidBlockError} when a rebuilt leaf does not match its CID
   */
  async rebuildStripe (stripe: Stripe, k: number, m: number, shards: Map<number, Uint8Array>): Promise<Uint8Array[]> {
    if (this.pool !== undefined) return await this.pool.rebuild(stripe, k, m, shards)
    return rebuildStripe(stripe, k, m, shards, await this.getCoder())
  }

  /** Stop the parity pool's threads. */
  async close (): Promise<void> {
    await this.pool?.close()
  }

  /** The erasure coder, loaded once (reads and repairs use it too). */
  async getCoder (): Promise<ErasureCoder> {
    this.coder ??= createErasureCoder()
    return await this.coder
  }

  /**
   * Encode the file under `root` for `policy` and return the pin for its
   * namespace record. `none` needs no work. `replicas:N` is coded as
   * `1+(N-1)`: with one data shard Reed-Solomon parity is a copy (see
   * docs/durability.md). With `onProgress`, the skeleton is walked first to
   * count the stripes, then one event follows each stripe stored.
   *
   * @throws {AbortedError} when `signal` aborts
   */
  async encode (root: CID, size: number, policyText: string, options: EncodeOptions = {}): Promise<FilePin> {
    const { signal, onProgress } = options
    const policy = parsePolicy(policyText)
    const coding = codingOf(policy)
    if (coding === undefined) return { policy: formatPolicy(policy) }
    const { blockstore, holdings, clock } = this.components
    const getter = options.getter ?? blockstore
    const coder = await this.getCoder()
    const total = onProgress === undefined ? 0 : Math.ceil(await countLeaves(getter, root, signal) / coding.k)
    const writer = new StripeWriter({
      ...coding,
      code: this.stripeCoder(coder),
      blockstore,
      signal,
      onStripe: stripes => onProgress?.(new CustomProgressEvent('shoal:durability:encode', { stripes, total }))
    })
    for await (const leaf of fileLeaves(getter, root, signal)) {
      if (signal?.aborted === true) throw new AbortedError('encode aborted')
      await checkLeaf(leaf)
      await writer.add(leaf)
    }
    const manifest = await writer.finish(root, size)
    const sync = options.sync !== false
    if (sync) await blockstore.commit()
    // coding is deterministic: content a peer placed here already codes to the manifest this node holds shards
    // of, and stays that peer's to place (this node, made its origin, placed it again over whoever was live)
    const known = await holdings.manifest(manifest)
    await holdings.noteManifest(manifest, { root: root.toString(), k: coding.k, m: coding.m, role: known?.role ?? 'origin', since: clock.now() }, sync)
    return { policy: formatPolicy(policy), manifest: manifest.toString() }
  }
}
