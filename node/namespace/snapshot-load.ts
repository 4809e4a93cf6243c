/**
 * Merging a peer's snapshot into this replica (docs/namespace.md,
 * "Bootstrap from a snapshot"), streamed so that memory does not grow with
 * the namespace: a fresh node loads a million paths in a few hundred MiB.
 *
 * 1. **Check the root**: its hash, its signature, its author (the peer that
 *    serves it, and one this replica trusts), and which of its clock's
 *    counters are proven (snapshot-proof.ts).
 * 2. **Stage** (outside the replica's lock): walk the peer's tree
 *    (snapshot-tree.ts checks every node against its CID, its parent and
 *    the chunking rule), store its nodes as blocks (`b!`) and each path's
 *    versions as a staged row (`x!<load>!`), in bounded batches. A tree that
 *    fails its checks leaves nothing behind.
 *
 *    A replica with a snapshot of its own (one that was here before, or
 *    has loaded one) walks only where the two trees differ: a subtree of
 *    the peer's tree that its own snapshot holds (same CID) is checked
 *    where it hangs but neither fetched nor staged. The merge then looks
 *    only at the staged paths, the paths of its own tree outside the shared
 *    subtrees, and the paths changed here since its snapshot (`d!`): a
 *    node that comes back after a while fetches and merges O(changes ×
 *    tree height), not the namespace.
 *
 *    A replica that holds nothing yet (a new node) skips the staging: under
 *    the lock, the walk writes each path straight into the tree; a failure,
 *    or a crash (at the next open), empties it again.
 * 3. **Merge** (under the lock): a marker (`m!merge`) is written, then
 *    every staged path is merged with this replica's versions of it
 *    (snapshot-state.ts `mergeVersions`), then every path only this replica
 *    holds, in bounded batches; this replica's snapshot becomes the peer's
 *    tree with only the paths whose merged versions differ rewritten
 *    (`updateTree`); and one final batch adopts the clock, the heads, the
 *    pruned frontier and the new snapshot, and drops the marker.
 *
 * Crash safety: the merge of a path is idempotent while the clock is not
 * yet adopted (a version both sides hold stays; a version the other side
 * saw and dropped stays dropped), so a crash in step 3 is finished at the
 * next open from the staged rows ({@link SnapshotLoader.resume}); a crash
 * in step 2 leaves staging that the next open deletes. The versions a merge
 * keeps on this replica's word alone are recorded in its final batch and
 * published again afterwards, in a batch that deletes the record
 * (republish.ts): a crash in between leaves them to publish at the next
 * open. While step 3 runs,
 * readers may see some paths merged and others not yet; each path is
 * always one side's or the merged state, never a mix.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import {
  MAX_BLOCKS_WANT,
  decodeSnapshotRoot, encodeSnapshotRootBody,
  type SnapshotVersion
} from '../../protocol/namespace.js'
import { readSnapshotRoot, type SnapshotView } from './snapshot-authors.js'
import { cborCID } from '../blocks/verify.js'
import {
  InvalidTreeNodeError, TreeReader, fitsPlace, nodePlaces, updateTree, walkTree,
  type FetchHint, type FetchNodes, type GetNode, type KnownSubtrees, type TreeRoot
} from './snapshot-tree.js'
import { covers, dominates, merge, type Dot, type VectorClock } from './clock.js'
import { Txn, clearRange, decodeJSON, deleteKeys } from './kv.js'
import { BulkRows } from './bulk-rows.js'
import { SEQ_RANGE, STAGED_RANGE, blockKey, dotOfSeqKey, dotOfSupersededKey, entryKey, metaKey, pathOfStagedKey, seqKey, stagedKey, stagedRange, supersededKey } from './rows.js'
import type { ReplicaStore } from './store.js'
import { DIRTY_RANGE, TREE_PREFIXES, TreeWriter, type PathState, type Version } from './tree.js'
import { compareTreePaths } from './path-order.js'
import {
  InvalidSnapshotError, UntrustedSnapshotError, fromSnapshotVersion, mergeVersions, sameVersions, toSnapshotVersion,
  type SnapshotMeta, type WriteRootOptions
} from './snapshot-state.js'
import type { Verifier } from './identity.js'
import type { HeldVersion } from './republish.js'
import { retiredOfSnapshot, type SnapshotRetirements } from './retire.js'
import { provenClock, type ProvenClock, type ProvenTip } from './snapshot-proof.js'
import type { TrustPolicy } from './trust.js'
import type { Logger } from '../logger.js'
import { ShoalError } from '../errors.js'

/** Rows (or deletes) per batch of the staging and the merge. */
const CHUNK = 10_000

/**
 * Tree nodes per walk request (4 requests ahead): a request is fetched
 * whole before the walk moves on, so 4 × this many nodes are held. Leaves of
 * a large namespace are ~190 KiB: 4 nodes are a ~750 KiB answer, and ~3 MiB
 * are held ahead per level. Measured on a 1M-path first load (2 cores,
 * loopback, docs/benchmarks.md "Snapshot bootstrap"): 16 nodes a request
 * peaked at 304–316 MiB RSS, 8 at 268–280 MiB (later 279–300 as the
 * machine changed), 4 at 269–288 against 285–300 for 8 alternated in the
 * same hour, 2–3 % slower (four smaller requests in flight keep a link
 * nearly as busy as four larger ones, and their answers die sooner: fewer
 * are promoted to the old generation, where they wait for a full
 * collection).
 */
const WALK_BATCH = 4

