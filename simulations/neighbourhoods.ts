/**
 * Who a simulated node is connected to. A production node keeps a bounded
 * set of connections (libp2p's connection manager, at most
 * `HOST_LIMITS.maxConnections`), and the peers it keeps are mostly those
 * close to it in the Kademlia key space (its routing table's nearest
 * buckets). Placement chooses among the connected peers (`Placer.livePeers`)
 * and repair asks them (`gatherView`), so a stripe's holders are peers of
 * the writer's neighbourhood, and they must reach each other for repair to
 * see them (docs/durability.md, "Limits").
 *
 * The model: the kad key space (sha-256 of the peer id, as kad-dht and
 * placement use) is cut into `ceil(nodes / connections)` equal ranges; a
 * node is connected to every node whose key falls in its range — about
 * `connections` peers, all connected to each other. A node that joins later
 * falls into the range of its key. With no more nodes than `connections`,
 * one range holds everyone (every node knows every node). Pure function of
 * the ids: no random draw, so the seed's other draws do not move.
 *
 * @module
 */
import { peerKadKey } from '../node/durability/placement.js'

/** Settings of {@link Neighbourhoods}. */
export interface NeighbourhoodsInit {
  /** Nodes of the swarm at its start (sets the number of ranges). */
  nodes: number
  /** About how many peers each node is connected to. */
  connections: number
}

/** The neighbourhoods of a swarm; see the module comment. */
export class Neighbourhoods {
  /** The members of each range; a node's peers are the array of its range (shared, so a join is seen by its whole range). */
  private readonly ranges: string[][]

  constructor (init: NeighbourhoodsInit) {
    const count = Math.max(1, Math.ceil(init.nodes / Math.max(1, init.connections)))
    this.ranges = Array.from({ length: count }, () => [])
  }

  /** How many ranges the key space is cut into. */
  get count (): number { return this.ranges.length }

  /** Add `id` to the range of its key; returns that range's members (this node among them; the array grows with later joins). */
  add (id: string): readonly string[] {
    const range = this.ranges[this.rangeOf(id)]
    range.push(id)
    return range
  }

  /** The index of the range `id`'s kad key falls in. */
  rangeOf (id: string): number {
    if (this.ranges.length === 1) return 0
    const key = peerKadKey(id)
    const top = ((key[0] << 24) | (key[1] << 16) | (key[2] << 8) | key[3]) >>> 0
    return Math.floor(top * this.ranges.length / 2 ** 32)
  }
}
