/**
 * Snapshots and compaction (docs/namespace.md, "Compaction"): the replica's
 * live versions written as a signed root over the snapshot tree (a prolly
 * tree of dag-cbor nodes, snapshot-tree.ts; blocks under `b!`, recorded in
 * `m!snapshot`), pruning the history every active member has seen, and
 * serving the blocks to peers. A snapshot is written incrementally: the
 * paths changed since the previous one are marked (`d!`, tree.ts) and only
 * the tree nodes that hold them are rewritten. Merging a peer's snapshot
 * is snapshot-load.ts's; the merge itself and the conversions are
 * snapshot-state.ts's.
 *
 * Everything that knows the snapshot's format lives in these modules — the
 * log only asks {@link Snapshots.current} for the root to point a peer at,
 * and the upgrades ask {@link Snapshots.writeFullSnapshot} to rewrite it.
 *
 * It owns no state in memory: the snapshot is in the store, the clock and
 * heads are the store's, the members' stable clock is members.ts's.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import {
  MAX_BLOCKS_WANT,
  decodeSnapshotRoot, encodeSnapshotRoot, encodeSnapshotRootBody,
  type SnapshotRoot, type SnapshotRootBody, type SnapshotVersion
} from '../../protocol/namespace.js'
import { cborCID } from '../blocks/verify.js'
import { buildTree, updateTree, type PutNode, type TreeRoot } from './snapshot-tree.js'
import { merge, missing, type Dot, type VectorClock } from './clock.js'
import { Txn, clearRange, decodeJSON } from './kv.js'
import { blockKey, dotOfSeqKey, entryKey, metaKey, seqKey } from './rows.js'
import { sortedHeads, type ReplicaStore } from './store.js'
import { DIRTY_RANGE, dirtyKey, versionsKey, type PathState, type Version } from './tree.js'
import { compareTreePaths, inTreeOrder } from './path-order.js'
import { toSnapshotVersion, type SnapshotMeta, type WriteRootOptions } from './snapshot-state.js'
import { SnapshotLoader, type SnapshotFetch, type SnapshotLoadFaults, type SnapshotLoaderComponents } from './snapshot-load.js'
import { DEFAULT_INLINE_ROOT_AUTHORS, authorBlocksOf } from './snapshot-authors.js'
import type { SnapshotRetirements } from './retire.js'
import type { Signer, Verifier } from './identity.js'
import type { TrustPolicy } from './trust.js'
import type { WallClock } from './api.js'
import type { Logger } from '../logger.js'

export { InvalidSnapshotError, UntrustedSnapshotError, mergeStates, type MergeOptions } from './snapshot-state.js'

/** What {@link Snapshots} is built from. */
export interface SnapshotsComponents {
  store: ReplicaStore
  /** This replica's author id (the author of its snapshots). */
  id: string
  signer: Signer
  verifier: Verifier
  trust: TrustPolicy
  clock: WallClock
  logger: Logger
  /** The members (members.ts): who has seen what. */
  members: {
    noteMember: (peer: string, clock: VectorClock) => void
    save: () => Promise<void>
    stableClock: () => VectorClock
  }
  /** Versions superseded before they arrived, by `r!` key (apply.ts). */
  superseded: () => Promise<Map<string, string[]>>
  /** Apply held entries that became ready (log.ts); called under the store's lock. */
  drain: () => Promise<number>
  /** A merged snapshot changed the tree. */
  changed: () => void
  /**
   * Versions a merge kept without proof (republish.ts): recorded in the
   * merge's final batch, then published again as this replica's own writes
   * under the lock already held (see snapshot-load.ts).
   */
  republish: SnapshotLoaderComponents['republish']
  /** Fault injection for tests (snapshot-load.ts). */
  faults?: SnapshotLoadFaults
  /** Ignored: the tree's nodes are sized by its chunking rule (protocol/snapshot-tree.ts). */
  shardPaths?: number
  /** Compact once this many entries became stable since the last compaction. */
  compactAfter: number
  /** The retired authors (retire.ts): a snapshot carries them, a merge takes them. */
  retirements?: SnapshotRetirements
  /** Most authors a snapshot root names inline; past it the root links author blocks of this many (snapshot-authors.ts). @default 2048 */
  inlineRootAuthors?: number
  /** A node of the current state's tree held in memory for a state check (state-tree.ts), served like the snapshot's. */
  stateNode?: (cid: CID) => Uint8Array | undefined
}


