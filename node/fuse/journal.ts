/**
 * The journal of closed files: what `close(2)` acknowledged through a mount
 * and its commit has not yet landed.
 *
 * **Why.** `close` returns once a file's bytes are staged, before they are
 * committed (docs/fuse.md, "close returns before the commit lands"), and
 * staging is no journal: small files live in memory, larger ones in
 * `<repo>/tmp/fuse/`, which every start empties. A daemon killed in between
 * (SIGKILL, the OOM killer, a crash) lost files that `cp` or `tar x` had
 * reported written — on a kernel file system, a process dying never loses
 * what it closed.
 *
 * **The mechanism.** Each acknowledgment appends a record to a segment file
 * under `<repo>/fuse-journal/`: the path, mode, time, the version the writer
 * started from (the commit's `replacing`), and either the bytes (a file
 * staged in memory) or the name of its staging file (one on disk, whose
 * bytes are there already). A commit that lands appends a `done` mark, a
 * removal or a file kept aside a `done` for good, a rename a `moved`. The
 * writes are plain `write(2)` calls without `fsync`: they reach the page
 * cache, which outlives the process; like any file closed without `fsync`,
 * they may not outlive a power cut. Segments are cut at
 * {@link JournalOptions.segmentBytes} and deleted oldest first once none of
 * their records is still waiting; with nothing waiting, no segment is left.
 * At the next start, before the staging folder is emptied, the records still
 * waiting are taken out (`node/fuse/rescue.ts`) and committed.
 *
 * **When it applies.** Only to what was acknowledged: a file still open for
 * writing at the crash is not journaled (its writer had no answer yet), and
 * `fsync` commits at once. The cost is one write per acknowledged close, of
 * the file's bytes for a small file (measured in docs/benchmarks.md, FUSE).
 *
 * @module
 */
import { crc32c } from '@node-rs/crc32'
import { closeSync, ftruncateSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, unlinkSync, writevSync } from 'node:fs'
import { join } from 'node:path'

/** A file `close` acknowledged, as the journal keeps it. */
export interface ClosedFile {
  /** The staged file's identity in this daemon's life (renames keep it). */
  id: number
  /** Its change counter when acknowledged: a commit of this generation or later settles it. */
  gen: number
  /** Namespace path. */
  path: string
  mode: number
  /** ms since the epoch. */
  mtime: number
  /** The version the writer started from (`null`: a new file): the commit's `replacing`. */
  replacing: string | null
  /** Its length when acknowledged (a staging file may have grown since, by writes not yet acknowledged). */
  size: number
}

/** Where a closed file's bytes are: in the record (staged in memory), or in a staging file. */
export type ClosedBytes = { bytes: Uint8Array } | { stagedAt: string }

/** A record read back: a closed file and where its bytes are. */
export type JournaledFile = ClosedFile & ({ bytes: Buffer } | { stagedAt: string })

/** Options of {@link ClosedJournal}. */
export interface JournalOptions {
  /** A segment past this size is closed and a new one begun. @default 16 MiB */
  segmentBytes?: number
  /** Told of a journal write that failed (the file is still committed as usual; only a crash before that would lose it). */
  onError?: (err: Error) => void
}

type Header =
  | ({ op: 'closed', stagedAt?: string } & ClosedFile)
  | { op: 'done', id: number, gen: number }
  | { op: 'moved', id: number, path: string }
  | { op: 'meta', id: number, gen: number, mode: number, mtime: number }
  | { op: 'based', id: number, replacing: string | null }

/** `gen` of a `done` that settles every record of a file (removed, or kept aside). */
const FOREVER = Number.MAX_SAFE_INTEGER
/** Frame: payload length, crc32c of the payload. Payload: header length, header JSON, bytes. */
const FRAME = 8
const SEGMENT = /^(\d{8})\.log$/
/**
 * Segments kept before the oldest's few waiting records are copied forward:
 * records that wait seconds for their commit (most) are settled long before
 * that many segments are written after theirs, and are not copied; at 2 the
 * journal copied half of nearly every segment once.
 */
