/**
 * State checks: anti-entropy between replicas that look converged
 * (docs/namespace.md, "State checks").
 *
 * Why: sync compares vector clocks, so two replicas with equal clocks never
 * exchange anything again, even when one of them lost or damaged rows of
 * its state (a disk, a crash inside LevelDB, a bug). Every so many rounds a
 * replica asks trusted peers whether their heads are its own; one whose
 * heads are equal answers with the root of its current state's snapshot
 * tree (state-tree.ts). Equal roots: nothing to do, in one round trip.
 * Different roots: {@link diffTrees} walks both trees where they differ,
 * O(changes × height) nodes fetched from the peer, and names the paths.
 *
 * What follows a divergence:
 * - a second comparable peer whose state equals this one's: the first peer
 *   is the odd one (its own checks will find it);
 * - a second peer that differs from this replica in the same way as the
 *   first: this replica is the odd one, and the paths on which both agree
 *   are repaired (state-repair.ts: never removing a version whose signed
 *   entry is held here);
 * - no second comparable peer (a swarm of two), or two that disagree: the
 *   divergence is reported (log, metrics) and nothing is changed.
 *
 * Versions in a tree are in the order a replica applied them, so two honest
 * replicas may hold one path's concurrent versions in different orders and
 * their roots differ: such paths are no divergence (compared as sets).
 *
 * Bad input: a peer's tree node that does not verify (hash, format, level)
 * ends the check with nothing changed and is scored as a bad snapshot.
 *
 * @module
 */
import { equals } from 'multiformats/bytes'
import type { StateRequest, SyncResponse, headsDigest } from '../../protocol/namespace.js'
import { diffTrees, InvalidTreeNodeError, type GetNode, type Versions } from './snapshot-tree.js'
import type { PathRepair, RepairResult } from './state-repair.js'
import { sameVersionSet } from './snapshot-state.js'
import type { ScrubResult } from './state-scrub.js'
import type { StateDigest } from './state-tree.js'
import type { Offence } from './peer-scores.js'
import type { Logger } from '../logger.js'
import type { CID } from 'multiformats/cid'

/** This replica's state for a check: its digest and a reader of its tree's nodes. */
export interface CheckedState {
  digest: StateDigest
  node: GetNode
}

/** What a {@link StateCheck} is built from. */
export interface StateCheckComponents {
  /** {@link headsDigest} of this replica's heads now (cheap: no tree). */
  heads: () => Uint8Array
  /** This replica's current state (Replica.checkedState), built only once a peer's heads are its own. @throws {StateTooLargeError} */
  state: () => Promise<CheckedState>
  /** Check this replica's rows against its own latest snapshot, marking the paths where they differ (Replica.scrubRows, state-scrub.ts). */
  scrub: () => Promise<ScrubResult>
  /** Give paths the versions two peers agree on (Replica.repairState); undefined when the heads moved. */
  repair: (repairs: PathRepair[], heads: Uint8Array) => Promise<RepairResult | undefined>
  /** Trusted peers that may be asked now. */
  peers: () => string[]
  /** Send `request` to `peer`; the decoded answer (an error answer throws; so does `signal` once aborted). */
  ask: (peer: string, request: StateRequest, signal: AbortSignal) => Promise<SyncResponse>
  /** Tree nodes from `peer` (a prefix of `cids`). */
  blocks: (peer: string, cids: CID[], signal: AbortSignal) => Promise<Uint8Array[]>
  /** Aborted when sync stops: a check then ends at once, changing nothing. */
  signal: () => AbortSignal
  /** A new request id. */
  nextId: () => number
  /** Uniform in [0, 1). */
  random: () => number
  penalize: (peer: string, offence: Offence) => void
  logger: Logger
}

/** Options of {@link StateCheck}. */
export interface StateCheckOptions {
  /** Most peers asked in one check. @default 4 */
  maxPeers?: number
  /** Most differing paths one diff collects; past it the check repairs what it found and the next check goes on. @default 10000 */
  maxPaths?: number
  /**
   * Checks between two passes over this replica's rows against its own
   * snapshot (state-scrub.ts: O(paths)); the first check runs one. 0: never.
   * @default 60 (about an hour at the default round interval)
   */
  scrubEvery?: number
}

