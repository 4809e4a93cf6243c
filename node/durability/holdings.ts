/**
 * What this node keeps for durability, in its own LevelDB (`<repo>/durability`):
 * the manifests it placed or holds shards of, the shards it holds, and the
 * placement decisions it made (so `pin status` can say why a shard is where
 * it is). Garbage collection reads it to know which blocks to keep.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { decodeJSON, encodeJSON, type KV, type KVOp } from '../namespace/kv.js'
import type { ShardRef } from '../../protocol/shards.js'
import type { ScrubFindings } from './scrub.js'

/** A manifest this node knows as placer or holder. */
export interface ManifestRecord {
  /** The file's UnixFS root. */
  root: string
  k: number
  m: number
  /** 'origin': this node encoded it and places it; 'holder': a peer placed shards here. */
  role: 'origin' | 'holder'
  /** When every shard was confirmed on its holder, on k+m distinct peers (origin only). */
  placed?: number
  /** Origin only: the last placement went well but over this many live peers, fewer than k+m; placed again when more are live. */
  spreadOver?: number
  /** First seen, ms. */
  since: number
  /**
   * When a garbage collection first found no visible file referring to it
   * (since one last did), ms: its shards are kept for the grace period from
   * then. Cleared by a collection that finds a file referring to it again.
   */
  unreferencedSince?: number
}

/** One shard held here. */
export interface HeldShard {
  stripe: number
  shard: number
  /** The shard block's CID. */
  cid: string
  /** When it was recorded, ms. */
  since: number
  /** The shard's length in bytes (from its stripe); absent in records written before sizes were kept. */
  size?: number
  /** The peer whose `hold` this shard came from: set, the shard counts as held for others. */
  from?: string
}

/** A shard to record with {@link Holdings.hold}. */
export interface ShardToHold {
  ref: ShardRef
  cid: CID
  /** Its length in bytes (counted for others when the hold has a `from`). */
  size?: number
}

/** Options of {@link Holdings.hold}. */
export interface HoldOptions {
  /** The time of the record, ms. */
  now: number
  /** Fsync the batch. @default true (false: a later {@link Holdings.sync} makes it durable) */
  sync?: boolean
  /** The peer that asked this node to hold the shards; absent for this node's own. */
  from?: string
}

/** A placement decision for one stripe. */
export interface PlacementRecord {
  stripe: number
  /** Shard index → peer id. */
  holders: string[]
  /** One line: why these peers (e.g. "6 closest of 7 live peers, 3 zones"). */
  why: string
  time: number
}

/**
 * A file added here under a coded policy while too few nodes were live for
 * its parity to survive a lost node: nothing is coded yet. The repair pass
 * codes and places it once enough nodes are live (docs/durability.md).
 */
export interface DeferredRecord {
  /** The policy to code it with (canonical text). */
  policy: string
  /** The file's size in bytes. */
  size: number
  /** When it was added, ms. */
  since: number
  /**
   * The namespace paths the add bound it to: the coding binds its pin to
   * these. Absent (records of older versions): to every visible file with
   * this content and policy.
   */
  paths?: string[]
}

/**
 * The stored head of a deferred record, one per content **and policy**
 * (`DEFERRED` + root + NUL + policy: one content added at two paths under
 * two policies waits twice, and each is coded with its own policy; keyed by
 * the root alone, the second add's record replaced the first's and the
 * first path was never coded). Its paths are rows of their own
 * (`DEFERRED_PATH` + root + NUL + policy + NUL + path, `bound`), so that one more add of
 * the same content (many files of one content: every create of a mount
 * writing identical files) writes one path row instead of rewriting a list
 * of every path so far (a cost per add that grew with the files). `rev`
 * changes with every note (a conditional drop compares it). Records written
 * before hold their paths inline (`paths`), moved to rows at the next note.
 */
interface DeferredHead extends DeferredRecord {
  rev?: number
  bound?: boolean
}

/**
 * Blocks a peer reserved (`reserve`) and has not bound by a `hold` yet:
 * counted for others from the reservation on, kept by garbage collection
 * until `until`, then dropped with their blocks if no hold bound them.
 */
