/**
 * The gateway's HTTP server: its own listener beside the API, no token
 * (everything it serves is read-only and addressed by hash), GET and HEAD
 * of `/ipfs/{cid}[/path]` only, in origin or absolute form (./target.ts).
 * Each request is checked against web pages in the user's browser
 * (./origin.ts), parsed and negotiated
 * (./request.ts, ./negotiate.ts) before anything is read, then answered
 * through the node's block service under a retrieval timeout
 * (./watchdog.ts); a client that goes away aborts its reads.
 *
 * What one client can hold: at most `maxConcurrentRequests` requests are
 * answered at once (beyond, 503 with `Retry-After`); a connection whose
 * client reads nothing of what is waiting for it for `writeIdleTimeoutMs`
 * is closed, freeing its request and the bytes read ahead for it (a
 * request waiting for blocks is the retrieval timeout's business, not
 * this one's). The listener keeps running whatever a connection does: an
 * error of the server after it started is logged, never fatal.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import { isLoopbackHost } from './address.js'
import { GatewayAddressInUseError, GatewayBusyError, MethodNotAllowedError, NotCachedError } from './errors.js'
import { describeFailure, sendFailure } from './http.js'
import { negotiate } from './negotiate.js'
import { CONTENT_HEADERS, ORIGIN_HEADERS, checkOrigin } from './origin.js'
import { ALLOWED_METHODS, parseGatewayRequest } from './request.js'
import { parseRequestTarget } from './target.js'
import { serveCar, serveRaw } from './trustless.js'
import { serveContent } from './deserialized.js'
import { SniffedTypes } from './sniffed-types.js'
import { RetrievalWatchdog } from './watchdog.js'
import { contentSession } from '../reads/content-session.js'
import { SessionScope } from '../reads/session-scope.js'
import { PinIndex, type PinSource } from '../reads/pin-index.js'
import { WarnLimit } from '../namespace/trust.js'
import type { GatewayContext } from './context.js'
import type { Logger } from '../logger.js'
import type { BlockReader } from '../reads/api.js'
import type { AddressInfo, Socket } from 'node:net'
import type { BlockStore } from '../blocks/index.js'

/** What the gateway reads from. */
export interface GatewayComponents {
  /** The node's block service. */
  blocks: BlockReader
  /** The namespace, indexed for the pins of files whose blocks a plain read cannot find (node/reads/pin-index.ts). */
  namespace: PinSource
  /** That index, shared with the node's other reads by CID. @default one of the gateway's own over `namespace`, closed when it stops */
  pins?: PinIndex
  logger: Logger
  /** The local store, asked whether a root block is here for `Cache-Control: only-if-cached`. */
  blockstore: Pick<BlockStore, 'has'>
}

/** Whether a `Cache-Control` header holds the `only-if-cached` directive (case-insensitive, RFC 9111 §5.2.1.7). */
function onlyIfCached (header: string | undefined): boolean {
  return header !== undefined && header.split(',').some(d => d.trim().toLowerCase() === 'only-if-cached')
}

/** Options of {@link createGatewayServer}. */
export interface GatewayServerInit {
  host: string
  port: number
  /** Longest wait for the next block of a response before it fails with 504. @default 30_000 ms (Kubo's Gateway.RetrievalTimeout) */
  retrievalTimeoutMs?: number
  /** A client must send its whole request head within this time. @default 10_000 ms */
  headersTimeoutMs?: number
  /** An idle kept-alive connection is closed after this time. @default 5_000 ms */
  keepAliveTimeoutMs?: number
  /** Connections open at once; more are refused. @default 256 */
  maxConnections?: number
  /** Requests answered at once; more get 503 with `Retry-After`. @default 64 */
  maxConcurrentRequests?: number
  /** A connection with bytes waiting for its client, and no progress for this long, is closed. @default 60_000 ms */
  writeIdleTimeoutMs?: number
}

