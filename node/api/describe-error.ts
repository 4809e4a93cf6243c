/**
 * What the API answers for anything thrown: one classifier for plain JSON
 * errors (server.ts) and for the last line of a progress stream
 * (progress.ts), so that an error has the same name and status either way.
 *
 * @module
 */
import { isDiskFull, ShoalError } from '../errors.js'

/** An error as the API reports it. */
export interface DescribedError {
  /** HTTP status; 500 and above are the node's failures, except those of {@link NOT_THE_NODES_FAILURE}. */
  status: number
  name: string
  message: string
  /**
   * How the API logs it: `error` for the node's own failures (with the
   * error, its stack and cause), `warn` for a request the node could not
   * carry out through no fault of its own (a peer that did not answer the
   * dial a user asked for: one line, the message once), `debug` for a
   * request refused (4xx).
   */
  level: 'error' | 'warn' | 'debug'
}

/**
 * Errors answered with a 5xx status (the request failed, not the client's
 * syntax) that are no failure of this node: a dial the user asked for that
 * the address or the other end refused (`peers connect`).
 */
export const NOT_THE_NODES_FAILURE: ReadonlySet<string> = new Set(['PeerUnreachableError'])

/** The log level of an error answered with `status` and `name`. */
function levelOf (status: number, name: string): DescribedError['level'] {
  if (status < 500) return 'debug'
  return NOT_THE_NODES_FAILURE.has(name) ? 'warn' : 'error'
}

/**
 * Turn anything thrown into `{ status, name, message }`: a ShoalError as it
 * is; a full disk as `DiskFullError` (507); a client that hung up as
 * `AbortedError` (499); a library's not-found as `NotFoundError` (404);
 * anything else as `InternalError` (500).
 */
export function describeError (err: any): DescribedError {
  const d = classify(err)
  return { ...d, level: levelOf(d.status, d.name) }
}

function classify (err: any): Omit<DescribedError, 'level'> {
  if (err instanceof ShoalError) return { status: err.status, name: err.name, message: err.message }
  if (isDiskFull(err)) return { status: 507, name: 'DiskFullError', message: `the repo disk is full: ${String(err.message)}` }
  // the client hung up mid-request: not our failure
  if (err?.code === 'ECONNRESET' || err?.code === 'ERR_STREAM_PREMATURE_CLOSE' || err?.message === 'aborted') {
    return { status: 499, name: 'AbortedError', message: 'client closed the request' }
  }
  // several failures at once (a pipeline's source and sink), each of them the client hanging up: so is the whole
  if (err instanceof AggregateError && err.errors.length > 0 && err.errors.every(e => classify(e).name === 'AbortedError')) {
    return { status: 499, name: 'AbortedError', message: 'client closed the request' }
  }
  // errors of libraries we call that are the caller's fault
  if (typeof err?.name === 'string' && /NotFound/.test(err.name)) return { status: 404, name: 'NotFoundError', message: String(err.message) }
  return { status: 500, name: 'InternalError', message: String(err?.message ?? err) }
}
