/**
 * Finding the holders of a file this node is not connected to: every holder
 * announces the file root in the DHT (one provider record per file, at its
 * `hold`), so the providers of the root are the holders, wherever they are
 * in the swarm. They are dialled and asked with bounded concurrency, each
 * within a time bound, and a peer that could not be reached is not dialled
 * again for a while. The holder view (./view.ts) asks them only when the
 * connected peers leave some shard of the manifest without a holder.
 * See docs/durability.md, "Holders beyond the connected peers".
 *
 * @module
 */
import { AbortedError, PeerUnreachableError } from '../errors.js'
import type { ShardsNetwork } from './network.js'
import type { Logger } from '../logger.js'
import type { Timers } from '../timers.js'
import type { CID } from 'multiformats/cid'

/** Settings of a {@link HolderSearch}. */
export interface HolderSearchInit {
  /** Peers dialled and asked at once. @default 8 */
  concurrency?: number
  /** Bound on dialling one peer and getting its answers (ms). @default 5_000 */
  peerTimeoutMs?: number
  /** Bound on one DHT provider query (ms). @default 10_000 */
  findTimeoutMs?: number
  /** Most providers taken from one query. @default 256 */
  maxPeers?: number
  /** A peer that could not be reached is not dialled again for this long (ms, on the network's clock). @default 60_000 */
  unreachableMs?: number
  /**
   * The providers a query found for a file root are taken again, without a
   * query, for this long (ms, on the network's clock): a holder that is down
   * leaves every file it held with a shard seen nowhere, pass after pass of
   * the repair until the grace period ends. @default 300_000
   */
  providersMs?: number
}

/** What a {@link HolderSearch} is built from. */
export interface HolderSearchComponents {
  network: Pick<ShardsNetwork, 'self' | 'now' | 'findProviders'>
  timers: Timers
  logger: Logger
}

/** Defaults of {@link HolderSearchInit}. */
export const HOLDER_SEARCH_DEFAULTS: Required<HolderSearchInit> = {
  concurrency: 8,
  peerTimeoutMs: 5_000,
  findTimeoutMs: 10_000,
  maxPeers: 256,
  unreachableMs: 60_000,
  providersMs: 300_000
}

/** Unreachable peers remembered, at most (the oldest are forgotten first). */
const MAX_UNREACHABLE = 4096

/**
 * Providers remembered across all file roots, at most (the roots asked
 * longest ago are forgotten first): a few MiB of peer ids, for thousands of
 * files of usual codes (k + m providers each).
 */
const MAX_REMEMBERED = 65_536

/** Looks up a file's holders in the DHT and reaches peers this node is not connected to. */
export class HolderSearch {
  private readonly settings: Required<HolderSearchInit>
  /** Peers that could not be reached → until when they are not dialled (network clock). */
  private readonly unreachable = new Map<string, number>()
  /** File root → the providers its last query found (this node left out) and until when they stand (network clock). */
  private readonly found = new Map<string, { peers: string[], until: number }>()
  /** Peers named in `found`, all roots together. */
  private remembered = 0

  constructor (private readonly components: HolderSearchComponents, init: HolderSearchInit = {}) {
    this.settings = { ...HOLDER_SEARCH_DEFAULTS, ...init }
  }

  /** Whether this node can look providers up (the network has a DHT). */
  get canFind (): boolean {
    return this.components.network.findProviders !== undefined
  }