export interface Reservation {
  /** The peer that reserved it. */
  peer: string
  /** The block (a raw CID). */
  cid: string
  /** Its exact length, as the peer stated it (a push of another length is refused). */
  size: number
  /** When the reservation ends (ms). */
  until: number
}

const MANIFEST = 'm!'
const DEFERRED = 'd!'
const DEFERRED_PATH = 'dp!'
/** The head of the deferred record of `root` under `policy`. */
function deferredKey (root: string, policy: string): string { return DEFERRED + root + '\x00' + policy }
/** The row that binds `path` to the deferred record of `root` under `policy` (`path` empty: the prefix of them all). */
function deferredPathKey (root: string, policy: string, path: string): string { return DEFERRED_PATH + root + '\x00' + policy + '\x00' + path }
const SHARD = 'h!'
const RESERVED = 'r!'
const PLACEMENT = 'p!'
const LAST_SCRUB = 's!last'
/** Written at every open that finds it absent: a store with no key at all at open was created by that open. */
const OPENED = 'o!opened'
/** Set while the shards held here are looked up again in the block store ({@link Holdings.beginRecovery}). */
const RECOVERY = 'o!recovery'
const SCRUB_FINDINGS = 's!found'
/** Written by {@link Holdings.sync}: a synced write makes the unsynced ones before it durable. */
const LAST_SYNC = 'y!sync'

/** Fixed-width stripe and shard numbers, so keys sort numerically. */
function shardKey (manifest: string, stripe: number, shard: number): string {
  return `${SHARD}${manifest}!${stripe.toString(16).padStart(8, '0')}!${shard.toString(16).padStart(2, '0')}`
}

/** What a shard record counts for others: its size when a peer asked for it (none without a record). */
function forOthersSize (record: HeldShard | undefined): number {
  return record?.from === undefined ? 0 : record.size ?? 0
}

function reservationKey (peer: string, cid: string): string {
  return `${RESERVED}${peer}!${cid}`
}

function placementKey (manifest: string, stripe: number): string {
  return `${PLACEMENT}${manifest}!${stripe.toString(16).padStart(8, '0')}`
}

/**
 * A holdings store created in a repo whose block store has blocks (the
 * folder moved aside after damage, or deleted): the shards held here are
 * looked up again in the block store, and garbage collection removes
 * nothing it does not mark until then (node/durability/reclaim.ts).
 */
export interface RecoveryRecord {
  /** When it began, ms. */
  since: number
}

/** The durability store over a {@link KV}. */
export class Holdings {
  /**
   * Manifest records noted with `sync: false` and not written yet: they go
   * to the store in one batch with the next {@link sync} (or before the
   * records are listed), not in one batch each.
   */
  private readonly unwritten = new Map<string, ManifestRecord>()
  /** How many times each manifest's record was noted (grows only: {@link noteUnreferenced} reads again when it moved). */
  private readonly noted = new Map<string, number>()
  /** Bytes of shards held for others, once counted (see {@link heldForOthers}). */
  private forOthers?: Promise<number>

  /** The last write of a deferred record queued ({@link deferredWrite}). */
  private deferredWrites: Promise<void> = Promise.resolve()

  /** Whether the last {@link open} created the store (it had no key at all). */
  private createdByOpen = false

  constructor (private readonly kv: KV) {}

  /**
   * Bytes of the shards recorded as held for other peers (those recorded
   * with a `from`), as their stripes give them: counted by one scan of the
   * shard records at first need, then kept up to date by every change.
   * Records of a hold count from the moment the hold is accepted, before the
   * blocks arrive (a reservation): a hold never pushed is released with its
   * manifest by garbage collection.
   */
  async heldForOthers (): Promise<number> {
    this.forOthers ??= this.countForOthers()
    return await this.forOthers
  }

  /** Bytes that recording `shards` of `manifest` for another peer would add to {@link heldForOthers}. */
  async addedForOthers (manifest: CID | string, shards: ShardToHold[]): Promise<number> {
    const existing = await this.existing(manifest.toString(), shards.map(s => s.ref))
    let added = 0
    for (const { ref, size } of shards) added += (size ?? 0) - forOthersSize(existing.get(shardKey(manifest.toString(), ref[0], ref[1])))
    return added
  }

