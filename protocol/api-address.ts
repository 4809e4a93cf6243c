import { InvalidArgumentError } from './errors.js'

/** A loopback host and port for the HTTP API. */
export interface ApiAddress { host: string, port: number }

/** True for a host name or address only this machine can reach: 127/8, `::1`, `localhost`. */
export function isLoopbackHost (host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === 'localhost'
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
  return { host, port }
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
