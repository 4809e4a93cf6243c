/**
 * Reading a cold copy: a {@link BlockGetter} over a CAR object in a bucket,
 * driven by the copy's block-offset index. Blocks come through ranged GETs,
 * each hash-checked; neighbouring blocks are fetched together, sequential
 * reads are read ahead, and a small bounded cache keeps what was fetched.
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { CID } from 'multiformats/cid'
import { blockKey, verifyBlock } from '../blocks/index.js'
import { IDENTITY, cborCID } from '../blocks/verify.js'
import { AbortedError, InvalidArgumentError, NotFoundError, TooLargeError } from '../errors.js'
import { onAbort, raceAbort } from '../abort.js'
import { TierCorruptObjectError, TierError } from './errors.js'
import { decodeColdIndex, type ColdIndex } from './format.js'
import type { ColdLocation } from './location.js'
import { ANSWER_TIMEOUT_CODE, type TierClient } from './s3-client.js'
import type { BlockGetter } from '../reads/api.js'

const MiB = 1024 * 1024

/** Tuning of a {@link ColdReader}; the defaults suit files of any size. */
export interface ColdReaderOptions {
  /** Largest span of the CAR one ranged GET covers, read-ahead included. @default 8 MiB */
  windowBytes?: number
  /** Bytes of fetched blocks kept for read-ahead and re-reads (least recently used go first). @default 32 MiB */
  cacheBytes?: number
  /** Wanted blocks at most this many bytes apart are fetched in one GET, the bytes between included. @default 256 KiB */
  maxGapBytes?: number
  /**
   * Read ahead only once a sequential streak has covered this many bytes, so
   * that a ranged read shorter than this fetches only its own blocks.
   * @default 4 MiB
   */
  readAheadAfterBytes?: number
  /** Ranged GETs in flight at once. @default 4 */
  maxFetches?: number
  /** Largest index object accepted. @default 64 MiB (about a million blocks) */
  maxIndexBytes?: number
  /** Tries of one ranged GET whose connection fails mid-body or that a 5xx refused (after the SDK's own retries); one that got no answer in time is not tried again. @default 3 */
  bodyAttempts?: number
  /**
   * Where the copy's checked index comes from, asked at the reader's first
   * need of it (an index is named by its CID, so one checked load can serve
   * every reader of the copy); by default the reader loads it itself.
   */
  loadIndex?: () => Promise<ColdIndex>
  /**
   * The lifetime of whoever made the reader (a read session): when it
   * fires, the reader closes (see {@link ColdReader.close}). Its one abort
   * listener goes when the reader closes.
   */
  signal?: AbortSignal
}

/** What a {@link ColdReader} fetched: the measure of "only the bytes it needs". */
export interface ColdReadStats {
  /** Ranged GETs of the CAR object. */
  requests: number
  /** Bytes of the CAR object received. */
  bytesFetched: number
  /** Bytes of the index object received. */
  indexBytes: number
  /** Blocks handed out by `getBytes`. */
  blocksServed: number
  /** Of those, how many came from the cache (read ahead or read before). */
  cacheHits: number
}

interface Waiter {
  promise: Promise<Uint8Array>
  resolve: (bytes: Uint8Array) => void
  reject: (err: unknown) => void
  /** `getBytes` calls waiting on it and not given up. */
  callers: number
}

function waiter (): Waiter {
  let resolve!: (bytes: Uint8Array) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<Uint8Array>((res, rej) => { resolve = res; reject = rej })
  promise.catch(() => {}) // a fetch may fail with nobody left waiting
  return { promise, resolve, reject, callers: 0 }
}

/** A {@link TierCorruptObjectError} about object `key` of the tier. */
export function corruptObject (client: TierClient, key: string, detail: string, cause?: unknown): TierCorruptObjectError {
  return new TierCorruptObjectError(
    `cold object "${key}" in bucket "${client.bucket}" at ${client.endpoint} ${detail}: the cold copy is damaged; \`shoal pin add PATH --tier cold\` pushes it again from a hot copy, where one is left`,
    { endpoint: client.endpoint, bucket: client.bucket, key },
    cause === undefined ? undefined : { cause })
}

