/**
 * FastCDC content-defined chunking (Xia et al., USENIX ATC 2016), written by
 * hand: a 32-bit gear rolling hash, cut-point skipping up to `minSize`, and
 * normalized chunking level 2 (a mask with two more bits before `avgSize`, one
 * with two fewer bits after it).
 *
 * Chunk boundaries are part of Shoal's on-disk format: they decide the leaf
 * blocks and therefore the CIDs of every file imported with this chunker. The
 * gear table, the masks and the cut rule below must never change without a
 * new chunker name. See docs/chunking.md.
 */

import { nativeHash, type NativeHash } from '../../blocks/native-hash.js'
import { createHash } from 'node:crypto'
import type { Chunker } from 'ipfs-unixfs-importer/chunker'
import { InvalidArgumentError } from '../../errors.js'

/** Size limits of a FastCDC chunker, in bytes. */
export interface FastCDCOptions {
  /**
   * Smallest chunk (only the last chunk of a stream may be smaller). Bytes
   * before it are not hashed at all (cut-point skipping).
   * @default 262144 (256 KiB)
   */
  minSize: number
  /**
   * Normal chunk size: the point where the hard mask switches to the easy one.
   * Need not be a power of two; the mask width uses round(log2(avgSize)).
   * @default 1048576 (1 MiB)
   */
  avgSize: number
  /**
   * Largest chunk: a cut is forced here when no boundary was found.
   * @default 2097152 (2 MiB, the largest block IPFS bitswap accepts)
   */
  maxSize: number
}

/** Default FastCDC sizes: 256 KiB / 1 MiB / 2 MiB. */
export const FASTCDC_DEFAULTS: Readonly<FastCDCOptions> = Object.freeze({
  minSize: 256 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 2 * 1024 * 1024
})

/** Smallest accepted `minSize`, in bytes. */
export const FASTCDC_MIN_SIZE_LIMIT = 64

/** Largest accepted `maxSize`, in bytes (4 MiB). */
export const FASTCDC_MAX_SIZE_LIMIT = 4 * 1024 * 1024

/** Validated sizes plus the two masks derived from `avgSize`. */
export interface FastCDCParams extends FastCDCOptions {
  /** Hard mask (round(log2(avgSize)) + 2 top bits), used before `avgSize`. */
  maskS: number
  /** Easy mask (round(log2(avgSize)) - 2 top bits), used from `avgSize` on. */
  maskL: number
}

/** Label hashed with each index to derive the gear table (format constant). */
export const GEAR_LABEL = 'shoal-fastcdc-gear-v1:'

/**
 * GEAR[i] = first 4 bytes, big-endian, of sha256(GEAR_LABEL + i) for i in
 * 0..255 (i in decimal ASCII). Stored as int32 so the hot loop stays in Smi /
 * int32 arithmetic. Exported for the tests (native/hash/gear.c is given it):
 * never to be changed.
 */
export const GEAR: Int32Array = buildGear()

function buildGear (): Int32Array {
  const gear = new Int32Array(256)
  for (let i = 0; i < 256; i++) {
    gear[i] = createHash('sha256').update(GEAR_LABEL + String(i)).digest().readInt32BE(0)
  }
  return gear
}

/** A mask of the `bits` most significant bits of a 32-bit word, as int32. */
function topBits (bits: number): number {
  return (0xffffffff << (32 - bits)) | 0
}

function checkSize (name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new InvalidArgumentError(`fastcdc: ${name} must be an integer number of bytes, got ${String(value)}`)
  }
  return value
}

/**
 * Validate FastCDC sizes (missing ones come from {@link FASTCDC_DEFAULTS}) and
 * derive the normalization masks.
 *
 * @throws InvalidArgumentError unless all sizes are integers with
 * 64 <= minSize <= avgSize <= maxSize <= 4 MiB.
 */
export function fastcdcParams (options: Partial<FastCDCOptions> = {}): FastCDCParams {
  const minSize = checkSize('minSize', options.minSize ?? FASTCDC_DEFAULTS.minSize)
  const avgSize = checkSize('avgSize', options.avgSize ?? FASTCDC_DEFAULTS.avgSize)
  const maxSize = checkSize('maxSize', options.maxSize ?? FASTCDC_DEFAULTS.maxSize)
  if (!(FASTCDC_MIN_SIZE_LIMIT <= minSize && minSize <= avgSize && avgSize <= maxSize && maxSize <= FASTCDC_MAX_SIZE_LIMIT)) {
    throw new InvalidArgumentError(
      `fastcdc: sizes must satisfy ${FASTCDC_MIN_SIZE_LIMIT} <= minSize <= avgSize <= maxSize <= ${FASTCDC_MAX_SIZE_LIMIT}, ` +
      `got minSize=${minSize} avgSize=${avgSize} maxSize=${maxSize}`
    )
  }
  // 64 <= avgSize <= 4 MiB, so bits is in 6..22 and both masks fit in 32 bits
  const bits = Math.round(Math.log2(avgSize))
  return { minSize, avgSize, maxSize, maskS: topBits(bits + 2), maskL: topBits(bits - 2) }
}

/**
 * Find the end of the chunk that starts at `start`, given that the bytes
 * `buf[start..end)` are all the data available (either at least `maxSize`
 * bytes, or everything up to the end of the stream). Pure: the result depends
 * only on `buf[start..min(end, start + maxSize))` and `params`.
 *
 * Rule: if `end - start <= minSize` the chunk is everything. Otherwise the gear
 * hash h starts at 0 at offset `minSize`; for each byte b at offset i,
 * `h = (h << 1) + GEAR[b]` (mod 2^32) and the chunk ends after that byte if
 * `h & mask == 0`, with `mask = maskS` for i < avgSize and `maskL` after. With
 * no hit the chunk ends at `min(end, start + maxSize)`.
 *
 * @returns the absolute index one past the chunk's last byte, in (start, end]
 */
