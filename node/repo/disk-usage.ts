/**
 * What the repo takes on disk, and what its disk has left: the figures of
 * `shoal status` and of `GET /api/v0/status` (`disk`).
 *
 * Why: the block store's own estimate covers its packs and index only,
 * while the repo also holds the namespace and durability stores, staging,
 * the ballast; and a user watching a node fill up wants the free space of
 * the disk beside it, as `ipfs repo stat` and Syncthing's GUI show.
 *
 * How: the repo folder is walked as `du -x` does — every file's allocated
 * blocks (`st_blocks` × 512, so a sparse file counts what it holds), each
 * hard-linked file once, symbolic links not followed, nothing on another
 * file system (a mount inside the repo, e.g. a FUSE mount of this very
 * node, is not entered). Files that vanish during the walk (LevelDB
 * compactions, pack rewrites) are skipped. Free and total space come from
 * `statfs` of the repo folder (free: what an unprivileged writer may still
 * use, as `df` shows it).
 *
 * When it applies: on status requests. The walk costs one `lstat` per file
 * of the repo (pack files are 64 MiB: some 16,000 files for a TiB), so a
 * page that polls the status does not walk more than once per
 * {@link REUSE_MS}: callers while a walk runs share it, and its result
 * answers for that long after it ended.
 *
 * @module
 */
import { lstat, opendir, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import type { RepoLayout } from './layout.js'

/** Bytes a repo takes on disk, by part, and the room left on its file system. */
export interface RepoDiskUsage {
  /** The whole repo folder (allocated bytes, as `du -sx` counts them). */
  repoBytes: number
  /** The block store: pack files and their LevelDB index (`<repo>/blocks`). */
  blocksBytes: number
  /** The namespace replica (`<repo>/namespace`). */
  namespaceBytes: number
  /** What this node holds and placed for durability (`<repo>/durability`). */
  durabilityBytes: number
  /** Everything else: ballast, staging, config, keys. */
  otherBytes: number
  /** Bytes still usable on the repo's file system by an unprivileged writer (`df`'s "Avail"). */
  freeBytes: number
  /** Size of the repo's file system. */
  totalBytes: number
}

/** How long a measurement answers later callers (ms): two refreshes of the status page (5 s each). */
export const REUSE_MS = 10_000

/** The last measurement of each repo: its result, and when it ended (undefined while it runs). */
const recent = new Map<string, { usage: Promise<RepoDiskUsage>, ended?: number }>()

/**
 * What the repo at `layout.root` takes on disk and what its disk has left:
 * measured now, or by a measurement under way or younger than {@link REUSE_MS}.
 */
export async function repoDiskUsage (layout: Pick<RepoLayout, 'root' | 'blocks' | 'namespace' | 'durability'>): Promise<RepoDiskUsage> {
  const last = recent.get(layout.root)
  if (last !== undefined && (last.ended === undefined || performance.now() - last.ended < REUSE_MS)) return await last.usage
  const entry: { usage: Promise<RepoDiskUsage>, ended?: number } = { usage: measure(layout) }
  recent.set(layout.root, entry)
  entry.usage.then(() => { entry.ended = performance.now() }, () => {
    // a failed measurement is not reused
    if (recent.get(layout.root) === entry) recent.delete(layout.root)
  })
  return await entry.usage
}

/**
 * Measure the repo at `root` anew at the next call: after something that
 * changed its size at once (a garbage collection), whose effect a reused
 * measurement would hide for up to {@link REUSE_MS}.
 */
export function forgetDiskUsage (root: string): void {
  recent.delete(root)
}

/** Walk the repo and ask its file system (see the module comment). */
async function measure (layout: Pick<RepoLayout, 'root' | 'blocks' | 'namespace' | 'durability'>): Promise<RepoDiskUsage> {
  const root = await lstat(layout.root)
  const parts = [layout.blocks, layout.namespace, layout.durability]
  const walk = { dev: root.dev, seen: new Set<string>(), skip: new Set(parts) }
  const [blocksBytes, namespaceBytes, durabilityBytes] = [
    await allocatedBytes(layout.blocks, walk),
    await allocatedBytes(layout.namespace, walk),
    await allocatedBytes(layout.durability, walk)
  ]
  // the rest of the repo: the parts are not entered again
  const otherBytes = await allocatedBytes(layout.root, walk)
  const fs = await statfs(layout.root)
  return {
    repoBytes: blocksBytes + namespaceBytes + durabilityBytes + otherBytes,
    blocksBytes,
    namespaceBytes,
    durabilityBytes,
    otherBytes,
    freeBytes: fs.bavail * fs.bsize,
    totalBytes: fs.blocks * fs.bsize
  }
}

/** The state of one measurement. */
interface Walk {
  /** The repo's device: nothing on another one is counted. */
  dev: number
  /** `dev:ino` of everything counted (hard links count once). */
  seen: Set<string>
  /** Folders measured on their own: not entered from their parent. */
  skip: Set<string>
}

/**
 * Allocated bytes of `path` and everything below it on the walk's device,
 * each inode counted once per walk (a directory's own blocks included, as
 * `du` does).
 */
async function allocatedBytes (path: string, walk: Walk): Promise<number> {
  let st
  try {
    st = await lstat(path)
  } catch (err: any) {
    if (err?.code === 'ENOENT') return 0
    throw err
  }
  if (st.dev !== walk.dev) return 0
  const key = `${st.dev}:${st.ino}`
  let total = 0
  if (!walk.seen.has(key)) {
    walk.seen.add(key)
    total += st.blocks * 512
  }
  if (!st.isDirectory()) return total
  let dir
  try {
    dir = await opendir(path)
  } catch (err: any) {
    if (err?.code === 'ENOENT') return total
    throw err
  }
  for await (const entry of dir) {
    const child = join(path, entry.name)
    if (!walk.skip.has(child)) total += await allocatedBytes(child, walk)
  }
  return total
}
