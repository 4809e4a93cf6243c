/**
 * Keeps a {@link Replica} converged with its peers.
 *
 * - **Push**: every local write is published at once on the swarm's gossip
 *   topic with the writer's clock and heads, and the new entries themselves
 *   when they are small, so most peers apply it without a round trip.
 * - **Pull**: a peer that hears a clock it does not cover, that connects, or
 *   whose turn comes in the periodic anti-entropy round, asks that peer for
 *   what it lacks by vector clock: one page of up to `pageSize` entries per
 *   round trip in causal order, so a deep history costs pages, not depth ×
 *   RTT. While a page is applied, the next one is already asked for (one
 *   page ahead, with the clock the replica will have once the page is
 *   applied; taken only if it then has it), and its entries are checked
 *   as soon as it arrives, while the page before is applied and committed
 *   (Replica.prepare, then Replica.accept). A peer behind the other's
 *   pruned history gets a snapshot instead; its tree's nodes are fetched
 *   from the serving peer and up to `snapshotPeers - 1` other trusted peers
 *   (snapshot-fetch.ts). A replica that pruned history of its own first
 *   asks up to `prunedChecks` other trusted peers whether one still has
 *   entries to give, and pulls those instead (pruned-claim.ts): a snapshot
 *   replaces history only when no reachable peer holds it any more.
 * - **Compaction** runs in the anti-entropy round, except while a pull is
 *   catching up (its peer said it has more pages, or answered with a
 *   snapshot): then it waits until that pull ends, and runs then. So does
 *   the retirement of authors that left (retire.ts): clocks on the wire
 *   leave out retired authors held at their retired seq.
 * - **Heartbeat**: a round publishes the clock only when it tells the swarm
 *   something new: this node holds entries no gossip it sent or heard
 *   announced (applied from a pull or a snapshot), or it has heard no
 *   trusted gossip since it started (alone, or trusting no one yet), or
 *   `heartbeatEvery` has passed since it last published (liveness). Peers
 *   learn what a node has seen (causal stability, compaction) from those
 *   heartbeats, from its pull requests and from its own entries; a quiet
 *   swarm publishes only the liveness heartbeats (docs/decisions.md).
 *
 * - **State checks** (state-check.ts): every `stateCheckEvery` rounds a
 *   replica asks trusted peers whether their heads are its own; with one
 *   that has them it compares the roots of their states' trees, diffs them
 *   where they differ, and repairs its rows when two such peers agree
 *   against it: the anti-entropy that clocks cannot do, since replicas of
 *   equal clocks exchange nothing else.
 * - **Bad input**: a peer whose gossip, requests or answers do not decode,
 *   whose entries the replica rejects or whose snapshot fails its checks is
 *   scored down (peer-scores.ts); one past the threshold is shunned for a
 *   while: its gossip is dropped unread and it is not pulled from.
 * - **Trust**: gossip from a peer that is not a trusted writer is ignored
 *   (counted), and such a peer is never pulled from; entries by untrusted
 *   authors that a trusted peer passes on are dropped by the replica. Pulls
 *   are still served to any peer: what a swarm holds is readable by whoever
 *   reaches it, trust is about who may write. Such a peer that writes (its
 *   gossip or pull request names more of its entries than this node
 *   applied) is warned about in the log and, when connected, sent a writer
 *   notice, at most once a minute (untrusted-gossip.ts); the notices this
 *   node gets from its own members are kept in {@link NamespaceSync.refusals}
 *   (write-refusals.ts) and change nothing but what it reports.
 *
 * The network, timers and randomness are injected ({@link SyncComponents}),
 * so the same code runs on libp2p and on a simulated network.
 *
 * @module
 */
import {
  MAX_BATCH_ENTRIES, MAX_HEADS, MAX_SYNC_MESSAGE_BYTES,
  claimedDot, decodeHeadsMessage, decodeSyncRequest, decodeSyncResponse, encodeHeadsMessage, encodeSyncRequest, encodeSyncResponse,
  type StateRequest, type SyncResponse
} from '../../protocol/namespace.js'
import { equals } from 'multiformats/bytes'
import { StateCheck, type StateCheckOptions } from './state-check.js'
import { dominates, merge, type VectorClock } from './clock.js'
import type { Replica } from './replica.js'
import type { PreparedEntries } from './log.js'
import { chooseHelpers, spreadFetch, type SnapshotFetchStats } from './snapshot-fetch.js'
import { DeclinedSnapshots, entriesElsewhere } from './pruned-claim.js'
import type { SnapshotFetch } from './snapshot-load.js'
import { InvalidSnapshotError } from './snapshot-state.js'
import { OffenceScores, type Offence, type PeerScoreOptions } from './peer-scores.js'
import type { WallClock } from './api.js'
import { UntrustedGossip } from './untrusted-gossip.js'
import { WriteRefusals } from './write-refusals.js'
import { encodeWriterNotice } from '../../protocol/writer-notice.js'
import type { TrustPolicy } from './trust.js'
import type { Logger } from '../logger.js'
import { jittered, type Timers } from '../timers.js'
import type { CID } from 'multiformats/cid'

