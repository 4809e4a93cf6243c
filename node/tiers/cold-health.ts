/**
 * The health of one recorded cold copy, as `pin status` reports it: both
 * objects present at the sizes written and the index matching its CID,
 * checked with two HEAD requests and (once per copy, cached by the tier
 * service) one read of the index. A byte altered inside the CAR is not
 * seen that way — that needs the whole CAR read back (`pin status
 * --verify`, and `pin add --tier cold` do it) — but is never served:
 * every block read is hash-checked.
 *
 * @module
 */
import { assertSameBucket, corruptObject } from './cold-reader.js'
import type { TierClient } from './s3-client.js'
import type { ColdLocation } from './location.js'

/**
 * Where a cold copy stands: `ok`, `missing` (an object or the bucket is
 * gone), `damaged` (truncated, replaced, altered), `unreachable` (the
 * endpoint does not answer), `refused` (credentials), `failed` (any other
 * error of the tier).
 */
export type ColdCopyState = 'ok' | 'missing' | 'damaged' | 'unreachable' | 'refused' | 'failed'

/** A cold copy's health, safe to print and to send over the API (never credentials). */
export interface ColdCopyHealth {
  endpoint: string
  bucket: string
  /** The CAR's key in the bucket. */
  key: string
  state: ColdCopyState
  /** Set when the whole copy was read back and matched its index (`pin status --verify`). */
  verified?: boolean
  /** Why it is not `ok`, in one line. */
  error?: { name: string, message: string }
}

/** Options of {@link checkColdCopy}. */
export interface CheckColdCopyOptions {
  signal?: AbortSignal
  /**
   * More checks after the two HEADs: loading the copy's checked index (a
   * cache of the caller's), or reading the whole copy back (`verifyCold`).
   */
  verify?: (signal: AbortSignal) => Promise<void>
  /** A tier that has not answered within this is `unreachable` (`Infinity`: no bound). @default 5000 */
  timeoutMs?: number
}

/** Default of {@link CheckColdCopyOptions.timeoutMs}: a status must not wait out the SDK's retries. */
export const COLD_CHECK_TIMEOUT_MS = 5_000

const STATE_OF_ERROR: Record<string, ColdCopyState> = {
  TierObjectNotFoundError: 'missing',
  TierBucketNotFoundError: 'missing',
  TierCorruptObjectError: 'damaged',
  InvalidColdIndexError: 'damaged',
  TierUnreachableError: 'unreachable',
  TierCredentialsError: 'refused'
}

/**
 * Check a cold copy: never throws a tier error (it is the result's
 * `error`); only the caller's abort throws.
 */
export async function checkColdCopy (client: TierClient, location: ColdLocation, options: CheckColdCopyOptions = {}): Promise<ColdCopyHealth> {
  const timeoutMs = options.timeoutMs ?? COLD_CHECK_TIMEOUT_MS
  const timeout = Number.isFinite(timeoutMs) ? AbortSignal.timeout(timeoutMs) : new AbortController().signal
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
  const health: ColdCopyHealth = { endpoint: client.endpoint, bucket: location.bucket, key: location.carKey, state: 'ok' }
  try {
    assertSameBucket(client, location)
    const car = await client.head(location.carKey, signal)
    if (car.size !== location.carSize) throw corruptObject(client, location.carKey, `is ${car.size} bytes, not the ${location.carSize} written (truncated or replaced)`)
    const idx = await client.head(location.indexKey, signal)
    if (idx.size !== location.indexSize) throw corruptObject(client, location.indexKey, `is ${idx.size} bytes, not the ${location.indexSize} written (truncated or replaced)`)
    if (options.verify !== undefined) await options.verify(signal)
  } catch (err: any) {
    if (options.signal?.aborted === true) throw err
    if (timeout.aborted) {
      health.state = 'unreachable'
      health.error = { name: 'TierUnreachableError', message: `S3 endpoint ${client.endpoint} did not answer within ${timeoutMs} ms (bucket "${location.bucket}")` }
      return health
    }
    const name = typeof err?.name === 'string' ? err.name : 'Error'
    health.state = STATE_OF_ERROR[name] ?? 'failed'
    health.error = { name, message: String(err?.message ?? err).split('\n')[0] }
  }
  return health
}