/**
 * Check that a cold copy lives in the client's bucket (a client addresses one bucket).
 *
 * @throws {InvalidArgumentError} when it does not
 */
export function assertSameBucket (client: TierClient, location: ColdLocation): void {
  if (location.bucket !== client.bucket) {
    throw new InvalidArgumentError(`the cold copy of ${location.root} is in bucket "${location.bucket}" but the tier is configured for bucket "${client.bucket}"`)
  }
}

/**
 * Read a cold copy's index object and check it: its size, its CID (the one
 * the location records) and its content (see `decodeColdIndex`), which must
 * agree with the location.
 *
 * @throws {TierCorruptObjectError} when the index is truncated, altered or malformed
 * @throws {TierObjectNotFoundError} when it is missing
 * @throws {TooLargeError} when it is over `maxIndexBytes`
 */
export async function loadColdIndex (client: TierClient, location: ColdLocation, options: { maxIndexBytes?: number, signal?: AbortSignal } = {}): Promise<ColdIndex> {
  assertSameBucket(client, location)
  const max = options.maxIndexBytes ?? 64 * MiB
  if (location.indexSize > max) throw new TooLargeError(`the cold index of ${location.root} is ${location.indexSize} bytes, over the limit of ${max}`)
  const key = location.indexKey
  let bytes: Uint8Array
  try {
    bytes = await client.getBytes(key, location.indexSize, options.signal)
  } catch (err) {
    if ((err as Error).name === 'TooLargeError') throw corruptObject(client, key, `is larger than the ${location.indexSize} bytes written (replaced)`, err)
    throw err
  }
  if (bytes.byteLength !== location.indexSize) throw corruptObject(client, key, `is ${bytes.byteLength} bytes, not the ${location.indexSize} written (truncated or replaced)`)
  if (!cborCID(bytes).equals(CID.parse(location.indexCid))) throw corruptObject(client, key, 'does not match its CID (altered)')
  try {
    return decodeColdIndex(bytes, { root: CID.parse(location.root), carSize: location.carSize, blocks: location.blocks })
  } catch (err: any) {
    throw corruptObject(client, key, `is not a valid index: ${String(err?.message ?? err)}`, err)
  }
}

/** Where a fetch has got to: the first block of its span not handed over yet. */
interface Cursor { next: number }

/** One ranged GET of entries `first..last`, with what stops it. */
interface Fetch {
  first: number
  last: number
  cursor: Cursor
  /** Started ahead of the reads (no read waited on its blocks yet). */
  ahead: boolean
  controller: AbortController
}

/**
 * A {@link BlockGetter} over one cold copy.
 *
 * The index is loaded and checked once, on first use. `getBytes` calls made
 * in the same turn of the event loop (a ranged reader asks for many leaves
 * at once) are grouped into runs of neighbouring blocks, each fetched with
 * one ranged GET and handed over block by block as the bytes arrive, each
 * hash-checked. Once runs have followed one another (a sequential read) for
 * `readAheadAfterBytes`, the reader reads ahead by a quarter of the bytes the
 * streak has covered, up to `windowBytes`: each run is extended by that much, and
 * once the reader gets that close to the end of what was fetched, the next
 * stretch is fetched before it is asked for. Until then (a ranged read, a
 * random read) a run fetches only its own blocks and the framing between
 * them.
 *
 * Memory is bounded by `cacheBytes` plus, per GET in flight, one block being
 * assembled; the index costs about 100 bytes a block.
 *
 * Traffic stops with the reads: a `getBytes` whose signal fires stops
 * waiting and no longer wants its block. A GET in flight goes on only while
 * a read still waits on a block of what is left of its span, or, for a GET
 * started ahead of the reads, while some read of this reader still waits
 * at all; when the last waiting read gives up, every GET stops, the streak
 * starts over, and no GET is started for a block nobody wants. A stopped
 * GET leaves nothing behind: its blocks are not fetching any more, and a
 * later read of them starts a GET of its own. `close()` (or the owner's
 * `signal`) stops everything.
 */
