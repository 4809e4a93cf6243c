/**
 * The index audit at open: index entries lost for records *inside* a pack's
 * committed length are found and restored, never left silent.
 *
 * Why: recovery at open (recover.ts) rescans what lies past each pack's
 * committed length, which finds what a torn LevelDB log took with its newest
 * batches. But LevelDB drops a damaged record from the middle of its log and
 * goes on with the ones after it: a later batch that moved the pack's
 * committed length past the lost batch's records survives, and those
 * records, acknowledged blocks, lie inside the committed length with no
 * index entry. They were simply missing: reads said "not found" and the
 * node started without a word.
 *
 * How: every pack's bytes are accounted for. Each committed record is either
 * live (an index entry points at it) or dead (counted in the pack's
 * `deadBytes`, in the same batch that dropped or moved its entry), so
 * `committed - header = live + dead` holds for a consistent pack. One pass
 * over the index (values only: 14 bytes an entry) sums the live bytes of
 * every pack; a pack where the sum disagrees is read whole
 * (intact-records.ts): intact records whose block the index does not name
 * are indexed again, the dead-space counters are recomputed, and the
 * numbers go in the report the node logs as a warning. A restored record may
 * be a block deleted in a batch that was lost too: unreferenced, the next
 * `gc` removes it (space, never data).
 *
 * When it applies: at every open, after recover.ts. Cost: the index pass
 * (about 2–2.5 s per million blocks, 1.05–1.22 × a bare LevelDB pass: bench/index-audit.ts) and, only for packs that disagree,
 * reading them.
 *
 * @module
 */
import { join } from 'node:path'
import { packFileName } from './pack-file.js'
import { salvageRange } from './salvage.js'
import { INDEX_RANGE, decodeLocation, encodeMeta, metaKey, type PackMeta } from './pack-index.js'
import { PACK_HEADER } from './pack-record.js'
import type { ClassicLevel } from 'classic-level'

/** What {@link auditIndex} found and did. */
export interface AuditReport {
  /** Packs whose live and dead bytes did not add up to their committed length: read whole. */
  disagreeingPacks: number[]
  /** Intact records inside a committed length whose block the index did not name: indexed again. */
  restoredEntries: number
  /** Damaged ranges found inside the committed length of those packs (their blocks are lost here). */
  corruptRanges: number
}

/** Index entries read per call while summing live bytes. */
const BATCH = 1000

/** Check every pack's accounting against the index; restore what it lost. See the module comment. */
export async function auditIndex (db: ClassicLevel<Uint8Array, Uint8Array>, dir: string, metas: Map<number, PackMeta>): Promise<AuditReport> {
  const report: AuditReport = { disagreeingPacks: [], restoredEntries: 0, corruptRanges: 0 }
  const live = await liveBytesByPack(db)
  for (const [pack, meta] of metas) {
    if (meta.committed <= PACK_HEADER) continue
    if (meta.committed - PACK_HEADER === (live.get(pack) ?? 0) + meta.deadBytes) continue
    report.disagreeingPacks.push(pack)
    const { restored, corrupt } = await restorePack(db, join(dir, packFileName(pack)), { pack, meta, indexedBytes: live.get(pack) ?? 0 })
    report.restoredEntries += restored
    report.corruptRanges += corrupt
  }
  return report
}

/** Bytes of records each pack holds that an index entry points at. */
async function liveBytesByPack (db: ClassicLevel<Uint8Array, Uint8Array>): Promise<Map<number, number>> {
  const live = new Map<number, number>()
  const it = db.iterator({ ...INDEX_RANGE, keys: false })
  try {
    while (true) {
      const entries = await it.nextv(BATCH)
      if (entries.length === 0) break
      for (const [, value] of entries) {
        const { pack, length } = decodeLocation(value)
        live.set(pack, (live.get(pack) ?? 0) + length)
      }
    }
  } finally {
    await it.close()
  }
  return live
}

/** One pack to read whole, and the bytes the index points at in it. */
interface PackToRestore {
  pack: number
  meta: PackMeta
  /** Bytes of the pack's records that index entries point at (before this restore). */
  indexedBytes: number
}

/**
 * Read one pack's committed records: index again what the index lost, and
 * set its dead space to what no entry points at (entries pointing into a
 * damaged range stay: reads of them fail their check and fetch the block
 * again, as `repair --reindex` or the scrub would report it).
 */
async function restorePack (db: ClassicLevel<Uint8Array, Uint8Array>, path: string, { pack, meta, indexedBytes }: PackToRestore): Promise<{ restored: number, corrupt: number }> {
  const batch = db.batch()
  try {
    const found = await salvageRange({ db, batch, path, pack, from: PACK_HEADER, to: meta.committed })
    const corrupt = found.corrupt + (found.damagedEnd ? 1 : 0)
    // never below zero: entries that point at another block's record are for `repair --reindex`
    meta.deadBytes = Math.max(0, meta.committed - PACK_HEADER - indexedBytes - found.restoredBytes)
    meta.deadRecords = found.dead + corrupt
    batch.put(metaKey(pack), encodeMeta(meta))
    await batch.write({ sync: true })
    return { restored: found.restored, corrupt }
  } catch (err) {
    await batch.close().catch(() => {})
    if ((err as NodeJS.ErrnoException)?.code === 'ENOENT') return { restored: 0, corrupt: 0 } // reported as a missing pack
    throw err
  }
}
