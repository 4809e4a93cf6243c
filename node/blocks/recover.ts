/**
 * What open does to the pack folder before anything is read or written:
 * every pack is cut back to the length its last commit covered.
 *
 * Bytes past a pack's committed length were never acknowledged: the commit
 * that would have covered them (fdatasync of the pack, then the index batch
 * with `sync: true`) did not finish. They are scanned (complete, crc-valid
 * records and a torn one are counted, for the log) and cut off, not
 * re-indexed: re-indexing could bring back a block deleted before that
 * commit, and nothing was promised about them. A pack file with no metadata
 * was created after the last commit, or retired by compaction whose removal
 * did not finish: it is removed.
 *
 * @module
 */
import { open, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { listPacks, packFileName, scanPack, syncDir } from './pack-file.js'
import { META_RANGE, decodeMeta, packOfMetaKey, type PackMeta } from './pack-index.js'
import type { ClassicLevel } from 'classic-level'

/** What {@link recoverPacks} found and did. */
export interface RecoveryReport {
  /** Complete, crc-valid records past a commit point that were cut off. */
  uncommittedRecords: number
  /** Torn records (cut off mid-record) at the end of a pack. */
  tornRecords: number
  /** Bytes cut off the ends of packs. */
  cutBytes: number
  /** Pack files removed (uncommitted or retired). */
  removedPacks: number[]
  /** Packs shorter than their committed length (data lost: reads fail with CorruptBlockError). */
  shortPacks: number[]
  /** Packs whose file is gone although the index knows them. */
  missingPacks: number[]
}

/** Load the pack metadata and cut every pack back to its committed length. */
export async function recoverPacks (db: ClassicLevel<Uint8Array, Uint8Array>, dir: string): Promise<{ metas: Map<number, PackMeta>, report: RecoveryReport }> {
  const metas = new Map<number, PackMeta>()
  for await (const [key, value] of db.iterator(META_RANGE)) metas.set(packOfMetaKey(key), decodeMeta(value))
  const report: RecoveryReport = { uncommittedRecords: 0, tornRecords: 0, cutBytes: 0, removedPacks: [], shortPacks: [], missingPacks: [] }
  const files = await listPacks(dir)
  for (const pack of files) {
    const path = join(dir, packFileName(pack))
    const meta = metas.get(pack)
    if (meta === undefined) {
      await unlink(path)
      report.removedPacks.push(pack)
      continue
    }
    const { size } = await stat(path)
    if (size < meta.committed) report.shortPacks.push(pack)
    if (size <= meta.committed) continue
    let end = meta.committed
    for await (const { offset, length, load } of scanPack(path, meta.committed, size)) {
      if (typeof (await load()).decoded === 'string') break
      report.uncommittedRecords++
      end = offset + length
    }
    if (end < size) report.tornRecords++
    report.cutBytes += size - meta.committed
    const fh = await open(path, 'r+')
    try {
      await fh.truncate(meta.committed)
      await fh.datasync()
    } finally { await fh.close() }
  }
  for (const pack of metas.keys()) if (!files.includes(pack)) report.missingPacks.push(pack)
  if (report.removedPacks.length > 0 || report.cutBytes > 0) await syncDir(dir)
  return { metas, report }
}
