/**
 * A node's store whose writes can be made to fail, as a full (or failing)
 * disk fails them: every batch is refused, whole, with the error LevelDB
 * gives (`IO error: … No space left on device`), and reads go on. The
 * namespace simulation turns it on for a window of virtual time (the
 * `full` lifecycle step) to check that a replica whose commits fail
 * acknowledges nothing it did not store, keeps its state in memory and on
 * disk in step, and converges once the disk has room again.
 *
 * @module
 */
import { MemoryKV, type KVOp } from '../node/namespace/kv.js'

/** A {@link MemoryKV} whose batches fail while {@link FaultyKV.full} is set. */
export class FaultyKV extends MemoryKV {
  /** While set, every write fails and changes nothing. */
  full = false
  /** Writes refused so far. */
  refused = 0

  override async batch (ops: KVOp[]): Promise<void> {
    if (this.full && ops.length > 0) {
      this.refused++
      throw Object.assign(new Error('IO error: /sim/namespace/000042.log: No space left on device'), { code: 'LEVEL_IO_ERROR' })
    }
    await super.batch(ops)
  }
}
