/**
 * What `shoal tier ls` shows about a tier (reachable? how much is stored
 * under the prefix?) and the removal of a cold copy.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { assertSameBucket } from './cold-reader.js'
import { TierUnreachableError } from './errors.js'
import type { ColdLocation } from './location.js'
import type { TierClient, TierDescription } from './s3-client.js'

/** Objects stored under the tier's prefix. */
export interface TierUsage {
  /** Objects under the prefix. */
  objects: number
  /** Their total size in bytes. */
  bytes: number
  /** Of the objects, how many are cold copies (CAR objects). */
  coldCopies: number
  /** False when the listing stopped at `maxObjects`: the counts are lower bounds. */
  complete: boolean
}

/**
 * What the probe found: `ok` (the bucket answered and was listed),
 * `unreachable` (no answer: connection refused or reset, DNS failure, no
 * answer in time), `refused` (the endpoint refused the credentials),
 * `missing` (no such bucket there), `failing` (the endpoint answered, but
 * with an error: an HTTP 5xx, throttling, an unexpected answer, or a
 * listing that failed).
 */
export type TierProbeState = 'ok' | 'unreachable' | 'refused' | 'missing' | 'failing'

/** A tier's state, plain data (no credentials), for the CLI and the API. */
export interface TierProbe extends TierDescription {
  /** The verdict (see {@link TierProbeState}); only `ok` is a usable tier. */
  state: TierProbeState
  /** True when the endpoint answered the bucket check at all, even with an error (every state but `unreachable`). */
  reachable: boolean
  /** Round trip of the bucket check, in milliseconds (when it succeeded). */
  latencyMs?: number
  /** Present when the state is `ok`. */
  usage?: TierUsage
  /** Why the state is not `ok`. */
  error?: { name: string, message: string }
}

/** The probe's state for a tier error of `name`. */
const STATE_OF_ERROR: Record<string, TierProbeState> = {
  TierUnreachableError: 'unreachable',
  TierCredentialsError: 'refused',
  TierBucketNotFoundError: 'missing'
}

/** Options of {@link probeTier}. */
export interface ProbeTierOptions {
  signal?: AbortSignal
  /** Milliseconds the whole probe may take. @default 10000 */
  timeoutMs?: number
  /** Objects listed at most. @default 100000 */
  maxObjects?: number
}

/**
 * Check the tier: its bucket is reachable with the credentials at hand, and
 * what is stored under its prefix. Tier failures are reported in the
 * result, not thrown.
 *
 * @throws {AbortedError} only when `options.signal` fires
 */
export async function probeTier (client: TierClient, options: ProbeTierOptions = {}): Promise<TierProbe> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
  const result: TierProbe = { ...client.describe(), state: 'unreachable', reachable: false }
  const report = (err: unknown): TierProbe => {
    if (options.signal?.aborted === true) throw err
    const e = timeout.aborted
      ? new TierUnreachableError(`S3 endpoint ${client.endpoint} did not answer within ${timeoutMs} ms: check the endpoint URL and the network`, { endpoint: client.endpoint, bucket: client.bucket })
      : err as Error
    // any other error is an answer, even an HTTP 500: reachable, but failing
    result.state = STATE_OF_ERROR[e.name] ?? 'failing'
    result.reachable = result.state !== 'unreachable'
    result.error = { name: e.name, message: e.message }
    return result
  }
  const started = performance.now()
  try {
    await client.checkBucket(signal)
  } catch (err) {
    return report(err)
  }
  result.reachable = true
  result.latencyMs = Math.round((performance.now() - started) * 10) / 10
  const usage: TierUsage = { objects: 0, bytes: 0, coldCopies: 0, complete: true }
  const max = options.maxObjects ?? 100_000
  try {
    for await (const object of client.list({ signal, maxObjects: max + 1 })) {
      if (usage.objects === max) {
        usage.complete = false
        break
      }
      usage.objects++
      usage.bytes += object.size
      if (object.key.endsWith('.car')) usage.coldCopies++
    }
  } catch (err) {
    return report(err)
  }
  result.usage = usage
  result.state = 'ok'
  return result
}

/**
 * Delete a cold copy (its index first, then its CAR). Deleting a copy that
 * is already gone is not an error. Call it only once no pin of the
 * namespace refers to the copy: another file with the same root shares it.
 *
 * @returns the keys deleted
 * @throws {TierError} subclasses for S3 failures
 */
export async function deleteCold (client: TierClient, location: ColdLocation, options: { signal?: AbortSignal } = {}): Promise<string[]> {
  assertSameBucket(client, location)
  await client.delete(location.indexKey, options.signal)
  await client.delete(location.carKey, options.signal)
  return [location.indexKey, location.carKey]
}