/**
 * A first load's batches (bulk-rows.ts): at most this many rows (about two
 * per path), or this many bytes of tree nodes. Small, so that a batch's
 * values die young: a batch of 4,000 rows lived across two young-generation
 * collections and was promoted, ~1.4 KiB per path, which filled the old
 * generation to the daemon's 128 MiB between full collections; at 500 rows
 * ~0.25 KiB per path is promoted and a million paths cost ~25 % fewer CPU
 * seconds (docs/benchmarks.md, "Snapshot bootstrap"). The next batch fills
 * while one is written, so their number costs no waiting.
 */
const FRESH_BATCH = { rows: 500, rawBytes: 1024 * 1024 }

/** Most conflict copies {@link CopiesAhead} tracks; past it, a first load reads the store for every path instead. */
const MAX_COPIES_AHEAD = 10_000

/**
 * Where a first load wrote conflict copies that the walk has not reached:
 * the only paths at which a visible name may be stored before the walk
 * loads them (a path's own name, and its ancestors', are written only when
 * the walk reaches it or a path below it, which comes after it). Bounded:
 * past {@link MAX_COPIES_AHEAD} copies ahead, every path counts as maybe
 * seen (read from the store, as a merge does).
 */
class CopiesAhead {
  private readonly ahead = new Set<string>()
  private last = ''
  private overflow = false

  add (copy: string): void {
    if (this.overflow || !(this.last < copy)) return
    this.ahead.add(copy)
    if (this.ahead.size <= MAX_COPIES_AHEAD) return
    for (const path of this.ahead) if (!(this.last < path)) this.ahead.delete(path)
    this.overflow = this.ahead.size > MAX_COPIES_AHEAD
  }

  /** True when no visible name can be stored at `path`, the walk's next path. */
  unseen (path: string): boolean {
    this.last = path
    return !this.overflow && !this.ahead.delete(path)
  }
}

/**
 * Fetch snapshot blocks by CID from peers: the answer's item i is the bytes
 * of `cids[i]`; a peer may answer a prefix (the rest is asked again). The
 * tree walk's `hint` (snapshot-tree.ts {@link FetchHint}) numbers requests
 * and retries, so that a caller with several peers can spread them and move
 * a retry to another peer; it is absent for the root, the tips and re-fetches.
 */
export type SnapshotFetch = (cids: CID[], hint?: FetchHint) => Promise<Array<Uint8Array | undefined>>

/**
 * This replica's snapshot changed while a load was staged against it (a
 * compaction, another merge): the staging no longer says which paths
 * differ, and the load stages again.
 */
class StaleBaseError extends ShoalError {
  override name = 'StaleBaseError'
}

/** This replica's own snapshot, against which a load stages only what differs. */
interface Base {
  /** The snapshot's root block. */
  root: string
  /** Its tree's root. */
  tree: CID
  /** Every block of it (the tree's nodes and the root block). */
  blocks: Set<string>
}

/** A path a merge looks at besides the staged ones, and the peer's versions of it. */
interface Candidate { path: string, raw: Version[], ours?: Version[] }

/** What the loader asks of the snapshot writer (snapshots.ts). */
export interface SnapshotWriter {
  writeRoot: (txn: Txn, options: WriteRootOptions) => Promise<CID>
  clearDirty: () => Promise<void>
}

/** Fault injection for tests: points a crash cannot be made to hit for real. */
export interface SnapshotLoadFaults {
  /**
   * Awaited once a merge's final batch is on disk (the versions it kept
   * without proof recorded in it), before they are published again: a test
   * throws here, as a process killed at that point.
   */
  afterMergeSaved?: () => Promise<void> | void
}

/** What {@link SnapshotLoader} is built from. */
export interface SnapshotLoaderComponents {
  store: ReplicaStore
  verifier: Verifier
  trust: TrustPolicy
  logger: Logger
  members: {
    noteMember: (peer: string, clock: VectorClock) => void
  }
  /** Versions superseded before they arrived, by `r!` key (apply.ts). */
  superseded: () => Promise<Map<string, string[]>>
  /** Apply held entries that became ready (log.ts); called under the store's lock. */
  drain: () => Promise<number>
  /** A merged snapshot changed the tree. */
  changed: () => void
  /**
   * Versions a merge kept on this replica's word alone (republish.ts):
   * recorded in the merge's final batch, then published again as this
   * replica's own writes under the lock already held.
   */
  republish: {
    record: (txn: Txn, held: readonly HeldVersion[]) => Promise<void>
    publish: () => Promise<number>
  }
  writer: SnapshotWriter
  /** Fault injection for tests. */
  faults?: SnapshotLoadFaults
  /** The retired authors (retire.ts): a merge takes the snapshot's. */
  retirements?: SnapshotRetirements
}


/**
 * `m!merge`: a merge under way. Everything it needs is in the store: the
 * peer's root and tree nodes (`b!`), its paths (`x!`), its tips (`e!`).
 */
interface MergeMarker {
  /** The load whose staged rows are merged (`x!<load>!`); none for a first load, which stages nothing. */
  load?: number
  /** The peer's snapshot root. */
  root: string
  /** The counters of its clock this replica adopts (proven). */
  clock: VectorClock
  /** Tip entries fetched and verified: author, seq, cid. */
  tips: Array<[string, number, string]>
  /** The nodes of the peer's tree that were fetched: all of them, or, staged against {@link base}, those that tree lacks. */
  nodes: string[]
  /** This replica's snapshot root the load was staged against (its tree's subtrees that the peer's shares were not walked). */
  base?: string
  /** Against {@link base}: the roots of the subtrees both trees share. */
  shared?: string[]
}

