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

/** Options of {@link BlockUnavailableError}. */
export interface BlockUnavailableOptions extends ErrorOptions {
  /**
   * Providers were known and none of them answered (each unreachable,
   * timed out or its stream dead): the block may well exist, so the API
   * and the gateway answer 502, not 404 — the trustless gateway spec reads
   * a 404 as "not part of this content", and a cache may keep it so.
   * @default false
   */
  unreachable?: boolean
}

/**
 * No provider could supply a block: 404 when none has it (or none is
 * known), 502 when every provider known failed to answer (`unreachable`).
 * One name either way, so every caller that falls back on a missing block
 * (parity, another holder, the cold tier) does so for both.
 */
export class BlockUnavailableError extends ShoalError {
  override name = 'BlockUnavailableError'
  override readonly status: number
  /** See {@link BlockUnavailableOptions.unreachable}. */
  readonly unreachable: boolean

  constructor (message: string, options: BlockUnavailableOptions = {}) {
    super(message, options)
    this.unreachable = options.unreachable === true
    this.status = this.unreachable ? 502 : 404
  }
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