const COPY_AFTER_SEGMENTS = 4

interface Segment {
  n: number
  fd: number
  size: number
  /** Bytes of the records in it that still wait (none wait when 0). */
  live: number
  /** A write to it failed and could not be undone: no record goes there any more. */
  broken?: boolean
}

/** Where a record was written. */
interface Place { segment: Segment, offset: number, length: number }

/** A file whose newest record still waits: where that record is (to copy it forward), and the file as it is now (path, generation, mode, time, base). */
interface Waiting extends Place { file: ClosedFile & { stagedAt?: string } }

/** Appends the journal's records (see the module comment). All writes are synchronous: each is done before the acknowledgment it backs. */
export class ClosedJournal {
  private readonly segmentBytes: number
  private readonly segments: Segment[] = []
  /** Files with a record still waiting. */
  private readonly waiting = new Map<number, Waiting>()
  /** `done` and `moved` marks whose write failed: written before the next record (their effect is already in {@link waiting}). */
  private readonly unwritten: Header[] = []
  private made = false
  private failed = false

  constructor (readonly dir: string, private readonly options: JournalOptions = {}) {
    this.segmentBytes = Math.max(1, options.segmentBytes ?? 16 * 1024 * 1024)
  }

  /** Files with a record waiting for their commit. */
  get pending (): number { return this.waiting.size }

  /** Whether a record of `id` waits for its commit. */
  waits (id: number): boolean { return this.waiting.has(id) }

  /**
   * The length a waiting record of `id` acknowledged, when it names the
   * file's staging file rather than holding its bytes: the bytes below it
   * must not change before that version is committed. Undefined otherwise.
   */
  stagedLength (id: number): number | undefined {
    const file = this.waiting.get(id)?.file
    return file?.stagedAt === undefined ? undefined : file.size
  }

  /** Note that `close` acknowledged `file` with these bytes. */
  closed (closed: ClosedFile, where: ClosedBytes): void {
    const file: Waiting['file'] = { ...closed }
    if ('stagedAt' in where) file.stagedAt = where.stagedAt
    const written = this.append({ op: 'closed', ...file }, 'bytes' in where ? where.bytes : undefined)
    if (written === undefined) return
    this.settle(file.id)
    this.hold({ ...written, file })
    this.collect()
  }

  /** Whether `id`'s record at generation `gen` waits already (a second `close` of the same bytes: a dup, a child's copy of the descriptor). */
  noted (id: number, gen: number): boolean {
    return this.waiting.get(id)?.file.gen === gen
  }

  /**
   * A commit of an older generation of `id` landed while a newer record
   * waits: that record's commit now replaces `replacing` (the version that
   * landed), not the one it started from, or a rescue would keep the two
   * as a conflict.
   */
  rebased (id: number, replacing: string | null): void {
    const known = this.waiting.get(id)?.file
    if (known === undefined || known.replacing === replacing) return
    known.replacing = replacing
    this.mark({ op: 'based', id, replacing })
  }

  /** A commit of `id` at generation `gen` landed: its records up to that generation are settled. */
  done (id: number, gen: number): void {
    const known = this.waiting.get(id)?.file
    if (known === undefined || known.gen > gen) return
    this.mark({ op: 'done', id, gen })
    this.settle(id)
    this.collect()
  }

  /** `id` will never be committed from here (removed, or kept aside): none of its records is to be rescued. */
  forget (id: number): void {
    this.done(id, FOREVER)
  }

  /** `id` was renamed to `path`. */
  moved (id: number, path: string): void {
    const known = this.waiting.get(id)?.file
    if (known === undefined || known.path === path) return
    known.path = path
    this.mark({ op: 'moved', id, path })
  }