/** The marker of a staged merge: the one kind written to the store (a first load stages nothing). */
type StagedMarker = MergeMarker & { load: number }

/** A merge's outcome, before its final batch ({@link SnapshotLoader.adopt}). */
interface Merged {
  marker: MergeMarker
  snap: SnapshotView
  /** Paths whose merged versions differ from the peer's tree. */
  changes: Map<string, Version[]>
  paths: number
  dropped: number
  /** Versions kept on this replica's word alone (published again). */
  held: Array<[string, Version]>
  /** Tip entries to store with the final batch, bytes and CID (a fresh load; a merge stored them with its marker). */
  tipBytes?: Array<[Uint8Array, string]>
  /** Versions superseded before they arrived, by `r!` key, as the merge read them. */
  superseded: Map<string, string[]>
  /** Every node of the peer's tree. */
  nodes: Set<string>
}

/** What {@link SnapshotLoader.loadFresh} is given. */
interface FreshLoad {
  root: CID
  snap: SnapshotView
  fetch: SnapshotFetch
  /** The proven clock. */
  clock: VectorClock
  tips: ProvenTip[]
}

/** The peer's tree nodes a load has taken (see {@link SnapshotLoader.capture}). */
interface Captured {
  /** Every node of the tree. */
  nodes: string[]
  /** Blocks this load added to the store (the tree's nodes, and the root when staged), to delete if it goes no further. */
  added: string[]
}

/** What staging a peer's tree left in the store. */
interface Staged extends Captured {
  /** The load's number: its rows are `x!<load>!<path>`. */
  load: number
  /** This replica's snapshot root the staging skipped shared subtrees against. */
  base?: string
  /** The roots of the subtrees skipped (against `base`). */
  shared: string[]
}

/** What {@link SnapshotLoader.stage} is given. */
interface StageInput {
  snap: SnapshotView
  root: CID
  rootBytes: Uint8Array
  /** The root's author blocks (v3), stored with it. */
  authorBlocks: Array<[CID, Uint8Array]>
  fetch: SnapshotFetch
  /** Walk only the subtrees this replica's own snapshot lacks (else the whole tree). */
  diff: boolean
}

/** Merges peers' snapshots: loads stage side by side, merges run one at a time under the lock. */
export class SnapshotLoader {
  /** Number of the next load (its staged rows' key prefix); merges themselves run one at a time, under the lock. */
  private nextLoad = 0

  constructor (private readonly components: SnapshotLoaderComponents) {}

  /**
   * Merge the snapshot at `root`, its blocks fetched with `fetch` (a peer
   * answers a prefix of what was asked: the rest is asked again). Returns
   * false when it brings nothing this replica has not applied.
   *
   * What is kept (the state-based merge of two observed-remove sets): a
   * version both sides hold stays; a version only one side holds stays
   * unless the other side's clock covers it (then the other side saw it and
   * removed it). So writes this replica made while away, and history it
   * pruned that the peer never saw, are kept; what the peer removed
   * knowingly goes — except a version whose signed entry this replica still
   * holds, which is published again as this replica's own write (a snapshot
   * alone cannot prove a removal).
   *
   * Trust: a snapshot by an author this replica does not trust is refused
   * before its tree is fetched. Versions in it by authors this replica does
   * not trust are dropped (unless it holds the same version itself), and so
   * are versions it saw superseded before they arrived; their authors'
   * counters are not adopted. Versions beyond the proven counters are not
   * taken: their entries come by pull, signed.
   *
   * @param author - the peer serving the snapshot: only its own snapshots are accepted
   * @throws {UntrustedSnapshotError} for a snapshot by an author this replica does not trust
   * @throws {InvalidSnapshotError} for a snapshot that fails its checks (nothing is changed)
   */
  async load (root: CID, fetch: SnapshotFetch, author?: string): Promise<boolean> {
    return await this.loadOne(root, fetch, author)
  }

  /**
   * At open: finish a merge a crash interrupted (its marker and staged rows
   * are in the store), empty again a replica whose first load a crash
   * interrupted, and delete what loads that never merged left staged.
   */
  async resume (): Promise<void> {
    const { store } = this.components
    await this.finishInterrupted()
    if (await store.meta<number>('fresh') !== undefined) {
      this.components.logger.warn('namespace dropping a first snapshot load that was interrupted: the replica starts empty again')
      await store.exclusive(async () => { await this.emptyAgain() })
    }
    if (await store.meta<number>('staging') === undefined) return
    // what loads staged and did not merge: every staged row, every block (`b!`) this replica's snapshot does not hold
    await store.exclusive(async () => {
      await clearRange(store.kv, STAGED_RANGE)
      await this.sweepBlocks()
      await store.kv.batch([{ type: 'del', key: metaKey('staging') }], true)
    })
  }

  /** Finish a merge whose marker is in the store (a crash, or a failure of the store, stopped it). */
  private async finishInterrupted (): Promise<void> {
    const { store } = this.components
    const marker = await store.meta<StagedMarker>('merge')
    if (marker === undefined) return
    const bytes = await store.kv.get(blockKey(marker.root))
    if (bytes === undefined) throw new InvalidSnapshotError(`${store.where}: the snapshot being merged (${marker.root}) is no longer stored`)
    // its author blocks were stored with it
    const { view: snap } = await readSnapshotRoot(decodeSnapshotRoot(bytes), async cids => await Promise.all(cids.map(async cid => await store.kv.get(blockKey(cid.toString())))))
    this.components.logger.warn({ root: marker.root }, 'namespace finishing a snapshot merge that was interrupted')
    await store.exclusive(async () => {
      // another load may have finished it meanwhile
      if (await store.meta<MergeMarker>('merge') !== undefined) await this.merge(marker, snap)
    })
    this.components.changed()
  }

