/**
 * Namespace convergence with every node in a process of its own, as real
 * Shoal nodes run, against raw gossipsub between the same processes in the
 * same run.
 *
 *   npm run build && node dist/bench/converge-procs.js [--nodes 16] [--writes 200]
 *     [--spacing 200] [--topology star|mesh] [--links 2] [--seed 1] [--dir DIR]
 *     [--cpu-prof DIR] [--json] [--keep]
 *
 * The measurement is bench/converge.ts's convergence phase, with the nodes
 * moved out of the bench's process: `--nodes` children (bench/converge-node.ts),
 * each a libp2p host on 127.0.0.1 (`createHost`), a replica in its own LevelDB
 * (`createNamespace`) and a NamespaceSync over Libp2pSyncNetwork with the
 * default options; connected as a star on n0 plus `--links` random links per
 * node (the same seeded links as bench/converge.ts), or a full mesh. Once
 * gossipsub's meshes have formed (probes on both topics reach every node
 * twice in a row, every mesh holds min(4, subscribers)), each node makes one
 * warm-up write, awaited everywhere. Then `--writes` putFile calls, one every
 * `--spacing` ms (or later, if the previous putFile took longer), round-robin
 * over the nodes. A write's latency runs from its putFile resolving on the
 * writer to lookup() finding the path on each other node (onRemoteChange
 * triggers the lookups; a 500 ms poll backs them up). Every time is
 * `process.hrtime` (CLOCK_MONOTONIC), taken in the process where it happens.
 *
 * Ceiling, same run: as many raw gossipsub messages of the same size as the
 * namespace gossip that carried an entry, from the same publishers on the
 * schedule the writes actually had, timed from just before publish() in the
 * publisher's process until each other node's 'message' event.
 *
 * The report gives p50/p95/p99/max over writes (visible on all other nodes)
 * and over (write, node) pairs, the gossip leg of each write, per node its
 * CPU, event-loop use and delay during the writes, and the CPU of processes
 * outside the bench. Every wait is bounded; on any failure or signal every
 * child is stopped (killed after 15 s) and the temp dir removed.
 * `--cpu-prof DIR` profiles every child (one file per node, n0.cpuprofile ...);
 * the JSON's phase bounds (µs on CLOCK_MONOTONIC) cut them to a phase.
 *
 * See docs/benchmarks.md, "Namespace convergence and bootstrap".
 */
import '../node/polyfills.js'
import { fork, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { fmt, installCleanup, isInterrupted, log, median, tempDirs, trackChild } from './harness.js'
import { machineCpu } from './raw-stream.js'
import { ArgReader, monoMs, pct, swarmArg, topology } from './converge-common.js'
import type { ChildMessage, Command, NodeEvent, NodeLoad, NodeStats } from './converge-node.js'

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'converge-node.js')
/** A write (or a ceiling message) not seen everywhere this long after the last one fails the bench. */
const SPREAD_TIMEOUT = 30_000
/** Gossipsub meshes must form within this. */
const MESH_TIMEOUT = 60_000
/** A node must start within this. */
const START_TIMEOUT = 60_000
/** One command to a node must be answered within this. */
const CALL_TIMEOUT = 30_000
/** How long the swarm's idle load is measured, after the warm-up (ms). */
const IDLE_MS = 5000
/** A node must stop within this, or it is killed. */
const STOP_TIMEOUT = 15_000

interface Options {
  nodes: number
  writes: number
  spacing: number
  topology: 'star' | 'mesh'
  links: number
  seed: number
  dir: string
  cpuProf?: string
  json: boolean
  keep: boolean
}

function parseArgs (argv: string[]): Options {
  const o: Options = { nodes: 16, writes: 200, spacing: 200, topology: 'star', links: 2, seed: 1, dir: tmpdir(), json: false, keep: false }
  const r = new ArgReader(argv)
  while (r.next()) {
    const arg = r.arg
    if (swarmArg(o, r)) continue
    switch (arg) {
      case '--cpu-prof': o.cpuProf = resolve(r.value()); break
      default: throw new Error(`unknown argument ${JSON.stringify(arg)}; see the header of bench/converge-procs.ts`)
    }
  }
  return o
}

