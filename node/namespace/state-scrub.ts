/**
 * A replica's rows checked against its own latest snapshot: the part of a
 * state check (state-check.ts) that a peer cannot do.
 *
 * Why: a state check compares the tree a replica would snapshot — its last
 * snapshot's tree and the paths marked dirty since (`d!`, tree.ts). A path
 * not changed since that snapshot is taken from the snapshot, not from the
 * rows the replica reads and serves, so rows of it that a disk lost or
 * damaged would never show. Every write that changes a path's versions
 * marks it dirty; so for a path with no mark, its `v!` row and the
 * snapshot's versions must be the same.
 *
 * How: one pass over both in the tree's path order (the snapshot's tree
 * walked from the store, the `v!` rows through inTreeOrder), O(paths) and
 * O(tree height) memory. A path where they differ gets a dirty mark: the
 * state's tree then holds what the rows hold, and the next state check
 * compares that with the peers (and repairs it when two agree against it,
 * whichever side — row or snapshot — was damaged).
 *
 * It runs without the store's lock: a write racing the pass marks its own
 * paths, and a mark the pass adds to a path that was in fact consistent
 * costs the next snapshot one path. A compaction replacing the snapshot
 * mid-pass ends the pass (its old nodes are deleted): the next one starts
 * over.
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import { Txn, decodeJSON, type KV } from './kv.js'
import { compareTreePaths, inTreeOrder } from './path-order.js'
import { blockKey } from './rows.js'
import { sameVersionSet, toSnapshotVersion } from './snapshot-state.js'
import { walkTree, type Versions } from './snapshot-tree.js'
import { dirtyKey, type PathState } from './tree.js'

/** What {@link scrubRows} is built from. */
export interface StateScrubComponents {
  kv: KV
  /** The root of the latest snapshot's tree, undefined without one (Snapshots.currentTree). */
  snapshotTree: () => Promise<CID | undefined>
}

/** What a pass found. */
export interface ScrubResult {
  /** Paths compared (rows and snapshot together). */
  paths: number
  /** Paths whose rows differ from the snapshot without a dirty mark: marked now. */
  marked: number
}

/** Most marks written in one batch. */
const MARK_BATCH = 1000

/**
 * Compare every path's `v!` row with the latest snapshot and mark those that
 * differ without a dirty mark (see the module comment).
 *
 * @throws {InvalidTreeNodeError} when a node of the snapshot does not verify or is gone (a compaction replaced it meanwhile)
 */
export async function scrubRows (components: StateScrubComponents): Promise<ScrubResult> {
  const { kv } = components
  const result: ScrubResult = { paths: 0, marked: 0 }
  const root = await components.snapshotTree()
  if (root === undefined) return result
  const fetch = async (cids: CID[]): Promise<Array<Uint8Array | undefined>> => await Promise.all(cids.map(async cid => await kv.get(blockKey(cid.toString()))))
  const rows = async function * (): AsyncGenerator<[string, Versions]> {
    for await (const [key, value] of kv.iterate({ gt: 'v!', lt: 'v"' })) {
      const versions = decodeJSON<PathState>(value).versions
      if (versions.length > 0) yield [key.slice(2), versions.map(toSnapshotVersion)]
    }
  }
  const snap = walkTree(root, fetch)[Symbol.asyncIterator]()
  const live = inTreeOrder(rows())[Symbol.asyncIterator]()
  let a = await snap.next()
  let b = await live.next()
  let txn = new Txn(kv)
  let pending = 0
  const mark = async (path: string): Promise<void> => {
    if (await kv.get(dirtyKey(path)) !== undefined) return
    txn.put(dirtyKey(path), 1)
    result.marked++
    if (++pending >= MARK_BATCH) {
      await txn.commit(true)
      txn = new Txn(kv)
      pending = 0
    }
  }
  while (a.done !== true || b.done !== true) {
    result.paths++
    const order = a.done === true ? 1 : b.done === true ? -1 : compareTreePaths(a.value[0], b.value[0])
    if (order < 0) {
      await mark((a.value as [string, Versions])[0])
      a = await snap.next()
    } else if (order > 0) {
      await mark((b.value as [string, Versions])[0])
      b = await live.next()
    } else {
      const [path, versions] = a.value as [string, Versions]
      if (!sameVersionSet(versions, (b.value as [string, Versions])[1])) await mark(path)
      a = await snap.next()
      b = await live.next()
    }
  }
  if (pending > 0) await txn.commit(true)
  return result
}
