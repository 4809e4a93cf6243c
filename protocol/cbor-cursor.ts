/**
 * A cursor over the heads of CBOR items: what reads a field or two out of
 * encoded bytes, or measures items, without decoding them. It checks bounds
 * and nothing else; the decoders (canonical.ts, `@ipld/dag-cbor`) check
 * what is taken.
 *
 * @module
 */

/** Reads CBOR heads from `bytes`, starting at {@link pos}. */
export class CborCursor {
  pos: number
  /** The major type of the last head read. */
  major = 0

  constructor (private readonly bytes: Uint8Array, pos = 0) {
    this.pos = pos
  }

  /** {@link major}, read through a call (TypeScript would narrow the field across the calls that set it). */
  type (): number { return this.major }

  /** The argument of the head at {@link pos} (a length, a count or an integer); -1 when truncated or of indefinite length. */
  head (): number {
    const b = this.bytes
    if (this.pos >= b.byteLength) return -1
    const first = b[this.pos++]
    this.major = first >> 5
    const info = first & 31
    if (info < 24) return info
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0
    if (size === 0 || this.pos + size > b.byteLength) return -1
    let n = 0
    for (let k = 0; k < size; k++) n = n * 256 + b[this.pos++]
    return n
  }

  /** Step over one item, nested ones included (iteratively: any depth in bounded steps); false when malformed. */
  skip (): boolean {
    const length = this.bytes.byteLength
    for (let items = 1; items > 0; items--) {
      const n = this.head()
      if (n < 0) return false
      const major = this.major
      if (major === 2 || major === 3) this.pos += n
      else if (major === 4) items += n
      else if (major === 5) items += 2 * n
      else if (major === 6) items += 1
      // every item left takes a byte at least
      if (this.pos > length || items - 1 > length - this.pos) return false
    }
    return true
  }

  /** Whether the `length` bytes at `start` are `text`. */
  isText (text: Uint8Array, start: number, length: number): boolean {
    if (length !== text.byteLength) return false
    for (let k = 0; k < length; k++) if (this.bytes[start + k] !== text[k]) return false
    return true
  }
}