/** The running gateway. */
export interface GatewayServer {
  /**
   * Listen; resolves with the bound address.
   *
   * @throws {GatewayAddressInUseError} when the address is taken
   */
  start: () => Promise<AddressInfo>
  /** Stop listening and close every connection. Idempotent. */
  stop: () => Promise<void>
  /** The index of pinned files the gateway looks pins up in (its `builds` count the namespace scans). */
  readonly pins: PinIndex
}

/** The default retrieval timeout. */
export const DEFAULT_RETRIEVAL_TIMEOUT_MS = 30_000
/** The default bound of requests answered at once. */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 64
/** The default time a connection may make no progress towards its client. */
export const DEFAULT_WRITE_IDLE_TIMEOUT_MS = 60_000
/** Seconds a client refused for load is told to wait. */
const RETRY_AFTER_S = 5

/**
 * Timeouts of the listener: a CAR of a large DAG may stream for long, so a
 * whole request has no bound, but its head must come quickly, an idle
 * kept-alive connection is closed, and so is one whose client stopped
 * reading (the socket timeout, checked in the server's `timeout` event).
 */
function listenerOptions (init: GatewayServerInit): ServerOptions {
  return { requestTimeout: 0, headersTimeout: init.headersTimeoutMs ?? 10_000, keepAliveTimeout: init.keepAliveTimeoutMs ?? 5_000, connectionsCheckingInterval: 1_000 }
}

