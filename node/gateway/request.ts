/**
 * What a gateway request asks for, parsed from its method and URL before
 * anything is read: the content path (`/ipfs/{cid}[/{path}…]`) and the query.
 * Every malformed part is refused here with a typed error, so the handlers
 * only ever see a valid CID and clean path segments.
 *
 * @module
 */
import { parseCID } from '../../protocol/target.js'
import { InvalidCIDError, InvalidPathError, NotFoundError } from '../errors.js'
import { MethodNotAllowedError } from './errors.js'
import type { CID } from 'multiformats/cid'

/** The methods a read-only gateway answers. */
export const ALLOWED_METHODS = ['GET', 'HEAD'] as const

/** An immutable content path: a CID and the names below it. */
export interface ContentPath {
  /** The CID the path starts at. */
  root: CID
  /** Path segments below the root, percent-decoded (UnixFS names). */
  segments: string[]
  /** The URL path ended with `/` (a directory URL). */
  trailingSlash: boolean
  /** The path as requested, percent-encoded (without its trailing slash), for `X-Ipfs-Path` and redirects. */
  text: string
}

/** A parsed gateway request. */
export interface GatewayRequest {
  /** HEAD: headers only. */
  head: boolean
  path: ContentPath
  query: URLSearchParams
}

/**
 * Parse a request's method and URL.
 *
 * @throws {MethodNotAllowedError} for methods other than GET and HEAD
 * @throws {NotFoundError} for URLs outside `/ipfs/` (IPNS names are not resolved)
 * @throws {InvalidCIDError} for a malformed CID
 * @throws {InvalidPathError} for undecodable, empty, `.`/`..` or slash-holding segments
 */
export function parseGatewayRequest (method: string | undefined, rawUrl: string | undefined): GatewayRequest {
  if (method !== 'GET' && method !== 'HEAD') {
    throw new MethodNotAllowedError(`${method ?? ''} not allowed: this gateway is read-only (${ALLOWED_METHODS.join(', ')})`)
  }
  // the path as sent, not as WHATWG URL parsing normalizes it (it drops `..` and `%2e%2e` segments)
  const target = (rawUrl ?? '/').split('#')[0]
  const q = target.indexOf('?')
  const pathname = q < 0 ? target : target.slice(0, q)
  const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1))
  if (pathname.startsWith('/ipns/') || pathname === '/ipns') throw new NotFoundError('IPNS names are not resolved by this gateway: ask for /ipfs/{cid}')
  if (!pathname.startsWith('/ipfs/')) throw new NotFoundError(`no such path ${JSON.stringify(pathname.slice(0, 200))}: this gateway serves /ipfs/{cid}[/path]`)
  const parts = pathname.slice('/ipfs/'.length).split('/')
  const trailingSlash = parts.length > 1 && parts[parts.length - 1] === ''
  if (trailingSlash) parts.pop()
  const [cidText, ...rest] = parts.map(decodeSegment)
  if (cidText === '') throw new InvalidCIDError('missing CID: ask for /ipfs/{cid}[/path]')
  const root = parseCID(cidText)
  for (const segment of rest) checkSegment(segment)
  // re-encoded: a header value and a Location hold ASCII only
  const text = `/ipfs/${[cidText, ...rest].map(encodeURIComponent).join('/')}`
  return { head: method === 'HEAD', path: { root, segments: rest, trailingSlash, text }, query }
}

function decodeSegment (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new InvalidPathError(`invalid path segment ${JSON.stringify(segment.slice(0, 100))}: bad percent-encoding`)
  }
}

/** A UnixFS name: not empty, not `.` or `..`, no `/`, no NUL, not ending in `\` (an escape to the path walker). */
function checkSegment (segment: string): void {
  if (segment === '') throw new InvalidPathError('invalid path: empty segment (//)')
  if (segment === '.' || segment === '..') throw new InvalidPathError(`invalid path segment ${JSON.stringify(segment)}`)
  if (segment.includes('/') || segment.includes('\0') || segment.endsWith('\\')) {
    throw new InvalidPathError(`invalid path segment ${JSON.stringify(segment.slice(0, 100))}: a name holds no "/", NUL or trailing "\\"`)
  }
}
