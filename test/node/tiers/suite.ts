/**
 * Cleanups for a whole `describe` block, for setup done once in `before`
 * (a server, a block store with imported content) with the helpers of
 * `test/helpers/temp.ts`, which want a test context.
 */
import { after } from 'node:test'
import type { CleanupContext } from '../../helpers/temp.js'

/**
 * A cleanup context whose cleanups run, last in first out, in an `after`
 * hook of the enclosing `describe` — even when a test or `before` failed.
 * Call it synchronously in the `describe` body.
 */
export function suiteContext (): CleanupContext {
  const fns: Array<() => Promise<void>> = []
  after(async () => {
    const errors: unknown[] = []
    while (fns.length > 0) {
      try { await fns.pop()?.() } catch (err) { errors.push(err) }
    }
    if (errors.length > 0) throw errors[0]
  })
  return { after: fn => { fns.push(fn) } }
}
