/**
 * The retrieval timeout of one gateway request (Kubo's
 * `Gateway.RetrievalTimeout`): a request that waits longer than the timeout
 * for its next block — nobody has it, its holders stalled — is aborted and
 * answered 504 (or, once the response has started, its connection is cut),
 * instead of hanging until the client gives up.
 *
 * The clock runs only while a block is being waited for: a client that
 * reads slowly holds back the walk through backpressure and asks for no
 * block meanwhile, which is not a stalled retrieval. Each block that
 * arrives starts the clock again.
 *
 * @module
 */
import { AbortedError } from '../errors.js'
import type { BlockGetter } from '../reads/api.js'

/** Options of {@link RetrievalWatchdog}. */
export interface RetrievalWatchdogInit {
  /** Longest wait for one block. */
  timeoutMs: number
  /** The request's own signal (the client went away). */
  signal: AbortSignal
}

/** Aborts a request's reads when no block arrives in time. */
export class RetrievalWatchdog {
  private readonly controller = new AbortController()
  private readonly timeoutMs: number
  private timer: NodeJS.Timeout | undefined
  private waiting = 0
  private fired = false
  private readonly onAbort = (): void => { this.controller.abort() }
  private readonly outer: AbortSignal

  constructor (init: RetrievalWatchdogInit) {
    this.timeoutMs = init.timeoutMs
    this.outer = init.signal
    if (init.signal.aborted) this.controller.abort()
    else init.signal.addEventListener('abort', this.onAbort, { once: true })
  }

  /** Aborted when the client went away or a block took too long. */
  get signal (): AbortSignal { return this.controller.signal }

  /** True once the timeout fired (the request's failure is then a timeout, not the client's abort). */
  get timedOut (): boolean { return this.fired }

  /** `inner`, with every read under this watchdog. */
  wrap (inner: BlockGetter): BlockGetter {
    return {
      getBytes: async (cid, options) => {
        this.started()
        try {
          return await inner.getBytes(cid, { signal: options?.signal ?? this.signal })
        } finally {
          this.ended()
        }
      }
    }
  }

  /**
   * Wait for `work` (shared with other requests, so it takes no signal) with
   * the clock running: the wait ends with an {@link AbortedError} when the
   * timeout fires or the client goes away first; the work itself goes on.
   */
  async guard<T> (work: Promise<T>): Promise<T> {
    this.started()
    const signal = this.signal
    let onAbort = (): void => {}
    try {
      return await new Promise<T>((resolve, reject) => {
        onAbort = () => { reject(new AbortedError('gateway request aborted')) }
        if (signal.aborted) { onAbort(); return }
        signal.addEventListener('abort', onAbort, { once: true })
        work.then(resolve, reject)
      })
    } finally {
      signal.removeEventListener('abort', onAbort)
      this.ended()
    }
  }

  /** Stop the clock and let go of the request's signal. */
  dispose (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.outer.removeEventListener('abort', this.onAbort)
  }

  private started (): void {
    this.waiting++
    if (this.waiting === 1) this.arm()
  }

  private ended (): void {
    this.waiting--
    // a block arrived: the next one gets a whole timeout again
    if (this.waiting > 0) this.arm()
    else { clearTimeout(this.timer); this.timer = undefined }
  }

  private arm (): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.fired = true
      this.controller.abort()
    }, this.timeoutMs)
    this.timer.unref()
  }
}
