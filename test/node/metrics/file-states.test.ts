/**
 * How files are counted by state (`shoal_durability_files`): the worst
 * health of a file's stripes, `pending` below degraded, and a placement
 * running now counted as `placing` whatever the last pass said.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { countFileStates, fileState, type FileState } from '../../../node/durability/health.js'

const stripes = (healthy: number, atRisk: number, degraded: number, lost: number): { healthy: number, atRisk: number, degraded: number, lost: number } => ({ healthy, atRisk, degraded, lost })

describe('file states', () => {
  it('a file takes the worst health of its stripes; an unfinished placement is pending unless a stripe is degraded or lost', () => {
    assert.equal(fileState(stripes(3, 0, 0, 0), false), 'healthy')
    assert.equal(fileState(stripes(2, 1, 0, 0), false), 'at_risk')
    assert.equal(fileState(stripes(1, 1, 1, 0), false), 'degraded')
    assert.equal(fileState(stripes(1, 1, 1, 1), false), 'lost')
    assert.equal(fileState(stripes(0, 3, 0, 0), true), 'pending', 'shards all here, not yet placed')
    assert.equal(fileState(stripes(2, 0, 1, 0), true), 'degraded')
    assert.equal(fileState(stripes(2, 0, 0, 1), true), 'lost')
  })

  it('counts each file once: uncoded files as pending, or lost when their blocks are gone before their coding; files placed now as placing', () => {
    const last = new Map<string, FileState>([['a', 'healthy'], ['b', 'pending'], ['c', 'lost'], ['d', 'at_risk']])
    assert.deepEqual(countFileStates(last, { uncoded: 2, lost: 0 }, []), { pending: 3, placing: 0, healthy: 1, at_risk: 1, degraded: 0, lost: 1, unknown: 0 })
    assert.deepEqual(countFileStates(last, { uncoded: 2, lost: 1 }, []), { pending: 3, placing: 0, healthy: 1, at_risk: 1, degraded: 0, lost: 2, unknown: 0 }, 'a file lost before its coding is lost, not left out')
    const checked = new Map<string, FileState>([...last, ['f', 'unknown']])
    assert.deepEqual(countFileStates(checked, { uncoded: 0, lost: 0 }, []), { pending: 1, placing: 0, healthy: 1, at_risk: 1, degraded: 0, lost: 1, unknown: 1 }, 'a file the pass could not check is counted, as unknown')
    assert.deepEqual(countFileStates(last, { uncoded: 0, lost: 0 }, ['b', 'e']), { pending: 0, placing: 2, healthy: 1, at_risk: 1, degraded: 0, lost: 1, unknown: 0 }, 'b is placed now; e is new since the pass')
  })
})
