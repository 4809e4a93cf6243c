/**
 * `GET /api/v0/cat` into the caller's own pipe (node/api/caller-pipe.ts):
 * what the CLI and the daemon agree on.
 *
 * @module
 */

/**
 * The header of a `cat` answered into the caller's pipe (value `pipe`): the
 * answer's body is then a {@link CatPipeAnswer}, not the content, which is
 * already in the pipe. Absent when the content is the body.
 */
export const OUTPUT_HEADER = 'x-shoal-output'

/** The body of a `cat` answered into the caller's pipe. */
export interface CatPipeAnswer {
  /**
   * Bytes written into the pipe: all of the content, unless the reader went
   * away; then those of the writes the pipe took whole (the write that
   * failed may have put a few more there, not counted).
   */
  bytes: number
  /** The pipe's reader went away before the end (`| head`); the read was stopped. */
  readerGone: boolean
}
