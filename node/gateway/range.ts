/**
 * Byte ranges: the HTTP `Range` header of a deserialized file (RFC 9110
 * §14) and the CAR's `entity-bytes`, both resolved against the file's size.
 *
 * One range per request: a `Range` with several ranges, another unit, or a
 * syntax error is ignored and the whole file is sent (RFC 9110 lets a
 * server ignore `Range`); a range starting past the end is refused (416).
 * Optional whitespace (spaces, tabs) after `=` and around `-` is accepted,
 * as RFC 9110's list syntax allows around a range and common servers do
 * (`bytes= 1-2` is `bytes=1-2`). A `Range` whose `If-Range` does not name
 * the file's Etag is ignored too (RFC 9110 §13.1.5).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'
import { RangeNotSatisfiableError } from './errors.js'
import type { EntityBytes } from './negotiate.js'

/** An inclusive byte range `[first, last]` of a file. */
export interface ByteRange { first: number, last: number }

/**
 * The range a `Range` header asks of a file of `size` bytes; undefined when
 * the whole file is to be sent (no header, or one that is ignored).
 *
 * @throws {RangeNotSatisfiableError} for a range that holds no byte of the file
 */
export function parseRangeHeader (header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    const suffix = position(m[2])
    if (suffix === 0 || size === 0) throw new RangeNotSatisfiableError(`range ${header} holds no byte of a ${size}-byte file`, size)
    return { first: Math.max(0, size - suffix), last: size - 1 }
  }
  const first = position(m[1])
  const last = m[2] === '' ? Infinity : position(m[2])
  if (last < first) return undefined
  if (first >= size) throw new RangeNotSatisfiableError(`range ${header} starts past the end of a ${size}-byte file`, size)
  return { first, last: Math.min(last, size - 1) }
}

/**
 * The `Range` header to honour under `If-Range` (RFC 9110 §13.1.5): the
 * range when there is no `If-Range`, or when it names `etag` itself (a
 * strong comparison); undefined (the whole file) for another Etag, a weak
 * one or a date (the gateway sends no `Last-Modified`, so no date matches):
 * the part the client holds may be of another representation (the raw
 * block of the same URL), and a 206 would be spliced onto it.
 */
export function rangeIfUnchanged (range: string | undefined, ifRange: string | string[] | undefined, etag: string): string | undefined {
  if (range === undefined || ifRange === undefined) return range
  return typeof ifRange === 'string' && ifRange.trim() === etag ? range : undefined
}

/** A position of a `Range`, any number of digits: one past what a file can hold is Infinity (a range from there holds no byte: 416). */
function position (digits: string): number {
  const n = Number(digits)
  return Number.isSafeInteger(n) ? n : Infinity
}

/**
 * The bytes of a file of `size` bytes that `entity-bytes` names, clamped to
 * the file; undefined for a zero-length range (the CAR then holds the
 * file's root block only, as `dag-scope=block`).
 *
 * @throws {InvalidArgumentError} when the range lies wholly outside the file
 */
export function resolveEntityBytes (bytes: EntityBytes, size: number): ByteRange | undefined {
  const from = bytes.from < 0 ? Math.max(0, size + bytes.from) : bytes.from
  const to = bytes.to === undefined ? size - 1 : bytes.to < 0 ? size + bytes.to : Math.min(bytes.to, size - 1)
  if (from >= size && size > 0) throw new InvalidArgumentError(`entity-bytes ${bytes.from}:${bytes.to ?? '*'} lies outside the file (${size} bytes)`)
  if (to < from) return undefined
  return { first: from, last: to }
}