/** Writes, serves, merges snapshots; compacts. */
export class Snapshots {
  private readonly loader: SnapshotLoader

  constructor (private readonly components: SnapshotsComponents) {
    this.loader = new SnapshotLoader({ ...components, writer: this })
  }

  /** The latest snapshot's root and clock, if any. */
  async current (): Promise<{ root: CID, clock: VectorClock } | undefined> {
    const snap = await this.components.store.meta<SnapshotMeta>('snapshot')
    return snap === undefined ? undefined : { root: CID.parse(snap.root), clock: snap.clock }
  }

  /** The root of the latest snapshot's tree; undefined without a snapshot, or for a root of an older format. */
  async currentTree (): Promise<CID | undefined> {
    const snap = await this.components.store.meta<SnapshotMeta>('snapshot')
    return snap === undefined ? undefined : await this.treeOf(snap)
  }

  /** Whether this replica has written a snapshot. */
  async exists (): Promise<boolean> {
    return await this.components.store.meta<SnapshotMeta>('snapshot') !== undefined
  }

  /**
   * Whether this replica's snapshot is in the format peers read today (an
   * older build's root — flat shards, no tips — is not): true when there is
   * none.
   */
  async readable (): Promise<boolean> {
    const snap = await this.components.store.meta<SnapshotMeta>('snapshot')
    if (snap === undefined) return true
    const bytes = await this.components.store.kv.get(blockKey(snap.root))
    if (bytes === undefined) return false
    try {
      decodeSnapshotRoot(bytes)
      return true
    } catch {
      return false
    }
  }

