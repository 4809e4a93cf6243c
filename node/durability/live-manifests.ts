/**
 * Which manifests the namespace still needs.
 *
 * @module
 */
import { AbortedError } from '../errors.js'
import type { Entry } from '../namespace/index.js'

/**
 * Manifests referenced by a visible file of `files` now.
 *
 * @throws {AbortedError} when `signal` aborts
 */
export async function liveManifests (files: () => AsyncIterable<Entry>, signal?: AbortSignal): Promise<Set<string>> {
  const live = new Set<string>()
  for await (const entry of files()) {
    if (signal?.aborted === true) throw new AbortedError('aborted')
    const manifest = entry.type === 'file' ? entry.pin?.manifest : undefined
    if (manifest !== undefined) live.add(manifest)
  }
  return live
}