export class ColdReader implements BlockGetter {
  readonly location: ColdLocation
  private readonly client: TierClient
  private readonly windowBytes: number
  private readonly cacheBytes: number
  private readonly maxGapBytes: number
  private readonly readAheadAfterBytes: number
  private readonly maxFetches: number
  private readonly maxIndexBytes: number
  private readonly bodyAttempts: number
  private readonly counters: ColdReadStats = { requests: 0, bytesFetched: 0, indexBytes: 0, blocksServed: 0, cacheHits: 0 }
  private index?: ColdIndex
  private byKey = new Map<string, number>()
  private loading?: Promise<ColdIndex>
  private readonly loadIndex?: () => Promise<ColdIndex>
  /** Fetched blocks by entry number, least recently used first. */
  private readonly cache = new Map<number, Uint8Array>()
  private cached = 0
  /** Blocks asked for and not handed over yet. */
  private readonly wanted = new Map<number, Waiter>()
  /** Blocks inside the span of a GET in flight, and that GET. */
  private readonly fetching = new Map<number, Fetch>()
  /** GETs in flight and wanted (a stopped GET leaves at once). */
  private readonly fetches = new Set<Fetch>()
  /** GETs not settled yet, stopped ones included. */
  private running = 0
  private flushScheduled = false
  /** The entry right after the last sequential run, and the bytes that streak has covered. */
  private nextSequential = -1
  private streak = 0
  private readonly controller = new AbortController()
  private readonly unsubscribe?: () => void

  constructor (client: TierClient, location: ColdLocation, options: ColdReaderOptions = {}) {
    assertSameBucket(client, location)
    this.client = client
    this.location = location
    this.windowBytes = options.windowBytes ?? 8 * MiB
    this.cacheBytes = options.cacheBytes ?? 32 * MiB
    this.maxGapBytes = options.maxGapBytes ?? 256 * 1024
    this.readAheadAfterBytes = options.readAheadAfterBytes ?? 4 * MiB
    this.maxFetches = options.maxFetches ?? 4
    this.maxIndexBytes = options.maxIndexBytes ?? 64 * MiB
    this.bodyAttempts = options.bodyAttempts ?? 3
    this.loadIndex = options.loadIndex
    for (const [name, value] of Object.entries({ windowBytes: this.windowBytes, cacheBytes: this.cacheBytes, maxGapBytes: this.maxGapBytes, readAheadAfterBytes: this.readAheadAfterBytes, maxFetches: this.maxFetches, bodyAttempts: this.bodyAttempts })) {
      if (!Number.isSafeInteger(value) || value < 0 || (value === 0 && (name === 'windowBytes' || name === 'maxFetches' || name === 'bodyAttempts'))) {
        throw new InvalidArgumentError(`invalid cold reader option ${name}: ${value}`)
      }
    }
    const owner = options.signal
    if (owner?.aborted === true) this.close()
    else if (owner !== undefined) this.unsubscribe = onAbort(owner, () => { this.close() })
  }

  /** Ranged GETs not settled yet (read-ahead may outlive the read that started it; a stopped GET counts until its request is torn down). */
  get fetchesInFlight (): number {
    return this.running
  }

  /** Counters since the reader was made (a copy). */
  get stats (): ColdReadStats {
    return { ...this.counters }
  }

  /**
   * Load and check the index (once; later calls return it). A failed load
   * is retried by the next call.
   */
  async load (signal?: AbortSignal): Promise<ColdIndex> {
    if (this.index !== undefined) return this.index
    if (this.loading === undefined) {
      const fetched = this.loadIndex === undefined
      const loading = (this.loadIndex?.() ?? loadColdIndex(this.client, this.location, { maxIndexBytes: this.maxIndexBytes, signal: this.controller.signal })).then(index => {
        if (fetched) this.counters.indexBytes += this.location.indexSize
        this.byKey = new Map(index.entries.map((entry, i) => [blockKey(entry.cid), i]))
        this.index = index
        return index
      })
      loading.catch(() => { if (this.loading === loading) this.loading = undefined })
      this.loading = loading
    }
    return await raceAbort(this.loading, signal, 'cold read aborted')
  }

