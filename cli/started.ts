/**
 * When this command began, for the daemon to tell what it never saw: a
 * `shoal add` is served some 300 ms after the user started it (the CLI's
 * own start), and a version of its path that another node wrote and that
 * arrived within that time is kept beside the new one, a conflict, not
 * replaced unseen (node/namespace/clock-history.ts).
 *
 * @module
 */

/** The start of this process (ms since the epoch, whole). */
export function commandStarted (): number {
  return Math.floor(performance.timeOrigin)
}
