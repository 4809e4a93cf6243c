/**
 * Coding stripes from a file's leaves as they come: leaves are grouped k at
 * a time in the order given, each full group's m parity shards are computed
 * and stored at once, and {@link StripeWriter.finish} codes the last (short)
 * stripe and writes the manifest. At most one stripe's leaves are held.
 *
 * The import feeds it the leaves it has just hashed (no read-back, no
 * second hash); the encoder of a stored file feeds it leaves it read back
 * and checked (see encoder.ts).
 *
 * @module
 */
import { checkCoding, MAX_SHARD_BYTES, type Stripe } from '../../protocol/durability.js'
import { InvalidArgumentError } from '../errors.js'
import { buildManifest, encodeStripe, type Block } from './stripes.js'
import type { ErasureCoder } from './erasure.js'
import type { BlockStore } from '../blocks/index.js'
import type { CID } from 'multiformats/cid'

/** What a {@link StripeWriter} needs. */
export interface StripeWriterInit {
  k: number
  m: number
  coder: ErasureCoder
  /** Where parity and manifest blocks are written. */
  blockstore: Pick<BlockStore, 'put'>
  signal?: AbortSignal
  /** Called after each stripe is stored, with the number stored so far. */
  onStripe?: (stored: number) => void
}

/** Codes stripes from leaves in file order and writes their parity, then the manifest. */
export class StripeWriter {
  private group: Block[] = []
  private readonly stripes: Stripe[] = []

  /** @throws {InvalidPolicyError} when k or m is out of bounds */
  constructor (private readonly init: StripeWriterInit) {
    checkCoding(init.k, init.m)
  }

  /** Stripes stored so far. */
  get stored (): number { return this.stripes.length }

  /**
   * Take the next leaf of the file (a raw sha2-256 block whose CID the
   * caller has checked); a full group is coded and its parity stored before
   * this resolves.
   *
   * @throws {InvalidArgumentError} for a leaf over 4 MiB
   */
  async add (leaf: Block): Promise<void> {
    if (leaf.bytes.byteLength > MAX_SHARD_BYTES) throw new InvalidArgumentError(`leaf ${leaf.cid.toString()} of ${leaf.bytes.byteLength} bytes > ${MAX_SHARD_BYTES}`)
    this.group.push(leaf)
    if (this.group.length === this.init.k) await this.flush()
  }

  /**
   * Code the last stripe and write the manifest of the file `root` of `size`
   * bytes (pages, then root). Returns the manifest's CID. Fsyncing is the
   * caller's (`blockstore.commit()`).
   *
   * @throws {InvalidManifestError} when the stripes break the manifest's rules
   */
  async finish (root: CID, size: number): Promise<CID> {
    if (this.group.length > 0) await this.flush()
    const manifest = buildManifest(root, this.init.k, this.init.m, size, this.stripes)
    for (const block of manifest.blocks) await this.init.blockstore.put(block.cid, block.bytes, { signal: this.init.signal })
    return manifest.cid
  }

  private async flush (): Promise<void> {
    const { k, m, coder, blockstore, signal } = this.init
    const batch = this.group
    this.group = []
    const { stripe, parity } = encodeStripe(batch, k, m, coder)
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
  }
}
