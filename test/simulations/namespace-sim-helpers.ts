/**
 * What the namespace simulation tests share: run a body on a fresh
 * simulation and always stop it.
 */
import { NamespaceSim, type SimOptions } from '../../simulations/namespace-sim.js'

/** Run `body` on a fresh simulation and always stop it (`SIM_VERBOSE=1` prints a summary of each run). */
export async function withSim (options: SimOptions, body: (sim: NamespaceSim) => Promise<void>): Promise<void> {
  const sim = await NamespaceSim.create(options)
  try {
    await body(sim)
  } finally {
    if (process.env.SIM_VERBOSE !== undefined) process.stderr.write(`${await sim.summary()}\n`)
    await sim.stop()
  }
}
