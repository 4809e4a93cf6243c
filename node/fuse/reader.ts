/**
 * Ranged reads of a committed file through one open handle. The kernel asks
 * for 128 KiB at a time, several in flight and not always in order (read
 * ahead); starting a new content stream for each request would re-walk the
 * file's DAG every time. A {@link HandleReader} keeps one stream per handle,
 * reuses it while requests move forward, keeps the last few MiB it read for
 * requests that arrive late, and starts over only on a real seek. The read
 * handles of a daemon's mounts share a {@link ReadBudget}: a handle left
 * idle gives up its kept bytes and its stream when the others need the memory.
 *
 * @module
 */

import { ERRNO } from './errno.js'
import { ErrnoError } from './errors.js'
import type { ReadBudget, Shedder } from './read-budget.js'

/** Opens the file's content at `offset` (to its end). */
export type OpenStream = (offset: number, signal: AbortSignal) => AsyncIterable<Uint8Array>

/** Options of {@link HandleReader}. */
export interface HandleReaderOptions {
  /** A request this far ahead of the stream is reached by reading on, not by seeking. @default 8 MiB */
  skipAhead?: number
  /** Bytes kept behind the stream for late requests. @default 8 MiB */
  keep?: number
  /** The bound on what all the read handles keep together; none: this handle's `keep` only. */
  budget?: ReadBudget
}

interface Segment { start: number, bytes: Uint8Array }

/** One handle's reader over a file of `size` bytes. */
export class HandleReader implements Shedder {
  private iterator?: AsyncIterator<Uint8Array>
  private controller?: AbortController
  /** File offset of the next byte the stream yields. */
  private position = 0
  private readonly segments: Segment[] = []
  private kept = 0
  private queue: Promise<unknown> = Promise.resolve()
  private readonly skipAhead: number
  private readonly keep: number
  private readonly budget?: ReadBudget
  /** Requests taken and not answered yet. */
  private inFlight = 0
  /** Closed (the handle was released): a read still under way keeps nothing more. */
  private closed = false

  constructor (private readonly size: number, private readonly openStream: OpenStream, options: HandleReaderOptions = {}) {
    this.skipAhead = options.skipAhead ?? 8 * 1024 * 1024
    this.keep = options.keep ?? 8 * 1024 * 1024
    this.budget = options.budget
  }

  /** Copy up to `length` bytes at `offset` into `out`; resolves with the count (0 at the end). */
  async read (out: Uint8Array, length: number, offset: number): Promise<number> {
    // bytes already read (the stream runs ahead of the kernel's requests):
    // answered at once, not queued behind a request that waits for the stream
    const end = Math.min(offset + length, this.size)
    if (offset >= end) return 0
    if (this.copyKept(out, offset, offset, end) >= end) {
      this.budget?.use(this, this.kept)
      return end - offset
    }
    // one request at a time per handle: they share the stream
    this.inFlight++
    const run = this.queue.then(async () => await this.readNow(out, length, offset)).finally(() => { this.inFlight-- })
    this.queue = run.catch(() => {})
    return await run
  }

  /** Stop the stream (the handle is released). */
  close (): void {
    this.closed = true
    this.shed()
  }

  /** True while a request is in flight ({@link Shedder}). */
  busy (): boolean {
    return this.inFlight > 0
  }

  /** Drop the kept bytes and the stream; the next read starts a new one ({@link Shedder}). */
  shed (): void {
    this.dropStream()
    this.segments.length = 0
    this.kept = 0
    this.budget?.release(this)
  }

  private dropStream (): void {
    this.controller?.abort()
    const it = this.iterator
    this.iterator = undefined
    if (it?.return !== undefined) it.return(undefined).catch(() => {})
  }

  private async readNow (out: Uint8Array, length: number, offset: number): Promise<number> {
    const end = Math.min(offset + length, this.size)
    if (offset >= end) return 0
    let at = this.copyKept(out, offset, offset, end)
    if (at >= end) return end - offset
    if (this.iterator === undefined || at < this.position || at - this.position > this.skipAhead) this.restart(at)
    try {
      while (at < end) {
        const step = await (this.iterator as AsyncIterator<Uint8Array>).next()
        // the file has `size` bytes: a stream that ends before is a failure, never the end of the file
        if (step.done === true) throw new ErrnoError(ERRNO.EIO, `the file's content ended at byte ${this.position} of ${this.size}`)
        const chunk = step.value
        const start = this.position
        this.position += chunk.byteLength
        this.remember({ start, bytes: chunk })
        if (this.position > at) at = this.copyKept(out, offset, at, end)
      }
    } catch (err) {
      // a stream that failed yields nothing more: the next read starts a new one
      this.dropStream()
      throw err
    }
    return at - offset
  }

  /** Copy what the kept segments hold of `[at, end)` contiguously; returns where it stopped. */
  private copyKept (out: Uint8Array, offset: number, at: number, end: number): number {
    let moved = true
    while (at < end && moved) {
      moved = false
      for (const s of this.segments) {
        const sEnd = s.start + s.bytes.byteLength
        if (s.start <= at && at < sEnd) {
          const n = Math.min(end, sEnd) - at
          out.set(s.bytes.subarray(at - s.start, at - s.start + n), at - offset)
          at += n
          moved = true
        }
      }
    }
    return at
  }

  private remember (segment: Segment): void {
    this.segments.push(segment)
    this.kept += segment.bytes.byteLength
    while (this.kept > this.keep && this.segments.length > 1) {
      const old = this.segments.shift() as Segment
      this.kept -= old.bytes.byteLength
    }
    if (!this.closed) this.budget?.use(this, this.kept)
  }

  private restart (offset: number): void {
    this.shed()
    this.controller = new AbortController()
    this.iterator = this.openStream(offset, this.controller.signal)[Symbol.asyncIterator]()
    this.position = offset
  }
}
