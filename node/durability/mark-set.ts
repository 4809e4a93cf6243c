/**
 * The marks of a garbage collection: a Bloom filter over blocks'
 * multihashes, so that what a collection holds in memory does not grow with
 * the objects of the store (a `Set` of block keys took ~100 bytes a block,
 * a gigabyte for ten million blocks) but by {@link MARK_BITS_PER_BLOCK} bits
 * a block.
 *
 * A Bloom filter has no false negatives: a block added is always found. It
 * has false positives: a block never added is found with a small chance,
 * {@link MARK_FALSE_POSITIVE} when the filter holds as many blocks as it was
 * sized for. To a collection, a false positive is garbage kept until a later
 * collection, never a kept block lost. Each filter takes fresh random seeds,
 * so the next collection's false positives are other blocks: a garbage block
 * survives two collections in a row with the chance squared.
 *
 * Positions: two seeded 32-bit murmur3 hashes of the multihash bytes
 * (h1, h2), and bit i is (h1 + i·h2) mod m (Kirsch and Mitzenmacher,
 * "Less hashing, same performance"). Not the multihash digest itself: a
 * multihash need not be sha-256, and seeds must change the positions.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { murmur3x86 } from '../../protocol/murmur3.js'

/** Bits of the filter per block it is sized for. */
export const MARK_BITS_PER_BLOCK = 16

/** Hashes (bits set) per block: round(16 · ln 2), the best for 16 bits a block. */
export const MARK_HASHES = 11

/** Chance that a block never added is found, once the filter holds the blocks it was sized for: (1 − e^(−11/16))^11. */
export const MARK_FALSE_POSITIVE = 4.6e-4

/**
 * The smallest filter (bits): 1 MiB, so that a small store (up to half a
 * million blocks) gets more bits a block and practically no false positive.
 */
export const MARK_MIN_BITS = 8 * 1024 * 1024

/** The largest filter (bits, 512 MiB): positions are 32-bit hashes. Past 268 million blocks, false positives grow. */
export const MARK_MAX_BITS = 2 ** 32

/** Thrown for a mark set asked for with settings that make no filter. */
export class InvalidMarkSetError extends Error {
  override name = 'InvalidMarkSetError'
}

/** Options of {@link MarkSet}. */
export interface MarkSetOptions {
  /** Blocks the filter is sized for (the store's count); more may be added, at a higher false-positive rate. */
  blocks: number
  /** @default {@link MARK_BITS_PER_BLOCK} */
  bitsPerBlock?: number
  /** @default {@link MARK_HASHES} */
  hashes?: number
  /** @default {@link MARK_MIN_BITS} */
  minBits?: number
  /** The two hash seeds. @default random ones (each filter marks other false positives) */
  seeds?: readonly [number, number]
}

/** A set of blocks (by multihash) with false positives and no false negatives; see the module comment. */
export class MarkSet {
  /** Bits of the filter. */
  readonly bits: number
  /** Hashes per block. */
  readonly hashes: number
  private readonly words: Uint32Array
  private readonly seeds: readonly [number, number]
  private added = 0
  private set = 0

  constructor (options: MarkSetOptions) {
    const { blocks, bitsPerBlock = MARK_BITS_PER_BLOCK, hashes = MARK_HASHES, minBits = MARK_MIN_BITS } = options
    if (!Number.isFinite(blocks) || blocks < 0) throw new InvalidMarkSetError(`a mark set is sized for a count of blocks, not ${blocks}`)
    if (!Number.isInteger(hashes) || hashes < 1 || hashes > 32) throw new InvalidMarkSetError(`a mark set sets 1 to 32 bits a block, not ${hashes}`)
    if (!(bitsPerBlock > 0) || !(minBits >= 32)) throw new InvalidMarkSetError('a mark set needs bits')
    const wanted = Math.max(minBits, Math.ceil(blocks * bitsPerBlock))
    this.bits = Math.min(MARK_MAX_BITS, Math.ceil(wanted / 32) * 32)
    this.hashes = hashes
    this.words = new Uint32Array(this.bits / 32)
    const random = randomBytes(8)
    this.seeds = options.seeds ?? [random.readUInt32LE(0), random.readUInt32LE(4)]
  }

  /** Bytes of memory the filter takes. */
  get byteLength (): number { return this.words.byteLength }

  /**
   * Blocks added that were not found already: the blocks marked, less the
   * few a false positive made look added before (at most the
   * false-positive rate of them).
   */
  get size (): number { return this.added }

  /** Add the block `cid` names (by multihash). True when it was not found before. */
  add (cid: CID): boolean {
    const [h1, h2] = this.hashPair(cid)
    let fresh = false
    for (let i = 0; i < this.hashes; i++) {
      const bit = (h1 + i * h2) % this.bits
      const word = bit >>> 5
      const mask = 1 << (bit & 31)
      if ((this.words[word] & mask) === 0) {
        this.words[word] |= mask
        this.set++
        fresh = true
      }
    }
    if (fresh) this.added++
    return fresh
  }

  /** Whether the block `cid` names was added: always when it was, sometimes when not (a false positive). */
  has (cid: CID): boolean {
    const [h1, h2] = this.hashPair(cid)
    for (let i = 0; i < this.hashes; i++) {
      const bit = (h1 + i * h2) % this.bits
      if ((this.words[bit >>> 5] & (1 << (bit & 31))) === 0) return false
    }
    return true
  }

  /** The chance, now, that a block never added is found: the share of bits set to the power of the hashes. */
  falsePositiveRate (): number {
    return (this.set / this.bits) ** this.hashes
  }

  /** The two seeded hashes of the block's multihash; the second odd, so that its positions never repeat for a power-of-two size. */
  private hashPair (cid: CID): [number, number] {
    const bytes = cid.multihash.bytes
    return [murmur3x86(bytes, this.seeds[0]), (murmur3x86(bytes, this.seeds[1]) | 1) >>> 0]
  }
}

export { murmur3x86 }
