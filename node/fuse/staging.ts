/**
 * Write staging: what a program writes through the mount is kept on this
 * node until it is committed to the namespace as one write. A small file is
 * kept in memory (no file to open, write, read back and delete: most of the
 * cost of creating many small files); a file that grows past
 * {@link StagingOptions.memoryPerFile}, or arrives while the memory budget
 * {@link StagingOptions.memoryTotal} is spent, goes to a file on local disk
 * under `<repo>/tmp/fuse/`. Staging is no journal: what `close` acknowledged
 * is noted in the journal of closed files (journal.ts), which a start after
 * a crash takes its files from before it empties this folder.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { copyFile, link, mkdir, open, rm, writeFile, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { syncDir } from '../blocks/pack-file.js'
import type { ClosedBytes } from './journal.js'

/** Bytes read from a staged file at a time when it is committed. */
const STREAM_PIECE = 1024 * 1024
/**
 * Room on disk is asked for this much at a time ({@link StagingArea.room}):
 * one `statfs` per 8 MiB staged, not per write request (~25 µs each, on the
 * event loop that answers the writes).
 */
const ROOM_STEP = 8 * 1024 * 1024
/** First capacity of a staged file in memory; it doubles as it grows. */
const FIRST_CAPACITY = 16 * 1024

/** Options of {@link StagingArea}. */
export interface StagingOptions {
  /** A file larger than this goes to disk. @default 1 MiB */
  memoryPerFile?: number
  /** Bytes of staged files kept in memory at most, all files together; 0 stages everything on disk. @default 64 MiB */
  memoryTotal?: number
  /**
   * Asked before staged bytes grow on disk by `bytes`; throws (the repo's
   * `DiskGuard.ensureRoom`: a `DiskFullError`) when that would leave less
   * free than the disk must keep. The write then fails and changes nothing.
   * @default no check
   */
  ensureRoom?: (bytes: number) => Promise<void>
}

/** A folder of staged files (under `<repo>/tmp`, which the node empties at start: leftovers of a crash are garbage) and the memory budget of small ones. */
export class StagingArea {
  private counter = 0
  private made = false
  private used = 0
  readonly memoryPerFile: number
  readonly memoryTotal: number
  private readonly ensureRoom?: (bytes: number) => Promise<void>
  /** Bytes of growth on disk already found to fit (asked {@link ROOM_STEP} ahead). */
  private granted = 0

  /** @param dir where staged files that spill to disk live (created on first use) */
  constructor (readonly dir: string, options: StagingOptions = {}) {
    this.memoryTotal = Math.max(0, options.memoryTotal ?? 64 * 1024 * 1024)
    this.memoryPerFile = Math.min(this.memoryTotal, Math.max(0, options.memoryPerFile ?? 1024 * 1024))
    this.ensureRoom = options.ensureRoom
  }

  /**
   * @internal Throw when `bytes` more on disk would leave too little room
   * there ({@link StagingOptions.ensureRoom}). Room is asked for
   * {@link ROOM_STEP} ahead, and for `bytes` alone when that much is not there.
   */
  async room (bytes: number): Promise<void> {
    if (bytes <= 0 || this.ensureRoom === undefined) return
    if (bytes <= this.granted) { this.granted -= bytes; return }
    const ahead = Math.max(bytes, ROOM_STEP)
    try {
      await this.ensureRoom(ahead)
      this.granted = ahead - bytes
    } catch (err) {
      if (ahead === bytes) throw err
      await this.ensureRoom(bytes)
      this.granted = 0
    }
  }

  /** Bytes of memory staged files hold now. */
  get memoryUsed (): number { return this.used }

  /** A new, empty staged file (in memory until it needs disk). */
  async create (): Promise<StagedFile> {
    return new StagedFile(this)
  }

  /** @internal Take `bytes` of the memory budget; false when it would exceed a bound. */
  reserve (bytes: number, capacity: number): boolean {
    if (capacity > this.memoryPerFile || this.used + bytes > this.memoryTotal) return false
    this.used += bytes
    return true
  }

  /** @internal Give back `bytes` of the memory budget. */
  unreserve (bytes: number): void {
    this.used -= bytes
  }

  /** @internal A new file on disk. */
  async openFile (): Promise<{ path: string, handle: FileHandle }> {
    if (!this.made) { await mkdir(this.dir, { recursive: true }); this.made = true }
    const path = join(this.dir, `${(++this.counter).toString(36)}-${randomBytes(4).toString('hex')}`)
    return { path, handle: await open(path, 'w+', 0o600) }
  }
}

