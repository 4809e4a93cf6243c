/**
 * The virtual wire under the durability simulation: which nodes are up and
 * which can reach each other (partitions), how long a message takes
 * (latency plus bytes over the link rate, on virtual time), and how many
 * block bytes crossed it — the measure of a repair storm.
 *
 * The mechanism: {@link ShardFabric.call} carries a request to a node and
 * its answer back, one leg at a time; each leg waits its delay on the
 * {@link VirtualTime}, then checks that both ends are up and on one side of
 * every partition. A leg that cannot arrive fails the call with
 * {@link PeerUnreachableError} once the call's timeout (counted from the
 * send) has passed, as a dial or a stream to a vanished peer does. Nothing
 * here knows who is up from anyone's point of view: each node learns that
 * only from its own calls (simulations/shard-node.ts).
 *
 * @module
 */
import { ShoalError } from '../node/errors.js'
import type { Prng } from './prng.js'
import type { VirtualTime } from './virtual-time.js'

/** A call to a node that is down, or on the other side of a partition. */
export class PeerUnreachableError extends ShoalError {
  override name = 'PeerUnreachableError'
}

/** Settings of a {@link ShardFabric}. */
export interface ShardFabricInit {
  time: VirtualTime
  /** Source of the per-leg latency jitter. */
  rng: Prng
  /** @default 2 */
  minDelayMs?: number
  /** @default 20 */
  maxDelayMs?: number
  /** Link rate, bytes per virtual ms. @default 12_500 (100 Mbit/s) */
  bytesPerMs?: number
  /** A call that cannot complete fails this long after it was sent (ms). @default 10_000 */
  timeoutMs?: number
}

/** What one call carries: the sizes of its two legs, and which block (if any) it moved. */
export interface CallShape<T> {
  /** Bytes of the request leg. */
  requestBytes: number
  /** Bytes of the answer leg, given the answer. */
  answerBytes: (answer: T) => number
  /** The block whose bytes this call moved (counted in {@link ShardFabric.moved} when the call completes); `push`: sent by the caller (a put), else fetched. */
  block?: (answer: T) => { cid: string, bytes: number, push?: boolean } | undefined
}

/** Reachability, delays and byte counts of the simulated nodes; see the module comment. */
export class ShardFabric {
  /** Block bytes that crossed the fabric, by CID. */
  readonly moved = new Map<string, number>()
  /** Calls made, calls that failed as unreachable, block bytes moved, and blocks pushed (puts). */
  readonly counts = { calls: 0, unreachable: 0, blockBytes: 0, pushes: 0 }
  /** The nodes whose reachability changed, in order (`*`: possibly every node's); see {@link changedSince}. */
  private readonly changes: string[] = []
  private readonly up = new Set<string>()
  private readonly side = new Map<string, number>()
  /** Legs cut one way, `from>to`. */
  private readonly cuts = new Set<string>()
  /** Calls refused one way, `from>to`: `from` cannot reach `to`, `to` reaches `from` (a liveness disagreement). */
  private readonly refusals = new Set<string>()
  /** Latency multiplier of a slow node's legs. */
  private readonly slowness = new Map<string, number>()
  private readonly time: VirtualTime
  private readonly rng: Prng
  private readonly minDelayMs: number
  private readonly maxDelayMs: number
  private readonly bytesPerMs: number
  private readonly timeoutMs: number

  constructor (init: ShardFabricInit) {
    this.time = init.time
    this.rng = init.rng
    this.minDelayMs = init.minDelayMs ?? 2
    this.maxDelayMs = init.maxDelayMs ?? 20
    this.bytesPerMs = init.bytesPerMs ?? 12_500
    this.timeoutMs = init.timeoutMs ?? 10_000
  }

  /** Bring `id` up or take it down (a crash, a departure, a return). */
  setUp (id: string, up: boolean): void {
    if (up) this.up.add(id)
    else this.up.delete(id)
    this.changes.push(id)
  }

  isUp (id: string): boolean { return this.up.has(id) }

  /** The count of reachability changes so far (a cursor for {@link changedSince}). */
  get version (): number { return this.changes.length }

  /**
   * The nodes whose reachability to some node changed after `version` (an
   * empty set: none); undefined when that may be every node's (a partition
   * or its end) or more than `limit` changes happened — check them all.
   */
  changedSince (version: number, limit: number): Set<string> | undefined {
    if (this.changes.length - version > limit) return undefined
    const out = new Set<string>()
    for (let i = version; i < this.changes.length; i++) {
      if (this.changes[i] === '*') return undefined
      out.add(this.changes[i])
    }
    return out
  }

