/**
 * Local writes: `putFile`, `putFiles`, `mkdir`, `move` and `remove` become
 * ops that name exactly the versions this replica sees at their paths (what
 * they supersede), then signed entries of this replica (split to fit an
 * entry's limits), applied like remote ones (apply.ts) in one fsynced batch
 * with the heads and the clock, and handed to the listeners (sync publishes
 * them).
 *
 * It owns the listeners of local entries; it checks what it writes against
 * the visible tree (reads.ts) under the replica's lock, and waits while the
 * replica recovers its own past writes (recovery.ts, through `writing`).
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { MAX_ENTRY_BYTES, MAX_OPS, MAX_PARENTS, MAX_TIME, encodeEntry, encodeEntryBody, type LogEntry, type EntryBodyV2, type Op, type PathOp, type Pin, type PutOp } from '../../protocol/namespace.js'
import { isTime } from '../../protocol/time.js'
import { cborCID } from '../blocks/verify.js'
import { AlreadyExistsError, DirectoryNotEmptyError, InvalidArgumentError, IsADirectoryError, NotADirectoryError, NotFoundError, SameFileError, VersionGoneError } from '../errors.js'
import { versionSeen, type Dot } from './clock.js'
import type { Txn } from './kv.js'
import { filePath, isWithin, joinPath, namesDirectory, normalizePath, parentOf } from './paths.js'
import { checkPin, samePin, wirePin } from './pins.js'
import { sortedHeads, type ReplicaStore } from './store.js'
import type { Applier } from './apply.js'
import type { Signer } from './identity.js'
import type { VisibleTreeReader } from './reads.js'
import type { Visible } from './tree.js'
import type { Entry, FileRecord, MkdirOptions, PutOptions, RemoveOptions, RemoveResult, WallClock } from './api.js'

/** What {@link LocalWrites} is built from. */
export interface LocalWritesComponents {
  store: ReplicaStore
  applier: Pick<Applier, 'apply'>
  reads: VisibleTreeReader
  /** Signs this replica's entries; its id is the author. */
  signer: Signer
  clock: WallClock
  /** Run a write under the replica's lock once it is not recovering (recovery.ts). */
  writing: <T>(fn: () => Promise<T>) => Promise<T>
}

/** This replica's own writes. */
export class LocalWrites {
  private readonly listeners = new Set<(entries: Uint8Array[]) => void>()

  constructor (private readonly components: LocalWritesComponents) {}