// ------------------------------------------------------------- children

/** One node's process, driven over IPC. */
class Child {
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()
  /** The last lines it wrote to stderr. */
  readonly stderr: string[] = []
  readonly stop: () => Promise<void>
  readonly ready: Promise<{ peerId: string, addrs: string[], pid: number }>
  private exited = false

  constructor (readonly index: number, readonly proc: ChildProcess, onEvents: (node: number, events: NodeEvent[]) => void) {
    this.stop = trackChild(proc, STOP_TIMEOUT)
    let buffered = ''
    proc.stderr?.setEncoding('utf8')
    proc.stderr?.on('data', (chunk: string) => {
      if (process.env.BENCH_DEBUG !== undefined) process.stderr.write(chunk)
      buffered += chunk
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      this.stderr.push(...lines)
      if (this.stderr.length > 20) this.stderr.splice(0, this.stderr.length - 20)
    })
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`n${index} did not start within ${START_TIMEOUT / 1000} s`)), START_TIMEOUT)
      proc.on('message', (m: ChildMessage) => {
        if ('reply' in m) {
          const w = this.waiting.get(m.reply)
          this.waiting.delete(m.reply)
          if (m.ok) w?.resolve(m.value)
          else w?.reject(new Error(`n${index}: ${m.error ?? '?'}`))
        } else if (m.type === 'events') {
          onEvents(index, m.events)
        } else if (m.type === 'ready') {
          clearTimeout(timer)
          resolve(m)
        } else if (m.type === 'fatal') {
          clearTimeout(timer)
          reject(new Error(`n${index} failed: ${m.message}`))
        }
      })
      proc.once('exit', (code, signal) => {
        this.exited = true
        clearTimeout(timer)
        const err = new Error(`n${index} exited (${signal ?? `code ${String(code)}`})${this.stderr.length > 0 ? `; its last lines: ${this.stderr.slice(-5).join(' | ')}` : ''}`)
        reject(err)
        for (const w of this.waiting.values()) w.reject(err)
        this.waiting.clear()
      })
    })
    this.ready.catch(() => {})
  }

  /** Send a command; its reply's value, or an error after `ms`. */
  async call<T = unknown> (c: DistributiveOmit<Command, 'id'>, ms = CALL_TIMEOUT): Promise<T> {
    if (this.exited) throw new Error(`n${this.index} has exited`)
    const id = this.nextId++
    let timer: NodeJS.Timeout | undefined
    try {
      return await new Promise<T>((resolve, reject) => {
        this.waiting.set(id, { resolve, reject })
        timer = setTimeout(() => { this.waiting.delete(id); reject(new Error(`n${this.index} did not answer ${c.cmd} within ${ms / 1000} s`)) }, ms)
        this.proc.send({ ...c, id } as Command, err => { if (err !== null && err !== undefined) { this.waiting.delete(id); reject(err) } })
      })
    } finally {
      clearTimeout(timer)
    }
  }

  /** Ask it to stop; killed if it has not exited within {@link STOP_TIMEOUT}. */
  async shutdown (): Promise<void> {
    if (this.exited) return
    const exited = new Promise<void>(resolve => { if (this.exited) resolve(); else this.proc.once('exit', () => resolve()) })
    try {
      await this.call({ cmd: 'stop' }, STOP_TIMEOUT)
      // it exits by itself once stopped (writing its --cpu-prof profile on the way): give it the time
      await Promise.race([exited, sleep(STOP_TIMEOUT)])
    } catch (err: any) {
      log(`n${this.index}: ${String(err?.message ?? err)}`)
    }
    await this.stop()
  }
}

type DistributiveOmit<T, K extends keyof any> = T extends unknown ? Omit<T, K> : never

