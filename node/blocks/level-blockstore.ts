import { ClassicLevel } from 'classic-level'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { verifyBlock } from './verify.js'
import { idOf, once, throwIfAborted } from './util.js'
import { BlockStoreBase } from './store-base.js'
import type { AbortOptions, BlockStore, BlockStoreComponents, BlockStoreInit } from './api.js'
import type { Pair } from 'interface-blockstore'

const RAW = 0x55
const MiB = 1024 * 1024

type Pending = Map<string, { key: Uint8Array, bytes: Uint8Array }>

function keyOf (cid: CID): Uint8Array {
  return cid.multihash.bytes
}

/**
 * The former block store, kept as the source of the migration to packs
 * ({@link migrateLegacyBlocks}) and for tests: block bytes as LevelDB values
 * (classic-level), keyed by multihash so a block stored under a raw and a dag-pb CID is kept once.
 *
 * Writes go to an in-memory write-behind batch that is flushed to LevelDB
 * without fsync once it holds `flushBytes`; {@link LegacyLevelBlockStore.commit}
 * flushes what is left with `sync: true`, which also makes every earlier
 * unsynced write durable (LevelDB's log is append-only). Readers see pending
 * blocks at once. Every read is hash-checked.
 */
export class LegacyLevelBlockStore extends BlockStoreBase implements BlockStore {
  /** Values carry no checksum of their own: every read is hash-checked. */
  protected readonly hashOnRead = true
  private readonly db: ClassicLevel<Uint8Array, Uint8Array>
  private readonly flushBytes: number
  private pending: Pending = new Map()
  private pendingBytes = 0
  private readonly flushing = new Set<Pending>()
  private flushChain: Promise<void> = Promise.resolve()
  private flushError: Error | undefined

  constructor (components: BlockStoreComponents, init: BlockStoreInit) {
    super(components)
    this.flushBytes = init.flushBytes ?? 16 * MiB
    // Tuned for large values: the defaults cap batch writes near 70 MB/s
    // (compaction of small 4 MiB tables, snappy on incompressible data).
    this.db = new ClassicLevel<Uint8Array, Uint8Array>(init.path, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      writeBufferSize: init.writeBufferSize ?? 64 * MiB,
      maxFileSize: 64 * MiB,
      cacheSize: init.cacheSize ?? 64 * MiB,
      compression: false
    })
  }

  async open (): Promise<void> {
    await this.db.open()
  }

  async close (): Promise<void> {
    if (this.db.status !== 'open') return
    await this.commit()
    await this.db.close()
  }

  async put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<CID> {
    const { data, multihash: key, id } = await this.acceptPut(cid, bytes, options)
    if (!this.pending.has(id)) {
      this.pending.set(id, { key, bytes: data })
      this.pendingBytes += data.byteLength
      this.components.metrics?.blocksWritten.inc()
      this.components.metrics?.bytesWritten.inc(data.byteLength)
    }
    if (this.pendingBytes >= this.flushBytes) {
      // double buffering: one batch is written while the next one fills;
      // a writer only waits when both are full
      if (this.flushing.size > 0) await this.flushChain
      if (this.pendingBytes >= this.flushBytes) void this.startFlush(false)
      this.throwIfFlushFailed()
    }
    return cid
  }

  protected async readStored (key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.findPending(idOf(key)) ?? await this.db.get(key)
  }

  async has (cid: CID, options?: AbortOptions): Promise<boolean> {
    throwIfAborted(options)
    if (cid.multihash.code === 0x00) return true
    const key = keyOf(cid)
    if (this.findPending(idOf(key)) !== undefined) return true
    return (await this.db.has(key))
  }

  async delete (cid: CID, options?: AbortOptions): Promise<void> {
    throwIfAborted(options)
    const key = keyOf(cid)
    const id = idOf(key)
    const entry = this.pending.get(id)
    if (entry !== undefined) {
      this.pending.delete(id)
      this.pendingBytes -= entry.bytes.byteLength
    }
    await this.flushChain
    await this.db.del(key)
  }

  /**
   * Every stored block, in key order. Blocks are keyed by multihash, so each
   * is yielded under a CIDv1 with the raw codec. Bytes are hash-checked.
   */
  async * getAll (options?: AbortOptions): AsyncGenerator<Pair> {
    await this.flush(false)
    for await (const [key, bytes] of this.db.iterator()) {
      throwIfAborted(options)
      const cid = CID.createV1(RAW, Digest.decode(key))
      verifyBlock(cid, bytes)
      yield { cid, bytes: once(bytes) }
    }
  }

  /**
   * Every stored block's CID (raw codec: blocks are keyed by multihash),
   * in key order, without reading values.
   */
  async * cids (options?: AbortOptions): AsyncGenerator<CID> {
    await this.flush(false)
    for await (const key of this.db.keys()) {
      throwIfAborted(options)
      yield CID.createV1(RAW, Digest.decode(key))
    }
  }

  async * storedEntries (options?: AbortOptions): AsyncGenerator<{ cid: CID, bytes: Uint8Array }> {
    await this.flush(false)
    for await (const [key, bytes] of this.db.iterator()) {
      throwIfAborted(options)
      yield { cid: CID.createV1(RAW, Digest.decode(key)), bytes }
    }
  }

  /** Make every write so far durable (fsync). */
  async commit (): Promise<void> {
    await this.flush(true)
  }

  /** Approximate bytes used on disk by blocks. */
  async approximateSize (): Promise<number> {
    return await this.db.approximateSize(new Uint8Array([0]), new Uint8Array([0xff, 0xff]))
  }

  private findPending (id: string): Uint8Array | undefined {
    const hit = this.pending.get(id)
    if (hit !== undefined) return hit.bytes
    for (const batch of this.flushing) {
      const inFlight = batch.get(id)
      if (inFlight !== undefined) return inFlight.bytes
    }
    return undefined
  }

  /** Write what is pending (and wait for earlier batches); `sync` fsyncs. */
  private async flush (sync: boolean): Promise<void> {
    await this.startFlush(sync)
    this.throwIfFlushFailed()
  }

  /**
   * Queue the pending batch for writing behind any batch already queued.
   * Never rejects: a failure is kept in `flushError` for the next caller.
   */
  private async startFlush (sync: boolean): Promise<void> {
    const batch = this.pending
    if (batch.size > 0) {
      this.pending = new Map()
      this.pendingBytes = 0
      this.flushing.add(batch)
    }
    const write = async (): Promise<void> => {
      try {
        if (batch.size === 0 && !sync) return
        const chained = this.db.batch()
        for (const { key, bytes } of batch.values()) chained.put(key, bytes)
        if (batch.size === 0) {
          // nothing pending but durability requested: an empty synced write
          // still fsyncs the log, covering earlier unsynced batches
          chained.del(new Uint8Array([0xff, 0xff, 0xff]))
        }
        await chained.write({ sync })
      } catch (err: any) {
        this.flushError ??= err
      } finally {
        this.flushing.delete(batch)
      }
    }
    this.flushChain = this.flushChain.then(write)
    await this.flushChain
  }

  private throwIfFlushFailed (): void {
    if (this.flushError !== undefined) {
      const err = this.flushError
      this.flushError = undefined
      throw err
    }
  }
}
