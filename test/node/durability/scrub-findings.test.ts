/**
 * What a scrub keeps of its lost blocks for the next one (scrub.ts
 * `scrubFindings`): bounded, and one block of each file first, so that a
 * file with many lost blocks does not push another file's loss out (the
 * next scrub would then report that file sound while it cannot be read).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { emptyScrubReport, LOST_BLOCKS_KEPT, scrubFindings } from '../../../node/durability/scrub.js'

describe('the lost blocks a scrub keeps for the next', () => {
  it('keeps one block of every file before more of one file, within the bound, each with its files\' roots', () => {
    const report = emptyScrubReport()
    for (let i = 0; i < LOST_BLOCKS_KEPT + 100; i++) report.lost.push({ cid: `a${i}`, paths: ['/a.bin'] })
    report.lost.push({ cid: 'z0', paths: ['/z.bin'] })
    report.lost.push({ cid: 'unowned', paths: [] })
    const findings = scrubFindings(report, 1, new Map([['/a.bin', 'rootA'], ['/z.bin', 'rootZ']]))
    const kept = findings.lostBlocks ?? []
    assert.equal(kept.length, LOST_BLOCKS_KEPT)
    assert.deepEqual(kept.find(b => b.cid === 'z0'), { cid: 'z0', files: [{ path: '/z.bin', cid: 'rootZ' }] })
    assert.deepEqual(kept.find(b => b.cid === 'unowned'), { cid: 'unowned', files: [] })
    assert.deepEqual(kept[0], { cid: 'a0', files: [{ path: '/a.bin', cid: 'rootA' }] })
    assert.equal(findings.lost, LOST_BLOCKS_KEPT + 102, 'the count is every lost block')
  })
})
