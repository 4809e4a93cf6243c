/**
 * The sha-256 addon (native/hash, `npm run build:hash`): a block hashed on
 * libuv's thread pool where it lies, without the copy WebCrypto's `digest`
 * makes on the calling thread first; several blocks side by side
 * (`sha256Many`); and the FastCDC chunker's gear scan (`gearScan`). Used by `matchesCIDOffThread` (verify.ts) and by the
 * leaf worker (content/leaf-worker.ts) when it is built; the node runs
 * without it (WebCrypto, node:crypto then), only slower to receive blocks
 * and to cut leaves (docs/decisions.md, "Received blocks hashed
 * without a copy").
 *
 * @module
 */
import { createRequire } from 'node:module'
import { packageFile } from '../package-files.js'

/** What the addon exports. */
export interface NativeHash {
  /**
   * The sha-256 of `bytes`, computed on the thread pool. The bytes are not
   * copied: the caller must neither change nor transfer them until the
   * promise settles (as with `fs.write` of a buffer).
   */
  sha256: (bytes: Uint8Array) => Promise<Uint8Array>
  /**
   * The sha-256 of each of `list` (at most 256), the digests one after
   * another (32 bytes each), computed on the thread pool in one job: side by
   * side in vector registers where that is faster (native/hash/sha256-lanes.c).
   * `width` forces a way (1: one at a time; 8: AVX2; 16: AVX-512), for tests
   * and benchmarks. The same contract as {@link NativeHash.sha256}. Absent
   * from an addon built before it.
   */
  sha256Many?: (list: Uint8Array[], width?: 1 | 8 | 16) => Promise<Uint8Array>
  /** The widths `sha256Many` can use on this core. */
  sha256Widths?: number[]
  /**
   * The FastCDC chunker's gear hash scan (native/hash/gear.c), the twin of
   * `gearScanScript` in content/chunker/fastcdc.ts: hash `buf[warm..from)`,
   * then `buf[from..to)` until `h & mask` is zero; the index after that
   * byte, or -1. Synchronous. Throws a TypeError or RangeError for arguments
   * out of `buf`. Absent from an addon built before it.
   */
  gearScan?: (buf: Uint8Array, gear: Int32Array, warm: number, from: number, to: number, mask: number) => number
}

let loaded: NativeHash | null | undefined
let loadError: Error | undefined

/** Where `npm run build:hash` puts the addon. */
export const NATIVE_HASH_FILE = (): string => packageFile('native', 'hash', 'build', 'Release', 'hash.node')

/**
 * The addon, loaded once; `undefined` when it is not built or does not load
 * (then the reason is in {@link nativeHashError}).
 */
export function nativeHash (): NativeHash | undefined {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)(NATIVE_HASH_FILE()) as NativeHash
    } catch (err) {
      loadError = err instanceof Error ? err : new Error(String(err))
      loaded = null
    }
  }
  return loaded ?? undefined
}

/** Why {@link nativeHash} found no addon, once it was asked. */
export function nativeHashError (): Error | undefined {
  return loadError
}
