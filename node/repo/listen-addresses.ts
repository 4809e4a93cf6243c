/**
 * The swarm's listen addresses as the config takes them (`init --listen`,
 * `config set listen`): `/ip4/ADDR/tcp/PORT` or `/ip6/ADDR/tcp/PORT`. The
 * swarm runs over TCP only (pnet, the private swarm's cipher, needs a
 * stream transport; node/net/host.ts), and a listen address names an
 * interface, not a name to resolve. Checked when set, so that a value the
 * daemon cannot listen on (an empty string, a QUIC or DNS address) is
 * refused then and changes nothing, instead of saved and failing every
 * start after.
 *
 * @module
 */
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidArgumentError } from '../errors.js'

/**
 * Throw when `addr` is not a TCP address over IPv4 or IPv6.
 *
 * @throws {InvalidArgumentError} naming the address and the form expected
 */
export function checkListenAddress (addr: string): void {
  let names: string[]
  try {
    names = multiaddr(addr).getComponents().map(c => c.name)
  } catch (err: any) {
    throw new InvalidArgumentError(`invalid listen address ${JSON.stringify(addr)}: ${String(err.message)}`)
  }
  if (names.length !== 2 || (names[0] !== 'ip4' && names[0] !== 'ip6') || names[1] !== 'tcp') {
    throw new InvalidArgumentError(`invalid listen address ${JSON.stringify(addr)}: expected /ip4/ADDR/tcp/PORT or /ip6/ADDR/tcp/PORT (the swarm runs over TCP, on an interface's address)`)
  }
}
