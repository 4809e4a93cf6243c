/**
 * A block index LevelDB cannot open or read (a damaged table or MANIFEST, a
 * file of it gone) is set aside and the store opens on a new, empty one: the
 * open's recovery then reads every pack whole and indexes every intact record
 * again (recover.ts). The packs are the source of truth, so nothing the packs
 * hold is lost; docs/blockstore.md, "A damaged index".
 *
 * @module
 */
import { mkdir, readdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { syncDir } from './pack-file.js'

/** What the open did with a damaged index. */
export interface IndexRebuildReport {
  /** What LevelDB found (its message). */
  reason: string
  /** The folder the damaged index's files were moved to (inside the store's folder; LevelDB ignores it). */
  keptAt: string
}

/** The prefix of the folders damaged indexes are kept in. */
export const DAMAGED_INDEX_PREFIX = 'damaged-index-'

/**
 * Move the files of the LevelDB index at `path` (every file of the folder:
 * its tables, logs, MANIFEST, CURRENT, LOCK, LOG) into a new folder
 * `<path>/damaged-index-<time>`, leaving the packs and earlier damaged
 * indexes where they are. The store must be closed.
 *
 * @returns the folder they were moved to
 */
export async function setAsideIndex (path: string, now: Date = new Date()): Promise<string> {
  const keptAt = join(path, DAMAGED_INDEX_PREFIX + now.toISOString().replace(/[:.]/g, '-'))
  await mkdir(keptAt, { recursive: true })
  for (const entry of await readdir(path, { withFileTypes: true })) {
    if (entry.isDirectory()) continue
    await rename(join(path, entry.name), join(keptAt, entry.name))
  }
  await syncDir(keptAt)
  await syncDir(path)
  return keptAt
}
