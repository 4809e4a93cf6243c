/**
 * MurmurHash3's 32-bit pieces: the finaliser (the snapshot tree's boundary
 * hash ends with it) and the x86 32-bit hash (gc's mark set). Not
 * cryptographic: for spreading keys, never for checking bytes.
 *
 * @module
 */

/** MurmurHash3's 32-bit finaliser ("fmix32"): every bit of `h` moves every bit of the result (unsigned). */
export function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** One 32-bit block of input, scrambled as MurmurHash3 does before it mixes it in. */
function scramble (k: number): number {
  k = Math.imul(k, 0xcc9e2d51)
  k = (k << 15) | (k >>> 17)
  return Math.imul(k, 0x1b873593)
}

/** MurmurHash3 x86 32-bit of `bytes` with `seed` (unsigned). */
export function murmur3x86 (bytes: Uint8Array, seed: number): number {
  let h = seed >>> 0
  const tail = bytes.byteLength & ~3
  for (let i = 0; i < tail; i += 4) {
    h ^= scramble(bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24))
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  const rest = bytes.byteLength & 3
  if (rest > 0) {
    let k = 0
    for (let j = rest - 1; j >= 0; j--) k = (k << 8) | bytes[tail + j]
    h ^= scramble(k)
  }
  return fmix32(h ^ bytes.byteLength)
}
