/**
 * The exit of a check that found data unreadable: `repair --wait` and
 * `pin status PATH` print their report, then fail with
 * {@link DataUnavailableError} (one line on stderr, exit 1) when it holds
 * stripes with fewer than k shards reachable, files lost before their
 * coding, or blocks of files that no copy anywhere supplied (a file kept
 * without coding whose blocks are gone here and on every peer that
 * answered, too). A script or a
 * monitor then sees it in the exit status, as with `git fsck`; before, both
 * exited 0 whatever they found, and only `add --wait` (PolicyNotMetError)
 * failed on what it found.
 *
 * "Unreadable now", not "lost": a stripe whose holders are away (within the
 * grace period, docs/durability.md) counts the same until they come back.
 *
 * @module
 */
import { ShoalError } from '../node/errors.js'

/** A check found data of this node's files that no reachable copy supplies now. */
export class DataUnavailableError extends ShoalError {
  override name = 'DataUnavailableError'
}

/** What a check found unreadable (absent counts are 0). */
export interface Unreadable {
  /** Stripes with fewer than k shards reachable. */
  stripes?: number
  /** Files whose blocks were gone before their coding, here and on every peer. */
  uncodedFiles?: number
  /** Blocks of files here that a scrub found corrupt or missing and no peer supplied, or that `pin status` found missing and no answering peer holds. */
  blocks?: number
}

/**
 * @throws {DataUnavailableError} naming `what` and the counts, when any is above 0
 */
export function failIfUnreadable (what: string, found: Unreadable): void {
  const parts: string[] = []
  const n = (count: number, one: string, many: string): string => `${count} ${count === 1 ? one : many}`
  if ((found.stripes ?? 0) > 0) parts.push(`${n(found.stripes ?? 0, 'stripe', 'stripes')} with fewer than k shards reachable (lost, or their holders away)`)
  if ((found.uncodedFiles ?? 0) > 0) parts.push(`${n(found.uncodedFiles ?? 0, 'file', 'files')} lost before its coding`)
  if ((found.blocks ?? 0) > 0) parts.push(`${n(found.blocks ?? 0, 'block', 'blocks')} of files that no peer supplied`)
  if (parts.length > 0) throw new DataUnavailableError(`${what} found data unreadable now: ${parts.join('; ')} (the report above says which)`)
}
