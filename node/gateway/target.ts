/**
 * The request target of a gateway request (RFC 9112 §3.2): the origin form
 * a client sends to a server (`/ipfs/{cid}?…`), or the absolute form a
 * client sends to a proxy and a proxy may pass on
 * (`http://127.0.0.1:5748/ipfs/{cid}?…`, §3.2.2). An absolute target is
 * answered as its path and query; its authority names the host the request
 * is for (a server uses it rather than `Host`), so it is checked as `Host`
 * is (./origin.ts) and cannot carry a request past that check.
 *
 * The path is taken as sent, not as WHATWG URL parsing would normalize it
 * (./request.ts refuses `..` segments itself).
 *
 * @module
 */
import { InvalidRequestTargetError } from './errors.js'

/** A request target split into what the gateway answers and the host it names. */
export interface RequestTarget {
  /** The path and query, as sent (`/ipfs/{cid}/a.txt?format=raw`); `/` for an absolute URL without a path. */
  pathAndQuery: string
  /** The authority of an absolute-form target (`127.0.0.1:5748`); undefined for any other form. */
  authority?: string
}

/** `scheme://authority` then the rest, of an absolute URI with an authority. */
const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/s

/**
 * Split a request's target (`req.url`). Anything not in absolute form is
 * passed on as it is (./request.ts answers what is not under `/ipfs/`).
 *
 * @throws {InvalidRequestTargetError} for an absolute target of a scheme other than http(s), with userinfo, or without a host
 */
export function parseRequestTarget (rawUrl: string | undefined): RequestTarget {
  const target = rawUrl ?? '/'
  const m = ABSOLUTE.exec(target)
  if (m === null) return { pathAndQuery: target }
  const [, scheme, authority, rest] = m
  const shown = JSON.stringify(target.slice(0, 200))
  if (!/^https?$/i.test(scheme)) throw new InvalidRequestTargetError(`request target ${shown} is not an http URL: ask for /ipfs/{cid}[/path], or http://host:port/ipfs/{cid}[/path]`)
  if (authority.includes('@')) throw new InvalidRequestTargetError(`request target ${shown} holds userinfo, which an http URL may not carry (RFC 9110 §4.2.4)`)
  if (authority === '') throw new InvalidRequestTargetError(`request target ${shown} names no host`)
  return { pathAndQuery: rest.startsWith('/') ? rest : `/${rest}`, authority }
}
