/**
 * HTTP plumbing of the gateway: the headers every content response carries,
 * conditional requests, streaming a body with backpressure, and errors.
 *
 * @module
 */
import { pipeline } from 'node:stream/promises'
import { describeError, type DescribedError } from '../api/describe-error.js'
import { sendError } from '../api/http.js'
import { GatewayTimeoutError } from './errors.js'
import type { ContentPath } from './request.js'
import type { ResolvedPath } from './resolve.js'
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'

/** `Cache-Control` of everything under `/ipfs/`: the content of a CID never changes. */
export const IMMUTABLE = 'public, max-age=29030400, immutable'

/** Headers of every response about a content path. */
export function contentHeaders (path: ContentPath, resolved: ResolvedPath): OutgoingHttpHeaders {
  return {
    'x-ipfs-path': path.text,
    'x-ipfs-roots': resolved.roots.map(cid => cid.toString()).join(','),
    'cache-control': IMMUTABLE,
    'x-content-type-options': 'nosniff',
    // the response depends on Accept (raw, CAR or the content itself)
    vary: 'Accept'
  }
}

/**
 * Answer 304 when the client's `If-None-Match` names `etag` (or `*`).
 *
 * @returns true when the response was sent
 */
export function answeredNotModified (req: IncomingMessage, res: ServerResponse, etag: string, headers: OutgoingHttpHeaders): boolean {
  const header = req.headers['if-none-match']
  if (header === undefined) return false
  const given = header.split(',').map(s => s.trim().replace(/^W\//, ''))
  if (!given.includes('*') && !given.includes(etag.replace(/^W\//, ''))) return false
  res.writeHead(304, { ...headers, etag })
  res.end()
  return true
}

/** Options of {@link sendBody}. */
export interface SendBodyOptions {
  status: number
  /** Headers, given the first chunk (for a content type sniffed from it); undefined for an empty body. */
  headers: (first: Uint8Array | undefined) => OutgoingHttpHeaders
  /** The body; only its first chunk is read for a HEAD request. */
  source: AsyncIterable<Uint8Array>
  head: boolean
}

/**
 * Stream a body with backpressure. The first chunk is read before the
 * status line is written, so a failure up front (a block nobody has) is
 * still an HTTP error; a failure later cuts the connection (the client sees
 * a short body, never a wrong one). When the client goes away the source is
 * closed.
 */
export async function sendBody (res: ServerResponse, options: SendBodyOptions): Promise<void> {
  const it = options.source[Symbol.asyncIterator]()
  let first: IteratorResult<Uint8Array>
  try {
    first = await it.next()
  } catch (err) {
    await it.return?.()
    throw err
  }
  res.writeHead(options.status, options.headers(first.done === true ? undefined : first.value))
  if (options.head || first.done === true) {
    await it.return?.()
    res.end()
    return
  }
  await pipeline(resumed(first.value, it), res)
}

/** `first`, then the rest of `it`; `it` is closed however the reading ends. */
export async function * resumed (first: Uint8Array, it: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield first
    while (true) {
      const next = await it.next()
      if (next.done === true) return
      yield next.value
    }
  } finally {
    await it.return?.()
  }
}

/** Turn a failure into its status, name and message: the API's classification, or a timeout when the watchdog fired. */
export function describeFailure (err: any, timedOut: boolean): DescribedError {
  if (timedOut) {
    const timeout = new GatewayTimeoutError('no block of the content arrived within the retrieval timeout: no reachable peer has it, or its holders stalled')
    return describeError(timeout)
  }
  return describeError(err)
}

/** Answer an error as `{ error: { name, message } }` (as the API does), or cut a response already under way. */
export function sendFailure (res: ServerResponse, failure: DescribedError, extra: OutgoingHttpHeaders = {}): void {
  if (!res.headersSent) for (const [k, v] of Object.entries(extra)) if (v !== undefined) res.setHeader(k, v)
  sendError(res, failure.status, failure.name, failure.message)
}