/** How a check ended. */
export type StateCheckOutcome =
  /** A peer with this replica's heads holds its state. */
  | 'agreed'
  /** No peer asked had this replica's heads (a busy swarm: normal). */
  | 'incomparable'
  /** A peer differs and no second one confirmed either side: reported, nothing changed. */
  | 'diverged'
  /** Two peers agreed against this replica: the paths they agree on were repaired. */
  | 'repaired'
  /** This replica's state could not be compared now (too far from its snapshot, heads moved, a peer failed). */
  | 'skipped'

/** Counters of state checks. */
export interface StateCheckStats {
  stateChecks: number
  stateChecksAgreed: number
  stateChecksIncomparable: number
  stateChecksDiverged: number
  stateChecksRepaired: number
  stateChecksSkipped: number
  /** Paths repaired in all. */
  statePathsRepaired: number
  /** Paths that differed from a peer in the latest check that compared (0 when it agreed). */
  divergentPaths: number
  /** Passes over this replica's rows against its own snapshot. */
  rowScrubs: number
  /** Paths those passes found different from the snapshot without a write saying so (marked for the check). */
  strayPaths: number
}

/** One peer's differences from this replica: path → the peer's versions (undefined: it lacks the path). */
type Differences = Map<string, Versions | undefined>

/** Anti-entropy by state tree: see the module comment. */
export class StateCheck {
  readonly stats: StateCheckStats = {
    stateChecks: 0, stateChecksAgreed: 0, stateChecksIncomparable: 0, stateChecksDiverged: 0, stateChecksRepaired: 0, stateChecksSkipped: 0, statePathsRepaired: 0, divergentPaths: 0, rowScrubs: 0, strayPaths: 0
  }

  private readonly maxPeers: number
  private readonly maxPaths: number
  private readonly scrubEvery: number
  /** Checks until the next pass over the rows (the first check runs one). */
  private untilScrub = 0
  private running: Promise<StateCheckOutcome> | undefined

  constructor (private readonly components: StateCheckComponents, options: StateCheckOptions = {}) {
    this.maxPeers = Math.max(1, options.maxPeers ?? 4)
    this.maxPaths = Math.max(1, options.maxPaths ?? 10_000)
    this.scrubEvery = Math.max(0, options.scrubEvery ?? 60)
  }

  /** Run one check (one at a time: a call while one runs gets its outcome). */
  async check (): Promise<StateCheckOutcome> {
    this.running ??= this.run().finally(() => { this.running = undefined })
    return await this.running
  }

  private async run (): Promise<StateCheckOutcome> {
    this.stats.stateChecks++
    if (this.scrubEvery > 0 && this.untilScrub-- <= 0) {
      this.untilScrub = this.scrubEvery - 1
      await this.scrub()
    }
    const outcome = await this.compare().catch((err: any) => {
      this.components.logger.debug({ err: err?.message ?? String(err) }, 'namespace state check skipped')
      return 'skipped' as const
    })
    switch (outcome) {
      case 'agreed': this.stats.stateChecksAgreed++; break
      case 'incomparable': this.stats.stateChecksIncomparable++; break
      case 'diverged': this.stats.stateChecksDiverged++; break
      case 'repaired': this.stats.stateChecksRepaired++; break
      case 'skipped': this.stats.stateChecksSkipped++; break
    }
    return outcome
  }

  /** One pass over the rows against the snapshot; a failure is logged and the check goes on. */
  private async scrub (): Promise<void> {
    try {
      const { marked } = await this.components.scrub()
      this.stats.rowScrubs++
      this.stats.strayPaths += marked
      if (marked > 0) this.components.logger.warn({ paths: marked }, 'namespace rows differ from this node\'s own snapshot where no write changed them: marked for the state check to compare with peers')
    } catch (err: any) {
      this.components.logger.warn({ err: err?.message ?? String(err) }, 'namespace rows could not be checked against the snapshot now')
    }
  }

