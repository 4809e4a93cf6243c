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
import { createReadStream } from 'node:fs'
import { PassThrough, type Readable } from 'node:stream'
import { ShoalError } from '../node/errors.js'
import { byteCounter } from './progress.js'

/** A local file to upload could not be read (its upload failed with it). */
export class LocalReadError extends ShoalError {
  override name = 'LocalReadError'
}

/** Bytes per read of a file being uploaded. */
export const UPLOAD_READ_BYTES = 1024 * 1024

/**
 * The bytes of `file` as a request body; `onBytes` is told of every chunk.
 * A read error fails the body with a {@link LocalReadError}.
 */
export function fileBody (file: string, onBytes?: (n: number) => void): Readable {
  // 1 MiB reads: a sixteenth of the default's chunks through the stream and the socket
  const source = createReadStream(file, { highWaterMark: UPLOAD_READ_BYTES })
  const body = onBytes === undefined ? new PassThrough() : byteCounter(onBytes)
  source.once('error', (err: NodeJS.ErrnoException) => {
    const why = err.code === 'EISDIR' ? 'it is a directory' : err.code === 'ENOENT' ? 'no such file' : String(err.code ?? err.message)
    body.destroy(new LocalReadError(`cannot read ${file}: ${why}`, { cause: err }))
  })
  // the request gone (refused, cut): stop reading
  body.once('close', () => { source.destroy() })
  return source.pipe(body)
}
