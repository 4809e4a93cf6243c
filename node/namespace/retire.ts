/**
 * Retired authors: the authors that left, whose counters clocks on the wire
 * no longer name (docs/namespace.md, "Retired authors").
 *
 * Why: a clock names every author ever seen, so every heartbeat, pull
 * request and pull answer cost O(lifetime authors) bytes and decode work,
 * and a namespace with more authors than a message holds could not sync.
 * A signed `retire` op in the log says "X's history ends at c as far as I
 * saw"; once a node has applied it, X is left out of the clocks it sends
 * while it holds X at exactly c.
 *
 * Mechanism (the wire form of a clock):
 *
 * - A sender leaves X out iff it knows a retirement of X at c — the highest
 *   it knows — and its own counter for X is c. When it knows one and holds
 *   something else (X came back, or X is not trusted here) it names X, with
 *   0 if it holds nothing of X.
 * - A receiver reads a missing X as c iff it knows a retirement of X at c
 *   made by an entry (dot) that the sender's clock covers; otherwise as 0.
 *
 * Sound: a sender whose clock covers a retire entry's dot has applied that
 * entry (or holds a snapshot that carried its retirement), so the highest
 * retirement it knows of X is at least c, and it left X out only because
 * it holds exactly that. A missing author is never read higher than the
 * sender holds; a receiver that does not know the retirement reads 0, which
 * costs a pull or an answer too many, never a skipped entry.
 *
 * It owns the rows `q!<author>` → `{ seq, dots }`: per retired author the
 * highest retired seq and the dots of the entries that retired it there (a
 * few: several nodes may retire an author at once, and a receiver needs one
 * the sender covers).
 *
 * @module
 */
import { MAX_OPS, type RetireOp, type SnapshotRetired } from '../../protocol/namespace.js'
import { covers, type Dot, type VectorClock } from './clock.js'
import { decodeJSON, type KV, type Txn } from './kv.js'
import { RETIRED_RANGE, authorOfRetiredKey, retiredKey } from './rows.js'
import type { Batch } from './store.js'

/** Most dots kept per retired author (retirements of one author at one seq by several nodes). */
const MAX_RETIRE_DOTS = 8

/** The highest seq an author was retired at, and the entries that retired it there. */
export interface Retirement {
  seq: number
  dots: Dot[]
}

/** What snapshots need of the retired authors: a snapshot carries them, a merge takes them. */
export interface SnapshotRetirements {
  /** The retirements a snapshot of `clock` written into `txn` carries. */
  forSnapshot: (clock: Readonly<VectorClock>, txn?: Txn) => SnapshotRetired
  /** Take a snapshot's retirements into `batch`. */
  take: (batch: Batch, retirements: Iterable<[string, Retirement]>) => void
}

/** What a snapshot's `retired` says, by author (for {@link SnapshotRetirements.take}). */
export function retiredOfSnapshot (retired: SnapshotRetired | undefined): Array<[string, Retirement]> {
  const out: Array<[string, Retirement]> = []
  for (const [d, authors] of retired ?? []) for (const [author, seq] of authors) out.push([author, { seq, dots: [d] }])
  return out
}

/** What {@link Retirements} is built from. */
export interface RetirementsComponents {
  kv: KV
}

/** The retirements this replica knows, their rows, and the wire form of clocks. */
export class Retirements {
  private readonly table = new Map<string, Retirement>()
  /** Retirements of a batch (by its transaction) not yet committed: adopted by {@link onCommit}'s callback. */
  private readonly unadopted = new WeakMap<Txn, Map<string, Retirement>>()

  constructor (private readonly components: RetirementsComponents) {}

  /** Load the rows (at open). */
  async load (): Promise<void> {
    for await (const [key, value] of this.components.kv.iterate({ ...RETIRED_RANGE })) {
      const r = decodeJSON<Partial<Retirement>>(value)
      if (isCount(r.seq) && Array.isArray(r.dots)) this.table.set(authorOfRetiredKey(key), { seq: r.seq, dots: r.dots.filter(isDot).slice(0, MAX_RETIRE_DOTS) })
    }
  }

  /** Forget what was loaded (an open that failed). */
  clear (): void { this.table.clear() }

  /** Number of retired authors. */
  get size (): number { return this.table.size }

  /**
   * The retirements a snapshot of `clock` carries (written into `txn`, whose
   * own retirements count): those at a seq `clock` covers, each under one
   * of its dots that `clock` covers, grouped by dot.
   */
  forSnapshot (clock: Readonly<VectorClock>, txn?: Txn): SnapshotRetired {
    const all = new Map(this.table)
    for (const [author, r] of (txn === undefined ? undefined : this.unadopted.get(txn)) ?? []) all.set(author, r)
    const groups = new Map<string, SnapshotRetired[number]>()
    for (const [author, r] of all) {
      if ((clock[author] ?? 0) < r.seq) continue
      const d = r.dots.find(x => covers(clock, x))
      if (d === undefined) continue
      const key = `${d[1]}:${d[0]}`
      let group = groups.get(key)
      if (group === undefined) groups.set(key, group = [[d[0], d[1]], []])
      group[1].push([author, r.seq])
    }
    return [...groups.values()]
  }


