/**
 * The `gateway` setting: where the daemon's read-only HTTP gateway listens.
 *
 * The value is `HOST:PORT` (`127.0.0.1:5748`, `[::1]:5748`, `0.0.0.0:8080`;
 * port 0 picks a free one) or `off`. Unlike the API, any interface may be
 * named: a gateway is read-only and meant to be reachable by IPFS tools, but
 * it serves everything the swarm holds to whoever reaches it, so the default
 * is loopback and the daemon warns when it listens elsewhere
 * (docs/security.md). Host names other than `localhost` are refused: what a
 * name resolves to can change, an address cannot.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { InvalidArgumentError } from '../errors.js'
import type { RepoLayout } from '../repo/index.js'
import { isLoopbackHost } from '../../protocol/api-address.js'

/** The gateway's default address: the port after the API's default (5747). */
export const DEFAULT_GATEWAY = '127.0.0.1:5748'

/** The setting's value that turns the gateway off. */
export const GATEWAY_OFF = 'off'

/** A parsed `gateway` setting. */
export type GatewaySetting =
  | { enabled: false }
  | { enabled: true, host: string, port: number }

/** True for an address only this machine can reach (the API's rule: protocol/api-address.ts). */
export { isLoopbackHost }

/**
 * Parse the `gateway` setting.
 *
 * @throws {InvalidArgumentError} naming what is wrong, for anything but `off` or `IP:PORT`
 */
export function parseGatewaySetting (text: string): GatewaySetting {
  if (text === GATEWAY_OFF) return { enabled: false }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  if (m === null) throw new InvalidArgumentError(`invalid gateway address ${JSON.stringify(text)}: expected HOST:PORT (e.g. 127.0.0.1:5748, [::1]:5748) or "off"`)
  const host = m[1] ?? m[2]
  const port = Number(m[3])
  if (port > 65535) throw new InvalidArgumentError(`invalid gateway port ${port}: at most 65535`)
  if (host !== 'localhost' && isIP(host) === 0) throw new InvalidArgumentError(`invalid gateway host ${JSON.stringify(host)}: an IP address (127.0.0.1, ::1, 0.0.0.0…) or localhost`)
  if (m[1] !== undefined && isIP(host) !== 6) throw new InvalidArgumentError(`invalid gateway host ${JSON.stringify(host)}: only IPv6 addresses go in brackets`)
  if (m[2] !== undefined && isIP(host) === 6) throw new InvalidArgumentError(`invalid gateway address ${JSON.stringify(text)}: put an IPv6 address in brackets, [${host}]:${port}`)
  return { enabled: true, host, port }
}

/** The `http://` base URL of a gateway listening on `host:port`. */
export function gatewayUrl (host: string, port: number): string {
  return isIP(host) === 6 ? `http://[${host}]:${port}` : `http://${host}:${port}`
}

/**
 * The gateway URL the running daemon bound, as it wrote it to
 * `<repo>/gateway`; null when there is no such file (the gateway is off, or
 * the node runs without a daemon).
 */
export async function readGatewayUrl (layout: Pick<RepoLayout, 'gateway'>): Promise<string | null> {
  try {
    const url = (await readFile(layout.gateway, 'utf8')).trim()
    return url === '' ? null : url
  } catch (err: any) {
    if (err?.code === 'ENOENT') return null
    throw err
  }
}
