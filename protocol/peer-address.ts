import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidArgumentError } from './errors.js'
import type { PeerId } from '@libp2p/interface'

/**
 * Parse a dialable peer address: a multiaddr ending in `/p2p/<peer id>`.
 *
 * @throws {InvalidArgumentError}
 */
export function parsePeerAddress (text: string): { addr: Multiaddr, peerId: PeerId } {
  let addr: Multiaddr
  try {
    addr = multiaddr(text)
  } catch (err: any) {
    throw new InvalidArgumentError(`invalid multiaddr ${JSON.stringify(text.slice(0, 200))}: ${String(err.message)}`)
  }
  const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
  if (id === undefined) throw new InvalidArgumentError(`multiaddr ${text} has no /p2p/<peer id>: the peer must be named`)
  return { addr, peerId: parsePeerId(id) }
}

/**
 * Parse a peer id string.
 *
 * @throws {InvalidArgumentError}
 */
export function parsePeerId (text: string): PeerId {
  try {
    return peerIdFromString(text)
  } catch (err: any) {
    // the decoder's own words ("Please pass a multibase decoder…") say nothing to a user: what a peer id looks like does
    throw new InvalidArgumentError(`invalid peer id ${JSON.stringify(text.slice(0, 100))}: expected one such as 12D3KooW… (\`shoal id\`, \`shoal peers ls\`)`, { cause: err })
  }
}