  /**
   * Record that the entry `dot` retires `op.author` at `op.seq`, in `batch`
   * (its row is written with it; memory follows once it is durable). Only
   * the highest seq per author is kept; a lower one changes nothing.
   */
  record (batch: Batch, op: RetireOp, dot: Dot): void {
    this.note(batch, op.author, op.seq, [dot])
  }

  /**
   * Take retirements a snapshot carried into `batch` (the same rules as
   * {@link record}: highest seq per author, dots of that seq united).
   */
  take (batch: Batch, retirements: Iterable<[string, Retirement]>): void {
    for (const [author, r] of retirements) this.note(batch, author, r.seq, r.dots)
  }

  /** The store's commit hook: the batch's retirements are adopted once it is durable. */
  onCommit (batch: Batch): (() => void) | undefined {
    const pending = this.unadopted.get(batch.txn)
    if (pending === undefined) return undefined
    return () => { for (const [author, r] of pending) this.table.set(author, r) }
  }

  /**
   * `clock` as sent: retired authors held at their retired seq left out;
   * retired authors held at another counter named (0 when nothing of them
   * is held here). With `peer` (what the receiver is known to hold), an
   * author is left out only when `peer` covers one of the dots that retired
   * it: the receiver knows the retirement then.
   */
  toWire (clock: Readonly<VectorClock>, peer?: Readonly<VectorClock>): VectorClock {
    const out: VectorClock = {}
    // built up rather than copied and deleted from: deleting most keys of a large object is slow
    for (const author in clock) {
      const n = clock[author]
      const r = this.table.get(author)
      if (r !== undefined && n === r.seq && (peer === undefined || r.dots.some(d => covers(peer, d)))) continue
      out[author] = n
    }
    for (const author of this.table.keys()) if ((clock[author] ?? 0) === 0) out[author] = 0
    return out
  }

  /**
   * A clock as received, with its retired authors read back: a missing
   * author is read at its retired seq when the clock covers a dot that
   * retired it there (the clock read so far: a retirement made by an author
   * itself left out counts once that author is read back), else it stays
   * missing (0). Counters at 0 are dropped. With no author retired and no
   * counter at 0, that is `wire` itself (not copied: every gossip message,
   * pull request and answer carries a clock of every author).
   */
  readClock (wire: Readonly<VectorClock>): Readonly<VectorClock> {
    if (this.table.size === 0 && Object.values(wire).every(n => n > 0)) return wire
    const out: VectorClock = {}
    for (const author in wire) if (wire[author] > 0) out[author] = wire[author]
    if (this.table.size === 0) return out
    for (let changed = true; changed;) {
      changed = false
      for (const [author, r] of this.table) {
        if (Object.hasOwn(wire, author) || (out[author] ?? 0) >= r.seq) continue
        if (r.dots.some(d => covers(out, d))) {
          out[author] = r.seq
          changed = true
        }
      }
    }
    return out
  }

  /**
   * The retire ops this replica may issue now (at most {@link MAX_OPS}):
   * authors other than `self`, not `active`, whose every entry this replica
   * holds is `stable` (seen by every active member), and not yet retired at
   * that seq. The stable clock (O(authors × members)) is asked for only
   * when some author is a candidate otherwise: in a swarm whose authors are
   * all active or retired, a round costs one pass over the clock.
   */
  due (options: { self: string, clock: Readonly<VectorClock>, stable: () => Readonly<VectorClock>, active: (author: string) => boolean }): RetireOp[] {
    const { self, clock, active } = options
    let stable: Readonly<VectorClock> | undefined
    const ops: RetireOp[] = []
    for (const author in clock) {
      const seq = clock[author]
      if (author === self || seq <= 0 || (this.table.get(author)?.seq ?? 0) >= seq || active(author)) continue
      stable ??= options.stable()
      if ((stable[author] ?? 0) < seq) continue
      ops.push({ op: 'retire', author, seq })
      if (ops.length >= MAX_OPS) break
    }
    return ops
  }

  private note (batch: Batch, author: string, seq: number, dots: Dot[]): void {
    let pending = this.unadopted.get(batch.txn)
    const current = pending?.get(author) ?? this.table.get(author)
    if (current !== undefined && current.seq > seq) return
    const next: Retirement = current !== undefined && current.seq === seq ? { seq, dots: [...current.dots] } : { seq, dots: [] }
    for (const d of dots) {
      if (next.dots.length < MAX_RETIRE_DOTS && !next.dots.some(x => x[0] === d[0] && x[1] === d[1])) next.dots.push([d[0], d[1]])
    }
    if (pending === undefined) this.unadopted.set(batch.txn, pending = new Map())
    pending.set(author, next)
    batch.txn.put(retiredKey(author), next)
  }
}

function isCount (n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0
}

function isDot (d: unknown): d is Dot {
  return Array.isArray(d) && d.length === 2 && typeof d[0] === 'string' && isCount(d[1])
}
