import { timingSafeEqual } from 'node:crypto'
import { AbortedError, UnauthorizedError } from '../errors.js'
import { describeError } from './describe-error.js'
import { STREAM_ID_HEADER, type StreamErrors } from './stream-errors.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Largest JSON response body we build in memory is unbounded; requests carry no JSON bodies. */
export const JSON_TYPE = 'application/json; charset=utf-8'

/** Send one JSON document. */
export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...headers, 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** The JSON shape of every API error. */
export interface ApiErrorBody { error: { name: string, message: string } }

/** Send an error as `{ error: { name, message } }` with its status. */
export function sendError (res: ServerResponse, status: number, name: string, message: string): void {
  if (res.headersSent) {
    // mid-stream: the only honest signal left is to cut the connection
    res.destroy(new Error(message))
    return
  }
  const body: ApiErrorBody = { error: { name, message } }
  sendJson(res, status, body)
}

/**
 * Check the `Authorization: Bearer <token>` header in constant time. An
 * empty `token` matches nothing.
 *
 * @throws {UnauthorizedError}
 */
export function checkToken (req: IncomingMessage, token: string): void {
  const header = req.headers.authorization ?? ''
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7).trim() : '')
  const want = Buffer.from(token)
  // an empty token would match a request without one: never
  if (want.length === 0 || given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new UnauthorizedError('missing or wrong API token (see <repo>/api.token)')
  }
}

/** Options of {@link sendStream}. */
export interface SendStreamOptions {
  /** Headers besides the content type (`application/octet-stream` unless given). */
  headers?: Record<string, string | number>
  /**
   * Where the answer gets its id (header {@link STREAM_ID_HEADER}) and
   * records its error if it fails after its head (node/api/stream-errors.ts).
   */
  errors?: StreamErrors
}

/**
 * Stream an async iterable of bytes as the response, honouring backpressure.
 * The first chunk is pulled before the status line is written, so errors
 * that happen up front (not found, bad range) still become JSON errors. A
 * later error cuts the answer (the status is out: a client must not take a
 * partial body for a whole one) once it is recorded in `errors`.
 */
export async function sendStream (res: ServerResponse, source: AsyncIterable<Uint8Array>, options: SendStreamOptions = {}): Promise<void> {
  const { errors } = options
  const it = source[Symbol.asyncIterator]()
  const first = await it.next()
  const id = errors?.open()
  res.writeHead(200, { 'content-type': 'application/octet-stream', ...options.headers, ...(id === undefined ? {} : { [STREAM_ID_HEADER]: String(id) }) })
  try {
    let step = first
    while (step.done !== true) {
      if (!res.write(step.value)) {
        await new Promise<void>((resolve, reject) => {
          // a client gone before this write: its 'close' is past, and no 'drain' comes
          if (res.destroyed) { reject(new AbortedError('client went away')); return }
          const onDrain = (): void => { cleanup(); resolve() }
          const onClose = (): void => { cleanup(); reject(new AbortedError('client went away')) }
          const cleanup = (): void => { res.off('drain', onDrain); res.off('close', onClose) }
          res.once('drain', onDrain)
          res.once('close', onClose)
        })
      }
      step = await it.next()
    }
  } catch (err) {
    const described = describeError(err)
    // a client that went away knows why; its own error (a full disk, a closed pipe) stays its answer
    if (id !== undefined && described.name !== 'AbortedError') errors?.fail(id, described)
    // a source cut short by its client ends here, its own cleanup run (a CAR export's walk, a read's window)
    await it.return?.().catch(() => {})
    throw err
  }
  res.end()
}