/** Handlers a {@link SyncNetwork} calls. */
export interface SyncHandlers {
  /**
   * A gossip message by `from` (its author), delivered by `via`: the
   * connected peer that relayed it (gossipsub's propagation source; `from`
   * itself when the author sent it directly, or when the network cannot
   * tell).
   */
  message: (from: string, data: Uint8Array, via?: string) => void
  /** A request from `from`; the answer is sent back. */
  request: (from: string, data: Uint8Array) => Promise<Uint8Array>
  /** A peer connected. */
  connected: (peer: string) => void
  /** A writer notice (protocol/writer-notice.ts) from `from`; undefined: one that could not be read. */
  notice?: (from: string, data: Uint8Array | undefined) => void
}

/** What namespace sync needs from the network. */
export interface SyncNetwork {
  /** Start delivering to `handlers`. */
  handle: (handlers: SyncHandlers) => Promise<void>
  /** Stop delivering. */
  unhandle: () => Promise<void>
  /** Publish to every peer of the swarm, best effort. */
  publish: (data: Uint8Array) => Promise<void>
  /** Send a request to one peer and wait for its answer. */
  request: (peer: string, data: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>
  /** Peers currently reachable. */
  peers: () => string[]
  /**
   * Send a writer notice to `peer`, a connected peer (no new dial), best
   * effort. A network without it sends none (its writers are not told).
   */
  notify?: (peer: string, data: Uint8Array, signal: AbortSignal) => Promise<void>
}

export type { Timers } from '../timers.js'

/** What namespace sync is built from. */
export interface SyncComponents {
  replica: Replica
  network: SyncNetwork
  timers: Timers
  /** Uniform in [0, 1) (seeded in simulations). */
  random: () => number
  logger: Logger
  /** Peers whose gossip is taken and who are pulled from. @default the replica's trust (every peer when it has none) */
  trust?: TrustPolicy
  /**
   * The clock peer scores decay on: durations only, so a monotonic one (a
   * step of the wall clock must not forgive or prolong a shunning); virtual
   * time in simulations. @default `performance.now()`
   */
  clock?: WallClock
}

/** Tuning. */
export interface SyncOptions {
  /** Mean period of anti-entropy rounds (ms). @default 10000 */
  interval?: number
  /**
   * Longest a node goes without publishing its clock (ms): a round with
   * nothing new to announce still publishes a heartbeat once this long has
   * passed since the node last published, so that peers keep it as a member
   * (they count it out after the replica's `memberTimeout`, 7 days by
   * default: keep this far below) and learn what it has seen. Counted in
   * rounds, ⌈heartbeatEvery / interval⌉, so simulations on virtual time
   * behave as production does. @default 1800000 (30 min)
   */
  heartbeatEvery?: number
  /** Entries per pull round trip. @default 1000 */
  pageSize?: number
  /** Largest total of entries carried inside a gossip message (bytes). @default 262144 */
  gossipBytes?: number
  /** Timeout of one request (ms). @default 15000 */
  requestTimeout?: number
  /** Most pages one pull takes before yielding to other work. @default 1000 */
  maxPages?: number
  /**
   * Most pulls running at once (to different peers). A node that lacks
   * what gossip announced hears it from each of its peers in turn; pulling
   * from all of them at once brings the same entries several times. A pull
   * wanted beyond this waits, and runs when one ends, if what made it
   * worth asking is still lacking (see {@link NamespaceSync.pullFrom}).
   * @default 2
   */
  maxPulls?: number
  /**
   * Most peers one snapshot load fetches tree nodes from: the peer that
   * served the snapshot and up to `snapshotPeers - 1` other trusted peers
   * (snapshot-fetch.ts); 1 fetches from the serving peer only. @default 4
   */
  snapshotPeers?: number
  /**
   * Other trusted peers a replica with pruned history of its own asks for
   * entries before it takes a peer's snapshot (pruned-claim.ts); 0 takes
   * every snapshot on the server's word. @default 3
   */
  prunedChecks?: number
  /** Scoring of peers' bad input (peer-scores.ts). */
  scores?: PeerScoreOptions
  /**
   * Rounds between state checks (state-check.ts): a round, once this many
   * have passed since the last check and no pull is running, compares this
   * replica's state with trusted peers whose heads are its own, and repairs
   * it when two of them agree against it. 0: never. @default 6 (about a
   * minute at the default interval)
   */
  stateCheckEvery?: number
  /** Tuning of state checks. */
  stateCheck?: StateCheckOptions
}

/** Counters. */
export interface SyncStats {
  published: number
  messages: number
  invalidMessages: number
  pulls: number
  pullFailures: number
  pages: number
  snapshots: number
  served: number
  /** Gossip messages ignored because their sender is not trusted. */
  untrusted: number
  /** Gossip messages dropped unread because their sender is shunned for bad input. */
  shunned: number
}

/** Counters of pulls asking ahead, and of compactions waiting for a catch-up. */
export interface PullStats {
  /** Pages asked for while the page before was being applied. */
  pagesAskedAhead: number
  /** Pages asked ahead and not taken: the replica did not have, once the page before was applied, all the request said it had (asked again). */
  pagesAskedAheadDropped: number
  /** Rounds whose compaction waited for a pull that was catching up (it ran when the pull ended). */
  compactionsDeferred: number
  /** Snapshots left because another peer still had entries to give (pruned-claim.ts). */
  snapshotsDeclined: number
}

/** Counters of the heartbeats of sync rounds. */
export interface HeartbeatStats {
  /** Heartbeats published by rounds (included in {@link SyncStats.published}). */
  heartbeats: number
  /** Rounds that published no heartbeat: nothing new to announce and no liveness heartbeat due. */
  heartbeatsSkipped: number
}

/** Namespace sync over a {@link SyncNetwork}. */
export class NamespaceSync {
  readonly stats: SyncStats & HeartbeatStats & PullStats & SnapshotFetchStats = {
    published: 0, messages: 0, invalidMessages: 0, pulls: 0, pullFailures: 0, pages: 0, snapshots: 0, served: 0, untrusted: 0, shunned: 0,
    heartbeats: 0, heartbeatsSkipped: 0, pagesAskedAhead: 0, pagesAskedAheadDropped: 0, compactionsDeferred: 0, snapshotsDeclined: 0, snapshotHelperRequests: 0, snapshotHelperFailures: 0
  }
  /** Scores of the peers' bad input. */
  readonly scores: OffenceScores
  /** Anti-entropy between replicas that look converged (state-check.ts). */
  readonly stateCheck: StateCheck
  private readonly options: Required<Omit<SyncOptions, 'scores' | 'stateCheck'>>
  /** Rounds since the last state check. */
  private roundsSinceCheck = 0
  /** Rounds a liveness heartbeat waits at most. */
  private readonly heartbeatRounds: number
  /** What the swarm has been told since start: the clocks this node published and those of the trusted gossip it heard. */
  private announced: VectorClock = {}
  /** Whether trusted gossip has been heard since start. */
  private heard = false
  /** Rounds since this node last published. */
  private quietRounds = 0
  private readonly log: Logger
  private readonly trust: TrustPolicy
  private readonly inflight = new Map<string, boolean>()
  /** Pulls wanted while {@link SyncOptions.maxPulls} ran, oldest first: the clock that made each worth asking (undefined: ask in any case). */
  private readonly waiting = new Map<string, VectorClock | undefined>()
  /** Pulls catching up now: their peer said it has more pages, or served a snapshot. */
  private catchingUp = 0
  /** A round's compaction waits for the pulls catching up to end. */
  private compactionDeferred = false
  /** Servers whose snapshot was declined, and at which clock (pruned-claim.ts). */
  private readonly declined = new DeclinedSnapshots()
  private readonly running = new Set<Promise<void>>()
  private timer: unknown
  private stopped = true
  /** Aborted by {@link stop}: what is under way (a state check) ends. */
  private lifetime = new AbortController()
  private unlisten?: () => void
  private nextId = 1
  /** Says when a peer this node does not trust keeps writing (its gossip is ignored unread otherwise), and tells that peer. */
  readonly untrustedGossip: UntrustedGossip
  /** The members that said they refuse this node's writes (writer notices it received). */
  readonly refusals: WriteRefusals
  /** Writer notices sent, and those that could not be (best effort). */
  readonly noticeStats = { sent: 0, failed: 0 }

