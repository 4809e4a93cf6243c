/**
 * Command-line runner of the durability simulations, for the figures in
 * `docs/placement.md`:
 *
 *   node dist/simulations/durability-run.js balance [--seeds 100] [--peers 50] [--stripes 1000] [--zones 0] [--candidates N]
 *   node dist/simulations/durability-run.js churn [--seeds 10] [--leaves 20] [--joins 4] [--zone-outs 1]
 *
 * `balance` prints min/median/max over seeds of max/mean shards per peer;
 * `churn` runs random churn (2 virtual hours: leaves that restart within
 * the grace period, come back later or never; joins; whole-zone outages)
 * and prints repairs, bytes per rebuilt shard, aborted work, the time to
 * whole again and the share of stripe-time at each live-shard count.
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { measureBalance, spread } from './durability-balance.js'
import { DurabilitySim, type ChurnEvent } from './durability-sim.js'
import { Prng } from './prng.js'

const GRACE = 600_000
const CHURN_MS = 2 * 3_600_000

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    seeds: { type: 'string', default: '10' },
    peers: { type: 'string', default: '50' },
    stripes: { type: 'string', default: '' },
    zones: { type: 'string', default: '0' },
    candidates: { type: 'string', default: '' },
    leaves: { type: 'string', default: '20' },
    joins: { type: 'string', default: '4' },
    'zone-outs': { type: 'string', default: '1' }
  }
})

const num = (s: string): number => Number.parseInt(s, 10)
const fmt = (x: number): string => x.toFixed(2)

async function balance (): Promise<void> {
  const peers = num(values.peers)
  const stripes = values.stripes === '' ? 20 * peers : num(values.stripes)
  const candidates = values.candidates === '' ? undefined : num(values.candidates)
  const ratios: number[] = []
  for (let seed = 1; seed <= num(values.seeds); seed++) {
    ratios.push((await measureBalance({ seed, peers, stripes, zones: num(values.zones), candidates })).ratio)
  }
  const s = spread(ratios)
  const over = ratios.filter(r => r > 1.5).length
  console.log(`max/mean over ${ratios.length} seeds: min ${fmt(s.min)} median ${fmt(s.median)} max ${fmt(s.max)}; seeds over 1.5: ${over}`)
}

/** Random churn events from `rng`. */
function churnEvents (rng: Prng): ChurnEvent[] {
  const away = (): number | undefined => {
    const kind = rng.int(0, 2)
    return kind === 0 ? rng.int(1_000, GRACE - 1) : kind === 1 ? rng.int(GRACE, 4 * GRACE) : undefined
  }
  const events: ChurnEvent[] = []
  for (let i = 0; i < num(values.leaves); i++) events.push({ t: 'leave', at: rng.int(0, CHURN_MS), pick: rng.int(0, 10_000), downFor: away() })
  for (let i = 0; i < num(values.joins); i++) events.push({ t: 'join', at: rng.int(0, CHURN_MS) })
  for (let i = 0; i < num(values['zone-outs']); i++) events.push({ t: 'zone-out', at: rng.int(0, CHURN_MS), zone: rng.int(0, 4), downFor: away() })
  return events
}

async function churn (): Promise<void> {
  const totals = { completed: 0, aborted: 0, moved: 0, wasted: 0, lost: 0, exposed: 0, problems: 0 }
  const live = new Array<number>(7).fill(0)
  const restoreMinutes: number[] = []
  for (let seed = 1; seed <= num(values.seeds); seed++) {
    const sim = await DurabilitySim.create({ seed })
    sim.schedule(churnEvents(new Prng(seed * 7919)))
    await sim.runChurn()
    const end = sim.time.now()
    await sim.runUntilRestored(6 * 3_600_000)
    restoreMinutes.push((sim.time.now() - end) / 60_000)
    console.log(`seed ${seed}: ${sim.summary()}`)
    const s = sim.stats
    totals.completed += s.completed
    totals.aborted += s.aborted
    totals.moved += s.bytesRead + s.bytesWritten
    totals.wasted += s.wastedBytes
    totals.lost += sim.lostStripes()
    totals.exposed += sim.exposedStripes()
    totals.problems += sim.violations.length + sim.lostProblems().length + sim.restoreProblems().length
    sim.flushLiveTime().forEach((t, i) => { live[i] += t })
    sim.stop()
  }
  const shard = 1024 * 1024
  const all = live.reduce((a, b) => a + b, 0)
  const r = spread(restoreMinutes)
  console.log(`rebuilt ${totals.completed} shards, ${fmt(totals.moved / totals.completed / shard)} shards moved each (minimum k+1 = 5); ` +
    `aborted ${totals.aborted} (${fmt(totals.wasted / shard)} shards wasted, ${(100 * totals.wasted / (totals.moved + totals.wasted)).toFixed(3)}% of repair traffic)`)
  console.log(`stripes with > m holders down at once: ${totals.exposed}; lost: ${totals.lost}; property violations: ${totals.problems}`)
  console.log(`virtual minutes from the last churn event to whole: min ${fmt(r.min)} median ${fmt(r.median)} max ${fmt(r.max)}`)
  console.log('stripe-time by live shards: ' + live.map((t, i) => `${i}: ${(100 * t / all).toFixed(3)}%`).reverse().join(', '))
}

if (positionals[0] === 'balance') await balance()
else if (positionals[0] === 'churn') await churn()
else {
  console.error('usage: durability-run.js balance|churn [options]')
  process.exitCode = 2
}