  /**
   * A block's bytes, hash-checked.
   *
   * @throws {NotFoundError} when the cold copy does not hold it
   * @throws {TierCorruptObjectError} when the object is truncated or the block altered
   * @throws {TierError} subclasses for S3 failures; {@link AbortedError} when `signal` fires
   */
  async getBytes (cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest
    const index = await this.load(options.signal)
    if (this.closed) throw new AbortedError('cold reader closed')
    const i = this.byKey.get(blockKey(cid))
    if (i === undefined) throw new NotFoundError(`block ${cid.toString()} is not in the cold copy of ${this.location.root}`)
    const hit = this.cache.get(i)
    if (hit !== undefined) {
      this.cache.delete(i)
      this.cache.set(i, hit)
      this.counters.cacheHits++
      this.counters.blocksServed++
      this.readAhead(i)
      return hit
    }
    if (index.entries[i].length === 0) {
      const empty = new Uint8Array(0)
      verifyBlock(index.entries[i].cid, empty)
      return empty
    }
    let w = this.wanted.get(i)
    if (w === undefined) {
      w = waiter()
      this.wanted.set(i, w)
      this.scheduleFlush()
    }
    w.callers++
    if (this.fetching.has(i)) this.readAhead(i)
    let bytes: Uint8Array
    try {
      bytes = await raceAbort(w.promise, options.signal, 'cold read aborted')
    } catch (err) {
      // given up (the waiter is still there): the block is wanted by one read fewer
      if (this.wanted.get(i) === w && --w.callers === 0) {
        this.wanted.delete(i)
        this.dropUnwanted()
      }
      throw err
    }
    this.counters.blocksServed++
    return bytes
  }

  /**
   * Stop every GET, fail every waiting read with `AbortedError`, drop the
   * cache, and let go of the owner's signal. Closing twice is harmless.
   */
  close (): void {
    this.unsubscribe?.()
    this.controller.abort()
    for (const f of [...this.fetches]) this.stop(f)
    for (const w of this.wanted.values()) w.reject(new AbortedError('cold reader closed'))
    this.wanted.clear()
    this.cache.clear()
    this.cached = 0
  }

  private get closed (): boolean {
    return this.controller.signal.aborted
  }

  /**
   * Stop the GETs no read wants any more: every one when no read waits;
   * else those whose span left holds no wanted block, unless started ahead
   * of the reads (see the class comment).
   */
  private dropUnwanted (): void {
    const waiting = this.wanted.size > 0
    for (const f of [...this.fetches]) {
      if (!waiting || (!f.ahead && !this.wants(f))) this.stop(f)
    }
    if (!waiting) {
      this.nextSequential = -1
      this.streak = 0
    }
  }

  /** Whether a read waits on a block of what is left of `f`'s span. */
  private wants (f: Fetch): boolean {
    for (let i = f.cursor.next; i <= f.last; i++) if (this.wanted.has(i)) return true
    return false
  }

  /** Stop GET `f` now: its blocks are no longer being fetched (those still wanted get a GET of their own). */
  private stop (f: Fetch): void {
    if (!this.fetches.delete(f)) return
    for (let i = f.first; i <= f.last; i++) if (this.fetching.get(i) === f) this.fetching.delete(i)
    f.controller.abort()
    this.flushIfWanted()
  }

  /** Flush soon when a wanted block has no GET. */
  private flushIfWanted (): void {
    if (!this.closed && [...this.wanted.keys()].some(i => !this.fetching.has(i))) this.scheduleFlush()
  }