  constructor (private readonly components: SyncComponents, options: SyncOptions = {}) {
    this.options = {
      interval: options.interval ?? 10_000,
      heartbeatEvery: options.heartbeatEvery ?? 30 * 60_000,
      pageSize: Math.min(options.pageSize ?? 1000, MAX_BATCH_ENTRIES),
      gossipBytes: options.gossipBytes ?? 256 * 1024,
      requestTimeout: options.requestTimeout ?? 15_000,
      maxPages: options.maxPages ?? 1000,
      maxPulls: Math.max(1, options.maxPulls ?? 2),
      snapshotPeers: Math.max(1, options.snapshotPeers ?? 4),
      prunedChecks: Math.max(0, options.prunedChecks ?? 3),
      stateCheckEvery: Math.max(0, options.stateCheckEvery ?? 6)
    }
    this.heartbeatRounds = Math.max(1, Math.ceil(this.options.heartbeatEvery / this.options.interval))
    this.log = components.logger
    this.trust = components.trust ?? components.replica.trust
    const clock = components.clock ?? { now: () => performance.now() }
    this.scores = new OffenceScores(clock, options.scores)
    this.untrustedGossip = new UntrustedGossip({
      logger: components.logger,
      clock,
      applied: author => components.replica.state().clock[author] ?? 0,
      notify: (peer, applied) => { this.notify(peer, applied) }
    })
    this.refusals = new WriteRefusals({
      self: components.replica.id,
      trust: this.trust,
      peers: () => components.network.peers(),
      logger: components.logger,
      clock
    })
    this.stateCheck = new StateCheck({
      heads: () => components.replica.headsDigest(),
      state: async () => await components.replica.checkedState(),
      repair: async (repairs, heads) => await components.replica.repairState(repairs, heads),
      scrub: async () => await components.replica.scrubRows(),
      peers: () => components.network.peers().filter(peer => this.pullable(peer)),
      ask: async (peer, request, signal) => await this.ask(peer, request, signal),
      blocks: async (peer, cids, signal) => await this.blocks(peer, cids, signal),
      signal: () => this.lifetime.signal,
      nextId: () => this.nextId++,
      random: components.random,
      penalize: (peer, offence) => { this.penalize(peer, offence) },
      logger: components.logger
    }, options.stateCheck)
  }

