/**
 * Which manifests the namespace still needs.
 *
 * @module
 */
import { AbortedError } from '../errors.js'
import type { Entry } from '../namespace/index.js'
import type { Holdings, ManifestRecord } from './holdings.js'
import type { RemovalWalk } from './removal-clocks.js'

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

/** Manifests whose reference state changed (see {@link ManifestRecord.unreferencedSince}). */
export interface ReferenceChanges {
  /** No visible file refers to them, and nothing recorded that yet (or a record whose mark no longer stands: marked again). */
  unreferenced: string[]
  /** Recorded unreferenced, and a visible file refers to them again. */
  referencedAgain: string[]
}

/**
 * Which of `records` changed their reference state, `isLive` telling whether
 * a visible file refers to one now, `stands` whether a record's mark still
 * holds (removal-clocks.ts; absent: every one does).
 */
export function referenceChanges (records: ReadonlyArray<[string, Pick<ManifestRecord, 'unreferencedSince'>]>, isLive: (manifest: string) => boolean, stands?: (manifest: string, since: number) => boolean): ReferenceChanges {
  const changes: ReferenceChanges = { unreferenced: [], referencedAgain: [] }
  for (const [manifest, record] of records) {
    const since = record.unreferencedSince
    if (isLive(manifest)) { if (since !== undefined) changes.referencedAgain.push(manifest) } else if (since === undefined || stands?.(manifest, since) === false) changes.unreferenced.push(manifest)
  }
  return changes
}

/** Where {@link noteReferences} records, and when. */
export interface NoteReferencesOptions {
  holdings: Pick<Holdings, 'noteUnreferenced'>
  /** Now (ms): the time recorded when no namespace clock is noted. */
  now: number
  /** The walk's removals: notes the namespace's clock of the removals found, and gives the time recorded (removal-clocks.ts). */
  removals?: Pick<RemovalWalk, 'mark'>
}

/**
 * Record `changes` (by a repair pass or a collection, after its walk of the
 * visible files): since when no visible file has referred to a manifest,
 * cleared for those a file refers to again; and the namespace's clock then
 * (`removals`). Garbage collection keeps the shards of a manifest no file
 * refers to for the grace period from then, and until every active member
 * has seen the changes under that clock. Writes only what changed.
 */
export async function noteReferences (changes: ReferenceChanges, options: NoteReferencesOptions): Promise<void> {
  const { holdings, removals } = options
  const now = changes.unreferenced.length > 0 && removals !== undefined ? removals.mark() : options.now
  const marks: Array<[string, number | undefined]> = [
    ...changes.unreferenced.map((m): [string, number] => [m, now]),
    ...changes.referencedAgain.map((m): [string, undefined] => [m, undefined])
  ]
  if (marks.length > 0) await holdings.noteUnreferenced(marks)
}
