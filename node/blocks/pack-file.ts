/**
 * Pack files on disk: naming, the appender that buffers records and writes
 * them in large sequential writes, the pool of read handles (`pread`), and a
 * sequential scan of a pack's records.
 *
 * @module
 */
import { open, readdir, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { PACK_HEADER, PACK_MAGIC, RECORD_HEADER, decodeRecord, recordLengthFromHeader, type DecodedRecord, type RecordFault } from './pack-record.js'
import { typedWriteError } from './errors.js'

/** File name of pack `pack`: eight hex digits and `.pack`. */
export function packFileName (pack: number): string {
  return `${pack.toString(16).padStart(8, '0')}.pack`
}

/** The pack numbers of the pack files in `dir`, ascending. */
export async function listPacks (dir: string): Promise<number[]> {
  const names = await readdir(dir)
  return names
    .filter(n => /^[0-9a-f]{8}\.pack$/.test(n))
    .map(n => parseInt(n.slice(0, 8), 16))
    .sort((a, b) => a - b)
}

/** fsync a directory, so that files created or removed in it stay so (a file's path works too: its bytes are synced). */
export async function syncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

interface Segment { start: number, buf: Buffer, used: number, done?: Promise<void> }

/** A segment that holds no memory yet (one is taken at its first append). */
const NO_BUFFER = Buffer.alloc(0)

/**
 * Segment buffers shared by the {@link PackAppender}s of one store: a written
 * segment's memory is taken by the next one, whatever its pack, and at most
 * `keep` idle buffers are held. A pack that is rolled over keeps no memory,
 * so a long import that fills many packs before its commit holds the
 * buffers of one (docs/benchmarks.md, "Ingest").
 */
export class SegmentPool {
  private readonly idle: Buffer[] = []
  private inUse = 0
  /** Most segment buffers alive at once so far: in use by appenders plus idle here. */
  peak = 0

  constructor (readonly segmentBytes: number, private readonly keep = 2) {}

  /** A buffer of at least `length` bytes (a segment's, or larger for a larger record). */
  take (length: number): Buffer {
    if (length > this.segmentBytes) return Buffer.allocUnsafe(length)
    this.inUse++
    const buf = this.idle.pop() ?? Buffer.allocUnsafe(this.segmentBytes)
    this.peak = Math.max(this.peak, this.inUse + this.idle.length)
    return buf
  }

  /** Give back a buffer {@link take} gave, no longer read or written. */
  give (buf: Buffer): void {
    if (buf.byteLength !== this.segmentBytes) return
    this.inUse--
    if (this.idle.length < this.keep) this.idle.push(buf)
  }

  /** Idle buffers held now. */
  get held (): number {
    return this.idle.length
  }
}

/** Bytes written between two background fdatasyncs of a pack ({@link PackAppender}). */
export const WRITEBACK_BYTES = 16 * 1024 * 1024

/**
 * Appends records to one pack file. `append` is synchronous (it assigns the
 * offset and copies into a memory segment); full segments are written behind,
 * in order, while the next one fills. Buffered and in-flight bytes can be read
 * back with {@link PackAppender.readBuffered}. Every {@link WRITEBACK_BYTES}
 * written, an fdatasync starts in the background to pace writeback; what is
 * durable is still only what {@link PackAppender.sync} covered.
 */
export class PackAppender {
  /** Logical end of the pack: every byte appended so far. */
  size: number
  private current: Segment
  private readonly inflight: Segment[] = []
  private chain: Promise<void> = Promise.resolve()
  private error: Error | undefined
  /** Bytes written since the last background fdatasync started. */
  private unsynced = 0
  /** A background fdatasync under way (writeback pacing), if any. */
  private syncing: Promise<void> | undefined
  /** {@link sync} calls under way: no background fdatasync starts while one runs. */
  private syncHeld = 0

  private constructor (readonly pack: number, private readonly fh: FileHandle, size: number, private readonly segments: SegmentPool) {
    this.size = size
    this.current = { start: size, buf: NO_BUFFER, used: 0 }
  }

  /** Create pack `pack` in `dir` (its header is appended, not yet written). */
  static async create (dir: string, pack: number, segments: SegmentPool): Promise<PackAppender> {
    const fh = await open(join(dir, packFileName(pack)), 'wx+').catch(err => { throw typedWriteError(err) })
    const appender = new PackAppender(pack, fh, 0, segments)
    appender.append(PACK_HEADER, out => { out.set(PACK_MAGIC) })
    return appender
  }

  /** Open pack `pack` in `dir` to append at `size` (its committed length). */
  static async reopen (dir: string, pack: number, size: number, segments: SegmentPool): Promise<PackAppender> {
    const fh = await open(join(dir, packFileName(pack)), 'r+')
    return new PackAppender(pack, fh, size, segments)
  }

  /** Reserve `length` bytes at the end, let `fill` write them, return their offset. */
  append (length: number, fill: (out: Uint8Array) => void): number {
    this.throwIfFailed()
    if (this.current.used + length > this.current.buf.byteLength) {
      this.seal()
      this.current = { start: this.size, buf: this.segments.take(length), used: 0 }
    }
    const offset = this.size
    fill(this.current.buf.subarray(this.current.used, this.current.used + length))
    this.current.used += length
    this.size += length
    if (this.current.used === this.current.buf.byteLength) this.seal()
    return offset
  }

  /** True when writers should wait for {@link PackAppender.drain} (two segments in flight). */
  get congested (): boolean {
    return this.inflight.length >= 2
  }

  /** Wait until at most one segment is being written. */
  async drain (): Promise<void> {
    while (this.inflight.length >= 2) await this.inflight[0].done
    this.throwIfFailed()
  }

  /** Bytes at [offset, offset + length) if they are still in memory, else undefined. */
  readBuffered (offset: number, length: number): Uint8Array | undefined {
    for (const seg of [...this.inflight, this.current]) {
      if (offset >= seg.start && offset + length <= seg.start + seg.used) {
        const at = offset - seg.start
        // a copy: the segment's memory is reused once written
        return Uint8Array.prototype.slice.call(seg.buf, at, at + length)
      }
    }
    return undefined
  }

  /**
   * Start writing the bytes appended so far (no fsync, not awaited): what a
   * pack that is no longer appended to does, so that it holds no memory
   * while it waits for its commit. A write error is the next call's.
   */
  writeBehind (): void {
    this.seal()
  }

  /** Write every appended byte to the file (no fsync). */
  async flush (): Promise<void> {
    this.seal()
    await this.chain
    this.throwIfFailed()
  }

  /**
   * Write every appended byte and fdatasync the file. No background
   * fdatasync starts meanwhile, and one that ran before is waited for: the
   * kernel reports a writeback error to one fdatasync only, and it must be
   * this one's (or fail the appender before this returns).
   */
  async sync (): Promise<void> {
    this.syncHeld++
    try {
      await this.flush()
      await this.syncing
      this.throwIfFailed()
      try {
        await this.fh.datasync()
      } catch (err) {
        this.error ??= typedWriteError(err)
      }
      this.throwIfFailed()
    } finally {
      this.syncHeld--
    }
  }

  /** Cut the file back to `length` bytes (after a failed write). */
  async truncate (length: number): Promise<void> {
    await this.fh.truncate(length)
  }

  async close (): Promise<void> {
    await this.chain
    await this.fh.close()
  }

  /** Make the appender unusable, as a write error would (its pack's next commit fails and is cut back). */
  poison (err: Error): void {
    this.error ??= err
  }

  /** The first write error, if any: the appender is then unusable. */
  get failed (): Error | undefined {
    return this.error
  }

  private seal (): void {
    const seg = this.current
    if (seg.used === 0) return
    this.current = { start: this.size, buf: NO_BUFFER, used: 0 }
    this.inflight.push(seg)
    const write = async (): Promise<void> => {
      try {
        if (this.error !== undefined) return
        let done = 0
        while (done < seg.used) {
          const { bytesWritten } = await this.fh.write(seg.buf, done, seg.used - done, seg.start + done)
          done += bytesWritten
        }
        this.paceWriteback(seg.used)
      } catch (err) {
        this.error ??= typedWriteError(err)
      } finally {
        this.inflight.splice(this.inflight.indexOf(seg), 1)
        // reads copy out of segments, so a written one can be reused
        this.segments.give(seg.buf)
      }
    }
    seg.done = this.chain = this.chain.then(write)
  }

  /**
   * Writeback pacing (RocksDB's `bytes_per_sync`): every
   * {@link WRITEBACK_BYTES} written, an fdatasync starts in the background,
   * so the disk writes while the import goes on instead of taking the whole
   * pack at the commit's fdatasync. Writes do not wait for it; its error
   * fails the appender (the commit then throws it).
   */
  private paceWriteback (bytes: number): void {
    this.unsynced += bytes
    if (this.unsynced < WRITEBACK_BYTES || this.syncing !== undefined || this.syncHeld > 0) return
    this.unsynced = 0
    this.syncing = this.fh.datasync()
      .catch((err: unknown) => { this.error ??= typedWriteError(err) })
      .finally(() => { this.syncing = undefined })
  }

  private throwIfFailed (): void {
    if (this.error !== undefined) throw this.error
  }
}

interface PooledHandle { fh: Promise<FileHandle>, refs: number, retired: boolean }

/**
 * Open read handles of pack files, at most `max` (least recently used are
 * closed first). A handle in use is closed only once its reads are done, so
 * a pack can be retired (unlinked) under readers: reads that hold it finish.
 */
export class PackReaders {
  private readonly handles = new Map<number, PooledHandle>()

  constructor (private readonly dir: string, private readonly max = 64) {}

  /**
   * Read up to `length` bytes at `offset` of pack `pack`; fewer when the file
   * is shorter (a truncated pack).
   *
   * @throws the `ENOENT` of a pack that is gone
   */
  async read (pack: number, offset: number, length: number): Promise<Uint8Array> {
    const h = this.acquire(pack)
    try {
      const fh = await h.fh
      const buf = Buffer.allocUnsafe(length)
      let got = 0
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got)
        if (bytesRead === 0) break
        got += bytesRead
      }
      return got === length ? buf : buf.subarray(0, got)
    } finally {
      this.release(pack, h)
    }
  }

  /**
   * Keep pack `pack` open until `release()`: its descriptor stays valid for
   * reads made elsewhere (the FUSE binding's threads), even when the pack is
   * retired meanwhile.
   *
   * @throws the `ENOENT` of a pack that is gone
   */
  async hold (pack: number): Promise<{ fd: number, release: () => void }> {
    const h = this.acquire(pack)
    let fh: FileHandle
    try {
      fh = await h.fh
    } catch (err) {
      this.release(pack, h)
      throw err
    }
    let released = false
    return { fd: fh.fd, release: () => { if (!released) { released = true; this.release(pack, h) } } }
  }

  /** Forget pack `pack` (it is being removed): its handle closes after its last read. */
  retire (pack: number): void {
    const h = this.handles.get(pack)
    if (h === undefined) return
    this.handles.delete(pack)
    h.retired = true
    if (h.refs === 0) void this.closeHandle(h)
  }

  async closeAll (): Promise<void> {
    const all = [...this.handles.values()]
    this.handles.clear()
    await Promise.all(all.map(async h => { await this.closeHandle(h) }))
  }

  private acquire (pack: number): PooledHandle {
    let h = this.handles.get(pack)
    if (h !== undefined) {
      this.handles.delete(pack)
    } else {
      h = { fh: open(join(this.dir, packFileName(pack)), 'r'), refs: 0, retired: false }
      h.fh.catch(() => { this.handles.delete(pack) })
    }
    this.handles.set(pack, h)
    h.refs++
    while (this.handles.size > this.max) {
      const [oldest] = this.handles.keys()
      this.retire(oldest)
    }
    return h
  }

  private release (pack: number, h: PooledHandle): void {
    h.refs--
    if (h.retired && h.refs === 0) void this.closeHandle(h)
    else if (this.handles.get(pack) !== h && h.refs === 0) void this.closeHandle(h)
  }

  private async closeHandle (h: PooledHandle): Promise<void> {
    try { await (await h.fh).close() } catch {}
  }
}