/** One staged file: random-access writes and reads, and a stream of its bytes. */
export class StagedFile {
  /** Current length in bytes. */
  size = 0
  /** The bytes while in memory (capacity ≥ size). */
  private memory?: Buffer = Buffer.alloc(0)
  private disk?: { path: string, handle: FileHandle }
  /** A spill to disk under way: every other call waits for it. */
  private spilling?: Promise<FileHandle>
  private disposed = false

  constructor (private readonly area: StagingArea) {}

  /** True once the bytes live in a file on disk. */
  get onDisk (): boolean { return this.disk !== undefined }

  /**
   * Where the bytes are now, for the journal of closed files (journal.ts):
   * the memory itself (a view, to be written out before the next change),
   * or the staging file's path. Undefined once disposed of.
   */
  whereNow (): ClosedBytes | undefined {
    if (this.disposed) return undefined
    // during a spill the memory still holds every byte (the file on disk is not whole yet)
    if (this.memory !== undefined) return { bytes: this.memory.subarray(0, this.size) }
    if (this.disk !== undefined) return { stagedAt: this.disk.path }
    return undefined
  }

  /** Write `length` bytes of `buf` at `position`; resolves with the count written. */
  async write (buf: Uint8Array, length: number, position: number): Promise<number> {
    if (this.spilling !== undefined) await this.ready()
    const end = position + length
    if (this.memory !== undefined && this.grow(end)) {
      if (position > this.size) this.memory.fill(0, this.size, position)
      this.memory.set(buf.subarray(0, length), position)
    } else {
      // what the disk gains: the bytes past the end, and those in memory when they move there
      await this.area.room(Math.max(0, end - this.size) + (this.disk === undefined ? this.size : 0))
      const handle = await this.toDisk()
      let done = 0
      while (done < length) {
        const { bytesWritten } = await handle.write(buf, done, length - done, position + done)
        done += bytesWritten
      }
    }
    if (end > this.size) this.size = end
    return length
  }

  /** Read up to `length` bytes at `position` into `buf`; resolves with the count read (0 past the end). */
  async read (buf: Uint8Array, length: number, position: number): Promise<number> {
    if (this.spilling !== undefined) await this.ready()
    const want = Math.min(length, this.size - position)
    if (want <= 0) return 0
    if (this.memory !== undefined) {
      buf.set(this.memory.subarray(position, position + want))
      return want
    }
    return await readAt(await this.toDisk(), buf, want, position)
  }

  /** Cut or extend (with zeros) to `size` bytes. */
  async truncate (size: number): Promise<void> {
    if (this.spilling !== undefined) await this.ready()
    if (this.memory !== undefined && this.grow(size)) {
      if (size > this.size) this.memory.fill(0, this.size, size)
    } else {
      await (await this.toDisk()).truncate(size)
    }
    this.size = size
  }