async function startChildren (opts: Options, work: string, onEvents: (node: number, events: NodeEvent[]) => void): Promise<Child[]> {
  const kids: Child[] = []
  if (opts.cpuProf !== undefined) await mkdir(opts.cpuProf, { recursive: true })
  for (let i = 0; i < opts.nodes; i++) {
    const execArgv = opts.cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', opts.cpuProf, '--cpu-prof-name', `n${i}.cpuprofile`]
    const proc = fork(CHILD, ['--dir', join(work, `n${i}`), '--name', `n${i}`], { execArgv, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
    kids.push(new Child(i, proc, onEvents))
  }
  return kids
}

async function stopChildren (kids: Child[]): Promise<void> {
  await Promise.allSettled(kids.map(async k => await k.shutdown()))
}

// ------------------------------------------------------------- arrivals

/** When each node saw each keyed thing (ms on CLOCK_MONOTONIC), whatever order events and replies come in. */
class Arrivals {
  private readonly rows = new Map<string, number[]>()
  constructor (private readonly n: number) {}

  arrive (key: string, node: number, t: number): void {
    let row = this.rows.get(key)
    if (row === undefined) { row = new Array<number>(this.n).fill(NaN); this.rows.set(key, row) }
    if (Number.isNaN(row[node])) row[node] = t
  }

  /** Times per node, NaN where not seen. */
  row (key: string): number[] { return this.rows.get(key) ?? new Array<number>(this.n).fill(NaN) }
  /** Nodes other than `except` that have not seen it. */
  missing (key: string, except: number): number[] { return this.row(key).flatMap((t, i) => i !== except && Number.isNaN(t) ? [i] : []) }
}

/** One broadcast: its key in an {@link Arrivals}, its publisher and t0 (ms on CLOCK_MONOTONIC). */
interface Broadcast { key: string, publisher: number, label: string, t0: number }

/** Per-node latencies (ms) of a broadcast; NaN for the publisher and nodes that never saw it. */
function latencies (a: Arrivals, b: Broadcast): number[] {
  return a.row(b.key).map((t, i) => i === b.publisher ? NaN : t - b.t0)
}

/** Until the last other node saw it (ms). */
function allLatency (a: Arrivals, b: Broadcast): number {
  return Math.max(...latencies(a, b).filter(x => !Number.isNaN(x)))
}

/** Wait until every broadcast reached every other node, or fail after `ms` naming what is missing. */
async function awaitAll (a: Arrivals, bs: Broadcast[], ms: number): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const late = bs.filter(b => a.missing(b.key, b.publisher).length > 0)
    if (late.length === 0) return
    if (isInterrupted()) throw new Error('interrupted')
    if (Date.now() > deadline) {
      throw new Error(`${late.length} of ${bs.length} not seen everywhere ${fmt(ms / 1000)} s after the last one; first: ` +
        late.slice(0, 5).map(b => `${b.label} from n${b.publisher} missing on ${a.missing(b.key, b.publisher).map(i => `n${i}`).join(',')}`).join('; '))
    }
    await sleep(20)
  }
}

// ------------------------------------------------------------- measure

interface Dist { p50: number, p95: number, p99: number, max: number, n: number }
function dist (xs: number[]): Dist {
  return { p50: xs.length === 0 ? NaN : median(xs), p95: pct(xs, 95), p99: pct(xs, 99), max: xs.length === 0 ? NaN : Math.max(...xs), n: xs.length }
}

/** Every node's load over a phase, and the CPU of processes outside the bench meanwhile. */
interface PhaseLoads {
  seconds: number
  nodes: NodeLoad[]
  /** CPU seconds of this (driving) process. */
  parentCpuS: number
  /** Busy CPU of the machine minus the bench's processes (cores); undefined off Linux. */
  foreignCores?: number
}

