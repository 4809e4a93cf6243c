/**
 * A node's store whose writes can be made to fail, as a full (or failing)
 * disk fails them: every batch is refused, whole, with the error LevelDB
 * gives (`IO error: … No space left on device`), and reads go on. The
 * namespace simulation turns it on for a window of virtual time (the
 * `full` lifecycle step) to check that a replica whose commits fail
 * acknowledges nothing it did not store, keeps its state in memory and on
 * disk in step, and converges once the disk has room again.
 *
 * It also models a machine that loses power ({@link FaultyKV.losePower}):
 * what was written since the last completed sync is gone, as LevelDB's log
 * loses its unsynced tail; a batch written with `sync` is durable when its
 * promise resolves. While {@link FaultyKV.stallSyncs} is set, synced batches
 * wait, unapplied (a disk that stopped flushing), until the power goes. The
 * bookkeeping is off unless {@link FaultyKV.recordUnsynced} is set (the scale
 * runs do not pay for it).
 *
 * The model is kinder than LevelDB in one way: here a completed sync makes
 * every earlier write durable. LevelDB 1.20 closes a full memtable's log
 * without syncing it, so an unsynced write before that switch can be lost
 * while a synced one after it survives (docs/decisions.md, "Received entries
 * stay fsynced before they are applied"). The namespace writes nothing that
 * other rows depend on unsynced, so the difference does not show here; a
 * change that starts to must not rely on this model alone.
 *
 * @module
 */
import { MemoryKV, type KVOp } from '../node/namespace/kv.js'

/** The message of a write that failed because the power went. */
const POWER_LOST = 'IO error: /sim/namespace/000042.log: power lost'

function powerLost (): Error {
  return Object.assign(new Error(POWER_LOST), { code: 'LEVEL_IO_ERROR' })
}

/** Whether `err` is a write failed by {@link FaultyKV.losePower}. */
export function isPowerLoss (err: unknown): boolean {
  return err instanceof Error && err.message === POWER_LOST
}

/** A {@link MemoryKV} whose batches fail while {@link FaultyKV.full} is set, and that can lose power. */
export class FaultyKV extends MemoryKV {
  /** While set, every write fails and changes nothing. */
  full = false
  /** Writes refused so far. */
  refused = 0
  /** Keep what a power loss would undo (the writes since the last completed sync). */
  recordUnsynced = false
  /** While set, a synced batch waits, unapplied, until {@link losePower} fails it. */
  stallSyncs = false
  /** The power is off: every write fails until {@link powerOn}. */
  private off = false
  /** Per unsynced write, oldest first, each key's value before it. */
  private unsynced: Array<{ key: string, before: Uint8Array | undefined }> = []
  /** The synced batches waiting while {@link stallSyncs}. */
  private readonly stalled: Array<(err: Error) => void> = []

  override async batch (ops: KVOp[], sync = true): Promise<void> {
    if (this.off && ops.length > 0) throw powerLost()
    if (this.full && ops.length > 0) {
      this.refused++
      throw Object.assign(new Error('IO error: /sim/namespace/000042.log: No space left on device'), { code: 'LEVEL_IO_ERROR' })
    }
    if (!this.recordUnsynced) {
      await super.batch(ops)
      return
    }
    if (sync && this.stallSyncs) {
      await new Promise<void>((resolve, reject) => { this.stalled.push(reject) })
    }
    if (!sync) for (const op of ops) this.unsynced.push({ key: op.key, before: this.getSync(op.key) })
    await super.batch(ops)
    // a completed sync makes every earlier write durable
    if (sync) this.unsynced = []
  }

  /**
   * The machine loses power: the batches waiting for a sync fail, the writes
   * since the last completed sync are undone, and every write fails until
   * {@link powerOn}. Returns how many writes were undone.
   */
  async losePower (): Promise<number> {
    this.off = true
    this.stallSyncs = false
    for (const fail of this.stalled.splice(0)) fail(powerLost())
    const undone = this.unsynced.reverse().map(({ key, before }): KVOp => before === undefined ? { type: 'del', key } : { type: 'put', key, value: before })
    this.unsynced = []
    await super.batch(undone)
    return undone.length
  }

  /** The power is back (the node restarts on what was durable). */
  powerOn (): void { this.off = false }
}