  private async countForOthers (): Promise<number> {
    let total = 0
    for await (const [, value] of this.kv.iterate({ gte: SHARD, lt: SHARD + '\xff' })) total += forOthersSize(decodeJSON<HeldShard>(value))
    for await (const reservation of this.reservations()) total += reservation.size
    return total
  }

  /**
   * Add `delta` bytes to the count of bytes held for others. Every change
   * counts first ({@link heldForOthers}) and writes after: a first scan
   * running while a change is written would count that change twice.
   */
  private adjustForOthers (delta: number): void {
    if (delta === 0 || this.forOthers === undefined) return
    this.forOthers = this.forOthers.then(total => Math.max(0, total + delta))
  }

  /** The records of `refs` of `manifest` now, by key (one range scan). */
  private async existing (manifest: string, refs: ShardRef[]): Promise<Map<string, HeldShard>> {
    const out = new Map<string, HeldShard>()
    if (refs.length === 0) return out
    const wanted = new Set(refs.map(r => shardKey(manifest, r[0], r[1])))
    let lo = refs[0][0]
    let hi = refs[0][0]
    for (const [stripe] of refs) { lo = Math.min(lo, stripe); hi = Math.max(hi, stripe) }
    const lt = hi + 1 >= 2 ** 32 ? `${SHARD}${manifest}!\xff` : shardKey(manifest, hi + 1, 0)
    for await (const [key, value] of this.kv.iterate({ gte: shardKey(manifest, lo, 0), lt })) {
      if (wanted.has(key)) out.set(key, decodeJSON<HeldShard>(value))
    }
    return out
  }

  async open (): Promise<void> {
    await this.kv.open()
    let empty = true
    for await (const entry of this.kv.iterate({ limit: 1 })) { void entry; empty = false }
    this.createdByOpen = empty
    // a store that once held records and lost them all is not taken for a new one at its next open
    if (await this.kv.get(OPENED) === undefined) await this.kv.batch([{ type: 'put', key: OPENED, value: encodeJSON(Date.now()) }], true)
    await this.rekeyDeferred()
  }

  /**
   * True when the last {@link open} created the store: it had no key at all
   * (a new node, or a store moved aside or deleted). A store of an older
   * version with no record at all counts as created once.
   */
  get created (): boolean {
    return this.createdByOpen
  }

  /**
   * {@link created}, told once per open: the first caller (the durability
   * service's first start after the open) decides whether a recovery
   * begins; a service started again over the same open store (a restart of
   * the service alone) is told false, as its blocks were put since.
   */
  takeCreated (): boolean {
    const created = this.createdByOpen
    this.createdByOpen = false
    return created
  }

  /** The recovery under way, if the shards held here are being looked up again ({@link beginRecovery}). */
  async recovery (): Promise<RecoveryRecord | undefined> {
    const bytes = await this.kv.get(RECOVERY)
    return bytes === undefined ? undefined : decodeJSON<RecoveryRecord>(bytes)
  }

  /** Record (fsynced) that the shards held here are looked up again from now on; a recovery under way keeps its start. */
  async beginRecovery (since: number): Promise<void> {
    if (await this.recovery() !== undefined) return
    await this.kv.batch([{ type: 'put', key: RECOVERY, value: encodeJSON({ since } satisfies RecoveryRecord) }], true)
  }

  /** The shards held here are known again: the recovery ends (fsynced). */
  async endRecovery (): Promise<void> {
    await this.kv.batch([{ type: 'del', key: RECOVERY }], true)
  }

