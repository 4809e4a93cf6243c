/**
 * Small helpers shared by the block stores.
 *
 * @module
 */
import { AbortedError } from '../errors.js'
import type { AbortOptions } from './api.js'

/** A block's bytes as one buffer, from a buffer or an (async) iterable of parts. */
export async function collect (bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  if (bytes instanceof Uint8Array) return bytes
  const parts: Uint8Array[] = []
  for await (const part of bytes) parts.push(part)
  return parts.length === 1 ? parts[0] : Buffer.concat(parts)
}

/** @throws {AbortedError} when `options.signal` is aborted */
export function throwIfAborted (options?: AbortOptions): void {
  if (options?.signal?.aborted === true) throw new AbortedError('operation aborted')
}

/** Base64 text of a multihash (map keys). */
export function idOf (key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')
}

/** A one-block iterable (the `bytes` of an interface-blockstore `Pair`). */
export function once (bytes: Uint8Array): Generator<Uint8Array> {
  return (function * () { yield bytes })()
}