  /**
   * A `chmod` or `utime` of `id` after its close (its bytes unchanged, its
   * generation now `gen`): noted without its bytes. False when no record of
   * it waits (the caller notes the file whole).
   */
  changed (id: number, gen: number, meta: { mode: number, mtime: number }): boolean {
    const known = this.waiting.get(id)?.file
    // the record must be of the generation just before (no change of bytes between it and this one went unnoted)
    if (known === undefined || known.gen !== gen - 1) return false
    Object.assign(known, { gen, mode: meta.mode, mtime: meta.mtime })
    this.mark({ op: 'meta', id, gen, mode: meta.mode, mtime: meta.mtime })
    return true
  }

  /** Write a `done`, `moved` or `meta` mark; one that fails is kept and written before the next record. */
  private mark (header: Header): void {
    if (this.append(header) === undefined) this.unwritten.push(header)
  }

  /** Close the segments; with nothing waiting, delete them (a clean stop leaves no journal). */
  close (): void {
    // marks that failed before: one more try, or a later start would read records they settled
    while (this.unwritten.length > 0 && this.write(this.unwritten[0]) !== undefined) this.unwritten.shift()
    const keep = this.waiting.size > 0 || this.unwritten.length > 0
    for (const s of this.segments.splice(0)) {
      closeQuietly(s.fd)
      if (!keep) unlinkQuietly(this.segmentPath(s.n))
    }
    this.waiting.clear()
  }

  /** `w` is the file's newest record, and waits. */
  private hold (w: Waiting): void {
    w.segment.live += w.length
    this.waiting.set(w.file.id, w)
  }

  /** `id`'s record no longer waits (settled, or superseded by a newer one). */
  private settle (id: number): void {
    const known = this.waiting.get(id)
    if (known === undefined) return
    known.segment.live -= known.length
    this.waiting.delete(id)
  }

  /**
   * Delete segments oldest first while none of their records waits (all of
   * them once nothing waits). Oldest first: a `done` in a newer segment must
   * stay while the record it settles is read. When more than
   * {@link COPY_AFTER_SEGMENTS} segments are kept by waiting records that
   * fill less than half of the oldest (a
   * file whose commit keeps failing, a file another writer holds open),
   * those records are copied forward into the newest and the oldest goes:
   * the journal stays about twice the size of what waits, not the size of
   * everything closed since. (A segment at least half waiting is left as it
   * is: copying it would only move the same bytes again.)
   */
  private collect (): void {
    const all = this.waiting.size === 0 && this.unwritten.length === 0
    while (this.segments.length > (all ? 0 : 1)) {
      const oldest = this.segments[0]
      if (!all && oldest.live > 0 && (!this.worthCopying(oldest) || !this.copyForward(oldest))) return
      // a segment that would not go stops the deletion: the newer ones may hold marks that settle its records
      if (!unlinkQuietly(this.segmentPath(oldest.n))) return
      this.segments.shift()
      closeQuietly(oldest.fd)
    }
  }

  /**
   * Whether the oldest segment's waiting records are worth copying forward:
   * with more than {@link COPY_AFTER_SEGMENTS} segments kept, when they fill
   * less than half of it, or when the journal is more than twice what waits
   * and those segments (the oldest ones mostly waiting, the ones after them
   * mostly settled: a full disk that holds back many small files).
   */
  private worthCopying (oldest: Segment): boolean {
    if (this.segments.length <= COPY_AFTER_SEGMENTS || oldest.live >= oldest.size) return false
    if (oldest.live * 2 <= oldest.size) return true
    let size = 0
    let live = 0
    for (const s of this.segments) { size += s.size; live += s.live }
    return size > 2 * live + COPY_AFTER_SEGMENTS * this.segmentBytes
  }

