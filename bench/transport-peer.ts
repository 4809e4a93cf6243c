/**
 * The transports bench/transport.ts compares, and its child process: the
 * sender of one raw libp2p stream.
 *
 * Transports:
 * - `tcp`: the project's host (node/net/host.ts `createHost`) without a swarm
 *   key: tcp, noise, yamux.
 * - `pnet-wasm`: the same host with a swarm key, pnet's XSalsa20 being the
 *   WebAssembly build that `@libp2p/pnet` ships (with the memory fix of
 *   node/net/xsalsa20-fix.ts).
 * - `pnet-native`: the same host with a swarm key and libsodium's XSalsa20,
 *   as the project runs (node/net/xsalsa20-native.ts).
 * - `quic`: a bare libp2p host on `@chainsafe/libp2p-quic` (QUIC brings its
 *   own encryption, TLS 1.3, and its own streams: no noise, no yamux).
 *
 * Choosing the cipher: the host module installs the libsodium cipher when it
 * loads, for every process that imports it (the benchmark harness does), by
 * putting an accessor for `_xor` on the `xsalsa20` package's prototype; a
 * cipher created while that accessor is absent keeps the package's WASM
 * state, and the patched `update`/`finalize` hand over to the package's own.
 * {@link selectCipher} removes or restores that accessor (before a host
 * connects: ciphers are made per connection) and checks the result on a
 * probe cipher, so a change in node/net/ fails loudly instead of measuring
 * the wrong cipher. The keystream is the same either way.
 *
 * As a child process:
 *
 *   node dist/bench/transport-peer.js TRANSPORT FILE SWARM_KEY_HEX [WINDOW_MIB]
 *
 * listens on 127.0.0.1 only and, for each stream opened on
 * {@link RAW_PROTOCOL}, sends FILE in 1 MiB messages with the credit-based
 * flow control of bench/transfer-peer.ts (at most WINDOW_MIB, default 8, not
 * yet acknowledged by the reader, which sends one byte per MiB consumed).
 * Prints one JSON line {@link PeerReady} once listening; exits on SIGTERM,
 * SIGINT or when its stdin closes (the parent died).
 *
 * @module
 */
import '../node/polyfills.js'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { createHost } from '../node/net/host.js'
import { MESSAGE, sendFile } from './send-file.js'

/** The protocol of the measured stream. */
export const RAW_PROTOCOL = '/bench/transport/1.0.0'
/** Size of the sender's messages, and the unit of the reader's credit. */
export { MESSAGE }

/** The transports compared, in the order they are measured. */
export const TRANSPORTS = ['tcp', 'pnet-wasm', 'pnet-native', 'quic'] as const
export type Transport = typeof TRANSPORTS[number]

/** How each transport is named in the report. */
export const TRANSPORT_LABELS: Record<Transport, string> = {
  tcp: 'tcp + noise + yamux',
  'pnet-wasm': 'tcp + pnet (wasm xsalsa20) + noise + yamux',
  'pnet-native': 'tcp + pnet (libsodium xsalsa20) + noise + yamux',
  quic: 'quic (@chainsafe/libp2p-quic)'
}

/** Which XSalsa20 a new pnet connection gets. */
export type Cipher = 'wasm' | 'native'

/** The child's first line on stdout. */
export interface PeerReady {
  address: string
  /** The XSalsa20 the child's connections use (pnet transports only). */
  cipher?: Cipher
}

interface XSalsa20Module {
  (nonce: Uint8Array, key: Uint8Array): { __sodium?: unknown, finalize: () => void }
  prototype: object
}

const require = createRequire(import.meta.url)
const XSalsa20 = require('xsalsa20') as XSalsa20Module
// the libsodium switch installed by node/net/xsalsa20-native.ts (loaded by
// the host module above); undefined when sodium-native did not load
const nativeSwitch = Object.getOwnPropertyDescriptor(XSalsa20.prototype, '_xor')

