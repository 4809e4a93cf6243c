/**
 * Progress of long API calls as a stream of JSON lines.
 *
 * Some calls run for minutes (`repair --wait`, a scrub, `gc`, the checking
 * and binding of a big CAR import) and a client that shows a progress bar
 * needs to hear from them meanwhile. With `?progress=true` such a route
 * answers `application/x-ndjson`: one `{"progress": …}` line per event the
 * node reports, then exactly one last line, `{"result": …}` (what the call
 * answers without `progress`) or `{"error": {"name", "message"}}` — Kubo's
 * `add --progress` streams JSON lines the same way. Without `progress` the
 * route answers exactly as it always did.
 *
 * The status line goes out with the first line, so a call refused before any
 * progress (a bad query, a CAR that fails its check, no room) still gets its
 * usual JSON error and HTTP status. Once the head is out, the status is 200
 * whatever happens; an error after it is the last line, and the client must
 * treat a stream that ends without a `result` or `error` line (the daemon
 * stopped, the connection was cut) as a failure. Progress lines are
 * snapshots: while the client does not keep up (the socket wants a drain),
 * new ones are dropped rather than buffered; the last line never is.
 *
 * @module
 */
import { describeError } from './describe-error.js'
import type { ServerResponse } from 'node:http'
import type { Logger } from '../logger.js'
import type { GcProgress } from '../durability/gc.js'
import type { CarImportProgress } from '../files/car-import.js'

/** Content type of a progress stream. */
export const NDJSON_TYPE = 'application/x-ndjson; charset=utf-8'

/**
 * One progress line's value, by phase: the block index rebuilt from the
 * packs (no counts), a garbage collection, a scrub, a repair pass, a CAR
 * import once its upload is in.
 */
export type ProgressUpdate =
  | { phase: 'reindex' }
  | ({ phase: 'gc' } & GcProgress)
  | { phase: 'scrub', blocks: number, bytes: number, corrupt: number }
  | { phase: 'repair', manifests: number, total?: number, repaired: number }
  | ({ phase: 'car' } & CarImportProgress)

/** A line of a progress stream. */
export type ProgressLine<R> =
  | { progress: ProgressUpdate }
  | { result: R }
  | { error: { name: string, message: string } }

/** What {@link sendProgress} needs. */
export interface SendProgressContext {
  res: ServerResponse
  /** Where an error that can only be reported in the stream is logged. */
  logger: Logger
}

/**
 * Run `work`, streaming what it reports as progress lines, then its result
 * (see the module). An error before the first line is thrown, for the
 * server's usual JSON error; after it, it is the stream's last line.
 */
export async function sendProgress<R> (ctx: SendProgressContext, work: (report: (update: ProgressUpdate) => void) => Promise<R>): Promise<void> {
  const { res } = ctx
  const line = (value: ProgressLine<R>): void => {
    if (!res.headersSent) res.writeHead(200, { 'content-type': NDJSON_TYPE, 'cache-control': 'no-store' })
    res.write(JSON.stringify(value) + '\n')
  }
  let result: R
  try {
    result = await work(update => {
      // a client gone or not keeping up: progress is a snapshot, the next one will do
      if (res.destroyed || res.writableNeedDrain) return
      line({ progress: update })
    })
  } catch (err: any) {
    if (!res.headersSent) throw err
    // named and logged as the server does for a plain JSON error
    const { name, message, level } = describeError(err)
    if (level === 'error') ctx.logger.error({ err, name }, 'request failed after its progress began')
    else if (level === 'warn') ctx.logger.warn({ name }, message)
    else ctx.logger.debug({ name, message }, 'request ended after its progress began')
    if (!res.destroyed) {
      line({ error: { name, message } })
      res.end()
    }
    return
  }
  if (res.destroyed) return
  line({ result })
  res.end()
}
