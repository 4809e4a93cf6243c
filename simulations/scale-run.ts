/**
 * Command-line runner of one namespace swarm at scale ({@link runScale}):
 * `npm run sim -- --nodes 10000 --seed 1 --duration 20000`. Prints the
 * nodes, virtual duration, wall time, peak RSS, messages and whether every
 * acknowledged write reached every replica; exit code 1 when not.
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { runScale } from './scale-sim.js'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    duration: { type: 'string', default: '20000' },
    degree: { type: 'string', default: '8' },
    writers: { type: 'string', default: '100' },
    interval: { type: 'string', default: '10000' }
  }
})

let peak = process.memoryUsage().rss
const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 200)
const started = performance.now()
const r = await runScale({
  nodes: Number(values.nodes),
  seed: Number(values.seed),
  partitionFor: Number(values.duration),
  writers: Number(values.writers),
  interval: Number(values.interval),
  network: { degree: Number(values.degree) }
})
const wall = (performance.now() - started) / 1000
clearInterval(sampler)
peak = Math.max(peak, process.memoryUsage().rss)
const n = r.network
console.log(`nodes ${r.nodes}, degree ${values.degree}, seed ${values.seed}: ${r.writes} writes, partition ${values.duration} virtual ms`)
console.log(`virtual ${(r.virtualMs / 1000).toFixed(1)} s (converged ${String(r.converged)} ${(r.convergeMs / 1000).toFixed(1)} s after the heal), wall ${wall.toFixed(1)} s, peak RSS ${Math.round(peak / 2 ** 20)} MiB`)
console.log(`messages: ${n.sent} legs sent, ${n.delivered} delivered, ${n.seen} already seen, ${n.dropped} dropped, ${n.unreachable} unreachable; links ${n.links}, max hops ${n.maxHops}; requests ${n.requests} (${n.notLinked} to unlinked peers, ${n.timeouts} timed out); gossip handled ${r.gossipHandled}; pulls ${r.pulls} (${r.pullFailures} failed); events ${r.events}`)
if (r.lost.length > 0) console.log(`LOST on ${r.replicasMissing} replicas: ${r.lost.join(' ')}`)
process.exitCode = r.converged && r.lost.length === 0 ? 0 : 1