  /** Called with the encoded entries of every local write, after it is durable. */
  onLocalEntries (listener: (entries: Uint8Array[]) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * Create or replace the file at `path`: the new version replaces the one
   * this replica sees there, and carries `record.pin` (or no pin).
   *
   * @throws {IsADirectoryError} {NotADirectoryError} {InvalidArgumentError} (a bad pin or mtime)
   * @throws {VersionGoneError} with `options.rewriting`, when that version is no longer at the path
   */
  async putFile (path: string, record: Omit<FileRecord, 'type'>, options: PutOptions = {}): Promise<Entry> {
    const p = filePath(path)
    const pin = checkPin(record.pin)
    checkMtime(record.mtime)
    return await this.components.writing(async () => {
      const ops = new OpSet()
      await this.putOps(ops, p, record, pin, options)
      await this.commitLocal(ops.list())
      return await this.components.reads.stat(p)
    })
  }

  /**
   * Create or replace several files as one write (see the facade's
   * `putFiles`): one entry (several past an entry's limits), one batch.
   *
   * @throws {IsADirectoryError} {NotADirectoryError} {InvalidArgumentError} for any of them (then none is written)
   */
  async putFiles (files: ReadonlyArray<{ path: string, record: Omit<FileRecord, 'type'> } & Omit<PutOptions, 'rewriting'>>): Promise<Entry[]> {
    const items = files.map(({ path, record, replacing, besideTypeChanges }) => {
      const p = filePath(path)
      checkMtime(record.mtime)
      return { p, record, pin: checkPin(record.pin), options: { replacing, besideTypeChanges } }
    })
    if (items.length === 0) return []
    const filePaths = new Set(items.map(i => i.p))
    return await this.components.writing(async () => {
      const ops = new OpSet()
      for (const { p, record, pin, options } of items) {
        for (let dir = parentOf(p); dir !== '/'; dir = parentOf(dir)) {
          if (filePaths.has(dir)) throw new NotADirectoryError(`not a directory: ${dir} (a file in the same write)`)
        }
        await this.putOps(ops, p, record, pin, options)
      }
      await this.commitLocal(ops.list())
      const out: Entry[] = []
      for (const { p } of items) out.push(await this.components.reads.stat(p))
      return out
    })
  }

  /** @throws {AlreadyExistsError} {NotFoundError} {NotADirectoryError} {InvalidArgumentError} (a bad mtime) */
  async mkdir (path: string, options: MkdirOptions = {}): Promise<Entry> {
    const { reads } = this.components
    const p = normalizePath(path)
    const parents = options.parents === true
    if (options.mtime !== undefined) checkMtime(options.mtime)
    return await this.components.writing(async () => {
      const existing = await reads.lookup(p)
      if (existing !== undefined) {
        if (existing.type === 'dir' && parents) return existing
        // (a file kept beside: the mkdir replaces no version of it, so the tree shows the directory and the file as its copy)
        if (existing.type !== 'file' || options.besideFile !== true) throw new AlreadyExistsError(`already exists: ${p}`)
      }
      const mtime = options.mtime ?? this.components.clock.now()
      const ops = new OpSet()
      await this.parentOps(ops, p, parents, mtime, parents && options.besideParentFiles === true)
      ops.create({ op: 'mkdir', path: p, mode: options.mode ?? 0o755, mtime, replaces: [] })
      await this.commitLocal(ops.list())
      return await reads.stat(p)
    })
  }

  /** See {@link Namespace.setDirAttrs}. */
  async setDirAttrs (path: string, attrs: { mode: number, mtime: number }): Promise<Entry> {
    const { reads } = this.components
    const p = normalizePath(path)
    if (p === '/') throw new InvalidArgumentError('the root of the namespace has no mode or time to change')
    checkMtime(attrs.mtime)
    const mode = attrs.mode & 0o7777
    return await this.components.writing(async () => {
      const current = await reads.visible(p)
      if (current === undefined) throw new NotFoundError(`no such file or directory: ${p}`)
      if (current.type !== 'dir') throw new NotADirectoryError(`not a directory: ${p}`)
      if (current.implicit !== true && current.mode === mode && current.mtime === attrs.mtime) return await reads.stat(p)
      const ops = new OpSet()
      ops.remove(p, current.dots)
      ops.create({ op: 'mkdir', path: p, mode, mtime: attrs.mtime, replaces: [] })
      await this.commitLocal(ops.list())
      return await reads.stat(p)
    })
  }

  /**
   * Move `from` to `to` (into it when it is a directory).
   *
   * @throws {SameFileError} when the destination is the source itself (`mv a a`, `mv /d/a /d/`): nothing to do is refused, as POSIX `mv` does (FUSE rename(x, x) never gets here: it succeeds first)
   * @throws {AlreadyExistsError} {NotFoundError} {InvalidArgumentError}
   */
  async move (from: string, to: string): Promise<Entry> {
    const { reads } = this.components
    const src = normalizePath(from)
    let dst = normalizePath(to)
    if (src === '/') throw new InvalidArgumentError('cannot move /')
    return await this.components.writing(async () => {
      // the paths as given: one ending in / must name a directory
      const entry = await reads.stat(from)
      const target = await reads.lookup(to)
      if (target?.type === 'dir') dst = joinPath(dst, entry.name)
      // `mv file new/` (as POSIX rename): a new directory is not made for a file
      else if (namesDirectory(to) && entry.type !== 'dir') throw new NotADirectoryError(`not a directory: ${to}`)
      if (dst === src) throw new SameFileError(`'${src}' and '${dst}' are the same file`)
      if (isWithin(dst, src)) throw new InvalidArgumentError(`cannot move ${src} into itself (${dst})`)
      if (await reads.lookup(dst) !== undefined) throw new AlreadyExistsError(`already exists: ${dst}`)
      const parent = await reads.lookup(parentOf(dst))
      if (parent === undefined) throw new NotFoundError(`no such directory: ${parentOf(dst)}`)
      if (parent.type !== 'dir') throw new NotADirectoryError(`not a directory: ${parent.path}`)
      const ops = new OpSet()
      // the versions a moved path shows as conflict copies go with it, each in
      // an entry before the moved path's own (carried[i]: the i-th oldest)
      const carried: PutOp[][] = []
      const items: Entry[] = [entry]
      if (entry.type === 'dir') for await (const below of reads.walk(src)) items.push(below)
      for (const item of items) {
        const record = await reads.visible(item.path) as Visible
        const path = dst + item.path.slice(src.length)
        if (record.conflictOf !== undefined) {
          // a copy below a moved directory goes with the path it is a copy of
          if (item.path !== src && isWithin(record.conflictOf, src)) continue
          // the copy itself moved: its version becomes a file of its own there
          ops.remove(record.conflictOf, record.dots)
          ops.create(movedPut(path, record))
          continue
        }
        ops.remove(item.path, record.dots)
        if (record.type === 'dir') ops.create({ op: 'mkdir', path, mode: record.mode, mtime: record.mtime, replaces: [] })
        else ops.create(movedPut(path, record))
        const losers = (await reads.hiddenVersions(item.path, record)).filter(v => v.type === 'file')
        for (const [i, loser] of losers.entries()) {
          ops.remove(item.path, [[loser.author, loser.seq]])
          ;(carried[i] ??= []).push(movedPut(path, loser))
        }
      }
      await this.commitGroups([...carried, ops.list()])
      return await reads.stat(dst)
    })
  }

  /** @throws {NotFoundError} {DirectoryNotEmptyError} {InvalidArgumentError} */
  async remove (path: string, options: RemoveOptions = {}): Promise<RemoveResult> {
    const { reads } = this.components
    const p = normalizePath(path)
    if (p === '/') throw new InvalidArgumentError('cannot remove /')
    const { seen } = options
    const me = this.components.signer.id
    const kept: string[] = []
    await this.components.writing(async () => {
      // the path as given: one ending in / must name a directory
      const entry = await reads.stat(path)
      const ops = new OpSet()
      // without `seen`, every version shown goes; with it, only those seen (`arrivedSince` decides alike)
      const take = async (at: string, isDir: boolean): Promise<void> => {
        const record = await reads.visible(at) as Visible
        // a folder whose own version is new (another node set its mode or time since) was still seen if anything in it was
        const wasSeen = seen === undefined || versionSeen(record.dots, seen, me) ||
          (isDir && await reads.anyChild(at, child => versionSeen(child.dots, seen, me)))
        if (wasSeen) ops.remove(record.conflictOf ?? at, record.dots)
        else kept.push(at)
      }
      await take(p, entry.type === 'dir')
      if (entry.type === 'dir') {
        for await (const below of reads.walk(p)) {
          if (options.recursive !== true) throw new DirectoryNotEmptyError(`directory not empty: ${p} (use recursive removal)`)
          await take(below.path, below.type === 'dir')
        }
      }
      await this.commitLocal(ops.list())
    })
    return { kept }
  }

  /**
   * Turn ops into signed entries (split to fit), apply them in one batch,
   * tell listeners. `alsoInBatch` adds writes of its own to the same batch.
   * The caller holds the replica's lock.
   */
  async commitLocal (ops: Op[], alsoInBatch?: (txn: Txn) => void): Promise<void> {
    await this.commitGroups([ops], alsoInBatch)
  }

  /**
   * {@link commitLocal} of groups of ops: each group goes into entries of its
   * own, in order, all in one batch, so that two groups may write one path
   * (the ops of one entry are one version each of distinct paths). The
   * caller holds the replica's lock.
   */
  async commitGroups (groups: Op[][], alsoInBatch?: (txn: Txn) => void): Promise<void> {
    if (groups.every(g => g.length === 0) && alsoInBatch === undefined) return
    const { store, signer } = this.components
    const batch = store.batch()
    const me = signer.id
    for (const chunk of groups.flatMap(splitOps)) {
      const seq = (batch.clock[me] ?? 0) + 1
      const parents = sortedHeads(batch.heads).slice(0, MAX_PARENTS)
      const body: EntryBodyV2 = {
        v: 2,
        author: me,
        seq,
        time: this.components.clock.now(),
        parents: parents.map(h => CID.parse(h)),
        deps: parents.map(h => batch.heads.get(h) as Dot),
        ops: chunk
      }
      const sig = await signer.sign(encodeEntryBody(body))
      const entry: LogEntry = { ...body, sig }
      const bytes = encodeEntry(entry)
      await this.components.applier.apply(batch, cborCID(bytes), entry, bytes)
    }
    alsoInBatch?.(batch.txn)
    await store.commit(batch)
    if (batch.applied.length > 0) for (const listener of this.listeners) listener(batch.applied)
  }

  /**
   * The ops of a put at `p`: missing parents, the put, replacing what this
   * replica sees there — or, with `replacing` (see {@link PutOptions}), only
   * the version the writer started from.
   */
  private async putOps (ops: OpSet, p: string, record: Omit<FileRecord, 'type'>, pin: Pin | undefined, options: PutOptions = {}): Promise<void> {
    const { replacing, besideTypeChanges, rewriting } = options
    const current = await this.components.reads.visible(p)
    if (rewriting !== undefined) {
      const gone = current === undefined ? 'removed' : current.type !== 'file' || current.cid !== rewriting.cid ? 'replaced' : current.mode !== rewriting.mode || current.mtime !== rewriting.mtime || !samePin(current.pin, rewriting.pin) ? 'changed' : undefined
      if (gone !== undefined) throw new VersionGoneError(`${p}: the version of ${rewriting.cid} this change was made from is no longer there (${gone} since it was read): nothing was written`, gone)
    }
    await this.parentOps(ops, p, true, record.mtime, besideTypeChanges === true)
    if (current?.type === 'dir' && besideTypeChanges !== true) throw new IsADirectoryError(`is a directory: ${p}`)
    // (a directory put there since the write began: the file is kept beside it, its conflict copy)
    const replaces = current?.type === 'file' && (replacing === undefined || current.cid === replacing || current.cid === record.cid)
    if (current !== undefined && replaces) ops.remove(current.conflictOf ?? p, current.dots)
    else if (typeof replacing === 'string') {
      // the version the writer started from, shown as a conflict copy (its earlier commit beside another's version,
      // or beside a directory): replaced all the same, so a file committed again is not one more copy each time
      const own = (await this.components.reads.hiddenVersions(p, current)).filter(v => v.type === 'file' && v.cid === replacing)
      ops.remove(p, own.map(v => [v.author, v.seq]))
    }
    ops.create(putOf(p, record, pin))
  }

  /**
   * mkdir ops for the missing parents of `path`; with `besideFiles`, also for
   * a parent where a file is now (the directory is then shown, the file as
   * its conflict copy: see {@link PutOptions.besideTypeChanges}).
   */
  private async parentOps (ops: OpSet, path: string, create: boolean, mtime: number, besideFiles = false): Promise<void> {
    const missingDirs: string[] = []
    for (let dir = parentOf(path); dir !== '/'; dir = parentOf(dir)) {
      const record = await this.components.reads.visible(dir)
      if (record?.type === 'dir') break
      if (record !== undefined && !besideFiles) throw new NotADirectoryError(`not a directory: ${dir}`)
      if (!create) throw new NotFoundError(`no such directory: ${dir}`)
      missingDirs.push(dir)
    }
    for (const dir of missingDirs.reverse()) ops.create({ op: 'mkdir', path: dir, mode: 0o755, mtime, replaces: [] })
  }
}

/**
 * A caller's mtime: a whole number of ms from 0 to {@link MAX_TIME} (what
 * an entry may carry, protocol/namespace.ts).
 *
 * @throws {InvalidArgumentError} for any other
 */
function checkMtime (mtime: number): void {
  if (!isTime(mtime)) throw new InvalidArgumentError(`mtime must be a whole number of ms from 0 to ${MAX_TIME}, not ${String(mtime)}`)
}

/** The put op of a file `record` at `p`. */
function putOf (p: string, record: Omit<FileRecord, 'type'>, pin: Pin | undefined): PutOp {
  const put: PutOp = { op: 'put', path: p, cid: CID.parse(record.cid), size: record.size, mode: record.mode, mtime: record.mtime, replaces: [] }
  if (pin !== undefined) put.pin = pin
  return put
}

/** A put of a moved version at `path`: same bytes, mode, mtime and pin. */
function movedPut (path: string, version: Pick<Visible, 'cid' | 'size' | 'mode' | 'mtime' | 'pin'>): PutOp {
  const put: PutOp = { op: 'put', path, cid: CID.parse(version.cid as string), size: version.size ?? 0, mode: version.mode, mtime: version.mtime, replaces: [] }
  // a moved file keeps its pin
  if (version.pin !== undefined) put.pin = wirePin(version.pin)
  return put
}

/** The ops of one local write, one per path: removals merge into the creation at the same path. */
class OpSet {
  private readonly ops = new Map<string, PathOp>()

