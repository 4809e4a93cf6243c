/**
 * Repair passes of a swarm started at once: how the `holdings` questions
 * of the passes fall over time, with the schedule's drawn phase (each wait
 * the period ± 25 %, node/durability/repairer.ts) next to the fixed period
 * it replaced, in the same run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/repair-burst.js [--nodes 100] [--files 20] [--periods 10] [--seed 5] [--json]
 *
 * The durability simulation on the real service (simulations/durability-real.ts):
 * N nodes started at the same virtual instant — a cluster restarted at once —
 * place the files, run three periods, then the bench counts every `holdings`
 * request a node receives, by virtual second, over `--periods` periods.
 * Reported for each schedule: the requests, the seconds that held any, the
 * mean and the busiest second swarm-wide (and its ratio to the mean: 1 would
 * be perfectly even), and the most one node received in one second. Virtual
 * time: the figures are counts, the same on any machine for one seed.
 */
import '../node/polyfills.js'
import { parseArgs } from 'node:util'
import { RealDurabilitySim } from '../simulations/durability-real.js'

/** How the passes' questions fell over one run. */
interface Burst {
  schedule: 'drawn phase' | 'fixed period'
  requests: number
  seconds: number
  secondsWithRequests: number
  meanPerSecond: number
  busiestSecond: number
  busiestToMean: number
  busiestNodeSecond: number
}

async function run (options: { nodes: number, files: number, periods: number, seed: number, fixed: boolean }): Promise<Burst> {
  const sim = new RealDurabilitySim({ seed: options.seed, nodes: options.nodes, files: options.files, fixedRepairPeriod: options.fixed })
  await sim.setup()
  await sim.place()
  await sim.time.advance(3 * sim.settings.checkIntervalMs)
  const perSecond = new Map<number, number>()
  const perNodeSecond = new Map<string, number>()
  for (const node of sim.nodes) {
    const handler = node.side.handler
    if (handler === undefined) continue
    node.side.handler = async (from, request, signal) => {
      if (request.type === 'holdings') {
        const second = Math.floor(sim.time.now() / 1000)
        perSecond.set(second, (perSecond.get(second) ?? 0) + 1)
        const key = `${node.id} ${second}`
        perNodeSecond.set(key, (perNodeSecond.get(key) ?? 0) + 1)
      }
      return await handler(from, request, signal)
    }
  }
  await sim.time.advance(options.periods * sim.settings.checkIntervalMs)
  sim.time.clear()
  const seconds = options.periods * sim.settings.checkIntervalMs / 1000
  const requests = [...perSecond.values()].reduce((a, b) => a + b, 0)
  const mean = requests / seconds
  const busiest = Math.max(0, ...perSecond.values())
  return {
    schedule: options.fixed ? 'fixed period' : 'drawn phase',
    requests,
    seconds,
    secondsWithRequests: perSecond.size,
    meanPerSecond: mean,
    busiestSecond: busiest,
    busiestToMean: mean > 0 ? busiest / mean : 0,
    busiestNodeSecond: Math.max(0, ...perNodeSecond.values())
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '100' },
      files: { type: 'string', default: '20' },
      periods: { type: 'string', default: '10' },
      seed: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false }
    }
  })
  const count = (name: 'nodes' | 'files' | 'periods' | 'seed', min: number): number => {
    const n = Number(values[name])
    if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name} must be an integer ≥ ${min}: ${String(values[name])}`)
    return n
  }
  const settings = { nodes: count('nodes', 7), files: count('files', 1), periods: count('periods', 1), seed: count('seed', 0) }
  const drawn = await run({ ...settings, fixed: false })
  const fixed = await run({ ...settings, fixed: true })
  if (values.json) {
    console.log(JSON.stringify({ settings, drawn, fixed }))
    return
  }
  console.log(`repair passes of ${settings.nodes} nodes started at once, ${settings.files} files (ec:4+2), ${settings.periods} periods of 60 s after placement; holdings requests received (seed ${settings.seed}, virtual time)`)
  console.log('| schedule | requests | seconds with requests | mean / s | busiest second | busiest / mean | most one node got in a second |')
  console.log('|---|--:|--:|--:|--:|--:|--:|')
  for (const b of [drawn, fixed]) {
    console.log(`| ${b.schedule} | ${b.requests} | ${b.secondsWithRequests} of ${b.seconds} | ${b.meanPerSecond.toFixed(1)} | ${b.busiestSecond} | ${b.busiestToMean.toFixed(1)} | ${b.busiestNodeSecond} |`)
  }
  console.log(`busiest second: fixed / drawn ${(fixed.busiestSecond / Math.max(1, drawn.busiestSecond)).toFixed(1)} x; one node's busiest second: ${(fixed.busiestNodeSecond / Math.max(1, drawn.busiestNodeSecond)).toFixed(1)} x`)
}

main().then(() => { process.exit(0) }, err => {
  console.error(`repair-burst: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