  private async loadOne (root: CID, fetch: SnapshotFetch, author?: string): Promise<boolean> {
    const { store, trust } = this.components
    await this.finishInterrupted()
    const [rootBytes] = await fetch([root])
    if (rootBytes === undefined || !cborCID(rootBytes).equals(root)) throw new InvalidSnapshotError(`snapshot root ${root.toString()} missing or corrupt`)
    let signed
    try {
      signed = decodeSnapshotRoot(rootBytes)
    } catch (err: any) {
      throw new InvalidSnapshotError(`snapshot root: ${String(err?.message ?? err)}`)
    }
    if (author !== undefined && signed.author !== author) throw new InvalidSnapshotError(`snapshot by ${signed.author} served by ${author}`)
    if (!trust.trusts(signed.author)) throw new UntrustedSnapshotError(`snapshot ${root.toString()} by ${signed.author}, an author this node does not trust`)
    const { sig, ...body } = signed
    if (!await this.components.verifier(signed.author, encodeSnapshotRootBody(body), sig)) throw new InvalidSnapshotError(`snapshot root ${root.toString()} has a bad signature`)
    const { view: snap, blocks: authorBlocks } = await readSnapshotRoot(signed, fetch)
    const { clock, tips } = await provenClock(this.components, snap, fetch)
    if (dominates(store.clock, clock)) return false
    // a replica that holds nothing takes the peer's paths as they come, without staging them
    const fresh = await store.exclusive(async () => await this.empty() ? await this.loadFresh({ root, snap, fetch, clock, tips }) : undefined)
    if (fresh !== undefined) {
      this.components.changed()
      return fresh
    }
    // staged against this replica's own snapshot; should a compaction replace it meanwhile, once more, then the whole tree
    for (let attempt = 0; ; attempt++) {
      try {
        const merged = await this.stageAndMerge({ snap, root, rootBytes, authorBlocks, fetch, diff: attempt < 2 }, { clock, tips })
        if (merged) this.components.changed()
        return merged
      } catch (err) {
        if (!(err instanceof StaleBaseError)) throw err
        this.components.logger.debug({ root: root.toString(), attempt }, 'namespace snapshot staged against a snapshot that changed meanwhile: staging again')
      }
    }
  }

  /** Stage the peer's tree, then merge it under the lock. */
  private async stageAndMerge (input: StageInput, proven: ProvenClock): Promise<boolean> {
    const { store } = this.components
    const { clock, tips } = proven
    const staged = await this.stage(input)
    let merged = false
    try {
      merged = await store.exclusive(async () => {
        if (dominates(store.clock, clock)) return false
        if (staged.base !== undefined && (await store.meta<SnapshotMeta>('snapshot'))?.root !== staged.base) throw new StaleBaseError(`${store.where}: snapshot ${staged.base} replaced while a load was staged against it`)
        await this.ensureNodes(staged.nodes, input.fetch)
        const marker: StagedMarker = { load: staged.load, root: input.root.toString(), clock, tips: tips.map(t => [t.author, t.seq, t.cid.toString()]), nodes: staged.nodes }
        if (staged.base !== undefined) {
          marker.base = staged.base
          marker.shared = staged.shared
        }
        const txn = new Txn(store.kv)
        for (const tip of tips) txn.putBytes(entryKey(tip.cid.toString()), tip.bytes)
        txn.put(metaKey('merge'), marker)
        await txn.commit(true)
        await this.merge(marker, input.snap)
        return true
      })
    } finally {
      // a merge that did not start (or failed before its marker) leaves nothing behind
      if (!merged && await store.meta<MergeMarker>('merge') === undefined) await this.dropStaging(staged)
    }
    return merged
  }

  /**
   * Walk the peer's tree into the store: its nodes as blocks, its paths as
   * staged rows, in batches of {@link CHUNK}. With `diff`, and a snapshot
   * of this replica's own to diff against, subtrees both trees share are
   * checked where they hang but neither fetched nor staged, and of the paths
   * walked only those whose versions differ from that snapshot's are staged:
   * the merge takes the others as they are here.
   *
   * @throws {StaleBaseError} when this replica's snapshot changes under the walk
   */
  private async stage (input: StageInput): Promise<Staged> {
    const { snap, root, rootBytes, authorBlocks, fetch } = input
    const { kv } = this.components.store
    const base = input.diff ? await this.base() : undefined
    const staged: Staged = { load: this.nextLoad++, nodes: [], added: [], shared: [], base: base?.root }
    let txn = new Txn(kv)
    txn.put(metaKey('staging'), 1)
    const fetchNodes = this.capture(fetch, () => txn, staged)
    let known: KnownSubtrees | undefined
    let mine: TreeReader | undefined
    if (base !== undefined) {
      const get = this.baseGetter(base)
      mine = new TreeReader(base.tree, get)
      // where this replica's own nodes hang: a node the peer's tree holds at the same place is skipped unread
      const places = await nodePlaces(base.tree, get)
      known = {
        has: cid => base.blocks.has(cid.toString()),
        fits: (cid, place) => fitsPlace(places.get(cid.toString()), place),
        get,
        skipped: cid => { staged.shared.push(cid.toString()) }
      }
    }
    // the root and its author blocks too, for a merge finished at the next open (not nodes of the tree)
    for (const [cid, bytes] of [[root, rootBytes] as [CID, Uint8Array], ...authorBlocks]) {
      if (await kv.get(blockKey(cid.toString())) !== undefined) continue
      txn.putBytes(blockKey(cid.toString()), bytes)
      staged.added.push(cid.toString())
    }
    try {
      for await (const [path, versions] of this.walk(snap, fetchNodes, known)) {
        // a path of a leaf that changed, but not itself: the merge finds it the same in both trees
        if (mine !== undefined && sameVersions(versions, await mine.versions(path) ?? [])) continue
        txn.put(stagedKey(staged.load, path), versions.map(fromSnapshotVersion))
        if (txn.size >= CHUNK) {
          // a new batch before the full one is written: nodes still arriving (capture) go into the new one, not into one being written
          const full = txn
          txn = new Txn(kv)
          await full.commit(false)
        }
      }
      await txn.commit(true)
    } catch (err) {
      await this.dropStaging(staged)
      throw err
    }
    return staged
  }

