/**
 * Which manifests the namespace still needs.
 *
 * @module
 */
import { AbortedError } from '../errors.js'
import type { Entry } from '../namespace/index.js'
import type { Holdings, ManifestRecord } from './holdings.js'

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

/**
 * Record since when no visible file has referred to each of `records` (one
 * found so for the first time: `now`), and clear it on those a file refers
 * to again ({@link ManifestRecord.unreferencedSince}): garbage collection
 * keeps the shards of a manifest no file refers to for the grace period
 * from then. Writes only what changed.
 */
export async function noteReferences (holdings: Pick<Holdings, 'noteUnreferenced'>, records: ReadonlyArray<[string, Pick<ManifestRecord, 'unreferencedSince'>]>, live: ReadonlySet<string>, now: number): Promise<void> {
  const unreferenced: string[] = []
  const again: string[] = []
  for (const [manifest, record] of records) {
    if (live.has(manifest)) { if (record.unreferencedSince !== undefined) again.push(manifest) } else if (record.unreferencedSince === undefined) unreferenced.push(manifest)
  }
  if (unreferenced.length > 0) await holdings.noteUnreferenced(unreferenced, now)
  if (again.length > 0) await holdings.noteUnreferenced(again, undefined)
}
