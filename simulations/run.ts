/**
 * Run one random namespace scenario from the command line and print what
 * happened: `node dist/simulations/run.js --nodes 50 --ops 40 --seed 7
 * [--drop 0.1] [--duplicate 0.05] [--max-delay 50] [--interval 1000] [--trace]`.
 *
 * The scenario: random writes on random replicas with random waits, a
 * partition after the first third, healed at the end; then virtual time
 * runs until every replica has the same clock. Exit code 1 when the
 * replicas did not converge, differ, or lost a write.
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { NamespaceSim } from './namespace-sim.js'
import { Prng } from './prng.js'
import { randomScenario, runSteps, showStep } from './scenario.js'
import { VirtualTime } from './virtual-time.js'

/** Run the scenario the arguments describe; resolves to the exit code. */
export async function main (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '50' },
      ops: { type: 'string', default: '40' },
      seed: { type: 'string', default: '1' },
      drop: { type: 'string', default: '0.1' },
      duplicate: { type: 'string', default: '0.05' },
      'max-delay': { type: 'string', default: '50' },
      interval: { type: 'string', default: '1000' },
      trace: { type: 'boolean', default: false }
    }
  })
  const nodes = Number(values.nodes)
  const seed = Number(values.seed)
  const steps = randomScenario(new Prng(seed ^ 0x5c3e), nodes, Number(values.ops))
  const started = performance.now()
  const sim = await NamespaceSim.create({
    nodes,
    seed,
    network: { drop: Number(values.drop), duplicate: Number(values.duplicate), maxDelay: Number(values['max-delay']) },
    sync: { interval: Number(values.interval) }
  })
  try {
    await runSteps(sim, steps)
    const healed = sim.time.now()
    const converged = await sim.converge()
    const problems = [...await sim.differences(), ...await sim.lostWrites()]
    if (values.trace) {
      for (const s of steps) console.log(showStep(s))
      for (const line of sim.trace) console.log(line)
    }
    console.log(await sim.summary())
    console.log(`converged: ${String(converged)} ${sim.time.now() - healed} virtual ms after the heal (${(sim.time.now() - VirtualTime.START) / 1000} virtual s in all); ${Math.round(performance.now() - started)} ms real`)
    for (const p of problems) console.log(p)
    return converged && problems.length === 0 ? 0 : 1
  } finally {
    await sim.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2))
}
