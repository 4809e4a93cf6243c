/**
 * Indexing again what a range of a pack holds and the index lost: the step
 * recovery at open (recover.ts, pack tails) and the index audit
 * (index-audit.ts, whole packs that disagree) share.
 *
 * Each intact record of the range (intact-records.ts) whose block the index
 * names nowhere gets an entry in `batch`; one the index already points at is
 * live; any other (its block lives elsewhere, or a second copy in the range)
 * is dead space. Damaged ranges are counted; the caller decides what a
 * damaged end means (cut off at open, lost inside a committed length).
 *
 * @module
 */
import { intactRecords } from './intact-records.js'
import { decodeLocation, encodeLocation, indexKey } from './pack-index.js'
import { idOf } from './util.js'
import type { ClassicLevel, ChainedBatch } from 'classic-level'

/** Where to salvage: the records of `pack` (at `path`) in `[from, to)`, their entries put in `batch`. */
export interface SalvageRange {
  db: ClassicLevel<Uint8Array, Uint8Array>
  batch: ChainedBatch<ClassicLevel<Uint8Array, Uint8Array>, Uint8Array, Uint8Array>
  path: string
  pack: number
  from: number
  to: number
}

/** What {@link salvageRange} found. */
export interface SalvageResult {
  /** Records indexed again (the index named no copy of their block), and their bytes. */
  restored: number
  restoredBytes: number
  /** Intact records the index points at already. */
  live: number
  /** Intact records that are dead space (block indexed elsewhere, or a second copy), and their bytes. */
  dead: number
  deadBytes: number
  /** Damaged ranges followed by an intact record, and their bytes. */
  corrupt: number
  corruptBytes: number
  /** True when the range ends in damage (no intact record after it). */
  damagedEnd: boolean
  /** End of the last intact record (`from` when there is none). */
  end: number
}

/** Index again the records of one pack range the index lost; see the module comment. */
export async function salvageRange ({ db, batch, path, pack, from, to }: SalvageRange): Promise<SalvageResult> {
  const result: SalvageResult = { restored: 0, restoredBytes: 0, live: 0, dead: 0, deadBytes: 0, corrupt: 0, corruptBytes: 0, damagedEnd: false, end: from }
  /** Blocks indexed again here (the batch is not readable before it is written). */
  const found = new Set<string>()
  for await (const piece of intactRecords(path, from, to)) {
    if (piece.kind === 'damaged') {
      if (piece.tail) { result.damagedEnd = true; break }
      result.corrupt++
      result.corruptBytes += piece.length
      continue
    }
    const { offset, length, multihash } = piece
    result.end = offset + length
    const id = idOf(multihash)
    if (!found.has(id)) {
      const existing = await db.get(indexKey(multihash))
      if (existing === undefined) {
        batch.put(indexKey(multihash), encodeLocation({ pack, offset, length }))
        found.add(id)
        result.restored++
        result.restoredBytes += length
        continue
      }
      const at = decodeLocation(existing)
      if (at.pack === pack && at.offset === offset) { result.live++; continue }
    }
    result.dead++
    result.deadBytes += length
  }
  return result
}
