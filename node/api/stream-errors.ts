/**
 * The causes of streamed answers that failed after they began.
 *
 * Why: `cat`, `get` and `car export` stream a file's bytes with a 200 sent
 * before the last block is read. When a block fails later (a corrupt copy
 * with no other, a stripe that cannot be rebuilt, a tier object altered),
 * the status cannot change any more, and the answer is cut, so that no
 * client takes a partial file for a whole one. The CLI then knew only that
 * the answer ended early, not why. An HTTP trailer could carry the cause,
 * but only on an answer that ends well: a client that ignores trailers (most
 * do, `curl` included) would take the cut file for a whole one — the silent
 * truncation Kubo's `X-Stream-Error` trailer is known for.
 *
 * How: every streamed answer names itself in a header (`x-shoal-stream`, an
 * id); an answer that fails after its head records its error under that id
 * before it is cut, and `GET /api/v0/stream/error?id=N` returns it. The CLI
 * asks for it when an answer is cut, and reports the daemon's own typed
 * error in its one line. The last {@link STREAM_ERRORS_KEPT} errors are
 * kept, each for {@link STREAM_ERROR_TTL_MS}: the CLI asks right away.
 *
 * @module
 */

/** Errors kept at most (the oldest go first). */
export const STREAM_ERRORS_KEPT = 256

/** How long an error is kept after its answer was cut. */
export const STREAM_ERROR_TTL_MS = 60_000

/** The header naming a streamed answer. */
export const STREAM_ID_HEADER = 'x-shoal-stream'

/** An error as the API reports it. */
export interface StreamError { name: string, message: string }

/** Options of {@link StreamErrors}. */
export interface StreamErrorsOptions {
  /** The clock, ms. @default Date.now */
  now?: () => number
}

/** Ids for streamed answers, and the errors of those that failed. */
export class StreamErrors {
  private next = 1
  private readonly failed = new Map<number, StreamError & { at: number }>()
  private readonly now: () => number

  constructor (options: StreamErrorsOptions = {}) {
    this.now = options.now ?? Date.now
  }

  /** The id of a new streamed answer. */
  open (): number {
    return this.next++
  }

  /** Record why the answer `id` failed after it began. */
  fail (id: number, error: StreamError): void {
    this.failed.set(id, { name: error.name, message: error.message, at: this.now() })
    while (this.failed.size > STREAM_ERRORS_KEPT) this.failed.delete(this.failed.keys().next().value as number)
  }

  /** Why the answer `id` failed, while it is kept; undefined for one that did not fail (or long ago). */
  get (id: number): StreamError | undefined {
    const e = this.failed.get(id)
    if (e === undefined) return undefined
    if (this.now() - e.at > STREAM_ERROR_TTL_MS) {
      this.failed.delete(id)
      return undefined
    }
    return { name: e.name, message: e.message }
  }
}
