/**
 * Where the requests of one snapshot load go: the tree's nodes are fetched
 * from several peers, not only from the one that served the snapshot.
 *
 * Why: a million paths are ~1,300 tree nodes; when many nodes join at once,
 * each asking the one peer that answered its pull for every node makes that
 * peer the bottleneck. Other peers often hold the same nodes: the tree is a
 * function of the state, so a peer at the same state holds the same tree, a
 * node that loaded a snapshot serves its tree in turn, and trees of nearby
 * states share every subtree where they agree. Any peer's answer is as good
 * as another's: the loader checks every node against its CID.
 *
 * How ({@link spreadFetch}): the tree walk numbers its requests
 * (snapshot-tree.ts {@link FetchHint}); request n goes to entry
 * n mod k of [server, ...helpers still asked]. The **server**, the peer that
 * served the snapshot, certainly holds every node, so it gets what must not
 * fail: requests without a hint (the root, the tips, re-fetches), retries
 * (`attempt > 0`: nodes an earlier answer did not bring), and any request a
 * helper did not serve. A helper that does not serve a request (an error or
 * timeout, bytes that do not match the CIDs asked for, or an answer with
 * none of them: it holds another tree) is asked nothing more in this load,
 * and the request goes to the server at once. So a bad or unsuited helper
 * costs one request, never the load. A helper that answers a prefix stays
 * (the walker asks again for the rest). Helpers' bytes are checked here as
 * well, because the walker refuses the whole snapshot on a node that does
 * not verify.
 *
 * Helpers ({@link chooseHelpers}): connected peers the node pulls from
 * (trusted), at most `max`, those last heard at the snapshot's clock first
 * (likely the same tree), then those ahead of it (likely an overlapping
 * one), then the rest, in random order within each rank.
 *
 * @module
 */
import { dominates, type VectorClock } from './clock.js'
import { matchesCID } from '../blocks/verify.js'
import type { SnapshotFetch } from './snapshot-load.js'
import type { CID } from 'multiformats/cid'

/** Counters of the helpers of snapshot loads. */
export interface SnapshotFetchStats {
  /** Tree requests sent to peers other than the one that served the snapshot. */
  snapshotHelperRequests: number
  /** Of those, the ones the helper did not serve (error, timeout, wrong bytes, none of the nodes): sent to the server instead. */
  snapshotHelperFailures: number
}

/** What {@link chooseHelpers} picks from. */
export interface HelperChoice {
  /** The peer that served the snapshot (never a helper). */
  server: string
  /** Peers connected now. */
  peers: string[]
  /** Whether a peer may be asked (the peers this node pulls from). */
  trusts: (peer: string) => boolean
  /** The clock last heard from a peer, if any. */
  clockOf: (peer: string) => VectorClock | undefined
  /** The snapshot's clock. */
  clock: VectorClock
  /** Most helpers. */
  max: number
  /** Uniform in [0, 1). */
  random: () => number
}

/**
 * Up to `max` trusted peers other than the server, best first: last heard
 * at the snapshot's clock, then ahead of it, then the others (behind,
 * concurrent or never heard), shuffled within each rank.
 */
export function chooseHelpers (choice: HelperChoice): string[] {
  const { server, clock, clockOf, random } = choice
  const rank = (peer: string): number => {
    const heard = clockOf(peer)
    if (heard === undefined || !dominates(heard, clock)) return 2
    return dominates(clock, heard) ? 0 : 1
  }
  const ranked = choice.peers
    .filter(peer => peer !== server && choice.trusts(peer))
    .map(peer => ({ peer, rank: rank(peer), key: random() }))
  ranked.sort((a, b) => a.rank - b.rank || a.key - b.key)
  return ranked.slice(0, Math.max(0, choice.max)).map(h => h.peer)
}

/** What {@link spreadFetch} sends requests with. */
export interface SpreadFetchInit {
  /** The peer that served the snapshot: holds every node. */
  server: string
  /** Other peers to spread tree requests over ({@link chooseHelpers}). */
  helpers: string[]
  /** Ask one peer for blocks; rejects on a network error, a timeout or an error answer. */
  ask: (peer: string, cids: CID[]) => Promise<Array<Uint8Array | undefined>>
  /** Counted into. */
  stats?: SnapshotFetchStats
  /** Told of each helper that failed (logging). */
  onHelperFailure?: (peer: string, err: unknown) => void
}

/**
 * A {@link SnapshotFetch} that routes the tree walk's requests over the
 * server and the helpers by `hint.request`, and everything else (no hint, a
 * retry, a request a helper did not serve) to the server. The server's
 * failures reject, as a load from it alone would.
 */
export function spreadFetch (init: SpreadFetchInit): SnapshotFetch {
  const { server, ask, stats } = init
  const helpers = [...init.helpers]
  return async (cids, hint) => {
    if (hint === undefined || hint.attempt > 0 || helpers.length === 0) return await ask(server, cids)
    const slot = hint.request % (helpers.length + 1)
    if (slot === 0) return await ask(server, cids)
    const helper = helpers[slot - 1]
    if (stats !== undefined) stats.snapshotHelperRequests++
    let failure: unknown
    try {
      const got = (await ask(helper, cids)).slice(0, cids.length)
      failure = unserved(cids, got)
      if (failure === undefined) return got
    } catch (err) {
      failure = err
    }
    const at = helpers.indexOf(helper)
    if (at >= 0) helpers.splice(at, 1)
    if (stats !== undefined) stats.snapshotHelperFailures++
    init.onHelperFailure?.(helper, failure)
    return await ask(server, cids)
  }
}

/** Why a helper's answer does not serve the request (undefined when it does): a node's bytes do not match its CID, or none came. */
function unserved (cids: CID[], got: Array<Uint8Array | undefined>): string | undefined {
  if (got.some((bytes, i) => bytes !== undefined && !matchesCID(cids[i], bytes))) return 'bytes that do not match the CIDs asked for'
  if (!got.some(bytes => bytes !== undefined)) return 'none of the nodes asked for'
  return undefined
}
