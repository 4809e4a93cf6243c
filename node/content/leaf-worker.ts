/**
 * The worker side of {@link LeafWorker} (leaf-chunker.ts): cut a stream of
 * file pieces into leaves with the named chunker and hash each leaf with
 * sha-256, off the main thread. One worker serves any number of streams,
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
import { parentPort, type MessagePort } from 'node:worker_threads'
import { pushable } from 'it-pushable'
import { createChunker, type ChunkerSpec } from './chunker/index.js'

/** Message that opens a stream. */
export interface OpenStreamMessage { port: MessagePort, spec: ChunkerSpec }

/** Messages a stream's port receives from the main thread. */
export type StreamInput = { piece: Uint8Array } | { end: true }

/** Messages the main thread receives on a stream's port. */
export type StreamOutput = { bytes: Uint8Array, digest: Uint8Array } | { done: true } | { error: string }

function serve ({ port, spec }: OpenStreamMessage): void {
  const pieces = pushable<Uint8Array>()
  port.on('message', (message: StreamInput) => {
    if ('piece' in message) pieces.push(message.piece)
    else pieces.end()
  })
  // the main thread gave up on this stream: what it sent is dropped
  port.on('close', () => { pieces.end(new Error('stream closed')) })
  void (async () => {
    try {
      for await (const chunk of createChunker(spec)(pieces)) {
        // a chunk that shares its buffer is copied: only a whole buffer can be moved
        const bytes = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice()
        const digest = new Uint8Array(sha256(bytes)) // a buffer of its own, so it can be moved
        const out: StreamOutput = { bytes, digest }
        port.postMessage(out, [bytes.buffer as ArrayBuffer, digest.buffer as ArrayBuffer])
      }
      port.postMessage({ done: true } satisfies StreamOutput)
    } catch (err: any) {
      port.postMessage({ error: String(err?.message ?? err) } satisfies StreamOutput)
    } finally {
      port.close()
    }
  })()
}

parentPort?.on('message', serve)
