/**
 * The one set of field checks of the wire codecs: each takes one untrusted
 * decoded value, checks it and returns it typed (a fresh copy where the
 * value is mutable), or throws the codec's own error naming the field.
 *
 * A codec builds its checks once with {@link fieldChecks}, giving the
 * function that throws its error: that is where its message prefix
 * (`invalid shards message: `, `invalid manifest: `…) and its error class
 * come from, so every codec words the same fault the same way after its
 * prefix. Checks that never throw live in values.ts.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { normalizePath } from './paths.js'
import { freshCid, isIntIn, isPlainMap, isSha256, show, type Fields } from './values.js'

/** Throws the codec's error for `reason` (the codec adds its message prefix). */
export type Fail = (reason: string) => never

/** What a CID field must be, beyond a sha2-256 multihash. */
export interface CidRule {
  /** Require CIDv1. */
  v1?: boolean
  /** The codecs allowed; any when absent. */
  codecs?: readonly number[]
  /**
   * Take a CID of this library as it is rather than copy it (for a codec
   * that hands out views of a frame only it holds, as {@link FieldChecks.bytes}
   * does with `view`); anything else CID-like is still re-decoded.
   */
  view?: boolean
}

/** The checks, each throwing through the codec's {@link Fail}. */
export interface FieldChecks {
  /** The codec's {@link Fail}, for the checks that are its own. */
  fail: Fail
  /** A plain map with exactly the `required` keys plus any of the `optional` ones. */
  shape: (value: unknown, what: string, required: readonly string[], optional?: readonly string[]) => Fields
  /** A `v` field equal to the codec's `supported` version. */
  version: <V extends number>(value: unknown, what: string, supported: V) => V
  /** The `type` of a message map: one of the keys of `kinds`. */
  type: <K extends string>(fields: Fields, what: string, kinds: Readonly<Record<K, unknown>>) => K
  /** A safe integer in min..max (never -0). */
  int: (value: unknown, what: string, min: number, max?: number) => number
  /** A boolean. */
  bool: (value: unknown, what: string) => boolean
  /** A string of at most `max` UTF-16 code units. */
  text: (value: unknown, what: string, max: number) => string
  /** A {@link FieldChecks.text} that also survives UTF-8 (no lone surrogates). */
  wellFormedText: (value: unknown, what: string, max: number) => string
  /** A non-empty well-formed string of at most `max` code units, usable as an object key. */
  peerId: (value: unknown, what: string, max: number) => string
  /**
   * A byte string of min..max bytes: a copy (a plain Uint8Array, sharing no
   * memory with the input), or the value itself with `view` (for a codec that
   * hands out views of a frame its caller owns).
   */
  bytes: (value: unknown, what: string, min: number, max: number, options?: { view?: boolean }) => Uint8Array
  /** A list of min..max items (the items are the caller's to check). */
  list: (value: unknown, what: string, min: number, max: number) => unknown[]
  /** A list of exactly two items, named `names` in the message. */
  pair: (value: unknown, what: string, names: readonly [string, string]) => [unknown, unknown]
  /** A fresh copy of a CID with a sha2-256 multihash that follows `rule`. */
  cid: (value: unknown, what: string, rule?: CidRule) => CID
  /** A namespace path in normal form (protocol/paths.ts), never the root. */
  path: (value: unknown, what: string) => string
}

/**
 * The field checks of one codec, throwing through `fail`.
 *
 * @example
 * const check = fieldChecks(reason => { throw new InvalidMessageError(`invalid shards message: ${reason}`) })
 * const count = check.int(fields.count, 'holdings count', 1, MAX_HOLDINGS_STRIPES)
 */