  /** This replica's snapshot, when it has one with a tree. */
  private async base (): Promise<Base | undefined> {
    const meta = await this.components.store.meta<SnapshotMeta>('snapshot')
    if (meta?.tree === undefined) return undefined
    return { root: meta.root, tree: CID.parse(meta.tree), blocks: new Set(meta.blocks) }
  }

  /** Reads `base`'s nodes from the store, outside the lock: one gone means the snapshot changed. */
  private baseGetter (base: Base): GetNode {
    const { kv, where } = this.components.store
    return async cid => {
      const bytes = await kv.get(blockKey(cid.toString()))
      if (bytes === undefined) throw new StaleBaseError(`${where}: node ${cid.toString()} of snapshot ${base.root} no longer stored`)
      return bytes
    }
  }

  /**
   * Every path of the peer's tree (snapshot-tree.ts `walkTree`), counted
   * against its root's `count` — but those of the `known` subtrees, which
   * are counted and skipped.
   *
   * @throws {InvalidSnapshotError} for a node that does not verify, or a count that does not match
   */
  private async * walk (snap: SnapshotView, fetch: FetchNodes, known?: KnownSubtrees): AsyncGenerator<[string, SnapshotVersion[]]> {
    let paths = 0
    const counted: KnownSubtrees | undefined = known === undefined ? undefined : { ...known, skipped: (cid, count) => { paths += count; known.skipped(cid, count) } }
    try {
      for await (const item of walkTree(snap.tree, fetch, { concurrency: 4, batch: WALK_BATCH, known: counted })) {
        paths++
        yield item
      }
    } catch (err: any) {
      if (err instanceof InvalidTreeNodeError) throw new InvalidSnapshotError(err.message, { cause: err })
      throw err
    }
    if (paths !== snap.count) throw new InvalidSnapshotError(`snapshot holds ${paths} paths, its root says ${snap.count}`)
  }

  /**
   * `fetch` as the tree walk wants it, keeping each node whose bytes match
   * its CID: listed in `staged.nodes`, and written through the current
   * batch (`txn()`) when the store does not hold it yet (`staged.added`).
   */
  private capture (fetch: SnapshotFetch, txn: () => { putBytes: (key: string, value: Uint8Array) => void }, staged: Captured): FetchNodes {
    const { kv } = this.components.store
    const seen = new Set<string>()
    return async (cids, hint) => {
      const got = await fetch(cids, hint)
      for (const [i, bytes] of got.slice(0, cids.length).entries()) {
        const key = cids[i].toString()
        if (bytes === undefined || seen.has(key) || !cborCID(bytes).equals(cids[i])) continue
        seen.add(key)
        staged.nodes.push(key)
        if (await kv.get(blockKey(key)) !== undefined) continue
        txn().putBytes(blockKey(key), bytes)
        staged.added.push(key)
      }
      return got
    }
  }

  /** True when this replica holds nothing: no counter, no path. */
  private async empty (): Promise<boolean> {
    return Object.keys(this.components.store.clock).length === 0 && !await this.hasPaths()
  }

  /** True when this replica holds a path's versions. */
  private async hasPaths (): Promise<boolean> {
    for await (const _ of this.components.store.kv.iterate({ gt: 'v!', lt: 'v"', limit: 1 })) return true
    return false
  }

