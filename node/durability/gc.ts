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
 * What is kept (the marks; kept.ts walks them, and the scrub asks the same
 * walk which corrupt blocks are still wanted):
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
 *   shards held here are not known until they are looked up again;
 * - while a node the marks need is held here but cannot be read (a file's
 *   inner node failing its check, its pack gone), every block: the blocks
 *   below it are still wanted, and the walk cannot tell which they are.
 *
 * Memory: the marks are a Bloom filter (mark-set.ts) sized from the store's
 * block count (one pass over the index first), 2 bytes a block outside the
 * JS heap; the sweep streams the store's index. Neither grows the heap with
 * the store. A false positive keeps a garbage block until a later collection
 * (fresh seeds each run); no marked block is ever swept.
 *
 * @module
 */
import type { BlockStore } from '../blocks/index.js'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { walkKept } from './kept.js'
import { noteReferences } from './live-manifests.js'
import type { RemovalClocks } from './removal-clocks.js'
import { MarkSet } from './mark-set.js'
import { recovering } from './reclaim.js'
import type { Holdings } from './holdings.js'
import type { Entry, WallClock } from '../namespace/index.js'
import type { Logger } from '../logger.js'

/** A shared/exclusive lock: many writers, or one collection starting. */
export class GcLock {
  private writers = 0
  private collecting?: Promise<void>
  private drained?: () => void
  private collections = 0
  private running = 0

  /**
   * Bumped when a collection begins and when it ends: blocks stored here
   * before it that no file needs (directory nodes built on demand) may be
   * gone after it, so what was remembered about them must be looked at again.
   */
  get generation (): number { return this.collections }

  /** Whether a collection is under way (between its start and its end). */
  get inCollection (): boolean { return this.running > 0 }

