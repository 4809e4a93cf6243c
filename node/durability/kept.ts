/**
 * What this node keeps, as one walk: every block a visible file, a coded
 * pin, a shard held here or a peer's reservation needs here, told to a
 * visitor with the CID that names it (the codec its DAG or its record
 * gives, never a guess from the multihash) and the file it belongs to. Garbage collection marks from it (gc.ts: what the walk does
 * not visit is swept); the scrub asks it which of the blocks it found
 * corrupt anyone still wants, and whose they are (scrubber.ts).
 *
 * The rules (gc.ts states them for the collection):
 * - every block of a visible file without a coded pin nor cold copy, as far
 *   as it is held here (a missing inner node ends only its own branch);
 * - of a file kept only in the cold tier: its skeleton;
 * - of a file with a coded pin: its manifest, its skeleton, the shards this
 *   node holds for it and, on the node that encoded it, everything until
 *   placement is confirmed;
 * - shards held for a manifest no visible file refers to, for the grace
 *   period from the first walk that found it so (no path: its pin may still
 *   be arriving, or the file come back from a peer that moved it);
 * - blocks a peer reserved, until the reservation ends (no path).
 *
 * Reads the local store only, never the network. A node held here that
 * cannot be read (its record fails its check, its pack is gone, a read
 * error) ends its branch as an absent one does, but the walk names it
 * (`unreadable`): the blocks below it are still wanted and cannot be told,
 * so what the walk did not visit is not all garbage.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import * as dagPb from '@ipld/dag-pb'
import { decodeManifestPage, decodeManifestRoot, type ManifestRoot } from '../../protocol/durability.js'
import { AbortedError } from '../errors.js'
import type { BlockStore } from '../blocks/index.js'
import type { Holdings, ManifestRecord } from './holdings.js'
import type { Entry } from '../namespace/index.js'
import { referenceChanges, type ReferenceChanges } from './live-manifests.js'
import { SETTLED_REMOVAL, type RemovalWalk } from './removal-clocks.js'

/** Where the walk reads from. */
export interface KeptSources {
  /** Read locally only: an absent block ends its branch. */
  blockstore: Pick<BlockStore, 'getBytes'>
  holdings: Pick<Holdings, 'manifests' | 'held' | 'reservations'>
  /** Every visible file now. */
  files: () => AsyncIterable<Entry>
}

/** Options of {@link walkKept}. */
export interface KeptOptions {
  /** Now (ms): grace periods and reservations are measured from it. */
  now: number
  /** How long shards of a manifest no visible file refers to are kept. */
  graceMs: number
  signal?: AbortSignal
  /** Told how many files were walked, after each file. */
  onFile?: (files: number) => void
  /**
   * The removals' side of this walk (removal-clocks.ts, begun before it):
   * whether a manifest unreferenced since a time (ms) is settled, and
   * whether its record's mark stands. Absent: every removal is settled and
   * every mark stands.
   */
  removals?: Pick<RemovalWalk, 'settled' | 'stands'>
}

/** A visible file, as the walk names it. */
export interface KeptFile {
  path: string
  /** Its root CID. */
  cid: string
}

/**
 * Told of each block kept: its CID, and a visible file it belongs to
 * (undefined for a shard of a pin not known here yet and for a peer's
 * reservation). A block of several files is told once per file walked (a
 * manifest's blocks once, with one of its files).
 */
export type KeepVisitor = (cid: CID, file: KeptFile | undefined) => void

/**
 * What the walk found besides the blocks it told. Its {@link ReferenceChanges}
 * are the manifests whose reference state changed: a collection records them.
 */
export interface KeptWalk extends ReferenceChanges {
  /** Files walked. */
  files: number
  /**
   * Manifests no visible file has referred to for the grace period: found so
   * by a walk longer ago than that ({@link ManifestRecord.unreferencedSince})
   * and by this one. Not walked (a collection forgets them).
   */
  orphans: string[]
  /** Manifests no visible file refers to, kept for the rest of their grace period (those of `unreferenced` included), or until their removal is settled (`unsettled`). */
  waiting: number
  /** Of `waiting`: manifests past their grace period kept because an active member may not have seen their removal (removal-clocks.ts). */
  unsettled: number
  /** The members those wait for (peer ids, each once). */
  waitingOn: string[]
  /** Reservations whose time is over, CIDs by peer: not kept (a collection ends them). */
  expired: Map<string, string[]>
  /**
   * Nodes (DAG nodes, manifests, manifest pages) the walk needed to read
   * and that are held here but could not be read: the blocks below them
   * were not visited, and may be here.
   */
  unreadable: CID[]
}

