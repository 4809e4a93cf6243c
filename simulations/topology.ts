/**
 * The link graph of a bounded virtual network: which simulated nodes hold a
 * connection to which, and what each direction of a connection costs.
 *
 * Why: a swarm does not talk as a full mesh. Each libp2p node keeps a
 * bounded set of connections and gossipsub forwards over them hop by hop,
 * so a simulation that wants the swarm's behaviour (and a cost per node
 * that does not grow with N) needs an explicit, sparse graph.
 *
 * Mechanism: nodes are small integers; each has a map neighbour → {@link Link}.
 * A link carries, per direction, a base latency drawn once when the link is
 * made, the virtual time until which the direction is busy sending (for
 * bandwidth and queueing), and whether the direction is cut (asymmetric
 * faults, partial partitions). {@link Topology.components} finds the
 * connected components of a node set over usable links (union–find), which
 * the network uses to keep every group connected after a partition, as a
 * node's connection manager would by dialling more peers.
 *
 * Applies to the bounded mode of `VirtualNetwork` only; the full-mesh mode
 * has no explicit links.
 *
 * @module
 */
import type { Prng } from './prng.js'

/** One direction of a link. */
export interface Direction {
  /** One-way base latency (virtual ms), drawn when the link was made. */
  latency: number
  /** Virtual time until which this direction is busy sending. */
  busyUntil: number
  /** Messages in this direction are lost. */
  cut: boolean
}

/** A connection between two nodes `a` < `b`. */
export interface Link {
  a: number
  b: number
  /** a → b */
  ab: Direction
  /** b → a */
  ba: Direction
}

/** Latency range of new links (virtual ms). */
export interface LatencyRange { min: number, max: number }

/** A sparse, undirected graph of links with per-direction state. */
export class Topology {
  private readonly adj: Array<Map<number, Link>> = []
  /** Number of links. */
  links = 0

  /** Make sure node `i` exists. */
  ensure (i: number): void {
    while (this.adj.length <= i) this.adj.push(new Map())
  }

  /** The link between `a` and `b`, if any. */
  link (a: number, b: number): Link | undefined {
    return this.adj[a]?.get(b)
  }

  /** Neighbours of `a` with their links. */
  neighbours (a: number): ReadonlyMap<number, Link> {
    return this.adj[a] ?? new Map()
  }

  /** Number of links of `a`. */
  degree (a: number): number {
    return this.adj[a]?.size ?? 0
  }

  /** The direction `from` → `to` of a link. */
  static direction (link: Link, from: number): Direction {
    return link.a === from ? link.ab : link.ba
  }

  /** Connect `a` and `b` (each direction's latency drawn from `range`); the existing link when there is one. */
  connect (a: number, b: number, rng: Prng, range: LatencyRange): Link {
    const existing = this.link(a, b)
    if (existing !== undefined) return existing
    this.ensure(Math.max(a, b))
    const draw = (): Direction => ({ latency: rng.int(range.min, Math.max(range.min, range.max)), busyUntil: 0, cut: false })
    const [lo, hi] = a < b ? [a, b] : [b, a]
    const link: Link = { a: lo, b: hi, ab: draw(), ba: draw() }
    this.adj[lo].set(hi, link)
    this.adj[hi].set(lo, link)
    this.links++
    return link
  }

  /** Every link once. */
  * all (): Generator<Link> {
    for (let a = 0; a < this.adj.length; a++) {
      for (const [b, link] of this.adj[a]) if (a < b) yield link
    }
  }

  /**
   * Connected components of `nodes` over the links for which `usable(link)`
   * holds, as lists of node numbers (each list in ascending order, lists by
   * their smallest member).
   */
  components (nodes: readonly number[], usable: (link: Link) => boolean): number[][] {
    const parent = new Map<number, number>()
    for (const n of nodes) parent.set(n, n)
    const find = (x: number): number => {
      let r = x
      for (let p = parent.get(r) as number; p !== r; p = parent.get(r) as number) r = p
      for (let p = parent.get(x) as number; p !== r; p = parent.get(x) as number) { parent.set(x, r); x = p }
      return r
    }
    for (const n of nodes) {
      for (const [m, link] of this.neighbours(n)) {
        if (m < n || !parent.has(m) || !usable(link)) continue
        const rn = find(n)
        const rm = find(m)
        if (rn !== rm) parent.set(Math.max(rn, rm), Math.min(rn, rm))
      }
    }
    const groups = new Map<number, number[]>()
    for (const n of [...nodes].sort((x, y) => x - y)) {
      const r = find(n)
      let g = groups.get(r)
      if (g === undefined) { g = []; groups.set(r, g) }
      g.push(n)
    }
    return [...groups.values()]
  }
}
