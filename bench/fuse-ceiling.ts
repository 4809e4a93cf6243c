/**
 * The FUSE ceiling of `bench/fuse.ts`: a minimal in-memory file system on
 * the same binding, with the same mount options as a Shoal mount
 * (`node/fuse/adapter.ts`), in its own process. Whatever Shoal adds on top
 * of FUSE is measured against this.
 *
 * Usage: `node dist/bench/fuse-ceiling.js MOUNTPOINT` — prints `ready` once
 * mounted, unmounts on SIGTERM/SIGINT.
 *
 * @module
 */
import { mountFuse, type FuseOps, type FuseStat } from '../node/fuse/adapter.js'

const PAGE = 128 * 1024
const ENOENT = -2
const EEXIST = -17
const ENOTEMPTY = -39

interface Node { dir: boolean, mode: number, mtime: number, size: number, pages: Map<number, Buffer> }

const nodes = new Map<string, Node>([['/', { dir: true, mode: 0o755, mtime: Date.now(), size: 0, pages: new Map() }]])
const uid = process.getuid?.() ?? 0
const gid = process.getgid?.() ?? 0

function statOf (n: Node): FuseStat {
  return { mode: (n.dir ? 0o040000 : 0o100000) | n.mode, uid, gid, size: n.dir ? 4096 : n.size, nlink: n.dir ? 2 : 1, mtime: n.mtime, atime: n.mtime, ctime: n.mtime, blksize: PAGE }
}
function parent (p: string): string { return p.slice(0, p.lastIndexOf('/')) || '/' }
function truncate (n: Node, size: number): void {
  for (const k of [...n.pages.keys()]) if (k * PAGE >= size) n.pages.delete(k)
  const last = n.pages.get(Math.floor(size / PAGE))
  if (last !== undefined) last.fill(0, size % PAGE)
  n.size = size
  n.mtime = Date.now()
}

// directory listings are kept per directory: a flat map scan per readdir would make `ls` of 10k files quadratic
const listing = new Map<string, Set<string>>([['/', new Set()]])
function link (p: string, n: Node): void {
  nodes.set(p, n)
  listing.get(parent(p))?.add(p.slice(p.lastIndexOf('/') + 1))
  if (n.dir) listing.set(p, new Set())
}
function unlinkPath (p: string): void {
  nodes.delete(p)
  listing.get(parent(p))?.delete(p.slice(p.lastIndexOf('/') + 1))
  listing.delete(p)
}

const ops: FuseOps = {
  getattr: (p, cb) => { const n = nodes.get(p); if (n === undefined) cb(ENOENT); else cb(0, statOf(n)) },
  readdir: (p, cb) => { const l = listing.get(p); if (l === undefined) cb(ENOENT); else cb(0, ['.', '..', ...l]) },
  open: (p, _flags, cb) => { cb(nodes.has(p) ? 0 : ENOENT, 0) },
  create: (p, mode, cb) => { link(p, { dir: false, mode: mode & 0o7777, mtime: Date.now(), size: 0, pages: new Map() }); cb(0, 0) },
  read: (p, _fd, buf, len, pos, cb) => {
    const n = nodes.get(p)
    if (n === undefined) { cb(ENOENT); return }
    const end = Math.min(pos + len, n.size)
    let at = pos
    while (at < end) {
      const page = n.pages.get(Math.floor(at / PAGE))
      const off = at % PAGE
      const count = Math.min(PAGE - off, end - at)
      if (page === undefined) buf.fill(0, at - pos, at - pos + count)
      else page.copy(buf, at - pos, off, off + count)
      at += count
    }
    cb(Math.max(0, end - pos))
  },
  write: (p, _fd, buf, len, pos, cb) => {
    const n = nodes.get(p)
    if (n === undefined) { cb(ENOENT); return }
    let at = pos
    while (at < pos + len) {
      const k = Math.floor(at / PAGE)
      let page = n.pages.get(k)
      if (page === undefined) { page = Buffer.alloc(PAGE); n.pages.set(k, page) }
      const off = at % PAGE
      const count = Math.min(PAGE - off, pos + len - at)
      buf.copy(page, off, at - pos, at - pos + count)
      at += count
    }
    if (pos + len > n.size) n.size = pos + len
    n.mtime = Date.now()
    cb(len)
  },
  release: (_p, _fd, cb) => { cb(0) },
  flush: (_p, _fd, cb) => { cb(0) },
  fsync: (_p, _d, _fd, cb) => { cb(0) },
  truncate: (p, size, cb) => { const n = nodes.get(p); if (n === undefined) cb(ENOENT); else { truncate(n, size); cb(0) } },
  ftruncate: (p, _fd, size, cb) => { const n = nodes.get(p); if (n === undefined) cb(ENOENT); else { truncate(n, size); cb(0) } },
  mkdir: (p, mode, cb) => { if (nodes.has(p)) { cb(EEXIST); return } link(p, { dir: true, mode: mode & 0o7777, mtime: Date.now(), size: 0, pages: new Map() }); cb(0) },
  rmdir: (p, cb) => { if (!nodes.has(p)) cb(ENOENT); else if ((listing.get(p)?.size ?? 0) > 0) cb(ENOTEMPTY); else { unlinkPath(p); cb(0) } },
  unlink: (p, cb) => { if (!nodes.has(p)) cb(ENOENT); else { unlinkPath(p); cb(0) } },
  rename: (from, to, cb) => { const n = nodes.get(from); if (n === undefined) { cb(ENOENT); return } unlinkPath(from); link(to, n); cb(0) },
  chmod: (p, mode, cb) => { const n = nodes.get(p); if (n === undefined) cb(ENOENT); else { n.mode = mode & 0o7777; cb(0) } },
  utimens: (p, _a, m, cb) => { const n = nodes.get(p); if (n === undefined) cb(ENOENT); else { n.mtime = m; cb(0) } }
}

const dir = process.argv[2]
if (dir === undefined) { process.stderr.write('usage: fuse-ceiling MOUNTPOINT\n'); process.exit(2) }
const mounted = await mountFuse(dir, ops, { attrTimeout: 1, entryTimeout: 1, autoCache: true, fsname: 'ceiling' })
process.stdout.write('ready\n')
let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  mounted.unmount().then(() => process.exit(0), err => { process.stderr.write(`unmount failed: ${String(err?.message)}\n`); process.exit(1) })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