  async start (): Promise<void> {
    if (!this.stopped) return
    this.stopped = false
    this.lifetime = new AbortController()
    this.announced = {}
    this.heard = false
    this.quietRounds = 0
    const { replica, network } = this.components
    this.unlisten = replica.onLocalEntries(entries => { this.track(this.publish(entries)) })
    await network.handle({
      message: (from, data, via) => { this.onMessage(from, data, via) },
      request: async (from, data) => await this.onRequest(from, data),
      connected: (peer) => { this.pullFrom(peer) },
      notice: (from, data) => { this.refusals.receive(from, data) }
    })
    for (const peer of network.peers()) this.pullFrom(peer)
    this.schedule()
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.lifetime.abort()
    this.unlisten?.()
    if (this.timer !== undefined) this.components.timers.clearTimeout(this.timer)
    this.timer = undefined
    this.waiting.clear()
    await this.components.network.unhandle()
    await Promise.allSettled([...this.running])
  }

  /** Resolves when no pull or publish is in flight (tests, benchmarks). */
  async idle (): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running])
  }

  /**
   * Run one anti-entropy round now: a heartbeat when there is news or a
   * liveness heartbeat is due, a pull from one random trusted peer,
   * compaction if due. While a pull is catching up, compaction waits for
   * the last such pull to end, and runs then: a node far behind would
   * otherwise snapshot its tree again and again while the history it
   * prunes is still arriving.
   */
  async round (): Promise<void> {
    const { network, random } = this.components
    await this.heartbeat()
    const peers = network.peers().filter(peer => this.pullable(peer))
    // a state check while this replica is catching up or recovering would find its heads unlike everyone's
    this.roundsSinceCheck++
    const every = this.options.stateCheckEvery
    const checkState = every > 0 && this.roundsSinceCheck >= every && this.catchingUp === 0 && peers.length > 0 && !this.components.replica.recovering
    if (peers.length > 0) this.pullFrom(peers[Math.floor(random() * peers.length)])
    if (checkState) {
      this.roundsSinceCheck = 0
      this.track(this.stateCheck.check().then(() => {}))
    }
    if (this.catchingUp > 0) {
      this.stats.compactionsDeferred++
      this.compactionDeferred = true
      return
    }
    await this.compact()
  }

  /** Retire the authors that left (one entry at most), then compact if due. */
  private async compact (): Promise<void> {
    try {
      await this.components.replica.retire()
    } catch (err: any) {
      this.log.warn({ err: err?.message }, 'namespace retirement failed')
    }
    try {
      await this.components.replica.compact()
    } catch (err: any) {
      this.log.warn({ err: err?.message }, 'namespace compaction failed')
    }
  }

  /**
   * Pull what `peer` has and we lack (deduplicated: one pull per peer at a
   * time, repeated once if asked again meanwhile). An untrusted peer is never
   * pulled from. `because`: the clock that made the pull worth asking (a
   * gossip message's); when {@link SyncOptions.maxPulls} are running, the
   * pull waits for one to end and is dropped then if the replica no longer
   * lacks anything of `because`. Without it (a round, a new connection) it
   * waits and runs in any case.
   */
  pullFrom (peer: string, because?: VectorClock): void {
    if (this.stopped || !this.pullable(peer)) return
    if (this.inflight.has(peer)) {
      this.inflight.set(peer, true)
      return
    }
    if (this.inflight.size >= this.options.maxPulls) {
      const had = this.waiting.get(peer)
      // waiting already: worth it if either reason is still lacking (no reason: in any case)
      if (!this.waiting.has(peer)) this.waiting.set(peer, because)
      else if (had !== undefined) this.waiting.set(peer, because === undefined ? undefined : merge(had, because))
      return
    }
    // asked for again while it waited: it runs now, once
    this.waiting.delete(peer)
    this.inflight.set(peer, false)
    this.track((async () => {
      try {
        do {
          this.inflight.set(peer, false)
          await this.pull(peer)
        } while (this.inflight.get(peer) === true && !this.stopped)
      } finally {
        this.inflight.delete(peer)
        this.startWaiting()
      }
    })())
  }

  /** Start the waiting pulls that still have a reason, while there is room. */
  private startWaiting (): void {
    const { replica } = this.components
    for (const [peer, because] of this.waiting) {
      if (this.stopped || this.inflight.size >= this.options.maxPulls) return
      this.waiting.delete(peer)
      if (because === undefined || replica.lacks(because)) this.pullFrom(peer, because)
    }
  }

  private schedule (): void {
    if (this.stopped) return
    const { interval } = this.options
    const delay = jittered(interval, 0.5, this.components.random)
    this.timer = this.components.timers.setTimeout(() => {
      this.track(this.round().finally(() => { this.schedule() }))
    }, delay)
  }

  private track (p: Promise<void>): void {
    const run = p.catch((err: any) => { this.log.debug({ err: err?.message }, 'namespace sync task failed') })
    this.running.add(run)
    void run.finally(() => this.running.delete(run))
  }

  /**
   * Publish the clock when it tells the swarm something new, else count the
   * round as skipped. New: this replica holds entries no gossip announced
   * (entries that arrived by gossip were announced by it; those applied from
   * a pull or a snapshot were not), or the node has heard no trusted gossip
   * since it started (alone, or trusting no one yet: it cannot know what the
   * others were told, and its heartbeat is how they learn of it), or the
   * liveness heartbeat is due.
   */
  private async heartbeat (): Promise<void> {
    if (this.stopped) return
    this.quietRounds++
    if (this.heard && this.quietRounds < this.heartbeatRounds && dominates(this.announced, this.components.replica.clockNow())) {
      this.stats.heartbeatsSkipped++
      return
    }
    this.stats.heartbeats++
    await this.publish([])
  }

  private async publish (entries: Uint8Array[]): Promise<void> {
    if (this.stopped) return
    const carried: Uint8Array[] = []
    let bytes = 0
    for (const e of entries) {
      if (bytes + e.byteLength > this.options.gossipBytes || carried.length >= MAX_BATCH_ENTRIES) break
      carried.push(e)
      bytes += e.byteLength
    }
    this.stats.published++
    this.quietRounds = 0
    const push = carried.length > 0 && carried.length === entries.length ? pushClock(carried) : undefined
    if (push !== undefined) {
      // a push: the receivers' own checks of the entries tell them what they lack (see pushClock)
      raise(this.announced, push)
      await this.components.network.publish(encodeHeadsMessage({ v: 1, type: 'heads', clock: push, heads: [], entries: carried }))
      return
    }
    const { replica } = this.components
    const { clock, heads } = replica.state()
    raise(this.announced, clock)
    await this.components.network.publish(encodeHeadsMessage({ v: 1, type: 'heads', clock: replica.wireClock(clock), heads: heads.slice(0, MAX_HEADS), entries: carried }))
  }

  private onMessage (from: string, data: Uint8Array, via?: string): void {
    if (this.stopped) return
    if (!this.trust.trusts(from)) {
      this.stats.untrusted++
      this.untrustedGossip.observe(from, data)
      return
    }
    if (this.scores.shunned(from)) {
      this.stats.shunned++
      return
    }
    let message
    try {
      message = decodeHeadsMessage(data)
    } catch (err: any) {
      this.stats.invalidMessages++
      this.log.warn({ from, err: err?.message }, 'invalid namespace gossip')
      this.penalize(from, 'invalidMessage')
      return
    }
    this.stats.messages++
    const { replica } = this.components
    this.refusals.heard(from, message.clock[replica.id])
    const clock = replica.readClock(message.clock)
    replica.noteMember(from, clock, message.clock)
    this.heard = true
    raise(this.announced, clock)
    this.track((async () => {
      if (message.entries.length > 0 && (await replica.receive(message.entries, from)).rejected > 0) this.penalize(from, 'rejectedEntries')
      if (replica.lacks(clock)) this.pullFrom(this.pullSource(from, via), clock)
    })())
  }

  /**
   * Tell `peer`, a writer this node does not trust, that its writes are not
   * applied here (a writer notice): only while it is connected (no dial for
   * it), with the request timeout; a failure (a node that does not speak
   * the protocol) is counted.
   */
  private notify (peer: string, applied: number): void {
    const { network } = this.components
    if (this.stopped || network.notify === undefined || !network.peers().includes(peer)) return
    const signal = AbortSignal.any([AbortSignal.timeout(this.options.requestTimeout), this.lifetime.signal])
    this.track(network.notify(peer, encodeWriterNotice({ v: 1, type: 'refused', applied }), signal).then(
      () => { this.noticeStats.sent++ },
      (err: any) => {
        this.noticeStats.failed++
        this.log.debug({ peer, err: err?.message ?? String(err) }, 'writer notice not sent')
      }
    ))
  }

  /** Whether `peer` may be pulled from or asked for tree nodes: trusted and not shunned for bad input. */
  private pullable (peer: string): boolean {
    return this.trust.trusts(peer) && !this.scores.shunned(peer)
  }

  /** Count `offence` against `peer`; say so once when this shuns it. */
  private penalize (peer: string, offence: Offence): void {
    if (!this.scores.penalize(peer, offence)) return
    this.log.warn({ peer, offence, score: this.scores.score(peer) }, 'namespace peer shunned for bad input: its gossip is dropped and it is not pulled from until its score decays')
  }

  /**
   * Whom to pull from after gossip by `from` said it has what we lack: the
   * author when it is a peer now (it has all it announced), else the peer
   * that relayed the message, when trusted. In a swarm of bounded
   * connections most authors are several hops away: a request to one is a
   * new dial (a DHT lookup first, at worst), and one that fails waits the
   * whole request timeout. The relay is connected, received the same
   * message and pulls what it lacks itself; what it lacks too, the
   * anti-entropy rounds bring.
   */
  private pullSource (from: string, via: string | undefined): string {
    if (via === undefined || via === from || !this.trust.trusts(via)) return from
    return this.components.network.peers().includes(from) ? from : via
  }

  private async onRequest (from: string, data: Uint8Array): Promise<Uint8Array> {
    let request
    try {
      request = decodeSyncRequest(data)
    } catch (err: any) {
      this.stats.invalidMessages++
      this.log.warn({ from, err: err?.message }, 'invalid namespace sync request')
      this.penalize(from, 'invalidRequest')
      return errorResponse(0, err)
    }
    const { replica } = this.components
    // served to untrusted peers too (reads are not the writers' trust); the replica does not note them as members
    this.stats.served++
    // an untrusted peer's pull names its own writes: warned about (and told) as its gossip is
    if (request.type === 'pull' && !this.trust.trusts(from)) this.untrustedGossip.observeCounter(from, request.clock[from])
    if (request.type === 'blocks') {
      return encodeSyncResponse({ v: 1, type: 'blocks', id: request.id, blocks: await replica.blocks(request.cids, MAX_SYNC_MESSAGE_BYTES - 64 * 1024) })
    }
    if (request.type === 'state') return await this.answerState(request)
    const remote = replica.readClock(request.clock)
    replica.noteMember(from, remote, request.clock)
    // the page leaves room for the clock and heads of the answer
    const answer = await replica.pull(remote, request.limit, pageBytes(replica.wireClock(replica.clockNow(), remote)))
    const { clock, heads } = replica.state()
    if (answer.type === 'snapshot') return encodeSyncResponse({ v: 1, type: 'snapshot', id: request.id, root: answer.root, clock: replica.wireClock(answer.clock, remote) })
    // the requester always named: how far its own writes got is what a recovering node waits for
    const wire = replica.wireClock(clock, remote)
    wire[from] = clock[from] ?? 0
    return encodeSyncResponse({ v: 1, type: 'entries', id: request.id, clock: wire, heads: heads.slice(0, MAX_HEADS), entries: answer.entries, more: answer.more })
  }

  /**
   * A state check's question (state-check.ts): this replica's state tree
   * root when its heads are the asker's, else its own heads' digest. The
   * tree is computed only for an asker with the same heads.
   */
  private async answerState (request: StateRequest): Promise<Uint8Array> {
    const { replica } = this.components
    const heads = replica.headsDigest()
    if (!equals(heads, request.heads)) return encodeSyncResponse({ v: 1, type: 'unlike', id: request.id, heads })
    let mine
    try {
      mine = await replica.checkedState()
    } catch (err: any) {
      return errorResponse(request.id, err)
    }
    if (!equals(mine.digest.heads, request.heads)) return encodeSyncResponse({ v: 1, type: 'unlike', id: request.id, heads: mine.digest.heads })
    return encodeSyncResponse({ v: 1, type: 'state', id: request.id, heads: mine.digest.heads, root: mine.digest.root })
  }

  private async ask (peer: string, request: Parameters<typeof encodeSyncRequest>[0], cancel?: AbortSignal): Promise<SyncResponse> {
    // every request ends when sync stops: a pull from a peer that never answers held a daemon's stop for its timeout
    const signal = AbortSignal.any([AbortSignal.timeout(this.options.requestTimeout), this.lifetime.signal, ...(cancel === undefined ? [] : [cancel])])
    const answer = await this.components.network.request(peer, encodeSyncRequest(request), signal)
    let response: SyncResponse
    try {
      response = decodeSyncResponse(answer)
    } catch (err) {
      this.penalize(peer, 'invalidResponse')
      throw err
    }
    if (response.type === 'error') throw new Error(`peer ${peer} answered: ${response.message}`)
    if (response.id !== request.id) {
      this.penalize(peer, 'invalidResponse')
      throw new Error(`peer ${peer} answered request ${response.id}, not ${request.id}`)
    }
    if (response.type === 'entries' || response.type === 'snapshot') response.clock = this.components.replica.readClock(response.clock)
    return response
  }

  /** Blocks `cids` from `peer` (a prefix of them: the peer answers what it holds, within its size limit). */
  private async blocks (peer: string, cids: CID[], cancel?: AbortSignal): Promise<Uint8Array[]> {
    const r = await this.ask(peer, { v: 1, type: 'blocks', id: this.nextId++, cids }, cancel)
    if (r.type !== 'blocks') throw new Error(`peer ${peer} answered ${r.type} to a blocks request`)
    return r.blocks
  }

  /**
   * The fetch of a snapshot `server` served at `clock`: the tree walk's
   * requests spread over the server and other trusted peers connected now,
   * everything else from the server (snapshot-fetch.ts).
   */
  private snapshotFetch (server: string, clock: VectorClock): SnapshotFetch {
    const { network, replica, random } = this.components
    const helpers = chooseHelpers({
      server,
      peers: network.peers(),
      trusts: peer => this.pullable(peer),
      clockOf: peer => replica.memberClock(peer),
      clock,
      max: this.options.snapshotPeers - 1,
      random
    })
    return spreadFetch({
      server,
      helpers,
      ask: async (peer, cids) => await this.blocks(peer, cids),
      stats: this.stats,
      onHelperFailure: (peer, err: any) => { this.log.debug({ peer, err: err?.message ?? String(err) }, 'snapshot helper did not serve a request; asking the serving peer') }
    })
  }

  /**
   * Pull pages from `peer` until it has nothing more for us. The pull clock
   * names the peer's own counters (as last heard) for authors this replica
   * does not trust ({@link Replica.pullClock}), so the peer skips them.
   *
   * One page ahead: when a page says there is more, the next page is asked
   * for before this one is applied, with the pull clock raised by the dots
   * the page's entries claim (what the replica's clock will be once they
   * are applied). That answer is taken only if the replica's pull clock
   * then covers the clock it was asked with, so that no page ever starts
   * past an entry the replica lacks (the peer serves, per author, what
   * follows the counter it is given); otherwise (an entry of the page
   * rejected or held) it is dropped and the page asked again with the
   * clock the replica has.
   */
  private async pull (peer: string): Promise<void> {
    const { replica } = this.components
    this.stats.pulls++
    let theirs: VectorClock = replica.memberClock(peer) ?? {}
    let complete = false
    let catchingUp = false
    const markCatchingUp = (): void => {
      if (catchingUp) return
      catchingUp = true
      this.catchingUp++
    }
    let ahead: PageRequest | undefined
    try {
      for (let page = 0; page < this.options.maxPages && !this.stopped; page++) {
        let asked = ahead
        ahead = undefined
        if (asked !== undefined && !dominates(replica.pullClock(theirs), asked.clock)) {
          this.stats.pagesAskedAheadDropped++
          asked.cancel.abort()
          asked = undefined
        }
        asked ??= this.askPage(peer, replica.pullClock(theirs), theirs)
        const { clock, checked } = asked
        const response = await asked.response
        if (response.type === 'snapshot' || response.type === 'entries') theirs = merge(theirs, response.clock)
        if (response.type === 'snapshot') {
          this.stats.snapshots++
          markCatchingUp()
          const instead = await this.entriesInstead(peer, clock, response.clock)
          if (instead !== undefined) {
            // another peer still has the history this one says is pruned: take it from there (the round after tells whether the snapshot is still needed)
            this.stats.snapshotsDeclined++
            this.log.debug({ peer, instead }, 'namespace snapshot declined: another peer has entries to give')
            this.pullFrom(instead)
            break
          }
          this.declined.forget(peer)
          const merged = await replica.loadSnapshot(response.root, this.snapshotFetch(peer, response.clock), peer)
          // nothing this replica can take from it (counters it cannot prove, or none ahead): asking again would get the same snapshot
          if (!merged) { complete = true; break }
          continue
        }
        if (response.type !== 'entries') throw new Error(`peer ${peer} answered ${response.type} to a pull`)
        this.stats.pages++
        replica.noteMember(peer, response.clock)
        this.refusals.heard(peer, response.clock[replica.id])
        if (response.more) {
          markCatchingUp()
          const next = page + 1 < this.options.maxPages && !this.stopped ? raisedBy(replica.pullClock(theirs), response.entries) : undefined
          if (next !== undefined && !dominates(clock, next)) {
            ahead = this.askPage(peer, next, theirs)
            this.stats.pagesAskedAhead++
          }
        }
        // this page's checks ran as it arrived (when asked ahead); the next page's run while this one is applied and committed
        const prepared = await checked ?? await replica.prepare(response.entries, peer)
        const applying = replica.accept(prepared)
        if (ahead !== undefined) this.checkAhead(peer, ahead)
        if ((await applying).rejected > 0) this.penalize(peer, 'rejectedEntries')
        // no progress (entries rejected, held, or by untrusted authors already skipped): stop; the next round retries
        if (!response.more || dominates(clock, replica.pullClock(theirs))) { complete = true; break }
      }
      // the peer gave all it had for us: what it claimed of this node's own writes and did not send was not backed
      if (complete) replica.pulledFrom(peer)
    } catch (err: any) {
      this.stats.pullFailures++
      this.log.debug({ peer, err: err?.message ?? String(err) }, 'namespace pull failed')
      if (err instanceof InvalidSnapshotError) this.penalize(peer, 'invalidSnapshot')
    } finally {
      ahead?.cancel.abort()
      if (catchingUp) this.catchingUp--
      if (catchingUp && this.catchingUp === 0 && this.compactionDeferred && !this.stopped) {
        this.compactionDeferred = false
        this.track(this.compact())
      }
    }
  }

  /**
   * Another trusted peer that still has entries for a replica `server`
   * answered with a snapshot at `snapshotClock`, asked at the pull clock
   * `clock`; undefined when the snapshot is to be taken: this replica pruned
   * nothing of its own (nothing a snapshot could leave out unseen), no other
   * peer has entries to give, or the same server's snapshot was declined at
   * this clock already (pruned-claim.ts).
   */
  private async entriesInstead (server: string, clock: VectorClock, snapshotClock: VectorClock): Promise<string | undefined> {
    const { replica, network, random } = this.components
    if (this.options.prunedChecks === 0 || !replica.hasPruned() || !this.declined.mayDecline(server, clock)) return undefined
    const instead = await entriesElsewhere({
      peers: () => network.peers().filter(peer => this.pullable(peer)),
      clockOf: peer => replica.memberClock(peer),
      hasEntries: async (peer) => {
        const theirs = replica.memberClock(peer) ?? {}
        // one entry, given up when sync stops
        const r = await this.askPage(peer, replica.pullClock(theirs), theirs, { limit: 1, signal: this.lifetime.signal }).response
        return r.type === 'entries' && r.entries.length > 0
      },
      random
    }, { server, clock: snapshotClock, max: this.options.prunedChecks })
    if (instead !== undefined) this.declined.declined(server, clock)
    return instead
  }

  /**
   * Ask `peer` for the page after `clock`; the answer is awaited (or the
   * request cancelled) later. The clock goes in wire form, leaving out the
   * retired authors whose retirement `theirs` (what the peer is known to
   * hold) covers. At most `limit` entries (a page unless told); `signal`
   * cancels it too.
   */
  private askPage (peer: string, clock: VectorClock, theirs: VectorClock, options: { limit?: number, signal?: AbortSignal } = {}): PageRequest {
    const cancel = new AbortController()
    const wire = this.components.replica.wireClock(clock, theirs)
    const signal = options.signal === undefined ? cancel.signal : AbortSignal.any([cancel.signal, options.signal])
    const response = this.ask(peer, { v: 1, type: 'pull', id: this.nextId++, clock: wire, limit: options.limit ?? this.options.pageSize }, signal)
    // a page asked ahead may fail before it is awaited, or never be awaited (dropped, or the pull ended): no unhandled rejection
    void response.catch(() => {})
    return { clock, response, cancel }
  }

  /**
   * Check the entries of a page asked ahead as soon as it arrives, while the
   * page before is applied and committed (its fsync leaves the main thread
   * idle): the checks change nothing (Replica.prepare), so a page that is
   * then dropped costs only the work. A failed check is redone when the
   * page is taken.
   */
  private checkAhead (peer: string, request: PageRequest): void {
    request.checked = request.response.then(
      async r => r.type === 'entries' ? await this.components.replica.prepare(r.entries, peer) : undefined,
      () => undefined
    ).catch(() => undefined)
  }
}

