/**
 * Removals every member has seen: what garbage collection asks before it
 * drops the shards of a striped file no longer in the namespace.
 *
 * **Why.** A file removed here may come back: a node cut off from the others
 * moved it (or wrote it again) before it heard of the removal, and once that
 * node is back the namespace keeps its change (no concurrent write is lost).
 * The grace period (`durability.grace`, 10 min) alone bounded how late such a
 * change could arrive; a partition longer than that, with a collection on
 * either side, lost the file for good. Now the shards are also kept until no
 * such change can still arrive: every active member (namespace compaction's
 * members, heard from within `namespace.memberTimeout`, 7 days) has seen the
 * removal, and this node has applied every write each of them had made when
 * it was last heard from. A change concurrent with the removal was made by
 * its author before the author saw the removal, so it is among those writes.
 *
 * **The mechanism.** A repair pass or a collection begins its walk of the
 * visible files with {@link RemovalClocks.beginWalk}: who has seen what is
 * read then, before any file, so that the walk sees every change that
 * reading counted on. A walk that finds a manifest unreferenced records the
 * time ({@link ManifestRecord.unreferencedSince}) and, here, a **mark**: the
 * namespace's clock read after the walk ({@link RemovalWalk.mark}), under
 * which is every removal the walk missed the file for. The marks are kept in
 * memory, at most {@link MAX_REMOVAL_MARKS} (each as what changed since the
 * one before), each at a later time than the one before, so that a record
 * names its own (a walk that finds the state as the last mark left it,
 * nothing told since, reuses that mark and its time). A record whose mark
 * was dropped, or of a run before a restart, has none.
 *
 * A mark stands for a manifest only while no file referring to it appeared
 * after the mark's walk began: such a file, removed again before the next
 * walk, was removed under no mark. The replica tells of every file or
 * conflict copy a committed batch shows pinned to a manifest
 * ({@link RemovalClocks.referenced}, through `Replica.onReferences`), and of
 * a snapshot merged or tried, or paths repaired, after which any file may
 * have appeared ({@link RemovalClocks.referencedAny});
 * the last reference told of each manifest is kept, at most
 * {@link MAX_TOLD_REFERENCES} (beyond, those told before every mark's walk
 * began are forgotten, and if that is not room enough every mark goes
 * stale). A record whose mark does not stand, or that has none, is marked
 * again by the walk: its grace period starts over.
 *
 * **When it applies.** Only with a namespace given (`components.namespace`,
 * the node's replica). Without one (the durability simulations), the grace
 * period alone decides, as before. A member silent for longer than the
 * member timeout, or forgotten here (`peers forget`: its node is gone for
 * good), no longer holds anything back, as for compaction; nor does
 * any member once a manifest has been unreferenced for that long (a member
 * that does not trust an author of the mark never covers it).
 *
 * **What it does not cover.** A member that does not trust the remover never
 * applies the removal, though its pulls name it. A member's heard clock
 * includes the page of history it asked for ahead, before it applied it.
 * Each is a window in which a change concurrent with the removal can still
 * come after the shards went; docs/durability.md lists them.
 *
 * @module
 */
import { dominates, type VectorClock } from '../namespace/clock.js'
import type { WallClock } from '../namespace/index.js'
import type { NamespaceClocks } from './components.js'

/** Namespace clocks kept for the grace periods running at once; beyond, the oldest goes (its records are marked again). */
export const MAX_REMOVAL_MARKS = 64

/** Whether the removals under a mark are settled, and who they wait for if not. */
export type RemovalState =
  | { settled: true }
  | { settled: false, /** Active members that have not seen the removal, or whose latest writes are not all here. */ waitingOn: string[] }

/** What {@link RemovalClocks} is built from. */
export interface RemovalClocksComponents {
  /** Absent: every removal counts as settled (the grace period alone decides). */
  namespace?: NamespaceClocks
  clock: WallClock
}

/**
 * One mark: the namespace's clock after a walk that found manifests
 * unreferenced, at `at` (ms); the walk began at reference `walkStart`. The
 * clock is kept as what changed since the mark before (`diff`; the oldest
 * mark's is whole): a clock names every author, and marks share most of it.
 */
interface Mark { at: number, diff: VectorClock, walkStart: number }

/** A removal every active member has seen (or no namespace to ask). */
export const SETTLED_REMOVAL: RemovalState = { settled: true }

/** References told at most, by manifest; beyond, every mark made before is taken as stale. */
export const MAX_TOLD_REFERENCES = 65_536

/**
 * One walk of the visible files (a repair pass's or a collection's), begun
 * with {@link RemovalClocks.beginWalk} before the walk reads any file.
 */
export interface RemovalWalk {
  /**
   * Whether the removal of `manifest`, no visible file referring to it since
   * `since` (ms), is settled, by who had seen what when the walk began.
   */
  settled: (manifest: string, since: number) => RemovalState
  /**
   * Whether the mark of `manifest`'s record, unreferenced since `since`,
   * stands: there is one, and no file referring to `manifest` was told of
   * since the walk it was made after began. A record whose mark does not
   * stand is marked again (its grace period starts over).
   */
  stands: (manifest: string, since: number) => boolean
  /** Note the namespace's clock now, after this walk found manifests unreferenced; the time to record as their `unreferencedSince`. */
  mark: () => number
}

