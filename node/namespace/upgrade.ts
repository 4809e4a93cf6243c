/**
 * Stores written by older builds (docs/namespace.md, "On-disk format and
 * upgrades"): how to recognise them and read what they hold. Four formats
 * predate today's:
 *
 * 1. the single-node namespace (before the replica): one JSON record per
 *    name, keyed `<parent>\0<name>` — `{ type: 'file', cid, size, mode, mtime }`
 *    or `{ type: 'dir', mode, mtime }`, the root not stored;
 * 2. a development build of the replica whose `m!heads` was a list of head
 *    CIDs (strings) instead of `[cid, dot]` pairs, and whose snapshot roots
 *    had no `headDots`;
 * 3. clock and members as one record each (`m!clock`, `m!members`) instead
 *    of one row per author and per member (rows.ts);
 * 4. the heads as one record (`m!heads`, `[cid, dot]` pairs) instead of one
 *    row per head.
 *
 * The replica's `open` upgrades such a store in place with what this module
 * reads and does ({@link upgradeRows}, {@link upgradeHeadRows}, {@link loadHeads},
 * {@link migrateSingleNode}); anything it cannot upgrade without losing
 * data is refused with a {@link NamespaceFormatError} before anything is
 * changed. The upgrades reach the rest of the replica through
 * {@link UpgradeComponents} only.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { decodeEntry, type Op } from '../../protocol/namespace.js'
import { cborCID } from '../blocks/verify.js'
import { ShoalError } from '../errors.js'
import { Txn, decodeJSON } from './kv.js'
import { baseName, joinPath, normalizePath, parentOf } from './paths.js'
import { HEAD_RANGE, LEGACY_CLOCK_KEY, LEGACY_HEADS_KEY, LEGACY_MEMBERS_KEY, cidOfHeadKey, clockKey, entryKey, headKey, memberKey } from './rows.js'
import type { Dot, VectorClock } from './clock.js'
import type { Member } from './members.js'
import type { ReplicaStore } from './store.js'
import { TREE_PREFIXES, type Version, type Visible } from './tree.js'
import type { Logger } from '../logger.js'

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

/** What the upgrades use of the replica. */
export interface UpgradeComponents {
  store: ReplicaStore
  logger: Logger
  /** The snapshot module (snapshots.ts): the live versions, and rewriting the snapshot. */
  snapshots: {
    exists: () => Promise<boolean>
    readable: () => Promise<boolean>
    collectState: () => Promise<Map<string, Version[]>>
    writeFullSnapshot: (txn: Txn, state: Map<string, Version[]>, clock: VectorClock, heads: Map<string, Dot>) => Promise<unknown>
  }
  /** The visible record at a path (reads.ts). */
  visible: (path: string) => Promise<Visible | undefined>
  /** Commit ops as local writes of this replica (writes.ts); the caller holds the lock. */
  commitLocal: (ops: Op[], alsoInBatch?: (txn: Txn) => void) => Promise<void>
}

/**
 * A store whose clock and members are whole records (`m!clock`,
 * `m!members`, before the per-row layout) gets one row per author and per
 * member instead, in one batch.
 */
export async function upgradeRows (c: Pick<UpgradeComponents, 'store' | 'logger'>, clock: VectorClock | undefined, members: Record<string, Member> | undefined): Promise<void> {
  const txn = new Txn(c.store.kv)
  for (const [author, n] of Object.entries(clock ?? {})) txn.put(clockKey(author), n)
  for (const [peer, m] of Object.entries(members ?? {})) txn.put(memberKey(peer), m)
  txn.del(LEGACY_CLOCK_KEY)
  txn.del(LEGACY_MEMBERS_KEY)
  await txn.commit(true)
  c.logger.info({ authors: Object.keys(clock ?? {}).length, members: Object.keys(members ?? {}).length }, 'namespace store upgraded: clock and members stored per row')
}

/**
 * A snapshot written by an older build (a root over flat shards, without
 * tips: peers of this build refuse it) is written again in today's format
 * from the live versions, so the node can serve peers that are behind it
 * from the start, not only after its next compaction.
 */
export async function upgradeSnapshot (c: Pick<UpgradeComponents, 'store' | 'logger' | 'snapshots'>): Promise<void> {
  const { store, snapshots } = c
  if (await snapshots.readable()) return
  const txn = new Txn(store.kv)
  const state = await snapshots.collectState()
  await snapshots.writeFullSnapshot(txn, state, store.clock, store.heads)
  await txn.commit(true)
  c.logger.info({ paths: state.size }, 'namespace store upgraded: snapshot written again as a tree with tips')
}

/**
 * The stored heads: the head rows (`h!`), or the whole-heads record
 * (`m!heads`) of a store written before them — upgraded from the
 * development build's format when needed ({@link upgradeHeads}); a record
 * in today's pairs becomes rows later, with the other upgrades that change
 * the store ({@link upgradeHeadRows}).
 *
 * @throws {NamespaceFormatError} for heads in no known format, or that cannot be upgraded
 */
export async function loadHeads (c: UpgradeComponents): Promise<Map<string, Dot>> {
  const bytes = await c.store.kv.get(LEGACY_HEADS_KEY)
  if (bytes === undefined) return await readHeadRows(c.store)
  const stored = parseStoredHeads(bytes, c.store.where)
  if (stored.format === 'dots') return new Map(stored.heads)
  return await upgradeHeads(c, stored.heads)
}

