/**
 * The worker side of {@link LeafWorker} (leaf-chunker.ts): cut a stream of
 * file pieces into leaves with the named chunker and hash each leaf with
 * sha-256, off the main thread (several side by side where the sha-256
 * addon can: {@link LeafPoster}). One worker serves any number of streams,
 * each on its own MessagePort:
 *
 * - parent → worker: `{ port, spec }` opens a stream (the port transferred);
 * - main → stream port: `{ piece }` (a batch of the file's bytes, moved), then `{ end: true }`;
 * - stream port → main: `{ bytes, digest }` per leaf (both moved), then
 *   `{ done: true }`, or `{ error }` with a message.
 *
 * @module
 */
import { sha256 } from '../blocks/verify.js'
import { nativeHash } from '../blocks/native-hash.js'
import { parentPort, type MessagePort } from 'node:worker_threads'
import { pushable } from 'it-pushable'
import { createChunker, type ChunkerSpec } from './chunker/index.js'
import { IN_FLIGHT_BYTES } from './leaf-chunker.js'

/** Message that opens a stream. */
export interface OpenStreamMessage { port: MessagePort, spec: ChunkerSpec }

/** Messages a stream's port receives from the main thread. */
export type StreamInput = { piece: Uint8Array } | { end: true }

/** Messages the main thread receives on a stream's port. */
export type StreamOutput = { bytes: Uint8Array, digest: Uint8Array } | { done: true } | { error: string }

/**
 * Leaves hashed together at most: the widest lanes of the sha-256 addon
 * (native/hash/sha256-lanes.c, 16 with AVX-512).
 */
export const HASH_BATCH = 16

/**
 * A batch goes once it holds this many bytes: half of what the main thread
 * keeps in flight ({@link IN_FLIGHT_BYTES}), so its pump never waits for a
 * batch to fill.
 */
export const HASH_BATCH_BYTES = IN_FLIGHT_BYTES / 2

/**
 * A batch goes this long after the chunker first found no input waiting:
 * leaves are not held for bytes a slow upload has not sent yet.
 */
export const HASH_IDLE_MS = 10

/**
 * A batch of fewer bytes is hashed here, on the worker: a job on the thread
 * pool costs more than hashing a few small leaves (a file of 4 KiB).
 */
export const HASH_HERE_BYTES = 256 * 1024

/** What {@link serveStream} is given besides the stream (a seam for tests). */
export interface ServeOptions {
  /** How batches of leaves are hashed. @default the sha-256 addon's `sha256Many`; without it, each leaf as it is cut */
  hashMany?: HashMany
}

/** Hash a batch of leaves: the digests one after another, 32 bytes each. */
export type HashMany = (list: Uint8Array[]) => Promise<Uint8Array>

/**
 * Serve one stream: cut the pieces that arrive on `port` into leaves and send
 * each back with its digest. A failure (the chunker's, or a batch's hash)
 * ends the stream with `{ error }` at once: the main thread stops sending
 * once its window is full, so a failure kept for later would leave both
 * sides waiting.
 */
export function serveStream ({ port, spec }: OpenStreamMessage, options: ServeOptions = {}): void {
  const pieces = pushable<Uint8Array>()
  port.on('message', (message: StreamInput) => {
    if ('piece' in message) pieces.push(message.piece)
    else pieces.end()
  })
  // the main thread gave up on this stream: what it sent is dropped
  port.on('close', () => { pieces.end(new Error('stream closed')) })
  const leaves = new LeafPoster({
    port,
    hashMany: 'hashMany' in options ? options.hashMany : nativeHash()?.sha256Many,
    // the chunker, waiting for pieces, stops with the batch's error
    onFailure: err => { pieces.end(err instanceof Error ? err : new Error(String(err))) }
  })
  // the chunker reads through this: when no piece waits, it is about to wait for one, and the leaves cut so far go unless one comes soon
  async function * fed (): AsyncGenerator<Uint8Array> {
    while (true) {
      if (pieces.readableLength === 0) leaves.idle()
      const next = await pieces.next()
      if (next.done === true) return
      yield next.value
    }
  }
  void (async () => {
    try {
      for await (const chunk of createChunker(spec)(fed())) {
        // a chunk that shares its buffer is copied: only a whole buffer can be moved
        leaves.add(chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice())
      }
      await leaves.end()
      port.postMessage({ done: true } satisfies StreamOutput)
    } catch (err: any) {
      port.postMessage({ error: String(err?.message ?? err) } satisfies StreamOutput)
    } finally {
      port.close()
    }
  })()
}

