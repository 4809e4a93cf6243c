/**
 * Runtime polyfills that must load before any other module.
 *
 * Node 20 lacks `Promise.withResolvers`, which libp2p (and some of its
 * dependencies) call at construction time. Every entry point (CLI, daemon,
 * tests, benchmarks) imports this module first.
 */

interface PromiseWithResolversShim<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}

const P = Promise as unknown as { withResolvers?: <T>() => PromiseWithResolversShim<T> }

if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T> (): PromiseWithResolversShim<T> {
    let resolve!: (value: T | PromiseLike<T>) => void
    let reject!: (reason?: unknown) => void
    const promise = new Promise<T>((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}

export {}
