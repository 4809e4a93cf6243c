/**
 * An abortable wait, for the rate limits of repair and scrub.
 *
 * @module
 */
import { AbortedError } from '../errors.js'

/** Resolve after `ms`, or reject with {@link AbortedError} when `signal` aborts first. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) { reject(new AbortedError('aborted')); return }
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => { clearTimeout(timer); reject(new AbortedError('aborted')) }, { once: true })
  })
}
