/**
 * The files kept in `<repo>/uncommitted`: written through a mount, whose
 * commit failed as the mount went (docs/fuse.md). They stay until the user
 * adds them again and deletes them; the daemon's start and `shoal status`
 * say they are there, so that a user who never reads the log still learns
 * of them.
 *
 * @module
 */
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { RepoLayout } from './layout.js'

/** What `<repo>/uncommitted` holds. */
export interface KeptUncommitted {
  /** The folder. */
  dir: string
  /** Regular files in it, at any depth. */
  files: number
  /** Their sizes, summed. */
  bytes: number
}

/** Count the files kept in `<repo>/uncommitted` (none when the folder does not exist). */
export async function keptUncommitted (layout: Pick<RepoLayout, 'uncommitted'>): Promise<KeptUncommitted> {
  const dir = layout.uncommitted
  const found = { dir, files: 0, bytes: 0 }
  let entries
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true })
  } catch (err: any) {
    if (err?.code === 'ENOENT') return found
    throw err
  }
  for (const e of entries) {
    if (!e.isFile()) continue
    found.files++
    found.bytes += (await lstat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size
  }
  return found
}
