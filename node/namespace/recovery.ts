/**
 * Recovery of a replica whose store is behind its own past writes
 * (docs/namespace.md, "A node that lost its store").
 *
 * Why: an author's entries are numbered 1, 2, 3… by `seq`, and peers refuse a
 * second, different entry for one `(author, seq)` (equivocation). A node that
 * restarts with its key but an empty store (a lost disk, a store moved aside)
 * or an old backup of it starts counting again from where its store stops; its
 * next write reuses a seq its old self already used, the peers refuse it, it
 * refuses the peers' old entries, and the two sides diverge for good.
 *
 * The mechanism: such a replica is *recovering*. Its local writes wait (at
 * most `timeout`, then {@link NamespaceRecoveringError}) until a trusted peer
 * has told it how far this node's own seq got (any clock heard from a peer:
 * gossip, a pull request, a pull answer) and it has applied its own entries up
 * to there. A store is recovering when it is empty and was not created for a
 * new identity (the repo's `init` writes a marker, {@link NEW_STORE_KEY}), and
 * whenever a peer shows this node's own seq higher than its store holds (an
 * old backup restored), detected at any time. The state is kept in the store
 * (`m!recovering`), so a restart during recovery goes on recovering.
 *
 * A restore from an old backup cannot be seen from the store itself (the
 * backup is a whole store), and a write made before any peer spoke reused
 * a seq (found by the lifecycle simulation: a node restored from its backup
 * wrote at once, and the swarm diverged for good). So a replica that opens a
 * store that knows trusted members *checks after the restart*
 * (`checkOnRestart`): its local writes wait until trusted peers' views of
 * this node's seq arrive (a pull on connecting brings one in
 * milliseconds). Views at or below the store's seq end the check; one above
 * it turns it into a recovery. When no peer answers within
 * `restartTimeout` (all of them down), the writes go ahead, with a warning:
 * waiting longer would only stall a node whose swarm is away.
 *
 * One peer's word is not enough: a peer may itself have lost its store or
 * been restored from a backup as old a moment before, and show this node's
 * seq lower than it is (found by the scale simulation: neighbours lost
 * together, a writer among them reused seqs on the word of one of them). So
 * a recovery of an empty store and the check after a restart end only once
 * `quorum` distinct trusted peers have shown this node's seq, or `settleMs`
 * after the first of them when fewer answer (a swarm of two); the target is
 * the highest seq any of them showed. (A store in no doubt that a peer shows
 * behind starts a recovery on that peer's word alone: its claim is fetched,
 * or refuted by a pull.) Each
 * connection starts a pull, so in a swarm the views arrive within
 * milliseconds of each other.
 *
 * When it applies: only to the replica's own author; other authors' entries
 * are applied as they arrive, and reads are never held back.
 *
 * Two parts: {@link Recovery}, the state machine (no I/O), and
 * {@link ReplicaRecovery}, the replica's glue around it — loading or
 * entering the state at open, storing it when a peer advances it, clearing
 * its marker in the commit that ends it (a store commit hook), and holding
 * local writes back ({@link ReplicaRecovery.writing}).
 *
 * @module
 */
import { ShoalError } from '../errors.js'
import { encodeJSON, type KV } from './kv.js'
import type { Batch } from './store.js'
import type { VectorClock } from './clock.js'
import type { Timers } from './sync.js'
import type { Logger } from '../logger.js'

/** Marker key the repo's `init` writes into a new namespace store: this store was created with its identity. */
export const NEW_STORE_KEY = 'm!new'
/** Key of the recovery state in the store. */
export const RECOVERING_KEY = 'm!recovering'

/**
 * A local write was refused because this node is recovering its own past
 * writes from its peers and none answered in time (or its store is behind
 * what a peer holds of its own writes). Nothing was written.
 */
export class NamespaceRecoveringError extends ShoalError {
  override name = 'NamespaceRecoveringError'
  override readonly status = 503
}

/** Timers the wait runs on (virtual in simulations): those of namespace sync. */
export type RecoveryTimers = Timers

/** The stored recovery state. */
export interface RecoveryState {
  /** Highest own seq heard from a peer (0 until one answered). */
  target: number
  /** Whether a trusted peer's view of this node has been heard. */
  heard: boolean
  /**
   * Why: `'empty-store'`, `'behind-peer'`, or `'restart'` (the check after a
   * restart: not stored, and writes go ahead when no peer answers in time).
   */
  reason: 'empty-store' | 'behind-peer' | 'restart'
}

