/**
 * The seed campaign (`npm run sim -- --seeds N`): a fixed set of seeds runs
 * through the namespace lifecycle, scale and real-durability simulations
 * and passes; each run prints a line that replays it exactly; a failure
 * (replicas that skip disk-loss recovery, the old bug) is reported with a
 * reproduction line that fails again the same way; the durability kind
 * draws a random fault schedule whose line replays it.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { runCampaign, paramsFor, type CampaignResult } from '../../simulations/campaign.js'
import { argsOfLine, parseSimArgs } from '../../simulations/campaign-args.js'

/** Run a printed line again (through the same parser as `npm run sim`): its printed lines and result. */
async function replay (line: string): Promise<{ lines: string[], result: CampaignResult }> {
  const command = parseSimArgs(argsOfLine(line))
  assert.equal(command.mode, 'campaign')
  if (command.mode !== 'campaign') throw new Error('not a campaign line')
  const lines: string[] = []
  const result = await runCampaign({ ...command.options, seeds: [command.seed], print: l => lines.push(l) })
  return { lines, result }
}

describe('seed campaign', () => {
  it('a fixed set of seeds passes every kind, and a printed line replays its run exactly', { timeout: 180_000 }, async () => {
    const lines: string[] = []
    const result = await runCampaign({ seeds: [1, 2], kinds: ['namespace', 'scale', 'durability'], nodes: 30, print: l => lines.push(l) })
    assert.deepEqual(result.failures.map(f => f.reason), [])
    assert.equal(result.seedsRun, 2)
    assert.equal(result.runs, 6)
    assert.equal(lines.length, 6)
    assert.ok(lines.every(l => l.startsWith('ok   npm run sim -- --kind ')), lines.join('\n'))
    // the namespace and durability runs use small swarms, the scale run the given size
    assert.match(lines[0], /--kind namespace --seed 1 --nodes 6 --steps 30/)
    assert.match(lines[1], /--kind scale --seed 1 --nodes 30 /)
    assert.match(lines[2], /--kind durability --seed 1 --nodes 12 --files 4 --duration 1800000 {2}# .* faults, /)
    for (const line of [lines[3], lines[4]]) {
      const first = await replay(line)
      const second = await replay(line)
      assert.deepEqual(first.lines, [line], 'the single-seed form reproduces what the campaign printed')
      assert.deepEqual(second, first, 'the same result twice')
    }
  })

  it('a failing run is reported with a line that reproduces it, and the campaign goes on', { timeout: 180_000 }, async () => {
    const lines: string[] = []
    const result = await runCampaign({ seeds: [9, 10, 13, 14, 15], kinds: ['namespace'], nodes: 6, params: { steps: 120, skipRecovery: true }, print: l => lines.push(l) })
    assert.equal(result.seedsRun, 5, 'kept going after a failure')
    assert.ok(result.failures.length > 0, `skipping recovery must fail some seed:\n${lines.join('\n')}`)
    const failed = lines.filter(l => l.startsWith('FAIL '))
    assert.equal(failed.length, result.failures.length)
    for (const f of result.failures) assert.notEqual(f.reason, '')
    const line = failed[0]
    assert.match(line, /^FAIL npm run sim -- --kind namespace --seed \d+ --nodes 6 --steps 120 --skip-recovery {2}# \S/)
    const again = await replay(line)
    assert.deepEqual(again.lines, [line], 'the reproduction fails the same way')
    assert.equal(again.result.failures.length, 1)

    const stopped = await runCampaign({ seeds: [9, 10, 13, 14, 15], kinds: ['namespace'], nodes: 6, params: { steps: 120, skipRecovery: true }, stopOnFailure: true })
    assert.equal(stopped.failures.length, 1)
    assert.ok(stopped.seedsRun < 5 || result.failures.length === 1)
  })

  it('the durability kind runs a random fault schedule; --duration is its fault time and replays it', { timeout: 180_000 }, async () => {
    const command = parseSimArgs(['--kind', 'durability', '--seeds', '1', '--from', '5', '--nodes', '10', '--files', '3', '--duration', '900000'])
    assert.equal(command.mode, 'campaign')
    if (command.mode !== 'campaign') return
    const p = paramsFor('durability', 5, command.options)
    assert.equal(p.duration, 900_000)
    const lines: string[] = []
    const result = await runCampaign({ ...command.options, seeds: [5], print: l => lines.push(l) })
    assert.deepEqual(result.failures.map(f => f.reason), [])
    assert.match(lines[0], /^ok {3}npm run sim -- --kind durability --seed 5 --nodes 10 --files 3 --duration 900000 {2}# 10 nodes/)
    assert.match(lines[0], / [1-9]\d* faults, /, 'a schedule was drawn')
    assert.deepEqual((await replay(lines[0])).lines, lines, 'the line replays the same run')
  })
})
