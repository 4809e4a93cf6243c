/**
 * The text of a CID as `cid.toString()` gives it, made in one native step:
 * multiformats builds it a character at a time, and the resulting string
 * costs more to hash (as a Map key, say) than to make. Used where many
 * fresh CIDs become keys (the namespace receiving a page of entries).
 *
 * @module
 */
import type { CID } from 'multiformats/cid'

const BASE32 = Buffer.from('abcdefghijklmnopqrstuvwxyz234567', 'latin1')
/** Where the text is built before it becomes a string (a sha2-256 CIDv1 takes 59 bytes). */
const SCRATCH = Buffer.allocUnsafeSlow(128)

/**
 * `cid.toString()`, the same string: base32 (lower case, no padding, `b`
 * prefix) for a v1 CID; a v0 CID is left to multiformats (base58btc).
 */
export function cidText (cid: CID): string {
  if (cid.version !== 1) return cid.toString()
  const bytes = cid.bytes
  const length = 1 + Math.ceil(bytes.byteLength * 8 / 5)
  // the string is copied out of it: one scratch buffer serves every call of a CID's usual size
  const out = length <= SCRATCH.byteLength ? SCRATCH : Buffer.allocUnsafe(length)
  out[0] = 0x62 // 'b'
  let o = 1
  let bits = 0
  let buffer = 0
  for (let i = 0; i < bytes.byteLength; i++) {
    buffer = ((buffer << 8) | bytes[i]) & 0xfff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out[o++] = BASE32[(buffer >> bits) & 31]
    }
  }
  if (bits > 0) out[o++] = BASE32[(buffer << (5 - bits)) & 31]
  return out.toString('latin1', 0, o)
}