  /** Told by a collection at its start and at its end ({@link generation}). */
  began (): void { this.running++; this.collections++ }
  ended (): void { this.running--; this.collections++ }

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
  /** The namespace clocks of removals (removal-clocks.ts). Absent: the grace period alone decides when a removed file's shards go. */
  removals?: Pick<RemovalClocks, 'beginWalk'>
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

/** Unreadable nodes a collection names in its warning at most. */
const UNREADABLE_LOGGED = 16

/** What a collection did. */
export interface GcResult {
  /**
   * Blocks marked to keep: those the walk visited (held here or not),
   * counted by the marks' Bloom filter, so a few may be missing from the
   * count (at most its false-positive share, mark-set.ts).
   */
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
  /**
   * Unmarked blocks kept because a node the marks need is held here and
   * cannot be read (a DAG node, manifest or manifest page that fails its
   * check or whose pack is gone): the blocks below it are not known, so
   * none is removed until a put or fetch replaces it or its file is removed.
   */
  keptUnreadable: number
  /** Manifests forgotten (no file has referred to them for the grace period). */
  forgotten: number
  /**
   * Manifests no visible file refers to whose shards are kept for the rest
   * of their grace period, counted from the first collection that found them
   * so (this one, for those just removed): a later collection forgets them.
   */
  keptUnreferenced: number
  /**
   * Of `keptUnreferenced`: manifests past their grace period kept because
   * an active member of the namespace may not have seen the removal yet, or
   * has writes not yet here (a change it made before it saw the removal may
   * bring the file back; removal-clocks.ts).
   */
  keptUnsettled: number
  /** The members those wait for (peer ids). */
  waitingOn: string[]
  /** The grace period (ms) those are kept for. */
  graceMs: number
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
 * to keep), sweeping (blocks of the store checked, of the `total` counted
 * when the collection began, growing past it with blocks put meanwhile; the
 * last event's total is the blocks checked; and how many were removed), then compacting (removed blocks' space given back:
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
  const watch = await lock.exclusive(async () => { lock.began(); return blockstore.watchPuts() })
  try {
    const sizeBefore = await blockstore.approximateSize()
    const now = components.clock?.now() ?? Date.now()
    // read before the marks: shards a recovery holds again while they are read are not marked (a recovery begins only at start)
    const keepAll = recovering(await holdings.recovery(), now)
    // the marks: a Bloom filter sized from the store's block count (mark-set.ts), not a set of keys
    const stored = await countBlocks(blockstore, signal)
    const marks = new MarkSet({ blocks: stored })
    // who has seen what, read before the walk of the visible files: the walk then sees every change this counted on
    const removals = components.removals?.beginWalk()
    const walk = await walkKept({ blockstore, holdings, files: components.files }, cid => { marks.add(cid) }, {
      now,
      graceMs,
      signal,
      removals,
      onFile: files => { if (files % GC_PROGRESS_EVERY === 0) report({ step: 'mark', files, marked: marks.size }) }
    })
    const files = walk.files
    // the blocks below a node that cannot be read are not marked, and cannot be told from garbage
    const incomplete = walk.unreadable.length > 0
    // manifests no visible file refers to, past their grace period: their shards are not kept
    for (const manifest of walk.orphans) await holdings.forget(manifest)
    const forgotten = walk.orphans.length
    // the grace of a manifest no file refers to runs from now; one referred to again is kept as any other
    await noteReferences(walk, { holdings, now, removals })
    const keptUnreferenced = walk.waiting
    const { unsettled: keptUnsettled, waitingOn } = walk
    // reservations past their end are ended here, and their blocks go unless a hold took them
    for (const [peer, cids] of walk.expired) await holdings.endReservations(peer, cids)
    const marked = marks.size
    report({ step: 'mark', files, marked })

    let removed = 0
    let keptNew = 0
    let keptRecovering = 0
    let keptUnreadable = 0
    let checked = 0
    // every block of the store, streamed: what the marks have is kept (a few garbage blocks with them, see mark-set.ts)
    let total = stored
    report({ step: 'sweep', checked, total, removed })
    let reported = 0
    for await (const cid of blockstore.cids()) {
      checked++
      // blocks put since the count: the total grows with them
      total = Math.max(total, checked)
      if (!marks.has(cid)) {
        // put since the collection began (even after the scan saw it): kept
        if (watch.seen(cid)) keptNew++
        else if (keepAll) keptRecovering++
        else if (incomplete) keptUnreadable++
        else {
          await blockstore.delete(cid)
          removed++
        }
      }
      if (checked % GC_PROGRESS_EVERY === 0) { report({ step: 'sweep', checked, total, removed }); reported = checked }
    }
    await blockstore.commit()
    // the last event's total is what the sweep found (blocks deleted by others since the count are not in it)
    if (checked > 0 && (reported !== checked || total !== checked)) report({ step: 'sweep', checked, total: checked, removed })
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
    if (incomplete) {
      logger.warn({ keptUnreadable, unreadable: walk.unreadable.slice(0, UNREADABLE_LOGGED).map(String), unreadableCount: walk.unreadable.length }, 'garbage collection removed no unmarked block: nodes of files here cannot be read (the blocks below them are not known); shoal repair --scrub fetches them again, or reports them lost')
    }
    logger.info({ marked, markBytes: marks.byteLength, markFalsePositive: marks.falsePositiveRate(), removed, keptNew, keptRecovering, keptUnreadable, forgotten, keptUnreferenced, keptUnsettled, waitingOn, freedBytes, pendingBytes }, 'garbage collected')
    return { marked, removed, keptNew, keptRecovering, keptUnreadable, forgotten, keptUnreferenced, keptUnsettled, waitingOn, graceMs, freedBytes, pendingBytes }
  } finally {
    watch.stop()
    lock.ended()
  }
}

/** Blocks in the store now (one pass over its index, no values read): what the marks are sized from and the sweep's total. */
async function countBlocks (blockstore: Pick<BlockStore, 'cids'>, signal?: AbortSignal): Promise<number> {
  let n = 0
  for await (const _ of blockstore.cids({ signal })) n++ // eslint-disable-line @typescript-eslint/no-unused-vars
  return n
}