/** A page asked for: the clock it was asked with, its answer, how to cancel it, and its entries' checks once started. */
interface PageRequest {
  clock: VectorClock
  response: Promise<SyncResponse>
  cancel: AbortController
  checked?: Promise<PreparedEntries | undefined>
}

/**
 * `clock` raised by the dots the encoded `entries` claim (read off their
 * bytes, unchecked: it only chooses what to ask for next, see
 * {@link NamespaceSync} `pull`); undefined when an entry's dot cannot be
 * read.
 */
function raisedBy (clock: VectorClock, entries: Uint8Array[]): VectorClock | undefined {
  const out = { ...clock }
  for (const bytes of entries) {
    const dot = claimedDot(bytes)
    if (dot === undefined) return undefined
    const [author, seq] = dot
    if ((out[author] ?? 0) < seq) out[author] = seq
  }
  return out
}

/**
 * The clock a push (the gossip of local entries, all carried) names: the
 * dots of its entries only, not the writer's whole clock, so a push costs
 * O(its entries) to send, decode and note whatever the number of authors.
 * Nothing a receiver needs is lost: a local entry's parents are the
 * writer's heads, so its causal past is what the writer held when it wrote
 * it, and a receiver missing part of that holds the entry back (its counter
 * stays below the pushed dot) and pulls from the sender. The writer's
 * whole clock still travels in heartbeats, pull requests and pull answers
 * (what members have seen, causal stability). Older receivers decode the
 * same message shape (a clock with fewer authors). Undefined when an
 * entry's dot cannot be read off its bytes (the whole clock is sent).
 */