/** The XSalsa20 a cipher created now would use. */
export function cipherInUse (): Cipher {
  const probe = XSalsa20(new Uint8Array(24), new Uint8Array(32))
  const cipher = probe.__sodium === undefined ? 'wasm' : 'native'
  probe.finalize()
  return cipher
}

/** Make pnet connections opened from now on use `cipher`; throws if that cannot be done. */
export function selectCipher (cipher: Cipher): void {
  if (cipher === 'wasm') {
    Reflect.deleteProperty(XSalsa20.prototype, '_xor')
  } else {
    if (nativeSwitch === undefined) throw new Error('the libsodium xsalsa20 is not installed (sodium-native did not load?)')
    Object.defineProperty(XSalsa20.prototype, '_xor', nativeSwitch)
  }
  const got = cipherInUse()
  if (got !== cipher) throw new Error(`asked for the ${cipher} xsalsa20, a new cipher uses ${got}: has node/net/xsalsa20-native.ts changed?`)
}

/** The multiaddr a listener of `transport` binds: 127.0.0.1 only, any port. */
export function listenAddress (transport: Transport): string {
  return transport === 'quic' ? '/ip4/127.0.0.1/udp/0/quic-v1' : '/ip4/127.0.0.1/tcp/0'
}

/**
 * A started host for `transport`, listening on `listen` (none for a host that
 * only dials). Selects the cipher of the pnet transports first.
 */
export async function openHost (transport: Transport, listen: string[], swarmKey: Uint8Array): Promise<Libp2p> {
  const privateKey = await generateKeyPair('Ed25519')
  switch (transport) {
    case 'tcp':
      return await createHost({ privateKey, listen })
    case 'pnet-wasm':
    case 'pnet-native':
      selectCipher(transport === 'pnet-wasm' ? 'wasm' : 'native')
      return await createHost({ privateKey, listen, swarmKey })
    case 'quic': {
      const { quic } = await loadQuic()
      return await createLibp2p({
        privateKey,
        addresses: { listen },
        transports: [quic()],
        connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
      })
    }
  }
}

/**
 * The QUIC transport, loaded on demand and not a dependency of the project:
 * its binaries are per platform and not all of them are on every registry
 * (a lock file naming them breaks `npm ci` there). Install it to measure it:
 * `npm install --no-save @chainsafe/libp2p-quic`.
 */
export async function loadQuic (): Promise<{ quic: () => any }> {
  const name = QUIC_PACKAGE // a variable: the compiler does not look for a package that may be absent
  return await import(name) as { quic: () => any }
}

/** The npm package of the QUIC transport. */
export const QUIC_PACKAGE = '@chainsafe/libp2p-quic'

async function peerMain (): Promise<void> {
  const [transport, file, keyHex, windowMiB] = process.argv.slice(2)
  if (!TRANSPORTS.includes(transport as Transport) || file === undefined || keyHex === undefined) {
    throw new Error(`usage: transport-peer.js ${TRANSPORTS.join('|')} FILE SWARM_KEY_HEX [WINDOW_MIB]`)
  }
  const t = transport as Transport
  const window = Number(windowMiB ?? 8) * MESSAGE
  const host = await openHost(t, [listenAddress(t)], Uint8Array.from(Buffer.from(keyHex, 'hex')))
  await host.handle(RAW_PROTOCOL, async (stream) => { await sendFile(stream, file, window, 'transport-peer') })
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    void Promise.resolve(host.stop()).finally(() => process.exit(0))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  process.stdin.once('end', stop)
  process.stdin.once('error', stop)
  process.stdin.resume()
  const ready: PeerReady = { address: host.getMultiaddrs()[0].toString() }
  if (t === 'pnet-wasm' || t === 'pnet-native') ready.cipher = cipherInUse()
  process.stdout.write(JSON.stringify(ready) + '\n')
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  peerMain().catch(err => {
    process.stderr.write(`transport-peer: ${String(err?.stack ?? err)}\n`)
    process.exit(1)
  })
}
