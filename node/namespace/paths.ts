import { MAX_NAME_BYTES, namesDirectory, normalizePath } from '../../protocol/paths.js'
import { IsADirectoryError } from '../errors.js'

// the path grammar lives in protocol/ (the wire codecs check paths too)
export { MAX_NAME_BYTES, MAX_PATH_BYTES, namesDirectory, normalizePath } from '../../protocol/paths.js'

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

/**
 * The normalised path of a file to write at `path`.
 *
 * @throws {IsADirectoryError} for `/` and for a path ending in `/`, which names a directory
 */
export function filePath (path: string): string {
  const p = normalizePath(path)
  if (p === '/') throw new IsADirectoryError('cannot write a file at /')
  if (namesDirectory(path)) throw new IsADirectoryError(`cannot write a file at ${path}: a path ending in / names a directory`)
  return p
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
