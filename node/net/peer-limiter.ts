/**
 * Per-peer token buckets: how much of something (requests, bytes, messages)
 * each remote peer may make this node do per second, with a burst. One
 * limiter per kind of thing; see docs/limits.md for every limit and its
 * default.
 *
 * @module
 */
import { setTimeout as wait } from 'node:timers/promises'
import { InvalidArgumentError, ShoalError } from '../errors.js'

/** A peer asked for more than its rate allows, and waiting for it would take too long. */
export class RateLimitedError extends ShoalError {
  override name = 'RateLimitedError'
  override readonly status = 429
}

/** Settings of a {@link PeerLimiter}. */
export interface PeerLimiterInit {
  /** Sustained tokens per second each peer gets (> 0). */
  rate: number
  /** Bucket size: tokens a peer may spend at once after a quiet spell (≥ 1). */
  burst: number
  /**
   * Peers tracked at once. Beyond it the least recently seen peer's bucket is
   * forgotten (it comes back full): the limiter's memory is bounded whatever
   * the number of peer ids it sees. @default 1024
   */
  maxPeers?: number
  /** The clock, in ms (tests inject one). @default Date.now */
  now?: () => number
}

interface Bucket { tokens: number, at: number }

/**
 * A token bucket per peer. {@link PeerLimiter.take} reserves tokens and says
 * how long to wait before using them (the bucket may go into debt, so
 * callers that wait are served in order at the sustained rate);
 * {@link PeerLimiter.refund} gives back what a refused caller reserved.
 */
export class PeerLimiter {
  readonly rate: number
  readonly burst: number
  private readonly maxPeers: number
  private readonly now: () => number
  /** In least-recently-used order (a Map keeps insertion order). */
  private readonly buckets = new Map<string, Bucket>()

  constructor (init: PeerLimiterInit) {
    if (!(init.rate > 0) || !Number.isFinite(init.rate)) throw new InvalidArgumentError(`rate must be > 0, got ${init.rate}`)
    if (!(init.burst >= 1) || !Number.isFinite(init.burst)) throw new InvalidArgumentError(`burst must be ≥ 1, got ${init.burst}`)
    this.rate = init.rate
    this.burst = init.burst
    this.maxPeers = init.maxPeers ?? 1024
    if (!Number.isSafeInteger(this.maxPeers) || this.maxPeers < 1) throw new InvalidArgumentError(`maxPeers must be ≥ 1, got ${this.maxPeers}`)
    this.now = init.now ?? Date.now
  }

  /** Peers tracked now (at most `maxPeers`). */
  get size (): number { return this.buckets.size }

  /**
   * Reserve `cost` tokens of `peer`; returns the ms to wait before spending
   * them (0 when the bucket covers them).
   */
  take (peer: string, cost = 1): number {
    const bucket = this.bucket(peer)
    bucket.tokens -= cost
    return bucket.tokens >= 0 ? 0 : Math.ceil(-bucket.tokens * 1000 / this.rate)
  }

  /** Give back `cost` tokens a refused caller reserved with {@link take}. */
  refund (peer: string, cost = 1): void {
    const bucket = this.buckets.get(peer)
    if (bucket !== undefined) bucket.tokens = Math.min(this.burst, bucket.tokens + cost)
  }

  /** Take `cost` tokens only when they are there now; true when taken. */
  tryTake (peer: string, cost = 1): boolean {
    const bucket = this.bucket(peer)
    if (bucket.tokens < cost) return false
    bucket.tokens -= cost
    return true
  }

  /** The peer's bucket, refilled to now and moved to the most recent end. */
  private bucket (peer: string): Bucket {
    const now = this.now()
    let bucket = this.buckets.get(peer)
    if (bucket === undefined) {
      bucket = { tokens: this.burst, at: now }
      if (this.buckets.size >= this.maxPeers) this.buckets.delete(this.buckets.keys().next().value as string)
    } else {
      this.buckets.delete(peer)
      // a clock that goes back refills nothing
      const elapsed = Math.max(0, now - bucket.at)
      bucket.tokens = Math.min(this.burst, bucket.tokens + elapsed * this.rate / 1000)
      bucket.at = now
    }
    this.buckets.set(peer, bucket)
    return bucket
  }
}

/** Options of {@link admit}. */
export interface AdmitOptions {
  /** Tokens this request costs. @default 1 */
  cost?: number
  /** Longest wait for tokens before the request is refused instead. */
  maxDelayMs: number
  /** Stops the wait. */
  signal?: AbortSignal
  /** Waits, for tests. @default a timer */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
}

/**
 * Admit one request of `peer`: at once when its bucket covers it, after a
 * wait of at most `maxDelayMs` when it is in debt, else refused (its tokens
 * given back).
 *
 * @returns 'now', 'waited' or 'refused'
 * @throws the signal's reason (an `AbortError`) when `signal` aborts the wait
 */
export async function admit (limiter: PeerLimiter, peer: string, options: AdmitOptions): Promise<'now' | 'waited' | 'refused'> {
  const cost = options.cost ?? 1
  const delay = limiter.take(peer, cost)
  if (delay === 0) return 'now'
  if (delay > options.maxDelayMs) {
    limiter.refund(peer, cost)
    return 'refused'
  }
  const sleep = options.sleep ?? (async (ms: number, signal?: AbortSignal) => { await wait(ms, undefined, { signal }) })
  await sleep(delay, options.signal)
  return 'waited'
}

/** `defaults` with the fields of `given` that are set (an undefined field keeps its default). */
export function withDefaults<T extends object> (defaults: T, given: Partial<T>): T {
  const out = { ...defaults }
  for (const key of Object.keys(defaults) as Array<keyof T>) {
    const value = given[key]
    if (value !== undefined) out[key] = value as T[keyof T]
  }
  return out
}