  /**
   * The providers of `root` in the DHT (this node and `exclude` left out),
   * at most `maxPeers`, within `findTimeoutMs`. A query that fails ends the
   * list (logged); an aborted one throws. What a query found stands for
   * `providersMs`: the same root asked again meanwhile is answered from it,
   * without a query — unless `options.fresh` (a read that cannot go on
   * without a holder it does not see: a holder announced since the last
   * query must be found).
   *
   * @throws {AbortedError} when `options.signal` aborts
   */
  async providers (root: CID, options: { exclude: ReadonlySet<string>, signal?: AbortSignal, fresh?: boolean }): Promise<string[]> {
    const { exclude, signal } = options
    const { network, logger } = this.components
    if (network.findProviders === undefined) return []
    const key = root.toString()
    const known = this.found.get(key)
    if (options.fresh !== true && known !== undefined && known.until > network.now()) return known.peers.filter(p => !exclude.has(p)).slice(0, this.settings.maxPeers)
    const peers: string[] = []
    let taken = 0
    const bound = this.bounded(this.settings.findTimeoutMs, signal)
    try {
      for await (const peer of network.findProviders(root, { signal: bound.signal })) {
        if (peer === network.self || peers.includes(peer)) continue
        peers.push(peer)
        if (!exclude.has(peer) && ++taken >= this.settings.maxPeers) break
      }
    } catch (err: any) {
      if (signal?.aborted === true) throw new AbortedError('holder search aborted')
      logger.debug({ root: key, err: err?.message }, 'providers of a file root not found')
    } finally {
      bound.done()
    }
    this.remember(key, peers)
    return peers.filter(p => !exclude.has(p))
  }

  /**
   * Run `ask` for each of `peers` (dialled as needed), at most `concurrency`
   * at once, each within `peerTimeoutMs`. A peer that failed to answer lately
   * is skipped; one that fails now is remembered as such. Returns the peers
   * whose `ask` succeeded.
   */
  async reach (peers: readonly string[], ask: (peer: string, signal: AbortSignal) => Promise<void>, signal?: AbortSignal): Promise<string[]> {
    const queue = peers.filter(p => p !== this.components.network.self && !this.isUnreachable(p))
    const answered: string[] = []
    const worker = async (): Promise<void> => {
      for (let peer = queue.shift(); peer !== undefined; peer = queue.shift()) {
        if (aborted(signal)) return
        const bound = this.bounded(this.settings.peerTimeoutMs, signal)
        try {
          await ask(peer, bound.signal)
          this.unreachable.delete(peer)
          answered.push(peer)
        } catch (err: any) {
          if (!aborted(signal)) this.noteUnreachable(peer)
          this.components.logger.debug({ peer, err: err?.message }, 'holder not reached')
        } finally {
          bound.done()
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.settings.concurrency, queue.length) }, worker))
    return answered
  }

  /** Remember the providers of the root `key`, forgetting the roots asked longest ago beyond {@link MAX_REMEMBERED} peers. */
  private remember (key: string, peers: string[]): void {
    this.forget(key)
    for (const [oldest] of this.found) {
      if (this.remembered + peers.length <= MAX_REMEMBERED) break
      this.forget(oldest)
    }
    this.found.set(key, { peers, until: this.components.network.now() + this.settings.providersMs })
    this.remembered += peers.length
  }

  private forget (key: string): void {
    const known = this.found.get(key)
    if (known === undefined) return
    this.found.delete(key)
    this.remembered -= known.peers.length
  }

  private isUnreachable (peer: string): boolean {
    const until = this.unreachable.get(peer)
    if (until === undefined) return false
    if (until > this.components.network.now()) return true
    this.unreachable.delete(peer)
    return false
  }

  private noteUnreachable (peer: string): void {
    if (this.unreachable.size >= MAX_UNREACHABLE) {
      const oldest = this.unreachable.keys().next().value
      if (oldest !== undefined) this.unreachable.delete(oldest)
    }
    this.unreachable.delete(peer)
    this.unreachable.set(peer, this.components.network.now() + this.settings.unreachableMs)
  }

  /** A signal that aborts with `signal` or after `ms` on the injected timers; `done` frees the timer. */
  private bounded (ms: number, signal?: AbortSignal): { signal: AbortSignal, done: () => void } {
    const { timers } = this.components
    const controller = new AbortController()
    const timer = timers.setTimeout(() => { controller.abort(new PeerUnreachableError(`no answer within ${ms} ms`)) }, ms)
    return {
      signal: signal === undefined ? controller.signal : AbortSignal.any([signal, controller.signal]),
      done: () => { timers.clearTimeout(timer) }
    }
  }
}

/** Whether `signal` has fired (read afresh: it may fire during any await). */
function aborted (signal?: AbortSignal): boolean {
  return signal?.aborted === true
}