/** What {@link Recovery} is built from. */
export interface RecoveryInit {
  timers: RecoveryTimers
  /** Longest a write waits (ms). */
  timeout: number
  /** Longest a write waits for the check after a restart, before it goes ahead (ms). @default `timeout` */
  restartTimeout?: number
  /** The check after a restart ended without any peer's answer (writes go ahead). */
  unchecked?: () => void
  /** Distinct trusted peers whose view of this node's seq ends the wait. @default 2 */
  quorum?: number
  /** Longest the wait goes on for the quorum after the first peer's view (ms). @default 2000 */
  settleMs?: number
  /** The views heard are now enough (the quorum, or the settle window passed): recovery may end. */
  settled?: () => void
  /** Recovery (or the check after a restart) ended: local writes go ahead. */
  ended?: () => void
  /** Where the store lives (messages). */
  where: string
}

/**
 * The recovery state machine of one replica: whether it is recovering, what
 * it still needs, and the writers waiting for it to end.
 */
export class Recovery {
  private state: RecoveryState | undefined
  private waiters = new Set<() => void>()
  /** The peers whose view of this node's seq was heard in this recovery (in memory: a restart counts again). */
  private readonly views = new Set<string>()
  /** Enough views: the quorum, or the settle window after the first passed. */
  private enough = false
  private settleTimer: unknown

  constructor (private readonly init: RecoveryInit) {}

  /** True while local writes must wait. */
  get active (): boolean { return this.state !== undefined }

  /** The current state (undefined when not recovering). */
  get current (): RecoveryState | undefined { return this.state === undefined ? undefined : { ...this.state } }

  /** Set the state (loaded from the store, or entered); wakes writers when it ends. */
  set (state: RecoveryState | undefined): void {
    const was = this.state
    this.state = state === undefined ? undefined : { ...state }
    if (state === undefined) {
      this.views.clear()
      this.enough = false
      if (this.settleTimer !== undefined) this.init.timers.clearTimeout(this.settleTimer)
      this.settleTimer = undefined
      const waiting = [...this.waiters]
      this.waiters.clear()
      for (const wake of waiting) wake()
      if (was !== undefined) this.init.ended?.()
    }
  }

  /**
   * A trusted peer's clock showed this node's own seq as `seen` (0 when it
   * holds none), while this store holds `local`. Returns the new state when
   * it changed (to be stored), undefined otherwise.
   */
  heard (seen: number, local: number, peer: string): RecoveryState | undefined {
    const s = this.state
    if (s === undefined) {
      if (seen <= local) return undefined
      // a store in no doubt until now: the peer's claim is fetched, or refuted by a pull (no quorum to wait for)
      this.markEnough()
      return { target: seen, heard: true, reason: 'behind-peer' }
    }
    this.count(peer)
    if (s.heard && seen <= s.target) return undefined
    // the check after a restart found the store behind this node's own writes: a recovery like any other
    const reason = s.reason === 'restart' && seen > local ? 'behind-peer' : s.reason
    return { ...s, reason, heard: true, target: Math.max(s.target, seen) }
  }

  /** Whether the state is satisfied with `local` own entries applied, on the word of enough peers. */
  done (local: number): boolean {
    const s = this.state
    return s !== undefined && s.heard && this.enough && local >= s.target
  }

  /** Count `peer`'s view; the first starts the settle window, the quorum ends it. */
  private count (peer: string): void {
    if (this.enough) return
    this.views.add(peer)
    if (this.views.size >= (this.init.quorum ?? 2)) {
      this.markEnough()
    } else if (this.settleTimer === undefined) {
      this.settleTimer = this.init.timers.setTimeout(() => {
        this.settleTimer = undefined
        if (this.state !== undefined && !this.enough) {
          this.markEnough()
          this.init.settled?.()
        }
      }, this.init.settleMs ?? 2000)
    }
  }

  private markEnough (): void {
    this.enough = true
    if (this.settleTimer !== undefined) this.init.timers.clearTimeout(this.settleTimer)
    this.settleTimer = undefined
  }

