/**
 * Waiting on an AbortSignal without a listener per wait: a read keeps many
 * requests waiting on one signal, and they share one 'abort' listener (no
 * MaxListenersExceededWarning, no listener churn).
 *
 * @module
 */
import { AbortedError } from './errors.js'

/** Callbacks waiting for each signal: one 'abort' listener per signal, however many waits. */
const abortCallbacks = new WeakMap<AbortSignal, Set<() => void>>()

/**
 * Call `callback` when `signal` aborts; returns the unsubscribe function.
 * A read keeps dozens of block requests waiting on one signal: they share
 * one listener (no MaxListenersExceededWarning, no per-wait listener churn).
 */
export function onAbort (signal: AbortSignal, callback: () => void): () => void {
  let callbacks = abortCallbacks.get(signal)
  if (callbacks === undefined) {
    const set = new Set<() => void>()
    callbacks = set
    abortCallbacks.set(signal, set)
    signal.addEventListener('abort', () => {
      abortCallbacks.delete(signal)
      for (const cb of set) cb()
      set.clear()
    }, { once: true })
  }
  const set = callbacks
  set.add(callback)
  return () => { set.delete(callback) }
}

/** `promise`, or an AbortedError (saying `message`) as soon as `signal` aborts. */
export async function raceAbort<T> (promise: Promise<T>, signal?: AbortSignal, message = 'request aborted'): Promise<T> {
  if (signal === undefined) return await promise
  if (signal.aborted) throw new AbortedError(message)
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