  private async compare (): Promise<StateCheckOutcome> {
    const { components } = this
    // the tree is built only once a peer has these heads: in a busy swarm most answers are unlike
    const heads = components.heads()
    const signal = components.signal()
    let mine: CheckedState | undefined
    const peers = shuffled(components.peers(), components.random).slice(0, this.maxPeers)
    const found: Array<{ peer: string, differences: Differences }> = []
    for (const peer of peers) {
      if (signal.aborted) return 'skipped'
      let answer: SyncResponse
      try {
        answer = await components.ask(peer, { v: 1, type: 'state', id: components.nextId(), heads }, signal)
      } catch (err: any) {
        components.logger.debug({ peer, err: err?.message ?? String(err) }, 'namespace state check: peer did not answer')
        continue
      }
      if (answer.type === 'unlike') continue
      if (answer.type !== 'state' || !equals(answer.heads, heads)) {
        components.penalize(peer, 'invalidResponse')
        continue
      }
      mine ??= await components.state()
      if (!equals(mine.digest.heads, heads)) return 'skipped'
      const differences = await this.differences(mine, peer, answer.root, signal)
      if (differences === undefined) return 'skipped'
      if (differences.size === 0) {
        this.stats.divergentPaths = 0
        if (found.length > 0) components.logger.warn({ peer: found[0].peer, paths: found[0].differences.size }, 'namespace state check: a peer\'s state differs from this node\'s and another\'s with the same heads; that peer will find it in its own checks')
        return 'agreed'
      }
      found.push({ peer, differences })
      if (found.length === 2) break
    }
    if (found.length === 0 || mine === undefined) return 'incomparable'
    this.stats.divergentPaths = found[0].differences.size
    const sample = [...found[0].differences.keys()].slice(0, 10)
    if (found.length === 1) {
      components.logger.warn({ peer: found[0].peer, paths: found[0].differences.size, sample }, 'namespace state differs from a peer with the same heads; no second peer to say which is right: nothing changed')
      return 'diverged'
    }
    const [first, second] = found
    const repairs: PathRepair[] = []
    for (const [path, versions] of first.differences) {
      if (!second.differences.has(path)) continue
      if (!sameVersionSet(versions, second.differences.get(path))) continue
      repairs.push(versions === undefined ? { path } : { path, versions })
    }
    if (repairs.length === 0) {
      components.logger.warn({ peers: [first.peer, second.peer], sample }, 'namespace state differs from two peers with the same heads, and they disagree with each other: nothing changed')
      return 'diverged'
    }
    if (signal.aborted) return 'skipped'
    const result = await components.repair(repairs, mine.digest.heads)
    if (result === undefined) return 'skipped'
    if (result.paths === 0) {
      components.logger.warn({ peers: [first.peer, second.peer], kept: result.kept, sample }, 'namespace state differs from two peers with the same heads, but only by versions whose signed entries this node holds: kept, nothing changed')
      return 'diverged'
    }
    this.stats.statePathsRepaired += result.paths
    components.logger.warn({ peers: [first.peer, second.peer], repaired: result.paths, added: result.added, removed: result.removed, kept: result.kept, sample: repairs.slice(0, 10).map(r => r.path) },
      'namespace state repaired: two peers with the same heads agreed against this node\'s rows')
    return 'repaired'
  }

  /**
   * The paths whose versions (as sets) differ between this replica's tree
   * and `peer`'s at `root`, at most `maxPaths`; undefined when the peer's
   * tree does not verify (scored) or cannot be fetched.
   */
  private async differences (mine: CheckedState, peer: string, root: CID, signal: AbortSignal): Promise<Differences | undefined> {
    const { components } = this
    const theirs: GetNode = async (cid) => (await components.blocks(peer, [cid], signal))[0]
    const out: Differences = new Map()
    try {
      for await (const d of diffTrees(mine.digest.root, root, mine.node, theirs)) {
        if (d.a !== undefined && d.b !== undefined && sameVersionSet(d.a, d.b)) continue
        out.set(d.path, d.b)
        if (out.size >= this.maxPaths) break
      }
    } catch (err: any) {
      if (err instanceof InvalidTreeNodeError && err.name !== 'MissingTreeNodeError') components.penalize(peer, 'invalidSnapshot')
      components.logger.debug({ peer, err: err?.message ?? String(err) }, 'namespace state check: the peer\'s tree could not be compared')
      return undefined
    }
    return out
  }
}

/** A shuffled copy (Fisher–Yates with `random`). */
function shuffled<T> (items: readonly T[], random: () => number): T[] {
  const out = items.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = out[i]
    out[i] = out[j]
    out[j] = t
  }
  return out
}
