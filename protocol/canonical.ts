/**
 * A one-pass check that bytes are the canonical dag-cbor encoding of what
 * they decode to, without encoding anything: what a canonical decoder
 * otherwise proves by re-encoding the decoded value and comparing.
 *
 * The check is conservative: true only for bytes that `@ipld/dag-cbor`
 * encodes back byte for byte once decoded (every head in its shortest form,
 * definite lengths, map keys that are text in dag-cbor order — shorter
 * first, then bytewise — with no repeats, strict UTF-8 without a byte order
 * mark, no floats or `undefined`, no tag but 42, whose CID bytes decode to
 * themselves, nothing after the item). False says only that the fast check
 * does not apply: the caller then re-encodes to decide, so rare forms
 * (floats, say) cost the slow path and are never wrongly refused.
 *
 * @module
 */

/** Deepest nesting the check walks (deeper bytes take the slow path). */
const MAX_DEPTH = 64

/** The CBOR tag of a CID in dag-cbor. */
const CID_TAG = 42

/**
 * True when `bytes` is one dag-cbor item in canonical form (see the
 * module's comment); false when it is not, or when this check cannot tell.
 * Call it on bytes that decoded: it does not replace the decoder's checks.
 */
export function isCanonicalDagCbor (bytes: Uint8Array): boolean {
  const scan = new Scan(bytes)
  return scan.item(0) && scan.pos === bytes.byteLength
}

/** A cursor over the bytes; each method reads one part and says whether it is canonical. */
class Scan {
  pos = 0
  /** The major type of the last head read. */
  private major = 0

  constructor (private readonly b: Uint8Array) {}

  item (depth: number): boolean {
    const { b } = this
    if (depth > MAX_DEPTH || this.pos >= b.byteLength) return false
    const first = b[this.pos]
    if (first >> 5 === 7) {
      // false, true, null; floats and undefined take the slow path
      if (first < 0xf4 || first > 0xf6) return false
      this.pos++
      return true
    }
    const n = this.head()
    if (n < 0) return false
    switch (this.major) {
      case 0:
      case 1:
        return true
      case 2:
        return this.skip(n)
      case 3:
        return this.text(n)
      case 4:
        for (let i = 0; i < n; i++) if (!this.item(depth + 1)) return false
        return true
      case 5:
        return this.map(n, depth)
      default:
        return n === CID_TAG && this.cid()
    }
  }

  /**
   * Read a head: its argument, or -1 when it is not in its shortest form or
   * is indefinite or reserved. Arguments of 8 bytes come back approximate
   * (they only need to be large: no length that large fits in the bytes).
   */
  private head (): number {
    const { b } = this
    const first = b[this.pos++]
    this.major = first >> 5
    const ai = first & 31
    if (ai < 24) return ai
    const size = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : 0
    if (size === 0 || this.pos + size > b.byteLength) return -1
    let value = 0
    for (let i = 0; i < size; i++) value = value * 256 + b[this.pos + i]
    this.pos += size
    const least = size === 1 ? 24 : size === 2 ? 0x100 : size === 4 ? 0x10000 : 0x100000000
    return value < least ? -1 : value
  }

  private skip (n: number): boolean {
    if (this.pos + n > this.b.byteLength) return false
    this.pos += n
    return true
  }

  /** Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF) and no byte order mark, which a decoder may drop. */
  private text (n: number): boolean {
    const { b } = this
    const end = this.pos + n
    if (end > b.byteLength) return false
    let i = this.pos
    while (i < end) {
      const c = b[i]
      if (c < 0x80) { i++; continue }
      let more: number
      let low = 0x80
      let high = 0xbf
      if (c >= 0xc2 && c <= 0xdf) more = 1
      else if (c >= 0xe0 && c <= 0xef) {
        more = 2
        if (c === 0xe0) low = 0xa0
        else if (c === 0xed) high = 0x9f
        else if (c === 0xef && b[i + 1] === 0xbb && b[i + 2] === 0xbf) return false
      } else if (c >= 0xf0 && c <= 0xf4) {
        more = 3
        if (c === 0xf0) low = 0x90
        else if (c === 0xf4) high = 0x8f
      } else return false
      if (i + more >= end) return false
      const second = b[i + 1]
      if (second < low || second > high) return false
      for (let k = 2; k <= more; k++) if ((b[i + k] & 0xc0) !== 0x80) return false
      i += more + 1
    }
    this.pos = end
    return true
  }

  /** `n` pairs with text keys in strictly ascending dag-cbor order (length first, then bytes). */
  private map (n: number, depth: number): boolean {
    const { b } = this
    let prevStart = -1
    let prevLength = 0
    for (let i = 0; i < n; i++) {
      if (this.pos >= b.byteLength || b[this.pos] >> 5 !== 3) return false
      const length = this.head()
      if (length < 0) return false
      const start = this.pos
      if (!this.text(length)) return false
      // a decoder into plain objects cannot hold this key as a field
      if (length === 9 && String.fromCharCode(...b.subarray(start, start + 9)) === '__proto__') return false
      if (prevStart >= 0 && compareKeys(b, prevStart, prevLength, start, length) >= 0) return false
      prevStart = start
      prevLength = length
      if (!this.item(depth + 1)) return false
    }
    return true
  }

  /**
   * The content of tag 42: a byte string of 0x00 and a CID whose bytes a
   * decoded CID encodes back to (a v0 CID as is; a v1 CID's version and
   * codec varints in their shortest form; its multihash is kept as given).
   */
  private cid (): boolean {
    const { b } = this
    if (this.pos >= b.byteLength || b[this.pos] >> 5 !== 2) return false
    const n = this.head()
    if (n < 0 || this.major !== 2 || n < 2 || this.pos + n > b.byteLength) return false
    const at = this.pos
    this.pos += n
    if (b[at] !== 0) return false
    if (b[at + 1] === 0x12) return n === 35 && b[at + 2] === 0x20
    if (b[at + 1] !== 0x01) return false
    // the codec varint: one byte, or several whose last is not zero
    let i = at + 2
    while (i < at + n && (b[i] & 0x80) !== 0) i++
    return i < at + n && (i === at + 2 || b[i] !== 0)
  }
}

/** Compare two map keys' UTF-8 bytes in dag-cbor order: the shorter first, then bytewise. */
function compareKeys (b: Uint8Array, aStart: number, aLength: number, bStart: number, bLength: number): number {
  if (aLength !== bLength) return aLength - bLength
  for (let i = 0; i < aLength; i++) {
    const d = b[aStart + i] - b[bStart + i]
    if (d !== 0) return d
  }
  return 0
}