export function fieldChecks (fail: Fail): FieldChecks {
  const shape = (value: unknown, what: string, required: readonly string[], optional: readonly string[] = []): Fields => {
    if (!isPlainMap(value)) fail(`${what} is not a map`)
    for (const key of required) if (!Object.hasOwn(value, key)) fail(`${what} lacks field ${key}`)
    for (const key of Object.keys(value)) {
      if (!required.includes(key) && !optional.includes(key)) fail(`${what} has unexpected field ${show(key)}`)
    }
    return value
  }
  const version = <V extends number>(value: unknown, what: string, supported: V): V => {
    if (value !== supported) fail(`${what} has unsupported version ${show(value)}`)
    return supported
  }
  const type = <K extends string>(fields: Fields, what: string, kinds: Readonly<Record<K, unknown>>): K => {
    const kind = fields.type
    if (typeof kind !== 'string' || !Object.hasOwn(kinds, kind)) fail(`unknown ${what} type ${show(kind)}`)
    return kind as K
  }
  const int = (value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (!isIntIn(value, min, max)) fail(`${what} must be an integer in ${min}..${max}, got ${show(value)}`)
    return value === 0 ? 0 : value
  }
  const bool = (value: unknown, what: string): boolean => {
    if (typeof value !== 'boolean') fail(`${what} is not a boolean`)
    return value
  }
  const text = (value: unknown, what: string, max: number): string => {
    if (typeof value !== 'string') fail(`${what} is not a string`)
    if (value.length > max) fail(`${what} longer than ${max}`)
    return value
  }
  const wellFormedText = (value: unknown, what: string, max: number): string => {
    const checked = text(value, what, max)
    if (/\p{Cs}/u.test(checked)) fail(`${what} holds a lone surrogate`)
    return checked
  }
  const peerId = (value: unknown, what: string, max: number): string => {
    const id = wellFormedText(value, what, max)
    if (id.length === 0) fail(`${what} is empty`)
    // not a peer id, and not safely usable as an object key
    if (id === '__proto__') fail(`${what} is __proto__`)
    return id
  }
  const bytes = (value: unknown, what: string, min: number, max: number, options: { view?: boolean } = {}): Uint8Array => {
    if (!(value instanceof Uint8Array)) fail(`${what} is not bytes`)
    if (value.byteLength < min || value.byteLength > max) fail(`${what} of ${value.byteLength} bytes (${min}..${max} allowed)`)
    return options.view === true ? value : new Uint8Array(value)
  }
  const list = (value: unknown, what: string, min: number, max: number): unknown[] => {
    if (!Array.isArray(value)) fail(`${what} is not a list`)
    if (value.length < min || value.length > max) fail(`${what} has ${value.length} items (${min}..${max} allowed)`)
    return value
  }
  const pair = (value: unknown, what: string, names: readonly [string, string]): [unknown, unknown] => {
    if (!Array.isArray(value) || value.length !== 2) fail(`${what} is not a pair [${names[0]}, ${names[1]}]`)
    return [value[0], value[1]]
  }
  const cid = (value: unknown, what: string, rule: CidRule = {}): CID => {
    const parsed = rule.view === true && value instanceof CID ? value : freshCid(value)
    if (parsed === undefined) fail(`${what} is not a CID`)
    if (rule.v1 === true && parsed.version !== 1) fail(`${what} ${parsed.toString()} is not a CIDv1`)
    if (!isSha256(parsed)) fail(`${what} ${parsed.toString()} is not sha2-256`)
    if (rule.codecs !== undefined && !rule.codecs.includes(parsed.code)) fail(`${what} ${parsed.toString()} has codec 0x${parsed.code.toString(16)}`)
    return parsed
  }
  const path = (value: unknown, what: string): string => {
    const p = wellFormedText(value, what, Number.MAX_SAFE_INTEGER)
    let normal: string
    try {
      normal = normalizePath(p)
    } catch (err: any) {
      fail(`${what} ${show(p)} is invalid (${String(err?.message ?? err)})`)
    }
    if (normal !== p) fail(`${what} ${show(p)} is not normalised (${show(normal)})`)
    if (p === '/') fail(`${what} is the root`)
    return p
  }
  return { fail, shape, version, type, int, bool, text, wellFormedText, peerId, bytes, list, pair, cid, path }
}