  /** Split the nodes: each group is one side; nodes in no group form one more side. */
  partition (groups: readonly string[][]): void {
    this.side.clear()
    for (const [i, group] of groups.entries()) for (const id of group) this.side.set(id, i + 1)
    this.changes.push('*')
  }

  /** Join every side again. */
  heal (): void {
    this.side.clear()
    this.changes.push('*')
  }

  /** Cut the legs from `from` to `to` (one way; cut both directions for a partial partition). */
  cut (from: string, to: string): void {
    this.cuts.add(`${from}>${to}`)
    this.changes.push(from, to)
  }

  /** Carry the legs from `from` to `to` again. */
  restore (from: string, to: string): void {
    this.cuts.delete(`${from}>${to}`)
    this.changes.push(from, to)
  }

  /** Calls `from` makes to `to` fail (as if unreachable), while `to` and everyone else still reach `from` and `to`; `on` false ends it. */
  refuse (from: string, to: string, on: boolean): void {
    if (on) this.refusals.add(`${from}>${to}`)
    else this.refusals.delete(`${from}>${to}`)
    this.changes.push(from, to)
  }

  /** Whether calls from `from` to `to` are refused ({@link refuse}). */
  refuses (from: string, to: string): boolean { return this.refusals.size > 0 && this.refusals.has(`${from}>${to}`) }

  /** Make every leg to or from `id` `factor` times slower (1: normal). */
  slow (id: string, factor: number): void {
    if (factor === 1) this.slowness.delete(id)
    else this.slowness.set(id, factor)
  }

  /** Whether a message from `a` reaches `b` now. */
  reachable (a: string, b: string): boolean {
    return this.up.has(a) && this.up.has(b) && (this.side.get(a) ?? 0) === (this.side.get(b) ?? 0) && (this.cuts.size === 0 || !this.cuts.has(`${a}>${b}`))
  }

  /**
   * Those of `ids` (nodes that are up) that some other of them cannot reach,
   * cannot be reached by, or has its calls to refused — what checking
   * {@link reachable} and {@link refuses} both ways for every pair says, in
   * O(ids + cuts + refusals) rather than O(ids²).
   */
  cutOffAmong (ids: Iterable<string>): Set<string> {
    const among = new Set(ids)
    const sides = new Set<number>()
    for (const id of among) sides.add(this.side.get(id) ?? 0)
    if (sides.size > 1) return among
    const out = new Set<string>()
    for (const [pairs, both] of [[this.cuts, true], [this.refusals, false]] as const) {
      for (const pair of pairs) {
        const [from, to] = pair.split('>')
        if (!among.has(from) || !among.has(to)) continue
        out.add(to)
        if (both) out.add(from)
      }
    }
    return out
  }

  /**
   * Carry a request from `from` to `to`, run `serve` there, carry its answer
   * back. `serve`'s own errors reach the caller as they are.
   *
   * @throws {PeerUnreachableError} when a leg cannot arrive (after the timeout)
   */
  async call<T>(from: string, to: string, shape: CallShape<T>, serve: () => Promise<T>): Promise<T> {
    const sent = this.time.now()
    this.counts.calls++
    if (this.refuses(from, to)) {
      this.counts.unreachable++
      await this.wait(this.timeoutMs)
      throw new PeerUnreachableError(`${to} unreachable from ${from} (refused)`)
    }
    await this.leg(from, to, shape.requestBytes, sent)
    const answer = await serve()
    await this.leg(to, from, shape.answerBytes(answer), sent)
    const block = shape.block?.(answer)
    if (block !== undefined) {
      this.moved.set(block.cid, (this.moved.get(block.cid) ?? 0) + block.bytes)
      this.counts.blockBytes += block.bytes
      if (block.push === true) this.counts.pushes++
    }
    return answer
  }

  private async leg (from: string, to: string, bytes: number, sent: number): Promise<void> {
    const factor = Math.max(this.slowness.get(from) ?? 1, this.slowness.get(to) ?? 1)
    const delay = Math.ceil(factor * (this.minDelayMs + Math.floor(this.rng.next() * (this.maxDelayMs - this.minDelayMs + 1)) + Math.ceil(bytes / this.bytesPerMs)))
    await this.wait(delay)
    if (this.reachable(from, to)) return
    this.counts.unreachable++
    await this.wait(Math.max(0, sent + this.timeoutMs - this.time.now()))
    throw new PeerUnreachableError(`${to} unreachable from ${from}`)
  }

  private async wait (ms: number): Promise<void> {
    await new Promise<void>(resolve => { this.time.setTimeout(resolve, ms) })
  }
}
