/**
 * The process's timers as the node's parts take them: a wait longer than
 * Node's timers allow ends at their limit instead of after 1 ms (a repair
 * pass set to a long period ran in a busy loop).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { MAX_TIMER_MS, systemTimers } from '../../node/timers.js'

describe('systemTimers', () => {
  it('a wait past 2^31 - 1 ms does not fire at once', async () => {
    assert.equal(MAX_TIMER_MS, 2 ** 31 - 1)
    let fired = 0
    const warnings: string[] = []
    const onWarning = (w: Error): void => { warnings.push(w.name) }
    process.on('warning', onWarning)
    const handle = systemTimers.setTimeout(() => { fired++ }, 3_000_000_000)
    try {
      await sleep(100)
      assert.equal(fired, 0)
      assert.deepEqual(warnings.filter(w => w === 'TimeoutOverflowWarning'), [])
    } finally {
      systemTimers.clearTimeout(handle)
      process.off('warning', onWarning)
    }
  })
})
