/**
 * Garbage collection of the block store: mark what this node must keep,
 * sweep the rest. Safe under concurrent writes:
 *
 * - writers (imports, encodes) hold the GC lock shared for their whole
 *   write, up to the namespace commit; a collection takes it exclusively
 *   only to start watching puts, so it waits for writes in flight and every
 *   later write is seen;
 * - every block put while the collection runs (new writes, fetched blocks,
 *   shards peers push) is kept; the next collection decides about them.
 *
 * What is kept (the marks):
 * - every block of a visible file (conflict copies included) without a
 *   coded pin (`none`, `replicas:1`, no pin) nor cold copy, as far as it is held here;
 * - of a file kept only in the cold tier (policy `none` with a cold copy):
 *   its skeleton; its leaves are read back from the tier (docs/tier.md);
 * - of a file with a coded pin: its manifest, its skeleton (non-leaf DAG
 *   nodes), the shards this node holds for it, and, on the node that
 *   encoded it, everything until placement is confirmed;
 * - shards held for a manifest no visible file refers to, for the grace
 *   period (its pin may still be arriving through the namespace);
 * - blocks a peer reserved (a placement streamed during its add) until the
 *   reservation ends; expired reservations are ended here, and their blocks
 *   go unless a hold took them;
 * - while the holdings store recovers (it was created anew in a repo whose
 *   block store has blocks: node/durability/reclaim.ts), every block: the
 *   shards held here are not known until they are looked up again.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import * as dagPb from '@ipld/dag-pb'
import { decodeManifestPage, decodeManifestRoot, type ManifestRoot } from '../../protocol/durability.js'
import { blockKey, type BlockStore } from '../blocks/index.js'
import { AbortedError } from '../errors.js'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import type { Holdings, ManifestRecord } from './holdings.js'
import { recovering } from './reclaim.js'
import type { Entry, WallClock } from '../namespace/index.js'
import type { Logger } from '../logger.js'

/** A shared/exclusive lock: many writers, or one collection starting. */
export class GcLock {
  private writers = 0
  private collecting?: Promise<void>
  private drained?: () => void

  /** Run `fn` as a writer: it waits while a collection is starting. */
  async shared<T> (fn: () => Promise<T>): Promise<T> {
    while (this.collecting !== undefined) await this.collecting
    this.writers++
    try {
      return await fn()
    } finally {
      this.writers--
      if (this.writers === 0) this.drained?.()
    }
  }

  /** Run `fn` with no writer in flight; new writers wait until it returns. */
  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    while (this.collecting !== undefined) await this.collecting
    let release!: () => void
    this.collecting = new Promise<void>(resolve => { release = resolve })
    try {
      if (this.writers > 0) await new Promise<void>(resolve => { this.drained = resolve })
      this.drained = undefined
      return await fn()
    } finally {
      this.collecting = undefined
      release()
    }
  }
}

/** What a collection needs. */
export interface GcComponents {
  blockstore: BlockStore
  holdings: Holdings
  /** Every visible file now. */
  files: () => AsyncIterable<Entry>
  lock: GcLock
  logger: Logger
  /** Time of the grace period. @default the real clock */
  clock?: WallClock
}

/**
 * The live share under which garbage collection rewrites a pack before it
 * returns: a pack at least a fifth dead. A rewrite copies a pack's live
 * records, so this bounds what a collection copies to four times what it
 * gives back; what it leaves in packs more live than that is its result's
 * `pendingBytes`, given back once the background compaction's bound
 * (`compactBelow`, half) is reached.
 */
export const GC_COMPACT_BELOW = 0.8

/** What a collection did. */
export interface GcResult {
  /** Blocks kept by the marks. */
  marked: number
  /** Blocks removed. */
  removed: number
  /** Blocks put while it ran (kept). */
  keptNew: number
  /**
   * Unmarked blocks kept because the holdings store recovers: the shards
   * held here are being looked up again in the block store (a store moved
   * aside after damage; docs/durability.md, "A holdings store moved aside").
   */
  keptRecovering: number
  /** Manifests forgotten (no file refers to them any more). */
  forgotten: number
  /** Bytes the block store shrank by (removed blocks' space given back by compaction) before the collection returned. */
  freedBytes: number
  /**
   * Bytes of removed blocks still on disk when it returned, given back by a
   * later compaction: those in packs less than a fifth dead (rewriting them
   * would copy over four times what it gives back; see `GC_COMPACT_BELOW`),
   * and any a compaction could not rewrite (no room on the disk to copy a
   * pack's live records, a write to it uncommitted, the collection aborted,
   * or the compaction failed).
   */
  pendingBytes: number
}

