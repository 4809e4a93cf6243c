/**
 * Placement balance and repair under churn on a simulated swarm: real
 * placement and repair planning, virtual time, real Ed25519 peer ids, all
 * seeded (fast-check seed + the simulation's own seed), so a failure
 * replays exactly. `SIM_VERBOSE=1` prints one summary line per run.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { measureBalance, spread } from '../../simulations/durability-balance.js'
import { DurabilitySim, type ChurnEvent, type ChurnOptions } from '../../simulations/durability-sim.js'
import { VirtualTime } from '../../simulations/virtual-time.js'

const RUN = { includeErrorInReport: true, endOnFailure: process.env.SIM_SHRINK === undefined }
const GRACE = 600_000
const CHURN_MS = 2 * 3_600_000
/** After churn, repairs must finish within this much virtual time. */
const RESTORE_MS = 6 * 3_600_000
const MiB = 1024 * 1024

const restartArb = fc.integer({ min: 1_000, max: GRACE - 1 })
const lateArb = fc.integer({ min: GRACE, max: 4 * GRACE })
const awayArb = fc.oneof(restartArb, lateArb, fc.constant(undefined))
const atArb = fc.integer({ min: 0, max: CHURN_MS })

function leaveArb (downFor: fc.Arbitrary<number | undefined>): fc.Arbitrary<ChurnEvent> {
  return fc.record({ t: fc.constant('leave' as const), at: atArb, pick: fc.nat(10_000), downFor })
}
function zoneOutArb (downFor: fc.Arbitrary<number | undefined>): fc.Arbitrary<ChurnEvent> {
  return fc.record({ t: fc.constant('zone-out' as const), at: atArb, zone: fc.nat(4), downFor })
}
const joinArb: fc.Arbitrary<ChurnEvent> = fc.record({ t: fc.constant('join' as const), at: atArb })

/** Leaves of every kind, joins, and now and then a whole zone going away. */
const mixedArb = fc.record({
  seed: fc.nat(),
  events: fc.array(fc.oneof(
    { weight: 12, arbitrary: leaveArb(awayArb) },
    { weight: 3, arbitrary: joinArb },
    { weight: 1, arbitrary: zoneOutArb(awayArb) }
  ), { minLength: 5, maxLength: 30 })
})

/** Only restarts: every peer is back within the grace period. */
const restartsArb = fc.record({
  seed: fc.nat(),
  events: fc.array(fc.oneof(
    { weight: 8, arbitrary: leaveArb(restartArb) },
    { weight: 1, arbitrary: zoneOutArb(restartArb) }
  ), { minLength: 5, maxLength: 40 })
})

function show (events: readonly ChurnEvent[]): string {
  return [...events].sort((a, b) => a.at - b.at).map(e => '  ' + JSON.stringify(e)).join('\n')
}

/** Run churn then recovery on a fresh simulation; `check` gets the finished sim. */
async function withChurn (options: ChurnOptions, events: readonly ChurnEvent[], check: (sim: DurabilitySim, restored: boolean) => string[]): Promise<void> {
  const sim = await DurabilitySim.create(options)
  try {
    sim.schedule(events)
    await sim.runChurn()
    const restored = await sim.runUntilRestored(RESTORE_MS)
    if (process.env.SIM_VERBOSE !== undefined) process.stderr.write(`${sim.summary()}\n`)
    const problems = [...sim.violations, ...check(sim, restored)]
    if (problems.length > 0) {
      throw new assert.AssertionError({ message: [...problems.slice(0, 20), `seed ${options.seed}: ${sim.summary()}`, 'events:', show(events)].join('\n') })
    }
  } finally {
    sim.stop()
  }
}

/** Property (c): committed repairs read exactly k shards and write one. */
function byteProblems (sim: DurabilitySim): string[] {
  const { completed, bytesRead, bytesWritten } = sim.stats
  const out: string[] = []
  if (bytesRead !== completed * sim.k * sim.shardBytes) out.push(`read ${bytesRead} bytes for ${completed} repairs, expected ${completed * sim.k * sim.shardBytes}`)
  if (bytesWritten !== completed * sim.shardBytes) out.push(`wrote ${bytesWritten} bytes for ${completed} repairs, expected ${completed * sim.shardBytes}`)
  return out
}