  /** Append everything `source` yields (the content a write-open starts from). */
  async fill (source: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const chunk of source) await this.write(chunk, chunk.byteLength, this.size)
  }

  /** The bytes `[0, size)` as they are now, in pieces of 1 MiB (copies: later writes do not change them). */
  async * stream (): AsyncGenerator<Uint8Array> {
    const end = this.size
    for (let position = 0; position < end;) {
      const buf = Buffer.allocUnsafe(Math.min(STREAM_PIECE, end - position))
      const n = await this.read(buf, buf.byteLength, position)
      if (n === 0) break
      yield n === buf.byteLength ? buf : buf.subarray(0, n)
      position += n
    }
  }

  /**
   * Close it without deleting it and hand its path over (to the content
   * cache); afterwards it is disposed of as far as this object goes.
   * Undefined when it was disposed of already or never left memory (small
   * files read well from the block store).
   */
  async handOver (): Promise<string | undefined> {
    await this.ready().catch(() => {})
    if (this.disposed || this.disk === undefined) { await this.dispose(); return undefined }
    this.disposed = true
    await this.disk.handle.close().catch(() => {})
    return this.disk.path
  }

  /**
   * Move the bytes to the new file `dest` (its folder must exist; an
   * existing file there is an error, EEXIST) and let go of them here: a
   * hard link, then an unlink, when they are on disk (the staging folder
   * and `dest` are in the repo: no bytes copied, no room needed), else a
   * write of what is in memory to a file beside `dest`, linked to `dest`
   * once whole. `dest` and its folder are synced. On failure `dest` does not
   * exist (nothing cut short is left there) and the error says where the
   * bytes are: a file on disk stays in the staging folder until the node's
   * next start empties it. Afterwards it is disposed of as far as this
   * object goes.
   */
  async keepAs (dest: string): Promise<void> {
    await this.ready().catch(() => {})
    if (this.disposed) throw new Error('the staged file was disposed of already')
    if (this.disk !== undefined) {
      const { path, handle } = this.disk
      await handle.sync()
      await handle.close()
      // closed: from here a failure leaves the bytes at `path`, and nothing deletes them before the next start
      this.disposed = true
      try {
        await linkOrCopy(path, dest)
      } catch (err: any) {
        throw Object.assign(new Error(`${String(err?.message ?? err)}; the staged bytes stay in ${path} until the next start`, { cause: err }), { code: err?.code })
      }
      await rm(path, { force: true })
    } else {
      const partial = `${dest}.partial`
      try {
        await writeFile(partial, (this.memory as Buffer).subarray(0, this.size), { mode: 0o600, flag: 'wx', flush: true })
      } catch (err: any) {
        if (err?.code !== 'EEXIST') await rm(partial, { force: true })
        throw err
      }
      try {
        await link(partial, dest)
      } finally {
        await rm(partial, { force: true })
      }
      this.disposed = true
      this.freeMemory()
    }
    await syncDir(dirname(dest))
  }

  /** Close and delete (or free its memory). Idempotent. */
  async dispose (): Promise<void> {
    await this.ready().catch(() => {})
    if (this.disposed) return
    this.disposed = true
    this.freeMemory()
    if (this.disk !== undefined) {
      await this.disk.handle.close().catch(() => {})
      await rm(this.disk.path, { force: true })
    }
  }

  /** Make the memory buffer hold `end` bytes; false when the budget says no (then the file goes to disk). */
  private grow (end: number): boolean {
    const memory = this.memory as Buffer
    if (end <= memory.byteLength) return true
    let capacity = Math.max(FIRST_CAPACITY, memory.byteLength)
    while (capacity < end) capacity *= 2
    capacity = Math.max(end, Math.min(capacity, this.area.memoryPerFile))
    if (!this.area.reserve(capacity - memory.byteLength, capacity)) return false
    const bigger = Buffer.allocUnsafe(capacity)
    memory.copy(bigger, 0, 0, this.size)
    this.memory = bigger
    return true
  }

  private freeMemory (): void {
    if (this.memory === undefined) return
    this.area.unreserve(this.memory.byteLength)
    this.memory = undefined
  }

  /**
   * Wait for a spill under way. Callers test `spilling` before awaiting
   * this: an `await` yields even when nothing runs, and what a caller does
   * next (up to its own first `await`) must not interleave with a spill
   * another call starts meanwhile.
   */
  private async ready (): Promise<void> {
    while (this.spilling !== undefined) await this.spilling
  }

  /** The file on disk, made from the bytes in memory the first time (once, whoever asks). */
  private async toDisk (): Promise<FileHandle> {
    if (this.disk !== undefined) return this.disk.handle
    this.spilling ??= this.spill().finally(() => { this.spilling = undefined })
    return await this.spilling
  }

  private async spill (): Promise<FileHandle> {
    const disk = await this.area.openFile()
    try {
      const memory = this.memory as Buffer
      let done = 0
      while (done < this.size) {
        const { bytesWritten } = await disk.handle.write(memory, done, this.size - done, done)
        done += bytesWritten
      }
    } catch (err) {
      await disk.handle.close().catch(() => {})
      await rm(disk.path, { force: true })
      throw err
    }
    this.disk = disk
    this.freeMemory()
    return disk.handle
  }
}

/** Read `want` bytes (fewer at the end of the file) at `position` into `buf` from its start; resolves with the count. */
async function readAt (handle: FileHandle, buf: Uint8Array, want: number, position: number): Promise<number> {
  if (want <= 0) return 0
  let done = 0
  while (done < want) {
    const { bytesRead } = await handle.read(buf, done, want - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}

/**
 * Make `dest` a hard link of `src`, or a copy (synced) when the two are on
 * different file systems (a repo whose tmp/ is mounted apart). Never over an
 * existing file (EEXIST); a copy that fails leaves nothing at `dest`.
 */
export async function linkOrCopy (src: string, dest: string): Promise<void> {
  await link(src, dest).catch(async (err: any) => {
    if (err?.code !== 'EXDEV') throw err
    await copyFile(src, dest, constants.COPYFILE_EXCL).catch(async (copyErr: any) => {
      if (copyErr?.code !== 'EEXIST') await rm(dest, { force: true })
      throw copyErr
    })
    await syncDir(dest) // a file too: opened read-only and fsynced
  })
}
