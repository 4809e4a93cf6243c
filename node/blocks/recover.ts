/**
 * What open does to the pack folder before anything is read or written:
 * the packs are the source of truth, the index is checked against them.
 *
 * Why: LevelDB can lose its newest batches (a torn or corrupted write-ahead
 * log is dropped at open without an error), and with them the index entries
 * and pack lengths of blocks that were acknowledged. The packs' records are
 * self-describing (length, crc32c, multihash), so what the index lost can be
 * found again; nothing found in a pack is thrown away while it is intact.
 *
 * How: for every pack, the records past the length the index knows (all of
 * a pack the index does not know at all) are scanned (intact-records.ts: a
 * record that fails its crc32c is skipped and the scan goes on at the next
 * intact one). Each complete, crc-valid record whose block the index does
 * not name is indexed again (`salvagedRecords`); one whose block lives
 * elsewhere counts as dead space for compaction, and so does a damaged range
 * between intact records (`corruptRanges`: its block, if it was one the
 * index lost, is lost here and fetched again from peers by reads and
 * repair). Only what follows the last intact record (a write cut short, or
 * damage at the very end) is cut off. A salvaged record may be a block that
 * was never acknowledged (a crash between the pack's fdatasync and the index
 * batch) or one deleted in a lost batch: both are unreferenced garbage that
 * the next `gc` removes — a cost of some space, never of data. A pack with
 * no intact record is removed.
 *
 * A pack shorter than its committed length, or gone, is left as it is (a
 * short pack's intact records still read, and the scrub sees the rest);
 * where its bytes end now is handed to the index audit, which marks the
 * entries of the records past that end bad in its pass over the index.
 *
 * When it applies: at every open. Index entries lost for records inside the
 * known length of a pack are found next, by the index audit (index-audit.ts).
 *
 * @module
 */
import { open, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { listPacks, packFileName, syncDir } from './pack-file.js'
import { salvageRange } from './salvage.js'
import { META_RANGE, decodeMeta, encodeMeta, metaKey, packOfMetaKey, type PackMeta } from './pack-index.js'
import { PACK_HEADER } from './pack-record.js'
import type { ClassicLevel } from 'classic-level'

/** What {@link recoverPacks} found and did. */
export interface RecoveryReport {
  /** Intact records past a pack's known length whose block the index did not name: indexed again. */
  salvagedRecords: number
  /** Intact records past a pack's known length whose block lives elsewhere (dead space). */
  deadRecords: number
  /** Packs the index did not know at all that held intact records (their records were salvaged). */
  unknownPacks: number[]
  /** Packs whose end held no intact record after the last one (a torn write, or damage): cut off. */
  tornRecords: number
  /** Bytes cut off the ends of packs. */
  cutBytes: number
  /** Damaged ranges between intact records past a pack's known length (crc32c failed): kept as dead space. */
  corruptRanges: number
  /** Pack files removed (no intact record). */
  removedPacks: number[]
  /** Packs shorter than their committed length (data lost: reads fail with CorruptBlockError). */
  shortPacks: number[]
  /** Packs whose file is gone although the index knows them. */
  missingPacks: number[]
}

/**
 * Where each short or missing pack's bytes end on disk now (0 for a missing
 * one): the index entries of records past that end are marked bad by the
 * audit that follows (index-audit.ts). Empty when every pack is whole.
 */
export type ReadableEnds = Map<number, number>

/** Load the pack metadata, index again what the index lost, cut torn tails. */
export async function recoverPacks (db: ClassicLevel<Uint8Array, Uint8Array>, dir: string): Promise<{ metas: Map<number, PackMeta>, report: RecoveryReport, readableEnds: ReadableEnds }> {
  const metas = new Map<number, PackMeta>()
  for await (const [key, value] of db.iterator(META_RANGE)) metas.set(packOfMetaKey(key), decodeMeta(value))
  const report: RecoveryReport = { salvagedRecords: 0, deadRecords: 0, unknownPacks: [], tornRecords: 0, cutBytes: 0, corruptRanges: 0, removedPacks: [], shortPacks: [], missingPacks: [] }
  const files = await listPacks(dir)
  const readableEnds: ReadableEnds = new Map()
  for (const pack of files) {
    const path = join(dir, packFileName(pack))
    const known = metas.get(pack)
    const { size } = await stat(path)
    if (known !== undefined && size < known.committed) {
      report.shortPacks.push(pack)
      readableEnds.set(pack, size)
    }
    const from = known?.committed ?? PACK_HEADER
    if (known !== undefined && size <= from) continue
    const meta: PackMeta = known ?? { committed: PACK_HEADER, deadBytes: 0, deadRecords: 0 }
    const batch = db.batch()
    const found = await salvageRange({ db, batch, path, pack, from, to: size })
    const end = found.end
    meta.deadBytes += found.deadBytes + found.corruptBytes
    meta.deadRecords += found.dead + found.corrupt
    report.deadRecords += found.dead
    report.corruptRanges += found.corrupt
    if (known === undefined && end === PACK_HEADER) {
      batch.close().catch(() => {})
      await unlink(path)
      report.removedPacks.push(pack)
      continue
    }
    if (known === undefined) report.unknownPacks.push(pack)
    report.salvagedRecords += found.restored
    meta.committed = end
    metas.set(pack, meta)
    batch.put(metaKey(pack), encodeMeta(meta))
    if (end < size) {
      report.tornRecords++
      report.cutBytes += size - end
      const fh = await open(path, 'r+')
      try {
        await fh.truncate(end)
        await fh.datasync()
      } finally { await fh.close() }
    }
    await batch.write({ sync: true })
  }
  for (const pack of metas.keys()) {
    if (files.includes(pack)) continue
    report.missingPacks.push(pack)
    readableEnds.set(pack, 0)
  }
  if (report.removedPacks.length > 0 || report.cutBytes > 0) await syncDir(dir)
  return { metas, report, readableEnds }
}
