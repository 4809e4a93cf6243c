/**
 * The times the wire formats carry (an entry's time, a version's `mtime`, a
 * snapshot's time, a batch manifest's `mtime`): whole milliseconds since
 * the epoch, bounded by what a clock can give. No dependencies, so that the
 * CLI's codecs can use it.
 *
 * @module
 */

/**
 * Latest time (ms since the epoch) the wire formats accept: the latest a
 * JavaScript `Date` holds (100,000,000 days, in the year 275760). No clock
 * gives a later one, and every reader that shows a time as a date would
 * fail on it.
 */
export const MAX_TIME = 8_640_000_000_000_000

/** True for a time the wire formats accept: a whole number of ms from 0 to {@link MAX_TIME}. */
export function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_TIME
}