async function startLoads (kids: Child[]): Promise<() => Promise<PhaseLoads>> {
  await Promise.all(kids.map(async k => await k.call({ cmd: 'load-start' })))
  const machine = machineCpu()
  const cpu = process.cpuUsage()
  const t = monoMs()
  return async () => {
    const nodes = await Promise.all(kids.map(async k => await k.call<NodeLoad>({ cmd: 'load-end' })))
    const seconds = (monoMs() - t) / 1000
    const machineNow = machineCpu()
    const used = process.cpuUsage(cpu)
    const parentCpuS = (used.user + used.system) / 1e6
    const ours = parentCpuS + nodes.reduce((s, l) => s + l.cpuS, 0)
    return {
      seconds,
      nodes,
      parentCpuS,
      foreignCores: machine === undefined || machineNow === undefined ? undefined : Math.max(0, machineNow - machine - ours) / seconds
    }
  }
}

interface Mesh { test: number, testWant: number, ns: number, nsWant: number, connections: number }

export interface ProcsResult {
  nodes: number
  topology: string
  links: number
  connectionsAtStart: number
  connectionsAtEnd: number
  connectionsPerNode: number[]
  meshSeconds: number
  writes: number
  spacingMs: number
  /** Per write: ms until visible on each node (NaN for the writer). */
  oursPerWrite: number[][]
  /** Per write, per node: when the gossip message carrying its entry arrived, from putFile resolving (ms; NaN if it never did). */
  gossipLegPerWrite: number[][]
  putFileMs: number[]
  messageBytes: number
  gossipPerMessage: number[][]
  /** Nothing written, after the warm-up. */
  idleLoad: PhaseLoads
  writesLoad: PhaseLoads
  gossipLoad: PhaseLoads
  foundByPoll: number
  syncStats: Record<string, number>
}