  /**
   * Records of older versions were keyed by the root alone (`d!<root>`, path
   * rows `dp!<root>` + NUL + path): moved to the keys of their policy, in one
   * batch, before anything reads them.
   */
  private async rekeyDeferred (): Promise<void> {
    const ops: KVOp[] = []
    for await (const [key, value] of this.kv.iterate({ gte: DEFERRED, lt: DEFERRED + '\xff' })) {
      const root = key.slice(DEFERRED.length)
      if (root.includes('\x00')) continue
      const { policy } = decodeJSON<DeferredHead>(value)
      ops.push({ type: 'del', key }, { type: 'put', key: deferredKey(root, policy), value })
      const prefix = DEFERRED_PATH + root + '\x00'
      for await (const [row, noted] of this.kv.iterate({ gte: prefix, lt: prefix + '\xff' })) {
        // a path starts with '/', a policy never does: rows of the new form are left alone
        const path = row.slice(prefix.length)
        if (path.startsWith('/')) ops.push({ type: 'del', key: row }, { type: 'put', key: deferredPathKey(root, policy, path), value: noted })
      }
    }
    if (ops.length > 0) await this.kv.batch(ops, true)
  }
  async close (): Promise<void> {
    await this.writeUnwritten(false)
    await this.kv.close()
  }

  /** The record of `manifest`, if known. */
  async manifest (manifest: CID | string): Promise<ManifestRecord | undefined> {
    const pending = this.unwritten.get(manifest.toString())
    if (pending !== undefined) return pending
    const bytes = await this.kv.get(MANIFEST + manifest.toString())
    return bytes === undefined ? undefined : decodeJSON<ManifestRecord>(bytes)
  }

  /**
   * Create or update a manifest record (an origin record is never turned into
   * a holder one). `sync: false` leaves the write and its fsync to a later
   * {@link sync}: many records noted that way cost one batch.
   */
  async noteManifest (manifest: CID | string, record: ManifestRecord, sync = true): Promise<void> {
    const key = manifest.toString()
    const existing = await this.manifest(key)
    const next: ManifestRecord = existing === undefined
      ? record
      // a hold or placement of it now: its grace as an unreferenced manifest starts over (the next pass finds it so again)
      : { ...existing, role: existing.role === 'origin' ? 'origin' : record.role, placed: record.placed ?? existing.placed, spreadOver: record.placed !== undefined ? undefined : record.spreadOver ?? existing.spreadOver, unreferencedSince: undefined }
    this.unwritten.set(key, next)
    this.noted.set(key, (this.noted.get(key) ?? 0) + 1)
    if (sync) await this.writeUnwritten(true)
  }

  /** Write the records noted with `sync: false` (and `extra`) in one batch. */
  private async writeUnwritten (sync: boolean, extra: KVOp[] = []): Promise<void> {
    const records = [...this.unwritten]
    this.unwritten.clear()
    const ops: KVOp[] = records.map(([key, record]) => ({ type: 'put', key: MANIFEST + key, value: encodeJSON(record) }))
    ops.push(...extra)
    if (ops.length === 0) return
    try {
      await this.kv.batch(ops, sync)
    } catch (err) {
      // not written: keep them for the next try (a newer note of the same record wins)
      for (const [key, record] of records) if (!this.unwritten.has(key)) this.unwritten.set(key, record)
      throw err
    }
  }

  /** Every manifest record. */
  async * manifests (): AsyncGenerator<[string, ManifestRecord]> {
    if (this.unwritten.size > 0) await this.writeUnwritten(false)
    for await (const [key, value] of this.kv.iterate({ gte: MANIFEST, lt: MANIFEST + '\xff' })) {
      yield [key.slice(MANIFEST.length), decodeJSON<ManifestRecord>(value)]
    }
  }

  /**
   * Record shards as held here (one batch, synced unless `sync` is false:
   * then a later {@link sync} makes it durable). With `from`, they count as
   * held for that peer in {@link heldForOthers}; a shard recorded again
   * replaces its earlier record, but one held for a peer stays held for it
   * when recorded again without `from` (rebuilt here by a scrub or a
   * repair, or placed here by this node's own placement of the manifest):
   * its bytes count for others whichever path stored them.
   */
  async hold (manifest: CID | string, shards: ShardToHold[], options: HoldOptions): Promise<void> {
    if (shards.length === 0) return
    const m = manifest.toString()
    await this.heldForOthers()
    const before = await this.existing(m, shards.map(s => s.ref))
    let delta = 0
    const ops: KVOp[] = shards.map(({ ref, cid, size }) => {
      const key = shardKey(m, ref[0], ref[1])
      const earlier = before.get(key)
      const record: HeldShard = { stripe: ref[0], shard: ref[1], cid: cid.toString(), since: options.now }
      if (size !== undefined) record.size = size
      const from = options.from ?? earlier?.from
      if (from !== undefined) record.from = from
      delta += forOthersSize(record) - forOthersSize(earlier)
      return { type: 'put', key, value: encodeJSON(record) }
    })
    await this.kv.batch(ops, options.sync !== false)
    this.adjustForOthers(delta)
  }

