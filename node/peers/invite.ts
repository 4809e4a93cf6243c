/**
 * `shoal invite`: the line a new node needs to join this node's swarm.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { encodeInvite, INVITE_PREFIX, MAX_INVITE_ADDRS, MAX_INVITE_LENGTH, MAX_INVITE_MEMBERS, MAX_MEMBER_ADDRS, type InviteMember } from '../../protocol/invite.js'
import { parseSwarmKey } from '../../protocol/swarm-key.js'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { WritersMode } from '../namespace/trust.js'

/** What an invite is made from. */
export interface InviteSource {
  peerId: string
  /** The addresses the node listens on now (libp2p `getMultiaddrs()`). */
  addresses: Multiaddr[]
  /** `<repo>/swarm.key`, or undefined in an open swarm. */
  swarmKeyFile?: string
  /** Peers this node is connected to now, with the addresses they listen on: named too, so a node that joins while this one is down finds the swarm. */
  members?: Array<{ peerId: string, addresses: Multiaddr[] }>
  /**
   * Who may write this node's namespace (trust.ts): `swarm`, every holder
   * of the swarm key; `listed`, only the peers the members trust. An open
   * swarm is always `listed`. @default 'swarm' in a private swarm
   */
  writers?: WritersMode
}

/** An invite and what it holds, for `shoal invite --json`. */
export interface InviteInfo {
  /** The line to give `shoal init --join`: a secret when `swarm` is private. */
  invite: string
  peer: string
  addresses: string[]
  /** Peer ids of the other members the invite names. */
  members: string[]
  swarm: 'private' | 'open'
  /**
   * Whether the holder writes as soon as it joins (`swarm`: every key
   * holder writes) or only once the members trust it (`listed`, and every
   * open swarm): what the invite gives, as `shoal invite` says it.
   */
  writers: WritersMode
}

/**
 * Build an invite: the swarm key (none in an open swarm), this node's peer
 * id and its addresses — those other machines can reach first, loopback
 * last (it only helps a node on this machine) — and up to
 * {@link MAX_INVITE_MEMBERS} of the peers it is connected to, each with a
 * few of its addresses, as long as the line stays within its bound.
 */
export async function createInvite (source: InviteSource): Promise<InviteInfo> {
  const key = source.swarmKeyFile === undefined ? undefined : parseSwarmKey(await readFile(source.swarmKeyFile, 'utf8'))
  const addrs = reachableFirst(source.addresses, MAX_INVITE_ADDRS)
  const members: InviteMember[] = []
  for (const m of source.members ?? []) {
    if (members.length >= MAX_INVITE_MEMBERS || m.peerId === source.peerId) continue
    const memberAddrs = reachableFirst(m.addresses, MAX_MEMBER_ADDRS)
    if (memberAddrs.length === 0) continue
    const next = [...members, { peer: m.peerId, addrs: memberAddrs }]
    // the line stays within what a decoder takes: members past that are left out
    if (encodedLength({ peer: source.peerId, addrs, key, members: next }) > MAX_INVITE_LENGTH) break
    members.push(next[next.length - 1])
  }
  const invite = encodeInvite({ peer: source.peerId, addrs, key, members })
  const writers: WritersMode = key === undefined ? 'listed' : source.writers ?? 'swarm'
  return { invite, peer: source.peerId, addresses: addrs, members: members.map(m => m.peer), swarm: key === undefined ? 'open' : 'private', writers }
}

/** Up to `max` distinct addresses without `/p2p/`, those other machines can reach first. */
function reachableFirst (addresses: Multiaddr[], max: number): string[] {
  return [...new Set(addresses.map(a => withoutPeer(a)))]
    .sort((a, b) => Number(isLoopback(a)) - Number(isLoopback(b)))
    .slice(0, max)
}

/** The length of an invite's line, without checking it. */
function encodedLength (invite: { peer: string, addrs: string[], key?: Uint8Array, members: InviteMember[] }): number {
  const body = { ...invite, key: invite.key === undefined ? undefined : Buffer.from(invite.key).toString('hex') }
  return INVITE_PREFIX.length + Math.ceil(Buffer.byteLength(JSON.stringify(body)) * 4 / 3)
}

function withoutPeer (addr: Multiaddr): string {
  const text = addr.toString()
  const i = text.indexOf('/p2p/')
  return i < 0 ? text : text.slice(0, i)
}

function isLoopback (addr: string): boolean {
  return addr.startsWith('/ip4/127.') || addr.startsWith('/ip6/::1/')
}
