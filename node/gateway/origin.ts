/**
 * Who may ask the gateway: its defences against web pages in the user's
 * browser. The gateway sends no CORS headers, so a page elsewhere cannot
 * read a response through `fetch`; but a browser makes no-cors requests
 * (`<img>`, `<video>`, `<script>`) for any page, and a page can rebind a
 * name it controls to the gateway's address. So:
 *
 * - a `Host` that is a name (not an IP address) is refused (403), except
 *   `localhost` and `*.localhost`: a rebound name reaches the gateway with
 *   its own name in `Host`; on a loopback address, the `Host` must be a
 *   loopback one;
 * - a request a browser marks `Sec-Fetch-Site: cross-site` (made for
 *   another site's page: an `<img>`, a `<video>`, a `fetch`, a frame) is
 *   refused (403), except a top-level navigation (`Sec-Fetch-Mode:
 *   navigate`, `Sec-Fetch-Dest: document`): following a link to the gateway
 *   from another site works, and the page that linked cannot read what the
 *   new document shows;
 * - every response says `Cross-Origin-Resource-Policy: same-origin`, so a
 *   browser that sent no `Sec-Fetch-Site` still withholds it from another
 *   site's page;
 * - the content itself (files, listings) is served with
 *   `Content-Security-Policy: sandbox`: an HTML or SVG file from the swarm
 *   opens as a sandboxed document of an opaque origin, which runs no script
 *   and cannot act as the gateway's origin.
 *
 * @module
 */
import { isIP } from 'node:net'
import { isLoopbackHost } from './address.js'
import { CrossSiteRequestError, ForbiddenHostError } from './errors.js'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

/** Headers of every gateway response. */
export const ORIGIN_HEADERS: OutgoingHttpHeaders = { 'cross-origin-resource-policy': 'same-origin' }

/** Headers of every deserialized response (files, directory pages). */
export const CONTENT_HEADERS: OutgoingHttpHeaders = { 'content-security-policy': 'sandbox' }

/** The host part of a `Host` header (`127.0.0.1:5748`, `[::1]:5748`, `localhost`), lower case. */
export function hostOf (header: string): string {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(header.trim())
  return (m?.[1] ?? m?.[2] ?? header).toLowerCase()
}

/** Options of {@link checkOrigin}. */
export interface CheckOriginOptions {
  /** The gateway listens on a loopback address. */
  loopback: boolean
  /** The authority of an absolute-form request target (./target.ts), checked as `Host` is. */
  authority?: string
}

/**
 * Refuse a request a web page may have made against the user's will (see
 * the module comment). The authority of an absolute-form target is the
 * request's host (RFC 9112 §3.2.2) and is checked as `Host` is; `Host` is
 * checked as well (a client sends the same in both, RFC 9112 §7.2), so a
 * request passes only when every host it names may.
 *
 * @throws {ForbiddenHostError} for a `Host` or an authority naming something else than this machine or an IP address
 * @throws {CrossSiteRequestError} for `Sec-Fetch-Site: cross-site`, but a top-level navigation
 */
export function checkOrigin (headers: IncomingHttpHeaders, options: CheckOriginOptions): void {
  if (options.authority !== undefined) checkHost(options.authority, options.loopback)
  if (headers.host !== undefined) checkHost(headers.host, options.loopback)
  const navigation = headers['sec-fetch-mode'] === 'navigate' && headers['sec-fetch-dest'] === 'document'
  if (headers['sec-fetch-site'] === 'cross-site' && !navigation) throw new CrossSiteRequestError('a request made for another site\'s page is refused: open the gateway\'s URL directly')
}

/** Refuse a host (`Host`, or an absolute target's authority) that is a name, or not this machine on a loopback gateway. */
function checkHost (host: string, loopback: boolean): void {
  const name = hostOf(host)
  const local = isLoopbackHost(name) || name.endsWith('.localhost')
  const shown = JSON.stringify(host.slice(0, 100))
  if (loopback && !local) throw new ForbiddenHostError(`host ${shown} is not this machine: a loopback gateway answers requests to 127.0.0.1, [::1] or localhost only`)
  if (!local && isIP(name) === 0) throw new ForbiddenHostError(`host ${shown} is a name: the gateway answers requests to its IP address (or localhost) only, so a name rebound to it cannot reach it`)
}