describe('placement balance', () => {
  it('1,000 stripes of 4+2 on 50 peers: max/mean ≤ 1.5 on every seed', async () => {
    const ratios: number[] = []
    for (let seed = 1; seed <= 5; seed++) {
      const r = await measureBalance({ seed })
      assert.ok(r.ratio <= 1.5, `seed ${seed}: max ${r.max} mean ${r.mean} ratio ${r.ratio.toFixed(2)}`)
      ratios.push(r.ratio)
    }
    if (process.env.SIM_VERBOSE !== undefined) process.stderr.write(`balance max/mean ${JSON.stringify(spread(ratios))}\n`)
  })

  it('stays balanced with zones (5 zones, and 3 zones where the cap forces 2 shards per zone)', async () => {
    for (const zones of [3, 5]) {
      const r = await measureBalance({ seed: 9, zones })
      assert.ok(r.ratio <= 1.5, `${zones} zones: ratio ${r.ratio.toFixed(2)}`)
    }
  })
})

describe('repair under churn', () => {
  it('a peer gone for good: each of its shards rebuilt once, after the grace period, from k shards', async () => {
    const at = 30 * 60_000
    await withChurn({ seed: 5 }, [{ t: 'leave', at, pick: 7 }], (sim, restored) => {
      const out = byteProblems(sim)
      if (!restored) out.push('not restored')
      const gone = sim.repairs[0]?.from
      if (sim.repairs.length === 0 || sim.repairs.some(r => r.from !== gone)) out.push('repairs of the wrong peer')
      if (sim.repairs.some(r => r.plannedAt < VirtualTime.START + at + GRACE)) out.push('a repair started within the grace period')
      if (sim.stats.aborted !== 0 || sim.stats.wastedBytes !== 0) out.push(`${sim.stats.aborted} aborted repairs`)
      const perShard = (sim.stats.bytesRead + sim.stats.bytesWritten) / sim.stats.completed
      if (perShard !== (sim.k + 1) * sim.shardBytes) out.push(`${perShard} bytes per rebuilt shard`)
      return out
    })
  })

  it('a whole zone gone for good loses no stripe (≤ m shards per zone) and every stripe is whole again', async () => {
    await withChurn({ seed: 6 }, [{ t: 'zone-out', at: 60_000, zone: 2 }], (sim, restored) => {
      const out = [...byteProblems(sim), ...sim.lostProblems(), ...sim.restoreProblems()]
      if (!restored) out.push('not restored')
      if (sim.exposedStripes() !== 0) out.push(`${sim.exposedStripes()} stripes had more than m holders in the zone`)
      if (sim.stats.completed < 300 * 6 / 5 * 0.5) out.push(`only ${sim.stats.completed} repairs`)
      return out
    })
  })

  it('rate-limits each coordinator', async () => {
    const options = { seed: 8, repairBytesPerSecond: 1 * MiB, repairBurstBytes: 10 * MiB }
    await withChurn(options, [{ t: 'zone-out', at: 0, zone: 0 }], sim => {
      const out: string[] = []
      const perCoordinator = new Map<string, number[]>()
      for (const r of sim.repairs) perCoordinator.set(r.by, [...perCoordinator.get(r.by) ?? [], r.plannedAt, r.doneAt])
      for (const [by, times] of perCoordinator) {
        const bytes = times.length / 2 * (sim.k + 1) * sim.shardBytes
        const window = Math.max(...times) - Math.min(...times)
        if (bytes > options.repairBurstBytes + options.repairBytesPerSecond * window / 1000) out.push(`${by} sent ${bytes} bytes in ${window} ms`)
      }
      if (perCoordinator.size < 2) out.push('one coordinator did all the work')
      return out
    })
  })

  it('(a, c, d) churn: no stripe with ≤ m holders down at once is lost; k reads + 1 write per rebuilt shard; all whole again after churn', async () => {
    await fc.assert(fc.asyncProperty(mixedArb, async ({ seed, events }) => {
      await withChurn({ seed }, events, (sim, restored) => {
        const out = [...sim.lostProblems(), ...byteProblems(sim), ...sim.restoreProblems()]
        if (!restored) out.push(`not restored within ${RESTORE_MS} virtual ms after churn`)
        return out
      })
    }), { seed: 0xd0ab1e, numRuns: 8, ...RUN })
  })

  it('(b) restarts within the grace period cause no repair at all', async () => {
    await fc.assert(fc.asyncProperty(restartsArb, async ({ seed, events }) => {
      await withChurn({ seed }, events, (sim, restored) => {
        const out: string[] = []
        const { started, bytesRead, bytesWritten, wastedBytes } = sim.stats
        if (started + bytesRead + bytesWritten + wastedBytes !== 0) out.push(`${started} repairs started after restarts only`)
        if (!restored) out.push('a stripe stayed degraded')
        return out
      })
    }), { seed: 0x5e57a7, numRuns: 6, ...RUN })
  })
})
