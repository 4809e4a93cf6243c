/**
 * Which members refuse this node's namespace writes: the writing side of
 * the writer notice (protocol/writer-notice.ts).
 *
 * Why: a node that writes while the members do not trust it (left out of
 * `namespace.writers: listed`, removed with `shoal trust rm`, or a
 * stranger of an open swarm) saw its own writes succeed, and nothing told
 * it they were applied nowhere else. A member that ignores its gossip now
 * sends it a notice (sync.ts, untrusted-gossip.ts); this module keeps them
 * and says how many of the connected members refuse (`shoal status`,
 * `shoal trust ls`, a warning after `add`, `mkdir`, `mv`, `rm`).
 *
 * What a notice can do: only add a line to what this node reports. It never
 * makes the node stop applying or sending anything. A notice counts only
 * from a member: a connected peer this node trusts as a writer (in a
 * private swarm of `writers: swarm`, every key holder), whose namespace it
 * takes; one from anyone else is counted and changes nothing, as is a
 * malformed one. At most {@link WriteRefusalsInit.maxPeers} refusals are
 * kept (only members make them).
 *
 * When a refusal ends: when the member's clock (its gossip, a pull answer)
 * names more of this node's entries than its notice said it applied (it
 * trusts this node again and took them), or when this node stops trusting
 * it. A member disconnected is not counted while it is away.
 *
 * @module
 */
import { decodeWriterNotice } from '../../protocol/writer-notice.js'
import { WarnLimit, type TrustPolicy } from './trust.js'
import type { Logger } from '../logger.js'
import type { WallClock } from './api.js'

/** What {@link WriteRefusals} reads. */
export interface WriteRefusalsComponents {
  /** This node's peer id. */
  self: string
  /** Who this node trusts as a writer: its members, whose notices count. */
  trust: TrustPolicy
  /** Peers connected now. */
  peers: () => string[]
  logger: Logger
  /** Monotonic clock (ms). */
  clock: WallClock
}

/** Settings of {@link WriteRefusals}. */
export interface WriteRefusalsInit {
  /** Most refusals kept; the oldest goes first. @default 1024 */
  maxPeers?: number
  /** Least time between two warnings about one member's refusal (ms). @default 600000 */
  warnInterval?: number
}

/** Counters of {@link WriteRefusals}. */
export interface WriteRefusalStats {
  /** Notices taken from members. */
  received: number
  /** Notices from peers this node does not trust as writers: counted, nothing else. */
  ignored: number
  /** Notices that did not decode (or could not be read): counted and dropped. */
  malformed: number
  /** Refusals ended by the member's clock naming more of this node's entries. */
  cleared: number
}

/** How this node's writes fare with the members connected now. */
export interface WriteRefusalSummary {
  /** Connected members (peers this node trusts as writers, itself left out). */
  members: number
  /** The connected members that said they refuse this node's writes, sorted. */
  refusedBy: string[]
}

interface Refusal {
  /** How many of this node's entries the member said it applied. */
  applied: number
  /** When its last notice came (ms, {@link WriteRefusalsComponents.clock}). */
  at: number
}

/** See the module doc. */
export class WriteRefusals {
  readonly stats: WriteRefusalStats = { received: 0, ignored: 0, malformed: 0, cleared: 0 }
  private readonly refusals = new Map<string, Refusal>()
  private readonly maxPeers: number
  private readonly warnings: WarnLimit

  constructor (private readonly components: WriteRefusalsComponents, init: WriteRefusalsInit = {}) {
    this.maxPeers = Math.max(1, init.maxPeers ?? 1024)
    this.warnings = new WarnLimit({ interval: init.warnInterval ?? 600_000 })
  }

  /** A notice `data` from `from`; `undefined`: one that could not be read (too long, cut). */
  receive (from: string, data: Uint8Array | undefined): void {
    const { self, trust, clock, logger } = this.components
    if (from === self || !trust.trusts(from)) {
      this.stats.ignored++
      return
    }
    let applied: number
    try {
      if (data === undefined) throw new Error('unreadable')
      applied = decodeWriterNotice(data).applied
    } catch {
      this.stats.malformed++
      logger.debug({ peer: from }, 'malformed writer notice dropped')
      return
    }
    this.stats.received++
    const now = clock.now()
    this.refusals.delete(from)
    this.refusals.set(from, { applied, at: now })
    while (this.refusals.size > this.maxPeers) {
      const oldest = this.refusals.keys().next().value as string
      this.refusals.delete(oldest)
    }
    if (this.warnings.take(from, now) === undefined) return
    logger.warn({ peer: from, applied },
      `this node's namespace writes are refused by member ${from}: it does not trust this node as a writer (ask a member to \`shoal trust add ${self}\`)`)
  }

  /**
   * A member's clock named `counter` of this node's entries (undefined: it
   * named none, which tells nothing): a refusal whose notice said fewer
   * ends.
   */
  heard (peer: string, counter: number | undefined): void {
    if (counter === undefined) return
    const r = this.refusals.get(peer)
    if (r === undefined || counter <= r.applied) return
    this.refusals.delete(peer)
    this.stats.cleared++
    this.components.logger.info({ peer, applied: counter }, 'namespace writes of this node applied by the member again')
  }

  /** How many connected members there are, and which of them refuse this node's writes. */
  summary (): WriteRefusalSummary {
    const { self, trust, peers } = this.components
    const members = [...new Set(peers())].filter(p => p !== self && trust.trusts(p))
    return { members: members.length, refusedBy: members.filter(p => this.refusals.has(p)).sort() }
  }
}
