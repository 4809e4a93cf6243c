/**
 * `shoal peers forget PEER`: a user's word that a member's node is gone for
 * good (its disk lost, the machine retired).
 *
 * Why: a member counts as active for `namespace.memberTimeout` (7 days)
 * after it was last heard from, and every active member holds things back
 * until it has seen them: the collection of removed files' shards
 * (durability/removal-clocks.ts), namespace compaction (the stable clock)
 * and the retirement of authors. One lost disk held gc back on every node
 * for a week, and nothing but waiting released it.
 *
 * Mechanism: the replica marks the member forgotten (members.ts, saved at
 * once): it is not an active member here from then on. Its entries stay,
 * and entries of it still arriving through other nodes are applied as any.
 * When it is heard from itself again (its signed gossip, a pull with it) it
 * is a member as before. The mark is this node's: as with trust lists,
 * each node's operator forgets the member on that node.
 *
 * When it applies: to a member this node knows (trusted, heard from),
 * other than itself, not connected now (a connected peer is alive: it is
 * refused with {@link PeerConnectedError}).
 *
 * @module
 */
import { parsePeerId } from '../../protocol/peer-address.js'
import { InvalidArgumentError, NotFoundError, PeerConnectedError } from '../errors.js'
import type { ForgetResult } from '../namespace/index.js'
import type { PeerId } from '@libp2p/interface'

/** What {@link forgetMember} needs. */
export interface ForgetMemberComponents {
  /** This node's peer id. */
  self: string
  namespace: { forgetMember: (peer: string) => Promise<ForgetResult | undefined> }
  libp2p: { getConnections: (peer?: PeerId) => unknown[] }
}

/** What `peers forget` answers. */
export interface ForgottenMember extends ForgetResult {
  peer: string
}

/**
 * Forget member `peer` here (see the module comment).
 *
 * @throws {InvalidArgumentError} for a malformed peer id, or this node's own
 * @throws {PeerConnectedError} when `peer` is connected now
 * @throws {NotFoundError} when `peer` is no member this node knows
 */
export async function forgetMember (components: ForgetMemberComponents, peer: string): Promise<ForgottenMember> {
  const peerId = parsePeerId(peer)
  const id = peerId.toString()
  if (id === components.self) throw new InvalidArgumentError('this is the node\'s own id: a node cannot forget itself')
  if (components.libp2p.getConnections(peerId).length > 0) throw new PeerConnectedError(`${id} is connected now: only a member whose node is gone can be forgotten`)
  const result = await components.namespace.forgetMember(id)
  if (result === undefined) throw new NotFoundError(`${id} is not a member this node knows (a trusted peer it has heard from)`)
  return { peer: id, ...result }
}