  private scheduleFlush (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    // after the current burst of getBytes calls, so that they share GETs
    setImmediate(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  /** End of entry `i`'s data in the CAR. */
  private endOf (i: number): number {
    const entry = (this.index as ColdIndex).entries[i]
    return entry.offset + entry.length
  }

  /** Bytes of the CAR from the start of entry `first` to the end of entry `last`. */
  private span (first: number, last: number): number {
    return this.endOf(last) - (this.index as ColdIndex).entries[first].offset
  }

  /** Entry `last` moved forward over blocks neither cached nor being fetched, adding at most `budget` bytes. */
  private extend (last: number, budget: number): number {
    const count = (this.index as ColdIndex).entries.length
    let added = 0
    while (last + 1 < count && !this.cache.has(last + 1) && !this.fetching.has(last + 1)) {
      const more = this.endOf(last + 1) - this.endOf(last)
      if (added + more > budget) break
      added += more
      last++
    }
    return last
  }

  /** Start GETs for the blocks asked for, grouped into runs, as far as `maxFetches` allows. */
  private flush (): void {
    if (this.closed || this.index === undefined) return
    const entries = this.index.entries
    const pending = [...this.wanted.keys()].filter(i => !this.fetching.has(i)).sort((a, b) => a - b)
    let k = 0
    while (k < pending.length && this.fetches.size < this.maxFetches) {
      const first = pending[k++]
      // a read-ahead started by this flush may already cover it
      if (this.fetching.has(first)) continue
      let last = first
      while (k < pending.length &&
        entries[pending[k]].offset - this.endOf(last) <= this.maxGapBytes &&
        this.span(first, pending[k]) <= this.windowBytes) {
        last = pending[k++]
      }
      if (first === this.nextSequential) {
        last = this.extend(last, Math.min(this.ahead(), this.windowBytes - this.span(first, last)))
        this.streak += this.span(first, last)
      } else {
        this.streak = this.span(first, last)
      }
      this.nextSequential = last + 1
      this.startFetch(first, last, false)
    }
  }

  /**
   * Bytes to read ahead of a sequential streak: none before it has covered
   * `readAheadAfterBytes`, then a quarter of what it has covered, up to a
   * window. The reader keeps at most twice that ahead of itself, so a read
   * that stops has fetched at most half as much again as it used.
   */
  private ahead (): number {
    return this.streak < this.readAheadAfterBytes ? 0 : Math.min(this.windowBytes, Math.floor(this.streak / 4))
  }

  /**
   * Entry `i` was just served from what a sequential streak fetched: when
   * the reader is within the read-ahead distance of the end of it, fetch
   * the next stretch before it is asked for.
   */
  private readAhead (i: number): void {
    const index = this.index
    const next = this.nextSequential
    const ahead = this.ahead()
    if (index === undefined || this.closed || ahead === 0 || next <= i || next >= index.entries.length) return
    if (this.fetches.size >= this.maxFetches || this.fetching.has(next) || this.cache.has(next)) return
    if (index.entries[next].offset - this.endOf(i) > ahead) return
    const last = this.extend(next, Math.max(0, ahead - this.span(next, next)))
    this.streak += this.span(next, last)
    this.nextSequential = last + 1
    this.startFetch(next, last, true)
  }

  private startFetch (first: number, last: number, ahead: boolean): void {
    const f: Fetch = { first, last, cursor: { next: first }, ahead, controller: new AbortController() }
    for (let i = first; i <= last; i++) this.fetching.set(i, f)
    this.fetches.add(f)
    this.running++
    void this.fetch(f).finally(() => {
      this.running--
      if (!this.fetches.delete(f)) return // stopped: its blocks were let go then
      for (let i = first; i <= last; i++) if (this.fetching.get(i) === f) this.fetching.delete(i)
      this.flushIfWanted()
    })
  }

  /** Fetch entries `first..last`, retrying a GET that fails mid-body from where it stopped. */
  private async fetch (f: Fetch): Promise<void> {
    const { cursor, last } = f
    const stopped = f.controller.signal
    for (let attempt = 1; ; attempt++) {
      try {
        await this.fetchOnce(f)
        return
      } catch (err) {
        // a stopped GET fails nobody: its blocks are nobody's, or fetched again
        if (stopped.aborted) return
        // a GET the endpoint did not answer within the client's answer timeout is not tried again (docs/tier.md):
        // each try waited the whole timeout, and a hung endpoint held a read three times as long as it says
        const transient = err instanceof TierError && err.code !== ANSWER_TIMEOUT_CODE &&
          (err.name === 'TierUnreachableError' || (err.name === 'TierRequestError' && (err.httpStatus ?? 500) >= 500))
        if (!transient || attempt >= this.bodyAttempts || this.closed) {
          for (let i = cursor.next; i <= last; i++) this.fail(i, err)
          return
        }
        try {
          await sleep(100 * 2 ** attempt, undefined, { signal: stopped })
        } catch {
          return
        }
      }
    }
  }

  /** One ranged GET from `f.cursor.next` to the end of `f.last`, handing blocks over as they complete. */
  private async fetchOnce (f: Fetch): Promise<void> {
    const { cursor, last } = f
    const stopped = f.controller.signal
    const entries = (this.index as ColdIndex).entries
    const key = this.location.carKey
    while (cursor.next <= last && entries[cursor.next].length === 0) cursor.next++
    if (cursor.next > last) return
    const start = entries[cursor.next].offset
    const end = this.endOf(last)
    let answer
    try {
      answer = await this.client.getRange(key, start, end, stopped)
    } catch (err: any) {
      if (err?.code === 'InvalidRange') throw corruptObject(this.client, key, `ends before byte ${start} (truncated)`, err)
      throw err
    }
    this.counters.requests++
    const { body, length, objectSize, cancel } = answer
    if (objectSize !== undefined && objectSize !== this.location.carSize) {
      cancel()
      throw corruptObject(this.client, key, `is ${objectSize} bytes, not the ${this.location.carSize} written (truncated or replaced)`)
    }
    if (length > end - start) {
      cancel()
      throw corruptObject(this.client, key, `was answered with ${length} bytes for a ${end - start}-byte range (the endpoint ignores Range, or the object changed)`)
    }
    // a stopped GET frees its connection at once, even while no byte comes
    const unsubscribe = onAbort(stopped, cancel)
    try {
      await this.receive(f, body, start)
    } finally {
      unsubscribe()
    }
  }

  /** Hand over the blocks of `f` in `body` (the CAR from byte `start`) as they complete. */
  private async receive (f: Fetch, body: AsyncIterable<Uint8Array>, start: number): Promise<void> {
    const { cursor, last } = f
    const entries = (this.index as ColdIndex).entries
    const stopped = f.controller.signal
    let pos = start
    let i = cursor.next
    let block: Uint8Array | undefined
    let filled = 0
    for await (const chunk of body) {
      if (stopped.aborted) return
      this.counters.bytesFetched += chunk.byteLength
      let at = 0
      while (at < chunk.byteLength && i <= last) {
        const entry = entries[i]
        if (entry.length === 0) { i++; continue }
        if (pos + at < entry.offset) {
          at = Math.min(chunk.byteLength, entry.offset - pos)
          continue
        }
        block ??= new Uint8Array(entry.length)
        const n = Math.min(entry.length - filled, chunk.byteLength - at)
        block.set(chunk.subarray(at, at + n), filled)
        filled += n
        at += n
        if (filled === entry.length) {
          this.handOver(i, block)
          block = undefined
          filled = 0
          cursor.next = ++i
        }
      }
      pos += chunk.byteLength
    }
    while (i <= last && entries[i].length === 0) i++
    if (i <= last) throw corruptObject(this.client, this.location.carKey, `ended at byte ${pos}, inside block ${entries[i].cid.toString()} (truncated)`)
  }

  /** Check a fetched block, cache it and hand it to whoever waits for it. */
  private handOver (i: number, bytes: Uint8Array): void {
    const entry = (this.index as ColdIndex).entries[i]
    try {
      verifyBlock(entry.cid, bytes)
    } catch (err) {
      this.fail(i, corruptObject(this.client, this.location.carKey, `holds altered data: block ${entry.cid.toString()} at byte ${entry.offset} does not match its hash`, err))
      return
    }
    this.remember(i, bytes)
    const w = this.wanted.get(i)
    if (w !== undefined) {
      this.wanted.delete(i)
      w.resolve(bytes)
    }
  }

  private fail (i: number, err: unknown): void {
    const w = this.wanted.get(i)
    if (w === undefined) return
    this.wanted.delete(i)
    w.reject(err)
  }

  private remember (i: number, bytes: Uint8Array): void {
    if (bytes.byteLength > this.cacheBytes || this.closed) return
    const old = this.cache.get(i)
    if (old !== undefined) {
      this.cache.delete(i)
      this.cached -= old.byteLength
    }
    this.cache.set(i, bytes)
    this.cached += bytes.byteLength
    for (const [j, evicted] of this.cache) {
      if (this.cached <= this.cacheBytes) break
      this.cache.delete(j)
      this.cached -= evicted.byteLength
    }
  }
}
