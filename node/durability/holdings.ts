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

/** A manifest this node knows as placer or holder. */
export interface ManifestRecord {
  /** The file's UnixFS root. */
  root: string
  k: number
  m: number
  /** 'origin': this node encoded it and places it; 'holder': a peer placed shards here. */
  role: 'origin' | 'holder'
  /** When every shard was confirmed on its holder (origin only). */
  placed?: number
  /** First seen, ms. */
  since: number
}

/** One shard held here. */
export interface HeldShard {
  stripe: number
  shard: number
  /** The shard block's CID. */
  cid: string
  /** When it was recorded, ms. */
  since: number
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

const MANIFEST = 'm!'
const SHARD = 'h!'
const PLACEMENT = 'p!'
const LAST_SCRUB = 's!last'
/** Written by {@link Holdings.sync}: a synced write makes the unsynced ones before it durable. */
const LAST_SYNC = 'y!sync'

/** Fixed-width stripe and shard numbers, so keys sort numerically. */
function shardKey (manifest: string, stripe: number, shard: number): string {
  return `${SHARD}${manifest}!${stripe.toString(16).padStart(8, '0')}!${shard.toString(16).padStart(2, '0')}`
}

function placementKey (manifest: string, stripe: number): string {
  return `${PLACEMENT}${manifest}!${stripe.toString(16).padStart(8, '0')}`
}

/** The durability store over a {@link KV}. */
export class Holdings {
  /**
   * Manifest records noted with `sync: false` and not written yet: they go
   * to the store in one batch with the next {@link sync} (or before the
   * records are listed), not in one batch each.
   */
  private readonly unwritten = new Map<string, ManifestRecord>()

  constructor (private readonly kv: KV) {}

  async open (): Promise<void> { await this.kv.open() }
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
      : { ...existing, role: existing.role === 'origin' ? 'origin' : record.role, placed: record.placed ?? existing.placed }
    this.unwritten.set(key, next)
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

  /** Record shards as held here (one batch, synced unless `sync` is false: then a later {@link sync} makes it durable). */
  async hold (manifest: CID | string, shards: Array<{ ref: ShardRef, cid: CID }>, now: number, sync = true): Promise<void> {
    const m = manifest.toString()
    const ops: KVOp[] = shards.map(({ ref, cid }) => ({
      type: 'put',
      key: shardKey(m, ref[0], ref[1]),
      value: encodeJSON({ stripe: ref[0], shard: ref[1], cid: cid.toString(), since: now } satisfies HeldShard)
    }))
    if (ops.length > 0) await this.kv.batch(ops, sync)
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

  /** Forget everything about `manifest` (its blocks become garbage). */
  async forget (manifest: CID | string): Promise<void> {
    const m = manifest.toString()
    this.unwritten.delete(m)
    const ops: KVOp[] = [{ type: 'del', key: MANIFEST + m }]
    for await (const [key] of this.kv.iterate({ gte: `${SHARD}${m}!`, lt: `${SHARD}${m}!\xff` })) ops.push({ type: 'del', key })
    for await (const [key] of this.kv.iterate({ gte: `${PLACEMENT}${m}!`, lt: `${PLACEMENT}${m}!\xff` })) ops.push({ type: 'del', key })
    await this.kv.batch(ops, true)
  }

  /** Drop one held shard (e.g. found corrupt). */
  async release (manifest: CID | string, stripe: number, shard: number): Promise<void> {
    await this.kv.batch([{ type: 'del', key: shardKey(manifest.toString(), stripe, shard) }], true)
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

  /** Record when a scrub finished. */
  async noteScrub (time: number): Promise<void> {
    await this.kv.batch([{ type: 'put', key: LAST_SCRUB, value: encodeJSON(time) }], true)
  }

  /** The placement decision of one stripe, if this node made one. */
  async placement (manifest: CID | string, stripe: number): Promise<PlacementRecord | undefined> {
    const bytes = await this.kv.get(placementKey(manifest.toString(), stripe))
    return bytes === undefined ? undefined : decodeJSON<PlacementRecord>(bytes)
  }
}
