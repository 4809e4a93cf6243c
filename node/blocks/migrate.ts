/**
 * The migration from the former layout (block bytes as LevelDB values under
 * the bare multihash) to pack files, run at open.
 *
 * Values are moved in batches: each batch is appended to the current pack,
 * then committed like any write (fdatasync of the pack, then one LevelDB
 * batch with `sync: true` that writes the index entries AND deletes the old
 * values). A crash mid-way leaves every block in its old place or indexed
 * in a pack, never neither, and the migration goes on from the first value
 * left at the next open. A crash between a batch's pack sync and its index
 * batch leaves whole records the index does not name: the next open
 * salvages them (recover.ts), so those blocks are in both places for a
 * while; the migration then deletes their old rows without a second copy.
 *
 * @module
 */
import { LEGACY_RANGE } from './pack-index.js'
import type { ClassicLevel } from 'classic-level'

/** What the migration needs from the store. */
export interface MigrationHost {
  db: ClassicLevel<Uint8Array, Uint8Array>
  /** Append `bytes` under `multihash` (unless already there) and delete `legacyKey` at the next commit. */
  move: (multihash: Uint8Array, bytes: Uint8Array, legacyKey: Uint8Array) => Promise<void>
  commit: () => Promise<void>
}

/** Options of {@link migrateLegacyBlocks}. */
export interface MigrateOptions {
  /** Bytes moved per committed batch. */
  batchBytes: number
  /** Called after each committed batch (1, 2, …): a seam for fault injection in tests. */
  afterBatch?: (batch: number) => void
}

/** Move every former-layout block into packs; returns how many were moved. */
export async function migrateLegacyBlocks (host: MigrationHost, options: MigrateOptions): Promise<number> {
  let moved = 0
  let batches = 0
  for (;;) {
    let bytes = 0
    let count = 0
    for await (const [key, value] of host.db.iterator(LEGACY_RANGE)) {
      await host.move(key, value, key)
      bytes += value.byteLength
      count++
      if (bytes >= options.batchBytes) break
    }
    if (count === 0) return moved
    await host.commit()
    moved += count
    options.afterBatch?.(++batches)
  }
}
