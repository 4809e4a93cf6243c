/**
 * Make a folder and its missing parents, one level at a time.
 *
 * Why not `mkdir(path, { recursive: true })`: Node's recursive mkdir loops
 * forever where a parent exists but its file system answers ENOENT to
 * making anything in it (under /proc: `shoal --repo /proc/x init`, or
 * `--repo /proc init` making `/proc/blocks`, never returned). Here the
 * missing folders are found by walking up (one `stat` per path component at
 * most) and made top-down with one plain mkdir each: nothing can loop, and
 * a failure is a {@link RepoFolderError} naming the folder and the reason.
 *
 * @module
 */
import { mkdir, rmdir, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { RepoFolderError } from '../errors.js'

/** Options of {@link makeFolder}. */
export interface MakeFolderOptions {
  /** Mode of every folder made (the umask applies). @default 0o777 */
  mode?: number
}

/**
 * Make the folder `path` and its missing parents; a folder already there
 * is fine. On failure the folders it made are removed again.
 *
 * @throws {RepoFolderError} naming the folder that could not be made and why
 */
export async function makeFolder (path: string, options: MakeFolderOptions = {}): Promise<void> {
  const target = resolve(path)
  const made: string[] = []
  try {
    for (const dir of await missingFolders(target)) {
      if (await makeOne(dir, target, options.mode)) made.push(dir)
    }
  } catch (err) {
    // deepest first: each is empty
    for (const dir of made.reverse()) await rmdir(dir).catch(() => {})
    throw err
  }
}

/** What a path is: a folder, something else, or nothing. */
type Kind = 'folder' | 'other' | 'missing'

/** What `dir` is; a path under a file (ENOTDIR) is missing too. */
async function kindOf (dir: string, target: string): Promise<Kind> {
  try {
    return (await stat(dir)).isDirectory() ? 'folder' : 'other'
  } catch (err: any) {
    if (err?.code === 'ENOENT' || err?.code === 'ENOTDIR') return 'missing'
    throw failure(dir, target, err)
  }
}

/** `target` and those of its parents that do not exist, shallowest first. */
async function missingFolders (target: string): Promise<string[]> {
  const missing: string[] = []
  for (let dir = target; ; dir = dirname(dir)) {
    const kind = await kindOf(dir, target)
    if (kind === 'folder') return missing.reverse()
    if (kind === 'other') throw notAFolder(dir, target)
    // the file system's root is missing (a drive that is not there)
    if (dirname(dir) === dir) throw new RepoFolderError(`cannot create folder ${target}: ${dir} does not exist`)
    missing.push(dir)
  }
}

/** Make `dir` (its parent exists); false when it was made meanwhile by someone else. */
async function makeOne (dir: string, target: string, mode: number | undefined): Promise<boolean> {
  try {
    await mkdir(dir, { mode })
    return true
  } catch (err: any) {
    if (err?.code !== 'EEXIST') throw failure(dir, target, err)
  }
  if (await kindOf(dir, target) !== 'folder') throw notAFolder(dir, target)
  return false
}

/** `dir` is there and is not a folder. */
function notAFolder (dir: string, target: string): RepoFolderError {
  return new RepoFolderError(`cannot create folder ${target}: ${dir} is not a folder (ENOTDIR)`)
}

/** A system error of `stat` or `mkdir` on `dir` as one line naming it. */
function failure (dir: string, target: string, err: NodeJS.ErrnoException): RepoFolderError {
  const which = dir === target ? dir : `${dir} (for ${target})`
  return new RepoFolderError(`cannot create folder ${which}: ${reason(dir, err)} (${String(err.code ?? 'unknown error')})`, { cause: err })
}

/** Why, in words: the system's text without its code and path. */
function reason (dir: string, err: NodeJS.ErrnoException): string {
  // mkdir answered ENOENT though the parent is a folder: its file system makes none (/proc)
  if (err.syscall === 'mkdir' && err.code === 'ENOENT') return `${dirname(dir)} takes no new folders`
  return String(err.message).replace(/^[A-Z]+: /, '').replace(/, \w+( '.*')?$/, '')
}