async function converge (opts: Options, kids: Child[], arrivals: { found: Arrivals, entry: Arrivals, test: Arrivals, probe: Arrivals }, sizes: number[], setProbeRound: (r: number) => void): Promise<ProcsResult> {
  const n = opts.nodes
  const info = await Promise.all(kids.map(async k => await k.ready))
  const ids = info.map(x => x.peerId)
  log(`converge-procs: ${n} nodes started (pids ${info.map(x => x.pid).join(' ')})`)

  const links = topology(n, opts.topology, opts.links, opts.seed)
  for (const [a, b] of links) await kids[a].call({ cmd: 'dial', addrs: info[b].addrs }, 15_000)
  const meshes = async (): Promise<Mesh[]> => await Promise.all(kids.map(async k => await k.call<Mesh>({ cmd: 'mesh' })))
  const connections = (m: Mesh[]): number => m.reduce((s, x) => s + x.connections, 0) / 2
  const connectionsAtStart = connections(await meshes())
  log(`converge-procs: ${opts.topology === 'mesh' ? 'full mesh' : `star on n0 + ${opts.links} random links per node`}, ${links.length} links dialled`)

  // meshes: every node's probes on both topics reach every other node, twice in a row, and every mesh holds min(4, subscribers)
  let nextId = 1
  const meshStart = Date.now()
  await Promise.all(kids.map(async k => await k.call({ cmd: 'record', probes: true, entries: false })))
  let good = 0
  let lastProblem = ''
  for (let round = 0; good < 2; round++) {
    if (isInterrupted()) throw new Error('interrupted')
    if (Date.now() - meshStart > MESH_TIMEOUT) throw new Error(`gossipsub meshes did not form within ${MESH_TIMEOUT / 1000} s: ${lastProblem}`)
    setProbeRound(round)
    const probes: Array<{ b: Broadcast, a: Arrivals }> = []
    for (const [p, k] of kids.entries()) {
      const id = nextId++
      probes.push({ b: { key: String(id), publisher: p, label: `probe ${round}`, t0: 0 }, a: arrivals.test })
      probes.push({ b: { key: `${round}:${ids[p]}`, publisher: p, label: `namespace probe ${round}`, t0: 0 }, a: arrivals.probe })
      await k.call({ cmd: 'probe', probeId: id })
    }
    const complete = (): boolean => probes.every(({ a, b }) => a.missing(b.key, b.publisher).length === 0)
    const until = Date.now() + 2000
    while (!complete() && Date.now() < until) await sleep(20)
    const delivered = complete()
    const thin: string[] = []
    for (const [i, m] of (await meshes()).entries()) {
      if (m.test < m.testWant || m.testWant === 0) thin.push(`n${i} test mesh ${m.test}/${m.testWant}`)
      if (m.ns < m.nsWant || m.nsWant === 0) thin.push(`n${i} ns mesh ${m.ns}/${m.nsWant}`)
    }
    lastProblem = delivered
      ? (thin.length > 0 ? `thin meshes: ${thin.slice(0, 6).join(', ')}` : '')
      : `probes missing: ${probes.filter(({ a, b }) => a.missing(b.key, b.publisher).length > 0).slice(0, 4).map(({ a, b }) => `${b.label} from n${b.publisher} on ${a.missing(b.key, b.publisher).map(i => `n${i}`).join(',')}`).join('; ')}`
    if (process.env.BENCH_DEBUG !== undefined) log(`  round ${round}: ${lastProblem || 'ok'}`)
    if (delivered && thin.length === 0) good++
    else { good = 0; await sleep(300) }
  }
  await Promise.all(kids.map(async k => await k.call({ cmd: 'record', probes: false, entries: true })))
  const meshSeconds = (Date.now() - meshStart) / 1000
  log(`converge-procs: meshes formed after ${fmt(meshSeconds, 1)} s`)

  const pathOf = (i: number): string => `/bench/w${String(i).padStart(6, '0')}.bin`
  /** The other nodes await `path` (unanswered: a slow node must not delay the writes). */
  const expect = (w: number, path: string): void => {
    for (const [j, k] of kids.entries()) {
      if (j !== w) k.call({ cmd: 'expect', path }).catch((err: any) => { log(`n${j}: ${String(err?.message ?? err)}`) })
    }
  }
  const write = async (i: number, w: number, path: string, label: string): Promise<Broadcast & { entryKey: string, putFileMs: number }> => {
    const r = await kids[w].call<{ t0: number, seq: number, putFileMs: number }>({ cmd: 'write', i, path })
    return { key: path, publisher: w, label, t0: r.t0, entryKey: `${ids[w]}:${r.seq}`, putFileMs: r.putFileMs }
  }

  // warm-up: one write per node, each awaited everywhere (every clock then names all authors)
  log('converge-procs: warm-up, one write per node')
  for (let w = 0; w < n; w++) {
    const path = `/bench/warmup-n${w}.bin`
    expect(w, path)
    // every node has the path awaited before it is written (the IPC of each node is in order)
    await Promise.all(kids.map(async k => await k.call({ cmd: 'mesh' })))
    await awaitAll(arrivals.found, [await write(-1 - w, w, path, `warm-up write by n${w}`)], SPREAD_TIMEOUT)
  }
  // the swarm's own cost with nothing written: gossipsub heartbeats, the DHT, pings
  const endIdle = await startLoads(kids)
  await sleep(IDLE_MS)
  const idleLoad = await endIdle()
  const statsBefore = await Promise.all(kids.map(async k => await k.call<NodeStats>({ cmd: 'stats' })))

  // measured writes, open loop: one every `spacing` ms, round-robin
  log(`converge-procs: ${opts.writes} writes, one every ${opts.spacing} ms`)
  sizes.length = 0
  const endWrites = await startLoads(kids)
  const writes: Array<Awaited<ReturnType<typeof write>>> = []
  // each path is awaited one write ahead, so that its node's word from this process never races the entry
  expect(0, pathOf(0))
  const start = monoMs() + 100
  for (let i = 0; i < opts.writes; i++) {
    if (isInterrupted()) throw new Error('interrupted')
    const wait = start + i * opts.spacing - monoMs()
    if (wait > 0) await sleep(wait)
    if (i + 1 < opts.writes) expect((i + 1) % n, pathOf(i + 1))
    writes.push(await write(i, i % n, pathOf(i), `write ${i}`))
  }
  await awaitAll(arrivals.found, writes, SPREAD_TIMEOUT)
  const writesLoad = await endWrites()
  const statsAfter = await Promise.all(kids.map(async k => await k.call<NodeStats>({ cmd: 'stats' })))
  const messageBytes = sizes.length > 0 ? Math.round(median(sizes)) : 500
  log(`converge-procs: p99 ${fmt(pct(writes.map(b => allLatency(arrivals.found, b)), 99), 1)} ms; namespace gossip carrying an entry: median ${messageBytes} bytes`)

  // ceiling: gossipsub alone, same count, size, publishers and schedule (the one the writes actually had)
  await sleep(1000)
  log(`converge-procs: ceiling, ${opts.writes} gossipsub messages of ${messageBytes} bytes`)
  const endGossip = await startLoads(kids)
  const gossip: Broadcast[] = []
  const gstart = monoMs() + 100
  for (let i = 0; i < opts.writes; i++) {
    if (isInterrupted()) throw new Error('interrupted')
    const wait = gstart + (writes[i].t0 - writes[0].t0) - monoMs()
    if (wait > 0) await sleep(wait)
    const p = i % n
    const id = nextId++
    const r = await kids[p].call<{ t0: number }>({ cmd: 'publish', probeId: id, size: messageBytes })
    gossip.push({ key: String(id), publisher: p, label: `message ${i}`, t0: r.t0 })
  }
  await awaitAll(arrivals.test, gossip, SPREAD_TIMEOUT)
  const gossipLoad = await endGossip()
  log(`converge-procs: gossipsub p99 ${fmt(pct(gossip.map(b => allLatency(arrivals.test, b)), 99), 1)} ms`)

  const end = await meshes()
  const syncStats: Record<string, number> = {}
  for (const [j, s] of statsAfter.entries()) {
    for (const [k, v] of Object.entries(s.sync)) syncStats[k] = (syncStats[k] ?? 0) + v - (statsBefore[j].sync[k] ?? 0)
  }
  return {
    nodes: n,
    topology: opts.topology === 'mesh' ? 'full mesh' : `star on n0 + ${opts.links} random links per node (seed ${opts.seed})`,
    links: links.length,
    connectionsAtStart,
    connectionsAtEnd: connections(end),
    connectionsPerNode: end.map(m => m.connections),
    meshSeconds,
    writes: opts.writes,
    spacingMs: opts.spacing,
    oursPerWrite: writes.map(b => latencies(arrivals.found, b)),
    gossipLegPerWrite: writes.map(b => latencies(arrivals.entry, { ...b, key: b.entryKey })),
    putFileMs: writes.map(b => b.putFileMs),
    messageBytes,
    gossipPerMessage: gossip.map(b => latencies(arrivals.test, b)),
    idleLoad,
    writesLoad,
    gossipLoad,
    foundByPoll: statsAfter.reduce((s, x, j) => s + x.foundByPoll - statsBefore[j].foundByPoll, 0),
    syncStats
  }
}