export function pushClock (entries: Uint8Array[]): VectorClock | undefined {
  return raisedBy({}, entries)
}

/** An error answer to request `id`: the error's message, cut to 500 characters. */
function errorResponse (id: number, err: any): Uint8Array {
  return encodeSyncResponse({ v: 1, type: 'error', id, message: Array.from(String(err?.message ?? err)).slice(0, 500).join('') })
}

/** Bytes of a page of entries by default (sync answers hold at most {@link MAX_SYNC_MESSAGE_BYTES}). */
const PAGE_BYTES = 3 * 1024 * 1024

/**
 * The bytes of entries a page may carry beside an answer's clock (`wire`,
 * ~10 bytes an author besides its id) and heads (at most {@link MAX_HEADS},
 * ~40 bytes each), within {@link MAX_SYNC_MESSAGE_BYTES}: a clock naming
 * many authors makes the page smaller, never the answer too large.
 */
function pageBytes (wire: VectorClock): number {
  let clockBytes = 0
  for (const author in wire) clockBytes += author.length + 10
  return Math.max(64 * 1024, Math.min(PAGE_BYTES, MAX_SYNC_MESSAGE_BYTES - 64 * 1024 - MAX_HEADS * 40 - clockBytes))
}

/** Raise `into` pointwise to at least `clock` (an in-place {@link merge}: gossip is frequent). */
function raise (into: VectorClock, clock: VectorClock): void {
  for (const [author, n] of Object.entries(clock)) {
    if ((into[author] ?? 0) < n) into[author] = n
  }
}