  /**
   * Snapshot blocks this replica holds, and the entries its snapshots name
   * as tips (any held entry is served: entries are public to whoever can
   * pull them): the longest prefix of `cids` that it holds and that fits in
   * `maxBytes` (at least one block when it has the first). The asker asks
   * again for the rest.
   */
  async blocks (cids: CID[], maxBytes = 4 * 1024 * 1024): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    let total = 0
    const { kv } = this.components.store
    for (const cid of cids.slice(0, MAX_BLOCKS_WANT)) {
      const key = cid.toString()
      const bytes = await kv.get(blockKey(key)) ?? await kv.get(entryKey(key)) ?? this.components.stateNode?.(cid)
      if (bytes === undefined) break
      if (out.length > 0 && total + bytes.byteLength > maxBytes) break
      out.push(bytes)
      total += bytes.byteLength
    }
    return out
  }

  /**
   * When enough history is stable, snapshot the tree and prune the stable
   * entries. Returns whether it compacted.
   */
  async compact (force = false): Promise<boolean> {
    const { store, members } = this.components
    return await store.exclusive(async () => {
      await members.save()
      const stable = members.stableClock()
      const gain = missing(stable, store.pruned)
      if (gain === 0 || (!force && gain < this.components.compactAfter)) return false
      const txn = new Txn(store.kv)
      const written = await this.writeSnapshot(txn, store.clock, store.heads)
      for (const [author, n] of Object.entries(stable)) {
        const from = store.pruned[author] ?? 0
        if (from >= n) continue
        // from the previous tip (kept at `from` when it was the author's newest) up to n, but the newest: the tip proves the counter
        for await (const [key, value] of store.kv.iterate({ gt: seqKey(author, Math.max(0, from - 1)), lte: seqKey(author, n) })) {
          if (dotOfSeqKey(key)[1] === store.clock[author]) continue
          txn.del(entryKey(decodeJSON<{ cid: string }>(value).cid))
          txn.del(key)
        }
      }
      const pruned = merge(store.pruned, stable)
      txn.put(metaKey('pruned'), pruned)
      await txn.commit(true)
      store.setPruned(pruned)
      await written.after()
      this.components.logger.info({ pruned: gain }, 'namespace history compacted')
      return true
    })
  }

  /** Make a snapshot now (tests, benchmarks); returns its root. */
  async snapshot (): Promise<CID> {
    const { store } = this.components
    return await store.exclusive(async () => {
      const txn = new Txn(store.kv)
      const written = await this.writeSnapshot(txn, store.clock, store.heads)
      await txn.commit(true)
      await written.after()
      return written.root
    })
  }

  /** Every path's live versions, from the store (upgrades: the whole state in memory). */
  async collectState (): Promise<Map<string, Version[]>> {
    const state = new Map<string, Version[]>()
    for await (const [key, value] of this.components.store.kv.iterate({ gt: 'v!', lt: 'v"' })) {
      const versions = decodeJSON<PathState>(value).versions
      if (versions.length > 0) state.set(key.slice(2), versions)
    }
    return state
  }

  /**
   * Write a snapshot of the store's state at `clock` into `txn`, replacing
   * the previous snapshot. With a previous snapshot, only the paths marked
   * dirty since (`d!`, tree.ts) are read, and its tree is updated
   * (snapshot-tree.ts `updateTree`): the nodes holding them and their
   * ancestors are written, every other node is the previous snapshot's,
   * shared by CID — O(changes × tree height). The first snapshot streams
   * every path from the store into a new tree. The previous snapshot's
   * blocks the new one no longer reaches are deleted with it.
   *
   * Call `after` once `txn` is committed: it deletes marks the snapshot
   * covered but left in the store (after a first snapshot; a mark left by a
   * crash only costs the next snapshot one more path).
   */
  async writeSnapshot (txn: Txn, clock: VectorClock, heads: Map<string, Dot>): Promise<WrittenSnapshot> {
    const old = await this.components.store.meta<SnapshotMeta>('snapshot')
    const oldTree = old === undefined ? undefined : await this.treeOf(old)
    const { put, written } = this.nodeWriter(txn)
    if (old === undefined || oldTree === undefined) {
      const tree = await buildTree(this.liveVersions(), put)
      const root = await this.writeRoot(txn, { tree, blocks: written, clock, heads })
      return { root, after: async () => { await this.clearDirty() } }
    }
    const { dirty, changes } = await this.dirtyChanges(async path => await txn.get<PathState>(versionsKey(path)))
    const get = async (cid: CID): Promise<Uint8Array | undefined> => await txn.getBytes(blockKey(cid.toString()))
    const update = await updateTree(oldTree, changes, get, put)
    const blocks = new Set(old.blocks)
    blocks.delete(old.root)
    for (const cid of update.readNodes) blocks.delete(cid.toString())
    for (const cid of written) blocks.add(cid)
    for (const path of dirty) txn.del(dirtyKey(path))
    const root = await this.writeRoot(txn, { tree: update, blocks, clock, heads })
    return { root, after: async () => {} }
  }

  /**
   * The snapshot tree of the replica's current state, nothing written (a
   * state check, state-check.ts): the latest snapshot's tree updated with
   * the paths marked dirty since — O(changes × tree height) nodes — or,
   * with no snapshot yet, a tree of every path. `put` gets each new node;
   * the snapshot's own nodes are read from the store. Run it under the
   * store's lock, so that the state does not move while it is read.
   */
  async stateTree (put: PutNode): Promise<TreeRoot> {
    const { kv } = this.components.store
    const old = await this.components.store.meta<SnapshotMeta>('snapshot')
    const oldTree = old === undefined ? undefined : await this.treeOf(old)
    if (oldTree === undefined) return await buildTree(this.liveVersions(), put)
    const { changes } = await this.dirtyChanges(async path => {
      const row = await kv.get(versionsKey(path))
      return row === undefined ? undefined : decodeJSON<PathState>(row)
    })
    // updateTree reads only the snapshot's own nodes, all in the store
    const get = async (cid: CID): Promise<Uint8Array | undefined> => await kv.get(blockKey(cid.toString()))
    return await updateTree(oldTree, changes, get, put)
  }

  /**
   * The paths marked dirty since the last snapshot (`d!`, tree.ts), in the
   * tree's order (O(changes) in memory), and each with its versions as
   * `read` gives them, for {@link updateTree}.
   */
  private async dirtyChanges (read: (path: string) => Promise<PathState | undefined>): Promise<{ dirty: string[], changes: AsyncGenerator<[string, SnapshotVersion[] | undefined]> }> {
    const dirty: string[] = []
    for await (const [key] of this.components.store.kv.iterate({ ...DIRTY_RANGE })) dirty.push(key.slice(2))
    dirty.sort(compareTreePaths)
    const changes = async function * (): AsyncGenerator<[string, SnapshotVersion[] | undefined]> {
      for (const path of dirty) yield [path, (await read(path))?.versions.map(toSnapshotVersion)]
    }
    return { dirty, changes: changes() }
  }

  /**
   * Write a snapshot of `state` (every path: an upgrade holds it in memory)
   * into `txn`: a whole new tree; the dirty marks go with it.
   */
  async writeFullSnapshot (txn: Txn, state: Map<string, Version[]>, clock: VectorClock, heads: Map<string, Dot>): Promise<CID> {
    const { put, written } = this.nodeWriter(txn)
    const sorted = [...state.keys()].sort(compareTreePaths)
    const tree = await buildTree(
      (function * () { for (const path of sorted) yield [path, (state.get(path) as Version[]).map(toSnapshotVersion)] as [string, SnapshotVersion[]] })(),
      put
    )
    await txn.clearPrefix('d!')
    for (const path of state.keys()) txn.del(dirtyKey(path))
    return await this.writeRoot(txn, { tree, blocks: written, clock, heads })
  }

  /**
   * Sign and write a snapshot's root over `tree` into `txn`, record it as
   * this replica's snapshot with its `blocks` (every node of the tree), and
   * delete the previous snapshot's blocks, and those in `drop`, that
   * `blocks` does not hold.
   */
  async writeRoot (txn: Txn, options: WriteRootOptions): Promise<CID> {
    const { tree, blocks, clock, heads } = options
    const old = await this.components.store.meta<SnapshotMeta>('snapshot')
    const tips: SnapshotRoot['tips'] = []
    for (const author of Object.keys(clock).sort()) {
      // read through the batch: a merged snapshot's tips are stored by the same batch
      const row = await txn.get<{ cid: string }>(seqKey(author, clock[author]))
      if (row !== undefined) tips.push([author, CID.parse(row.cid)])
    }
    const retired = this.components.retirements?.forSnapshot(clock, txn) ?? []
    const common = { author: this.components.id, time: this.components.clock.now(), count: tree.count, tree: tree.root }
    const sorted = sortedHeads(heads)
    const headList = { heads: sorted.map(h => CID.parse(h)), headDots: sorted.map(h => heads.get(h) as Dot) }
    // many authors or heads: linked in author blocks (v3); a root with no retirement is written in the first version, which every build reads
    const authorBlocks = authorBlocksOf({ clock, tips, retired, ...headList }, this.components.inlineRootAuthors ?? DEFAULT_INLINE_ROOT_AUTHORS)
    const body: SnapshotRootBody = authorBlocks.length > 0
      ? { v: 3, ...common, authors: authorBlocks.map(([cid]) => cid) }
      : { v: retired.length > 0 ? 2 : 1, ...common, ...headList, clock: { ...clock }, tips, ...(retired.length > 0 ? { retired } : {}) }
    const sig = await this.components.signer.sign(encodeSnapshotRootBody(body))
    const rootBytes = encodeSnapshotRoot({ ...body, sig })
    const root = cborCID(rootBytes)
    txn.putBytes(blockKey(root.toString()), rootBytes)
    for (const [cid, bytes] of authorBlocks) txn.putBytes(blockKey(cid.toString()), bytes)
    const list = [...blocks, root.toString()]
    const authors = authorBlocks.map(([cid]) => cid.toString())
    const keep = new Set([...list, ...authors])
    for (const b of [...old?.blocks ?? [], ...old?.authors ?? [], ...options.drop ?? []]) if (!keep.has(b)) txn.del(blockKey(b))
    const meta: SnapshotMeta = { root: root.toString(), clock: { ...clock }, blocks: list, tree: tree.root.toString() }
    if (authors.length > 0) meta.authors = authors
    txn.put(metaKey('snapshot'), meta)
    return root
  }

  /** Delete every dirty mark, in bounded batches (marks a committed snapshot covers). */
  async clearDirty (): Promise<void> {
    await clearRange(this.components.store.kv, DIRTY_RANGE)
  }

  /** Store a tree's nodes through `txn`, once each; `written` collects every node handed over, stored before or not. */
  private nodeWriter (txn: Txn): { put: PutNode, written: Set<string> } {
    const written = new Set<string>()
    const put: PutNode = async (cid, bytes) => {
      const key = cid.toString()
      if (written.has(key)) return
      written.add(key)
      if (await txn.getBytes(blockKey(key)) === undefined) txn.putBytes(blockKey(key), bytes)
    }
    return { put, written }
  }

  /** The tree root of a snapshot this replica wrote; undefined for a root of an older format (no tree). */
  private async treeOf (meta: SnapshotMeta): Promise<CID | undefined> {
    if (meta.tree !== undefined) return CID.parse(meta.tree)
    const bytes = await this.components.store.kv.get(blockKey(meta.root))
    if (bytes === undefined) return undefined
    try {
      return decodeSnapshotRoot(bytes).tree
    } catch {
      return undefined
    }
  }

  /** Every path's live versions, streamed from the store in the tree's order. */
  private async * liveVersions (): AsyncGenerator<[string, SnapshotVersion[]]> {
    const { kv } = this.components.store
    const rows = async function * (): AsyncGenerator<[string, Version[]]> {
      for await (const [key, value] of kv.iterate({ gt: 'v!', lt: 'v"' })) {
        const versions = decodeJSON<PathState>(value).versions
        if (versions.length > 0) yield [key.slice(2), versions]
      }
    }
    for await (const [path, versions] of inTreeOrder(rows())) yield [path, versions.map(toSnapshotVersion)]
  }

  /**
   * Merge a peer's snapshot into this replica (snapshot-load.ts): the
   * state-based merge of two observed-remove sets, streamed — the peer's
   * tree is walked and staged in the store, then merged path by path — and
   * this replica's own snapshot of the result, the peer's tree with only
   * the paths that differ rewritten.
   *
   * @param author - the peer serving the snapshot: only its own snapshots are accepted
   * @throws {UntrustedSnapshotError} for a snapshot by an author this replica does not trust
   * @throws {InvalidSnapshotError} for a snapshot that fails its checks (nothing is changed)
   */
  async loadSnapshot (root: CID, fetch: SnapshotFetch, author?: string): Promise<boolean> {
    return await this.loader.load(root, fetch, author)
  }

  /** At open: finish a merge a crash interrupted, or drop what a crash left staged. */
  async resume (): Promise<void> {
    await this.loader.resume()
  }
}

/** What {@link Snapshots.writeSnapshot} wrote. */
export interface WrittenSnapshot {
  root: CID
  /** Run once the batch is committed. */
  after: () => Promise<void>
}
