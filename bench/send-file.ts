/**
 * Both ends of a raw-stream benchmark (bench/transfer-peer.ts and
 * bench/transport-peer.ts send, bench/raw-stream.ts and bench/transport.ts
 * receive): a file in 1 MiB messages with credit-based flow control — the reader sends one byte per MiB it consumed, and at most
 * `window` bytes are unacknowledged. Plain send/drain is not enough: yamux
 * refills its window as data reaches the peer's muxer, so a slow reader lets
 * the lower layers' buffers grow (which once crashed pnet's WASM cipher).
 *
 * @module
 */
import { open } from 'node:fs/promises'
import type { Hash } from 'node:crypto'
import type { Stream } from '@libp2p/interface'

/** Bytes per message. */
export const MESSAGE = 1024 * 1024

/** Send `file` on `stream`, never more than `window` bytes ahead of the reader's credit. */
export async function sendFile (stream: Stream, file: string, window: number, label: string): Promise<void> {
  // Plain send/drain is not enough: yamux re-grants its window as data
  // reaches the peer's muxer, whatever the reader has consumed.
  let credit = window
  let wake: (() => void) | undefined
  void (async () => {
    try {
      for await (const c of stream) { credit += c.byteLength * MESSAGE; wake?.() }
    } catch {}
    credit = Infinity
    wake?.()
  })()
  const fh = await open(file, 'r')
  try {
    for (;;) {
      // a fresh buffer per message: send() may keep it queued
      const buf = Buffer.allocUnsafeSlow(MESSAGE)
      const { bytesRead } = await fh.read(buf, 0, MESSAGE, null)
      if (bytesRead === 0) break
      while (credit < bytesRead) await new Promise<void>(resolve => { wake = resolve })
      credit -= bytesRead
      if (!stream.send(bytesRead === MESSAGE ? buf : buf.subarray(0, bytesRead))) await stream.onDrain()
    }
    await stream.close()
  } catch (err) {
    process.stderr.write(`${label}: stream failed: ${String((err as Error)?.stack ?? err)}\n`)
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  } finally {
    await fh.close()
  }
}

/**
 * Read `stream` to its end into `hash`, sending one credit byte per
 * {@link MESSAGE} consumed (what {@link sendFile} waits for); returns the
 * bytes received, counted in `received` as they come (for a watchdog's
 * message). Closes the stream.
 */
export async function receiveCredited (stream: Stream, hash: Hash, received = { bytes: 0 }): Promise<number> {
  let credited = 0
  for await (const chunk of stream) {
    if (chunk instanceof Uint8Array) { hash.update(chunk); received.bytes += chunk.byteLength } else {
      for (const buf of chunk) { hash.update(buf); received.bytes += buf.byteLength }
    }
    const owed = Math.floor(received.bytes / MESSAGE) - credited
    if (owed > 0) { stream.send(new Uint8Array(owed)); credited += owed }
  }
  await stream.close()
  return received.bytes
}