// ------------------------------------------------------------------ report

function table (rows: string[][]): string[] {
  const w = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)))
  const line = (r: string[]): string => '| ' + r.map((x, c) => c === 0 ? x.padEnd(w[c]) : x.padStart(w[c])).join(' | ') + ' |'
  return [line(rows[0]), '|' + w.map((k, c) => '-'.repeat(k + 1) + (c === 0 ? '-|' : ':|')).join(''), ...rows.slice(1).map(line)]
}

function ms (x: number): string { return Number.isFinite(x) ? fmt(x, x < 10 ? 1 : 0) : '-' }

function loadText (l: PhaseLoads): string {
  const cpu = l.nodes.reduce((s, x) => s + x.cpuS, 0)
  return `${fmt(l.seconds, 1)} s; the ${l.nodes.length} nodes ${fmt(cpu / l.seconds, 2)} cores (per node median ${fmt(median(l.nodes.map(x => x.cpuS / l.seconds)), 3)}, ` +
    `max ${fmt(Math.max(...l.nodes.map(x => x.cpuS / l.seconds)), 3)}), the driver ${fmt(l.parentCpuS / l.seconds, 3)}` +
    `${l.foreignCores === undefined ? '' : `, other processes ${fmt(l.foreignCores, 2)}`}; ` +
    `event-loop delay per node: median of p99 ${ms(median(l.nodes.map(x => x.loopDelayP99)))} ms, worst p99 ${ms(Math.max(...l.nodes.map(x => x.loopDelayP99)))} ms, worst max ${ms(Math.max(...l.nodes.map(x => x.loopDelayMax)))} ms; ` +
    `main thread busy: median ${fmt(100 * median(l.nodes.map(x => x.eventLoopUtilization)))}%`
}

