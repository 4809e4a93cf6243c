/**
 * Waiting on an AbortSignal without a listener per wait: a read keeps many
 * requests waiting on one signal, and they share one 'abort' listener (no
 * MaxListenersExceededWarning, no listener churn).
 *
 * @module
 */
import { AbortedError } from './errors.js'

/** Callbacks waiting for each signal: one 'abort' listener per signal, however many waits. */
const abortCallbacks = new WeakMap<AbortSignal, { set: Set<() => void>, listener: () => void }>()

/**
 * Call `callback` when `signal` aborts; returns the unsubscribe function.
 * A read keeps dozens of block requests waiting on one signal: they share
 * one listener (no MaxListenersExceededWarning, no per-wait listener churn).
 */
export function onAbort (signal: AbortSignal, callback: () => void): () => void {
  let waits = abortCallbacks.get(signal)
  if (waits === undefined) {
    const set = new Set<() => void>()
    const listener = (): void => {
      abortCallbacks.delete(signal)
      for (const cb of set) cb()
      set.clear()
    }
    waits = { set, listener }
    abortCallbacks.set(signal, waits)
    signal.addEventListener('abort', listener, { once: true })
  }
  const { set, listener } = waits
  set.add(callback)
  return () => {
    set.delete(callback)
    // the last wait gone: no listener stays on a signal that outlives the read
    if (set.size === 0 && abortCallbacks.get(signal)?.set === set) {
      abortCallbacks.delete(signal)
      signal.removeEventListener('abort', listener)
    }
  }
}

/**
 * `promise`, or an AbortedError (saying `message`) as soon as `signal`
 * aborts. `promise` is given up on, not cancelled: its later failure is
 * handled here (left alone when the signal had already aborted, it crashed
 * the daemon as an unhandled rejection: a striped read's leaf fetch, begun
 * before the read was interrupted, failing with "read aborted").
 */
export async function raceAbort<T> (promise: Promise<T>, signal?: AbortSignal, message = 'request aborted'): Promise<T> {
  if (signal === undefined) return await promise
  if (signal.aborted) {
    promise.catch(() => {})
    throw new AbortedError(message)
  }
  let unsubscribe: (() => void) | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        unsubscribe = onAbort(signal, () => { reject(new AbortedError(message)) })
      })
    ])
  } finally {
    unsubscribe?.()
  }
}
