/**
 * The body of a 206 answering several ranges of one file: a
 * `multipart/byteranges` message (RFC 9110 §14.6), streamed part by part
 * from the file's reader (never the whole file in memory: one range's
 * chunks at a time, as a single range is read), with its exact length
 * computed up front from the ranges alone, so it is sent with
 * `Content-Length`.
 *
 * Each part carries the file's `Content-Type` and its `Content-Range`. The
 * boundary is random per answer (RFC 2046 §5.1.1: it must not occur in the
 * parts; 32 random hex digits do not, but by a chance of 2^-128 per place).
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { ByteRange } from './range.js'

/** Options of {@link byteRangesBody}. */
export interface ByteRangesInit {
  /** The ranges, in the order they are sent (two at least, none empty). */
  ranges: ByteRange[]
  /** The file's size, for each part's `Content-Range`. */
  size: number
  /** The file's content type, each part's `Content-Type`. */
  type: string
  /** Bytes `[offset, offset + length)` of the file. */
  read: (offset: number, length: number) => AsyncIterable<Uint8Array>
  /** The boundary between parts. @default 32 random hex digits */
  boundary?: string
}

/** A `multipart/byteranges` body ready to send. */
export interface ByteRangesBody {
  /** The answer's `Content-Type`, naming the boundary. */
  contentType: string
  /** The answer's `Content-Length`. */
  length: number
  /**
   * The body. Its first chunk holds the first part's header and first
   * bytes, so reading it reads the file (a block nobody has fails before a
   * status line is sent, as for a single range).
   */
  source: AsyncGenerator<Uint8Array>
}

/** Build the multipart body of `ranges` of a file. */
export function byteRangesBody (init: ByteRangesInit): ByteRangesBody {
  const boundary = init.boundary ?? randomBytes(16).toString('hex')
  const heads = init.ranges.map((r, i) => Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${init.type}\r\nContent-Range: bytes ${r.first}-${r.last}/${init.size}\r\n\r\n`, 'latin1'))
  const close = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1')
  const length = heads.reduce((n, head, i) => n + head.byteLength + init.ranges[i].last - init.ranges[i].first + 1, close.byteLength)
  return { contentType: `multipart/byteranges; boundary=${boundary}`, length, source: parts(init, heads, close) }
}

/** Each part's header, then its bytes; then the closing delimiter. */
async function * parts (init: ByteRangesInit, heads: Buffer[], close: Buffer): AsyncGenerator<Uint8Array> {
  for (const [i, range] of init.ranges.entries()) {
    let head: Buffer | undefined = heads[i]
    for await (const chunk of init.read(range.first, range.last - range.first + 1)) {
      if (head === undefined) yield chunk
      else if (i === 0) yield Buffer.concat([head, chunk])
      else { yield head; yield chunk }
      head = undefined
    }
    if (head !== undefined) yield head
  }
  yield close
}
