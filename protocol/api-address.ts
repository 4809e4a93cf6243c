import { BlockList, isIP } from 'node:net'
import { InvalidArgumentError } from './errors.js'

/** A loopback host and port for the HTTP API. */
export interface ApiAddress { host: string, port: number }

/** 127/8 and ::1; an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is checked as its IPv4 address. */
const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/**
 * True for a host name or address only this machine can reach: 127/8, `::1`
 * in any spelling (`0:0:0:0:0:0:0:1`, `::ffff:127.0.0.1`), `localhost` in any case.
 */
export function isLoopbackHost (host: string): boolean {
  const family = isIP(host)
  if (family === 0) return host.toLowerCase() === 'localhost'
  return LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6')
}

/**
 * Parse `HOST:PORT` for the API. Only loopback hosts are accepted: the API
 * holds the node's keys to the kingdom and is never exposed.
 *
 * @throws {InvalidArgumentError}
 */
export function parseApiAddress (text: string): ApiAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text)
  if (m === null) throw new InvalidArgumentError(`invalid API address ${JSON.stringify(text)}: expected HOST:PORT`)
  const host = m[1] ?? m[2]
  const port = Number(m[3])
  if (port > 65535) throw new InvalidArgumentError(`invalid port ${port}`)
  if (!isLoopbackHost(host)) throw new InvalidArgumentError(`API address must be a loopback host (127.0.0.1 or ::1), got ${host}: the API controls the whole node; reach it from another machine through an SSH tunnel`)
  return { host: plainHost(host), port }
}

/**
 * A host as the API listens on it and names it in `<repo>/api`: an
 * IPv4-mapped IPv6 address as its IPv4 address (`::ffff:127.0.0.1` →
 * `127.0.0.1`: the same socket, and a multiaddr every client reads), other
 * IPv6 addresses compressed, names in lower case.
 */
function plainHost (host: string): string {
  if (isIP(host) === 4) return host
  if (isIP(host) === 0) return host.toLowerCase()
  const compressed = new URL(`http://[${host}]/`).hostname.slice(1, -1)
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed)
  if (mapped === null) return compressed
  const [hi, lo] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)]
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.')
}

/** The multiaddr the daemon writes to `<repo>/api`, like Kubo. */
export function formatApiMultiaddr (host: string, port: number): string {
  return host.includes(':') ? `/ip6/${host}/tcp/${port}` : `/ip4/${host === 'localhost' ? '127.0.0.1' : host}/tcp/${port}`
}

/**
 * The HTTP base URL from the contents of `<repo>/api`.
 *
 * @throws {InvalidArgumentError}
 */
export function apiUrlFromMultiaddr (text: string): string {
  const m = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)(?:\/http)?\s*$/.exec(text.trim())
  if (m === null) throw new InvalidArgumentError(`malformed API address file: ${JSON.stringify(text.slice(0, 80))}`)
  return m[1] === 'ip6' ? `http://[${m[2]}]:${m[3]}` : `http://${m[2]}:${m[3]}`
}
