/**
 * A one-pass decoder of canonical dag-cbor: it decodes bytes and proves them
 * the canonical encoding of what they decode to, without encoding anything
 * (what a canonical decoder otherwise proves by re-encoding the decoded
 * value and comparing).
 *
 * It is conservative: it decodes only bytes that `@ipld/dag-cbor` encodes
 * back byte for byte once decoded (every head in its shortest form,
 * definite lengths, map keys that are text in dag-cbor order — shorter
 * first, then bytewise — with no repeats, strict UTF-8 without a byte order
 * mark, integers within the safe range, no floats or `undefined`, no tag but
 * 42, whose CID bytes decode to themselves, nothing after the item), and
 * then to the value `@ipld/dag-cbor` decodes them to. Anything else is
 * {@link NOT_CANONICAL}, which says only that this path does not apply: the
 * caller then decodes with `@ipld/dag-cbor` and re-encodes to decide, so
 * rare forms (floats, say) take the slow path and are never wrongly refused.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { Digest } from 'multiformats/hashes/digest'

/** What {@link decodeCanonicalDagCbor} returns for bytes it does not take. */
export const NOT_CANONICAL: unique symbol = Symbol('not canonical dag-cbor')

/** Deepest nesting decoded here (deeper bytes take the slow path). */
const MAX_DEPTH = 64

/** The CBOR tag of a CID in dag-cbor. */
const CID_TAG = 42

/** Multihash code of sha2-256. */
const SHA2_256 = 0x12

/**
 * The value of `bytes` as `@ipld/dag-cbor` decodes it, when the bytes are
 * one dag-cbor item in canonical form (see the module's comment);
 * {@link NOT_CANONICAL} when they are not, or when this decoder cannot tell.
 * Byte strings are views of `bytes`.
 */
export function decodeCanonicalDagCbor (bytes: Uint8Array): unknown {
  const parser = new Parser(bytes)
  const value = parser.item(0)
  return value === NOT_CANONICAL || parser.pos !== bytes.byteLength ? NOT_CANONICAL : value
}

/** True when `bytes` is one dag-cbor item in canonical form; false when it is not, or when this check cannot tell. */
export function isCanonicalDagCbor (bytes: Uint8Array): boolean {
  return decodeCanonicalDagCbor(bytes) !== NOT_CANONICAL
}

const NOT: typeof NOT_CANONICAL = NOT_CANONICAL

/** Where one field of an encoded map lies: its name and value, `start` to `end` (exclusive). */
export interface FieldRange { readonly start: number, readonly end: number }

/**
 * {@link decodeCanonicalDagCbor} of bytes that encode a map of fewer than 24
 * fields, with where its field `key` lies (undefined when it has none):
 * what {@link cutField} cuts out without a second parse.
 * {@link NOT_CANONICAL} as there, and for any other item.
 */
export function decodeCanonicalMap (bytes: Uint8Array, key: string): { value: Record<string, unknown>, field: FieldRange | undefined } | typeof NOT_CANONICAL {
  const parser = new Parser(bytes)
  const located = parser.mapLocating(key)
  return located === NOT || parser.pos !== bytes.byteLength ? NOT : located
}

/**
 * The canonical encoding of the map `bytes` encode, less its field `key`,
 * sliced out of `bytes` (the other fields' bytes are kept as they are: in
 * canonical form, dropping a field changes nothing else but the map's
 * count). Undefined when `bytes` is not a canonical map this decoder takes,
 * has no such field, or has 24 fields or more.
 */
export function withoutField (bytes: Uint8Array, key: string): Uint8Array | undefined {
  const parser = new Parser(bytes)
  const located = parser.mapLocating(key)
  if (located === NOT || located.field === undefined || parser.pos !== bytes.byteLength) return undefined
  return cutField(bytes, located.field)
}

/**
 * The map `bytes` encode (canonical, fewer than 24 fields) less the field
 * at `field`, as {@link decodeCanonicalMap} located it in those very bytes.
 */