  /**
   * Load a snapshot into a replica that holds nothing (under the lock): the
   * walk writes each path straight into the tree, in bounded batches — there
   * is nothing to merge with, so nothing to stage. A marker (`m!fresh`) goes
   * with the first batch and out with the final one; a failure, or a crash
   * before the final batch (at the next open), empties the replica again.
   */
  private async loadFresh (load: FreshLoad): Promise<boolean> {
    const { snap, fetch, clock, tips } = load
    const { store } = this.components
    const { kv } = store
    const superseded = await this.components.superseded()
    const changes = new Map<string, Version[]>()
    const captured: Captured = { nodes: [], added: [] }
    const copies = new CopiesAhead()
    const batch = (behind?: BulkRows): { rows: BulkRows, tree: TreeWriter } => {
      const rows = new BulkRows(kv, FRESH_BATCH, behind)
      return { rows, tree: new TreeWriter(rows, { markDirty: false, onCopy: copy => { copies.add(copy) } }) }
    }
    let { rows, tree } = batch()
    // the commit of the batch before `rows`, under way while `rows` fills (one at a time, so they are written in order)
    let writing: Promise<void> | undefined
    rows.put(metaKey('fresh'), 1)
    let paths = 0
    let dropped = 0
    try {
      for await (const [path, versions] of this.walk(snap, this.capture(fetch, () => rows, captured))) {
        paths++
        const raw = versions.map(fromSnapshotVersion)
        const theirs = this.taken(path, raw, [], superseded, clock)
        dropped += raw.length - theirs.length
        // nothing stored yet: the walk yields each path once, after its ancestors and before anything under it; a name is
        // stored at it only when an earlier path's conflict copy took it
        if (theirs.length > 0) await tree.load(path, theirs, { stored: { versions: [], copies: [] }, unseen: copies.unseen(path) })
        if (theirs.length !== raw.length) changes.set(path, theirs)
        if (rows.full) {
          // the walk goes on while the full batch is written: nodes still arriving (capture) and the next paths go into a new
          // batch, which reads through the full one until it is in the store
          await writing
          const full = rows
          const next = batch(full)
          rows = next.rows
          tree = next.tree
          writing = full.commit(false).then(() => { next.rows.written() })
          writing.catch(() => {}) // awaited at the next full batch or the end; not unhandled meanwhile
        }
      }
      await writing
      await rows.commit(false)
    } catch (err) {
      // nothing may land after the emptying
      await writing?.catch(() => {})
      await this.emptyAgain(captured.added)
      throw err
    }
    const marker: MergeMarker = { root: load.root.toString(), clock, tips: tips.map(t => [t.author, t.seq, t.cid.toString()]), nodes: captured.nodes }
    await this.adopt({ marker, snap, changes, paths, dropped, held: [], superseded, tipBytes: tips.map(t => [t.bytes, t.cid.toString()]), nodes: new Set(captured.nodes) })
    return true
  }

  /**
   * Undo a first load: the tree's rows, its marker, and the blocks it added
   * — or, after a crash (`added` unknown), every block this replica's
   * snapshot does not hold.
   */
  private async emptyAgain (added?: string[]): Promise<void> {
    const { kv } = this.components.store
    for (const prefix of TREE_PREFIXES) await clearRange(kv, { gt: prefix, lt: prefix.slice(0, -1) + '"' })
    if (added !== undefined) await deleteKeys(kv, added.map(blockKey))
    else await this.sweepBlocks()
    await kv.batch([{ type: 'del', key: metaKey('fresh') }], true)
  }

  /** Delete every block (`b!`) that this replica's snapshot does not hold: what a crash left staged. Under the lock. */
  private async sweepBlocks (): Promise<void> {
    const { store } = this.components
    const snap = await store.meta<SnapshotMeta>('snapshot')
    const keep = new Set([...snap?.blocks ?? [], ...snap?.authors ?? [], ...snap !== undefined ? [snap.root] : []].map(blockKey))
    await clearRange(store.kv, { gt: 'b!', lt: 'b"' }, key => keep.has(key))
  }

  /** Fetch again the tree's nodes that are not in the store (a compaction meanwhile deleted a node both trees shared). */
  private async ensureNodes (nodes: string[], fetch: SnapshotFetch): Promise<void> {
    const { kv } = this.components.store
    const missing: CID[] = []
    for (const key of nodes) if (await kv.get(blockKey(key)) === undefined) missing.push(CID.parse(key))
    for (let i = 0; i < missing.length;) {
      const got = (await fetch(missing.slice(i, i + MAX_BLOCKS_WANT))).slice(0, MAX_BLOCKS_WANT)
      const ops = []
      for (const [j, bytes] of got.entries()) {
        if (bytes === undefined || !cborCID(bytes).equals(missing[i + j])) throw new InvalidSnapshotError(`snapshot tree node ${missing[i + j].toString()} missing or corrupt`)
        ops.push({ type: 'put' as const, key: blockKey(missing[i + j].toString()), value: bytes })
      }
      if (ops.length === 0) throw new InvalidSnapshotError(`snapshot tree node ${missing[i].toString()} no longer served`)
      await kv.batch(ops, false)
      i += ops.length
    }
  }

  /**
   * Delete a load's staged rows and the blocks it added — but those this
   * replica's snapshot holds meanwhile (another load of the same tree
   * merged them); under the lock, as the snapshot changes under it.
   */
  private async dropStaging (staged: Staged): Promise<void> {
    const { store } = this.components
    await store.exclusive(async () => {
      const snap = await store.meta<SnapshotMeta>('snapshot')
      const keep = new Set([...snap?.blocks ?? [], ...snap?.authors ?? []])
      await deleteKeys(store.kv, staged.added.filter(key => !keep.has(key)).map(blockKey))
      await clearRange(store.kv, stagedRange(staged.load))
    })
  }