  /**
   * Wait until recovery ends, at most the configured timeout.
   *
   * @throws {NamespaceRecoveringError} when it does not end in time
   */
  async wait (): Promise<void> {
    if (this.state === undefined) return
    const { timers, timeout } = this.init
    const checking = this.state.reason === 'restart'
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => { timers.clearTimeout(timer); resolve() }
      const timer = timers.setTimeout(() => {
        this.waiters.delete(wake)
        // the check after a restart heard no peer: the swarm is away, writes go ahead
        if (this.state?.reason === 'restart' && !this.state.heard) {
          this.set(undefined)
          this.init.unchecked?.()
          resolve()
          return
        }
        reject(this.error())
      }, checking ? this.init.restartTimeout ?? timeout : timeout)
      this.waiters.add(wake)
    })
  }

  /** The error of a write that waited too long. */
  error (): NamespaceRecoveringError {
    const s = this.state
    const why = s?.reason === 'behind-peer'
      ? `a peer holds writes of this node up to seq ${s.target} that ${this.init.where} lacks (an old backup restored?)`
      : `${this.init.where} is empty but this node's identity existed before (a lost or replaced store)`
    const what = s?.heard === true
      ? `it is fetching its own past writes (up to seq ${s.target}) from its peers`
      : 'it is waiting for a peer to tell it which writes it made before, and no trusted peer has answered yet'
    return new NamespaceRecoveringError(`namespace write refused: ${why}; ${what}, so that no new write reuses the number of an old one ` +
      `(peers would refuse it and the namespace would diverge). Nothing was written; retry once the node has synced with a peer. ` +
      'If no peer will ever answer (this node never wrote, or its writes are gone from every node), start the daemon with ' +
      'SHOAL_NAMESPACE_RECOVERY=skip to write anyway (docs/namespace.md, "A node that lost its store")')
  }
}

/**
 * Mark a namespace store as created for a new identity (the repo's `init`),
 * so that its replica does not wait for peers before its first write.
 */
export async function markNewStore (kv: KV, now: number): Promise<void> {
  await kv.open()
  try {
    await kv.batch([{ type: 'put', key: NEW_STORE_KEY, value: encodeJSON({ created: now }) }], true)
  } finally {
    await kv.close()
  }
}

/** What {@link ReplicaRecovery} is built from. */
export interface ReplicaRecoveryComponents extends RecoveryInit {
  kv: KV
  /** This replica's author id. */
  id: string
  logger: Logger
  /** The replica's state this glue reads and its lock (store.ts). */
  store: {
    /** What the replica has applied (its own seq included). */
    readonly clock: VectorClock
    exclusive: <T>(fn: () => Promise<T>) => Promise<T>
    meta: <T>(name: string) => Promise<T | undefined>
  }
  /** Whether the replica is open (a peer heard before then changes nothing). */
  isOpen: () => boolean
  /** An empty store without the new-store marker recovers (`recoverEmptyStore`). */
  empty: boolean
  /** Never recover (`skipRecovery`). */
  skip: boolean
}

/**
 * Recovery as a replica runs it: the {@link Recovery} state machine, with
 * its state kept in the store (`m!recovering`).
 */
export class ReplicaRecovery {
  private readonly recovery: Recovery
  /** Per peer, the highest own seq its clock claimed (not backed by entries yet). */
  private readonly claims = new Map<string, number>()
  /** The highest own seq seen in an entry signed by this node's key. */
  private proven = 0

  constructor (private readonly components: ReplicaRecoveryComponents) {
    this.recovery = new Recovery({ ...components, settled: () => { this.finishIfDone(components.store.clock[components.id] ?? 0) } })
  }

  /** True while local writes must wait. */
  get active (): boolean { return this.recovery.active }

  /**
   * Load or enter the recovery state at open: a stored recovery goes on; an
   * empty store without the new-store marker starts one when
   * `recoverEmptyStore` is set. `skipRecovery` drops it.
   */
  async open (): Promise<void> {
    const { kv, logger } = this.components
    if (this.components.skip) {
      if (await kv.get(RECOVERING_KEY) !== undefined) {
        await kv.batch([{ type: 'del', key: RECOVERING_KEY }], true)
        logger.warn('namespace recovery skipped as configured: local writes may reuse seqs this node used before')
      }
      return
    }
    let state = await this.components.store.meta<RecoveryState>('recovering')
    if (state === undefined && this.components.empty) {
      let empty = true
      for await (const _ of kv.iterate({ limit: 1 })) empty = false // eslint-disable-line @typescript-eslint/no-unused-vars
      if (empty) {
        state = { target: 0, heard: false, reason: 'empty-store' }
        try {
          await kv.batch([{ type: 'put', key: RECOVERING_KEY, value: encodeJSON(state) }], true)
        } catch (err: any) {
          // a full disk must not keep the node from opening: recovery holds in memory, and an empty store starts it again at the next open
          logger.warn({ err: err?.message ?? String(err) }, 'namespace recovery state not stored (the store is empty: recovery starts again at the next open)')
        }
      }
    }
    if (state !== undefined) {
      this.recovery.set(state)
      logger.warn({ ...state }, 'namespace store is behind this node\'s own past writes: recovering them from peers before the next local write')
    }
  }

  /**
   * Check after a restart (see the module's comment): local writes wait for
   * trusted peers' views of this node's seq (the quorum), at most
   * `restartTimeout`. Called once the replica is open, for a store that
   * knows trusted members; nothing when recovering
   * already or when recovery is skipped. Not stored: the next open checks
   * again.
   */
  checkAfterRestart (): void {
    if (this.components.skip || this.recovery.active) return
    this.recovery.set({ target: 0, heard: false, reason: 'restart' })
    this.components.logger.debug('namespace restarted: local writes wait for a peer to confirm this node\'s own seq')
  }