export function cutField (bytes: Uint8Array, field: FieldRange): Uint8Array {
  const out = new Uint8Array(bytes.byteLength - (field.end - field.start))
  out[0] = bytes[0] - 1
  out.set(bytes.subarray(1, field.start), 1)
  out.set(bytes.subarray(field.end), field.start)
  return out
}

/** A cursor over the bytes; each method reads one part, NOT_CANONICAL (or false) when it is not canonical. */
class Parser {
  pos = 0
  /** The major type of the last head read. */
  private major = 0
  private readonly text: Buffer

  constructor (private readonly b: Uint8Array) {
    this.text = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  }

  item (depth: number): unknown {
    const { b } = this
    if (depth > MAX_DEPTH || this.pos >= b.byteLength) return NOT
    const first = b[this.pos]
    if (first >> 5 === 7) {
      // false, true, null; floats and undefined take the slow path
      this.pos++
      return first === 0xf4 ? false : first === 0xf5 ? true : first === 0xf6 ? null : NOT
    }
    const n = this.head()
    if (n < 0) return NOT
    switch (this.major) {
      case 0:
        return n <= Number.MAX_SAFE_INTEGER ? n : NOT
      case 1:
        return n < Number.MAX_SAFE_INTEGER ? -1 - n : NOT
      case 2: {
        if (this.pos + n > b.byteLength) return NOT
        this.pos += n
        return this.view(this.pos - n, n)
      }
      case 3:
        return this.string(n)
      case 4: {
        // each item takes a byte at least
        if (this.pos + n > b.byteLength) return NOT
        const out = new Array<unknown>(n)
        for (let i = 0; i < n; i++) {
          const v = this.item(depth + 1)
          if (v === NOT) return NOT
          out[i] = v
        }
        return out
      }
      case 5:
        return this.map(n, depth)
      default:
        return n === CID_TAG ? this.cid() : NOT
    }
  }

  /** A plain Uint8Array over `n` of the bytes from `start` (what dag-cbor gives, even when the input is a Buffer). */
  private view (start: number, n: number): Uint8Array {
    return new Uint8Array(this.b.buffer, this.b.byteOffset + start, n)
  }

  /** Read a top-level map of fewer than 24 fields, and where its field `key` (name and value) lies. */
  mapLocating (key: string): { value: Record<string, unknown>, field: FieldRange | undefined } | typeof NOT {
    const { b } = this
    if (b.byteLength === 0 || b[0] < 0xa1 || b[0] > 0xb7) return NOT
    let field: FieldRange | undefined
    const value = this.map(this.head(), 0, (name, start, end) => { if (name === key) field = { start, end } })
    return value === NOT ? NOT : { value, field }
  }

  /**
   * Read a head: its argument, or -1 when it is not in its shortest form or
   * is indefinite or reserved. Arguments of 8 bytes come back approximate
   * when past 2^53 (then they are too large for anything here anyway).
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

  /** A text string of `n` bytes, or NOT_CANONICAL when its bytes are not strict UTF-8 or begin a byte order mark anywhere. */
  private string (n: number): string | typeof NOT {
    const { b } = this
    const start = this.pos
    const end = start + n
    if (end > b.byteLength) return NOT
    let ascii = true
    for (let i = start; i < end; i++) if (b[i] >= 0x80) { ascii = false; break }
    if (ascii) {
      this.pos = end
      if (n <= RECUR_MAX) return recurringAscii(b, start, end, this.text)
      return (this.text as Buffer & { latin1Slice: (start: number, end: number) => string }).latin1Slice(start, end)
    }
    if (!this.utf8(n)) return NOT
    return this.text.toString('utf8', start, end)
  }