/** Create the gateway (not yet listening). */
export function createGatewayServer (components: GatewayComponents, init: GatewayServerInit): GatewayServer {
  const log = components.logger.child({ component: 'gateway' })
  const retrievalTimeoutMs = init.retrievalTimeoutMs ?? DEFAULT_RETRIEVAL_TIMEOUT_MS
  const maxConcurrent = init.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS
  const loopback = isLoopbackHost(init.host)
  const ownPins = components.pins === undefined
  const pins = components.pins ?? new PinIndex(components.namespace)
  /** Failures of peers (502) are the swarm's state, not the gateway's: warned of once a minute per kind. */
  const peerWarnings = new WarnLimit({ interval: 60_000 })
  /** The response under way on each connection. */
  const responses = new WeakMap<Socket, ServerResponse>()
  let active = 0
  const types = new SniffedTypes()

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController()
    res.once('close', () => { if (!res.writableFinished) abort.abort() })
    const watchdog = new RetrievalWatchdog({ timeoutMs: retrievalTimeoutMs, signal: abort.signal })
    const sessions = new SessionScope()
    // a slot is held until the handler is done and the response is closed (its bytes handed over, or the connection gone)
    let holds = 0
    const release = (): void => { if (--holds === 0) active-- }
    for (const [k, v] of Object.entries(ORIGIN_HEADERS)) if (v !== undefined) res.setHeader(k, v)
    try {
      const target = parseRequestTarget(req.url)
      checkOrigin(req.headers, { loopback, authority: target.authority })
      if (active >= maxConcurrent) {
        res.setHeader('retry-after', String(RETRY_AFTER_S))
        throw new GatewayBusyError(`the gateway is answering ${maxConcurrent} requests already: try again in ${RETRY_AFTER_S} s`)
      }
      active++
      holds = 2
      res.once('close', release)
      const request = parseGatewayRequest(req.method, target.pathAndQuery)
      const format = negotiate(request.query, req.headers.accept)
      // the trustless gateway spec: a client that wants nothing fetched for it learns whether the content is here (412)
      if (onlyIfCached(req.headers['cache-control']) && !(await components.blockstore.has(request.path.root))) {
        throw new NotCachedError(`${request.path.root.toString()} is not held by this node, and only-if-cached asks for nothing to be fetched`)
      }
      const session = sessions.add(components.blocks.session({ root: request.path.root }, { signal: watchdog.signal }))
      const ctx: GatewayContext = {
        req,
        res,
        request,
        blocks: watchdog.wrap(session),
        signal: watchdog.signal,
        types,
        contentBlocks: root => sessions.add(contentSession({
          blocks: components.blocks,
          lookup: async cid => await watchdog.guard(pins.lookup(cid)),
          root,
          signal: watchdog.signal,
          wrap: getter => watchdog.wrap(getter)
        }))
      }
      if (format.kind === 'raw') await serveRaw(ctx)
      else if (format.kind === 'car') await serveCar(ctx, format)
      else {
        for (const [k, v] of Object.entries(CONTENT_HEADERS)) if (v !== undefined) res.setHeader(k, v)
        await serveContent(ctx)
      }
    } catch (err: any) {
      const failure = describeFailure(err, watchdog.timedOut)
      if (failure.name === 'PeerUnavailableError') {
        const suppressed = peerWarnings.take(failure.name, Date.now())
        if (suppressed !== undefined) log.warn({ url: req.url, message: failure.message, suppressed }, 'gateway request failed: no peer could serve it')
        else log.debug({ url: req.url, message: failure.message }, 'gateway request failed: no peer could serve it')
      } else if (failure.status >= 500 && failure.status !== 504 && failure.status !== 503) log.error({ err, url: req.url }, 'gateway request failed')
      else log.debug({ url: req.url, name: failure.name, message: failure.message }, 'gateway request refused')
      const extra = err instanceof MethodNotAllowedError ? { allow: ALLOWED_METHODS.join(', ') } : err?.name === 'RangeNotSatisfiableError' ? { 'content-range': `bytes */${String(err.size)}` } : {}
      if (!abort.signal.aborted || watchdog.timedOut) sendFailure(res, failure, extra)
      else res.destroy()
    } finally {
      // the request is answered (or given up): its sessions' read-ahead stops here
      sessions.close()
      watchdog.dispose()
      if (holds > 0) release()
    }
  }

  /** A connection without progress: closed when bytes wait for its client (it stopped reading) or nothing is under way. */
  function onIdle (socket: Socket): void {
    const res = responses.get(socket)
    if (res !== undefined && socket.writableLength === 0 && !res.writableNeedDrain) return
    log.debug({ remote: socket.remoteAddress }, 'gateway connection closed: its client read nothing within the write-idle timeout')
    socket.destroy()
  }

  let server: Server | undefined
  return {
    pins,
    async start () {
      const s = createServer(listenerOptions(init), (req, res) => {
        responses.set(req.socket, res)
        res.once('close', () => { if (responses.get(req.socket) === res) responses.delete(req.socket) })
        void handle(req, res)
      })
      s.maxConnections = init.maxConnections ?? 256
      // half the bound: Node lets a socket's timeout pass once when its write queue changed since the last write,
      // so a client that stopped reading was closed between one and two timeouts (up to 2 min by default)
      const writeIdle = init.writeIdleTimeoutMs ?? DEFAULT_WRITE_IDLE_TIMEOUT_MS
      // 0 turns the check off, as a socket timeout of 0 does
      s.timeout = writeIdle === 0 ? 0 : Math.max(1, Math.round(writeIdle / 2))
      s.on('timeout', onIdle)
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err: any) => {
          if (err?.code === 'EADDRINUSE') reject(new GatewayAddressInUseError(`gateway address ${init.host}:${init.port} is already in use (another Shoal repo's daemon?): set another with \`shoal config set gateway 127.0.0.1:PORT\`, or \`shoal config set gateway off\``))
          else reject(err)
        })
        s.listen(init.port, init.host, () => resolve())
      })
      // from here on, an error of the listener (EMFILE on accept…) is logged: the daemon goes on
      s.removeAllListeners('error')
      s.on('error', (err: any) => { log.error({ err }, 'gateway server error') })
      server = s
      return s.address() as AddressInfo
    },
    async stop () {
      if (server === undefined) return
      const s = server
      server = undefined
      if (ownPins) pins.close()
      await new Promise<void>(resolve => {
        s.close(() => resolve())
        s.closeAllConnections()
      })
    }
  }
}
