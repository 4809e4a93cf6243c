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
 * The same pass marks unreadable entries. A pack deleted or cut short while
 * the node was stopped (recover.ts hands over where each such pack's bytes
 * end now) leaves entries whose records are gone: they used to stay as they
 * were, so `has` said yes, the node answered `holdings` with shards it could
 * not read, and `pin status` called their files healthy until a scrub ran.
 * Each entry whose record lies in a missing pack or past a short pack's end
 * is marked bad (see `failedCheck` in pack-index.ts): `has` is false, the
 * block is never served, and the next put writes it anew. Marks, not
 * deletes: the pack's accounting stays as it was (a marked entry is counted
 * live until a put replaces it), a read of a record that comes back (the
 * pack restored) clears the mark, and the scrub still sees the blocks. Only
 * when some pack is short or missing does the pass read keys as well as
 * values.
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
import { INDEX_RANGE, decodeLocation, encodeLocation, encodeMeta, failedCheck, metaKey, type PackMeta } from './pack-index.js'
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
  /** Entries whose record lies in a missing pack or past a short pack's end: marked bad (not here, replaced by the next put). */
  markedUnreadable: number
}

/** Options of {@link auditIndex}. */
export interface AuditOptions {
  /** Where each short or missing pack's bytes end now (0: missing), from recover.ts; entries of records past it are marked bad. */
  readableEnds?: ReadonlyMap<number, number>
}

/** Index entries read per call while summing live bytes. */
const BATCH = 1000

/** Check every pack's accounting against the index; restore what it lost. See the module comment. */
export async function auditIndex (db: ClassicLevel<Uint8Array, Uint8Array>, dir: string, metas: Map<number, PackMeta>, options: AuditOptions = {}): Promise<AuditReport> {
  const report: AuditReport = { disagreeingPacks: [], restoredEntries: 0, corruptRanges: 0, markedUnreadable: 0 }
  const { live, marked } = await liveBytesByPack(db, options.readableEnds ?? new Map())
  report.markedUnreadable = marked
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

/**
 * Bytes of records each pack holds that an index entry points at; and, when
 * `ends` names short or missing packs, the entries of records past their end
 * marked bad (how many were marked now).
 */
async function liveBytesByPack (db: ClassicLevel<Uint8Array, Uint8Array>, ends: ReadonlyMap<number, number>): Promise<{ live: Map<number, number>, marked: number }> {
  const live = new Map<number, number>()
  const withKeys = ends.size > 0
  let marked = 0
  const it = db.iterator({ ...INDEX_RANGE, keys: withKeys })
  try {
    while (true) {
      const entries = await it.nextv(BATCH)
      if (entries.length === 0) break
      const batch = withKeys ? db.batch() : undefined
      for (const [key, value] of entries) {
        const loc = decodeLocation(value)
        live.set(loc.pack, (live.get(loc.pack) ?? 0) + loc.length)
        const end = ends.get(loc.pack)
        if (batch === undefined || end === undefined || loc.offset + loc.length <= end || failedCheck(value)) continue
        batch.put(key, encodeLocation(loc, true))
        marked++
      }
      // not synced: a mark lost in a crash is made again at the next open (the pack is still short)
      if (batch !== undefined && batch.length > 0) await batch.write()
      else await batch?.close()
    }
  } finally {
    await it.close()
  }
  return { live, marked }
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