/** Walk every block this node keeps; see the module comment. Changes nothing. */
export async function walkKept (sources: KeptSources, keep: KeepVisitor, options: KeptOptions): Promise<KeptWalk> {
  const { holdings } = sources
  const { now, graceMs, signal } = options
  const unreadable: CID[] = []
  const blockstore = localReader(sources.blockstore, unreadable)
  // striped files: manifest → root and file, walked once below whether or not shards are held here
  const live = new Map<string, { root: CID, file: KeptFile }>()
  let files = 0
  for await (const entry of sources.files()) {
    if (signal?.aborted === true) throw new AbortedError('walk of the kept blocks aborted')
    if (entry.type !== 'file') continue
    options.onFile?.(++files)
    const root = CID.parse(entry.cid)
    const file: KeptFile = { path: entry.path, cid: entry.cid }
    // a file kept only in the cold tier keeps its skeleton here; its leaves are read from the tier
    if (entry.pin?.manifest === undefined) await walkDag(blockstore, root, cid => { keep(cid, file) }, entry.pin?.cold === undefined)
    else live.set(entry.pin.manifest, { root, file })
  }
  const orphans: string[] = []
  const referenced = new Set(live.keys())
  let waiting = 0
  let unsettled = 0
  const waitingOn = new Set<string>()
  // read first: a collection forgets orphans once the walk is over
  const records: Array<[string, ManifestRecord]> = []
  for await (const entry of holdings.manifests()) records.push(entry)
  for (const [manifest, record] of records) {
    if (signal?.aborted === true) throw new AbortedError('walk of the kept blocks aborted')
    const file = live.get(manifest)?.file
    if (file === undefined) {
      // the grace runs from when a walk first found no file referring to it (a remove, an overwrite, a `pin rm`), not
      // from when it was first held: a file moved on another node while it was removed here comes back later
      const since = record.unreferencedSince
      if (since !== undefined && now - since > graceMs && now - record.since > graceMs) {
        // and no change made before its removal was seen everywhere can still bring it back
        const state = options.removals?.settled(manifest, since) ?? SETTLED_REMOVAL
        if (state.settled) { orphans.push(manifest); continue }
        unsettled++
        for (const peer of state.waitingOn) waitingOn.add(peer)
      }
      waiting++
    }
    const of = (cid: CID): void => { keep(cid, file) }
    // not placed yet: the encoder keeps everything
    const unplaced = record.role === 'origin' && record.placed === undefined
    await walkSkeletonAndManifest(blockstore, CID.parse(record.root), CID.parse(manifest), of, unplaced)
    for await (const held of holdings.held(manifest)) of(CID.parse(held.cid))
    live.delete(manifest)
  }
  for (const [manifest, { root, file }] of live) await walkSkeletonAndManifest(blockstore, root, CID.parse(manifest), cid => { keep(cid, file) })
  // blocks a peer reserved for a placement still under way are kept until the reservation ends
  const expired = new Map<string, string[]>()
  for await (const r of holdings.reservations()) {
    if (r.until > now) { keep(CID.parse(r.cid), undefined); continue }
    const list = expired.get(r.peer) ?? []
    list.push(r.cid)
    expired.set(r.peer, list)
  }
  return { files, orphans, ...referenceChanges(records, m => referenced.has(m), options.removals?.stands), waiting, unsettled, waitingOn: [...waitingOn], expired, unreadable }
}

/** Reads blocks held here only, never the network: undefined when absent or unreadable (which ends a branch). */
interface LocalGetter {
  tryGet: (cid: CID) => Promise<Uint8Array | undefined>
}

/** A {@link LocalGetter} over `local` that adds to `unreadable` each block held here that fails to read. */
function localReader (local: Pick<BlockStore, 'getBytes'>, unreadable: CID[]): LocalGetter {
  return {
    tryGet: async cid => {
      try {
        return await local.getBytes(cid)
      } catch (err: any) {
        if (err?.name !== 'NotFoundError') unreadable.push(cid)
        return undefined
      }
    }
  }
}

/**
 * Visit the DAG under `root`: every dag-pb node held here and every link of
 * it, held or not (raw leaves are visited without being read; `leaves`
 * false skips them). A missing node ends only its own branch.
 */
async function walkDag (local: LocalGetter, root: CID, keep: (cid: CID) => void, leaves = true): Promise<void> {
  const stack: CID[] = [root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    if (cid.code !== dagPb.code) { if (leaves) keep(cid); continue }
    keep(cid)
    const bytes = await local.tryGet(cid)
    if (bytes === undefined) continue
    let node: dagPb.PBNode
    try { node = dagPb.decode(bytes) } catch { continue }
    for (const link of node.Links) stack.push(link.Hash)
  }
}

/** Visit the skeleton of `root` and the manifest's blocks; `whole` visits the leaves and parity shards too. */
async function walkSkeletonAndManifest (local: LocalGetter, root: CID, manifest: CID, keep: (cid: CID) => void, whole = false): Promise<void> {
  await walkDag(local, root, keep, whole)
  keep(manifest)
  const bytes = await local.tryGet(manifest)
  if (bytes === undefined) return
  let mroot: ManifestRoot
  try { mroot = decodeManifestRoot(bytes) } catch { return }
  for (const page of mroot.pages) {
    keep(page)
    if (!whole) continue
    const pageBytes = await local.tryGet(page)
    if (pageBytes === undefined) continue
    try {
      for (const stripe of decodeManifestPage(pageBytes, mroot.k, mroot.m).stripes) for (const p of stripe.parity) keep(p)
    } catch {}
  }
}
