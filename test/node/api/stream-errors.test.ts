/**
 * The errors of streamed answers that failed after their head: each answer
 * its own id, an error kept under it for a minute, the oldest dropped past
 * the bound.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { STREAM_ERRORS_KEPT, STREAM_ERROR_TTL_MS, StreamErrors } from '../../../node/api/stream-errors.js'

describe('StreamErrors', () => {
  it('gives each answer its own id and keeps the error of one that failed', () => {
    const errors = new StreamErrors()
    const a = errors.open()
    const b = errors.open()
    assert.notEqual(a, b)
    errors.fail(b, { name: 'BlockUnavailableError', message: 'no peer could supply it' })
    assert.equal(errors.get(a), undefined, 'an answer that did not fail has none')
    assert.deepEqual(errors.get(b), { name: 'BlockUnavailableError', message: 'no peer could supply it' })
  })

  it('forgets an error after a minute, and the oldest past the bound', () => {
    let now = 1_000
    const errors = new StreamErrors({ now: () => now })
    const first = errors.open()
    errors.fail(first, { name: 'A', message: 'a' })
    now += STREAM_ERROR_TTL_MS + 1
    assert.equal(errors.get(first), undefined)
    const ids = Array.from({ length: STREAM_ERRORS_KEPT + 1 }, () => errors.open())
    for (const id of ids) errors.fail(id, { name: 'B', message: String(id) })
    assert.equal(errors.get(ids[0]), undefined, 'the oldest went')
    assert.deepEqual(errors.get(ids[ids.length - 1]), { name: 'B', message: String(ids[ids.length - 1]) })
  })
})
