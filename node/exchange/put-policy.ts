/**
 * Which blocks peers may `put` here. The block exchange server asks a
 * {@link PutPolicy} before it stores anything a peer pushes; the durability
 * service fills {@link ExpectedPuts} when it accepts a `hold`, so a peer can
 * push exactly the shards this node agreed to keep for it, for a while, and
 * nothing else. See docs/block-exchange.md.
 *
 * @module
 */
import { blockKey } from '../blocks/index.js'
import { InvalidArgumentError } from '../errors.js'
import type { CID } from 'multiformats/cid'

/** The seam between the exchange server and whoever decides what may be pushed. */
export interface PutPolicy {
  /** True when `peer` may push the block `cid`, of `size` bytes, now. */
  accepts: (peer: string, cid: CID, size: number) => boolean
  /** A block accepted from `peer` is stored (or was held already): its permission is used up. */
  used: (peer: string, cid: CID) => void
}

/** Where a node that agrees to hold blocks says which it now expects from a peer. */
export interface PutExpectations {
  /** How many more blocks `peer` may be expected to push. */
  room: (peer: string) => number
  /**
   * Expect `cids` from `peer` for a while; with `sizes` (one per CID), each
   * exactly of its size. @throws {InvalidArgumentError} beyond the per-peer bound
   */
  expect: (peer: string, cids: CID[], sizes?: readonly number[]) => void
  /** Stop expecting them (a hold that could not be recorded). */
  cancel: (peer: string, cids: CID[]) => void
}

/** One block awaited from one peer. */
interface Expected {
  /** When the expectation lapses (ms). */
  expires: number
  /** The size agreed, if any. */
  size?: number
  /** Pushes of it still awaited (holds that named it and were not used yet). */
  pushes: number
}

/** A policy that refuses every put (the default of an exchange without one). */
export const REFUSE_PUTS: PutPolicy = { accepts: () => false, used: () => {} }

/** Settings of {@link ExpectedPuts}. */
export interface ExpectedPutsInit {
  /** How long an expectation lasts after its hold (ms). @default 10 min */
  ttlMs?: number
  /** Expectations kept for all peers together. @default 131_072 */
  maxEntries?: number
  /** Expectations kept for one peer. @default 65_536 (one full `hold`) */
  maxPerPeer?: number
  /** The clock (ms). @default Date.now */
  now?: () => number
}

/**
 * Blocks this node expects from each peer, each until its expiry: the
 * {@link PutPolicy} of a node with durability. Memory is bounded: at most
 * `maxPerPeer` per peer (a hold beyond it is refused by the caller, see
 * {@link ExpectedPuts.room}) and `maxEntries` in all (beyond it the oldest
 * expectations of any peer are dropped; their puts are then refused and the
 * placing node retries them at its next repair pass).
 */
export class ExpectedPuts implements PutPolicy, PutExpectations {
  private readonly ttlMs: number
  private readonly maxEntries: number
  readonly maxPerPeer: number
  private readonly now: () => number
  /**
   * peer → block key → expiry (ms), the size agreed, if any, and how many
   * pushes of it are awaited; both maps in insertion order, which is expiry order.
   */
  private readonly peers = new Map<string, Map<string, Expected>>()
  /** Every expectation, oldest first, to expire and evict in order. */
  private readonly order = new Map<string, { peer: string, key: string, expires: number }>()

  constructor (init: ExpectedPutsInit = {}) {
    this.ttlMs = init.ttlMs ?? 10 * 60_000
    this.maxEntries = init.maxEntries ?? 131_072
    this.maxPerPeer = init.maxPerPeer ?? 65_536
    this.now = init.now ?? Date.now
    if (!(this.ttlMs > 0)) throw new InvalidArgumentError(`ttlMs must be > 0, got ${this.ttlMs}`)
    if (!Number.isSafeInteger(this.maxEntries) || this.maxEntries < 1) throw new InvalidArgumentError(`maxEntries must be ≥ 1, got ${this.maxEntries}`)
    if (!Number.isSafeInteger(this.maxPerPeer) || this.maxPerPeer < 1) throw new InvalidArgumentError(`maxPerPeer must be ≥ 1, got ${this.maxPerPeer}`)
  }

  /** Expectations kept now (expired ones included until the next change). */
  get size (): number { return this.order.size }

  /** How many more blocks `peer` may be expected to push. */
  room (peer: string): number {
    this.expire()
    return this.maxPerPeer - (this.peers.get(peer)?.size ?? 0)
  }

  /**
   * Expect `cids` from `peer` until the expiry; with `sizes` (one per CID),
   * a push of another length is refused (what a peer stated it would push is
   * what counted in the quota). An expectation made again before it was used
   * starts its time over and awaits one more push: two placements under way
   * that share a block (one leaf in two files) each push it, and neither is
   * refused.
   *
   * @throws {InvalidArgumentError} when that would exceed `maxPerPeer`, or `sizes` does not match `cids` (nothing is added)
   */
  expect (peer: string, cids: CID[], sizes?: readonly number[]): void {
    if (sizes !== undefined && sizes.length !== cids.length) throw new InvalidArgumentError(`${sizes.length} sizes for ${cids.length} blocks`)
    const keys = cids.map(blockKey)
    const mine = this.peers.get(peer) ?? new Map<string, Expected>()
    const fresh = keys.filter(k => !mine.has(k)).length
    if (mine.size + fresh > this.maxPerPeer) throw new InvalidArgumentError(`more than ${this.maxPerPeer} blocks awaited from one peer`)
    const now = this.now()
    const expires = now + this.ttlMs
    for (const [i, key] of keys.entries()) {
      const before = mine.get(key)
      const pushes = before !== undefined && before.expires > now ? before.pushes + 1 : 1
      this.remove(peer, key)
      mine.set(key, sizes === undefined ? { expires, pushes } : { expires, pushes, size: sizes[i] })
      this.order.set(`${peer} ${key}`, { peer, key, expires })
    }
    if (mine.size > 0) this.peers.set(peer, mine)
    this.expire()
    while (this.order.size > this.maxEntries) {
      const oldest = this.order.values().next().value as { peer: string, key: string }
      this.remove(oldest.peer, oldest.key)
    }
  }

  /** Stop expecting `cids` from `peer` (a hold that could not be recorded). */
  cancel (peer: string, cids: CID[]): void {
    for (const cid of cids) this.release(peer, blockKey(cid))
  }

  accepts (peer: string, cid: CID, size: number): boolean {
    const expected = this.peers.get(peer)?.get(blockKey(cid))
    return expected !== undefined && expected.expires > this.now() && (expected.size === undefined || expected.size === size)
  }

  used (peer: string, cid: CID): void {
    this.release(peer, blockKey(cid))
  }

  /** One push of `key` from `peer` fewer awaited. */
  private release (peer: string, key: string): void {
    const expected = this.peers.get(peer)?.get(key)
    if (expected !== undefined && expected.pushes > 1) expected.pushes--
    else this.remove(peer, key)
  }

  private remove (peer: string, key: string): void {
    const mine = this.peers.get(peer)
    if (mine?.delete(key) !== true) return
    if (mine.size === 0) this.peers.delete(peer)
    this.order.delete(`${peer} ${key}`)
  }

  /** Drop expired expectations (the oldest come first). */
  private expire (): void {
    const now = this.now()
    for (const { peer, key, expires } of this.order.values()) {
      if (expires > now) return
      this.remove(peer, key)
    }
  }
}
