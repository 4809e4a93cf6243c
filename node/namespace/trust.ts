/**
 * Who may write the shared namespace.
 *
 * Why: anyone who can connect to a node can sign namespace entries with a
 * key of their own; a signature proves who wrote an entry, not that the
 * writer belongs. A node therefore applies entries (and snapshots) only from
 * authors it trusts, as IPFS Cluster applies CRDT updates only from its
 * `trusted_peers`.
 *
 * How: in a private swarm every holder of the swarm key is a member, so by
 * default every author is trusted (`writers: 'swarm'`). In an open swarm, or
 * when `namespace.writers` is `'listed'`, only this node and the peers in
 * `namespace.trusted` are. The policy is one object shared by the replica
 * (which drops untrusted entries, counted and logged) and sync (which neither
 * pulls from nor takes gossip of untrusted peers); `shoal trust add|rm`
 * changes it while the node runs.
 *
 * When it applies: to entries and snapshots only. Blocks are content-addressed
 * and hash-checked, so untrusted peers may still fetch and serve them.
 *
 * @module
 */

/** Who may write the namespace: what the replica and sync ask. */
export interface TrustPolicy {
  /** True when entries and snapshots by `author` (a peer id string) are applied. */
  trusts: (author: string) => boolean
}

/** Where the writers of a namespace come from. */
export type WritersMode =
  /** Every member of the private swarm (every holder of the swarm key). */
  | 'swarm'
  /** Only this node and the listed peers. */
  | 'listed'

/** Settings of {@link WriterTrust}. */
export interface WriterTrustInit {
  /** This node's peer id: always trusted. */
  self: string
  /** True when the node is in a private swarm (pnet). */
  privateSwarm: boolean
  /** @default 'swarm' */
  writers?: WritersMode
  /** Peer ids trusted besides this node. */
  trusted?: readonly string[]
}

/**
 * The node's writer trust: everyone in a private swarm with
 * `writers: 'swarm'`, else this node and the listed peers. The list can be
 * changed while the node runs.
 */
export class WriterTrust implements TrustPolicy {
  private readonly self: string
  private readonly privateSwarm: boolean
  private writers: WritersMode
  private readonly listed: Set<string>

  constructor (init: WriterTrustInit) {
    this.self = init.self
    this.privateSwarm = init.privateSwarm
    this.writers = init.writers ?? 'swarm'
    this.listed = new Set(init.trusted ?? [])
  }

  /** Where writers come from now. */
  get mode (): WritersMode {
    return this.writers
  }

  /** Change where writers come from. */
  setMode (mode: WritersMode): void {
    this.writers = mode
  }

  /** True when every author is trusted (a private swarm trusting its members). */
  get everyone (): boolean {
    return this.privateSwarm && this.writers === 'swarm'
  }

  trusts (author: string): boolean {
    return this.everyone || author === this.self || this.listed.has(author)
  }

  /** Trust `peer` from now on; false when it already was listed. */
  add (peer: string): boolean {
    if (this.listed.has(peer)) return false
    this.listed.add(peer)
    return true
  }

  /** Stop trusting `peer`; false when it was not listed. */
  remove (peer: string): boolean {
    return this.listed.delete(peer)
  }

  /** The listed peers, sorted. */
  list (): string[] {
    return [...this.listed].sort()
  }
}

/** Trusts every author: simulations and single-purpose tests. */
export const TRUST_EVERYONE: TrustPolicy = { trusts: () => true }

/** Settings of {@link WarnLimit}. */
export interface WarnLimitInit {
  /** At most one warning per key in this long (ms). @default 60000 */
  interval?: number
  /** At most this many keys warned about per interval; warnings about more are dropped. @default 100 */
  maxKeys?: number
}

/**
 * Rate limit of warnings keyed by author: at most one line per author per
 * interval, and at most `maxKeys` authors per interval (a flood of fresh
 * keys cannot fill the log either). The counters stay exact; only the log
 * lines are limited.
 */
export class WarnLimit {
  private readonly interval: number
  private readonly maxKeys: number
  private readonly last = new Map<string, { at: number, suppressed: number }>()

  constructor (init: WarnLimitInit = {}) {
    this.interval = init.interval ?? 60_000
    this.maxKeys = init.maxKeys ?? 100
  }

  /** Whether {@link take} would let a warning about `key` through at `now` (changes nothing). */
  due (key: string, now: number): boolean {
    const seen = this.last.get(key)
    return seen === undefined || now - seen.at >= this.interval
  }

  /**
   * Whether a warning about `key` may be logged at `now`: the number of
   * warnings about it suppressed since the last one, or undefined (suppress).
   */
  take (key: string, now: number): number | undefined {
    const seen = this.last.get(key)
    if (seen !== undefined && now - seen.at < this.interval) {
      seen.suppressed++
      return undefined
    }
    if (seen === undefined && this.last.size >= this.maxKeys) {
      for (const [k, v] of this.last) if (now - v.at >= this.interval) this.last.delete(k)
      if (this.last.size >= this.maxKeys) return undefined
    }
    this.last.set(key, { at: now, suppressed: 0 })
    return seen?.suppressed ?? 0
  }
}
