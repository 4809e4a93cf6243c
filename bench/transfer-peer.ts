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
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../node/net/host.js'
import { MESSAGE, sendFile } from './send-file.js'

/** Must match bench/transfer.ts. */
const RAW_PROTOCOL = '/bench/raw/1.0.0'

async function main (): Promise<void> {
  const [file, keyHex, windowMiB] = process.argv.slice(2)
  if (file === undefined || keyHex === undefined) throw new Error('usage: transfer-peer.js FILE SWARM_KEY_HEX [WINDOW_MIB]')
  const window = Number(windowMiB ?? 8) * MESSAGE
  const host = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    swarmKey: keyHex === '-' ? undefined : Uint8Array.from(Buffer.from(keyHex, 'hex'))
  })
  await host.handle(RAW_PROTOCOL, async (stream) => { await sendFile(stream, file, window, 'transfer-peer') })
  process.stdout.write(JSON.stringify({ address: host.getMultiaddrs()[0].toString() }) + '\n')
  const stop = (): void => { void Promise.resolve(host.stop()).finally(() => process.exit(0)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main().catch(err => {
  process.stderr.write(`transfer-peer: ${String(err?.stack ?? err)}\n`)
  process.exit(1)
})