/**
 * Where a collection stands: marking (files walked so far and blocks marked
 * to keep), sweeping (unmarked blocks checked of all there are, and how many
 * of them were removed), then compacting (removed blocks' space given back:
 * every pack holding a dead record is rewritten; only when there is one, no
 * counts).
 */
export type GcProgress =
  | { step: 'mark', files: number, marked: number }
  | { step: 'sweep', checked: number, total: number, removed: number }
  | { step: 'compact' }

/**
 * Progress of a collection: told every {@link GC_PROGRESS_EVERY} files marked
 * or blocks swept, and at the end of each step (the sweep's last event has
 * its totals; marking's last event comes after the manifests are marked too).
 */
export type GcProgressEvents = ProgressEvent<'shoal:durability:gc', GcProgress>

/** Files marked, or blocks swept, between two progress events of a collection. */
export const GC_PROGRESS_EVERY = 256

/** Options of {@link collectGarbage}. */
export interface GcOptions extends ProgressOptions<GcProgressEvents> {
  signal?: AbortSignal
}

/** Run one collection. `graceMs`: how long orphaned holdings are kept. */
export async function collectGarbage (components: GcComponents, graceMs: number, options: GcOptions = {}): Promise<GcResult> {
  const { signal, onProgress } = options
  const report = (progress: GcProgress): void => { onProgress?.(new CustomProgressEvent('shoal:durability:gc', progress)) }
  const { blockstore, holdings, lock, logger } = components
  const watch = await lock.exclusive(async () => blockstore.watchPuts())
  const sizeBefore = await blockstore.approximateSize()
  try {
    // read before the marks: shards a recovery holds again while they are read are not marked (a recovery begins only at start)
    const keepAll = recovering(await holdings.recovery(), components.clock?.now() ?? Date.now())
    const marks = new Set<string>()
    const mark = (cid: CID): void => { marks.add(blockKey(cid)) }
    // striped files: manifest → root, marked once below whether or not shards are held here
    const live = new Map<string, CID>()
    let files = 0
    for await (const entry of components.files()) {
      if (signal?.aborted === true) throw new AbortedError('garbage collection aborted')
      if (entry.type !== 'file') continue
      if (++files % GC_PROGRESS_EVERY === 0) report({ step: 'mark', files, marked: marks.size })
      const root = CID.parse(entry.cid)
      // a file kept only in the cold tier keeps its skeleton here; its leaves are read from the tier
      if (entry.pin?.manifest === undefined) await markDag(blockstore, root, mark, entry.pin?.cold === undefined)
      else live.set(entry.pin.manifest, root)
    }
    let forgotten = 0
    const now = components.clock?.now() ?? Date.now()
    // read first: forgetting changes the store being iterated
    const records: Array<[string, ManifestRecord]> = []
    for await (const entry of holdings.manifests()) records.push(entry)
    for (const [manifest, record] of records) {
      if (!live.has(manifest) && now - record.since > graceMs) {
        await holdings.forget(manifest)
        forgotten++
        continue
      }
      // not placed yet: the encoder keeps everything
      const unplaced = record.role === 'origin' && record.placed === undefined
      await markSkeletonAndManifest(blockstore, CID.parse(record.root), CID.parse(manifest), mark, unplaced)
      for await (const held of holdings.held(manifest)) marks.add(blockKey(CID.parse(held.cid)))
      live.delete(manifest)
    }
    for (const [manifest, root] of live) await markSkeletonAndManifest(blockstore, root, CID.parse(manifest), mark)
    // blocks a peer reserved for a placement still under way are kept until the reservation ends; then it ends here
    const expired = new Map<string, string[]>()
    for await (const r of holdings.reservations()) {
      if (r.until > now) { marks.add(blockKey(CID.parse(r.cid))); continue }
      const list = expired.get(r.peer) ?? []
      list.push(r.cid)
      expired.set(r.peer, list)
    }
    for (const [peer, cids] of expired) await holdings.endReservations(peer, cids)
    report({ step: 'mark', files, marked: marks.size })

    const unmarked: CID[] = []
    for await (const cid of blockstore.cids()) if (!marks.has(blockKey(cid))) unmarked.push(cid)
    let removed = 0
    let keptNew = 0
    let keptRecovering = 0
    let checked = 0
    const total = unmarked.length
    report({ step: 'sweep', checked, total, removed })
    for (const cid of unmarked) {
      checked++
      // put since the collection began (even after the scan saw it): kept
      if (watch.seen(cid)) keptNew++
      else if (keepAll) keptRecovering++
      else {
        await blockstore.delete(cid)
        removed++
      }
      if (checked % GC_PROGRESS_EVERY === 0 && checked < total) report({ step: 'sweep', checked, total, removed })
    }
    await blockstore.commit()
    if (total > 0) report({ step: 'sweep', checked, total, removed })
    // `shoal gc` gives the space back before it returns: every pack at least
    // a fifth dead is rewritten now (the background compaction waits for packs
    // to be half dead); what is left in packs more live is `pendingBytes`
    if (removed > 0 || (blockstore.deadBytes?.() ?? 0) > 0) {
      report({ step: 'compact' })
      try {
        await blockstore.compact?.({ signal, liveBelow: GC_COMPACT_BELOW })
      } catch (err: any) {
        // the removals stand; the space comes back at a later compaction
        logger.warn({ err: err?.message }, 'compaction after garbage collection failed')
      }
    }
    const freedBytes = Math.max(0, sizeBefore - await blockstore.approximateSize())
    const pendingBytes = blockstore.deadBytes?.() ?? 0
    if (keptRecovering > 0) logger.warn({ keptRecovering }, 'garbage collection removed no unmarked block: the holdings store recovers (the shards held here are looked up again in the block store)')
    logger.info({ marked: marks.size, removed, keptNew, keptRecovering, forgotten, freedBytes, pendingBytes }, 'garbage collected')
    return { marked: marks.size, removed, keptNew, keptRecovering, forgotten, freedBytes, pendingBytes }
  } finally {
    watch.stop()
  }
}

