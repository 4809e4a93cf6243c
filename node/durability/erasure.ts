/**
 * Reed-Solomon erasure coding over GF(2^8), systematic: the k data shards are
 * kept as they are and m parity shards are added; any k of the k+m shards
 * give the data back.
 *
 * The coder is `@digitaldefiance/reed-solomon-erasure.wasm` (the Rust crate
 * `reed-solomon-erasure` compiled to WebAssembly: no native build step). Its
 * parity bytes are an on-disk format, pinned by golden vectors in
 * `test/fixtures/erasure/`; the math is in `docs/erasure-coding.md`.
 *
 * Two defects of the wasm build are worked around here:
 * - it panics (a trap that leaks its buffers) on input it does not expect
 *   (e.g. zero-length shards), so every argument is checked before it is
 *   called: callers get typed errors, never a trap;
 * - its package's wrapper of `reconstruct` frees a buffer the module has
 *   freed already, after which the instance's later reconstructions fail
 *   for most patterns of loss; reconstructions here call the module
 *   directly, as it expects (wasm-coder.ts), on one long-lived instance of
 *   their own.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { ReedSolomonErasure } from '@digitaldefiance/reed-solomon-erasure.wasm'
import { InvalidArgumentError, ShoalError, StripeUnavailableError } from '../errors.js'
import { MAX_K, MAX_M, MAX_SHARDS } from '../../protocol/durability.js'
import { instantiate, reconstructInPlace, type CoderExports } from './wasm-coder.js'

/** Encode and rebuild stripes of equal-length shards. Synchronous: the work is CPU-bound and short (~1 GB/s). */
export interface ErasureCoder {
  /**
   * The m parity shards (fresh buffers) of k equal-length data shards
   * (1 ≤ k ≤ MAX_K, 1 ≤ m ≤ MAX_M, k+m ≤ MAX_SHARDS). Zero-length shards give
   * zero-length parity.
   *
   * @throws {InvalidArgumentError} for bad counts or unequal lengths
   */
  encode: (data: Uint8Array[], m: number) => Uint8Array[]
  /**
   * Given k+m slots (undefined = missing; at least k present, equal lengths),
   * return the k data shards: the present ones as given, the missing ones
   * rebuilt into fresh buffers.
   *
   * @throws {StripeUnavailableError} when fewer than k are present
   * @throws {InvalidArgumentError} for bad counts or unequal lengths
   */
  reconstruct: (shards: Array<Uint8Array | undefined>, k: number, m: number) => Uint8Array[]
}

/** The wasm coder failed in a way the checks above it should have prevented. */
export class ErasureCoderError extends ShoalError {
  override name = 'ErasureCoderError'
}

/** The wasm bytes, the instance every coder of the process encodes with, and the one it rebuilds with. */
interface Wasm { bytes: Uint8Array, encoder: ReedSolomonErasure, rebuilder: CoderExports }

let loading: Promise<Wasm> | undefined
let reading: Promise<Uint8Array> | undefined

/** The wasm module's bytes, read once per process (each coding instance is made from them). */
export async function loadWasmBytes (): Promise<Uint8Array> {
  const require = createRequire(import.meta.url)
  reading ??= readFile(require.resolve('@digitaldefiance/reed-solomon-erasure.wasm/wasm'))
  reading.catch(() => { reading = undefined }) // a failed read may be retried
  return await reading
}

/** Load (once per process) the wasm module. */
async function loadWasm (): Promise<Wasm> {
  const bytes = await loadWasmBytes()
  return { bytes, encoder: ReedSolomonErasure.fromBytes(bytes), rebuilder: instantiate(bytes) }
}

/**
 * The erasure coder. The wasm module is read on the first call and shared
 * by every coder of the process.
 */
export async function createErasureCoder (): Promise<ErasureCoder> {
  loading ??= loadWasm()
  loading.catch(() => { loading = undefined }) // a failed load may be retried
  const wasm = await loading
  return {
    encode: (data, m) => encode(wasm, data, m),
    reconstruct: (shards, k, m) => reconstruct(wasm, shards, k, m)
  }
}

/**
 * Check a stripe's shape: 1 ≤ k ≤ MAX_K, 1 ≤ m ≤ MAX_M, k+m ≤ MAX_SHARDS.
 *
 * @throws {InvalidArgumentError} otherwise
 */