/**
 * Hashes a stream's leaves and posts each with its digest, in order.
 *
 * Why in batches: on a core without the SHA extensions one leaf hashes at
 * ~0.23–0.4 GB/s, the largest share of an import's CPU there; the addon's
 * `sha256Many` hashes up to 16 side by side at 4 × that
 * (docs/benchmarks.md, "Leaves hashed side by side"). A batch goes when it
 * is full ({@link HASH_BATCH} leaves or {@link HASH_BATCH_BYTES}), and
 * {@link HASH_IDLE_MS} after the chunker first found no input waiting, so a
 * leaf is not held long for bytes that have not arrived. Without the addon, each leaf is
 * hashed here as it is cut.
 */
class LeafPoster {
  private batch: Uint8Array[] = []
  private bytes = 0
  /** The batches on the thread pool, posted in order. */
  private posted: Promise<void> = Promise.resolve()
  private failure: unknown
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly port: MessagePort
  private readonly hashMany: HashMany | undefined
  private readonly onFailure: (err: unknown) => void

  constructor (components: { port: MessagePort, hashMany: HashMany | undefined, onFailure: (err: unknown) => void }) {
    this.port = components.port
    this.hashMany = components.hashMany
    this.onFailure = components.onFailure
  }

  add (leaf: Uint8Array): void {
    if (this.failure !== undefined) throw this.failure
    if (this.hashMany === undefined) { this.post(leaf, sha256(leaf)); return }
    this.batch.push(leaf)
    this.bytes += leaf.byteLength
    if (this.batch.length >= HASH_BATCH || this.bytes >= HASH_BATCH_BYTES) this.flush()
  }

  /** No input waits: the leaves cut so far go in {@link HASH_IDLE_MS}, unless their batch fills first. */
  idle (): void {
    if (this.batch.length > 0) this.timer ??= setTimeout(() => { this.flush() }, HASH_IDLE_MS)
  }

  /** Hash the leaves cut so far (on the thread pool), and post them once hashed. */
  flush (): void {
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined }
    const batch = this.batch
    if (batch.length === 0 || this.hashMany === undefined) return
    this.batch = []
    const small = this.bytes < HASH_HERE_BYTES
    this.bytes = 0
    let hashed: Promise<Uint8Array> | undefined
    try {
      hashed = small ? undefined : this.hashMany(batch)
    } catch (err) {
      // thrown at the call (the addon could not start the job): from a timer, it would stop the worker
      this.fail(err)
      return
    }
    // awaited in turn below; a failure before its turn must not count as unhandled (it would stop the worker)
    hashed?.catch(() => {})
    this.posted = this.posted.then(async () => {
      if (this.failure !== undefined) return
      const digests = hashed === undefined ? undefined : await hashed
      batch.forEach((leaf, i) => { this.post(leaf, digests?.subarray(32 * i, 32 * (i + 1)) ?? sha256(leaf)) })
    }).catch((err: unknown) => { this.fail(err) })
  }

  /** Keep the first failure, post nothing more, and say so at once. */
  private fail (err: unknown): void {
    if (this.failure !== undefined) return
    this.failure = err
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined }
    this.batch = []
    this.onFailure(err)
  }

  /** Hash and post what is left; throws if a batch failed. */
  async end (): Promise<void> {
    this.flush()
    await this.posted
    if (this.failure !== undefined) throw this.failure
  }

  private post (bytes: Uint8Array, digest: Uint8Array): void {
    const own = new Uint8Array(digest) // a buffer of its own, so it can be moved
    const out: StreamOutput = { bytes, digest: own }
    this.port.postMessage(out, [bytes.buffer as ArrayBuffer, own.buffer])
  }
}

parentPort?.on('message', (open: OpenStreamMessage) => { serveStream(open) })
