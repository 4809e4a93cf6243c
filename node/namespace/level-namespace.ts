import { ClassicLevel } from 'classic-level'
import {
  AlreadyExistsError, DirectoryNotEmptyError, InvalidArgumentError, IsADirectoryError,
  NotADirectoryError, NotFoundError
} from '../errors.js'
import { baseName, isWithin, joinPath, normalizePath, parentOf } from './paths.js'
import type { Entry, FileRecord, MkdirOptions, Namespace, NamespaceInit, NamespaceRecord, RemoveOptions } from './index.js'

// Keys are `<parent>\x00<name>`: the children of a directory are one prefix
// range, and everything below `/a` is the ranges `/a\x00` and `/a/`.
const SEP = '\x00'
const ROOT: Entry = { type: 'dir', mode: 0o755, mtime: 0, path: '/', name: '' }

function keyOf (path: string): string {
  return parentOf(path) + SEP + baseName(path)
}

function pathOf (key: string): string {
  const i = key.indexOf(SEP)
  return joinPath(key.slice(0, i), key.slice(i + 1))
}

function toEntry (path: string, record: NamespaceRecord): Entry {
  return { ...record, path, name: baseName(path) }
}

type Op = { type: 'put', key: string, value: NamespaceRecord } | { type: 'del', key: string }

/**
 * The single-node namespace in LevelDB. Mutations are serialised by a queue
 * and committed as one synced batch each.
 */
export class LevelNamespace implements Namespace {
  private readonly db: ClassicLevel<string, NamespaceRecord>
  private queue: Promise<unknown> = Promise.resolve()

  constructor (init: NamespaceInit) {
    this.db = new ClassicLevel<string, NamespaceRecord>(init.path, { keyEncoding: 'utf8', valueEncoding: 'json' })
  }

  async open (): Promise<void> { await this.db.open() }

  async close (): Promise<void> {
    if (this.db.status !== 'open') return
    await this.queue.catch(() => {})
    await this.db.close()
  }

  async lookup (path: string): Promise<Entry | undefined> {
    const p = normalizePath(path)
    if (p === '/') return ROOT
    const record = await this.db.get(keyOf(p))
    return record === undefined ? undefined : toEntry(p, record)
  }

  async stat (path: string): Promise<Entry> {
    const entry = await this.lookup(path)
    if (entry === undefined) throw new NotFoundError(`no such file or directory: ${path}`)
    return entry
  }

  async list (path: string): Promise<Entry[]> {
    const dir = await this.stat(path)
    if (dir.type !== 'dir') throw new NotADirectoryError(`not a directory: ${dir.path}`)
    const out: Entry[] = []
    for await (const [key, value] of this.db.iterator({ gt: dir.path + SEP, lt: dir.path + '\x01' })) {
      out.push(toEntry(pathOf(key), value))
    }
    return out
  }

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

  async putFile (path: string, record: Omit<FileRecord, 'type'>): Promise<Entry> {
    const p = normalizePath(path)
    if (p === '/') throw new IsADirectoryError('cannot write a file at /')
    return await this.exclusive(async () => {
      const ops = await this.parentOps(p, true, record.mtime)
      const existing = await this.lookup(p)
      if (existing?.type === 'dir') throw new IsADirectoryError(`is a directory: ${p}`)
      const value: FileRecord = { type: 'file', cid: record.cid, size: record.size, mode: record.mode, mtime: record.mtime }
      ops.push({ type: 'put', key: keyOf(p), value })
      await this.commit(ops)
      return toEntry(p, value)
    })
  }

  async mkdir (path: string, options: MkdirOptions = {}): Promise<Entry> {
    const p = normalizePath(path)
    const parents = options.parents === true
    return await this.exclusive(async () => {
      const existing = await this.lookup(p)
      if (existing !== undefined) {
        if (existing.type === 'dir' && parents) return existing
        throw new AlreadyExistsError(`already exists: ${p}`)
      }
      const mtime = options.mtime ?? Date.now()
      const ops = await this.parentOps(p, parents, mtime)
      const value: NamespaceRecord = { type: 'dir', mode: options.mode ?? 0o755, mtime }
      ops.push({ type: 'put', key: keyOf(p), value })
      await this.commit(ops)
      return toEntry(p, value)
    })
  }

  async move (from: string, to: string): Promise<Entry> {
    const src = normalizePath(from)
    let dst = normalizePath(to)
    if (src === '/') throw new InvalidArgumentError('cannot move /')
    return await this.exclusive(async () => {
      const entry = await this.stat(src)
      const target = await this.lookup(dst)
      if (target?.type === 'dir') dst = joinPath(dst, entry.name)
      if (dst === src) return entry
      if (isWithin(dst, src)) throw new InvalidArgumentError(`cannot move ${src} into itself (${dst})`)
      if (await this.lookup(dst) !== undefined) throw new AlreadyExistsError(`already exists: ${dst}`)
      const parent = await this.lookup(parentOf(dst))
      if (parent === undefined) throw new NotFoundError(`no such directory: ${parentOf(dst)}`)
      if (parent.type !== 'dir') throw new NotADirectoryError(`not a directory: ${parent.path}`)
      const ops: Op[] = [{ type: 'del', key: keyOf(src) }, { type: 'put', key: keyOf(dst), value: this.recordOf(entry) }]
      for await (const below of this.walk(src)) {
        ops.push({ type: 'del', key: keyOf(below.path) })
        ops.push({ type: 'put', key: keyOf(dst + below.path.slice(src.length)), value: this.recordOf(below) })
      }
      await this.commit(ops)
      return toEntry(dst, this.recordOf(entry))
    })
  }

  async remove (path: string, options: RemoveOptions = {}): Promise<void> {
    const p = normalizePath(path)
    if (p === '/') throw new InvalidArgumentError('cannot remove /')
    await this.exclusive(async () => {
      const entry = await this.stat(p)
      const ops: Op[] = [{ type: 'del', key: keyOf(p) }]
      if (entry.type === 'dir') {
        for await (const below of this.walk(p)) {
          if (options.recursive !== true) throw new DirectoryNotEmptyError(`directory not empty: ${p} (use recursive removal)`)
          ops.push({ type: 'del', key: keyOf(below.path) })
        }
      }
      await this.commit(ops)
    })
  }

  /** Ops creating the missing parents of `path` (or an error when they may not be created). */
  private async parentOps (path: string, create: boolean, mtime: number): Promise<Op[]> {
    const missing: string[] = []
    for (let dir = parentOf(path); dir !== '/'; dir = parentOf(dir)) {
      const entry = await this.lookup(dir)
      if (entry?.type === 'dir') break
      if (entry !== undefined) throw new NotADirectoryError(`not a directory: ${dir}`)
      if (!create) throw new NotFoundError(`no such directory: ${dir}`)
      missing.push(dir)
    }
    return missing.map(dir => ({ type: 'put', key: keyOf(dir), value: { type: 'dir', mode: 0o755, mtime } }))
  }

  private recordOf (entry: Entry): NamespaceRecord {
    const { path: _p, name: _n, ...record } = entry
    return record
  }

  private async commit (ops: Op[]): Promise<void> {
    await this.db.batch(ops, { sync: true })
  }

  private async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => {})
    return await run
  }
}
