/**
 * Fix for a memory-growth bug in `xsalsa20` 1.2.0, the cipher of
 * `@libp2p/pnet` (private swarms).
 *
 * All its cipher instances share one WebAssembly memory. When one instance
 * grows that memory (any update larger than the free space, e.g. a socket
 * write of ~640 KiB when the connection backs up), the views the other
 * instances cached are detached and read as length 0, so their next update
 * "reallocates" and grows the memory again by its whole size — the two
 * directions of a connection keep doing this to each other until the memory
 * hits its maximum and the throw kills the process.
 *
 * The fix keeps the newest view of the memory and hands it to an instance
 * whose view was detached, before each update. It patches the prototype of
 * the library's internal WASM cipher, reached through a throwaway instance,
 * and is applied once, when this module loads (before any connection).
 *
 * @module
 */
import { createRequire } from 'node:module'

interface WasmCipher {
  _memory: Uint8Array
  update: (input: Uint8Array, output: Uint8Array) => void
  realloc: (size: number) => void
}

const require = createRequire(import.meta.url)
const XSalsa20 = require('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => { _xor: WasmCipher | object, finalize: () => void }

const probe = XSalsa20(new Uint8Array(24), new Uint8Array(32))
const proto = Object.getPrototypeOf(probe._xor) as WasmCipher & { __shoalFixed?: boolean }
probe.finalize()

// only the WASM implementation has the bug; the JS fallback has no `realloc`
if (typeof proto.realloc === 'function' && proto.__shoalFixed !== true) {
  let latest: Uint8Array | undefined
  const realloc = proto.realloc
  const update = proto.update
  proto.realloc = function (this: WasmCipher, size: number): void {
    realloc.call(this, size)
    latest = this._memory
  }
  proto.update = function (this: WasmCipher, input: Uint8Array, output: Uint8Array): void {
    if (this._memory.byteLength === 0 && latest !== undefined) this._memory = latest
    update.call(this, input, output)
  }
  proto.__shoalFixed = true
}

/** True when the fix is in place (the WASM cipher was found and patched). */
export const xsalsa20Fixed = proto.__shoalFixed === true
