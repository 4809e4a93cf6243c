/**
 * Where downloads (`get`, `car export`) may write, checked before any byte
 * moves.
 *
 * Why: a directory DAG is untrusted input. Its entry names come from
 * whoever built it, and a name such as `..`, `a/b`, one with a NUL byte or
 * one given twice would write outside the target, into another entry, or
 * fail halfway and leave a partial tree. So `get` of a directory first plans
 * the whole tree ({@link planTree}: every name one safe path segment, unique
 * in its directory, the tree bounded), then checks the plan against what is
 * already on disk ({@link checkPlanOnDisk}: no directory where a file goes,
 * no file or symbolic link where a directory goes), and only then writes.
 * A refusal is one typed error naming the bad path, and nothing is written.
 *
 * @module
 */
import { lstat, stat } from 'node:fs/promises'
import { dirname, join, normalize } from 'node:path'
import { fileNameProblem } from '../node/namespace/paths.js'
import { InvalidPathError, IsADirectoryError, NotADirectoryError, NotFoundError, ShoalError, TooLargeError } from '../node/errors.js'

/** A directory entry name that cannot be written as one file name under the target: nothing was written. */
export class UnsafeNameError extends ShoalError {
  override name = 'UnsafeNameError'
  override readonly status = 422
}


/** Entries one `get` plans at most: a DAG that links a directory many times under itself is refused, not unrolled. */
export const MAX_GET_ENTRIES = 1_000_000

/**
 * The output path `out` as downloads use it: trailing separators removed
 * (`-o NEWDIR/` is `NEWDIR`) and the path normalised, so a staging name
 * beside it is a sibling, not a child.
 *
 * @throws {InvalidPathError} for an empty path, or a file download to a path ending in `/` (that names a directory)
 */
export function outputPath (out: string, kind: 'file' | 'dir'): string {
  if (out === '') throw new InvalidPathError('the output path is empty')
  const trimmed = out.replace(/\/+$/, '')
  if (trimmed === '') throw new InvalidPathError('cannot download to / itself: give a path under it')
  if (trimmed !== out && kind === 'file') throw new InvalidPathError(`cannot write a file to ${out}: a path ending in / names a directory; give the file's name (${trimmed}/NAME)`)
  return normalize(trimmed)
}

/**
 * Where `get` writes a file named `name` (its last path segment, or its CID):
 * `out` itself, or — when `out` ends in `/` or names a directory that
 * exists — `name` inside it, as `cp` and `scp` do.
 *
 * @throws {InvalidPathError} an empty `out`, or a `name` that cannot be a file's name there (nothing is written)
 */
export async function fileOutputPath (out: string, name: string): Promise<string> {
  if (out === '') throw new InvalidPathError('the output path is empty')
  const trimmed = out.replace(/\/+$/, '')
  const into = trimmed === '' || trimmed !== out || (await stat(trimmed).catch(() => undefined))?.isDirectory() === true
  if (!into) return normalize(trimmed)
  const dir = trimmed === '' ? '/' : trimmed
  const why = fileNameProblem(name)
  if (why !== undefined) throw new InvalidPathError(`cannot write ${JSON.stringify(name)} into ${dir}: ${why}; give the file's name (-o ${join(dir, 'NAME')})`)
  return normalize(join(dir, name))
}

/**
 * Check that `out` can receive a download of `kind` before any byte moves,
 * so the error names the user's path (not a temporary file).
 *
 * @throws {NotFoundError} when the parent folder is missing
 * @throws {IsADirectoryError} a file download onto a folder
 * @throws {NotADirectoryError} a tree download onto a file
 */
export async function checkOutputPath (out: string, kind: 'file' | 'dir'): Promise<void> {
  const parent = await stat(dirname(out)).catch(() => undefined)
  if (parent === undefined) throw new NotFoundError(`cannot write ${out}: no such directory ${dirname(out)}`)
  if (!parent.isDirectory()) throw new NotADirectoryError(`cannot write ${out}: ${dirname(out)} is not a directory`)
  const existing = await stat(out).catch(() => undefined)
  if (kind === 'file' && existing?.isDirectory() === true) throw new IsADirectoryError(`cannot write ${out}: it is a directory`)
  if (kind === 'dir' && existing !== undefined && !existing.isDirectory()) throw new NotADirectoryError(`cannot write a directory to ${out}: a file is there`)
}