  /**
   * The merge under the lock (the marker is written): path by path in
   * batches, then one final batch adopting the clock, the heads and the new
   * snapshot. Idempotent until that batch: {@link resume} runs it again.
   */
  private async merge (marker: StagedMarker, snap: SnapshotView): Promise<void> {
    const { store } = this.components
    const { kv } = store
    const theirClock = marker.clock
    const superseded = await this.components.superseded()
    const held: Array<[string, Version]> = []
    const options = {
      keepA: (v: Version) => !covers(store.pruned, [v.author, v.seq]),
      keptA: (path: string, v: Version) => { held.push([path, v]) }
    }
    // paths whose merged versions differ from the peer's tree: O(differences) in memory
    const changes = new Map<string, Version[]>()
    let txn = new Txn(kv)
    let tree = new TreeWriter(txn, { markDirty: false })
    const flush = async (force: boolean): Promise<void> => {
      if (!force && txn.size < CHUNK) return
      await txn.commit(false)
      txn = new Txn(kv)
      tree = new TreeWriter(txn, { markDirty: false })
    }
    let dropped = 0
    let paths = 0
    // whether this replica held any path before the merge (after a crash, some merged paths are here already: look anyway)
    const oursBefore = await this.hasPaths()
    const nodes = new Set(marker.nodes)
    // the staged paths, then those the staged rows leave out: every other path here, or (staged against this replica's snapshot) those that may differ
    const rest = marker.base === undefined
      ? (oursBefore ? this.onlyOurs(marker.load) : [])
      : this.outsideShared(marker as StagedMarker & { base: string }, snap.tree, nodes)
    for (const candidates of [this.stagedPaths(marker.load), rest]) {
      for await (const { path, raw, ours: stored } of candidates) {
        paths++
        const ours = stored ?? (await tree.versions(path)).versions
        const theirs = this.taken(path, raw, ours, superseded, theirClock)
        dropped += raw.length - theirs.length
        const merged = mergeVersions(path, ours, store.clock, theirs, theirClock, options)
        if (!sameVersions(merged, ours)) await tree.load(path, merged)
        if (!sameVersions(merged, raw)) changes.set(path, merged)
        await flush(false)
      }
      await flush(true)
    }

    await this.adopt({ marker, snap, changes, paths, dropped, held, superseded, nodes })
  }

  /** The paths load `load` staged, with the peer's versions. */
  private async * stagedPaths (load: number): AsyncGenerator<Candidate> {
    for await (const [key, value] of this.components.store.kv.iterate(stagedRange(load))) {
      yield { path: pathOfStagedKey(key), raw: decodeJSON<Version[]>(value) }
    }
  }

  /** Every path this replica holds that load `load` did not stage: the peer holds none of them. */
  private async * onlyOurs (load: number): AsyncGenerator<Candidate> {
    const { kv } = this.components.store
    for await (const [key, value] of kv.iterate({ gt: 'v!', lt: 'v"' })) {
      const path = key.slice(2)
      if (await kv.get(stagedKey(load, path)) !== undefined) continue
      yield { path, raw: [], ours: decodeJSON<PathState>(value).versions }
    }
  }

  /**
   * The paths that may differ besides the staged ones, for a load staged
   * against this replica's snapshot (`marker.base`, still this replica's
   * until the merge's final batch), and the peer's versions of each:
   *
   * - the paths of this replica's tree outside the shared subtrees that the
   *   peer's tree lacks (a path both hold there and that was not staged holds
   *   the same versions in both);
   * - the paths changed here since that snapshot (`d!`), not staged: the
   *   peer holds what that snapshot holds of them (an unstaged path holds the
   *   same versions in both trees, or is in neither).
   *
   * Any other path is the same on both sides. Adds to `nodes` (the peer's
   * tree's nodes) the shared subtrees' nodes: this snapshot's, but those
   * walked here.
   */
  private async * outsideShared (marker: StagedMarker & { base: string }, peerTree: CID, nodes: Set<string>): AsyncGenerator<Candidate> {
    const { store } = this.components
    const { kv } = store
    const meta = await store.meta<SnapshotMeta>('snapshot')
    if (meta?.root !== marker.base || meta.tree === undefined) throw new InvalidSnapshotError(`${store.where}: the snapshot a merge was staged against (${marker.base}) is no longer this replica's`)
    const tree = CID.parse(meta.tree)
    const get: GetNode = async cid => await kv.get(blockKey(cid.toString()))
    const shared = new Set(marker.shared)
    const walked = new Set<string>()
    const fetch: FetchNodes = async cids => {
      for (const cid of cids) walked.add(cid.toString())
      return await Promise.all(cids.map(get))
    }
    const dirty = new Set<string>()
    for await (const [key] of kv.iterate({ ...DIRTY_RANGE })) dirty.add(key.slice(2))
    const staged = async (path: string): Promise<boolean> => await kv.get(stagedKey(marker.load, path)) !== undefined
    // the peer's tree, all in the store by now (its nodes fetched, or this replica's where shared)
    const theirs = new TreeReader(peerTree, get)
    // this replica's own tree: a shared subtree is skipped unread
    for await (const [path] of walkTree(tree, fetch, { known: { has: cid => shared.has(cid.toString()), fits: () => true, get, skipped: () => {} } })) {
      if (await staged(path)) {
        dirty.delete(path)
        continue
      }
      // in the peer's tree too, unstaged: the same there (changed here since, it is dirty: taken below)
      if (await theirs.versions(path) !== undefined) continue
      dirty.delete(path)
      yield { path, raw: [] }
    }
    const reader = new TreeReader(tree, get)
    for (const path of [...dirty].sort(compareTreePaths)) {
      if (!await staged(path)) yield { path, raw: ((await reader.versions(path)) ?? []).map(fromSnapshotVersion) }
    }
    for (const block of meta.blocks) if (block !== meta.root && !walked.has(block)) nodes.add(block)
  }

