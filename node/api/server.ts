import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { checkToken, sendError } from './http.js'
import { describeError } from './describe-error.js'
import { routes, type Route } from './routes.js'
import { isPageAsset, sendPageAsset } from './ui/assets.js'
import { StreamErrors } from './stream-errors.js'
import { TooLargeError } from '../errors.js'
import type { ShoalComponents } from '../node.js'
import type { AddressInfo, Socket } from 'node:net'

/** Options for {@link createApiServer}. */
export interface ApiServerInit {
  host: string
  port: number
  /** Bearer token every request must carry. */
  token: string
  /** A client must send its whole request head within this time. @default 10_000 ms */
  headersTimeoutMs?: number
  /** An idle kept-alive connection is closed after this time. @default 5_000 ms */
  keepAliveTimeoutMs?: number
  /** Connections open at once; more are refused. @default 256 */
  maxConnections?: number
}

/** How long a refused request's client may go on sending once it has its answer, before the connection is cut. */
export const REFUSED_LINGER_MS = 2_000

/** The running API. */
export interface ApiServer {
  /** Listen; resolves with the bound address. */
  start: () => Promise<AddressInfo>
  /** Stop listening and close every open connection (requests under way are cut); resolves once closed. Idempotent. */
  stop: () => Promise<void>
}

/**
 * The HTTP API on a loopback address. Every request is authenticated with
 * the repo's token, validated, counted and timed — except the status page's
 * static files (`GET /` and `/ui/…`, see ui/assets.ts), which hold no node
 * data and read everything through the API with the token the user gives.
 */
export function createApiServer (components: ShoalComponents, init: ApiServerInit): ApiServer {
  const log = components.logger.child({ component: 'api' })
  const table = new Map<string, Route>(routes.map(r => [`${r.method} ${r.path}`, r]))
  const paths = new Set(routes.map(r => r.path))
  const streams = new StreamErrors()

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req)
    if (url === undefined) {
      // `//` or `//[`: a request target WHATWG URL parsing refuses (it reads
      // them as an authority); nothing was routed, nothing was counted
      if (!req.complete) closeAfterAnswer(req, res)
      sendError(res, 400, 'InvalidRequestError', 'malformed request target')
      return
    }
    const route = table.get(`${req.method ?? ''} ${url.pathname}`)
    const page = isPageAsset(req.method, url.pathname)
    const label = route?.path ?? (page ? 'page' : 'unknown')
    const stop = components.metrics.requestSeconds.startTimer({ method: req.method, route: label })
    const abort = new AbortController()
    res.once('close', () => { if (!res.writableFinished) abort.abort() })
    try {
      if (page) { await sendPageAsset(res, req.method ?? 'GET', url.pathname, log); return }
      checkToken(req, init.token)
      if (route === undefined) {
        const status = paths.has(url.pathname) ? 405 : 404
        sendError(res, status, status === 405 ? 'MethodNotAllowedError' : 'NotFoundError', `${req.method ?? ''} ${url.pathname}: ${status === 405 ? 'method not allowed' : 'no such endpoint'}`)
        return
      }
      refuseUnwantedBody(req, route)
      await route.handle({ req, res, query: url.searchParams, signal: abort.signal, components, streams })
    } catch (err: any) {
      const { status, name, message, level } = describeError(err)
      if (level === 'error') log.error({ err, route: label }, 'request failed')
      else if (level === 'warn') log.warn({ route: label, name }, message)
      else log.debug({ route: label, name, message }, 'request rejected')
      // the client may still be sending: it gets the answer first, then the
      // connection is cut, so a refused client (no token, no room) cannot
      // hold it open by sending forever
      if (!req.complete) closeAfterAnswer(req, res)
      sendError(res, status, name, message)
    } finally {
      stop()
      components.metrics.requests.inc({ method: req.method, route: label, status: String(res.statusCode) })
    }
  }

  let server: Server | undefined
  return {
    async start () {
      server = createServer({
        // uploads, downloads and `repair --wait` may be long: no bound on a
        // whole request, but its head must come quickly (a client that never
        // finishes its headers is cut off, token or not)
        requestTimeout: 0,
        headersTimeout: init.headersTimeoutMs ?? 10_000,
        connectionsCheckingInterval: 1_000,
        keepAliveTimeout: init.keepAliveTimeoutMs ?? 5_000
      }, (req, res) => {
        handle(req, res).catch(err => {
          // a bug of ours, not the client's: log it and answer, never let it end the process
          log.error({ err }, 'request handler failed')
          if (!res.headersSent) sendError(res, 500, 'InternalError', String(err?.message ?? err))
          else res.destroy()
        })
      })
      server.maxConnections = init.maxConnections ?? 256
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject)
        server?.listen(init.port, init.host, () => resolve())
      })
      return server.address() as AddressInfo
    },
    async stop () {
      if (server === undefined) return
      const s = server
      server = undefined
      await new Promise<void>(resolve => {
        s.close(() => resolve())
        s.closeAllConnections()
      })
    }
  }
}

/**
 * The request target as a URL, or undefined when it cannot be parsed: a
 * raw target such as `//` or `//[` is read by WHATWG URL parsing as an
 * authority, and `new URL` throws on it.
 */
function requestUrl (req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://api')
  } catch {
    return undefined
  }
}

/**
 * Refuse a request that carries a body to an endpoint that takes none
 * (every route without `body`): a `Content-Length` above 0, or any
 * `Transfer-Encoding` (a chunked body, even an empty one). Its handler
 * never runs, so nothing changes; the body is left to
 * {@link closeAfterAnswer}, as for any refused request. A
 * `Content-Length: 0` is no body.
 *
 * @throws {TooLargeError} 413, naming the endpoint and what was sent
 */
function refuseUnwantedBody (req: IncomingMessage, route: Route): void {
  if (route.body === true) return
  const sent = announcedBody(req)
  if (sent === undefined) return
  throw new TooLargeError(`${route.method} ${route.path} takes no request body (got ${sent})`)
}

/** The body a request's head announces, in words ("12 bytes", "a chunked body"); undefined for none. */
function announcedBody (req: IncomingMessage): string | undefined {
  const encoding = req.headers['transfer-encoding']
  if (encoding !== undefined) return `a ${encoding} body`
  // Node's HTTP parser has refused a Content-Length that is not a number
  const length = Number(req.headers['content-length'] ?? 0)
  return length > 0 ? `${length} bytes` : undefined
}

/**
 * Close a refused request's connection once its answer is out, unless the
 * client finishes its request first: the client reads the answer while it
 * is still sending (cutting at once would make it fail with EPIPE before it
 * read why), and {@link REFUSED_LINGER_MS} later the connection is cut
 * whatever it still sends. A request whose rest arrives in time (read and
 * dropped) leaves a clean connection: the client's next requests on it are
 * served, not cut in the middle by a timer of the refused one.
 */
function closeAfterAnswer (req: IncomingMessage, res: ServerResponse): void {
  // no `Connection: close`: with it the server ends the socket as soon as the
  // answer is written, and a client still sending gets EPIPE before it reads
  // the answer; without it the rest of the body is read and dropped
  // the request lets go of its socket once the response is done (or at
  // once, when the client already went away): keep it
  const socket = req.socket as Socket | null
  if (socket === null) return
  res.once('finish', () => {
    if (req.complete) return
    const timer = setTimeout(() => { socket.destroy() }, REFUSED_LINGER_MS)
    timer.unref()
    const done = (): void => {
      clearTimeout(timer)
      socket.off('close', done)
      req.off('end', done)
    }
    socket.once('close', done)
    req.once('end', done)
  })
}