/** Reads blocks held here only (absent blocks end a branch). */
type LocalGetter = Pick<BlockStore, 'getBytes'>

/** The block if held here, else undefined (never the network). */
async function tryGet (local: LocalGetter, cid: CID): Promise<Uint8Array | undefined> {
  try { return await local.getBytes(cid) } catch { return undefined }
}

/**
 * Mark the DAG under `root`: every dag-pb node held here and every link of
 * it, held or not (raw leaves are marked without being read). A missing node
 * ends only its own branch.
 */
async function markDag (local: LocalGetter, root: CID, mark: (cid: CID) => void, leaves = true): Promise<void> {
  const stack: CID[] = [root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    if (cid.code !== dagPb.code) { if (leaves) mark(cid); continue }
    mark(cid)
    const bytes = await tryGet(local, cid)
    if (bytes === undefined) continue
    let node: dagPb.PBNode
    try { node = dagPb.decode(bytes) } catch { continue }
    for (const link of node.Links) stack.push(link.Hash)
  }
}

/** Mark the skeleton of `root` and the manifest's blocks; `whole` marks the leaves and parity shards too. */
async function markSkeletonAndManifest (local: LocalGetter, root: CID, manifest: CID, mark: (cid: CID) => void, whole = false): Promise<void> {
  await markDag(local, root, mark, whole)
  mark(manifest)
  const bytes = await tryGet(local, manifest)
  if (bytes === undefined) return
  let mroot: ManifestRoot
  try { mroot = decodeManifestRoot(bytes) } catch { return }
  for (const page of mroot.pages) {
    mark(page)
    if (!whole) continue
    const pageBytes = await tryGet(local, page)
    if (pageBytes === undefined) continue
    try {
      for (const stripe of decodeManifestPage(pageBytes, mroot.k, mroot.m).stripes) for (const p of stripe.parity) mark(p)
    } catch {}
  }
}

