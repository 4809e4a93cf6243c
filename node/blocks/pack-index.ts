/**
 * What the pack block store keeps in LevelDB, and its binary encodings.
 *
 * - `0xF1 ‖ multihash` → {@link Location} (14 bytes: u32 pack, u48 offset,
 *   u32 record length, little-endian): where a block's record is; a 15th
 *   byte, 1, marks a record known to fail its check ({@link failedCheck}).
 * - `0xF0 ‖ 'P' ‖ u32 pack (big-endian)` → {@link PackMeta} (16 bytes: u48
 *   committed length, u48 dead bytes, u32 dead records): written in the same
 *   batch as the index entries it accounts for.
 *
 * Keys below `0xF0` are the former layout (block bytes as values under the
 * bare multihash, which starts 0x12 for sha2-256 or 0x00 for identity); they
 * are moved into packs at open ({@link migrateLegacyBlocks}).
 *
 * @module
 */

/** First byte of index keys. */
export const INDEX_PREFIX = 0xf1
/** First byte of the store's own records (pack metadata). */
export const META_PREFIX = 0xf0
const PACK_META = 0x50

/** Where a block's record is. */
export interface Location {
  pack: number
  offset: number
  /** Length of the whole record (header, multihash and bytes). */
  length: number
}

/** Per-pack bookkeeping, persisted. */
export interface PackMeta {
  /** Bytes of the pack covered by a commit (header included); beyond is cut at open. */
  committed: number
  /** Bytes of records no index entry points at any more. */
  deadBytes: number
  deadRecords: number
}

/** The index key of a multihash. */
export function indexKey (multihash: Uint8Array): Uint8Array {
  const key = new Uint8Array(multihash.byteLength + 1)
  key[0] = INDEX_PREFIX
  key.set(multihash, 1)
  return key
}

/** The multihash of an index key. */
export function multihashOfIndexKey (key: Uint8Array): Uint8Array {
  return key.subarray(1)
}

/** Range options that select every index key. */
export const INDEX_RANGE = { gte: Uint8Array.of(INDEX_PREFIX), lt: Uint8Array.of(INDEX_PREFIX + 1) }
/** Range options that select every pack metadata key. */
export const META_RANGE = { gte: Uint8Array.of(META_PREFIX, PACK_META), lt: Uint8Array.of(META_PREFIX, PACK_META + 1) }
/** Range options that select every key of the former layout. */
export const LEGACY_RANGE = { lt: Uint8Array.of(META_PREFIX) }

/**
 * The index value of `loc`. `failed`: a read found the record failing its
 * check (crc32c, length, multihash, or its pack gone), so the block counts
 * as not here (`has` is false) and the next put of it writes it anew. The
 * flag is a 15th byte: a reader that knows only 14-byte values
 * ({@link decodeLocation}, an older version) still finds the location.
 */
export function encodeLocation (loc: Location, failed = false): Uint8Array {
  const buf = Buffer.alloc(failed ? 15 : 14)
  buf.writeUInt32LE(loc.pack, 0)
  buf.writeUIntLE(loc.offset, 4, 6)
  buf.writeUInt32LE(loc.length, 10)
  if (failed) buf[14] = 1
  return buf
}

/** True when the index value marks its record as known to fail its check (see {@link encodeLocation}). */
export function failedCheck (value: Uint8Array): boolean {
  return value.byteLength > 14 && value[14] === 1
}

export function decodeLocation (value: Uint8Array): Location {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  return { pack: buf.readUInt32LE(0), offset: buf.readUIntLE(4, 6), length: buf.readUInt32LE(10) }
}

/** The metadata key of pack `pack`. */
export function metaKey (pack: number): Uint8Array {
  const buf = Buffer.alloc(6)
  buf[0] = META_PREFIX
  buf[1] = PACK_META
  buf.writeUInt32BE(pack, 2)
  return buf
}

/** The pack number of a metadata key. */
export function packOfMetaKey (key: Uint8Array): number {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).readUInt32BE(2)
}

export function encodeMeta (meta: PackMeta): Uint8Array {
  const buf = Buffer.alloc(16)
  buf.writeUIntLE(meta.committed, 0, 6)
  buf.writeUIntLE(meta.deadBytes, 6, 6)
  buf.writeUInt32LE(meta.deadRecords, 12)
  return buf
}

export function decodeMeta (value: Uint8Array): PackMeta {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  return { committed: buf.readUIntLE(0, 6), deadBytes: buf.readUIntLE(6, 6), deadRecords: buf.readUInt32LE(12) }
}

/** True when two locations name the same record. */
export function sameLocation (a: Location, b: Location): boolean {
  return a.pack === b.pack && a.offset === b.offset && a.length === b.length
}