/** A directory entry as the API lists it. */
export interface ListedEntry {
  name: string
  type: 'file' | 'dir'
  cid: string
  size: number
}

/** A file of a {@link TreePlan}. */
export interface PlannedFile {
  /** Path under the target, segments joined with the platform's separator. */
  path: string
  cid: string
  size: number
}

/** Everything a tree download writes, checked. */
export interface TreePlan {
  /** Directories under the target, each after its parent (the target itself is not listed). */
  dirs: string[]
  files: PlannedFile[]
  /** Sum of the files' sizes. */
  bytes: number
}

/** Options of {@link planTree}. */
export interface PlanTreeOptions {
  /** The children of a directory, by CID. */
  list: (cid: string) => Promise<ListedEntry[]>
  /** How the target is shown in errors (the user's `-o`). */
  shownAs: string
  /** @default {@link MAX_GET_ENTRIES} */
  maxEntries?: number
}

/**
 * Plan the download of the directory `root` (a CID): walk it breadth-first,
 * listing each distinct directory once, and check every name.
 *
 * @throws {UnsafeNameError} naming the first bad path: a name that is not one safe segment, or a name given twice in a directory
 * @throws {TooLargeError} for more than `maxEntries` entries
 */
export async function planTree (root: string, options: PlanTreeOptions): Promise<TreePlan> {
  const maxEntries = options.maxEntries ?? MAX_GET_ENTRIES
  const plan: TreePlan = { dirs: [], files: [], bytes: 0 }
  // a directory repeated in the DAG is listed once
  const listed = new Map<string, ListedEntry[]>()
  const queue: Array<{ cid: string, path: string }> = [{ cid: root, path: '' }]
  let entries = 0
  while (queue.length > 0) {
    const dir = queue.shift() as { cid: string, path: string }
    let children = listed.get(dir.cid)
    if (children === undefined) {
      children = await options.list(dir.cid)
      listed.set(dir.cid, children)
    }
    const names = new Set<string>()
    for (const child of children) {
      // quoted: a name may hold anything, a newline or a NUL included
      const shown = `${JSON.stringify(child.name)} in ${JSON.stringify(join(options.shownAs, dir.path))}`
      const why = fileNameProblem(child.name)
      if (why !== undefined) throw new UnsafeNameError(`refusing to write ${shown}: ${why} (an entry of directory ${dir.cid}); nothing was written`)
      if (names.has(child.name)) throw new UnsafeNameError(`refusing to write ${shown}: directory ${dir.cid} names it twice; nothing was written`)
      names.add(child.name)
      if (++entries > maxEntries) throw new TooLargeError(`the tree holds more than ${maxEntries} entries (a directory repeated under itself?); nothing was written`)
      const path = dir.path === '' ? child.name : join(dir.path, child.name)
      if (child.type === 'dir') {
        plan.dirs.push(path)
        queue.push({ cid: child.cid, path })
      } else {
        plan.files.push({ path, cid: child.cid, size: child.size })
        plan.bytes += child.size
      }
    }
  }
  return plan
}

/**
 * Check a plan against what is on disk under `out` (when it exists): a
 * planned directory must be absent or a directory (not a file, not a
 * symbolic link, which could lead out of the target); a planned file must
 * not be a directory. Files already there are replaced.
 *
 * @returns the planned directories already there (`''`: `out` itself), which the download leaves as they are
 * @throws {NotADirectoryError} {IsADirectoryError} naming the path; nothing was written
 */
export async function checkPlanOnDisk (out: string, plan: TreePlan): Promise<Set<string>> {
  const existed = new Set<string>()
  if (await lstat(out).catch(() => undefined) === undefined) return existed
  existed.add('')
  for (const dir of plan.dirs) {
    const there = await lstat(join(out, dir)).catch(() => undefined)
    if (there !== undefined && !there.isDirectory()) throw new NotADirectoryError(`cannot write the directory ${JSON.stringify(join(out, dir))}: ${there.isSymbolicLink() ? 'a symbolic link' : 'a file'} is there; nothing was written`)
    if (there !== undefined) existed.add(dir)
  }
  for (const file of plan.files) {
    const there = await lstat(join(out, file.path)).catch(() => undefined)
    if (there?.isDirectory() === true) throw new IsADirectoryError(`cannot write the file ${JSON.stringify(join(out, file.path))}: a directory is there; nothing was written`)
  }
  return existed
}
