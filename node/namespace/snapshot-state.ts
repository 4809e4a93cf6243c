/**
 * The namespace state as snapshots carry it: the conversions between the
 * replica's versions (tree.ts) and a snapshot's (protocol/namespace.ts),
 * the state-based merge of two replicas' versions of a path, the ops that
 * publish again what a snapshot left out without proof, and the errors of
 * a snapshot that fails its checks. Pure functions: snapshots.ts and
 * snapshot-load.ts do the reading and writing.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
import { equals } from 'multiformats/bytes'
import { encodeTreeEntry } from '../../protocol/snapshot-tree.js'
import type { Op, SnapshotVersion } from '../../protocol/namespace.js'
import { ShoalError } from '../errors.js'
import { covers, type Dot, type VectorClock } from './clock.js'
import type { TreeRoot } from './snapshot-tree.js'
import { storedPin, wirePin } from './pins.js'
import type { Version } from './tree.js'

/** A snapshot that failed its checks. */
export class InvalidSnapshotError extends ShoalError {
  override name = 'InvalidSnapshotError'
  override readonly status = 502
}

/** A snapshot signed by an author this replica does not trust: refused before its tree is fetched. */
export class UntrustedSnapshotError extends InvalidSnapshotError {
  override name = 'UntrustedSnapshotError'
}

/**
 * `m!snapshot`: this replica's latest snapshot, its tree's root, and every
 * block of it (its tree's nodes and its root: to delete those the next
 * snapshot no longer reaches; a store of an earlier build lists its shards
 * here and has no `tree`), and apart from them the author blocks its root
 * links (snapshot-authors.ts; none for an inline root).
 */
export interface SnapshotMeta { root: string, clock: VectorClock, blocks: string[], tree?: string, authors?: string[] }

/** What writing a snapshot's root takes (snapshots.ts `writeRoot`). */
export interface WriteRootOptions {
  tree: TreeRoot
  /** Every node of `tree` (the snapshot's block list). */
  blocks: Iterable<string>
  clock: VectorClock
  heads: Map<string, Dot>
  /** Blocks to delete too, unless `blocks` holds them (a merged peer's nodes that the new tree replaced). */
  drop?: Iterable<string>
}

/** Options of {@link mergeVersions} and {@link mergeStates}. */
export interface MergeOptions {
  /** Keep a version of `a` that `b` saw and does not hold when this says so (a version whose signed entry `a` holds). */
  keepA?: (v: Version) => boolean
  /** Called for each version kept by {@link keepA} alone. */
  keptA?: (path: string, v: Version) => void
}

function dotKey (v: { author: string, seq: number }): string { return `${v.author}\n${v.seq}` }

/**
 * State-based merge of one path's live versions on two replicas, each at
 * its clock: keep a version both hold, or one side holds and the other has
 * not seen (the merge of two observed-remove sets).
 */
export function mergeVersions (path: string, va: Version[], clockA: VectorClock, vb: Version[], clockB: VectorClock, options: MergeOptions = {}): Version[] {
  const inA = new Set(va.map(dotKey))
  const inB = new Set(vb.map(dotKey))
  const keep: Version[] = []
  for (const v of va) {
    if (inB.has(dotKey(v)) || !covers(clockB, [v.author, v.seq])) keep.push(v)
    else if (options.keepA?.(v) === true) {
      keep.push(v)
      options.keptA?.(path, v)
    }
  }
  for (const v of vb) if (!inA.has(dotKey(v)) && !covers(clockA, [v.author, v.seq])) keep.push(v)
  return keep
}

/** {@link mergeVersions} over whole states (every path of either side). */
export function mergeStates (a: Map<string, Version[]>, clockA: VectorClock, b: Map<string, Version[]>, clockB: VectorClock, options: MergeOptions = {}): Map<string, Version[]> {
  const out = new Map<string, Version[]>()
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const keep = mergeVersions(path, a.get(path) ?? [], clockA, b.get(path) ?? [], clockB, options)
    if (keep.length > 0) out.set(path, keep)
  }
  return out
}

