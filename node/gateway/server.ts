/**
 * The gateway's HTTP server: its own listener beside the API, no token
 * (everything it serves is read-only and addressed by hash), GET and HEAD
 * of `/ipfs/{cid}[/path]` only. Each request is parsed and negotiated
 * (./request.ts, ./negotiate.ts) before anything is read, then answered
 * through the node's block service under a retrieval timeout
 * (./watchdog.ts); a client that goes away aborts its reads.
 *
 * On a loopback address, requests naming another host in `Host` are refused
 * (403): a web page cannot use DNS rebinding to read the swarm's content
 * through the user's browser. No CORS headers are sent, for the same reason.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import { isLoopbackHost } from './address.js'
import { ForbiddenHostError, GatewayAddressInUseError, MethodNotAllowedError } from './errors.js'
import { describeFailure, sendFailure } from './http.js'
import { negotiate } from './negotiate.js'
import { ALLOWED_METHODS, parseGatewayRequest } from './request.js'
import { serveCar, serveRaw } from './trustless.js'
import { serveContent } from './deserialized.js'
import { RetrievalWatchdog } from './watchdog.js'
import { contentSession, type PinSource } from './pinned.js'
import type { GatewayContext } from './context.js'
import type { Logger } from '../logger.js'
import type { BlockReader } from '../reads/api.js'
import type { AddressInfo } from 'node:net'

/** What the gateway reads from. */
export interface GatewayComponents {
  /** The node's block service. */
  blocks: BlockReader
  /** The namespace, searched for the pin of a file whose blocks a plain read cannot find. */
  namespace: PinSource
  logger: Logger
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
}

/** The default retrieval timeout. */
export const DEFAULT_RETRIEVAL_TIMEOUT_MS = 30_000

/** The host part of a `Host` header (`127.0.0.1:5748`, `[::1]:5748`, `localhost`). */
function hostOf (header: string): string {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(header.trim())
  return (m?.[1] ?? m?.[2] ?? header).toLowerCase()
}

/**
 * Timeouts of the listener: a CAR of a large DAG may stream for long, so a
 * whole request has no bound, but its head must come quickly and an idle
 * kept-alive connection is closed.
 */
function listenerOptions (init: GatewayServerInit): ServerOptions {
  return { requestTimeout: 0, headersTimeout: init.headersTimeoutMs ?? 10_000, keepAliveTimeout: init.keepAliveTimeoutMs ?? 5_000, connectionsCheckingInterval: 1_000 }
}

/** Create the gateway (not yet listening). */
export function createGatewayServer (components: GatewayComponents, init: GatewayServerInit): GatewayServer {
  const log = components.logger.child({ component: 'gateway' })
  const retrievalTimeoutMs = init.retrievalTimeoutMs ?? DEFAULT_RETRIEVAL_TIMEOUT_MS
  const checkHost = isLoopbackHost(init.host)

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController()
    res.once('close', () => { if (!res.writableFinished) abort.abort() })
    const watchdog = new RetrievalWatchdog({ timeoutMs: retrievalTimeoutMs, signal: abort.signal })
    try {
      const host = req.headers.host
      if (checkHost && host !== undefined && !isLoopbackHost(hostOf(host)) && !hostOf(host).endsWith('.localhost')) {
        throw new ForbiddenHostError(`host ${JSON.stringify(host.slice(0, 100))} is not this machine: a loopback gateway answers requests to 127.0.0.1, [::1] or localhost only`)
      }
      const request = parseGatewayRequest(req.method, req.url)
      const format = negotiate(request.query, req.headers.accept)
      const session = components.blocks.session({ root: request.path.root }, { signal: watchdog.signal })
      const ctx: GatewayContext = {
        req,
        res,
        request,
        blocks: watchdog.wrap(session),
        signal: watchdog.signal,
        contentBlocks: root => contentSession({ blocks: components.blocks, pins: components.namespace, root, signal: watchdog.signal, wrap: getter => watchdog.wrap(getter) })
      }
      if (format.kind === 'raw') await serveRaw(ctx)
      else if (format.kind === 'car') await serveCar(ctx, format)
      else await serveContent(ctx)
    } catch (err: any) {
      const failure = describeFailure(err, watchdog.timedOut)
      if (failure.status >= 500 && failure.status !== 504) log.error({ err, url: req.url }, 'gateway request failed')
      else log.debug({ url: req.url, name: failure.name, message: failure.message }, 'gateway request refused')
      const extra = err instanceof MethodNotAllowedError ? { allow: ALLOWED_METHODS.join(', ') } : err?.name === 'RangeNotSatisfiableError' ? { 'content-range': `bytes */${String(err.size)}` } : {}
      if (!abort.signal.aborted || watchdog.timedOut) sendFailure(res, failure, extra)
      else res.destroy()
    } finally {
      watchdog.dispose()
    }
  }

  let server: Server | undefined
  return {
    async start () {
      const s = createServer(listenerOptions(init), (req, res) => { void handle(req, res) })
      s.maxConnections = init.maxConnections ?? 256
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err: any) => {
          if (err?.code === 'EADDRINUSE') reject(new GatewayAddressInUseError(`gateway address ${init.host}:${init.port} is already in use (another Shoal repo's daemon?): set another with \`shoal config set gateway 127.0.0.1:PORT\`, or \`shoal config set gateway off\``))
          else reject(err)
        })
        s.listen(init.port, init.host, () => resolve())
      })
      server = s
      return s.address() as AddressInfo
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
