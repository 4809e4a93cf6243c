/**
 * A real-service durability simulation with its files placed and settled
 * (three repair periods past the placement), for the simulation tests.
 */
import { codingOf, parsePolicy } from '../../protocol/durability.js'
import { shardMap } from '../../simulations/durability-real-check.js'
import { RealDurabilitySim, type RealSimOptions } from '../../simulations/durability-real.js'

/** A placed simulation, its coding and the shard CIDs of every file. */
export interface PlacedSim {
  sim: RealDurabilitySim
  k: number
  m: number
  shardsOf: Map<string, string[][]>
}

/** Set up a simulation from `options`, place its files and let three repair periods pass. */
export async function placedSim (options: RealSimOptions): Promise<PlacedSim> {
  const sim = new RealDurabilitySim(options)
  await sim.setup()
  const { k, m } = codingOf(parsePolicy(sim.settings.policy)) as { k: number, m: number }
  const shardsOf = await shardMap(sim, k, m)
  await sim.place()
  await sim.time.advance(3 * sim.settings.checkIntervalMs)
  return { sim, k, m, shardsOf }
}
