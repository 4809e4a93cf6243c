/**
 * Invites: one line that holds what a new node needs to join a swarm — the
 * swarm key (absent for an open swarm), the inviting node's peer id and its
 * reachable addresses, and those of a few other members it was connected
 * to, so that a node that joins while the inviter is down still finds the
 * swarm.
 *
 * Format: `shoal-invite-1:` followed by the base64url (no padding) of a JSON
 * object `{ "peer": "<peer id>", "addrs": ["/ip4/…/tcp/4747", …], "key": "<64 hex>",
 * "members": [{ "peer": "<peer id>", "addrs": […] }, …] }` (`key` and
 * `members` optional).
 * The decoder is strict (exact keys, types, bounds, every address a
 * multiaddr without `/p2p/`) and throws {@link InvalidInviteError} for
 * anything else. An invite that carries a key is a secret: whoever holds it
 * can join the swarm and read and write everything in it.
 *
 * @module
 */
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidArgumentError } from './errors.js'
import { parsePeerId } from './peer-address.js'

/** The prefix of every invite of this version. */
export const INVITE_PREFIX = 'shoal-invite-1:'

/** Most addresses an invite carries. */
export const MAX_INVITE_ADDRS = 16

/** Longest address in an invite. */
export const MAX_INVITE_ADDR_LENGTH = 256

/** Most other members an invite names. */
export const MAX_INVITE_MEMBERS = 8

/** Most addresses an invite carries for each other member. */
export const MAX_MEMBER_ADDRS = 4

/** Longest invite text. */
export const MAX_INVITE_LENGTH = 8192

/** Text that is not a valid invite. */
export class InvalidInviteError extends InvalidArgumentError {
  override name = 'InvalidInviteError'
}

/** What an invite holds. */
export interface Invite {
  /** Peer id of the inviting node. */
  peer: string
  /** Its addresses, without `/p2p/` (dial `${addr}/p2p/${peer}`). */
  addrs: string[]
  /** The 32-byte swarm key; absent for an open swarm. */
  key?: Uint8Array
  /** Other members the inviter was connected to, to dial too (a node joining while the inviter is down). */
  members?: InviteMember[]
}

/** Another member named by an invite. */
export interface InviteMember {
  peer: string
  /** Its addresses, without `/p2p/`. */
  addrs: string[]
}

/** Encode an invite (checked first). @throws {InvalidInviteError} */
export function encodeInvite (invite: Invite): string {
  const body: Record<string, unknown> = { peer: invite.peer, addrs: invite.addrs }
  if (invite.key !== undefined) body.key = Buffer.from(invite.key).toString('hex')
  if (invite.members !== undefined && invite.members.length > 0) body.members = invite.members.map(m => ({ peer: m.peer, addrs: m.addrs }))
  const text = INVITE_PREFIX + Buffer.from(JSON.stringify(body)).toString('base64url')
  decodeInvite(text)
  return text
}

/**
 * Decode and validate an invite line (surrounding white space is ignored).
 *
 * @throws {InvalidInviteError} for anything malformed
 */
export function decodeInvite (text: string): Invite {
  const line = text.trim()
  if (line.length > MAX_INVITE_LENGTH) fail(`longer than ${MAX_INVITE_LENGTH} characters`)
  if (!line.startsWith(INVITE_PREFIX)) fail(`it does not start with ${INVITE_PREFIX}`)
  const payload = line.slice(INVITE_PREFIX.length)
  if (!/^[A-Za-z0-9_-]+$/.test(payload)) fail('it is not base64url after the prefix')
  let body: unknown
  try {
    body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    fail('its content is not JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) fail('its content is not an object')
  const fields = body as Record<string, unknown>
  for (const k of Object.keys(fields)) if (!['peer', 'addrs', 'key', 'members'].includes(k)) fail(`unknown field ${JSON.stringify(k.slice(0, 40))}`)
  const { peer, addrs, key, members } = fields
  checkPeer(peer, 'peer')
  checkAddrs(addrs, 'addrs', MAX_INVITE_ADDRS)
  const invite: Invite = { peer, addrs: [...addrs] }
  if (members !== undefined) {
    if (!Array.isArray(members) || members.length > MAX_INVITE_MEMBERS) fail(`members must hold at most ${MAX_INVITE_MEMBERS} members`)
    invite.members = members.map((m: unknown, i) => {
      if (typeof m !== 'object' || m === null || Array.isArray(m)) fail(`members[${i}] is not an object`)
      const member = m as Record<string, unknown>
      for (const k of Object.keys(member)) if (!['peer', 'addrs'].includes(k)) fail(`members[${i}] has an unknown field ${JSON.stringify(k.slice(0, 40))}`)
      checkPeer(member.peer, `members[${i}].peer`)
      if (member.peer === peer) fail(`members[${i}] is the inviter`)
      checkAddrs(member.addrs, `members[${i}].addrs`, MAX_MEMBER_ADDRS)
      return { peer: member.peer, addrs: [...member.addrs] }
    })
  }
  if (key !== undefined) {
    if (typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) fail('key must be 64 lower-case hex digits')
    invite.key = Uint8Array.from(Buffer.from(key, 'hex'))
  }
  return invite
}

/** The dialable addresses of an invite's peer, then of the other members it names. */
export function inviteDialAddrs (invite: Invite): string[] {
  return [invite, ...(invite.members ?? [])].flatMap(m => m.addrs.map(a => `${a}/p2p/${m.peer}`))
}

function checkPeer (peer: unknown, what: string): asserts peer is string {
  if (typeof peer !== 'string') fail(`${what} is missing`)
  try {
    parsePeerId(peer)
  } catch {
    fail(`${what} is not a peer id`)
  }
}

function checkAddrs (addrs: unknown, what: string, max: number): asserts addrs is string[] {
  if (!Array.isArray(addrs) || addrs.length === 0 || addrs.length > max) fail(`${what} must hold 1 to ${max} addresses`)
  for (const a of addrs) checkAddr(a)
}

function checkAddr (a: unknown): void {
  if (typeof a !== 'string' || a.length === 0 || a.length > MAX_INVITE_ADDR_LENGTH) fail(`every address must be a string of 1 to ${MAX_INVITE_ADDR_LENGTH} characters`)
  let components
  try {
    components = multiaddr(a).getComponents()
  } catch {
    fail(`${JSON.stringify(a.slice(0, 80))} is not a multiaddr`)
  }
  if (components.some(c => c.name === 'p2p')) fail('addresses must not name a peer (/p2p/)')
}

function fail (why: string): never {
  throw new InvalidInviteError(`invalid invite: ${why}`)
}