  /** Fsync every write made so far (those made with `sync: false` included): one synced write covers the ones before it. */
  async sync (): Promise<void> {
    await this.writeUnwritten(true, [{ type: 'put', key: LAST_SYNC, value: encodeJSON(Date.now()) }])
  }

  /** Shards of `manifest` held here, in stripes [from, from + count). */
  async * held (manifest: CID | string, from = 0, count = Number.MAX_SAFE_INTEGER): AsyncGenerator<HeldShard> {
    const m = manifest.toString()
    const end = Math.min(from + count, 2 ** 32)
    const lt = end >= 2 ** 32 ? `${SHARD}${m}!\xff` : shardKey(m, end, 0)
    for await (const [, value] of this.kv.iterate({ gte: shardKey(m, from, 0), lt })) {
      yield decodeJSON<HeldShard>(value)
    }
  }

  /**
   * Record, in one fsynced batch, since when (ms) no visible file has
   * referred to each manifest of `marks`, or that one does again (undefined).
   * Records not here (forgotten meanwhile) are skipped.
   */
  async noteUnreferenced (marks: ReadonlyArray<[string, number | undefined]>): Promise<void> {
    for (const [m, at] of marks) {
      // read again when a note changed the record during the read (its `placed`, say, would be lost)
      let record: ManifestRecord | undefined
      let noted: number | undefined
      do {
        noted = this.noted.get(m)
        record = await this.manifest(m)
      } while (this.noted.get(m) !== noted)
      if (record === undefined) continue
      const next: ManifestRecord = { ...record }
      if (at === undefined) delete next.unreferencedSince
      else next.unreferencedSince = at
      this.unwritten.set(m, next)
    }
    await this.writeUnwritten(true)
  }

  /** Forget everything about `manifest` (its blocks become garbage). */
  async forget (manifest: CID | string): Promise<void> {
    const m = manifest.toString()
    this.unwritten.delete(m)
    this.noted.delete(m)
    await this.heldForOthers()
    const ops: KVOp[] = [{ type: 'del', key: MANIFEST + m }]
    let freed = 0
    for await (const [key, value] of this.kv.iterate({ gte: `${SHARD}${m}!`, lt: `${SHARD}${m}!\xff` })) {
      ops.push({ type: 'del', key })
      freed += forOthersSize(decodeJSON<HeldShard>(value))
    }
    for await (const [key] of this.kv.iterate({ gte: `${PLACEMENT}${m}!`, lt: `${PLACEMENT}${m}!\xff` })) ops.push({ type: 'del', key })
    await this.kv.batch(ops, true)
    this.adjustForOthers(-freed)
  }

  /** Drop one held shard (e.g. found corrupt). */
  async release (manifest: CID | string, stripe: number, shard: number): Promise<void> {
    const m = manifest.toString()
    await this.heldForOthers()
    const before = await this.existing(m, [[stripe, shard]])
    await this.kv.batch([{ type: 'del', key: shardKey(m, stripe, shard) }], true)
    this.adjustForOthers(-forOthersSize(before.get(shardKey(m, stripe, shard))))
  }

  /**
   * Drop held shards of `manifest` in one batch (synced unless `sync` is
   * false): their blocks become garbage unless something else keeps them.
   */
  async releaseShards (manifest: CID | string, refs: ShardRef[], sync = true): Promise<void> {
    if (refs.length === 0) return
    const m = manifest.toString()
    await this.heldForOthers()
    const before = await this.existing(m, refs)
    let freed = 0
    for (const record of before.values()) freed += forOthersSize(record)
    await this.kv.batch(refs.map(([stripe, shard]) => ({ type: 'del', key: shardKey(m, stripe, shard) })), sync)
    this.adjustForOthers(-freed)
  }

