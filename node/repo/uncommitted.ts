/**
 * The files kept in `<repo>/uncommitted`: written through a mount, whose
 * commit failed as the mount went (docs/fuse.md). They stay until the user
 * adds them again and deletes them; the daemon's start and `shoal status`
 * say they are there, so that a user who never reads the log still learns
 * of them.
 *
 * @module
 */
import { chmod, lstat, readdir, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { shellQuote } from '../shell-quote.js'
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

/** The time as a file name's part: `2026-11-29T10-51-57-165Z`. */
export function fileTime (date = new Date()): string {
  return date.toISOString().replace(/[:.]/g, '-')
}

/** A new folder under `uncommitted` for files kept now: named for the time, and `tag` when given (two made within one millisecond keep apart). */
export function keptFolder (uncommitted: string, tag?: string): string {
  return join(uncommitted, tag === undefined ? fileTime() : `${fileTime()}-${tag}`)
}

/** Where the file at namespace path `path` is kept in `folder`; undefined for a path that would leave it (a namespace path never does: protocol/paths.ts). */
export function keptPathIn (folder: string, path: string): string | undefined {
  const kept = join(folder, path)
  return kept.startsWith(folder + '/') ? kept : undefined
}

/** Give a kept file its mode and time: a courtesy, each failure told to `onError`. */
export async function giveKeptAttrs (kept: string, attrs: { mode: number, mtime: number }, onError: (what: string, err: Error) => void): Promise<void> {
  await chmod(kept, attrs.mode & 0o777).catch((err: Error) => { onError('mode', err) })
  await utimes(kept, attrs.mtime / 1000, attrs.mtime / 1000).catch((err: Error) => { onError('time', err) })
}

/** What the log says of a file kept at `kept` ("… is kept in …"): where it is, and how to add it again at `path`. */
export function keptHint (kept: string, path: string): string {
  return `kept in ${kept}: once there is room, \`shoal add ${shellQuote(kept)} --to ${shellQuote(path)}\``
}
