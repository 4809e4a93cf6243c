/**
 * Cutting and hashing leaves on a worker thread. An import's main thread
 * receives the upload, chunks it (FastCDC: ~1.5 s of CPU per GiB here),
 * hashes every leaf (sha-256: ~0.8 s per GiB) and appends it to a pack; on
 * one thread these add up while the second core of a small machine idles.
 * With a {@link LeafWorker} the chunker and the hash run on a worker, the
 * main thread only moves bytes and stores them (docs/benchmarks.md has the
 * measured gain on 2 cores).
 *
 * The mechanism: the importer is given a chunker ({@link LeafWorker.chunker})
 * that sends the file's bytes to the worker in 1 MiB batches (one copy, then moved) and yields the leaves
 * it sends back (moved, not copied), at most {@link IN_FLIGHT_BYTES} ahead;
 * each leaf's digest goes into a map the import's leaf step reads, so a leaf
 * is hashed once, on the worker. The leaves and their boundaries are those
 * the same chunker gives on the main thread: the worker runs the same code.
 *
 * @module
 */
import { MessageChannel, Worker } from 'node:worker_threads'
import { ShoalError } from '../errors.js'
import { workerFile } from '../package-files.js'
import type { ChunkerSpec, Chunker } from './chunker/index.js'
import type { OpenStreamMessage, StreamOutput } from './leaf-worker.js'

/**
 * Bytes of a file sent to the worker and not yet back as leaves, at most
 * (plus one piece): enough for the worker to hash 16 MiB of leaves side by
 * side while the next 16 arrive (leaf-worker.ts, `HASH_BATCH_BYTES`).
 */
export const IN_FLIGHT_BYTES = 32 * 1024 * 1024

/** Bytes of file gathered into one message to the worker. */
const BATCH_BYTES = 1024 * 1024

/** The leaf worker failed or stopped during an import. */
export class LeafWorkerError extends ShoalError {
  override name = 'LeafWorkerError'
}

/** sha-256 digests of leaves, by the leaf's bytes (filled by a {@link LeafWorker} chunker). */
export type LeafDigests = WeakMap<Uint8Array, Uint8Array>

/** One worker thread that chunks and hashes the leaves of any number of imports. */
export class LeafWorker {
  private worker: Worker | undefined
  /** The streams of each worker, failed with it. */
  private readonly failures = new Map<Worker, Set<(err: Error) => void>>()

  /**
   * A chunker for `spec` that runs on the worker; each leaf it yields has
   * its sha-256 digest in `digests`.
   */
  chunker (spec: ChunkerSpec, digests: LeafDigests): Chunker {
    return (source) => this.stream(spec, digests, source)
  }

  /** Stop the worker (a later import starts it again). */
  async close (): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    await worker?.terminate()
  }

  private start (): Worker {
    if (this.worker !== undefined) return this.worker
    const worker = new Worker(workerFile('leaf-worker'))
    worker.unref()
    this.failures.set(worker, new Set())
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = undefined
      const streams = this.failures.get(worker)
      this.failures.delete(worker)
      for (const reject of streams ?? []) reject(new LeafWorkerError(`the leaf worker stopped: ${err.message}`, { cause: err }))
    }
    worker.on('error', fail)
    worker.on('exit', code => { fail(new Error(`exit code ${code}`)) })
    this.worker = worker
    return worker
  }

  private async * stream (spec: ChunkerSpec, digests: LeafDigests, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const worker = this.start()
    const { port1: port, port2 } = new MessageChannel()
    const open: OpenStreamMessage = { port: port2, spec }
    worker.postMessage(open, [port2])
    const arrived: StreamOutput[] = []
    let failure: Error | undefined
    let wake: (() => void) | undefined
    const notify = (): void => { const w = wake; wake = undefined; w?.() }
    const fail = (err: Error): void => { failure ??= err; notify(); release() }
    const wait = async (): Promise<void> => { await new Promise<void>(resolve => { wake = resolve }) }
    port.on('message', (message: StreamOutput) => { arrived.push(message); notify() })
    const streams = this.failures.get(worker)
    streams?.add(fail)
    let sent = 0
    let received = 0
    let stopped = false
    /** Wakes the pump once the importer has taken leaves (or the stream stops). */
    let resume: (() => void) | undefined
    const release = (): void => { const r = resume; resume = undefined; r?.() }
    // send the pieces while leaves come back, never more than IN_FLIGHT_BYTES ahead
    void (async () => {
      try {
        // small pieces (a socket's 64 KiB reads) are gathered into batches of
        // their own, moved to the worker: one copy, one message per batch
        let batch = new Uint8Array(BATCH_BYTES)
        let used = 0
        const send = (): void => {
          const piece = used === batch.byteLength ? batch : batch.slice(0, used)
          port.postMessage({ piece }, [piece.buffer])
          sent += used
          batch = new Uint8Array(BATCH_BYTES)
          used = 0
        }
        for await (const piece of source) {
          if (stopped) return
          for (let at = 0; at < piece.byteLength;) {
            const take = Math.min(piece.byteLength - at, BATCH_BYTES - used)
            batch.set(piece.subarray(at, at + take), used)
            used += take
            at += take
            if (used === BATCH_BYTES) send()
          }
          while (sent - received > IN_FLIGHT_BYTES && !stopped && failure === undefined) await new Promise<void>(resolve => { resume = resolve })
        }
        if (used > 0) send()
        port.postMessage({ end: true })
      } catch (err: any) {
        fail(err instanceof Error ? err : new Error(String(err)))
      }
    })()
    try {
      while (true) {
        const message = arrived.shift()
        if (message === undefined) {
          if (failure !== undefined) throw failure
          await wait()
          continue
        }
        if ('error' in message) throw new LeafWorkerError(`chunking failed: ${message.error}`)
        if ('done' in message) break
        received += message.bytes.byteLength
        release()
        digests.set(message.bytes, message.digest)
        yield message.bytes
      }
      if (failure !== undefined) throw failure
    } finally {
      stopped = true
      release()
      streams?.delete(fail)
      port.close()
      // the pump stops at its next piece (not awaited: a stalled upload must not hold this import open)
    }
  }
}
