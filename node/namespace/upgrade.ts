/**
 * Stores written by older builds (docs/namespace.md, "On-disk format and
 * upgrades"): how to recognise them and read what they hold. Two formats
 * predate today's:
 *
 * 1. the single-node namespace (before the replica): one JSON record per
 *    name, keyed `<parent>\0<name>` — `{ type: 'file', cid, size, mode, mtime }`
 *    or `{ type: 'dir', mode, mtime }`, the root not stored;
 * 2. a development build of the replica whose `m!heads` was a list of head
 *    CIDs (strings) instead of `[cid, dot]` pairs, and whose snapshot roots
 *    had no `headDots`.
 *
 * {@link Replica.open} upgrades such a store in place with what this module
 * reads; anything it cannot upgrade without losing data is refused with a
 * {@link NamespaceFormatError} before anything is changed.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { ShoalError } from '../errors.js'
import { decodeJSON } from './kv.js'
import { baseName, joinPath, normalizePath, parentOf } from './paths.js'
import type { Dot } from './clock.js'

/**
 * The namespace store is in a format this build cannot use as is and cannot
 * upgrade without losing data. Nothing was changed; the message says what
 * the store holds and what to do.
 */
export class NamespaceFormatError extends ShoalError {
  override name = 'NamespaceFormatError'
}

/** Key range holding the single-node namespace's records: every key `<parent>\0<name>` starts with `/`. */
export const LEGACY_RANGE = { gte: '/', lt: '0' } as const

/** A record of the single-node namespace, checked and ready to be written as an op. */
export type LegacyRecord =
  | { type: 'file', path: string, cid: CID, size: number, mode: number, mtime: number }
  | { type: 'dir', path: string, mode: number, mtime: number }

const MAX_MODE = 0o7777

/**
 * Read one record of the single-node namespace. Modes keep their permission
 * bits only (`& 0o7777`: a file-type bit from `stat` is dropped), a
 * fractional or negative mtime becomes whole milliseconds ≥ 0; everything
 * else must be exactly what that build wrote.
 *
 * @param where - the store, for the error message
 * @throws {NamespaceFormatError} for a key or value that build could not have written
 */
export function parseLegacyRecord (key: string, value: Uint8Array, where: string): LegacyRecord {
  const bad = (reason: string): never => {
    throw new NamespaceFormatError(`${where} holds records of the single-node namespace (before the replica) ` +
      `that cannot be migrated: key ${JSON.stringify(key)} ${reason}. Nothing was changed. Repair or delete that key, ` +
      `or move ${where} aside and restart: the node then recovers this node's past writes from a peer before it writes again ` +
      '(writes wait until a peer answered; content stays in the block store)')
  }
  const sep = key.indexOf('\0')
  if (sep < 0) bad('is not <parent>\\0<name>')
  let path = ''
  try {
    path = normalizePath(joinPath(key.slice(0, sep), key.slice(sep + 1)))
  } catch {}
  // exactly the key that build wrote for the path (`parentOf(path) + '\0' + baseName(path)`)
  if (path === '' || path === '/' || parentOf(path) + '\0' + baseName(path) !== key) bad('names no valid path')
  let record: any
  try {
    record = decodeJSON<unknown>(value)
  } catch {
    bad('is not JSON')
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) bad('is not a record')
  const mode = record.mode
  if (typeof mode !== 'number' || !Number.isSafeInteger(mode) || mode < 0) bad(`has mode ${String(mode)}`)
  const mtime = record.mtime
  if (typeof mtime !== 'number' || !Number.isFinite(mtime)) bad(`has mtime ${String(mtime)}`)
  const common = { path, mode: mode & MAX_MODE, mtime: Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.floor(mtime))) }
  if (record.type === 'dir') return { type: 'dir', ...common }
  if (record.type !== 'file') bad(`has type ${JSON.stringify(record.type)}`)
  const size = record.size
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) bad(`has size ${String(size)}`)
  let cid: CID | undefined
  try {
    cid = CID.parse(String(record.cid))
  } catch {}
  if (cid === undefined || cid.multihash.code !== 0x12 || cid.multihash.size !== 32) bad(`has cid ${JSON.stringify(record.cid)} (not a sha2-256 CID)`)
  return { type: 'file', ...common, cid: cid as CID, size }
}

/** What `m!heads` holds: today's `[cid, dot]` pairs, or the development build's CID strings. */
export type StoredHeads =
  | { format: 'dots', heads: Array<[string, Dot]> }
  | { format: 'cids', heads: string[] }

function isDot (value: unknown): value is Dot {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && Number.isSafeInteger(value[1]) && value[1] >= 1
}

/**
 * Read the stored heads. An empty list is today's format.
 *
 * @param where - the store, for the error message
 * @throws {NamespaceFormatError} for anything but the two known formats
 */
export function parseStoredHeads (bytes: Uint8Array, where: string): StoredHeads {
  let value: unknown
  try {
    value = decodeJSON<unknown>(bytes)
  } catch {}
  if (Array.isArray(value)) {
    if (value.every(h => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && isDot(h[1]))) return { format: 'dots', heads: value as Array<[string, Dot]> }
    if (value.every(h => typeof h === 'string')) return { format: 'cids', heads: value as string[] }
  }
  throw new NamespaceFormatError(`${where}: the heads record (m!heads) is in no format any build wrote. Nothing was changed. ` +
    `Move ${where} aside and restart: the node bootstraps the namespace from a peer`)
}
