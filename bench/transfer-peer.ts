/**
 * Child process of bench/transfer.ts: a bare Shoal libp2p host (tcp, pnet,
 * noise, yamux) that, for each stream opened on /bench/raw/1.0.0, sends FILE
 * in 1 MiB messages honouring backpressure (send/drain, and at most WINDOW
 * MiB not yet acknowledged by the reader), then closes its writable end.
 *
 *   node dist/bench/transfer-peer.js FILE SWARM_KEY_HEX|- [WINDOW_MIB]
 *
 * Prints one JSON line `{ "address": "/ip4/.../p2p/..." }` once listening.
 */
import '../node/polyfills.js'
import { open } from 'node:fs/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../node/net/host.js'

/** Must match bench/transfer.ts. */
const RAW_PROTOCOL = '/bench/raw/1.0.0'
const MESSAGE = 1024 * 1024

async function main (): Promise<void> {
  const [file, keyHex, windowMiB] = process.argv.slice(2)
  if (file === undefined || keyHex === undefined) throw new Error('usage: transfer-peer.js FILE SWARM_KEY_HEX [WINDOW_MIB]')
  const window = Number(windowMiB ?? 8) * MESSAGE
  const host = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    swarmKey: keyHex === '-' ? undefined : Uint8Array.from(Buffer.from(keyHex, 'hex'))
  })
  await host.handle(RAW_PROTOCOL, async (stream) => {
    // credit-based flow control: the reader sends one byte per MiB it has
    // consumed; at most `window` bytes are unacknowledged. Plain send/drain
    // is not enough: yamux refills its window as data reaches the peer's
    // muxer, so a slow reader lets the lower layers' buffers grow until pnet's
    // xsalsa20 (WASM, fixed maximum memory) fails on one huge write and the
    // connection dies.
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
      process.stderr.write(`transfer-peer: stream failed: ${String((err as any)?.stack ?? err)}\n`)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      await fh.close()
    }
  })
  process.stdout.write(JSON.stringify({ address: host.getMultiaddrs()[0].toString() }) + '\n')
  const stop = (): void => { void Promise.resolve(host.stop()).finally(() => process.exit(0)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main().catch(err => {
  process.stderr.write(`transfer-peer: ${String(err?.stack ?? err)}\n`)
  process.exit(1)
})