export function findCutPoint (buf: Uint8Array, start: number, end: number, params: FastCDCParams): number {
  const length = end - start
  if (length <= params.minSize) return end
  const limit = length > params.maxSize ? start + params.maxSize : end
  const first = start + params.minSize
  const center = Math.min(start + params.avgSize, limit)
  const cut = gearScan(buf, first, first, center, params.maskS)
  if (cut >= 0) return cut
  // the hash only depends on the last 32 bytes, so re-deriving it from them
  // continues the same hash sequence
  const rest = gearScan(buf, Math.max(first, center - 32), center, limit, params.maskL)
  return rest >= 0 ? rest : limit
}

/**
 * Hash `buf[warm..from)` without testing, then hash `buf[from..to)` and stop
 * after the first byte where `h & mask == 0`: in C where the sha-256 addon is
 * built (native/hash/gear.c: ~4–8 × faster), else {@link gearScanScript}. A
 * short scan stays in JavaScript, where a call into the addon would cost
 * more than it saves.
 *
 * @returns the index after that byte, or -1 if there is none
 */
function gearScan (buf: Uint8Array, warm: number, from: number, to: number, mask: number): number {
  nativeScan ??= nativeHash()?.gearScan ?? null
  if (nativeScan !== null && to - warm >= NATIVE_SCAN_MIN) return nativeScan(buf, GEAR, warm, from, to, mask)
  return gearScanScript(buf, warm, from, to, mask)
}

/** The addon's scan, once looked for (null: not built). */
let nativeScan: NonNullable<NativeHash['gearScan']> | null | undefined

/** Scans of fewer bytes stay in JavaScript. */
const NATIVE_SCAN_MIN = 4096

/** {@link gearScan} in JavaScript (exported for the tests that hold the addon's scan to it). */
export function gearScanScript (buf: Uint8Array, warm: number, from: number, to: number, mask: number): number {
  const gear = GEAR
  let h = 0
  let i = warm
  while (i < from) h = ((h << 1) + gear[buf[i++]]) | 0
  // unrolled by 8: V8 runs this about twice as fast as the plain loop
  const to8 = to - 7
  for (; i < to8; i += 8) {
    h = ((h << 1) + gear[buf[i]]) | 0
    if ((h & mask) === 0) return i + 1
    h = ((h << 1) + gear[buf[i + 1]]) | 0
    if ((h & mask) === 0) return i + 2
    h = ((h << 1) + gear[buf[i + 2]]) | 0
    if ((h & mask) === 0) return i + 3
    h = ((h << 1) + gear[buf[i + 3]]) | 0
    if ((h & mask) === 0) return i + 4
    h = ((h << 1) + gear[buf[i + 4]]) | 0
    if ((h & mask) === 0) return i + 5
    h = ((h << 1) + gear[buf[i + 5]]) | 0
    if ((h & mask) === 0) return i + 6
    h = ((h << 1) + gear[buf[i + 6]]) | 0
    if ((h & mask) === 0) return i + 7
    h = ((h << 1) + gear[buf[i + 7]]) | 0
    if ((h & mask) === 0) return i + 8
  }
  for (; i < to; i++) {
    h = ((h << 1) + gear[buf[i]]) | 0
    if ((h & mask) === 0) return i + 1
  }
  return -1
}

/**
 * A streaming FastCDC chunker. Accepts input pieces of any size, yields fresh
 * (copied) chunks, holds at most one `maxSize` buffer besides the current
 * input piece, and scans every byte at most once. Empty input yields one
 * empty chunk, as the importer's fixed-size chunker does, so an empty file
 * still becomes a (raw, empty) leaf; the last chunk may be smaller than
 * `minSize`.
 *
 * @throws InvalidArgumentError (synchronously) for invalid sizes, see
 * {@link fastcdcParams}.
 */
export function fastcdc (options?: Partial<FastCDCOptions>): Chunker {
  const params = fastcdcParams(options)
  const maxSize = params.maxSize
  return async function * fastcdcChunker (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    // carry-over bytes that did not yet form maxSize bytes of lookahead
    const pending = new Uint8Array(maxSize)
    let pendingLength = 0
    let sawBytes = false
    for await (const piece of source) {
      if (piece.length > 0) sawBytes = true
      let offset = 0
      while (offset < piece.length) {
        if (pendingLength === 0) {
          // search the piece in place while it holds a full maxSize window
          while (piece.length - offset >= maxSize) {
            const cut = findCutPoint(piece, offset, offset + maxSize, params)
            yield piece.slice(offset, cut)
            offset = cut
          }
          pending.set(piece.subarray(offset), 0)
          pendingLength = piece.length - offset
          offset = piece.length
          break
        }
        const taken = Math.min(maxSize - pendingLength, piece.length - offset)
        pending.set(piece.subarray(offset, offset + taken), pendingLength)
        pendingLength += taken
        offset += taken
        if (pendingLength < maxSize) break
        const cut = findCutPoint(pending, 0, maxSize, params)
        yield pending.slice(0, cut)
        const rest = maxSize - cut
        if (rest <= taken) {
          // the unscanned rest all came from this piece: go back to reading it in place
          offset -= rest
          pendingLength = 0
        } else {
          pending.copyWithin(0, cut, maxSize)
          pendingLength = rest
        }
      }
    }
    if (!sawBytes) {
      yield new Uint8Array(0)
      return
    }
    let start = 0
    while (start < pendingLength) {
      const cut = findCutPoint(pending, start, pendingLength, params)
      yield pending.slice(start, cut)
      start = cut
    }
  }
}