  remove (path: string, dots: Dot[]): void {
    if (dots.length === 0) return
    const op = this.ops.get(path)
    if (op === undefined) this.ops.set(path, { op: 'del', path, replaces: [...dots] })
    else op.replaces = unionDots(op.replaces, dots)
  }

  create (op: PathOp): void {
    const existing = this.ops.get(op.path)
    if (existing !== undefined) op.replaces = unionDots(existing.replaces, op.replaces)
    this.ops.set(op.path, op)
  }

  list (): PathOp[] { return [...this.ops.values()] }
}

function unionDots (a: Dot[], b: Dot[]): Dot[] {
  const seen = new Set(a.map(d => `${d[0]}\n${d[1]}`))
  const out = [...a]
  for (const d of b) if (!seen.has(`${d[0]}\n${d[1]}`)) { out.push(d); seen.add(`${d[0]}\n${d[1]}`) }
  return out
}

/** Split ops into entry-sized chunks (count and an estimate of encoded bytes). */
function splitOps (ops: Op[]): Op[][] {
  const chunks: Op[][] = []
  let chunk: Op[] = []
  let size = 0
  const budget = MAX_ENTRY_BYTES / 2
  for (const op of ops) {
    const estimate = op.op === 'retire' ? Buffer.byteLength(op.author) + 40 : Buffer.byteLength(op.path) + 120 + op.replaces.length * 80
    if (chunk.length > 0 && (chunk.length >= MAX_OPS || size + estimate > budget)) {
      chunks.push(chunk)
      chunk = []
      size = 0
    }
    chunk.push(op)
    size += estimate
  }
  if (chunk.length > 0) chunks.push(chunk)
  return chunks
}
