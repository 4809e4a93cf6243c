/**
 * raceAbort (node/abort.ts): the promise given up on by an abort may fail
 * later without an unhandled rejection, which ends a daemon; a striped read
 * interrupted as a leaf fetch began crashed its node so.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { raceAbort } from '../../node/abort.js'

/** Rejections no handler took while `fn` ran (and shortly after). */
async function unhandledDuring (fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = []
  const listener = (reason: unknown): void => { seen.push(reason) }
  process.on('unhandledRejection', listener)
  try {
    await fn()
    await sleep(50)
  } finally {
    process.off('unhandledRejection', listener)
  }
  return seen
}

describe('raceAbort', () => {
  it('throws AbortedError for a signal aborted already, and the promise\'s later failure is handled', async () => {
    const seen = await unhandledDuring(async () => {
      const failsLater = sleep(10).then(() => { throw new Error('read aborted') })
      await assert.rejects(raceAbort(failsLater, AbortSignal.abort(), 'read aborted'), { name: 'AbortedError' })
    })
    assert.deepEqual(seen, [])
  })

  it('throws AbortedError when the signal aborts first, and the promise\'s later failure is handled', async () => {
    const seen = await unhandledDuring(async () => {
      const controller = new AbortController()
      const failsLater = sleep(20).then(() => { throw new Error('late') })
      setTimeout(() => { controller.abort() }, 5)
      await assert.rejects(raceAbort(failsLater, controller.signal), { name: 'AbortedError' })
    })
    assert.deepEqual(seen, [])
  })

  it('gives the promise\'s value or failure when the signal does not abort', async () => {
    assert.equal(await raceAbort(Promise.resolve(7), new AbortController().signal), 7)
    await assert.rejects(raceAbort(Promise.reject(new Error('boom')), new AbortController().signal), { message: 'boom' })
  })
})