/** One record found by {@link scanPack}. */
export interface ScannedRecord {
  offset: number
  length: number
  /** The multihash the record's header names (not yet crc-checked). */
  multihash: Uint8Array
  /** Read the whole record (header included) and check it. */
  load: () => Promise<{ record: Uint8Array, decoded: DecodedRecord | RecordFault }>
}

/**
 * The records of the pack at `path` from `from` to `to` (default: the end of
 * the file), in order, reading only each header until a record is loaded
 * (dead records cost two small reads). Stops at the first record that does
 * not fit (torn).
 */
export async function * scanPack (path: string, from = PACK_HEADER, to?: number): AsyncGenerator<ScannedRecord> {
  const fh = await open(path, 'r')
  try {
    const end = to ?? (await fh.stat()).size
    let offset = from
    // the longest header: 9 bytes and a 255-byte multihash
    const header = Buffer.alloc(RECORD_HEADER + 255)
    while (offset + RECORD_HEADER <= end) {
      const { bytesRead: got } = await fh.read(header, 0, Math.min(header.byteLength, end - offset), offset)
      if (got < RECORD_HEADER) return
      const length = recordLengthFromHeader(header)
      if (offset + length > end || got < RECORD_HEADER + header[8]) return
      const at = offset
      const load = async (): Promise<{ record: Uint8Array, decoded: DecodedRecord | RecordFault }> => {
        const record = Buffer.allocUnsafe(length)
        const { bytesRead } = await fh.read(record, 0, length, at)
        const read = record.subarray(0, bytesRead)
        return { record: read, decoded: decodeRecord(read) }
      }
      yield { offset, length, multihash: Uint8Array.prototype.slice.call(header, RECORD_HEADER, RECORD_HEADER + header[8]), load }
      offset += length
    }
  } finally {
    await fh.close()
  }
}
