/**
 * Repairs this replica's state where a state check (state-check.ts) found
 * it different from two peers that agree with each other and whose heads
 * are this replica's: the paths that differ take the peers' versions.
 *
 * Why it may: equal heads mean the three replicas applied the same entries,
 * so their states must be equal; when two agree and this one does not, its
 * rows are what changed (a disk that lost or damaged them, a bug). The
 * heads, the clock and the log are left as they are: only the derived rows
 * of those paths (`v!`, `t!`, `c!`, through tree.ts) are written again, and
 * marked dirty for the next snapshot.
 *
 * What it never does: remove a version whose signed entry this replica
 * still holds (its `s!` row). A write this node can prove stays, whatever
 * peers say (docs/namespace.md, "What a member can and cannot do"); such a
 * path is counted as kept and reported, not changed.
 *
 * @module
 */
import { equals } from 'multiformats/bytes'
import type { SnapshotVersion, headsDigest } from '../../protocol/namespace.js'
import { Txn } from './kv.js'
import { seqKey } from './rows.js'
import { fromSnapshotVersion, sameSnapshotVersion, toSnapshotVersion } from './snapshot-state.js'
import { TreeWriter, versionsKey, type PathState, type Version } from './tree.js'
import type { ReplicaStore } from './store.js'

/** One path to repair: the versions the agreeing peers hold there (none: the path is not in their state). */
export interface PathRepair {
  path: string
  versions?: SnapshotVersion[]
}

/** What {@link repairPaths} changed. */
export interface RepairResult {
  /** Paths whose rows were written again. */
  paths: number
  /** Versions added (the peers' that this replica lacked). */
  added: number
  /** Versions removed (this replica's that the peers lack, without a signed entry here). */
  removed: number
  /** Versions the peers lack that this replica kept: it holds their signed entries. */
  kept: number
}

/** What {@link repairPaths} works on. */
export interface StateRepairComponents {
  store: Pick<ReplicaStore, 'kv' | 'exclusive' | 'heads'>
  /** {@link headsDigest} of the heads and clock now (it must still be the one checked). */
  digest: () => Uint8Array
}

/**
 * Give each path of `repairs` the versions named, under the store's lock,
 * in one fsynced batch; nothing when the heads are no longer those of
 * `heads` (the state moved since the check: undefined).
 */
export async function repairPaths (components: StateRepairComponents, repairs: PathRepair[], heads: Uint8Array): Promise<RepairResult | undefined> {
  const { store } = components
  return await store.exclusive(async () => {
    if (!equals(components.digest(), heads)) return undefined
    const txn = new Txn(store.kv)
    const writer = new TreeWriter(txn)
    const result: RepairResult = { paths: 0, added: 0, removed: 0, kept: 0 }
    for (const { path, versions } of repairs) {
      const theirs = (versions ?? []).map(fromSnapshotVersion)
      const ours = (await txn.get<PathState>(versionsKey(path)))?.versions ?? []
      const drop: Version[] = []
      const kept = new Set<string>()
      for (const v of ours) {
        if (theirs.some(t => sameVersion(t, v))) continue
        if (await store.kv.get(seqKey(v.author, v.seq)) !== undefined) {
          result.kept++
          kept.add(`${v.author}\n${v.seq}`)
          continue
        }
        drop.push(v)
      }
      // a version of a kept dot is not replaced by the peers' other content for it
      const add = theirs.filter(t => !ours.some(v => sameVersion(t, v)) && !kept.has(`${t.author}\n${t.seq}`))
      if (drop.length === 0 && add.length === 0) continue
      result.paths++
      // a version of one dot with other content is dropped, then added as the peers hold it
      await writer.change(path, drop.map(v => [v.author, v.seq]))
      for (const v of add) await writer.change(path, [[v.author, v.seq]], v)
      result.removed += drop.length
      result.added += add.length
    }
    if (result.paths > 0) await txn.commit(true)
    return result
  })
}

/** The same version, field for field, as a snapshot tree holds it. */
function sameVersion (a: Version, b: Version): boolean {
  return a.author === b.author && a.seq === b.seq && sameSnapshotVersion(toSnapshotVersion(a), toSnapshotVersion(b))
}
