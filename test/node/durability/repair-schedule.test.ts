/**
 * The repair pass's schedule (node/durability/repairer.ts): nodes started
 * at the same instant must not run their passes in the same second for as
 * long as they run. The real {@link Repairer} on virtual time with a seeded
 * randomness; its pass is replaced by a recorder, as only the schedule is
 * under test here (test/node/durability/parts.test.ts runs real passes).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Repairer, REPAIR_JITTER, type RepairReport } from '../../../node/durability/repairer.js'
import type { DurabilityParts } from '../../../node/durability/components.js'
import { createLogger } from '../../../node/logger.js'
import { VirtualTime } from '../../../simulations/virtual-time.js'
import { Prng } from '../../../simulations/prng.js'

const PERIOD = 60_000

/** A repairer whose passes only note when they ran. */
class RecordingRepairer extends Repairer {
  readonly ran: number[] = []
  constructor (private readonly time: VirtualTime, random: () => number) {
    super({ logger: createLogger('silent'), network: { now: () => time.now() }, clock: time, timers: time, random } as unknown as DurabilityParts,
      { graceMs: 10 * PERIOD, checkIntervalMs: PERIOD, placer: {} as never, rebuilder: {} as never, deferred: {} as never })
  }

  override async repair (): Promise<RepairReport> {
    this.ran.push(this.time.now())
    return {} as RepairReport
  }
}

describe('repair schedule', () => {
  it('nodes started together spread their passes over the period, each node keeping the period on average', async () => {
    const time = new VirtualTime(0)
    const rng = new Prng(7)
    const nodes = Array.from({ length: 40 }, () => new RecordingRepairer(time, rng.fork().random))
    for (const node of nodes) node.start()
    await time.advance(50 * PERIOD)
    for (const node of nodes) await node.stop()

    // each wait is the period ± the jitter, and 50 periods hold ~50 passes
    for (const node of nodes) {
      const waits = node.ran.map((at, i) => at - (i === 0 ? 0 : node.ran[i - 1]))
      for (const wait of waits) assert.ok(wait >= (1 - REPAIR_JITTER) * PERIOD && wait < (1 + REPAIR_JITTER) * PERIOD, `a wait of ${wait} ms`)
      assert.ok(node.ran.length >= 45 && node.ran.length <= 55, `${node.ran.length} passes in 50 periods`)
    }
    // the first passes: spread over half the period, not in one instant
    const first = nodes.map(n => n.ran[0]).sort((a, b) => a - b)
    assert.ok(first[first.length - 1] - first[0] > 0.4 * PERIOD, `first passes within ${first[first.length - 1] - first[0]} ms`)
    // later on, no second of the period carries much more than its share of the passes
    const lastPeriod = nodes.flatMap(n => n.ran.filter(at => at >= 40 * PERIOD && at < 50 * PERIOD))
    const perSecond = new Map<number, number>()
    for (const at of lastPeriod) perSecond.set(Math.floor((at % PERIOD) / 1000), (perSecond.get(Math.floor((at % PERIOD) / 1000)) ?? 0) + 1)
    const busiest = Math.max(...perSecond.values())
    const share = lastPeriod.length / 60
    assert.ok(busiest <= 4 * share, `the busiest second of the period held ${busiest} passes, its share ${share.toFixed(1)}`)
    assert.ok(perSecond.size >= 40, `passes fell in ${perSecond.size} of the period's 60 seconds`)
  })

  it('a stopped repairer schedules nothing more', async () => {
    const time = new VirtualTime(0)
    const node = new RecordingRepairer(time, () => 0.5)
    node.start()
    await time.advance(PERIOD)
    assert.deepEqual(node.ran, [PERIOD], 'with the middle draw, the wait is the period itself')
    await node.stop()
    assert.equal(time.pending, 0)
    await time.advance(10 * PERIOD)
    assert.deepEqual(node.ran, [PERIOD])
  })
})
