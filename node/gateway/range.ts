/**
 * Byte ranges: the HTTP `Range` header of a deserialized file (RFC 9110
 * §14) and the CAR's `entity-bytes`, both resolved against the file's size.
 *
 * A `Range` may ask for several ranges (`bytes=0-9,20-29`): they are
 * answered in the order asked, ranges that overlap or touch coalesced into
 * one (RFC 9110 §14.6) placed where the first of them was asked, ranges
 * holding no byte of the file left out. More than {@link MAX_RANGE_PARTS}
 * parts after coalescing, another unit, or a syntax error anywhere in the
 * header (a range whose end is before its start, too) and the header is
 * ignored: the whole file is sent (RFC 9110 §14.2 lets a server ignore
 * `Range`). When no range holds a byte of the file, it is refused (416).
 * Optional whitespace (spaces, tabs) around each range and around `-` is
 * accepted, as RFC 9110's list syntax allows and common servers do
 * (`bytes= 1-2` is `bytes=1-2`), and so are empty list elements
 * (`bytes=0-1,,5-6`); the unit's case does not matter (`Bytes=`). A `Range` whose `If-Range` does not name the file's
 * Etag is ignored too (RFC 9110 §13.1.5).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'
import { RangeNotSatisfiableError } from './errors.js'
import type { EntityBytes } from './negotiate.js'

/** An inclusive byte range `[first, last]` of a file. */
export interface ByteRange { first: number, last: number }

/**
 * Parts a `Range` may ask for, after coalescing; beyond, the whole file is
 * sent. Each part is a separate walk of the file's DAG (two parts in one
 * leaf read it twice), so the bound is what one request can make the node
 * read for a few bytes; Apache's `MaxRanges` and nginx's `max_ranges` bound
 * the same way and answer beyond it as this does.
 */
export const MAX_RANGE_PARTS = 16

/** Options of {@link parseRangeHeader}. */
export interface RangeHeaderOptions {
  /** The file's size in bytes. */
  size: number
  /** Most parts answered (after coalescing); more and the header is ignored. @default {@link MAX_RANGE_PARTS} */
  maxParts?: number
}

/**
 * The ranges a `Range` header asks of a file, coalesced, in the order they
 * are to be sent; undefined when the whole file is to be sent (no header, or
 * one that is ignored). One range is a plain 206, several a
 * `multipart/byteranges` one.
 *
 * @throws {RangeNotSatisfiableError} when no range holds a byte of the file
 */
export function parseRangeHeader (header: string | undefined, options: RangeHeaderOptions): ByteRange[] | undefined {
  if (header === undefined) return undefined
  const { size, maxParts = MAX_RANGE_PARTS } = options
  // the unit is case-insensitive (RFC 9110 §14.1: `BYTES=0-9` asks for the same bytes)
  const m = /^bytes=(.*)$/si.exec(header.trim())
  if (m === null) return undefined
  const specs = m[1].split(',').map(s => s.replace(/^[ \t]+|[ \t]+$/g, '')).filter(s => s !== '')
  if (specs.length === 0) return undefined
  const asked: ByteRange[] = []
  for (const spec of specs) {
    const range = parseSpec(spec, size)
    if (range === null) return undefined
    if (range !== undefined) asked.push(range)
  }
  if (asked.length === 0) throw new RangeNotSatisfiableError(`range ${header.slice(0, 200)} holds no byte of a ${size}-byte file`, size)
  const parts = coalesce(asked)
  return parts.length > maxParts ? undefined : parts
}

/**
 * One range-spec against a file of `size` bytes: the range, clamped to the
 * file; undefined when it holds no byte of the file; null when it is not a
 * valid byte range (the header is then ignored).
 */
function parseSpec (spec: string, size: number): ByteRange | undefined | null {
  const m = /^(\d*)[ \t]*-[ \t]*(\d*)$/.exec(spec)
  if (m === null || (m[1] === '' && m[2] === '')) return null
  if (m[1] === '') {
    const suffix = position(m[2])
    if (suffix === 0 || size === 0) return undefined
    return { first: Math.max(0, size - suffix), last: size - 1 }
  }
  const first = position(m[1])
  const last = m[2] === '' ? Infinity : position(m[2])
  if (last < first) return null
  if (first >= size) return undefined
  return { first, last: Math.min(last, size - 1) }
}

/**
 * Ranges that overlap or touch merged into one, each merged range placed
 * where the first of its ranges was asked (RFC 9110 §14.6: parts in the
 * order asked, but for those coalesced).
 */
function coalesce (asked: ByteRange[]): ByteRange[] {
  const byStart = asked.map((range, at) => ({ ...range, at })).sort((a, b) => a.first - b.first || a.at - b.at)
  const merged: Array<ByteRange & { at: number }> = []
  for (const r of byStart) {
    const last = merged[merged.length - 1]
    if (last !== undefined && r.first <= last.last + 1) {
      last.last = Math.max(last.last, r.last)
      last.at = Math.min(last.at, r.at)
    } else merged.push({ ...r })
  }
  return merged.sort((a, b) => a.at - b.at).map(({ first, last }) => ({ first, last }))
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
