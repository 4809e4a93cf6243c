/**
 * A start after a crash: the files `close` acknowledged through a mount and
 * the crash kept from their commit (the journal of closed files,
 * journal.ts) are committed now, as their commit would have been.
 *
 * Two steps, because the staging folder they may be in is emptied early in
 * a start, before the stores a commit needs are open:
 *
 * 1. {@link rescueClosedFiles}, first thing: the journal's waiting files are
 *    taken out of it into a folder of their own,
 *    `<repo>/fuse-journal/rescued-<time>/` (a file staged on disk by a hard
 *    link, one staged in memory written from its record), with a list of
 *    their paths, modes, times and the versions they started from; then the
 *    journal's segments are deleted.
 * 2. {@link commitRescued}, once the node runs: each such folder's files are
 *    committed as one write, replacing only the version each writer started
 *    from — a version written meanwhile (by another node while this one was
 *    down) is kept beside it as a conflict, never overwritten unseen
 *    (docs/fuse.md, "Conflicts"). A file that cannot be committed (a full
 *    disk) is kept in `<repo>/uncommitted/`, as an unmount keeps it. The
 *    folder then goes.
 *
 * A crash during either step repeats it at the next start: a file committed
 * twice has the same content both times, and the second replaces the first.
 *
 * @module
 */