  /**
   * Record that `peer` reserved `blocks` until `until` (fsynced): they count
   * for others from now on ({@link heldForOthers}). A block reserved again
   * by the same peer starts over.
   *
   * `present` are blocks of the same request this node holds already (they
   * are not pushed): reserved too, so that a collection before the `hold`
   * keeps them, but they count no new bytes (a reservation of the same peer
   * keeps what it counted).
   */
  async reserve (peer: string, blocks: Array<{ cid: CID, size: number }>, until: number, present: CID[] = []): Promise<void> {
    if (blocks.length === 0 && present.length === 0) return
    await this.heldForOthers()
    const before = new Map((await this.reservedAmong(peer, [...blocks.map(b => b.cid), ...present])).map(([, r]) => [r.cid, r.size]))
    let added = 0
    for (const size of before.values()) added -= size
    const sized = [...blocks, ...present.map(cid => ({ cid, size: before.get(cid.toString()) ?? 0 }))]
    const ops: KVOp[] = sized.map(({ cid, size }) => {
      added += size
      const record: Reservation = { peer, cid: cid.toString(), size, until }
      return { type: 'put', key: reservationKey(peer, cid.toString()), value: encodeJSON(record) }
    })
    await this.kv.batch(ops, true)
    this.adjustForOthers(added)
  }

  /** Bytes `peer` has reserved of `cids` now. */
  async reservedOf (peer: string, cids: Array<CID | string>): Promise<number> {
    let total = 0
    for (const [, r] of await this.reservedAmong(peer, cids)) total += r.size
    return total
  }

  /**
   * The reservations of `peer` among `cids`, by key: one range scan of that
   * peer's reservations (a few batches of a streamed placement, or none),
   * not a read per CID (a hold names up to 65,536 shards).
   */
  private async reservedAmong (peer: string, cids: Array<CID | string>): Promise<Array<[string, Reservation]>> {
    const out: Array<[string, Reservation]> = []
    if (cids.length === 0) return out
    const wanted = new Set(cids.map(String))
    const prefix = reservationKey(peer, '')
    for await (const [key, value] of this.kv.iterate({ gte: prefix, lt: prefix + '\xff' })) {
      const r = decodeJSON<Reservation>(value)
      if (wanted.has(r.cid)) out.push([key, r])
    }
    return out
  }

  /** Every reservation, expired or not (garbage collection drops the expired ones). */
  async * reservations (): AsyncGenerator<Reservation> {
    for await (const [, value] of this.kv.iterate({ gte: RESERVED, lt: RESERVED + '\xff' })) yield decodeJSON<Reservation>(value)
  }

  /** End the reservations of `cids` by `peer` (a hold bound them, or they expired). */
  async endReservations (peer: string, cids: Array<CID | string>, sync = true): Promise<void> {
    await this.heldForOthers()
    const ended = await this.reservedAmong(peer, cids)
    if (ended.length === 0) return
    let freed = 0
    for (const [, r] of ended) freed += r.size
    await this.kv.batch(ended.map(([key]) => ({ type: 'del', key })), sync)
    this.adjustForOthers(-freed)
  }

  /** Record placement decisions. */
  async notePlacements (manifest: CID | string, records: PlacementRecord[]): Promise<void> {
    const m = manifest.toString()
    if (records.length === 0) return
    await this.kv.batch(records.map(r => ({ type: 'put', key: placementKey(m, r.stripe), value: encodeJSON(r) })), false)
  }

  /** When the last scrub finished (ms), if ever. */
  async lastScrub (): Promise<number | undefined> {
    const bytes = await this.kv.get(LAST_SCRUB)
    return bytes === undefined ? undefined : decodeJSON<number>(bytes)
  }

  /** Record when a scrub finished, and what it found (kept until the next scrub's). */
  async noteScrub (time: number, findings?: ScrubFindings): Promise<void> {
    const ops: KVOp[] = [{ type: 'put', key: LAST_SCRUB, value: encodeJSON(time) }]
    if (findings !== undefined) ops.push({ type: 'put', key: SCRUB_FINDINGS, value: encodeJSON(findings) })
    await this.kv.batch(ops, true)
  }

