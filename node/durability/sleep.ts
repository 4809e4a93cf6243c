/**
 * An abortable wait, for the rate limits of repair and scrub. Built on
 * `node:timers/promises`, which removes its abort listener when the wait
 * ends: many sleeps on one long-lived signal leave no listeners behind.
 *
 * @module
 */
import { setTimeout as wait } from 'node:timers/promises'
import { AbortedError } from '../errors.js'

/** Resolve after `ms`, or reject with {@link AbortedError} when `signal` aborts first. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await wait(ms, undefined, { signal })
  } catch (err: any) {
    if (err?.name === 'AbortError') throw new AbortedError('aborted')
    throw err
  }
}
