/**
 * Write staging: what a program writes through the mount goes to a file on
 * local disk under `<repo>/tmp/fuse/`, never into memory, until it is
 * committed to the namespace as one write.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'

/** Bytes read from a staged file at a time when it is committed. */
const STREAM_PIECE = 1024 * 1024

/** A folder of staged files; cleared when created (leftovers of a crash are garbage). */
export class StagingArea {
  private counter = 0
  private made = false

  /** @param dir where staged files live (created on first use) */
  constructor (readonly dir: string) {}

  /** Remove everything staged before (the caller owns `dir`). */
  async clear (): Promise<void> {
    await rm(this.dir, { recursive: true, force: true })
    this.made = false
  }

  /** A new, empty staged file. */
  async create (): Promise<StagedFile> {
    if (!this.made) { await mkdir(this.dir, { recursive: true }); this.made = true }
    const path = join(this.dir, `${(++this.counter).toString(36)}-${randomBytes(4).toString('hex')}`)
    return new StagedFile(path, await open(path, 'w+', 0o600))
  }
}

/** One staged file: random-access writes and reads, and a stream of its bytes. */
export class StagedFile {
  /** Current length in bytes. */
  size = 0
  private disposed = false

  constructor (readonly path: string, private readonly handle: FileHandle) {}

  /** Write `length` bytes of `buf` at `position`; resolves with the count written. */
  async write (buf: Uint8Array, length: number, position: number): Promise<number> {
    let done = 0
    while (done < length) {
      const { bytesWritten } = await this.handle.write(buf, done, length - done, position + done)
      done += bytesWritten
    }
    if (position + length > this.size) this.size = position + length
    return length
  }

  /** Read up to `length` bytes at `position` into `buf`; resolves with the count read (0 past the end). */
  async read (buf: Uint8Array, length: number, position: number): Promise<number> {
    return await readAt(this.handle, buf, Math.min(length, this.size - position), position)
  }

  /** Cut or extend (with zeros) to `size` bytes. */
  async truncate (size: number): Promise<void> {
    await this.handle.truncate(size)
    this.size = size
  }

  /** Append everything `source` yields (the content a write-open starts from). */
  async fill (source: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const chunk of source) await this.write(chunk, chunk.byteLength, this.size)
  }

  /** The bytes `[0, size)` as they are now, in pieces of 1 MiB. */
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
   * Undefined when it was disposed of already.
   */
  async handOver (): Promise<string | undefined> {
    if (this.disposed) return undefined
    this.disposed = true
    await this.handle.close().catch(() => {})
    return this.path
  }

  /** Close and delete. Idempotent. */
  async dispose (): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    await this.handle.close().catch(() => {})
    await rm(this.path, { force: true })
  }
}

/** Read `want` bytes (fewer at the end of the file) at `position` into `buf` from its start; resolves with the count. */
export async function readAt (handle: FileHandle, buf: Uint8Array, want: number, position: number): Promise<number> {
  if (want <= 0) return 0
  let done = 0
  while (done < want) {
    const { bytesRead } = await handle.read(buf, done, want - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}