export function checkCounts (k: number, m: number): void {
  if (!Number.isSafeInteger(k) || k < 1 || k > MAX_K) throw new InvalidArgumentError(`k must be an integer in 1..${MAX_K}, got ${String(k)}`)
  if (!Number.isSafeInteger(m) || m < 1 || m > MAX_M) throw new InvalidArgumentError(`m must be an integer in 1..${MAX_M}, got ${String(m)}`)
  if (k + m > MAX_SHARDS) throw new InvalidArgumentError(`k+m must be at most ${MAX_SHARDS}, got ${k + m}`)
}

/** The common length of the given shards. */
function commonLength (shards: ReadonlyArray<Uint8Array | undefined>): number {
  let length: number | undefined
  for (const shard of shards) {
    if (shard === undefined) continue
    if (!(shard instanceof Uint8Array)) throw new InvalidArgumentError('a shard is not bytes')
    length ??= shard.byteLength
    if (shard.byteLength !== length) throw new InvalidArgumentError(`shards of unequal lengths (${length} and ${shard.byteLength} bytes)`)
  }
  return length ?? 0
}

function check (code: number, what: string): void {
  if (code !== ReedSolomonErasure.RESULT_OK) {
    throw new ErasureCoderError(`${what} failed: ${ReedSolomonErasure.getResultMessage(code)}`)
  }
}

function encode (wasm: Wasm, data: Uint8Array[], m: number): Uint8Array[] {
  if (!Array.isArray(data)) throw new InvalidArgumentError('data shards are not a list')
  const k = data.length
  checkCounts(k, m)
  if (data.includes(undefined as unknown as Uint8Array)) throw new InvalidArgumentError('a data shard is missing')
  const size = commonLength(data)
  if (size === 0) return Array.from({ length: m }, () => new Uint8Array(0))
  const all = new Uint8Array(size * (k + m))
  data.forEach((shard, i) => all.set(shard, i * size))
  let code: number
  try {
    code = wasm.encoder.encode(all, k, m)
  } catch (err) {
    // a trap leaves the instance in an unknown state: never use it again
    wasm.encoder = ReedSolomonErasure.fromBytes(wasm.bytes)
    throw new ErasureCoderError(`encode trapped: ${String((err as Error)?.message ?? err)}`, { cause: err })
  }
  check(code, 'encode')
  return Array.from({ length: m }, (_, i) => all.slice((k + i) * size, (k + i + 1) * size))
}

/**
 * Check the k+m slots of a stripe to rebuild (undefined = missing): which
 * are present, and their common length.
 *
 * @throws {StripeUnavailableError} when fewer than k are present
 * @throws {InvalidArgumentError} for bad counts, slots or unequal lengths
 */
export function checkSlots (shards: ReadonlyArray<Uint8Array | undefined>, k: number, m: number): { present: boolean[], size: number } {
  checkCounts(k, m)
  if (!Array.isArray(shards) || shards.length !== k + m) throw new InvalidArgumentError(`expected ${k + m} shard slots, got ${Array.isArray(shards) ? shards.length : 'none'}`)
  const present = shards.map(s => s !== undefined && s !== null)
  const count = present.filter(Boolean).length
  if (count < k) throw new StripeUnavailableError(`only ${count} of ${k + m} shards present, ${k} needed`)
  return { present, size: commonLength(shards) }
}

function reconstruct (wasm: Wasm, shards: Array<Uint8Array | undefined>, k: number, m: number): Uint8Array[] {
  const { present, size } = checkSlots(shards, k, m)
  if (present.slice(0, k).every(Boolean)) return shards.slice(0, k) as Uint8Array[]
  if (size === 0) return shards.slice(0, k).map(s => s ?? new Uint8Array(0))
  const length = size * (k + m)
  const exports = wasm.rebuilder
  let pointer = 0
  let code: number
  try {
    pointer = exports.__wbindgen_malloc(length)
    code = reconstructInPlace(exports, { pointer, size, k, m, slots: shards })
  } catch (err) {
    // a trap leaves the instance in an unknown state: never use it again
    wasm.rebuilder = instantiate(wasm.bytes)
    throw new ErasureCoderError(`reconstruct trapped: ${String((err as Error)?.message ?? err)}`, { cause: err })
  }
  try {
    check(code, 'reconstruct')
    // the module may have grown its memory while rebuilding: a view of the buffer as it is now
    const memory = new Uint8Array(exports.memory.buffer, pointer, length)
    return Array.from({ length: k }, (_, i) => present[i] ? shards[i] as Uint8Array : memory.slice(i * size, (i + 1) * size))
  } finally {
    exports.__wbindgen_free(pointer, length)
  }
}
