/**
 * `shoal repair --reindex`: check the whole index against the packs and
 * rebuild it from them.
 *
 * Why: the packs are the source of truth (records are self-describing:
 * length, crc32c, multihash); the index is a cache of where each block is.
 * Open only rescans the tails of packs past their committed length
 * (recover.ts); an index entry lost for a record *inside* a pack, one that
 * points at the wrong place, or dead-space counters that drifted are only
 * found by reading every pack — too slow for every start, right for an
 * explicit repair after a disk or LevelDB fault.
 *
 * How: every committed record of every pack is read and crc-checked. Intact
 * records are collected by block; then every index entry is checked against
 * them: one that points at an intact record of its block stays; one that
 * points elsewhere while an intact copy exists is pointed at that copy; one
 * whose block has no intact record anywhere is removed and reported (the
 * block is lost here: a scrub or a read fetches it again from peers). Intact
 * records the index does not name are indexed again. Each pack's dead-space
 * counters are recomputed from the result. One synced batch writes it all.
 *
 * When: on demand, under the store's serialised index changes (no commit or
 * delete interleaves). Memory: one small record per block in the store. An
 * abort (the client of `repair --reindex --wait` went away) stops it before
 * its one batch is written: nothing changed.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { code as RAW } from 'multiformats/codecs/raw'
import { join } from 'node:path'
import { packFileName, scanPack } from './pack-file.js'
import { INDEX_RANGE, decodeLocation, encodeLocation, encodeMeta, failedCheck, indexKey, metaKey, multihashOfIndexKey, sameLocation, type Location, type PackMeta } from './pack-index.js'
import { PACK_HEADER } from './pack-record.js'
import { idOf, throwIfAborted } from './util.js'
import type { AbortOptions } from './api.js'
import type { ClassicLevel } from 'classic-level'

/** What {@link reindexPacks} found and did. */
export interface ReindexReport {
  /** Packs read. */
  packs: number
  /** Intact records read. */
  records: number
  /** Records that failed their crc32c or were cut short (their bytes are not trusted). */
  corruptRecords: number
  /** Intact records the index did not name: indexed again. */
  indexed: number
  /** Index entries that pointed at the wrong place and now point at an intact copy. */
  repointed: number
  /** Index entries whose block has no intact record in any pack: removed. */
  removed: number
  /** CIDs (raw codec) of the removed entries' blocks, the first 100. */
  lost: string[]
}

/** What {@link reindexPacks} needs from the store. */
export interface ReindexHost {
  db: ClassicLevel<Uint8Array, Uint8Array>
  /** The packs folder. */
  dir: string
  /** Pack number → metadata (`committed` is how far records are read); updated in place. */
  metas: Map<number, PackMeta>
}

/** Most lost CIDs listed in a report. */
const MAX_LISTED = 100

/** Records or entries read between two checks of the abort signal. */
const CHECK_EVERY = 1024

/**
 * Check the index against every committed record and rebuild what disagrees. See the module comment.
 *
 * @throws {AbortedError} when `options.signal` aborts before the batch is written (nothing changed)
 */
export async function reindexPacks (host: ReindexHost, options: AbortOptions = {}): Promise<ReindexReport> {
  const { db, dir, metas } = host
  const report: ReindexReport = { packs: 0, records: 0, corruptRecords: 0, indexed: 0, repointed: 0, removed: 0, lost: [] }
  /** Intact records by block: every copy. */
  const copies = new Map<string, { multihash: Uint8Array, at: Location[] }>()
  const recordsOf = new Map<number, number>()
  for (const [pack, meta] of metas) {
    if (meta.committed <= PACK_HEADER) continue
    throwIfAborted(options)
    report.packs++
    let count = 0
    try {
      for await (const { offset, length, multihash, load } of scanPack(join(dir, packFileName(pack)), PACK_HEADER, meta.committed)) {
        if (++count % CHECK_EVERY === 0) throwIfAborted(options)
        const { decoded } = await load()
        if (typeof decoded === 'string') { report.corruptRecords++; continue }
        report.records++
        const id = idOf(multihash)
        const found = copies.get(id)
        if (found === undefined) copies.set(id, { multihash, at: [{ pack, offset, length }] })
        else found.at.push({ pack, offset, length })
      }
    } catch (err: any) {
      if (err?.code !== 'ENOENT') throw err
    }
    recordsOf.set(pack, count)
  }
  const batch = db.batch()
  const live = new Map<number, { bytes: number, records: number }>()
  const countLive = (at: Location): void => {
    const l = live.get(at.pack) ?? { bytes: 0, records: 0 }
    l.bytes += at.length
    l.records++
    live.set(at.pack, l)
  }
  const named = new Set<string>()
  let entries = 0
  for await (const [key, value] of db.iterator(INDEX_RANGE)) {
    // stopped below, where the batch is closed
    if (++entries % CHECK_EVERY === 0 && options.signal?.aborted === true) break
    const multihash = multihashOfIndexKey(key)
    const id = idOf(multihash)
    named.add(id)
    const at = decodeLocation(value)
    const found = copies.get(id)
    const same = found?.at.find(c => sameLocation(c, at))
    if (same !== undefined) {
      // checked just now: a mark of a failed read (pack-index.ts, failedCheck) no longer holds
      if (failedCheck(value)) batch.put(key, encodeLocation(same))
      countLive(same)
      continue
    }
    if (found !== undefined) {
      batch.put(key, encodeLocation(found.at[0]))
      countLive(found.at[0])
      report.repointed++
      continue
    }
    batch.del(key)
    report.removed++
    if (report.lost.length < MAX_LISTED) report.lost.push(CID.createV1(RAW, Digest.decode(multihash)).toString())
  }
  for (const [id, found] of copies) {
    if (named.has(id)) continue
    batch.put(indexKey(found.multihash), encodeLocation(found.at[0]))
    countLive(found.at[0])
    report.indexed++
  }
  // the last point to stop: from here on the store's counters change in memory, then on disk
  if (options.signal?.aborted === true) {
    await batch.close()
    throwIfAborted(options)
  }
  for (const [pack, meta] of metas) {
    if (meta.committed <= PACK_HEADER) continue
    const l = live.get(pack) ?? { bytes: 0, records: 0 }
    meta.deadBytes = meta.committed - PACK_HEADER - l.bytes
    meta.deadRecords = Math.max(0, (recordsOf.get(pack) ?? 0) - l.records)
    batch.put(metaKey(pack), encodeMeta(meta))
  }
  await batch.write({ sync: true })
  return report
}