  /** What the last scrub that ran found, if one ran. */
  async scrubFindings (): Promise<ScrubFindings | undefined> {
    const bytes = await this.kv.get(SCRUB_FINDINGS)
    return bytes === undefined ? undefined : decodeJSON<ScrubFindings>(bytes)
  }

  /** The placement decision of one stripe, if this node made one. */
  async placement (manifest: CID | string, stripe: number): Promise<PlacementRecord | undefined> {
    const bytes = await this.kv.get(placementKey(manifest.toString(), stripe))
    return bytes === undefined ? undefined : decodeJSON<PlacementRecord>(bytes)
  }

  /**
   * Record that the file `root` waits to be coded under `record.policy`. A
   * record of the same content and policy that waits already keeps its
   * paths too (two adds of one content at two paths: both are bound); one of
   * another policy is another record, left as it is. `sync: false` leaves
   * the fsync to a later {@link sync}.
   */
  async noteDeferred (root: CID | string, record: DeferredRecord, sync = true): Promise<void> {
    await this.deferredWrite(async () => {
      const text = root.toString()
      const head = await this.deferredHead(text, record.policy)
      const ops: KVOp[] = []
      const replaces = head === undefined
      const headHasPaths = head !== undefined && (head.bound === true || head.paths !== undefined)
      // the same policy: the paths of both, or none (every visible file) when either has none
      const keepsPaths = !replaces && headHasPaths && record.paths !== undefined
      if (!keepsPaths && head?.bound === true) ops.push(...(await this.deferredPathKeys(text, record.policy)).map((key): KVOp => ({ type: 'del', key })))
      const paths = replaces ? record.paths : keepsPaths ? [...(head?.paths ?? []), ...(record.paths ?? [])] : undefined
      const next: DeferredHead = { policy: record.policy, size: record.size, since: record.since, rev: (head?.rev ?? 0) + 1 }
      // each path row holds the revision that noted it last: a round of coding that bound it drops it unless noted again since
      const rev = encodeJSON(next.rev)
      for (const path of new Set(paths)) ops.push({ type: 'put', key: deferredPathKey(text, record.policy, path), value: rev })
      if (paths !== undefined) next.bound = true
      ops.push({ type: 'put', key: deferredKey(text, record.policy), value: encodeJSON(next) })
      await this.kv.batch(ops, sync)
    })
  }

  /**
   * The size and time of the deferred record of `root` under `policy`
   * (canonical), if it waits: one read, without its paths (rows that grow
   * with every add of the same content).
   */
  async deferredHeadOf (root: CID | string, policy: string): Promise<Omit<DeferredRecord, 'paths'> | undefined> {
    const head = await this.deferredHead(root.toString(), policy)
    return head === undefined ? undefined : { policy: head.policy, size: head.size, since: head.since }
  }

  /** The deferred record of the file `root` under `policy` (canonical), if it waits. */
  async deferredOf (root: CID | string, policy: string): Promise<DeferredRecord | undefined> {
    const text = root.toString()
    const head = await this.deferredHead(text, policy)
    return head === undefined ? undefined : await this.withPaths(text, head)
  }

  private async deferredHead (root: string, policy: string): Promise<DeferredHead | undefined> {
    const bytes = await this.kv.get(deferredKey(root, policy))
    return bytes === undefined ? undefined : decodeJSON<DeferredHead>(bytes)
  }

  /** A stored head as the record it stands for (its path rows read). */
  private async withPaths (root: string, head: DeferredHead): Promise<DeferredRecord> {
    if (head.bound !== true) return head
    const prefix = deferredPathKey(root, head.policy, '')
    const { bound: _bound, ...record } = head
    return { ...record, paths: (await this.deferredPathKeys(root, head.policy)).map(key => key.slice(prefix.length)) }
  }

  private async deferredPathKeys (root: string, policy: string): Promise<string[]> {
    const prefix = deferredPathKey(root, policy, '')
    const keys: string[] = []
    for await (const [key] of this.kv.iterate({ gte: prefix, lt: prefix + '\xff' })) keys.push(key)
    return keys
  }

