/**
 * The intact records of a region of a pack, found past damaged ones.
 *
 * Why: a pack is the source of truth for the blocks in it, and one bad
 * record must not cost the good ones after it. {@link scanPack} walks records
 * by their length fields, so it stops at a record that does not fit in the
 * region, and a flipped bit in a length field would send it astray. Recovery
 * at open used to stop at the first record that failed its crc and cut the
 * pack there, taking every intact record behind it along (and a pack the
 * index did not know whose first record was bad was deleted whole).
 *
 * How: records are walked as {@link scanPack} does and each is crc-checked.
 * At a record that fails its check, or a header whose record does not fit,
 * the region after it is searched byte by byte for the next intact record:
 * a candidate is an offset whose header names a sha2-256 multihash (the
 * multihash length 34, then `0x12 0x20`) and whose record fits, and it is
 * taken when its crc32c holds (random bytes pass both with a chance of about
 * 2^-56). The bytes between the last intact record and the next one are one
 * {@link DamagedRange}. Blocks under another hash are not found by the
 * search (they are still found when no damage precedes them).
 *
 * When it applies: recovery at open (recover.ts) and the index audit
 * (index-audit.ts); a pack region without damage costs what scanPack costs.
 *
 * @module
 */
import { open } from 'node:fs/promises'
import { scanPack } from './pack-file.js'
import { RECORD_HEADER, decodeRecord, type DecodedRecord } from './pack-record.js'

/** An intact record: where it is, and its multihash. */
export interface IntactRecord {
  kind: 'record'
  offset: number
  /** Length of the whole record (header, multihash, bytes). */
  length: number
  multihash: Uint8Array
}

/** Bytes between two intact records (or before the end) that hold no intact record. */
export interface DamagedRange {
  kind: 'damaged'
  offset: number
  length: number
  /** True when no intact record follows it in the region: a torn or damaged tail. */
  tail: boolean
}

/** What {@link intactRecords} yields, in file order. */
export type ScannedPiece = IntactRecord | DamagedRange

/** The multihash length of sha2-256 and its first two bytes (code 0x12, digest length 0x20). */
const SHA256_MH_LENGTH = 34
const SHA256_MH_PREFIX = [0x12, 0x20]
/** Bytes read at a time while searching for the next intact record. */
const SEARCH_WINDOW = 1024 * 1024

/**
 * Every intact record of the pack at `path` in `[from, to)`, and every damaged
 * range between them; see the module comment.
 */
export async function * intactRecords (path: string, from: number, to: number): AsyncGenerator<ScannedPiece> {
  let good = from // end of the last intact record
  let pos = from // where the next walk starts
  while (pos < to) {
    let failedAt: number | undefined
    for await (const { offset, length, multihash, load } of scanPack(path, pos, to)) {
      const { decoded } = await load()
      if (typeof decoded === 'string') { failedAt = offset; break }
      if (offset > good) yield { kind: 'damaged', offset: good, length: offset - good, tail: false }
      yield { kind: 'record', offset, length, multihash }
      good = offset + length
    }
    // the walk ended at a bad record, at a header that does not fit, or at `to`
    const stoppedAt = failedAt ?? good
    if (stoppedAt >= to) break
    const next = await nextIntactRecord(path, stoppedAt + 1, to)
    if (next === undefined) break
    pos = next
  }
  if (good < to) yield { kind: 'damaged', offset: good, length: to - good, tail: true }
}

/** The offset of the first intact sha2-256 record in `[from, to)`, if any. */
async function nextIntactRecord (path: string, from: number, to: number): Promise<number | undefined> {
  const fh = await open(path, 'r')
  try {
    const window = Buffer.allocUnsafe(SEARCH_WINDOW + RECORD_HEADER + 2)
    for (let start = from; start + RECORD_HEADER + SHA256_MH_LENGTH <= to; start += SEARCH_WINDOW) {
      const { bytesRead } = await fh.read(window, 0, Math.min(window.byteLength, to - start), start)
      const last = Math.min(SEARCH_WINDOW, bytesRead - RECORD_HEADER - 2)
      for (let i = 0; i < last; i++) {
        if (window[i + 8] !== SHA256_MH_LENGTH || window[i + 9] !== SHA256_MH_PREFIX[0] || window[i + 10] !== SHA256_MH_PREFIX[1]) continue
        const at = start + i
        const length = RECORD_HEADER + SHA256_MH_LENGTH + window.readUInt32LE(i)
        if (at + length > to) continue
        if (typeof await readRecord(fh, at, length) !== 'string') return at
      }
    }
    return undefined
  } finally {
    await fh.close()
  }
}

async function readRecord (fh: Awaited<ReturnType<typeof open>>, at: number, length: number): Promise<DecodedRecord | 'short' | 'crc'> {
  const record = Buffer.allocUnsafe(length)
  const { bytesRead } = await fh.read(record, 0, length, at)
  return decodeRecord(record.subarray(0, bytesRead))
}
