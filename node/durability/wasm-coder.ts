/**
 * The Reed-Solomon wasm module's exports, called directly, and its
 * `reconstruct` called the way the module expects.
 *
 * Why: the package's own wrapper (`ReedSolomonErasure.reconstruct`) frees
 * the buffer of shard-present flags after the call, but the module's
 * `reconstruct` takes that buffer as its own (a Rust vector passed by value)
 * and frees it itself. The second free corrupts the module's allocator
 * (wee_alloc): on the next calls its own allocations land on the flags it is
 * about to read, and it reports "too few shards present" for most patterns
 * of loss (measured on one instance: 140 of 240 randomized reconstructions
 * with m shards lost failed; with the flags left to the module, 0 of 1,440
 * over k+m from 3 to 14 and shards from 3 bytes to 1 MiB, its memory
 * bounded). The flags' first word is overwritten by the allocator's free-list
 * link when the call returns, which is how the module's own free shows.
 * Until this was found each reconstruction ran on a fresh instance of the
 * module: ~0.2 ms to instantiate, and fresh memory pages for the whole
 * stripe on every call (about 11 µs a page on these machines: ~16 ms for a
 * 4+2 stripe of 1 MiB shards).
 *
 * The mechanism: {@link reconstructInPlace} writes the flags into a buffer
 * it allocates in the module's memory and leaves to the module; the shards'
 * buffer stays the caller's, to reuse or free. Encoding never had the defect:
 * its one buffer is the caller's and freed once.
 *
 * When it applies: every reconstruction (erasure.ts on the calling thread,
 * parity-arena.ts on the parity worker), on long-lived instances.
 *
 * @module
 */

/** The wasm module's exports, as this project calls them. */
export interface CoderExports {
  memory: { buffer: ArrayBuffer }
  encode: (pointer: number, length: number, dataShards: number, parityShards: number) => number
  reconstruct: (pointer: number, length: number, dataShards: number, parityShards: number, presentPointer: number, presentLength: number) => number
  __wbindgen_malloc: (length: number) => number
  __wbindgen_free: (pointer: number, length: number) => void
}

/** The global `WebAssembly`, as far as this module uses it (this project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object) => { exports: unknown }
}

/** A new instance of the coder module from its bytes (synchronous: the module is small). */
export function instantiate (bytes: Uint8Array): CoderExports {
  const { Module, Instance } = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly
  return new Instance(new Module(bytes)).exports as CoderExports
}

/** A stripe to rebuild in the module's memory: where it goes, and its k+m slots. */
export interface StripeInMemory {
  /** The first byte of the region the k+m shards are written to, back to back, `size` bytes each. */
  pointer: number
  size: number
  k: number
  m: number
  /** The k+m shards, undefined where missing, each `size` bytes. */
  slots: ReadonlyArray<Uint8Array | undefined>
}

/**
 * Write the present `slots` into the module's memory at `stripe.pointer`
 * and rebuild there, in place, the missing data shards; the module's result
 * code (`ReedSolomonErasure.RESULT_OK` on success). The flags go into a
 * buffer the module frees (see the module comment); the caller checks the
 * counts and lengths first (the module traps on input it does not expect)
 * and must not use the instance again if this throws (a trap).
 */
export function reconstructInPlace (exports: CoderExports, stripe: StripeInMemory): number {
  const { pointer, size, k, m, slots } = stripe
  const memory = new Uint8Array(exports.memory.buffer, pointer, size * (k + m))
  slots.forEach((slot, i) => { if (slot !== undefined && slot !== null) memory.set(slot, i * size) })
  const present = slots.map(s => s !== undefined && s !== null ? 1 : 0)
  const flags = exports.__wbindgen_malloc(present.length)
  new Uint8Array(exports.memory.buffer, flags, present.length).set(present)
  // the module owns `flags` from here on and frees it before it returns
  return exports.reconstruct(pointer, size * (k + m), k, m, flags, present.length)
}