import { createReadStream, existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { ChunkerSpec } from '../content/index.js'
import type { AddManyItem, FileInfo, Files } from '../files/index.js'
import type { Logger } from '../logger.js'
import { fileTime, giveKeptAttrs, keptFolder, keptHint, keptPathIn } from '../repo/uncommitted.js'
import { readJournal, type ClosedFile } from './journal.js'
import { linkOrCopy } from './staging.js'

/** A file taken out of the journal, as the list of its rescue folder names it. */
export interface RescuedFile extends Omit<ClosedFile, 'id' | 'gen'> {
  /** Its bytes: a file of the rescue folder. */
  file: string
}

/** What {@link rescueClosedFiles} took out of the journal. */
export interface Rescue {
  /** The folder made (none when nothing waited). */
  folder?: string
  /** Files taken out. */
  files: number
  /** Paths whose staged bytes were gone (a staging file deleted meanwhile): not rescued. */
  lost: string[]
  /** Files whose staging file was shorter than acknowledged (committed as they are, with a warning). */
  short?: number
}

/** A rescue that cannot be made (not a staging file gone: that file alone is lost): the start stops, nothing deleted. */
export class RescueError extends Error {
  override name = 'RescueError'
}

const LIST = 'files.json'
const FOLDER = /^rescued-/

/**
 * Step 1: take the journal's waiting files out of `journal` (its segments
 * are deleted afterwards). Run before the staging folder is emptied.
 */
export async function rescueClosedFiles (options: { journal: string, logger: Logger }): Promise<Rescue> {
  const { journal, logger } = options
  const found = readJournal(journal)
  const out: Rescue = { files: 0, lost: [] }
  if (found.torn.length > 0) logger.warn({ segments: found.torn }, 'fuse: the journal of closed files ends in a damaged record (a power cut while it was written): read up to it')
  // one file per path: the one acknowledged last
  const byPath = new Map<string, (typeof found.waiting)[number]>()
  for (const f of found.waiting) { byPath.delete(f.path); byPath.set(f.path, f) }
  if (byPath.size > 0) {
    const folder = join(journal, `rescued-${fileTime()}`)
    await mkdir(folder, { recursive: true })
    const list: RescuedFile[] = []
    let short = 0
    for (const f of byPath.values()) {
      const file = String(list.length)
      const target = join(folder, file)
      try {
        if ('bytes' in f) {
          await writeFile(target, f.bytes, { mode: 0o600 })
        } else {
          await linkOrCopy(f.stagedAt, target)
          // bytes a writer added after the close that was acknowledged are not part of it
          const size = (await stat(target)).size
          if (size > f.size) await truncate(target, f.size)
          if (size < f.size) {
            short++
            logger.warn({ path: f.path, size, acknowledged: f.size }, 'fuse: the staging file of a file closed before the daemon died is shorter than its close acknowledged: what is there is committed')
          }
        }
      } catch (err: any) {
        // anything but a staging file that is gone stops the start, the journal and the staging folder left as they are
        if (err?.code !== 'ENOENT') throw new RescueError(`cannot take the files closed through a mount before the daemon died out of ${journal} (${String(err?.message ?? err)}): fix that and start again, or delete the *.log files in ${journal} to give them up`, { cause: err })
        logger.error({ path: f.path, err: err?.message }, 'fuse: a file closed through a mount before the daemon died is lost: its staged bytes are gone')
        out.lost.push(f.path)
        continue
      }
      list.push({ file, path: f.path, mode: f.mode, mtime: f.mtime, replacing: f.replacing, size: f.size })
    }
    // the list last, whole: a folder without one is an interrupted rescue, whose journal is still there
    if (list.length > 0) {
      await writeList(folder, list)
      out.folder = folder
    } else {
      await rm(folder, { recursive: true, force: true })
    }
    out.files = list.length
    out.short = short
  }
  for (const segment of found.segments) await rm(segment, { force: true })
  return out
}

/** What {@link commitRescued} needs of the node. */
export interface RescueComponents {
  files: Pick<Files, 'addMany' | 'add'>
  chunker: ChunkerSpec
  logger: Logger
}

/** What {@link commitRescued} did. */
export interface RescueCommits {
  /** Files committed (at their paths, or beside a version written meanwhile). */
  committed: Array<{ path: string, info: FileInfo }>
  /** Files that could not be committed, and where they are kept. */
  kept: Array<{ path: string, keptAt: string, err: string }>
}

/**
 * Step 2: commit the files of every rescue folder under `journal` (one
 * write per batch of files; file by file when that fails), keeping those
 * that cannot be committed in `uncommitted`. Each folder goes once done.
 */
export async function commitRescued (components: RescueComponents, options: { journal: string, uncommitted: string }): Promise<RescueCommits> {
  const { logger } = components
  const out: RescueCommits = { committed: [], kept: [] }
  let names: string[]
  try {
    names = (await readdir(options.journal)).filter(n => FOLDER.test(n)).sort()
  } catch (err: any) {
    if (err?.code === 'ENOENT') return out
    throw err
  }
  for (const name of names) {
    const folder = join(options.journal, name)
    await commitFolder(components, { folder, uncommitted: options.uncommitted, out })
  }
  if (out.committed.length > 0) logger.warn({ files: out.committed.length, first: out.committed.slice(0, 10).map(c => c.path) }, `fuse: ${out.committed.length} file(s) closed through a mount before the daemon died, and not yet committed then, were committed now`)
  return out
}

/** Files committed together at most (as the mount's commit queue batches them). */
const BATCH = 256

/**
 * One rescue folder: its files committed in batches, each batch's outcome
 * written back to its list (what landed or was kept leaves it), so that a
 * crash midway repeats only the rest. The folder goes once its list is
 * empty; a file that could be neither committed nor kept stays in it, tried
 * again at the next start.
 */
async function commitFolder (components: RescueComponents, options: { folder: string, uncommitted: string, out: RescueCommits }): Promise<void> {
  const { files, chunker, logger } = components
  const { folder, out } = options
  let list: RescuedFile[] | undefined
  try {
    list = await readList(join(folder, LIST))
  } catch (err: any) {
    logger.error({ folder, err: err?.message }, 'fuse: the list of a rescue folder cannot be read: its files stay there, not committed (add them with `shoal add`)')
    return
  }
  // none: a rescue a crash interrupted, whose journal was still there for the next one
  if (list === undefined) { await rm(folder, { recursive: true, force: true }); return }
  // opened as each is read, not all at once (thousands of small files)
  const source = (f: RescuedFile): AsyncIterable<Uint8Array> => (async function * () { yield * createReadStream(join(folder, f.file), { highWaterMark: 1024 * 1024 }) })()
  const item = (f: RescuedFile): AddManyItem => ({ path: f.path, source: source(f), mode: f.mode, mtime: f.mtime, replacing: f.replacing, besideTypeChanges: true })
  // the folder's own name in it: two folders done within one millisecond keep apart
  const keptIn = keptFolder(options.uncommitted, basename(folder))
  // files that could be neither committed nor kept: tried again at the next start, not again now
  const stayed: RescuedFile[] = []
  for (let at = 0; at < list.length; at += BATCH) {
    const batch = list.slice(at, at + BATCH)
    let outcomes: Array<FileInfo | Error>
    try {
      outcomes = await files.addMany(batch.map(item), { chunker })
    } catch {
      // one bad file fails only itself
      outcomes = []
      for (const f of batch) {
        const { path, source, ...rest } = item(f)
        outcomes.push(await files.add(path, source, { chunker, ...rest }).catch((err: any) => err instanceof Error ? err : new Error(String(err))))
      }
    }
    for (const [i, f] of batch.entries()) {
      const result = outcomes[i]
      if (!(result instanceof Error)) {
        out.committed.push({ path: f.path, info: result })
        await rm(join(folder, f.file), { force: true })
        if (result.conflictOf !== undefined) logger.warn({ path: f.path, conflictOf: result.conflictOf }, 'fuse: a file closed before the daemon died was committed beside a version written meanwhile: both are kept (`shoal conflicts`)')
        continue
      }
      const kept = await keep(f, { folder, keptIn, err: result, logger })
      if (kept === 'stays') stayed.push(f)
      else if (kept !== 'gone') out.kept.push({ path: f.path, keptAt: kept, err: result.message })
    }
    // what is left after each batch: a crash from here repeats only that
    await writeList(folder, [...stayed, ...list.slice(at + BATCH)])
  }
  if (stayed.length === 0) await rm(folder, { recursive: true, force: true })
}

/**
 * Keep a rescued file that could not be committed in `keptIn`, at its path.
 * @returns where it is kept; `'gone'` when its file is no longer in the folder (handled by an earlier start); `'stays'` when it could not be moved
 */
async function keep (f: RescuedFile, options: { folder: string, keptIn: string, err: Error, logger: Logger }): Promise<string | 'gone' | 'stays'> {
  const { folder, keptIn, err, logger } = options
  // a damaged list could name a path that leaves the folder: kept under its number then
  const keptAt = keptPathIn(keptIn, f.path) ?? join(keptIn, `rescued-${f.file}`)
  try {
    await mkdir(dirname(keptAt), { recursive: true })
    // never over another file (EEXIST)
    await linkOrCopy(join(folder, f.file), keptAt)
    await rm(join(folder, f.file), { force: true })
  } catch (keepErr: any) {
    if (keepErr?.code === 'ENOENT' && !existsSync(join(folder, f.file))) return 'gone'
    logger.error({ path: f.path, err: err.message, keepErr: keepErr?.message, folder }, 'fuse: a file closed before the daemon died could not be committed, nor kept in the repo; it stays in its rescue folder, tried again at the next start')
    return 'stays'
  }
  await giveKeptAttrs(keptAt, f, (what, e) => { logger.warn({ kept: keptAt, err: e.message }, `fuse: could not set a kept file's ${what}`) })
  logger.error({ path: f.path, kept: keptAt, err: err.message }, `fuse: a file closed before the daemon died could not be committed; it is ${keptHint(keptAt, f.path)}`)
  return keptAt
}

/** Write a rescue folder's list whole (a file beside it, renamed over it). */
async function writeList (folder: string, list: RescuedFile[]): Promise<void> {
  await writeFile(join(folder, `${LIST}.partial`), JSON.stringify(list))
  await rename(join(folder, `${LIST}.partial`), join(folder, LIST))
}

async function readList (path: string): Promise<RescuedFile[] | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: any) {
    if (err?.code === 'ENOENT') return undefined
    throw err
  }
  const list = JSON.parse(text)
  if (!Array.isArray(list)) return undefined
  return list.filter((f: any): f is RescuedFile => typeof f?.file === 'string' && /^\d+$/.test(f.file) && typeof f.path === 'string' && Number.isSafeInteger(f.size) &&
    Number.isInteger(f.mode) && Number.isFinite(f.mtime) && (f.replacing === null || typeof f.replacing === 'string'))
}

