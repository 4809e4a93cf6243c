/**
 * `shoal invite`: the line a new node needs to join this node's swarm.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { encodeInvite, MAX_INVITE_ADDRS } from '../../protocol/invite.js'
import { parseSwarmKey } from '../../protocol/swarm-key.js'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What an invite is made from. */
export interface InviteSource {
  peerId: string
  /** The addresses the node listens on now (libp2p `getMultiaddrs()`). */
  addresses: Multiaddr[]
  /** `<repo>/swarm.key`, or undefined in an open swarm. */
  swarmKeyFile?: string
}

/** An invite and what it holds, for `shoal invite --json`. */
export interface InviteInfo {
  /** The line to give `shoal init --join`: a secret when `swarm` is private. */
  invite: string
  peer: string
  addresses: string[]
  swarm: 'private' | 'open'
}

/**
 * Build an invite: the swarm key (none in an open swarm), this node's peer
 * id and its addresses — those other machines can reach first, loopback
 * last (it only helps a node on this machine).
 */
export async function createInvite (source: InviteSource): Promise<InviteInfo> {
  const key = source.swarmKeyFile === undefined ? undefined : parseSwarmKey(await readFile(source.swarmKeyFile, 'utf8'))
  const addrs = [...new Set(source.addresses.map(a => withoutPeer(a)))]
    .sort((a, b) => Number(isLoopback(a)) - Number(isLoopback(b)))
    .slice(0, MAX_INVITE_ADDRS)
  const invite = encodeInvite({ peer: source.peerId, addrs, key })
  return { invite, peer: source.peerId, addresses: addrs, swarm: key === undefined ? 'open' : 'private' }
}

function withoutPeer (addr: Multiaddr): string {
  const text = addr.toString()
  const i = text.indexOf('/p2p/')
  return i < 0 ? text : text.slice(0, i)
}

function isLoopback (addr: string): boolean {
  return addr.startsWith('/ip4/127.') || addr.startsWith('/ip6/::1/')
}
