/**
 * The body of an upload read from a local file (`add`, `car import`).
 *
 * Why: a file stream piped into another stream keeps its errors to itself —
 * a read that fails (a directory given for a file, a file gone or unreadable
 * midway) was an unhandled 'error' event that ended the CLI with a stack
 * trace, and had it been caught, the request would have waited forever for
 * a body that never ends. Here a read error becomes the body's own error, a
 * {@link LocalReadError} naming the file, which the API client turns into
 * the request's failure (cli/client.ts destroys the request with it).
 *
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { ShoalError } from '../node/errors.js'
import { byteCounter } from './progress.js'

/** A local file to upload could not be read (its upload failed with it). */
export class LocalReadError extends ShoalError {
  override name = 'LocalReadError'
}

/**
 * A local file changed while it was uploaded (it grew, shrank or was
 * rewritten): the upload was cut before its last bytes went out, so the
 * daemon kept nothing of it.
 */
export class FileChangedError extends LocalReadError {
  override name = 'FileChangedError'
}

/** Bytes per read of a file being uploaded. */
export const UPLOAD_READ_BYTES = 1024 * 1024

/** Options of {@link fileBody}. */
export interface FileBodyOptions {
  /**
   * The size the upload declared (its Content-Length), from a `stat` taken
   * before it: exactly this many bytes are read, and a file that turns out
   * shorter or longer fails the body with a {@link FileChangedError}.
   * Without it the file is read to its end, unchecked.
   */
  size?: number
  /** The modification time of that `stat`: a file rewritten since fails the body too. */
  mtimeMs?: number
  /** Told of every chunk. */
  onBytes?: (n: number) => void
}

/**
 * The bytes of `file` as a request body. A read error fails the body with a
 * {@link LocalReadError}; with `size`, a file that changes while it is read
 * fails it with a {@link FileChangedError} before the last chunk goes out,
 * so the daemon sees an upload cut short and keeps nothing. (Sent whole,
 * a file that grew left its extra bytes on the connection after the
 * declared length: the add was kept and the CLI reported an HTTP error; a
 * file that shrank left the request waiting forever for its missing bytes.)
 */
export function fileBody (file: string, options: FileBodyOptions = {}): Readable {
  return asBody(readFile(file, options), () => file, options.onBytes)
}

/** A local file of a batch: its path, and the size and modification time of the `stat` its manifest was made from. */
export interface BatchedFile {
  file: string
  size: number
  mtimeMs: number
}

/**
 * A batch body (protocol/add-batch.ts): `head`, then the bytes of each of
 * `files` in turn, each read and checked as {@link fileBody} reads one with
 * a `size`: a file that changed fails the whole body, so the daemon keeps
 * nothing of the batch.
 */
export function batchBody (head: Uint8Array, files: readonly BatchedFile[], options: { onBytes?: (n: number) => void } = {}): Readable {
  let current = files[0]?.file ?? ''
  async function * bytes (): AsyncGenerator<Uint8Array> {
    // each chunk goes out once the next is read, and the body's last only once every file
    // is known unchanged: a last file of 0 bytes (a file of /proc) would else be checked
    // after the daemon had the whole body, and the batch it refuses here would be bound there
    let held: Uint8Array = head
    for (const f of files) {
      current = f.file
      for await (const chunk of readFile(f.file, { size: f.size, mtimeMs: f.mtimeMs })) {
        yield held
        held = chunk
      }
    }
    yield held
  }
  return asBody(bytes(), () => current, options.onBytes)
}

/** `source` as a request body whose read errors name the file being read (`fileNow`). */
function asBody (chunks: AsyncIterable<Uint8Array>, fileNow: () => string, onBytes?: (n: number) => void): Readable {
  const source = Readable.from(chunks, { objectMode: false, highWaterMark: UPLOAD_READ_BYTES })
  const body = byteCounter(onBytes ?? (() => {}))
  source.once('error', (err: NodeJS.ErrnoException) => {
    if (err instanceof LocalReadError) { body.destroy(err); return }
    const why = err.code === 'EISDIR' ? 'it is a directory' : err.code === 'ENOENT' ? 'no such file' : String(err.code ?? err.message)
    body.destroy(new LocalReadError(`cannot read ${fileNow()}: ${why}`, { cause: err }))
  })
  // the request gone (refused, cut): stop reading
  body.once('close', () => { source.destroy() })
  return source.pipe(body)
}

/** The chunks of `file`; with `options.size`, exactly that many bytes, the last held back until the file is known unchanged. */
async function * readFile (file: string, options: FileBodyOptions): AsyncGenerator<Uint8Array> {
  const handle = await open(file, 'r')
  try {
    const size = options.size
    let position = 0
    for (;;) {
      const want = size === undefined ? UPLOAD_READ_BYTES : Math.min(UPLOAD_READ_BYTES, size - position)
      if (want === 0) break
      const chunk = Buffer.allocUnsafe(want)
      const { bytesRead } = await handle.read(chunk, 0, want, position)
      if (bytesRead === 0) {
        if (size === undefined) return
        throw new FileChangedError(`cannot read ${file}: it changed while it was uploaded (it now ends at ${position} bytes, not ${size}); the upload was cut and nothing was added (shoal gc frees what it stored)`)
      }
      position += bytesRead
      const piece = bytesRead === want ? chunk : chunk.subarray(0, bytesRead)
      if (position === size) {
        await checkUnchanged(handle, file, options)
        yield piece
        return
      }
      yield piece
    }
    // an empty file: checked as well (a file of /proc says 0 bytes and holds more)
    if (size !== undefined) await checkUnchanged(handle, file, options)
  } finally {
    await handle.close()
  }
}

/** Throws a {@link FileChangedError} unless `file` still has the declared size (no byte past it) and modification time. */
async function checkUnchanged (handle: FileHandle, file: string, options: FileBodyOptions): Promise<void> {
  const size = options.size as number
  const { bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, size)
  const now = await handle.stat()
  const why = bytesRead > 0
    ? `it holds more than the ${size} bytes its size said when the upload began`
    : now.size !== size
      ? `its size went from ${size} to ${now.size} bytes`
      : options.mtimeMs !== undefined && now.mtimeMs !== options.mtimeMs
        ? 'it was rewritten'
        : undefined
  if (why !== undefined) throw new FileChangedError(`cannot read ${file}: it changed while it was uploaded (${why}); the upload was cut and nothing was added (shoal gc frees what it stored)`)
}
