/**
 * The body of `POST /api/v0/add-many`: many small files in one request.
 *
 * Why: `shoal add DIR` sent one request per file, and each file was its own
 * namespace write, with an fsync of its blocks and one of its log entry: a
 * folder of 3,600 small files took 17 s. One request per batch is one import
 * pass, one fsync of the blocks and one signed log entry for all of them
 * (`Files.addMany`, as the mount commits a burst of small files), and the
 * batch is bound all at once or not at all.
 *
 * The layout: a 4-byte big-endian length, the manifest (UTF-8 JSON, an array
 * of {@link BatchFile}), then every file's bytes, one after the other, in
 * the manifest's order, `size` bytes each. The manifest comes first so the
 * daemon knows every path before it reads any content, and the body's
 * length is known from it ({@link batchBodyLength}): a body of any other
 * length is refused before anything is imported.
 *
 * @module
 */
import { InvalidArgumentError } from './errors.js'
import { isTime } from './time.js'

/** The Content-Type of a batch body. */
export const BATCH_CONTENT_TYPE = 'application/vnd.shoal.add-batch'

/** Most files in one batch. */
export const MAX_BATCH_FILES = 4096

/** Largest manifest, in bytes (4,096 paths of up to 255 bytes fit well). */
export const MAX_MANIFEST_BYTES = 2 * 1024 * 1024

/** Largest batch body, in bytes: a batch is for small files, a large one goes alone. */
export const MAX_BATCH_BYTES = 256 * 1024 * 1024

/** One file of a batch. */
export interface BatchFile {
  /** Namespace path. */
  to: string
  /** Its bytes in the body. */
  size: number
  /** Permission bits. */
  mode?: number
  /** Modification time, ms since the epoch. */
  mtime?: number
}

/** The bytes before the files' contents: the manifest's length, then the manifest. */
export function encodeBatchHead (files: readonly BatchFile[]): Uint8Array {
  const manifest = Buffer.from(JSON.stringify(files))
  const head = Buffer.alloc(4 + manifest.byteLength)
  head.writeUInt32BE(manifest.byteLength, 0)
  manifest.copy(head, 4)
  return head
}

/** The whole body's length for `files`, the manifest's JSON encoded as {@link encodeBatchHead} encodes it. */
export function batchBodyLength (manifestBytes: number, files: readonly BatchFile[]): number {
  return 4 + manifestBytes + files.reduce((n, f) => n + f.size, 0)
}

/**
 * The manifest's length from the body's first 4 bytes.
 *
 * @throws {InvalidArgumentError} for a length of 0 or above {@link MAX_MANIFEST_BYTES}
 */
export function manifestLength (prefix: Uint8Array): number {
  if (prefix.byteLength !== 4) throw new InvalidArgumentError('the batch body ends before its manifest\'s length')
  const length = Buffer.from(prefix.buffer, prefix.byteOffset, 4).readUInt32BE(0)
  if (length === 0 || length > MAX_MANIFEST_BYTES) throw new InvalidArgumentError(`the batch manifest's length (${length} bytes) is not between 1 and ${MAX_MANIFEST_BYTES}`)
  return length
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/**
 * Decode and check a manifest: an array of 1 to {@link MAX_BATCH_FILES}
 * files, each with a string path, a size, and optional permission bits and
 * modification time; no other field, no path twice. The paths themselves
 * are the namespace's to check.
 *
 * @throws {InvalidArgumentError} naming what is wrong
 */
export function decodeManifest (bytes: Uint8Array): BatchFile[] {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err: any) {
    throw new InvalidArgumentError(`the batch manifest is not JSON: ${String(err?.message ?? err)}`)
  }
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_BATCH_FILES) {
    throw new InvalidArgumentError(`the batch manifest must be an array of 1 to ${MAX_BATCH_FILES} files`)
  }
  const seen = new Set<string>()
  return value.map((f: unknown, i): BatchFile => {
    const where = `file ${i} of the batch manifest`
    if (typeof f !== 'object' || f === null || Array.isArray(f)) throw new InvalidArgumentError(`${where} is not an object`)
    const { to, size, mode, mtime, ...rest } = f as Record<string, unknown>
    const extra = Object.keys(rest)
    if (extra.length > 0) throw new InvalidArgumentError(`${where} has unknown fields: ${extra.join(', ')}`)
    if (typeof to !== 'string' || to.length === 0) throw new InvalidArgumentError(`${where} has no path (to)`)
    if (seen.has(to)) throw new InvalidArgumentError(`${where} names ${JSON.stringify(to)} a second time`)
    seen.add(to)
    if (!isCount(size)) throw new InvalidArgumentError(`${where} has no valid size`)
    if (mode !== undefined && (!isCount(mode) || mode > 0o7777)) throw new InvalidArgumentError(`${where} has invalid permission bits`)
    if (mtime !== undefined && !isTime(mtime)) throw new InvalidArgumentError(`${where} has an invalid mtime`)
    return { to, size, ...(mode !== undefined ? { mode } : {}), ...(mtime !== undefined ? { mtime } : {}) }
  })
}