/** True when both lists hold the same versions (a version is named by its dot). */
export function sameVersions (a: ReadonlyArray<{ author: string, seq: number }>, b: ReadonlyArray<{ author: string, seq: number }>): boolean {
  if (a.length !== b.length) return false
  const inA = new Set(a.map(dotKey))
  return b.every(v => inA.has(dotKey(v)))
}

/**
 * True when both lists hold the same versions, field for field, in any
 * order (the order of concurrent versions in a tree is the order its
 * replica applied them). State checks compare states with it.
 */
export function sameVersionSet (a: readonly SnapshotVersion[] | undefined, b: readonly SnapshotVersion[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  if (a.length !== b.length) return false
  if (a.length === 1) return sameSnapshotVersion(a[0], b[0])
  return a.every(x => b.some(y => sameSnapshotVersion(x, y)))
}

/** The same version, field for field. */
export function sameSnapshotVersion (x: SnapshotVersion, y: SnapshotVersion): boolean {
  if (x.author !== y.author || x.seq !== y.seq || x.time !== y.time || x.type !== y.type || x.mode !== y.mode || x.mtime !== y.mtime || x.size !== y.size) return false
  if ((x.cid === undefined) !== (y.cid === undefined) || (x.cid !== undefined && !x.cid.equals(y.cid))) return false
  if (x.pin === undefined || y.pin === undefined) return x.pin === y.pin
  return equals(encodeTreeEntry(['/x', [x]]), encodeTreeEntry(['/x', [y]]))
}

/**
 * Ops that publish again, as this replica's own writes, versions a snapshot
 * left out without proof: each replaces the old version with the same
 * content, mode and pin under a new dot, so every node shows it (next to a
 * version that replaced it meanwhile, as a conflict copy). One op per path
 * per list: versions sharing a path go to separate lists.
 */
export function republishOps (held: Array<[string, Version]>): Op[][] {
  const rounds: Array<Map<string, Op>> = []
  for (const [path, v] of held) {
    const replaces: Array<[string, number]> = [[v.author, v.seq]]
    const op: Op = v.type === 'dir'
      ? { op: 'mkdir', path, mode: v.mode, mtime: v.mtime, replaces }
      : { op: 'put', path, cid: CID.parse(v.cid as string), size: v.size ?? 0, mode: v.mode, mtime: v.mtime, replaces, ...(v.pin !== undefined ? { pin: wirePin(v.pin) } : {}) }
    let round = rounds.find(r => !r.has(path))
    if (round === undefined) { round = new Map(); rounds.push(round) }
    round.set(path, op)
  }
  return rounds.map(r => [...r.values()])
}

/** A live version as a snapshot carries it. */
export function toSnapshotVersion (v: Version): SnapshotVersion {
  if (v.type === 'dir') return { author: v.author, seq: v.seq, time: v.time, type: 'dir', mode: v.mode, mtime: v.mtime }
  const out: SnapshotVersion = { author: v.author, seq: v.seq, time: v.time, type: 'file', cid: CID.parse(v.cid as string), size: v.size ?? 0, mode: v.mode, mtime: v.mtime }
  if (v.pin !== undefined) out.pin = wirePin(v.pin)
  return out
}

/**
 * `cid.toString()` without its cache: `toString` keeps every CID's text in a
 * global WeakMap, which a load of a million fresh CIDs fills for the
 * collector to sweep (the same text: base32 of the bytes for a CIDv1).
 */
function cidText (cid: CID): string {
  return cid.version === 1 ? base32.encode(cid.bytes) : cid.toString()
}

/** A snapshot's version as the tree stores it. @throws {InvalidSnapshotError} for a file without a cid */
export function fromSnapshotVersion (v: SnapshotVersion): Version {
  if (v.type === 'dir') return { author: v.author, seq: v.seq, time: v.time, type: 'dir', mode: v.mode, mtime: v.mtime }
  if (v.cid === undefined) throw new InvalidSnapshotError(`snapshot version [${v.author}, ${v.seq}] is a file without a cid`)
  const out: Version = { author: v.author, seq: v.seq, time: v.time, type: 'file', cid: cidText(v.cid), size: v.size ?? 0, mode: v.mode, mtime: v.mtime }
  if (v.pin !== undefined) out.pin = storedPin(v.pin)
  return out
}
