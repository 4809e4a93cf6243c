/**
 * Reads of the materialized tree: what the API, FUSE and the writes see.
 * Every read is one key or one key range of the visible-name index (`t!`,
 * tree.ts), so reads never replay history and never wait for the replica's
 * lock.
 *
 * It owns no state: it reads what apply.ts and snapshot merges wrote.
 *
 * @module
 */
import { NotADirectoryError, NotFoundError } from '../errors.js'
import { decodeJSON, type KV } from './kv.js'
import { baseName, namesDirectory, normalizePath } from './paths.js'
import { copyPin } from './pins.js'
import { childRange, compareVersions, pathOfVisibleKey, versionsKey, visibleKey, type PathState, type Version, type Visible } from './tree.js'
import type { ConflictInfo, Entry } from './api.js'

/** Lookups, listings and walks of the visible tree. */
export class VisibleTreeReader {
  constructor (private readonly kv: KV) {}

  /**
   * The entry at `path`, or undefined.
   *
   * @throws {NotADirectoryError} when `path` ends in `/` and a file is there (as POSIX `stat` does)
   */
  async lookup (path: string): Promise<Entry | undefined> {
    const p = normalizePath(path)
    if (p === '/') return { type: 'dir', mode: 0o755, mtime: 0, path: '/', name: '' }
    const bytes = await this.kv.get(visibleKey(p))
    const entry = bytes === undefined ? undefined : toEntry(p, decodeJSON<Visible>(bytes))
    if (entry !== undefined && entry.type !== 'dir' && namesDirectory(path)) throw new NotADirectoryError(`not a directory: ${path} (${p} is a file)`)
    return entry
  }

  /** @throws {NotFoundError} */
  async stat (path: string): Promise<Entry> {
    const entry = await this.lookup(path)
    if (entry === undefined) throw new NotFoundError(`no such file or directory: ${path}`)
    return entry
  }

  /** Direct children of a directory, sorted by name. @throws {NotFoundError} {NotADirectoryError} */
  async list (path: string): Promise<Entry[]> {
    const dir = await this.stat(path)
    if (dir.type !== 'dir') throw new NotADirectoryError(`not a directory: ${dir.path}`)
    const out: Entry[] = []
    for await (const [key, value] of this.kv.iterate(childRange(dir.path))) {
      out.push(toEntry(pathOfVisibleKey(key), decodeJSON<Visible>(value)))
    }
    return out
  }

  /** Whether some name directly inside the directory at a normalised `path` shows a record that `test` accepts (it stops at the first). */
  async anyChild (path: string, test: (v: Visible) => boolean): Promise<boolean> {
    for await (const [, value] of this.kv.iterate(childRange(path))) {
      if (test(decodeJSON<Visible>(value))) return true
    }
    return false
  }

  /** Every entry strictly below a directory, parents before children. */
  async * walk (path: string): AsyncGenerator<Entry> {
    const root = await this.stat(path)
    if (root.type !== 'dir') return
    const stack = (await this.list(root.path)).reverse()
    while (stack.length > 0) {
      const entry = stack.pop() as Entry
      yield entry
      if (entry.type === 'dir') stack.push(...(await this.list(entry.path)).reverse())
    }
  }

  /** Every conflict copy, by path. */
  async conflicts (): Promise<ConflictInfo[]> {
    const out: ConflictInfo[] = []
    for await (const [key] of this.kv.iterate({ gt: 'c!', lt: 'c"' })) {
      const path = key.slice(2)
      const bytes = await this.kv.get(versionsKey(path))
      if (bytes === undefined) continue
      const state = decodeJSON<PathState>(bytes)
      for (const copy of state.copies) {
        const record = await this.kv.get(visibleKey(copy))
        if (record === undefined) continue
        const v = decodeJSON<Visible>(record)
        // a name another path's file took since is no copy of this one
        if (v.conflictOf !== path) continue
        out.push({ path, copy, author: v.author ?? '', time: v.time ?? 0, cid: v.cid ?? '', size: v.size ?? 0 })
      }
    }
    return out
  }

  /**
   * Every visible file entry, conflict copies included: one scan of the
   * visible-name index, grouped by directory.
   */
  async * files (): AsyncGenerator<Entry> {
    for await (const [key, value] of this.kv.iterate({ gt: 't!', lt: 't"' })) {
      const v = decodeJSON<Visible>(value)
      if (v.type === 'file') yield toEntry(pathOfVisibleKey(key), v)
    }
  }

  /** The visible record at a normalised `path` (with its dots: what a write there replaces), or undefined. */
  async visible (path: string): Promise<Visible | undefined> {
    const bytes = await this.kv.get(visibleKey(path))
    return bytes === undefined ? undefined : decodeJSON<Visible>(bytes)
  }

  /**
   * The live versions of a normalised `path` that are not the one shown
   * there (`shown`, its visible record as the caller read it: the losers of
   * a conflict, each visible as a conflict copy where it can be), oldest
   * winner first: in {@link compareVersions} order.
   */
  async hiddenVersions (path: string, shown: Pick<Visible, 'dots'> | undefined): Promise<Version[]> {
    const state = await this.kv.get(versionsKey(path))
    if (state === undefined) return []
    const dots = new Set((shown?.dots ?? []).map(([author, seq]) => `${author}\0${seq}`))
    return decodeJSON<PathState>(state).versions
      .filter(v => !dots.has(`${v.author}\0${v.seq}`))
      .sort(compareVersions)
  }
}

/** A visible record as the {@link Entry} readers get. */
export function toEntry (path: string, v: Visible): Entry {
  const base = { path, name: baseName(path), mode: v.mode, mtime: v.mtime }
  let entry: Entry
  if (v.type === 'dir') {
    entry = { type: 'dir', ...base }
  } else {
    entry = { type: 'file', ...base, cid: v.cid as string, size: v.size ?? 0 }
    if (v.pin !== undefined) entry.pin = copyPin(v.pin)
  }
  if (v.conflictOf !== undefined) entry.conflictOf = v.conflictOf
  return entry
}
