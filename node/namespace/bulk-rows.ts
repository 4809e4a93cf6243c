/**
 * The rows of a new node's first snapshot load on their way to the store,
 * in small batches (snapshot-load.ts `loadFresh`).
 *
 * Why not a `Txn` (kv.ts): a first load writes a million paths' rows, and
 * what each batch costs beyond the rows themselves decided its time and
 * memory (docs/benchmarks.md, "Snapshot bootstrap"):
 *
 * - every value is encoded into one buffer per batch, not a buffer of its
 *   own (a million small buffers are as many objects for the collector);
 * - a batch is small ({@link BulkRows.full}): LevelDB's chained batch keeps
 *   its copy of the rows until the collector finalizes it, so a large batch
 *   that lives long enough to reach the old generation holds megabytes of
 *   native memory until the next full collection.
 *
 * - a batch may be written while the next one fills (`behind`): the load
 *   does not wait for LevelDB between batches, and the next batch reads
 *   through the one being written until it is written.
 *
 * The rows are the same JSON as a `Txn` writes: the store's format does not
 * change. Reads see the writes made before them: in this batch, in the batch
 * `behind` it while that one is being written, or, through the store, in a
 * batch written earlier.
 *
 * @module
 */
import { decodeJSON, type KV, type KVOp } from './kv.js'
import type { TreeTxn } from './tree.js'

/** A pending delete. */
const GONE = Symbol('gone')

/** Rows (JSON values) and blocks (raw bytes) of one batch of a bulk load. */
export class BulkRows implements TreeTxn {
  /** JSON values by key ({@link GONE}: deleted). */
  private readonly values = new Map<string, unknown>()
  /** Raw values by key. */
  private readonly raw = new Map<string, Uint8Array>()
  private rawBytes = 0

  /** The batch being written meanwhile, read through until {@link written} says it is in the store. */
  private behind: BulkRows | undefined

  /**
   * @param kv - the store
   * @param limits - when the batch is {@link full}: rows (keys written) and bytes of raw values
   * @param behind - a batch whose commit is under way (to be written before this one): reads see its writes
   */
  constructor (readonly kv: KV, private readonly limits: { rows: number, rawBytes: number }, behind?: BulkRows) {
    this.behind = behind
  }

  /** A JSON value, from this batch, the batch behind it or the store; undefined when there is none. */
  async get<T> (key: string): Promise<T | undefined> {
    const value = this.values.get(key)
    if (value === GONE) return undefined
    if (value !== undefined) return value as T
    const bytes = this.raw.get(key)
    if (bytes !== undefined) return decodeJSON<T>(bytes)
    if (this.behind !== undefined) return await this.behind.get<T>(key)
    const stored = await this.kv.get(key)
    return stored === undefined ? undefined : decodeJSON<T>(stored)
  }

  /** The batch behind this one is in the store: read the store instead (and let that batch go). */
  written (): void {
    this.behind = undefined
  }

  put (key: string, value: unknown): void {
    this.raw.delete(key)
    this.values.set(key, value)
  }

  /** Raw bytes, written as they are. */
  putBytes (key: string, value: Uint8Array): void {
    this.values.delete(key)
    this.raw.set(key, value)
    this.rawBytes += value.byteLength
  }

  del (key: string): void {
    this.raw.delete(key)
    this.values.set(key, GONE)
  }

  /** True once the batch holds its limit of rows or of raw bytes. */
  get full (): boolean {
    return this.values.size + this.raw.size >= this.limits.rows || this.rawBytes >= this.limits.rawBytes
  }

  /** Write the batch (fsynced when `sync`). The object is spent after: start a new one. */
  async commit (sync: boolean): Promise<void> {
    const ops: KVOp[] = []
    const json: string[] = []
    const keys: string[] = []
    let size = 0
    for (const [key, value] of this.values) {
      if (value === GONE) {
        ops.push({ type: 'del', key })
        continue
      }
      const text = JSON.stringify(value)
      json.push(text)
      keys.push(key)
      size += Buffer.byteLength(text)
    }
    // one buffer for every value of the batch, exactly as large as they are (a store in memory keeps the views)
    const buffer = Buffer.allocUnsafeSlow(size)
    let at = 0
    for (const [i, text] of json.entries()) {
      const end = at + buffer.write(text, at)
      ops.push({ type: 'put', key: keys[i], value: buffer.subarray(at, end) })
      at = end
    }
    for (const [key, value] of this.raw) ops.push({ type: 'put', key, value })
    await this.kv.batch(ops, sync)
  }
}
