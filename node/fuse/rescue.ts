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
import { createReadStream } from 'node:fs'
import { chmod, copyFile, link, mkdir, readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { ChunkerSpec } from '../content/index.js'
import type { FileInfo, Files } from '../files/index.js'
import type { Logger } from '../logger.js'
import { shellQuote } from '../shell-quote.js'
import { readJournal, type ClosedFile } from './journal.js'

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
    const folder = join(journal, `rescued-${stamp()}`)
    await mkdir(folder, { recursive: true })
    const list: RescuedFile[] = []
    for (const f of byPath.values()) {
      const file = String(list.length)
      const target = join(folder, file)
      try {
        if ('bytes' in f) await writeFile(target, f.bytes, { mode: 0o600 })
        else await link(f.stagedAt, target).catch(async (err: any) => { if (err?.code === 'EXDEV') await copyFile(f.stagedAt, target); else throw err })
      } catch (err: any) {
        logger.error({ path: f.path, err: err?.message }, 'fuse: a file closed through a mount before the daemon died is lost: its staged bytes are gone')
        out.lost.push(f.path)
        continue
      }
      list.push({ file, path: f.path, mode: f.mode, mtime: f.mtime, replacing: f.replacing })
    }
    // the list last, whole: a folder without one is an interrupted rescue, whose journal is still there
    await writeFile(join(folder, `${LIST}.partial`), JSON.stringify(list))
    await rename(join(folder, `${LIST}.partial`), join(folder, LIST))
    out.folder = folder
    out.files = list.length
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
 * write per folder; file by file when that fails), keeping those that
 * cannot be committed in `uncommitted`. Each folder goes once done.
 */
export async function commitRescued (components: RescueComponents, options: { journal: string, uncommitted: string }): Promise<RescueCommits> {
  const { files, chunker, logger } = components
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
    let list: RescuedFile[] | undefined
    try {
      list = await readList(join(folder, LIST))
    } catch (err: any) {
      logger.error({ folder, err: err?.message }, 'fuse: the list of a rescue folder cannot be read: its files stay there, not committed (add them with `shoal add`)')
      continue
    }
    // none: a rescue a crash interrupted, whose journal was still there for the next one
    if (list === undefined) { await rm(folder, { recursive: true, force: true }); continue }
    const source = (f: RescuedFile): AsyncIterable<Uint8Array> => createReadStream(join(folder, f.file), { highWaterMark: 1024 * 1024 })
    const item = (f: RescuedFile) => ({ path: f.path, source: source(f), mode: f.mode, mtime: f.mtime, replacing: f.replacing, besideTypeChanges: true })
    let outcomes: Array<FileInfo | Error>
    try {
      outcomes = await files.addMany(list.map(item), { chunker })
    } catch {
      // one bad file fails only itself
      outcomes = []
      for (const f of list) {
        const { path, ...rest } = item(f)
        outcomes.push(await files.add(path, rest.source, { chunker, mode: rest.mode, mtime: rest.mtime, replacing: rest.replacing, besideTypeChanges: true }).catch((err: any) => err instanceof Error ? err : new Error(String(err))))
      }
    }
    const keptIn = join(options.uncommitted, stamp())
    for (const [i, f] of list.entries()) {
      const result = outcomes[i]
      if (!(result instanceof Error)) {
        out.committed.push({ path: f.path, info: result })
        if (result.conflictOf !== undefined) logger.warn({ path: f.path, conflictOf: result.conflictOf }, 'fuse: a file closed before the daemon died was committed beside a version written meanwhile: both are kept (`shoal conflicts`)')
        continue
      }
      const keptAt = join(keptIn, f.path)
      try {
        await mkdir(dirname(keptAt), { recursive: true })
        await rename(join(folder, f.file), keptAt)
        await chmod(keptAt, f.mode & 0o777).catch(() => {})
        await utimes(keptAt, f.mtime / 1000, f.mtime / 1000).catch(() => {})
      } catch (keepErr: any) {
        // the folder stays (with its list): the next start tries again
        logger.error({ path: f.path, err: result.message, keepErr: keepErr?.message, folder }, 'fuse: a file closed before the daemon died could not be committed, nor kept in the repo; it stays in its rescue folder, tried again at the next start')
        return out
      }
      out.kept.push({ path: f.path, keptAt, err: result.message })
      logger.error({ path: f.path, kept: keptAt, err: result.message }, `fuse: a file closed before the daemon died could not be committed; it is kept in ${keptAt}: once there is room, \`shoal add ${shellQuote(keptAt)} --to ${shellQuote(f.path)}\``)
    }
    await rm(folder, { recursive: true, force: true })
  }
  if (out.committed.length > 0) logger.warn({ files: out.committed.length, first: out.committed.slice(0, 10).map(c => c.path) }, `fuse: ${out.committed.length} file(s) closed through a mount before the daemon died, and not yet committed then, were committed now`)
  return out
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
  return list.filter((f: any): f is RescuedFile => typeof f?.file === 'string' && /^\d+$/.test(f.file) && typeof f.path === 'string' &&
    Number.isInteger(f.mode) && Number.isFinite(f.mtime) && (f.replacing === null || typeof f.replacing === 'string'))
}

function stamp (): string {
  return new Date().toISOString().replace(/[:.]/g, '-')
}
