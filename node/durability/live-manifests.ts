/**
 * Which manifests the namespace still needs.
 *
 * @module
 */
import type { Entry } from '../namespace/index.js'

/** Manifests referenced by a visible file of `files` now. */
export async function liveManifests (files: () => AsyncIterable<Entry>): Promise<Set<string>> {
  const live = new Set<string>()
  for await (const entry of files()) {
    const manifest = entry.type === 'file' ? entry.pin?.manifest : undefined
    if (manifest !== undefined) live.add(manifest)
  }
  return live
}