/** The namespace clocks of the removals whose shards this node keeps; see the module comment. */
export class RemovalClocks {
  private readonly components: RemovalClocksComponents
  /** Oldest first; `at` grows. */
  private readonly marks: Mark[] = []
  /** The newest mark's whole clock. */
  private latest?: VectorClock
  /** References told so far (a running count). */
  private told = 0
  /** The count at the last reference told of each manifest. */
  private readonly lastTold = new Map<string, number>()
  /** Every manifest counts as told at least this late (a snapshot merged, the map full). */
  private toldFloor = 0

  constructor (components: RemovalClocksComponents) {
    this.components = components
  }

  /** A visible file may now refer to `manifest` (a committed batch shows a file or conflict copy pinned to it). */
  referenced (manifest: string): void {
    this.told++
    if (this.lastTold.size >= MAX_TOLD_REFERENCES && !this.lastTold.has(manifest)) {
      // references told before every mark's walk began can make none stale
      const oldest = this.marks.reduce((min, m) => Math.min(min, m.walkStart), this.told)
      for (const [m, at] of this.lastTold) if (at <= oldest) this.lastTold.delete(m)
      if (this.lastTold.size >= MAX_TOLD_REFERENCES) { this.referencedAny(); return }
    }
    this.lastTold.set(manifest, this.told)
  }

  /** Any manifest may now be referred to by a visible file (a snapshot merged, paths repaired). */
  referencedAny (): void {
    this.told++
    this.toldFloor = this.told
    this.lastTold.clear()
  }

  /** Marks held now (for tests and inspection). */
  get size (): number { return this.marks.length }

  /** Begin a walk of the visible files: read who has seen what now, before the walk reads any file. */
  beginWalk (): RemovalWalk {
    const walkStart = this.told
    const namespace = this.components.namespace
    if (namespace === undefined) return { settled: () => SETTLED_REMOVAL, stands: () => true, mark: () => this.components.clock.now() }
    const stable = namespace.stableClock()
    const behind = namespace.behindMembers()
    const now = this.components.clock.now()
    const stands = (manifest: string, since: number): boolean => {
      const mark = this.marks.find(m => m.at === since)
      return mark !== undefined && Math.max(this.lastTold.get(manifest) ?? 0, this.toldFloor) <= mark.walkStart
    }
    // per mark (by its time), answered once a walk: records share marks
    const answers = new Map<number, RemovalState>()
    const settled = (manifest: string, since: number): RemovalState => {
      // waited for as long as a silent member counts: a member that never covers the mark (it does not trust an
      // author of it, say) holds the shards back no longer than that
      if (now - since > namespace.memberTimeout) return SETTLED_REMOVAL
      // no mark, or a file referred to it after its walk began: marked again by this walk, settled by a later one
      if (!stands(manifest, since)) return { settled: false, waitingOn: [] }
      if (behind.length > 0) return { settled: false, waitingOn: behind }
      let answer = answers.get(since)
      if (answer === undefined) {
        const clock = this.clockOf(since)
        // named now: a member heard from since `stable` was read is still not settled by that reading
        answer = dominates(stable, clock) ? SETTLED_REMOVAL : { settled: false, waitingOn: namespace.membersNotSeen(clock) }
        answers.set(since, answer)
      }
      return answer
    }
    return { settled, stands, mark: () => this.mark(namespace, walkStart) }
  }

  /** Note the namespace's clock now, after a walk begun at reference `walkStart`; the time recorded. */
  private mark (namespace: NamespaceClocks, walkStart: number): number {
    const last = this.marks.at(-1)
    const latest = this.latest ?? {}
    const clock = { ...namespace.clockNow() }
    // nothing changed, nothing told, since the last mark: the manifests this walk found were unreferenced then too
    if (last !== undefined && last.walkStart === walkStart && dominates(latest, clock)) return last.at
    // strictly later than the last mark, whatever the wall clock does: each record names its own mark
    const at = Math.max(this.components.clock.now(), (last?.at ?? -Infinity) + 1)
    let diff: VectorClock = clock
    if (last !== undefined) {
      diff = {}
      for (const author in clock) if (clock[author] !== latest[author]) diff[author] = clock[author]
    }
    this.marks.push({ at, diff, walkStart })
    this.latest = clock
    if (this.marks.length > MAX_REMOVAL_MARKS) {
      // the next mark becomes the whole one
      const [oldest, next] = this.marks
      next.diff = Object.assign(oldest.diff, next.diff)
      this.marks.shift()
    }
    return at
  }

  /** The whole clock of the mark made at `since` (one that is kept). */
  private clockOf (since: number): VectorClock {
    const clock: VectorClock = {}
    for (const mark of this.marks) {
      Object.assign(clock, mark.diff)
      if (mark.at === since) break
    }
    return clock
  }
}
