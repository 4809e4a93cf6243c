/**
 * The permission bits and modification times a `get` of a namespace path
 * gives what it writes: those the namespace records for each file and
 * directory (the mount shows the same), as `rsync -a` or Syncthing keep
 * them. Before, every file came back `0644` (less the umask) and dated by
 * the download: an executable script lost its `x`, and `make` or a backup
 * tool saw every file as new.
 *
 * Only the permission bits (`0777`) are given: set-user-ID, set-group-ID
 * and sticky bits a writer recorded are not (`tar` drops them too unless
 * told). A file gets its recorded attributes only while the namespace still
 * names the content that was downloaded (a file changed meanwhile keeps
 * the download's). A `get` by CID has no namespace record: nothing is set.
 * Directories are set last, deepest first, so their times are not moved by
 * the files written into them; a folder that was there before the download
 * (`get -o` into an existing one) keeps its own.
 *
 * @module
 */
import { chmod, lstat, utimes } from 'node:fs/promises'
import { join, sep } from 'node:path'
import { mapAtOnce } from '../node/at-once.js'
import type { FileInfo } from '../node/files/index.js'
import type { ApiClient } from './client.js'
import type { TreePlan } from './output-path.js'

/** Namespace directories listed at once. */
const LISTS_AT_ONCE = 8

/** What the namespace records of one entry of a tree. */
export interface RecordedAttrs {
  type: 'file' | 'dir'
  cid: string
  mode?: number
  mtime?: number
}

/**
 * The recorded attributes of the tree at namespace path `root`, by path
 * under it (the plan's separator; `''` is the root itself).
 */
export async function recordedAttrs (client: ApiClient, root: FileInfo & { path: string }, plan: TreePlan): Promise<Map<string, RecordedAttrs>> {
  const out = new Map<string, RecordedAttrs>([['', { type: 'dir', cid: root.cid, mode: root.mode, mtime: root.mtime }]])
  const dirs = ['', ...plan.dirs]
  const listings = await mapAtOnce(dirs, LISTS_AT_ONCE, async dir => {
    const path = dir === '' ? root.path : `${root.path === '/' ? '' : root.path}/${dir.split(sep).join('/')}`
    return await client.json<FileInfo[]>('GET', '/api/v0/ls', { arg: path }).catch(() => [])
  })
  dirs.forEach((dir, i) => {
    for (const e of listings[i]) out.set(dir === '' ? e.name : join(dir, e.name), { type: e.type, cid: e.cid, mode: e.mode, mtime: e.mtime })
  })
  return out
}

/**
 * Give the files and directories written under `base` (the plan's) their
 * recorded attributes; folders in `existed` (`''`: `base` itself) were there
 * before the download and are left as they are. Returns the first failure's
 * message (a file system that takes no modes or times), or undefined: the
 * download itself stands.
 */
export async function applyAttrs (base: string, plan: TreePlan, attrs: ReadonlyMap<string, RecordedAttrs>, existed: ReadonlySet<string> = new Set()): Promise<string | undefined> {
  let failed: string | undefined
  const apply = async (path: string, recorded: RecordedAttrs | undefined): Promise<void> => {
    if (recorded === undefined) return
    try {
      await setAttrs(path, recorded)
    } catch (err: any) {
      failed ??= `${path}: ${String(err?.code ?? err?.message ?? err)}`
    }
  }
  for (const file of plan.files) {
    const recorded = attrs.get(file.path)
    if (recorded?.type === 'file' && recorded.cid === file.cid) await apply(join(base, file.path), recorded)
  }
  for (const dir of [...plan.dirs].reverse()) {
    const recorded = attrs.get(dir)
    if (recorded?.type === 'dir' && !existed.has(dir)) await apply(join(base, dir), recorded)
  }
  if (!existed.has('')) await apply(base, attrs.get(''))
  return failed
}

/** Set `path`'s permission bits and modification time to `recorded`'s, when it is a regular file or directory. */
export async function setAttrs (path: string, recorded: Pick<RecordedAttrs, 'mode' | 'mtime'>): Promise<void> {
  const st = await lstat(path)
  // a FIFO or a device written in place (`-o /dev/stdout`) is not ours to change
  if (!st.isFile() && !st.isDirectory()) return
  if (recorded.mode !== undefined) await chmod(path, recorded.mode & 0o777)
  if (recorded.mtime !== undefined) await utimes(path, new Date(), new Date(recorded.mtime))
}
