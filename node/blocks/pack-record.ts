/**
 * The layout of one block record in a pack file, and of the pack header.
 *
 * A pack file is an 8-byte header, `SHOALPK` and a format version byte (1),
 * then records back to back. A record (little-endian integers):
 *
 * ```
 * offset   size  field
 * 0        4     u32  n: length of the block bytes
 * 4        4     u32  crc32c (Castagnoli) of bytes [0, 4) then [8, 9 + m + n)
 * 8        1     u8   m: length of the multihash
 * 9        m          the block's multihash (its key)
 * 9 + m    n          the block bytes
 * ```
 *
 * The crc covers the length, the multihash and the bytes, so a torn record,
 * a flipped bit anywhere in it, or an index entry that points at the wrong
 * place is caught on read. The multihash in the record lets a pack be
 * scanned without the index (compaction, recovery).
 *
 * A second reader of this layout is the libfuse3 binding, which reads and
 * checks records on its own threads (`native/fuse3/records.c`, `read_record`):
 * a change here must change it too; `test/node/fuse/places.test.ts` fails if
 * the two disagree.
 *
 * @module
 */
import { crc32c } from '@node-rs/crc32'

/** Bytes before the multihash: length, crc, multihash length. */
export const RECORD_HEADER = 9
/** The pack file header: magic and format version 1. */
export const PACK_MAGIC = Uint8Array.from([0x53, 0x48, 0x4f, 0x41, 0x4c, 0x50, 0x4b, 0x01])
/** Length of {@link PACK_MAGIC}; the first record starts here. */
export const PACK_HEADER = PACK_MAGIC.byteLength

function checksum (record: Uint8Array): number {
  return crc32c(record.subarray(8), crc32c(record.subarray(0, 4)))
}

function view (buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
}

/** Total length of the record holding `bytesLength` bytes under a multihash of `mhLength` bytes. */
export function recordLength (mhLength: number, bytesLength: number): number {
  return RECORD_HEADER + mhLength + bytesLength
}

/** Encode one record into `out` (exactly {@link recordLength} bytes). */
export function encodeRecord (out: Uint8Array, multihash: Uint8Array, bytes: Uint8Array): void {
  const v = view(out)
  v.setUint32(0, bytes.byteLength, true)
  out[8] = multihash.byteLength
  out.set(multihash, RECORD_HEADER)
  out.set(bytes, RECORD_HEADER + multihash.byteLength)
  v.setUint32(4, checksum(out), true)
}

/** A record read back: its multihash and block bytes (views into the record). */
export interface DecodedRecord {
  multihash: Uint8Array
  bytes: Uint8Array
}

/** Why a record failed to decode: `short` (torn or truncated) or `crc` (corrupt). */
export type RecordFault = 'short' | 'crc'

/**
 * Decode and check one record that starts at `record[0]`. Returns the fault
 * instead of throwing, so that scans can tell a torn tail from a bad bit.
 */
export function decodeRecord (record: Uint8Array): DecodedRecord | RecordFault {
  if (record.byteLength < RECORD_HEADER) return 'short'
  const v = view(record)
  const n = v.getUint32(0, true)
  const m = record[8]
  const total = RECORD_HEADER + m + n
  if (record.byteLength < total) return 'short'
  const whole = record.subarray(0, total)
  if (checksum(whole) !== v.getUint32(4, true)) return 'crc'
  return { multihash: whole.subarray(RECORD_HEADER, RECORD_HEADER + m), bytes: whole.subarray(RECORD_HEADER + m) }
}

/**
 * The unchecked parts of a record (for the scrub, which hashes them itself):
 * whatever bytes are there, clipped to what was read.
 */
export function rawRecordBytes (record: Uint8Array): Uint8Array {
  if (record.byteLength < RECORD_HEADER) return new Uint8Array(0)
  return record.subarray(Math.min(record.byteLength, RECORD_HEADER + record[8]))
}

/** Total length of the record whose header starts `header` (at least {@link RECORD_HEADER} bytes). */
export function recordLengthFromHeader (header: Uint8Array): number {
  return RECORD_HEADER + header[8] + view(header).getUint32(0, true)
}
