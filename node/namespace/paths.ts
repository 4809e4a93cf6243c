import { InvalidPathError } from '../errors.js'

/** Longest path accepted, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096
/** Longest single name, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_NAME_BYTES = 255

/**
 * Normalise a namespace path: absolute, `/`-separated, no empty, `.` or `..`
 * segments, no NUL, no trailing slash (except the root `/`).
 *
 * @throws {InvalidPathError} for anything else
 */
export function normalizePath (input: string): string {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidPathError('path is empty')
  if (!input.startsWith('/')) throw new InvalidPathError(`path must be absolute (start with /): ${JSON.stringify(input)}`)
  if (input.includes('\0')) throw new InvalidPathError('path contains a NUL byte')
  if (Buffer.byteLength(input) > MAX_PATH_BYTES) throw new InvalidPathError(`path longer than ${MAX_PATH_BYTES} bytes`)
  const segments = input.split('/').filter((s, i, all) => !(s === '' && (i === 0 || i === all.length - 1)))
  for (const s of segments) {
    if (s === '') throw new InvalidPathError(`path has an empty segment: ${JSON.stringify(input)}`)
    if (s === '.' || s === '..') throw new InvalidPathError(`path may not contain . or .. segments: ${JSON.stringify(input)}`)
    if (Buffer.byteLength(s) > MAX_NAME_BYTES) throw new InvalidPathError(`name longer than ${MAX_NAME_BYTES} bytes in ${JSON.stringify(input)}`)
  }
  return '/' + segments.join('/')
}

/**
 * Why `name` is not one safe file name, or undefined when it is: empty,
 * `.` or `..`, holding a `/` or a NUL byte, or longer than
 * {@link MAX_NAME_BYTES} bytes (Linux NAME_MAX, the namespace's limit too); for names that come from elsewhere, such as directory entries of a DAG.
 */
export function fileNameProblem (name: string): string | undefined {
  if (name === '') return 'an empty name'
  if (name === '.' || name === '..') return 'not a file name but a step in a path'
  if (name.includes('/')) return 'it holds a /, which would make it a path'
  if (name.includes('\0')) return 'it holds a NUL byte'
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `longer than ${MAX_NAME_BYTES} bytes`
  return undefined
}

/** Parent directory of a normalised path (`/` for top-level names and for `/`). */
export function parentOf (path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

/** Last segment of a normalised path (`''` for the root). */
export function baseName (path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

/** Join a normalised directory and a name. */
export function joinPath (dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

/** True when `path` is `ancestor` or lies below it. */
export function isWithin (path: string, ancestor: string): boolean {
  if (ancestor === '/') return true
  return path === ancestor || path.startsWith(ancestor + '/')
}