  /** Copy the waiting records of `segment` into the newest one (as their files are now); false when one could not be. */
  private copyForward (segment: Segment): boolean {
    for (const w of [...this.waiting.values()]) {
      if (w.segment !== segment) continue
      let bytes: Buffer | undefined
      if (w.file.stagedAt === undefined) {
        // a small file's bytes: read back from its record
        const frame = Buffer.alloc(w.length)
        try {
          if (readSync(segment.fd, frame, 0, w.length, w.offset) !== w.length) return false
        } catch {
          return false
        }
        bytes = readRecord(frame, 0)?.bytes
        if (bytes === undefined) return false
      }
      const written = this.append({ op: 'closed', ...w.file }, bytes)
      if (written === undefined) return false
      this.settle(w.file.id)
      this.hold({ ...written, file: w.file })
    }
    return true
  }

  /** Write one record (after the marks that failed before); undefined when it could not be written (told to `onError`, nothing half-written left behind). */
  private append (header: Header, bytes?: Uint8Array): Place | undefined {
    while (this.unwritten.length > 0) {
      if (this.write(this.unwritten[0]) === undefined) return undefined
      this.unwritten.shift()
    }
    return this.write(header, bytes)
  }

  private write (header: Header, bytes?: Uint8Array): Place | undefined {
    let segment: Segment | undefined
    try {
      segment = this.current()
      const head = Buffer.from(JSON.stringify(header))
      const headLength = Buffer.alloc(4)
      headLength.writeUInt32LE(head.length)
      const payload = bytes === undefined ? [headLength, head] : [headLength, head, bytes]
      let crc = 0
      let length = 0
      for (const part of payload) { crc = crc32c(part as Buffer, crc); length += part.byteLength }
      const frame = Buffer.alloc(FRAME)
      frame.writeUInt32LE(length, 0)
      frame.writeUInt32LE(crc >>> 0, 4)
      const total = FRAME + length
      let written = 0
      const parts: Uint8Array[] = [frame, ...payload]
      while (written < total) {
        written += writevSync(segment.fd, skip(parts, written), segment.size + written)
      }
      const offset = segment.size
      segment.size += total
      this.failed = false
      return { segment, offset, length: total }
    } catch (err: any) {
      // what part of the record reached the file is cut off again: the records after it must stay readable
      if (segment !== undefined) {
        try {
          ftruncateSync(segment.fd, segment.size)
        } catch {
          // left as it is (read back up to the damage, deleted like any other once nothing in it waits); the next record begins a segment of its own
          segment.broken = true
        }
      }
      if (!this.failed) this.options.onError?.(err instanceof Error ? err : new Error(String(err)))
      this.failed = true
      return undefined
    }
  }

  private current (): Segment {
    const last = this.segments.at(-1)
    if (last !== undefined && last.size < this.segmentBytes && last.broken !== true) return last
    if (!this.made) { mkdirSync(this.dir, { recursive: true }); this.made = true }
    // numbered after every segment already there (a start rescues and deletes a crash's journal before one is written: this is a safeguard)
    const n = Math.max(last?.n ?? 0, ...segmentNumbers(this.dir)) + 1
    const fd = openSync(this.segmentPath(n), 'wx+', 0o600)
    const segment: Segment = { n, fd, size: fstatSync(fd).size, live: 0 }
    this.segments.push(segment)
    return segment
  }

  private segmentPath (n: number): string {
    return join(this.dir, segmentName(n))
  }
}

/** What {@link readJournal} found. */
export interface JournalContents {
  /** The files whose newest record still waits, in the order they were last acknowledged. */
  waiting: JournaledFile[]
  /** Segments read. */
  segments: string[]
  /** Segments whose tail was cut short or damaged (a power cut mid-write): read up to it. */
  torn: string[]
}

