/**
 * Reed-Solomon parity coded in place, inside the coder's own memory.
 *
 * Why: the wasm package's `encode` takes one buffer of all k+m shards, copies
 * it into the module's memory, codes, copies the parity back out, and frees
 * its copy; erasure.ts must first build that buffer (fresh, zero-filled) from
 * the data shards and then slice the parity out of it. For a 4+2 stripe of
 * 1 MiB shards that is about 16 MiB copied and 6 MiB of fresh pages for
 * 2 MiB of parity. Measured in a daemon during `add --wait` of 256 MiB on
 * eight nodes (docs/benchmarks.md, "Durability"), the parity worker spent
 * 2.2 CPU-s where the coder's own loops took 0.6: the rest was those copies
 * and first touches of fresh pages (about 11 µs a page on these machines).
 *
 * The mechanism: an arena owns one instance of the wasm module and one region
 * allocated once in its memory, as large as the largest stripe so far. The
 * data shards are copied straight into the region (zeros written only where a
 * shard is short or absent), the module codes the parity in place, and the
 * parity is handed back as views into the region, valid until the next call.
 * No buffer is allocated per stripe.
 *
 * A rebuild works the same way: the present shards are copied into the
 * region, the module rebuilds the missing data shards in place
 * (wasm-coder.ts: the call as the module expects it, which its package's
 * own wrapper gets wrong), and they are handed back as views.
 *
 * When it applies: on the parity worker (parity-worker.ts), one arena per
 * thread, for encoding and for the rebuilds of degraded reads (repair
 * rebuilds its shards with erasure.ts, on its long-lived instance).
 * The parity bytes are the module's, so they match erasure.ts's `encode` and
 * the golden vectors, and the rebuilt shards erasure.ts's `reconstruct`
 * (test/node/durability/parity-arena.test.ts).
 *
 * @module
 */
import { ReedSolomonErasure } from '@digitaldefiance/reed-solomon-erasure.wasm'
import { InvalidArgumentError } from '../errors.js'
import { checkCounts, checkSlots, ErasureCoderError, loadWasmBytes } from './erasure.js'
import { instantiate, reconstructInPlace, type CoderExports } from './wasm-coder.js'

/** Codes stripes' parity, and rebuilds their data shards, in place; see the module comment. Not shared between threads. */
export class ParityArena {
  private exports: CoderExports
  private pointer = 0
  private length = 0

  private constructor (private readonly bytes: Uint8Array) {
    this.exports = instantiate(bytes)
  }

  /** An arena with its own instance of the coder (the module's bytes are read once per process). */
  static async create (): Promise<ParityArena> {
    return new ParityArena(await loadWasmBytes())
  }

  /**
   * The m parity shards of `shardSize` bytes of one stripe of k data shards,
   * given as 1..k `data` (in order; shorter ones and missing ones are zeros
   * to `shardSize`). The shards returned are views into the arena: valid
   * until the next call, to be copied or hashed before it.
   *
   * @throws {InvalidArgumentError} for bad counts, a shard longer than `shardSize`, or a bad `shardSize`
   * @throws {ErasureCoderError} when the module fails (the arena then starts on a new instance)
   */
  encode (data: Uint8Array[], k: number, m: number, shardSize: number): Uint8Array[] {
    checkCounts(k, m)
    if (!Number.isSafeInteger(shardSize) || shardSize < 1) throw new InvalidArgumentError(`shard size must be a positive integer, got ${String(shardSize)}`)
    if (!Array.isArray(data) || data.length < 1 || data.length > k) throw new InvalidArgumentError(`expected 1..${k} data shards, got ${Array.isArray(data) ? data.length : 'none'}`)
    for (const shard of data) {
      if (!(shard instanceof Uint8Array)) throw new InvalidArgumentError('a data shard is not bytes')
      if (shard.byteLength > shardSize) throw new InvalidArgumentError(`a data shard of ${shard.byteLength} bytes > shard size ${shardSize}`)
    }
    const total = shardSize * (k + m)
    const region = this.region(total)
    for (let i = 0; i < k; i++) {
      const at = i * shardSize
      const shard = data[i]
      const used = shard === undefined ? 0 : shard.byteLength
      if (shard !== undefined) region.set(shard, at)
      if (used < shardSize) region.fill(0, at + used, at + shardSize)
    }
    let code: number
    try {
      code = this.exports.encode(this.pointer, total, k, m)
    } catch (err) {
      // a trap leaves the instance in an unknown state: never use it again
      this.reset()
      throw new ErasureCoderError(`encode trapped: ${String((err as Error)?.message ?? err)}`, { cause: err })
    }
    if (code !== ReedSolomonErasure.RESULT_OK) throw new ErasureCoderError(`encode failed: ${ReedSolomonErasure.getResultMessage(code)}`)
    // the module may have grown its memory while coding: views of the buffer as it is now
    const memory = new Uint8Array(this.exports.memory.buffer, this.pointer, total)
    return Array.from({ length: m }, (_, i) => memory.subarray((k + i) * shardSize, (k + i + 1) * shardSize))
  }

  /**
   * The k data shards of one stripe, given its k+m `slots` (undefined where a
   * shard is missing, at least k present, all of one length): the missing
   * ones rebuilt. The present ones are returned as given; the rebuilt ones
   * are views into the arena, valid until the next call.
   *
   * @throws {StripeUnavailableError} when fewer than k slots are present
   * @throws {InvalidArgumentError} for bad counts, slots or unequal lengths
   * @throws {ErasureCoderError} when the module fails (the arena then starts on a new instance)
   */
  reconstruct (slots: ReadonlyArray<Uint8Array | undefined>, k: number, m: number): Uint8Array[] {
    const { present, size } = checkSlots(slots, k, m)
    if (size === 0) return slots.slice(0, k).map(s => s ?? new Uint8Array(0))
    if (present.slice(0, k).every(Boolean)) return slots.slice(0, k) as Uint8Array[]
    const total = size * (k + m)
    this.region(total)
    let code: number
    try {
      code = reconstructInPlace(this.exports, { pointer: this.pointer, size, k, m, slots })
    } catch (err) {
      // a trap leaves the instance in an unknown state: never use it again
      this.reset()
      throw new ErasureCoderError(`reconstruct trapped: ${String((err as Error)?.message ?? err)}`, { cause: err })
    }
    if (code !== ReedSolomonErasure.RESULT_OK) throw new ErasureCoderError(`reconstruct failed: ${ReedSolomonErasure.getResultMessage(code)}`)
    // the module may have grown its memory while rebuilding: views of the buffer as it is now
    const memory = new Uint8Array(this.exports.memory.buffer, this.pointer, total)
    return Array.from({ length: k }, (_, i) => present[i] ? slots[i] as Uint8Array : memory.subarray(i * size, (i + 1) * size))
  }

  /** The arena's region, at least `length` bytes, as a view of the module's memory now. */
  private region (length: number): Uint8Array {
    if (length > this.length) {
      if (this.length > 0) this.exports.__wbindgen_free(this.pointer, this.length)
      this.length = 0
      this.pointer = this.exports.__wbindgen_malloc(length)
      this.length = length
    }
    return new Uint8Array(this.exports.memory.buffer, this.pointer, length)
  }

  private reset (): void {
    this.exports = instantiate(this.bytes)
    this.pointer = 0
    this.length = 0
  }
}