/** The report's lines. */
function report (c: ProcsResult): string[] {
  const valid = (xs: number[]): number[] => xs.filter(x => !Number.isNaN(x))
  const all = (rows: number[][]): number[] => rows.map(r => Math.max(...valid(r)))
  const ours = dist(all(c.oursPerWrite))
  const oursPairs = dist(valid(c.oursPerWrite.flat()))
  const gossip = dist(all(c.gossipPerMessage))
  const gossipPairs = dist(valid(c.gossipPerMessage.flat()))
  const perNode = (rows: number[][]): Dist[] => Array.from({ length: c.nodes }, (_, j) => dist(valid(rows.map(r => r[j]))))
  const oursNodes = perNode(c.oursPerWrite)
  const gossipNodes = perNode(c.gossipPerMessage)
  const gossipLeg: number[] = []
  const applyLeg: number[] = []
  let missingLeg = 0
  for (const [i, row] of c.gossipLegPerWrite.entries()) {
    for (const [j, g] of row.entries()) {
      const v = c.oursPerWrite[i][j]
      if (Number.isNaN(v)) continue
      if (Number.isNaN(g)) { missingLeg++; continue }
      gossipLeg.push(g)
      applyLeg.push(v - g)
    }
  }
  const leg = { gossip: dist(gossipLeg), apply: dist(applyLeg) }
  const row = (label: string, d: Dist): string[] => [label, ms(d.p50), ms(d.p95), ms(d.p99), ms(d.max)]
  const w = c.writesLoad
  return [
    `convergence: ${c.nodes} nodes, one process each, ${c.topology}, ${c.links} links dialled (${c.connectionsAtStart} connections at start, ${c.connectionsAtEnd} at end); meshes formed after ${fmt(c.meshSeconds, 1)} s`,
    `${c.writes} putFile writes, one every ${c.spacingMs} ms, round-robin writers; latency from putFile resolving on the writer to lookup() finding the path; ms (CLOCK_MONOTONIC across processes)`,
    ...table([
      ['measure', 'p50', 'p95', 'p99', 'max'],
      row(`ours: visible on all ${c.nodes - 1} other nodes`, ours),
      row('ours: per (write, node)', oursPairs),
      row(`gossipsub: ${c.messageBytes}-byte message on all ${c.nodes - 1} other nodes`, gossip),
      row('gossipsub: per (message, node)', gossipPairs)
    ]),
    `where a write's time goes, per (write, node): its gossip message arrived p50 ${ms(leg.gossip.p50)} / p99 ${ms(leg.gossip.p99)} ms after putFile resolved; ` +
      `from that arrival to lookup() finding it p50 ${ms(leg.apply.p50)} / p99 ${ms(leg.apply.p99)} ms (${missingLeg} of ${oursPairs.n} never got the message carrying the entry)`,
    `ratio p99 ours / gossipsub: ${fmt(ours.p99 / gossip.p99, 2)} (p50: ${fmt(ours.p50 / gossip.p50, 2)})`,
    `target p99 visible on all nodes <= 250 ms: ${ours.p99 <= 250 ? 'PASS' : 'FAIL'} (${ms(ours.p99)} ms)`,
    `putFile on the writer (fsync included): p50 ${ms(median(c.putFileMs))} ms, p99 ${ms(pct(c.putFileMs, 99))} ms, max ${ms(Math.max(...c.putFileMs))} ms`,
    `load with nothing written (${IDLE_MS / 1000} s after the warm-up): ${loadText(c.idleLoad)}`,
    `load during the writes: ${loadText(w)}`,
    `load during the ceiling: ${loadText(c.gossipLoad)}`,
    `sync during the writes, all nodes: ${Object.entries(c.syncStats).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${v}`).join(', ')}; paths first seen by the 500 ms safety poll: ${c.foundByPoll}`,
    '',
    'per node during the writes (latencies in ms):',
    ...table([
      ['node', 'conns', 'CPU cores', 'busy %', 'loop p99', 'loop max', 'ours p50', 'ours p99', 'ours max', 'gossip p50', 'gossip p99'],
      ...oursNodes.map((d, j) => {
        const l = w.nodes[j]
        return [`n${j}`, String(c.connectionsPerNode[j]), fmt(l.cpuS / w.seconds, 3), fmt(100 * l.eventLoopUtilization), ms(l.loopDelayP99), ms(l.loopDelayMax),
          ms(d.p50), ms(d.p99), ms(d.max), ms(gossipNodes[j].p50), ms(gossipNodes[j].p99)]
      })
    ])
  ]
}

// ------------------------------------------------------------------- main

async function main (): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  installCleanup()
  const work = await mkdtemp(join(opts.dir, 'shoal-bench-converge-procs-'))
  if (!opts.keep) tempDirs.add(work)
  log(`converge-procs: working dir ${work}`)
  const arrivals = { found: new Arrivals(opts.nodes), entry: new Arrivals(opts.nodes), test: new Arrivals(opts.nodes), probe: new Arrivals(opts.nodes) }
  const sizes: number[] = []
  let probeRound = 0
  const onEvents = (node: number, events: NodeEvent[]): void => {
    for (const e of events) {
      switch (e.k) {
        case 'found': arrivals.found.arrive(e.path, node, e.t); break
        case 'test': arrivals.test.arrive(String(e.id), node, e.t); break
        case 'nsprobe': arrivals.probe.arrive(`${probeRound}:${e.from}`, node, e.t); break
        case 'entry':
          arrivals.entry.arrive(`${e.from}:${e.seq}`, node, e.t)
          if (node === 0) sizes.push(e.bytes)
          break
        case 'error': log(`n${node}: ${e.message}`)
      }
    }
  }
  let kids: Child[] = []
  let result: ProcsResult | undefined
  try {
    kids = await startChildren(opts, work, onEvents)
    result = await converge(opts, kids, arrivals, sizes, r => { probeRound = r })
  } finally {
    log('converge-procs: stopping nodes')
    await stopChildren(kids)
    if (opts.keep) log(`kept ${work}`)
    else { await rm(work, { recursive: true, force: true }); tempDirs.delete(work) }
  }
  const out = [`Node ${process.version}, ${opts.nodes} node processes (UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'} each)`, '', ...report(result), '']
  process.stdout.write(out.join('\n'))
  if (opts.json) process.stdout.write(JSON.stringify(result, (_, v) => typeof v === 'number' && Number.isNaN(v) ? null : v) + '\n')
  return 0
}

main().then(code => { process.exit(code) }, (err: any) => {
  process.stderr.write(`bench/converge-procs: ${String(err?.stack ?? err?.message ?? err)}\n`)
  process.exit(isInterrupted() ? 130 : 1)
})
