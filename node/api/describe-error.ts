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
  /** HTTP status; 500 and above are the node's failures (logged as errors). */
  status: number
  name: string
  message: string
}

/**
 * Turn anything thrown into `{ status, name, message }`: a ShoalError as it
 * is; a full disk as `DiskFullError` (507); a client that hung up as
 * `AbortedError` (499); a library's not-found as `NotFoundError` (404);
 * anything else as `InternalError` (500).
 */
export function describeError (err: any): DescribedError {
  if (err instanceof ShoalError) return { status: err.status, name: err.name, message: err.message }
  if (isDiskFull(err)) return { status: 507, name: 'DiskFullError', message: `the repo disk is full: ${String(err.message)}` }
  // the client hung up mid-request: not our failure
  if (err?.code === 'ECONNRESET' || err?.code === 'ERR_STREAM_PREMATURE_CLOSE' || err?.message === 'aborted') {
    return { status: 499, name: 'AbortedError', message: 'client closed the request' }
  }
  // errors of libraries we call that are the caller's fault
  if (typeof err?.name === 'string' && /NotFound/.test(err.name)) return { status: 404, name: 'NotFoundError', message: String(err.message) }
  return { status: 500, name: 'InternalError', message: String(err?.message ?? err) }
}
