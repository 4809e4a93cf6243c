/**
 * The private-swarm cipher on libsodium: `@libp2p/pnet` encrypts every byte
 * of a private swarm's connections with XSalsa20 from the `xsalsa20`
 * package, a WebAssembly build that runs at ~350–430 MB/s here. libsodium's
 * XSalsa20 (`sodium-native`, prebuilt, no compiler) runs the same stream at
 * 1.1–2.6 GB/s, and both ends of every private connection pay the cipher on
 * every byte: it was half the CPU of moving shards between daemons
 * (docs/benchmarks.md, "Transfer" and "Durability").
 *
 * The mechanism: pnet creates its ciphers with the package's `XSalsa20`
 * constructor, which assigns `this._xor = new WASM(nonce, key)` after
 * writing the nonce and key into the WASM memory. A setter for `_xor` on
 * `XSalsa20.prototype` catches that assignment: it reads the nonce and key
 * back from the fresh WASM state, starts a libsodium stream state with them
 * (`crypto_stream_xor_init`, XSalsa20 is libsodium's `crypto_stream`), and
 * frees the WASM slot at once. `update` and `finalize` on the same prototype
 * then use the libsodium state. The keystream is the same byte for byte (the
 * wire format does not change: a node with this patch talks to one without
 * it), and libsodium keeps the position inside a 64-byte block between
 * updates of any size.
 *
 * When it applies: at load (before pnet creates a cipher), when
 * `sodium-native` loads and the package uses its WASM implementation; else
 * the package's own cipher stays, with the memory fix of xsalsa20-fix.ts.
 *
 * @module
 */
import { createRequire } from 'node:module'

interface Sodium {
  crypto_stream_xor_STATEBYTES: number
  crypto_stream_xor_init: (state: Buffer, nonce: Uint8Array, key: Uint8Array) => void
  crypto_stream_xor_update: (state: Buffer, output: Uint8Array, input: Uint8Array) => void
  crypto_stream_xor_final: (state: Buffer) => void
  crypto_stream_PRIMITIVE: string
}

interface WasmState { _memory: Uint8Array, _nonce: number, _key: number, finalize: () => void }

interface Patched {
  __sodium?: Buffer
  update: (input: Uint8Array, output?: Uint8Array) => Uint8Array
  finalize: () => void
}

const require = createRequire(import.meta.url)

function loadSodium (): Sodium | undefined {
  try {
    const sodium = require('sodium-native') as Sodium
    return sodium.crypto_stream_PRIMITIVE === 'xsalsa20' ? sodium : undefined
  } catch {
    return undefined // no prebuilt binary for this platform: the WASM cipher stays
  }
}

function patch (): boolean {
  const sodium = loadSodium()
  if (sodium === undefined) return false
  const XSalsa20 = require('xsalsa20') as { prototype: Patched & { __shoalNative?: boolean } }
  const proto = XSalsa20.prototype
  if (proto.__shoalNative === true) return true
  Object.defineProperty(proto, '_xor', {
    configurable: true,
    get (this: Patched & { __xor?: unknown }) { return this.__xor },
    set (this: Patched & { __xor?: unknown }, value: unknown) {
      const wasm = value as Partial<WasmState> | null
      if (wasm !== null && wasm?._memory instanceof Uint8Array && typeof wasm._nonce === 'number' && typeof wasm._key === 'number' && this.__sodium === undefined) {
        const memory = wasm._memory
        const state = Buffer.alloc(sodium.crypto_stream_xor_STATEBYTES)
        sodium.crypto_stream_xor_init(state, memory.subarray(wasm._nonce, wasm._nonce + 24), memory.subarray(wasm._key, wasm._key + 32))
        // the WASM slot is not needed: its key is wiped and the slot freed now
        wasm.finalize?.()
        this.__sodium = state
        this.__xor = { finalize () {} }
        return
      }
      this.__xor = value
    }
  })
  const update = proto.update
  const finalize = proto.finalize
  proto.update = function (this: Patched, input: Uint8Array, output?: Uint8Array): Uint8Array {
    const state = this.__sodium
    if (state === undefined) return update.call(this, input, output)
    if (!(input instanceof Uint8Array)) throw new Error('input must be Uint8Array or Buffer')
    const out = output ?? uninitialised(input.length)
    if (input.length > 0) sodium.crypto_stream_xor_update(state, out, input)
    return out
  }
  proto.finalize = function (this: Patched): void {
    const state = this.__sodium
    if (state === undefined) { finalize.call(this); return }
    sodium.crypto_stream_xor_final(state)
    state.fill(0)
    this.__sodium = undefined
  }
  Object.assign(proto, { final: proto.finalize })
  proto.__shoalNative = true
  return true
}

/**
 * A Uint8Array of `length` bytes left uninitialised, for an output the
 * cipher overwrites whole: zero-filling it first (`new Uint8Array`) was a
 * second pass over every byte of every connection. Small ones come from
 * Node's buffer pool. A plain Uint8Array, not a Buffer, as before: its
 * `slice()` still copies.
 */
function uninitialised (length: number): Uint8Array {
  const buf = Buffer.allocUnsafe(length)
  return new Uint8Array(buf.buffer, buf.byteOffset, length)
}

/** True when the private-swarm cipher runs on libsodium. */
export const xsalsa20Native = patch()
