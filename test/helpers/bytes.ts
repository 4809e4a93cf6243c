/**
 * Deterministic test data and streaming hashes.
 */
import assert from 'node:assert/strict'
import { createCipheriv, createHash } from 'node:crypto'

const MiB = 1024 * 1024
const ZEROS = new Uint8Array(MiB)

/**
 * `total` pseudo-random bytes determined by `seed`, in fresh pieces of
 * `pieceSize` bytes (the last may be shorter). The stream is the ChaCha20
 * keystream with key = sha256(seed as decimal text) and an all-zero IV, so it
 * is fast (~1 GB/s) and the same on every platform; a prefix of a longer
 * stream with the same seed is the shorter stream.
 */
export function * randomPieces (total: number, seed: number, pieceSize = MiB): Generator<Uint8Array> {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`invalid total ${total}`)
  if (!Number.isSafeInteger(pieceSize) || pieceSize < 1) throw new RangeError(`invalid piece size ${pieceSize}`)
  const key = createHash('sha256').update(String(seed)).digest()
  const cipher = createCipheriv('chacha20', key, Buffer.alloc(16))
  let left = total
  while (left > 0) {
    const size = Math.min(left, pieceSize)
    const piece = new Uint8Array(size)
    for (let at = 0; at < size; at += ZEROS.byteLength) {
      const n = Math.min(size - at, ZEROS.byteLength)
      piece.set(cipher.update(ZEROS.subarray(0, n)), at)
    }
    left -= size
    yield piece
  }
}

/** `total` seeded pseudo-random bytes in one buffer (see {@link randomPieces}). */
export function randomBytes (total: number, seed: number): Uint8Array {
  const out = new Uint8Array(total)
  let at = 0
  for (const piece of randomPieces(total, seed)) {
    out.set(piece, at)
    at += piece.byteLength
  }
  return out
}

/** Hex sha2-256 of everything `source` yields, without buffering it. */
export async function sha256OfStream (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256')
  for await (const piece of source) hash.update(piece)
  return hash.digest('hex')
}

/** Hex sha2-256 of `bytes`. */
export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Concatenate everything `source` yields. */
export async function collectBytes (source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const piece of source) parts.push(piece)
  return new Uint8Array(Buffer.concat(parts))
}

/** An async view of a (sync) iterable, for APIs that take `AsyncIterable<Uint8Array>`. */
export async function * toAsync<T> (source: Iterable<T>): AsyncGenerator<T> {
  yield * source
}

/**
 * Assert two byte arrays hold the same bytes, whatever their class (a
 * `Buffer` and a `Uint8Array` are not `deepStrictEqual`).
 */
export function assertBytesEqual (actual: Uint8Array, expected: Uint8Array, message?: string): void {
  if (Buffer.compare(actual, expected) === 0) return
  let at = 0
  while (at < actual.byteLength && at < expected.byteLength && actual[at] === expected[at]) at++
  throw new assert.AssertionError({
    message: `${message ?? 'bytes differ'}: ${actual.byteLength} vs ${expected.byteLength} bytes, first difference at ${at}`,
    actual: actual.byteLength,
    expected: expected.byteLength,
    operator: 'assertBytesEqual'
  })
}
