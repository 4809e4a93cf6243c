/**
 * The sender side of a raw-stream benchmark (bench/transfer-peer.ts,
 * bench/transport-peer.ts): a file in 1 MiB messages with credit-based flow
 * control — the reader sends one byte per MiB it consumed, and at most
 * `window` bytes are unacknowledged. Plain send/drain is not enough: yamux
 * refills its window as data reaches the peer's muxer, so a slow reader lets
 * the lower layers' buffers grow (which once crashed pnet's WASM cipher).
 *
 * @module
 */
import { open } from 'node:fs/promises'
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

