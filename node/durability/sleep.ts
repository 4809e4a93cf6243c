/**
 * An abortable wait, for the rate limits of repair and scrub. Built on
 * `node:timers/promises`, which removes its abort listener when the wait
 * ends: many sleeps on one long-lived signal leave no listeners behind.
 *
 * @module
 */
import { setTimeout as wait } from 'node:timers/promises'
import { AbortedError } from '../errors.js'
import type { Timers } from '../namespace/sync.js'

/** Resolve after `ms`, or reject with {@link AbortedError} when `signal` aborts first. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await wait(ms, undefined, { signal })
  } catch (err: any) {
    if (err?.name === 'AbortError') throw new AbortedError('aborted')
    throw err
  }
}

/**
 * {@link sleep} on injected timers (virtual in simulations and tests):
 * resolve after `ms` of `timers`' time, or reject with {@link AbortedError}
 * when `signal` aborts first; the abort listener is removed either way.
 */
export async function sleepOn (timers: Timers, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw new AbortedError('aborted')
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      timers.clearTimeout(handle)
      reject(new AbortedError('aborted'))
    }
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
