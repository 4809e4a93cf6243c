/**
 * The grammar of namespace paths: what the wire codecs and the node accept
 * as a path. node/namespace/paths.ts re-exports it beside the operations on
 * normalised paths (parent, base name, join…).
 *
 * @module
 */
import { InvalidPathError, NameTooLongError } from './errors.js'

/** Longest path accepted, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096
/** Longest single name, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_NAME_BYTES = 255

/**
 * Normalise a namespace path: absolute, `/`-separated, no empty, `.` or `..`
 * segments, no NUL, no trailing slash (except the root `/`).
 *
 * @throws {NameTooLongError} for a path or a name too long
 * @throws {InvalidPathError} for anything else
 */
export function normalizePath (input: string): string {
  if (isNormalAscii(input)) return input
  if (typeof input !== 'string' || input.length === 0) throw new InvalidPathError('the path is empty: a namespace path starts with / (such as /photos)')
  if (!input.startsWith('/')) throw new InvalidPathError(`path must be absolute (start with /): ${JSON.stringify(input)}`)
  if (input.includes('\0')) throw new InvalidPathError('path contains a NUL byte')
  if (Buffer.byteLength(input) > MAX_PATH_BYTES) throw new NameTooLongError(`path longer than ${MAX_PATH_BYTES} bytes`)
  const segments = input.split('/').filter((s, i, all) => !(s === '' && (i === 0 || i === all.length - 1)))
  for (const s of segments) {
    if (s === '') throw new InvalidPathError(`path has an empty segment: ${JSON.stringify(input)}`)
    if (s === '.' || s === '..') throw new InvalidPathError(`path may not contain . or .. segments: ${JSON.stringify(input)}`)
    if (Buffer.byteLength(s) > MAX_NAME_BYTES) throw new NameTooLongError(`name longer than ${MAX_NAME_BYTES} bytes in ${JSON.stringify(input)}`)
  }
  return '/' + segments.join('/')
}

/**
 * True when `input` ends in a `/` and is not the root: as in POSIX, such a
 * path names a directory, so a file there is refused (`rm /a.txt/` is "not a
 * directory"), where {@link normalizePath} alone would drop the slash.
 */
export function namesDirectory (input: string): boolean {
  return input.length > 1 && input.endsWith('/')
}

/** Code of `/`. */
const SLASH = 0x2f
/** Code of `.`. */
const DOT = 0x2e

/**
 * True when `input` is an ASCII path already in the normal form
 * {@link normalizePath} gives (what nearly every path a peer sends is): one
 * scan, no segments split and joined again. Anything else, valid or not,
 * takes the full check.
 */
function isNormalAscii (input: unknown): boolean {
  if (typeof input !== 'string' || input.length === 0 || input.length > MAX_PATH_BYTES || input.charCodeAt(0) !== SLASH) return false
  if (input.length === 1) return true
  let start = 1
  for (let i = 1; i <= input.length; i++) {
    const c = i < input.length ? input.charCodeAt(i) : SLASH
    if (c === 0 || c > 0x7f) return false
    if (c !== SLASH) continue
    const length = i - start
    // empty (a doubled or trailing slash), too long, `.` or `..`
    if (length === 0 || length > MAX_NAME_BYTES) return false
    if (input.charCodeAt(start) === DOT && (length === 1 || (length === 2 && input.charCodeAt(start + 1) === DOT))) return false
    start = i + 1
  }
  return true
}
