/**
 * The status page's pin health board (node/api/pin-health.ts): one check
 * job shared by concurrent requests, an answer within its budget whatever a
 * pin's check does, pins not reached are `unknown`, the worst listed first.
 * The node's `files` is replaced by a table of answers: a check that never
 * ends is what a peer that takes streams and never replies makes of it.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { PinHealthBoard, type PinHealthComponents } from '../../../node/api/pin-health.js'
import type { PinInfo } from '../../../node/files/index.js'
import { filePinState } from '../../../node/durability/pin-status.js'
import type { PinStatus } from '../../../node/durability/index.js'

/** A status whose stripes have the given healths. */
function status (healths: Array<'healthy' | 'at-risk' | 'degraded' | 'lost'>): PinStatus {
  const summary = { healthy: 0, atRisk: 0, degraded: 0, lost: 0 }
  for (const h of healths) summary[h === 'at-risk' ? 'atRisk' : h]++
  const s: PinStatus = { root: 'cid', policy: 'ec:4+2', state: 'healthy', k: 4, m: 2, stripes: healths.map((health, index) => ({ index, state: health, health, live: 6, shards: [] })), summary, peersAsked: ['self'] }
  s.state = filePinState(s)
  return s
}

/** Files whose checks answer from `answers`; a path without an answer is checked until its deadline. */
function files (answers: Record<string, PinStatus | undefined>): { components: PinHealthComponents, asked: string[] } {
  const asked: string[] = []
  const pins: PinInfo[] = Object.keys(answers).map(path => ({ path, cid: `cid-${path}`, size: 1, policy: 'ec:4+2' }))
  const components = {
    files: {
      pinLs: async () => pins,
      pinStatus: async (path: string, { signal }: { signal?: AbortSignal } = {}) => {
        asked.push(path)
        const answer = answers[path]
        if (answer !== undefined) return { path, ...answer }
        return await new Promise<never>((_resolve, reject) => {
          signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
        })
      }
    }
  } as unknown as PinHealthComponents
  return { components, asked }
}

describe('pin health board', () => {
  it('answers within its budget: a check that hangs leaves its pin unknown, the worst pins come first', async () => {
    const { components, asked } = files({ '/a-ok': status(['healthy']), '/b-hangs': undefined, '/c-lost': status(['healthy', 'lost']), '/d-risk': status(['at-risk']) })
    const board = new PinHealthBoard(components)
    const request = new AbortController()
    const answer = await board.answer(3, request.signal, 200)
    assert.equal(answer.total, 4)
    assert.equal(answer.unknown, 1)
    assert.equal(answer.checking, true, 'the hanging check still runs')
    assert.deepEqual(answer.pins.map(p => [p.path, p.state]), [['/c-lost', 'lost'], ['/d-risk', 'at-risk'], ['/b-hangs', 'unknown']])
    assert.equal(answer.pins[0].status?.stripeCount, 2)
    assert.ok(typeof answer.pins[0].checkedAt === 'number')
    // a second request while the job runs starts no other check
    const again = await board.answer(4, request.signal, 0)
    assert.deepEqual(again.pins.map(p => p.path), ['/c-lost', '/d-risk', '/b-hangs', '/a-ok'])
    assert.deepEqual([...asked].sort(), ['/a-ok', '/b-hangs', '/c-lost', '/d-risk'])
  })

  it('lists each stripe by its state: a stripe being placed shows as placing, not by its health', async () => {
    const placing = status(['at-risk', 'healthy', 'at-risk'])
    placing.stripes[0].state = 'placing'
    placing.stripes[2].state = 'pending'
    placing.placing = { pushed: 1, total: 3 }
    placing.state = filePinState(placing)
    const { components } = files({ '/p': placing })
    const answer = await new PinHealthBoard(components).answer(10, new AbortController().signal, 5_000)
    assert.deepEqual(answer.pins[0].status?.stripes, ['placing', 'healthy', 'pending'])
    assert.equal(answer.pins[0].state, 'pending', 'the page shows a file being placed as pending')
  })

  it('concurrent requests share one job', async () => {
    const { components, asked } = files({ '/x': status(['healthy']), '/y': status(['degraded']) })
    const board = new PinHealthBoard(components)
    const signal = new AbortController().signal
    const [one, two] = await Promise.all([board.answer(10, signal, 5_000), board.answer(10, signal, 5_000)])
    assert.deepEqual(one, two)
    assert.deepEqual(one.pins.map(p => p.state), ['degraded', 'healthy'])
    assert.equal(one.checking, false)
    assert.equal(asked.length, 2, 'each pin checked once')
    // within the results' time to live, a later request checks nothing again
    await board.answer(10, signal, 5_000)
    assert.equal(asked.length, 2)
  })

  it('a request that goes away stops waiting at once', async () => {
    const { components } = files({ '/hangs': undefined })
    const board = new PinHealthBoard(components)
    const request = new AbortController()
    request.abort()
    const answer = await board.answer(10, request.signal, 60_000)
    assert.deepEqual(answer.pins.map(p => p.state), ['unknown'])
  })
})
