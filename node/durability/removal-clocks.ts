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
 * **The mechanism.** A repair pass or a collection that first finds a
 * manifest unreferenced records the time ({@link ManifestRecord.unreferencedSince})
 * and, here, the namespace's clock at that moment, read after its walk of
 * the visible files ({@link RemovalClocks.mark}): the removal the walk missed
 * the file for is under it. The clocks are kept in memory, at most
 * {@link MAX_REMOVAL_MARKS} (the oldest dropped: its records use a later
 * mark, whose clock covers more — later, never wrong). A record with no mark
 * at or after its time (those of a run before a restart) takes one the
 * first time it is asked about. A collection reads who has seen what
 * ({@link RemovalClocks.settledNow}) *before* it walks the visible files, so
 * that the walk sees every change that reading counted on.
 *
 * **When it applies.** Only with a namespace given (`components.namespace`,
 * the node's replica). Without one (the durability simulations), the grace
 * period alone decides, as before. A member silent for longer than the
 * member timeout no longer holds anything back, as for compaction; nor does
 * any member once a manifest has been unreferenced for that long (a member
 * that does not trust an author of the mark never covers it).
 *
 * **What it does not cover.** The mark is the clock of the first walk that
 * found the manifest unreferenced; a file that refers to it and is added and
 * removed again between two walks (within a repair interval, 60 s) leaves
 * that older mark in place. A member that does not trust the remover never
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

/** Namespace clocks kept for the grace periods running at once; beyond, the oldest goes. */
export const MAX_REMOVAL_MARKS = 16

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

/** One mark: the namespace's clock when a walk found manifests unreferenced, at `at` (ms). */
interface Mark { at: number, clock: VectorClock }

/** A removal every active member has seen (or no namespace to ask). */
export const SETTLED_REMOVAL: RemovalState = { settled: true }

/** The namespace clocks of the removals whose shards this node keeps; see the module comment. */
export class RemovalClocks {
  private readonly components: RemovalClocksComponents
  /** Oldest first; `at` grows. */
  private readonly marks: Mark[] = []

  constructor (components: RemovalClocksComponents) {
    this.components = components
  }

  /**
   * Note the namespace's clock now, after a walk that found manifests no
   * visible file refers to; answers the time to record as their
   * `unreferencedSince`.
   */
  mark (): number {
    const namespace = this.components.namespace
    if (namespace === undefined) return this.components.clock.now()
    const last = this.marks.at(-1)
    // strictly later than the last mark, whatever the wall clock does: a record finds its own mark or a later one
    const at = Math.max(this.components.clock.now(), (last?.at ?? -Infinity) + 1)
    const clock = { ...namespace.clockNow() }
    // nothing changed since the last mark: it stands for this one too
    if (last !== undefined && dominates(last.clock, clock)) last.at = at
    else this.marks.push({ at, clock })
    if (this.marks.length > MAX_REMOVAL_MARKS) this.marks.shift()
    return at
  }

  /** Marks held now (for tests and inspection). */
  get size (): number { return this.marks.length }

  /**
   * Who has seen what, read now: a function telling whether the removal of a
   * manifest unreferenced since `since` (ms) is settled. Read it before
   * walking the visible files.
   */
  settledNow (): (since: number) => RemovalState {
    const namespace = this.components.namespace
    if (namespace === undefined) return () => SETTLED_REMOVAL
    const stable = namespace.stableClock()
    const behind = namespace.behindMembers()
    const now = this.components.clock.now()
    return since => {
      // waited for as long as a silent member counts: a member that never covers the mark (it does not trust an
      // author of it, say) holds the shards back no longer than that
      if (now - since > namespace.memberTimeout) return SETTLED_REMOVAL
      if (behind.length > 0) return { settled: false, waitingOn: behind }
      const mark = this.markFor(since)
      if (dominates(stable, mark.clock)) return SETTLED_REMOVAL
      const waitingOn = namespace.membersNotSeen(mark.clock)
      // a member heard from since `stable` was read: not settled by that reading, whatever it says now
      return { settled: false, waitingOn }
    }
  }

  /** The first mark at or after `since`; a new one when none is. */
  private markFor (since: number): Mark {
    const found = this.marks.find(m => m.at >= since)
    if (found !== undefined) return found
    this.mark()
    return this.marks[this.marks.length - 1]
  }
}