  /** Every file that waits to be coded: root → record (a root waiting under two policies comes twice). */
  async * deferred (): AsyncGenerator<[string, DeferredRecord]> {
    for await (const [key, value] of this.kv.iterate({ gte: DEFERRED, lt: DEFERRED + '\xff' })) {
      const rest = key.slice(DEFERRED.length)
      const root = rest.slice(0, rest.indexOf('\x00'))
      yield [root, await this.withPaths(root, decodeJSON<DeferredHead>(value))]
    }
  }

  /** The file `root` waits no more under `policy` (coded, or gone from the namespace). */
  async dropDeferred (root: CID | string, policy: string): Promise<void> {
    await this.deferredWrite(async () => { await this.kv.batch(await this.deferredDrops(root.toString(), policy), true) })
  }

  /**
   * Drop the deferred record of `root` if it is still `seen` (the revision
   * {@link deferredOf} read); false when another add rewrote it meanwhile.
   * Then only the paths added or noted again since still wait: the rows of
   * the paths `seen` named, bound by the caller, are dropped, so that the
   * next round binds the new paths alone — not every path again (identical
   * files added while one is coded: each round rebound all of them).
   */
  async dropDeferredIf (root: CID | string, seen: DeferredRecord): Promise<boolean> {
    return await this.deferredWrite(async () => {
      const text = root.toString()
      const now = await this.deferredHead(text, seen.policy)
      const seenRev = (seen as DeferredHead).rev
      if (now === undefined || (now.rev !== undefined ? now.rev === seenRev : Buffer.compare(encodeJSON(now), encodeJSON(seen)) === 0)) {
        await this.kv.batch(await this.deferredDrops(text, seen.policy), true)
        return true
      }
      if (now.bound === true && seen.paths !== undefined && seenRev !== undefined) await this.dropPathRows(text, seen.policy, { bound: new Set(seen.paths), seenRev })
      return false
    })
  }

  /** Drop the path rows of `root`'s record under `policy` whose path is in `bound`, unless noted again after `seenRev`. */
  private async dropPathRows (root: string, policy: string, rows: { bound: ReadonlySet<string>, seenRev: number }): Promise<void> {
    const prefix = deferredPathKey(root, policy, '')
    const ops: KVOp[] = []
    for await (const [key, value] of this.kv.iterate({ gte: prefix, lt: prefix + '\xff' })) {
      // a row of an older build holds nothing: noted before any revision
      const noted = value.byteLength === 0 ? 0 : decodeJSON<number>(value)
      if (noted <= rows.seenRev && rows.bound.has(key.slice(prefix.length))) ops.push({ type: 'del', key })
    }
    if (ops.length > 0) await this.kv.batch(ops, true)
  }

  /**
   * Keep the deferred record of `root` that a coding bound but for the
   * paths `left` (they showed no file waiting for it): the rows of the
   * other paths `seen` named go, unless noted again since. True when the
   * record is still `seen` (no add noted it since); false when one did, and
   * its new paths wait for another round.
   */
  async keepDeferredPaths (root: CID | string, seen: DeferredRecord, left: readonly string[]): Promise<boolean> {
    return await this.deferredWrite(async () => {
      const text = root.toString()
      const now = await this.deferredHead(text, seen.policy)
      const seenRev = (seen as DeferredHead).rev
      if (now === undefined) return true
      if (now.bound === true && seen.paths !== undefined && seenRev !== undefined) {
        const keep = new Set(left)
        await this.dropPathRows(text, seen.policy, { bound: new Set(seen.paths.filter(path => !keep.has(path))), seenRev })
      }
      return now.rev === seenRev
    })
  }

  /** The deletes of `root`'s deferred record under `policy` and its path rows. */
  private async deferredDrops (root: string, policy: string): Promise<KVOp[]> {
    return [{ type: 'del', key: deferredKey(root, policy) }, ...(await this.deferredPathKeys(root, policy)).map((key): KVOp => ({ type: 'del', key }))]
  }

  /** Writes of deferred records, one after another (a conditional drop reads, then writes). */
  private async deferredWrite<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.deferredWrites.then(fn)
    this.deferredWrites = run.then(() => undefined, () => undefined)
    return await run
  }
}
