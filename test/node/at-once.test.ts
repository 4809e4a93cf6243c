/**
 * mapAtOnce (node/at-once.ts): at most `limit` calls run at once, results
 * come in the items' order, and a failure stops new calls and is thrown only
 * once the running ones have ended (a caller cleans up after it).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { mapAtOnce } from '../../node/at-once.js'

describe('mapAtOnce', () => {
  it('runs at most limit at once and keeps the items\' order', async () => {
    let running = 0
    let most = 0
    const out = await mapAtOnce(Array.from({ length: 40 }, (_, i) => i), 6, async i => {
      running++
      most = Math.max(most, running)
      await sleep((i * 7) % 5)
      running--
      return i * 2
    })
    assert.deepEqual(out, Array.from({ length: 40 }, (_, i) => i * 2))
    assert.equal(most, 6)
    assert.deepEqual(await mapAtOnce([], 4, async () => 1), [])
  })

  it('after a failure starts nothing new, and throws it once the running calls ended', async () => {
    const started: number[] = []
    let running = 0
    const failure = mapAtOnce(Array.from({ length: 20 }, (_, i) => i), 4, async i => {
      started.push(i)
      running++
      try {
        if (i === 2) throw new Error('item 2 failed')
        await sleep(50)
      } finally {
        running--
      }
    })
    await assert.rejects(failure, /item 2 failed/)
    assert.equal(running, 0, 'no call still running when the failure is thrown')
    assert.ok(started.length <= 5, `started ${started.length}: only those running when it failed, and none after`)
  })
})
