/**
 * The sha-256 addon (native/hash, `npm run build:hash`): a block hashed on
 * libuv's thread pool where it lies, without the copy WebCrypto's `digest`
 * makes on the calling thread first. Used by `matchesCIDOffThread`
 * (verify.ts) when it is built; the node runs without it (WebCrypto then),
 * only slower to receive blocks (docs/decisions.md, "Received blocks hashed
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
