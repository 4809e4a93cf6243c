import { ShoalError } from '../errors.js'

/** A peer could not be reached, or its stream died before it answered. */
export class PeerUnavailableError extends ShoalError {
  override name = 'PeerUnavailableError'
  override readonly status = 502
}

/** A peer did not answer a block exchange request in time. */
export class RequestTimeoutError extends ShoalError {
  override name = 'RequestTimeoutError'
  override readonly status = 504
}

/** A peer answered with an `error` response (or refused a `put`). */
export class RemoteError extends ShoalError {
  override name = 'RemoteError'
  override readonly status = 502
}

/** No provider could supply a block. */
export class BlockUnavailableError extends ShoalError {
  override name = 'BlockUnavailableError'
  override readonly status = 404
}

/**
 * Turn whatever a dying stream rejected with (an `Error`, or in libp2p v3
 * sometimes a DOM `Event`) into an `Error` whose `message` can be read.
 */
export function toError (value: unknown): Error {
  if (value instanceof Error) return value
  if (typeof Event !== 'undefined' && value instanceof Event) {
    const inner = (value as Event & { error?: unknown }).error
    if (inner instanceof Error) return inner
    return new PeerUnavailableError(`stream ${value.type} event`)
  }
  return new Error(String(value))
}