/** The head rows, each checked. */
async function readHeadRows (store: ReplicaStore): Promise<Map<string, Dot>> {
  const heads = new Map<string, Dot>()
  for await (const [key, value] of store.kv.iterate({ ...HEAD_RANGE })) {
    let dot: unknown
    try {
      dot = decodeJSON<unknown>(value)
    } catch {}
    if (!isDot(dot)) {
      throw new NamespaceFormatError(`${store.where}: head row ${key} holds no dot. Nothing was changed. ` +
        `Move ${store.where} aside and restart: the node bootstraps the namespace from a peer`)
    }
    heads.set(cidOfHeadKey(key), dot)
  }
  return heads
}

/**
 * A store whose heads are one record (`m!heads`, before the head rows) gets
 * one row per head instead, in one batch: the heads loaded at open, which
 * are that record's.
 */
export async function upgradeHeadRows (c: Pick<UpgradeComponents, 'store' | 'logger'>): Promise<void> {
  const { store } = c
  if (await store.kv.get(LEGACY_HEADS_KEY) === undefined) return
  const txn = new Txn(store.kv)
  await txn.clearPrefix(HEAD_RANGE.gt)
  for (const [head, dot] of store.heads) txn.put(headKey(head), dot)
  txn.del(LEGACY_HEADS_KEY)
  await txn.commit(true)
  c.logger.info({ heads: store.heads.size }, 'namespace store upgraded: heads stored per row')
}

/**
 * Heads of the development build (CIDs without dots): read each head's dot
 * from its stored entry; then, in the same batch, recompute the visible
 * tree from the live versions (that build could hide a second conflict copy
 * of one author within one second) and rewrite the snapshot, if any (its
 * root had no head dots, which peers now require).
 *
 * @throws {NamespaceFormatError} when a head's entry is no longer stored (nothing is changed)
 */
async function upgradeHeads (c: UpgradeComponents, cids: string[]): Promise<Map<string, Dot>> {
  const { store, snapshots } = c
  const where = store.where
  const heads = new Map<string, Dot>()
  for (const head of cids) {
    const bytes = await store.kv.get(entryKey(head))
    let dot: Dot | undefined
    try {
      if (bytes !== undefined && cborCID(bytes).toString() === head) {
        const entry = decodeEntry(bytes)
        dot = [entry.author, entry.seq]
      }
    } catch {}
    if (dot === undefined) {
      throw new NamespaceFormatError(`${where} was written by a development build of the replica (heads without their dots), ` +
        `and head entry ${head} is no longer stored (pruned by compaction, or corrupt), so its place in the history cannot be recovered. ` +
        `Nothing was changed. Move ${where} aside and restart the node: it bootstraps the namespace from a peer's snapshot, ` +
        'recovering its own past writes before it writes again (writes wait until a peer answered) ' +
        '(paths written only on this node and never synced must then be added again; their content is still in the block store)')
    }
    heads.set(head, dot)
  }
  const state = await snapshots.collectState()
  const batch = store.batch(store.clock, heads)
  // the heads become rows with this commit (no head is adopted yet, so every one is written)
  batch.txn.del(LEGACY_HEADS_KEY)
  for (const prefix of TREE_PREFIXES) await batch.txn.clearPrefix(prefix)
  for (const [path, versions] of state) await batch.tree.load(path, versions)
  const rewrite = await snapshots.exists()
  if (rewrite) await snapshots.writeFullSnapshot(batch.txn, state, store.clock, heads)
  await store.commit(batch)
  c.logger.info({ heads: heads.size, paths: state.size, snapshot: rewrite }, 'namespace store upgraded: heads with dots')
  return heads
}

/**
 * Records of the single-node namespace (keys `<parent>\0<name>`) become
 * ordinary local writes of this replica — mkdir and put ops that replace
 * nothing, so a record at a path this replica already holds stays visible
 * next to it (as a conflict copy, or merged for directories) — and the old
 * keys go, all in one batch. A directory this replica already shows, and a
 * file it already shows with the same content, need no op.
 *
 * @throws {NamespaceFormatError} for a record that build could not have written (nothing is changed)
 */
export async function migrateSingleNode (c: UpgradeComponents): Promise<void> {
  const { store } = c
  const keys: string[] = []
  const records: LegacyRecord[] = []
  for await (const [key, value] of store.kv.iterate({ ...LEGACY_RANGE })) {
    keys.push(key)
    records.push(parseLegacyRecord(key, value, store.where))
  }
  if (keys.length === 0) return
  await store.exclusive(async () => {
    const ops: Op[] = []
    // key order (`<parent>\0<name>`) puts every directory before what it holds
    for (const r of records) {
      const current = await c.visible(r.path)
      if (r.type === 'dir') {
        if (current?.type !== 'dir') ops.push({ op: 'mkdir', path: r.path, mode: r.mode, mtime: r.mtime, replaces: [] })
      } else if (!(current?.type === 'file' && current.conflictOf === undefined && current.cid === r.cid.toString() && current.size === r.size)) {
        ops.push({ op: 'put', path: r.path, cid: r.cid, size: r.size, mode: r.mode, mtime: r.mtime, replaces: [] })
      }
    }
    await c.commitLocal(ops, txn => { for (const key of keys) txn.del(key) })
    c.logger.info({ records: keys.length, ops: ops.length }, 'namespace store upgraded: single-node records migrated into the replica')
  })
}