  /** Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF) and no byte order mark, which a decoder may drop. */
  private utf8 (n: number): boolean {
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

  /**
   * `n` pairs with text keys in strictly ascending dag-cbor order (length
   * first, then bytes), as a plain object; `onField` hears where each pair
   * lies.
   */
  private map (n: number, depth: number, onField?: (key: string, start: number, end: number) => void): Record<string, unknown> | typeof NOT {
    const { b } = this
    if (this.pos + 2 * n > b.byteLength) return NOT
    const out: Record<string, unknown> = {}
    let prevStart = -1
    let prevLength = 0
    for (let i = 0; i < n; i++) {
      const pairStart = this.pos
      if (this.pos >= b.byteLength || b[this.pos] >> 5 !== 3) return NOT
      const length = this.head()
      if (length < 0) return NOT
      const start = this.pos
      const key = this.string(length)
      // a plain object cannot hold this key as a field
      if (key === NOT || key === '__proto__') return NOT
      if (prevStart >= 0 && compareKeys(b, prevStart, prevLength, start, length) >= 0) return NOT
      prevStart = start
      prevLength = length
      const value = this.item(depth + 1)
      if (value === NOT) return NOT
      out[key] = value
      onField?.(key, pairStart, this.pos)
    }
    return out
  }

  /**
   * The content of tag 42: a byte string of 0x00 and a CID whose bytes a
   * decoded CID encodes back to (a v0 CID as is; a v1 CID's version and
   * codec varints in their shortest form; its multihash is kept as given).
   */
  private cid (): CID | typeof NOT {
    const { b } = this
    if (this.pos >= b.byteLength || b[this.pos] >> 5 !== 2) return NOT
    const n = this.head()
    if (n < 2 || this.pos + n > b.byteLength) return NOT
    const at = this.pos
    this.pos += n
    if (b[at] !== 0) return NOT
    if (b[at + 1] === 0x12) {
      if (n !== 35 || b[at + 2] !== 0x20) return NOT
    } else {
      if (b[at + 1] !== 0x01) return NOT
      // the codec varint: one byte, or several whose last is not zero
      let i = at + 2
      while (i < at + n && (b[i] & 0x80) !== 0) i++
      if (i >= at + n || (i > at + 2 && b[i] === 0)) return NOT
    }
    if (n === 37 && b[at + 1] === 0x01 && b[at + 2] < 0x80 && b[at + 3] === SHA2_256 && b[at + 4] === 32) {
      // a CIDv1 of a one-byte codec and a sha2-256 digest (every CID the namespace writes): what CID.decode
      // makes of these bytes, without parsing them again or copying them into a buffer of its own
      const bytes = this.view(at + 1, 36)
      return new CID(1, b[at + 2], new Digest(SHA2_256, 32, bytes.subarray(4), bytes.subarray(2)), bytes)
    }
    try {
      return CID.decode(this.view(at + 1, n - 1))
    } catch {
      return NOT
    }
  }
}

/** Longest ASCII text looked up in {@link RECUR} (a peer id is about 52 characters). */
const RECUR_MAX = 64
/** Slots of {@link RECUR}. */
const RECUR_SLOTS = 4096
/** ASCII strings made lately, in the slot a hash of their bytes names (a new one takes the slot). */
const RECUR: Array<string | undefined> = new Array(RECUR_SLOTS)

/**
 * The ASCII text of `b[start..end)`, at most {@link RECUR_MAX} bytes: the
 * same string as the last time these bytes were read when it is still in
 * its slot (map keys, authors' peer ids and op names recur in every entry),
 * found by a hash of the bytes and compared byte for byte. So it is not
 * made again, and a string already used as a property name (a clock's
 * author, a field's name) is not looked up in the engine's string table
 * again each time it is used as one.
 */
function recurringAscii (b: Uint8Array, start: number, end: number, text: Buffer): string {
  const n = end - start
  let h = n
  for (let i = start; i < end; i++) h = (Math.imul(h, 31) + b[i]) | 0
  const slot = h & (RECUR_SLOTS - 1)
  const known = RECUR[slot]
  if (known !== undefined && known.length === n) {
    let same = true
    for (let i = 0; i < n; i++) if (known.charCodeAt(i) !== b[start + i]) { same = false; break }
    if (same) return known
  }
  let out: string
  if (n <= 12) {
    // no native call for a few characters
    out = ''
    for (let i = start; i < end; i++) out += String.fromCharCode(b[i])
  } else {
    out = (text as Buffer & { latin1Slice: (start: number, end: number) => string }).latin1Slice(start, end)
  }
  RECUR[slot] = out
  return out
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