  /**
   * A trusted peer showed this node's own seq as `seen`: start or advance
   * recovery when that is ahead of what the store holds, end it when done.
   */
  heardSelf (seen: number, peer: string, evidence: 'claim' | 'entry' = 'claim'): void {
    const { id, store, logger } = this.components
    if (this.components.skip || !this.components.isOpen()) return
    if (evidence === 'entry') this.proven = Math.max(this.proven, seen)
    else this.claims.set(peer, Math.max(this.claims.get(peer) ?? 0, seen))
    const local = store.clock[id] ?? 0
    const next = this.recovery.heard(seen, local, peer)
    if (next === undefined) {
      // no new target, but perhaps the view that makes the quorum
      this.finishIfDone(local)
      return
    }
    if (!this.recovery.active) logger.warn({ peer, seen, local }, 'a peer holds writes of this node that its store lacks: recovering them before the next local write')
    this.recovery.set(next)
    this.settle(local)
  }

  /**
   * A pull from `peer` ended with everything it had for this node: what it
   * claimed of this node's own writes beyond what this store now holds was
   * not backed by entries (signed by this node's key), so the claim no
   * longer holds recovery open. A member claiming writes this node never
   * made cannot keep its writes waiting for longer than a pull takes.
   */
  pulledFrom (peer: string): void {
    const { id, store, logger } = this.components
    const claim = this.claims.get(peer)
    if (claim === undefined) return
    this.claims.delete(peer)
    const s = this.recovery.current
    const local = store.clock[id] ?? 0
    if (s === undefined || claim <= local || claim < s.target) return
    const target = Math.max(this.proven, local, ...this.claims.values())
    if (target >= s.target) return
    logger.warn({ peer, claimed: claim, local, target }, 'a peer claimed writes of this node it could not send: its claim no longer holds recovery open')
    this.recovery.set({ ...s, target })
    this.settle(local)
  }

  /** End recovery when `local` own entries satisfy it, else store its changed state (never the check after a restart's: not stored). */
  private settle (local: number): void {
    const { kv, store } = this.components
    if (this.finishIfDone(local) || this.recovery.current?.reason === 'restart') return
    void store.exclusive(async () => {
      const s = this.recovery.current
      if (s !== undefined) await kv.batch([{ type: 'put', key: RECOVERING_KEY, value: encodeJSON(s) }], true)
    }).catch(() => {})
  }

  /** End recovery when `local` own entries satisfy it, on the word of enough peers; true when it ended. */
  private finishIfDone (local: number): boolean {
    const { kv, store } = this.components
    if (!this.recovery.done(local)) return false
    // the check after a restart confirmed the store: nothing was stored, nothing to say
    const checked = this.recovery.current?.reason === 'restart'
    this.end()
    if (!checked) void store.exclusive(async () => { if (!this.recovery.active) await kv.batch([{ type: 'del', key: RECOVERING_KEY }], true) }).catch(() => {})
    return true
  }

  /**
   * The store's commit hook: a batch that brings this node's own entries up
   * to the recovery's target clears the stored state with it, and recovery
   * ends once the batch is durable.
   */
  onCommit (batch: Batch): (() => void) | undefined {
    if (!this.recovery.done(batch.clock[this.components.id] ?? 0)) return undefined
    batch.txn.del(RECOVERING_KEY)
    return () => { this.end() }
  }

  /**
   * Run a local write once this replica is not recovering: wait for recovery
   * (bounded), then run `fn` under the lock, unless recovery started again
   * meanwhile (a peer showed a higher own seq): then wait again, at most a
   * few times.
   *
   * @throws {NamespaceRecoveringError} when recovery does not end in time
   */
  async writing<T> (fn: () => Promise<T>): Promise<T> {
    const RETRY = Symbol('retry')
    for (let attempt = 0; attempt < 4; attempt++) {
      await this.recovery.wait()
      const out = await this.components.store.exclusive(async () => this.recovery.active ? RETRY : await fn())
      if (out !== RETRY) return out as T
    }
    throw this.recovery.error()
  }

  private end (): void {
    const s = this.recovery.current
    if (s === undefined) return
    if (s.reason === 'restart') {
      this.recovery.set(undefined)
      return
    }
    this.components.logger.info({ seq: this.components.store.clock[this.components.id] ?? 0 }, 'namespace recovery done: this node holds its own past writes again')
    this.recovery.set(undefined)
  }
}
