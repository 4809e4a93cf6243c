/**
 * Coding stripes from a file's leaves as they come: leaves are grouped k at
 * a time in the order given, each full group's m parity shards are computed
 * and stored at once, and {@link StripeWriter.finish} codes the last (short)
 * stripe and writes the manifest. Stripes are coded by a {@link StripeCoder}
 * (on a worker thread in a daemon): several are coded at once while the
 * caller goes on (up to {@link CODING_WINDOW_BYTES} of leaves and parity),
 * and their parity is stored in file order.
 *
 * The import feeds it the leaves it has just hashed (no read-back, no
 * second hash); the encoder of a stored file feeds it leaves it read back
 * and checked (see encoder.ts).
 *
 * @module
 */
import { checkCoding, MAX_SHARD_BYTES, type Stripe } from '../../protocol/durability.js'
import { InvalidArgumentError } from '../errors.js'
import { buildManifest, type Block, type EncodedStripe } from './stripes.js'
import { CODING_WINDOW_BYTES, type InFlightMeter } from './in-flight.js'
import type { StripeCoder } from './parity-pool.js'
import type { BlockStore } from '../blocks/index.js'
import type { CID } from 'multiformats/cid'

/** What a {@link StripeWriter} needs. */
export interface StripeWriterInit {
  k: number
  m: number
  /** Codes one stripe (parity pool, or the main thread's coder). */
  code: StripeCoder
  /** Where parity and manifest blocks are written. */
  blockstore: Pick<BlockStore, 'put'>
  signal?: AbortSignal
  /** Called after each stripe is stored, with the number stored so far. */
  onStripe?: (stored: number) => void
  /**
   * Called with each stripe as it is stored, its leaves and parity still in
   * memory (what streamed placement pushes); awaited, so a slow consumer
   * holds the writer back.
   */
  onStored?: (stored: StoredStripe) => Promise<void>
  /** Counts the leaves and parity held here, from the leaf's arrival until its stripe is stored. */
  meter?: InFlightMeter
}

/** A stripe just stored: its index in the file, its record, its data leaves and parity blocks. */
export interface StoredStripe {
  index: number
  stripe: Stripe
  data: Block[]
  parity: Block[]
}

/** Codes stripes from leaves in file order and writes their parity, then the manifest. */
export class StripeWriter {
  private group: Block[] = []
  private readonly stripes: Stripe[] = []
  private readonly coding: Array<{ job: Promise<EncodedStripe>, data: Block[], bytes: number }> = []
  /** Bytes of leaves and (expected) parity of the stripes in {@link coding}. */
  private codingBytes = 0

  /** @throws {InvalidPolicyError} when k or m is out of bounds */
  constructor (private readonly init: StripeWriterInit) {
    checkCoding(init.k, init.m)
  }

  /** Stripes stored so far. */
  get stored (): number { return this.stripes.length }

  /**
   * Take the next leaf of the file (a raw sha2-256 block whose CID the
   * caller has checked); a full group goes to the coder, and while more than
   * {@link CODING_WINDOW_BYTES} are being coded (and more than one stripe),
   * the oldest ones' parity is stored before this resolves.
   *
   * @throws {InvalidArgumentError} for a leaf over 4 MiB
   */
  async add (leaf: Block): Promise<void> {
    if (leaf.bytes.byteLength > MAX_SHARD_BYTES) throw new InvalidArgumentError(`leaf ${leaf.cid.toString()} of ${leaf.bytes.byteLength} bytes > ${MAX_SHARD_BYTES}`)
    this.group.push(leaf)
    this.init.meter?.add(leaf.bytes.byteLength)
    if (this.group.length === this.init.k) await this.dispatch()
  }

  /**
   * Code the last stripe and write the manifest of the file `root` of `size`
   * bytes (pages, then root). Returns the manifest's CID. Fsyncing is the
   * caller's (`blockstore.commit()`).
   *
   * @throws {InvalidManifestError} when the stripes break the manifest's rules
   */
  async finish (root: CID, size: number): Promise<CID> {
    if (this.group.length > 0) await this.dispatch()
    while (this.coding.length > 0) await this.storeOldest()
    const manifest = buildManifest(root, this.init.k, this.init.m, size, this.stripes)
    for (const block of manifest.blocks) await this.init.blockstore.put(block.cid, block.bytes, { signal: this.init.signal })
    return manifest.cid
  }

  /** Send the group to the coder; past the window, store the oldest stripes coded. */
  private async dispatch (): Promise<void> {
    const { k, m, code, meter } = this.init
    const batch = this.group
    this.group = []
    const job = code(batch, k, m)
    job.catch(() => {}) // surfaced when stored; never unhandled if the writer stops early
    const leaves = batch.reduce((sum, b) => sum + b.bytes.byteLength, 0)
    // the parity to come: m shards as long as the longest leaf
    const parity = m * Math.max(...batch.map(b => b.bytes.byteLength))
    meter?.add(parity)
    this.coding.push({ job, data: batch, bytes: leaves + parity })
    this.codingBytes += leaves + parity
    while (this.coding.length > 1 && this.codingBytes > CODING_WINDOW_BYTES) await this.storeOldest()
  }

  /** Store the parity of the oldest stripe being coded (file order). */
  private async storeOldest (): Promise<void> {
    const { blockstore, signal, meter } = this.init
    const { job, data, bytes } = this.coding.shift() as { job: Promise<EncodedStripe>, data: Block[], bytes: number }
    this.codingBytes -= bytes
    const { stripe, parity } = await job
    const stored = new Set(stripe.data.map(String))
    for (const block of parity) {
      // a copy of a block stored already (replicas: the parity is the leaf) is not written again
      const key = block.cid.toString()
      if (stored.has(key)) continue
      stored.add(key)
      await blockstore.put(block.cid, block.bytes, { signal })
    }
    this.stripes.push(stripe)
    this.init.onStripe?.(this.stripes.length)
    // let go here; what streamed placement queues for peers it counts itself
    meter?.take(bytes)
    await this.init.onStored?.({ index: this.stripes.length - 1, stripe, data, parity })
  }
}
