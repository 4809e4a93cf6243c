/**
 * `npm run sim`: one namespace swarm at scale ({@link runScale}) —
 * `npm run sim -- --nodes 10000 --seed 1 --duration 20000` prints the nodes,
 * virtual duration, wall time, peak RSS, messages and whether every
 * acknowledged write reached every replica — or a seed campaign
 * ({@link runCampaign}): `npm run sim -- --seeds 20 --nodes 100` (seeds drawn
 * from a printed campaign seed, or `--from S`), `--kind namespace|scale|durability|all`,
 * one reproduction line per failure, a summary line at the end. A single
 * seed replays with `--kind K --seed S …` (the reproduction line). Exit
 * code 1 when anything failed.
 *
 * @module
 */
import { randomInt } from 'node:crypto'
import { writeHeapSnapshot } from 'node:v8'
import { runScale } from './scale-sim.js'
import { campaignSeeds, runCampaign } from './campaign.js'
import { parseSimArgs, SIM_USAGE, SimArgsError, type SimCommand } from './campaign-args.js'

let command: SimCommand
try {
  command = parseSimArgs(process.argv.slice(2))
} catch (err) {
  if (!(err instanceof SimArgsError)) throw err
  // bad arguments: one line and exit code 2, no stack trace (as the shoal CLI does)
  console.error(`npm run sim: ${err.message} (--help lists the options)`)
  process.exit(2)
}
if (command.mode === 'help') {
  console.log(SIM_USAGE)
  process.exit(0)
}
const started = performance.now()
const wall = (): string => ((performance.now() - started) / 1000).toFixed(1)
const peakMiB = (): number => Math.round(process.resourceUsage().maxRSS / 1024)
const cpu = (): string => (process.resourceUsage().userCPUTime / 1e6).toFixed(0)

// SIGINT (a run stopped early): exit through process.exit, so that --cpu-prof still writes its profile
process.once('SIGINT', () => { console.log(`stopped at wall ${wall()} s, cpu ${cpu()} s, peak RSS ${peakMiB()} MiB`); process.exit(130) })

if (command.mode === 'scale') {
  const r = await runScale({
    nodes: command.nodes,
    seed: command.seed,
    partitionFor: command.duration,
    writers: command.writers,
    partitionWriters: command.partitionWriters,
    interval: command.interval,
    crashes: command.crashes,
    ...command.lifecycle,
    network: { degree: command.degree },
    // SIM_OWN_VERIFIERS=1: every replica checks every signature it receives itself (as in production) instead of once for the swarm
    sharedVerifier: process.env.SIM_OWN_VERIFIERS === undefined,
    // SIM_HEAP_SNAPSHOT=1: a heap snapshot once converged, every node still up (what dominates memory)
    onConverged: process.env.SIM_HEAP_SNAPSHOT === undefined ? undefined : () => { console.log(`heap snapshot ${writeHeapSnapshot()}`) },
    // SIM_PROGRESS=1: where the run is, with wall time and peak RSS (a long run stopped early says how far it got)
    progress: process.env.SIM_PROGRESS === undefined ? undefined : line => { console.log(`[wall ${wall()} s, cpu ${cpu()} s, peak RSS ${peakMiB()} MiB] ${line}`) }
  })
  const n = r.network
  console.log(`nodes ${r.nodes}, degree ${command.degree}, seed ${command.seed}: ${r.writes} writes, partition ${command.duration} virtual ms, ${r.crashed} nodes crashed and restarted`)
  console.log(`virtual ${(r.virtualMs / 1000).toFixed(1)} s (converged ${String(r.converged)} ${(r.convergeMs / 1000).toFixed(1)} s after the heal), wall ${wall()} s, cpu ${cpu()} s, peak RSS ${peakMiB()} MiB`)
  console.log(`messages: ${n.sent} legs sent, ${n.delivered} delivered, ${n.seen} already seen, ${n.dropped} dropped, ${n.unreachable} unreachable; links ${n.links}, max hops ${n.maxHops}; requests ${n.requests} (${n.notLinked} to unlinked peers, ${n.timeouts} timed out); gossip handled ${r.gossipHandled}; pulls ${r.pulls} (${r.pullFailures} failed); events ${r.events}`)
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)
  console.log(`gossip received: ${r.gossip.messages} messages, ${mib(r.gossip.bytes)} MiB (all nodes); heartbeats ${r.gossip.heartbeats} published, ${r.gossip.heartbeatsSkipped} skipped; signatures ${r.signatures.checks} checked, ${r.signatures.hits} answered again`)
  const l = r.lifecycle
  if (command.lifecycle.diskLosses + command.lifecycle.restores + command.lifecycle.joins + command.lifecycle.leaves > 0) {
    const how = [command.lifecycle.lossesTogether ? 'losses all at once' : '', command.lifecycle.skipRecovery ? 'recovery skipped' : ''].filter(x => x !== '').join(', ')
    console.log(`lifecycle${how === '' ? '' : ` (${how})`}: ${l.diskLosses} disks lost, ${l.restored} restored from backups (${l.backupsSkipped} without one), ${l.joined} joined, ${l.left} left (${l.writersFaulted} of them writers); ` +
      `writers that waited for recovery: ${l.waited.lost} lost, ${l.waited.restored} restored, ${l.waited.others} others; ${l.refused} writes refused, ${l.seqReused} seqs reused, ${l.exempted} writes exempt (every holder gone)${l.exempt.length > 0 ? ` ${l.exempt.join(' ')}` : ''}; ` +
      `converged again ${(l.convergeMs / 1000).toFixed(1)} virtual s after the first loss; ${r.rejected} entries rejected`)
  }
  if (r.lost.length > 0) console.log(`LOST on ${r.replicasMissing} replicas: ${r.lost.join(' ')}`)
  process.exitCode = r.converged && r.lost.length === 0 ? 0 : 1
} else {
  let seeds = [command.seed]
  if (command.seeds !== undefined) {
    const campaign = command.campaign ?? randomInt(2 ** 31 - 1)
    seeds = campaignSeeds(command.seeds, { from: command.from, campaign })
    const source = command.from !== undefined ? `seeds ${command.from}..${command.from + command.seeds - 1}` : `campaign seed ${campaign} (replay: --campaign ${campaign})`
    console.log(`${source}: ${seeds.length} seeds, kinds ${command.options.kinds.join(',')}, nodes ${command.options.nodes}`)
  }
  const r = await runCampaign({ ...command.options, seeds, print: line => console.log(line) })
  console.log(`summary: ${r.seedsRun} seeds run, ${r.runs} runs, ${r.failures.length} failures, wall ${wall()} s, peak RSS ${peakMiB()} MiB`)
  process.exitCode = r.failures.length > 0 ? 1 : 0
}
