/**
 * A snapshot root's per-author part — its clock, the tips that prove the
 * clock's counters, the retirements — inline in the root or in author
 * blocks the root links (docs/namespace.md, "Snapshot roots of many
 * authors").
 *
 * Why: a root names every author the namespace ever had, ~290 bytes each,
 * and a root travels as one block of one sync answer; at ~14,000 lifetime
 * authors it no longer fit, and a namespace past that could not be
 * bootstrapped from a snapshot. Retiring authors shortens clocks on the
 * wire, but a snapshot must still carry every counter.
 *
 * The same holds for heads: an inline root names at most 4,096, and a
 * namespace where more authors wrote concurrently than that had heads a
 * root could not hold, so it never compacted again.
 *
 * Mechanism: a snapshot of more than {@link DEFAULT_INLINE_ROOT_AUTHORS}
 * authors (configurable), or of more heads than an inline root holds, is
 * written with a v3 root (protocol/namespace.ts `LinkedSnapshotRoot`): its
 * authors in ascending order, with their heads, are cut into blocks of
 * that many, each block stored as a
 * snapshot block (`b!`, served by `blocks` requests like the tree's nodes),
 * and the root links them by CID under its signature. A reader fetches
 * them, checks each against its CID and the whole against the root
 * ({@link readSnapshotRoot}), and goes on with the same view a v1 or v2
 * root gives. Smaller snapshots keep the inline root, which every earlier
 * build reads.
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import {
  MAX_BLOCKS_WANT, MAX_HEADS, decodeSnapshotAuthors, encodeSnapshotAuthors, joinSnapshotAuthors, splitSnapshotAuthors,
  type SignedSnapshotRoot, type SnapshotAuthorPart, type SnapshotAuthors
} from '../../protocol/namespace.js'
import { cborCID } from '../blocks/verify.js'
import { InvalidSnapshotError } from './snapshot-state.js'

/**
 * Most authors a root names inline; a snapshot of more links author blocks
 * of this many each (~300 KiB a block at ~150 bytes an author).
 */
export const DEFAULT_INLINE_ROOT_AUTHORS = 2048

/** What a replica reads of a snapshot root, whichever way it carries its authors. */
export interface SnapshotView extends SnapshotAuthorPart {
  author: string
  time: number
  count: number
  tree: CID
  /** A v3 root's author blocks (empty for an inline root). */
  authorBlocks: CID[]
}

/** Fetch blocks by CID (a prefix of the answer may be missing: asked again). */
export type FetchBlocks = (cids: CID[]) => Promise<Array<Uint8Array | undefined>>

/** A snapshot view and the author blocks it was read from (bytes, to store with a staged root). */
export interface ReadRoot {
  view: SnapshotView
  blocks: Array<[CID, Uint8Array]>
}

/**
 * The view of a decoded, signature-checked root: an inline root as it is,
 * a v3 root with its author blocks fetched with `fetch` and checked (each
 * against its CID; the authors ascending across blocks; every retiring dot
 * covered by the clock).
 *
 * @throws {InvalidSnapshotError} for an author block missing, corrupt or invalid
 */
export async function readSnapshotRoot (root: SignedSnapshotRoot, fetch: FetchBlocks): Promise<ReadRoot> {
  const { author, time, count, tree } = root
  if (root.v !== 3) {
    const { clock, tips, heads, headDots } = root
    const part: SnapshotAuthorPart = root.retired === undefined ? { clock, tips, heads, headDots } : { clock, tips, heads, headDots, retired: root.retired }
    return { view: { author, time, count, tree, ...part, authorBlocks: [] }, blocks: [] }
  }
  const blocks: Array<[CID, Uint8Array]> = []
  const decoded: SnapshotAuthors[] = []
  for (let i = 0; i < root.authors.length;) {
    const want = root.authors.slice(i, i + MAX_BLOCKS_WANT)
    const got = await fetch(want)
    let taken = 0
    for (const [j, bytes] of got.slice(0, want.length).entries()) {
      if (bytes === undefined) break
      const cid = want[j]
      const name = cid.toString()
      if (!cborCID(bytes).equals(cid)) throw new InvalidSnapshotError(`snapshot author block ${name} does not match its CID`)
      try {
        decoded.push(decodeSnapshotAuthors(bytes))
      } catch (err: any) {
        throw new InvalidSnapshotError(`snapshot author block ${name}: ${String(err?.message ?? err)}`)
      }
      blocks.push([cid, bytes])
      taken++
    }
    if (taken === 0) throw new InvalidSnapshotError(`snapshot author block ${want[0].toString()} missing`)
    i += taken
  }
  let part: SnapshotAuthorPart
  try {
    part = joinSnapshotAuthors(decoded)
  } catch (err: any) {
    throw new InvalidSnapshotError(`snapshot authors: ${String(err?.message ?? err)}`)
  }
  return { view: { author, time, count, tree, ...part, authorBlocks: root.authors }, blocks }
}

/**
 * The author blocks of a snapshot of `part`, when it names more than
 * `inline` authors or more heads than an inline root may (then a v3 root
 * links them); none otherwise.
 */
export function authorBlocksOf (part: SnapshotAuthorPart, inline: number): Array<[CID, Uint8Array]> {
  if (Object.keys(part.clock).length <= inline && part.heads.length <= MAX_HEADS) return []
  return splitSnapshotAuthors(part, inline).map(block => {
    const bytes = encodeSnapshotAuthors(block)
    return [cborCID(bytes), bytes]
  })
}