/** Read every segment under `dir` in order (nothing when there is none). */
export function readJournal (dir: string): JournalContents {
  const found = new Map<number, JournaledFile>()
  const out: JournalContents = { waiting: [], segments: [], torn: [] }
  for (const n of segmentNumbers(dir).sort((a, b) => a - b)) {
    const path = join(dir, segmentName(n))
    out.segments.push(path)
    const data = readFileSync(path)
    let at = 0
    while (at < data.length) {
      const record = readRecord(data, at)
      if (record === undefined) { out.torn.push(path); break }
      at = record.end
      const h = record.header
      if (h.op === 'closed') {
        const { op: _op, stagedAt, ...file } = h
        found.delete(h.id)
        // a copy: a view would keep the whole segment's buffer alive
        found.set(h.id, stagedAt !== undefined ? { ...file, stagedAt } : { ...file, bytes: Buffer.from(record.bytes) })
        continue
      }
      // a mark of a file whose record is not (or no longer) waiting: nothing to do
      const f = found.get(h.id)
      if (f === undefined) continue
      switch (h.op) {
        case 'done': if (f.gen <= h.gen) found.delete(h.id); break
        case 'moved': f.path = h.path; break
        case 'based': f.replacing = h.replacing; break
        case 'meta': Object.assign(f, { gen: h.gen, mode: h.mode, mtime: h.mtime }); break
      }
    }
  }
  out.waiting = [...found.values()]
  return out
}

function readRecord (data: Buffer, at: number): { header: Header, bytes: Buffer, end: number } | undefined {
  if (at + FRAME > data.length) return undefined
  const length = data.readUInt32LE(at)
  const crc = data.readUInt32LE(at + 4)
  const end = at + FRAME + length
  if (length < 4 || end > data.length) return undefined
  const payload = data.subarray(at + FRAME, end)
  if ((crc32c(payload) >>> 0) !== crc) return undefined
  const headLength = payload.readUInt32LE(0)
  if (4 + headLength > payload.length) return undefined
  let header: Header
  try {
    header = JSON.parse(payload.subarray(4, 4 + headLength).toString('utf8'))
  } catch {
    return undefined
  }
  if (!isHeader(header)) return undefined
  return { header, bytes: payload.subarray(4 + headLength), end }
}

function isHeader (h: any): h is Header {
  if (typeof h !== 'object' || h === null || !Number.isSafeInteger(h.id)) return false
  if (h.op === 'done') return Number.isSafeInteger(h.gen)
  if (h.op === 'moved') return typeof h.path === 'string'
  if (h.op === 'based') return h.replacing === null || typeof h.replacing === 'string'
  if (h.op === 'meta') return Number.isSafeInteger(h.gen) && Number.isInteger(h.mode) && Number.isFinite(h.mtime)
  return h.op === 'closed' && Number.isSafeInteger(h.gen) && typeof h.path === 'string' && Number.isInteger(h.mode) &&
    Number.isFinite(h.mtime) && (h.replacing === null || typeof h.replacing === 'string') && Number.isSafeInteger(h.size) && h.size >= 0 &&
    (h.stagedAt === undefined || typeof h.stagedAt === 'string')
}

function segmentName (n: number): string {
  return `${String(n).padStart(8, '0')}.log`
}

function segmentNumbers (dir: string): number[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err: any) {
    if (err?.code === 'ENOENT') return []
    throw err
  }
  return names.flatMap(name => { const m = SEGMENT.exec(name); return m === null ? [] : [Number(m[1])] })
}

/** `parts` without their first `offset` bytes. */
function skip (parts: Uint8Array[], offset: number): Uint8Array[] {
  if (offset === 0) return parts
  const out: Uint8Array[] = []
  for (const p of parts) {
    if (offset >= p.byteLength) { offset -= p.byteLength; continue }
    out.push(offset > 0 ? p.subarray(offset) : p)
    offset = 0
  }
  return out
}

/** False when `path` is still there. */
function unlinkQuietly (path: string): boolean {
  try {
    unlinkSync(path)
    return true
  } catch (err: any) {
    return err?.code === 'ENOENT'
  }
}

function closeQuietly (fd: number): void {
  try { closeSync(fd) } catch {}
}