  /**
   * The final batch of a merge: the clock, the heads, the pruned frontier
   * and this replica's snapshot — the peer's tree with the paths that
   * differ rewritten — adopted at once; the marker goes with it.
   */
  private async adopt (merged: Merged): Promise<void> {
    const { marker, snap, changes, paths, dropped, held, superseded, nodes } = merged
    const { store } = this.components
    const { kv } = store
    const theirClock = marker.clock
    const clock = merge(store.clock, theirClock)
    const heads = this.mergeHeads(snap)
    const batch = store.batch(clock, heads)
    for (const [author, n] of Object.entries(clock)) if ((store.clock[author] ?? 0) !== n) batch.changed.add(author)
    const final = batch.txn
    // this replica's snapshot: the peer's tree with the paths that differ rewritten
    let treeRoot: TreeRoot = { root: snap.tree, count: snap.count }
    if (changes.size > 0) {
      const written = new Set<string>()
      const sorted = [...changes.keys()].sort(compareTreePaths)
      const update = await updateTree(
        snap.tree,
        sorted.map(path => [path, (changes.get(path) as Version[]).map(toSnapshotVersion)]),
        async cid => await final.getBytes(blockKey(cid.toString())),
        async (cid, bytes) => {
          const key = cid.toString()
          if (await final.getBytes(blockKey(key)) === undefined) final.putBytes(blockKey(key), bytes)
          written.add(key)
        }
      )
      for (const cid of update.readNodes) nodes.delete(cid.toString())
      for (const key of written) nodes.add(key)
      treeRoot = update
    }
    // a superseded version the merged clock covers never arrives as an entry
    for (const key of superseded.keys()) if (covers(clock, dotOfSupersededKey(key))) final.del(key)
    // history the snapshot covers can no longer be served entry by entry
    const pruned = merge(store.pruned, theirClock)
    for await (const [key, value] of kv.iterate({ ...SEQ_RANGE })) {
      const dot = dotOfSeqKey(key)
      // but each author's newest entry: the tip that proves its counter in this replica's own snapshots
      if (covers(pruned, dot) && dot[1] !== clock[dot[0]]) {
        final.del(key)
        final.del(entryKey(decodeJSON<{ cid: string }>(value).cid))
      }
    }
    for (const [bytes, cid] of merged.tipBytes ?? []) final.putBytes(entryKey(cid), bytes)
    for (const [author, seq, cid] of marker.tips) {
      if (clock[author] === seq) final.put(seqKey(author, seq), { cid, w: batch.total })
      else if (await kv.get(seqKey(author, seq)) === undefined) final.del(entryKey(cid))
    }
    final.put(metaKey('pruned'), pruned)
    // a retirement beyond the counter this replica now holds (not proven) is kept without its dots: it never reads a peer's clock, and keeps the author named here
    // published again as this replica's own writes below; recorded here so that a crash before then loses none (republish.ts)
    await this.components.republish.record(final, held)
    this.components.retirements?.take(batch, retiredOfSnapshot(snap.retired).map(([author, r]) => [author, covers(clock, [author, r.seq]) ? r : { seq: r.seq, dots: [] }]))
    await this.components.writer.writeRoot(final, { tree: treeRoot, blocks: nodes, clock, heads, drop: [...marker.nodes, marker.root, ...snap.authorBlocks.map(String)] })
    final.del(metaKey('merge'))
    final.del(metaKey('fresh'))
    await store.commit(batch)
    store.setPruned(pruned)
    if (marker.load !== undefined) await clearRange(kv, stagedRange(marker.load))
    await this.components.writer.clearDirty()
    this.components.members.noteMember(snap.author, theirClock)
    this.components.logger.info({ root: marker.root, paths, differ: changes.size, dropped, kept: held.length }, 'namespace merged a snapshot')
    if (held.length > 0) this.components.logger.warn({ snapshot: snap.author, versions: held.length, paths: held.slice(0, 5).map(([p]) => p) }, 'a snapshot left out versions whose signed entries this node holds, and no entry it holds removes them: published again as this node\'s own writes')
    await this.components.faults?.afterMergeSaved?.()
    await this.components.republish.publish()
    // held entries may have become ready
    await this.components.drain()
  }

  /**
   * A path's versions from the snapshot that this replica takes: those its
   * proven clock (or this replica's) covers — a version beyond the proven
   * counters comes by pull, signed — by authors it trusts or that it holds
   * itself, and not seen superseded before they arrived.
   */
  private taken (path: string, versions: Version[], ours: Version[], superseded: Map<string, string[]>, theirClock: VectorClock): Version[] {
    const { store, trust } = this.components
    const held = ours.length === 0 ? undefined : new Set(ours.map(v => `${v.author}\n${v.seq}`))
    return versions.filter(v => {
      const dot: Dot = [v.author, v.seq]
      if (!covers(theirClock, dot) && !covers(store.clock, dot)) return false
      if (superseded.size > 0 && superseded.get(supersededKey(dot))?.includes(path) === true) return false
      return trust.trusts(v.author) || held?.has(`${v.author}\n${v.seq}`) === true
    })
  }

  /**
   * Heads after merging a snapshot: the maximal entries of both sides. A head
   * of one side that the other side's clock covers, and that the other side
   * does not list as a head, is behind the other side's heads. The
   * snapshot's heads by authors this replica does not trust are left out:
   * their entries are not here (heads only name an entry's parents).
   */
  private mergeHeads (snap: SnapshotView): Map<string, Dot> {
    const { store, trust } = this.components
    const theirs = new Map<string, Dot>()
    for (const [i, h] of snap.heads.entries()) if (trust.trusts(snap.headDots[i][0])) theirs.set(h.toString(), snap.headDots[i])
    const out = new Map<string, Dot>()
    for (const [h, dot] of store.heads) if (theirs.has(h) || !covers(snap.clock, dot)) out.set(h, dot)
    for (const [h, dot] of theirs) if (store.heads.has(h) || !covers(store.clock, dot)) out.set(h, dot)
    return out
  }
}
