/**
 * Reed-Solomon parity on a worker thread. Coding a stripe is pure CPU
 * (~550 MB/s with the wasm coder, one core); on the main thread it stalls
 * the import that feeds it, while the second core of a small machine idles.
 * Measured on 2 cores (docs/benchmarks.md): the coded add runs faster with
 * the parity of the next stripes coded on a worker while the main thread
 * chunks, hashes and stores the leaves.
 *
 * The mechanism: a piscina pool (one thread on a 2-core machine; idle
 * threads exit and never keep the process alive) runs parity-worker.ts; the
 * leaves are copied to it, the parity and its sha-256 digests come back in
 * one moved buffer, and the stripe record is built here. Copies (k = 1,
 * `replicas:N`) need no coding and stay on the main thread.
 *
 * The same threads rebuild a degraded read's missing leaves
 * ({@link ParityPool.rebuild}): decoding and hashing a stripe on the main
 * thread took as much of it as the read's transport did (docs/benchmarks.md,
 * "Degraded reads decoded on the parity worker").
 *
 * @module
 */
import { availableParallelism } from 'node:os'
import { Piscina } from 'piscina'
import { shardSizeOf, type Stripe } from '../../protocol/durability.js'
import { rawCIDOfDigest } from '../blocks/verify.js'
import { workerFile } from '../package-files.js'
import { encodeStripe, rebuildPlan, rebuiltLeafMismatch, type Block, type EncodedStripe } from './stripes.js'
import type { ErasureCoder } from './erasure.js'
import type { ParityTask, RebuildTask } from './parity-worker.js'

/** Codes one stripe from 1..k leaves (in file order) into its record and parity blocks. */
export type StripeCoder = (leaves: Block[], k: number, m: number) => Promise<EncodedStripe>

/** A stripe coder on the main thread (the wasm coder, synchronous). */
export function inThreadCoder (coder: ErasureCoder): StripeCoder {
  return async (leaves, k, m) => encodeStripe(leaves, k, m, coder)
}

/** Codes stripes on a worker thread; see the module comment. */
export class ParityPool {
  private pool: Piscina | undefined

  /** @param coder - the main thread's coder, for copies (k = 1) */
  constructor (private readonly coder: () => Promise<ErasureCoder>) {}

  /** Code one stripe: parity on the worker, the record here. */
  readonly code: StripeCoder = async (leaves, k, m) => {
    if (k === 1) return encodeStripe(leaves, k, m, await this.coder())
    const sizes = leaves.map(l => l.bytes.byteLength)
    const shardSize = shardSizeOf(sizes)
    const task: ParityTask = { leaves: leaves.map(l => own(l.bytes)), shardSize, k, m }
    const out: Uint8Array = await this.threads().run(task)
    const parity: Block[] = Array.from({ length: m }, (_, i) => {
      const digest = out.subarray(m * shardSize + i * 32, m * shardSize + (i + 1) * 32)
      return { cid: rawCIDOfDigest(digest), bytes: out.subarray(i * shardSize, (i + 1) * shardSize) }
    })
    const stripe: Stripe = { data: leaves.map(l => l.cid), sizes, shardSize, parity: parity.map(p => p.cid) }
    return { stripe, parity }
  }

  /**
   * The data leaves of `stripe` (unpadded, file order) from any k of its
   * shards (index → bytes: data leaves unpadded, parity whole), the missing
   * ones rebuilt on a worker and checked against their CIDs there and here.
   * The shards given must be checked already (the block store and the
   * exchange check every block they give).
   *
   * @throws {StripeUnavailableError} when fewer than k shards are available
   * @throws {InvalidBlockError} when a rebuilt leaf does not match its CID
   * @throws {InvalidManifestError} when the stripe is malformed for k+m
   */
  async rebuild (stripe: Stripe, k: number, m: number, shards: Map<number, Uint8Array>): Promise<Uint8Array[]> {
    const { slots, given, missing } = rebuildPlan(stripe, k, m, shards)
    if (missing.length === 0) return given as Uint8Array[]
    const want = missing.map(index => ({ index, size: stripe.sizes[index] }))
    const task: RebuildTask = { slots: slots.map(s => s === undefined ? undefined : own(s)), k, m, want }
    const out: Uint8Array = await this.threads().run(task, { name: 'rebuild' })
    const total = want.reduce((sum, w) => sum + w.size, 0)
    const leaves = [...given]
    let at = 0
    want.forEach(({ index, size }, i) => {
      const cid = stripe.data[index]
      if (Buffer.compare(out.subarray(total + i * 32, total + (i + 1) * 32), cid.multihash.digest) !== 0) throw rebuiltLeafMismatch(index, cid)
      leaves[index] = out.subarray(at, at + size)
      at += size
    })
    return leaves as Uint8Array[]
  }

  /** The pool, started on first use. */
  private threads (): Piscina {
    this.pool ??= new Piscina({
      filename: workerFile('parity-worker'),
      minThreads: 0,
      maxThreads: Math.max(1, Math.min(4, availableParallelism() - 1)),
      idleTimeout: 10_000,
      // an idle worker waits on its event loop, not blocked in Atomics.wait
      useAtomics: false
    })
    return this.pool
  }

  /** Stop the worker threads (a later {@link code} starts them again). */
  async close (): Promise<void> {
    const pool = this.pool
    this.pool = undefined
    await pool?.destroy()
  }
}

/** The bytes in a buffer of their own: a view into a larger buffer would send all of it to the worker. */
function own (bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()
}
