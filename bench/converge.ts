/**
 * Namespace benchmark: how fast a write becomes visible on every node of a
 * swarm, and how fast a new node bootstraps into a large namespace, each
 * against a ceiling measured in the same run.
 *
 *   npm run build && node dist/bench/converge.js [--nodes 16] [--writes 200]
 *     [--spacing 200] [--topology star|mesh] [--links 2] [--entries 100000]
 *     [--tail 1000] [--authors 4] [--turn 250] [--threadpool N] [--seed 1]
 *     [--dir DIR] [--no-converge] [--no-bootstrap] [--history-only]
 *     [--source child|here|both] [--unsettled-source] [--entry-version 2|1]
 *     [--json] [--keep]
 *
 * 1. Convergence: `--nodes` real libp2p hosts on 127.0.0.1 in this process,
 *    each with a replica in its own LevelDB (built as createNamespace does,
 *    with its KV and verifier wrapped in timers) and a NamespaceSync over
 *    Libp2pSyncNetwork with the default options (10 s anti-entropy interval),
 *    connected as a star on n0 plus `--links` random links per node (or a
 *    full mesh). After gossipsub's meshes have formed, `--writes` putFile
 *    calls, one every `--spacing` ms (or later, if the previous putFile took
 *    longer), round-robin over the nodes. A write's latency runs from its
 *    putFile resolving (durable on the writer) until lookup(path) finds it on
 *    another node; the other nodes are watched through onRemoteChange, which
 *    triggers the lookups. Ceiling: as many raw gossipsub messages of the
 *    same size as our gossip, from the same publishers on the schedule the
 *    writes actually had, timed from just before publish() until each other
 *    node's 'message' event.
 * 2. Bootstrap: `--entries` signed entries (see generateEntries) received
 *    into a source replica in pages of 1000; the source's LevelDB is then
 *    compacted (a peer serving its history has long merged the tables it
 *    wrote it in; without this the source was still merging them during the
 *    pull, 0.3–0.4 CPU-s of the same two cores). (a) A fresh node pulls the
 *    whole history over libp2p. (b) The source compacts (compact(true)),
 *    receives `--tail` newer entries, and another fresh node bootstraps from
 *    the snapshot, then pulls the tail. (b*) The same with the snapshot's
 *    blocks handed over in-process. Ceiling: the same bytes over one raw
 *    libp2p stream. `--history-only` runs (a) and its ceiling alone (quick
 *    comparisons). (a)'s source runs in a child process of its own (as a
 *    peer on another machine would: its serving does not share the new
 *    node's main thread) and then in this process (the variant measured
 *    before); `--source child|here|both` chooses (default both). Each has its
 *    own ceiling: a raw stream from the source's host to a host here.
 *    With `--history-only` entries are of the version nodes write (2), else
 *    of the older form, which carries the author's whole clock (1: what (b)
 *    needs to compact, see Options.entryVersion); `--entry-version` chooses.
 *
 * All nodes share this process and its two cores: the report gives the main
 * thread's load per phase, and warns when it was saturated. So that 16
 * nodes' fsyncs do not queue on libuv's default 4 threads, the bench re-runs
 * itself with UV_THREADPOOL_SIZE = 4 per node (`--threadpool 0` keeps the
 * environment's), and with the daemon's V8 flags (cli/relaunch.ts) and
 * malloc settings (cli/malloc-tunables.ts), so that its nodes run as a
 * daemon runs them. Hosts are built by createHost, which lifts gossipsub's
 * IP-colocation penalty for loopback.
 *
 * Exit status 0 when every measurement completed (targets missed included).
 * BENCH_DEBUG=1 logs the mesh probe rounds, event-loop stalls over 100 ms
 * and slow putFile calls; SHOAL_LOG_LEVEL=debug prints the nodes' logs.
 * See docs/benchmarks.md, "Namespace convergence and bootstrap".
 */
import '../node/polyfills.js'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { pino } from 'pino'
import type { Message } from '@libp2p/gossipsub'
import type { PrivateKey } from '@libp2p/interface'
import { createHost, type ShoalLibp2p } from '../node/net/host.js'
import { LevelKV, Replica, cborCID, peerIdVerifier, signerFromKey, type KV, type ReplicaOptions, type Verifier } from '../node/namespace/index.js'
import { authenticateBatch } from '../node/namespace/identity.js'
import { cidText } from '../protocol/cid-text.js'
import { getMany, type KVOp, type KVRange } from '../node/namespace/kv.js'
import type { NamespaceSync } from '../node/namespace/sync.js'
import { createLibp2pSync } from '../node/namespace/libp2p-network.js'
import { dominates, weight, type VectorClock } from '../node/namespace/clock.js'
import { walkTree } from '../node/namespace/snapshot-tree.js'
import {
  NAMESPACE_TOPIC, decodeEntry, decodeHeadsMessage, decodeSnapshotRoot, encodeEntry, encodeEntryBody, encodeHeadsMessage
} from '../protocol/namespace.js'
import { children, fmt, installCleanup, isInterrupted, log, median, tempDirs } from './harness.js'
import { machineCpu } from './raw-stream.js'
import { daemonChildArgs, missingDaemonFlags } from '../cli/relaunch.js'
import { withMallocTunables } from '../cli/malloc-tunables.js'
import { ArgReader, TEST_TOPIC, Watcher, swarmArg, fileRecord, generateEntries, payload, pct, seeded } from './converge-common.js'

/** The ceiling's gossip topic (every node subscribes). */
/** The bootstrap ceiling's raw stream. */
const RAW_PROTOCOL = '/bench/converge-raw/1.0.0'
const MiB = 1024 * 1024
const MB = 1e6
/** A write (or a ceiling message) not seen everywhere this long after the last one fails the bench. */
const SPREAD_TIMEOUT = 30_000
/** Gossipsub meshes must form within this. */
const MESH_TIMEOUT = 60_000
const PAGE = 1000

/** The last lines the nodes logged (debug and up), quoted when a phase fails; $SHOAL_LOG_LEVEL also prints them. */
const recentLogs: string[] = []
const logger = pino({ level: process.env.SHOAL_LOG_LEVEL ?? 'debug' }, {
  write (line: string): void {
    recentLogs.push(line.trim())
    if (recentLogs.length > 200) recentLogs.shift()
    if (process.env.SHOAL_LOG_LEVEL !== undefined) process.stderr.write(line)
  }
})

/** Distinct error messages among the recent log lines. */
function recentErrors (): string[] {
  const out = new Set<string>()
  for (const line of recentLogs) {
    try {
      const o = JSON.parse(line) as { msg?: string, err?: string }
      if (o.err !== undefined) out.add(`${o.msg ?? ''}: ${o.err}`)
    } catch {}
  }
  return [...out]
}

interface Options {
  nodes: number
  writes: number
  spacing: number
  topology: 'star' | 'mesh'
  links: number
  entries: number
  tail: number
  authors: number
  turn: number
  threadpool: number
  seed: number
  dir: string
  converge: boolean
  bootstrap: boolean
  /** Bootstrap (a) and its ceiling only. */
  historyOnly: boolean
  /** Where (a)'s source runs: its own process, this one, or both one after the other. */
  source: SourcePlace | 'both'
  /**
   * The version of the generated entries: by default 2 (as nodes write them)
   * with `--history-only`, else 1, because (b) needs the source to compact
   * every author's history: a version-1 entry carries what its author had
   * seen, a version-2 entry only its parents' dots, and the generated
   * authors send no heartbeats, so with version 2 nothing becomes causally
   * stable and the source compacts nothing.
   */
  entryVersion?: 1 | 2
  /**
   * Compact the sources' LevelDB after they are filled, before they serve
   * (default; `--unsettled-source` leaves them merging the tables they
   * were just filled with while they serve, as the bench did before).
   */
  settle: boolean
  /** Internal: run as (a)'s source process, serving the entries in this file. */
  historySource?: string
  json: boolean
  keep: boolean
}

function parseArgs (argv: string[]): Options {
  const o: Options = {
    nodes: 16, writes: 200, spacing: 200, topology: 'star', links: 2, entries: 100_000, tail: 1000, authors: 4, turn: 250,
    threadpool: -1, seed: 1, dir: tmpdir(), converge: true, bootstrap: true, historyOnly: false, source: 'both', settle: true, json: false, keep: false
  }
  const r = new ArgReader(argv)
  while (r.next()) {
    const arg = r.arg
    if (swarmArg(o, r)) continue
    switch (arg) {
      case '--entries': o.entries = r.int(PAGE); break
      case '--tail': o.tail = r.int(1); break
      case '--authors': o.authors = r.int(1); break
      case '--turn': o.turn = r.int(1); break
      case '--threadpool': o.threadpool = r.int(0); break
      case '--no-converge': o.converge = false; break
      case '--no-bootstrap': o.bootstrap = false; break
      case '--history-only': o.historyOnly = true; break
      case '--source': {
        const v = r.value()
        if (v !== 'child' && v !== 'here' && v !== 'both') throw new Error('--source is child, here or both')
        o.source = v
        break
      }
      case '--entry-version': {
        const v = r.int(1)
        if (v !== 1 && v !== 2) throw new Error('--entry-version is 1 or 2')
        o.entryVersion = v
        break
      }
      case '--unsettled-source': o.settle = false; break
      case '--history-source': o.historySource = r.value(); break
      default: throw new Error(`unknown argument ${JSON.stringify(arg)}; see the header of bench/converge.ts`)
    }
  }
  return o
}

// ---------------------------------------------------------------- helpers



function checkInterrupted (): void {
  if (isInterrupted()) throw new Error('interrupted')
}



/** Concatenate byte arrays into pieces of at most `size` bytes (whole arrays; one larger array stays alone). */
function pack (parts: Uint8Array[], size = MiB): Uint8Array[] {
  const out: Uint8Array[] = []
  let batch: Uint8Array[] = []
  let bytes = 0
  for (const p of parts) {
    if (bytes + p.byteLength > size && batch.length > 0) { out.push(Buffer.concat(batch)); batch = []; bytes = 0 }
    batch.push(p)
    bytes += p.byteLength
  }
  if (batch.length > 0) out.push(Buffer.concat(batch))
  return out
}

// ------------------------------------------------------- instrumentation

/** Wall time spent inside the calls of a KV (awaited, so it includes queueing on the shared event loop and thread pool). */
class TimedKV implements KV {
  readonly t = { get: 0, gets: 0, batch: 0, batches: 0, ops: 0, iterate: 0, items: 0 }
  /** When set, the wall time of each synced batch (ms) is pushed here. */
  syncedBatches?: number[]
  /** When set, the wall time of each get (ms) is pushed here. */
  getTimes?: number[]

  constructor (private readonly inner: KV) {}

  async open (): Promise<void> { await this.inner.open() }
  async close (): Promise<void> { await this.inner.close() }

  async get (key: string): Promise<Uint8Array | undefined> {
    const s = performance.now()
    try { return await this.inner.get(key) } finally {
      const d = performance.now() - s
      this.t.get += d
      this.t.gets++
      this.getTimes?.push(d)
    }
  }

  /** As the store it wraps: a replica reads on the calling thread through it when the store can (LevelKV). */
  readsNow (): boolean { return this.inner.readsNow?.() === true && this.inner.getSync !== undefined }

  getSync (key: string): Uint8Array | undefined {
    const s = performance.now()
    try { return this.inner.getSync?.(key) } finally {
      const d = performance.now() - s
      this.t.get += d
      this.t.gets++
      this.getTimes?.push(d)
    }
  }

  async getMany (keys: string[]): Promise<Array<Uint8Array | undefined>> {
    const s = performance.now()
    try { return await getMany(this.inner, keys) } finally {
      this.t.get += performance.now() - s
      this.t.gets += keys.length
    }
  }

  async batch (ops: KVOp[], sync: boolean): Promise<void> {
    const s = performance.now()
    try { await this.inner.batch(ops, sync) } finally {
      const d = performance.now() - s
      this.t.batch += d
      this.t.batches++
      this.t.ops += ops.length
      if (sync && ops.length > 0) this.syncedBatches?.push(d)
    }
  }

  async * iterate (range: KVRange): AsyncIterable<[string, Uint8Array]> {
    const it = this.inner.iterate(range)[Symbol.asyncIterator]()
    try {
      for (;;) {
        const s = performance.now()
        const r = await it.next()
        this.t.iterate += performance.now() - s
        if (r.done === true) return
        this.t.items++
        yield r.value
      }
    } finally {
      await it.return?.()
    }
  }

  snapshot (): TimedKV['t'] { return { ...this.t } }
}

interface Instrumented { replica: Replica, kv: TimedKV, level: LevelKV, verify: { ms: number, n: number } }

/** A replica as createNamespace builds it, with its KV and verifier timed. */
function instrumentedReplica (path: string, key: PrivateKey, options: ReplicaOptions = {}): Instrumented {
  const level = new LevelKV(path)
  const kv = new TimedKV(level)
  const inner = peerIdVerifier()
  const t = { ms: 0, n: 0 }
  const verifier: Verifier = async (author, data, sig) => {
    const s = performance.now()
    try { return await inner(author, data, sig) } finally { t.ms += performance.now() - s; t.n++ }
  }
  const replica = new Replica({ kv, signer: signerFromKey(key), verifier, clock: { now: () => Date.now() }, logger }, options)
  return { replica, kv, level, verify: t }
}

// ----------------------------------------------------------------- nodes

interface BenchNode {
  name: string
  libp2p: ShoalLibp2p
  replica: Replica
  sync: NamespaceSync
  stop: () => Promise<void>
}

const live = new Set<BenchNode>()

/** A host + replica + namespace sync with default options (createLibp2pSync, as the daemon builds it). */
async function startNode (name: string, key: PrivateKey, replica: Replica): Promise<BenchNode> {
  await replica.open()
  let libp2p: ShoalLibp2p
  try {
    libp2p = await createHost({ privateKey: key })
  } catch (err) {
    await replica.close()
    throw err
  }
  const sync = createLibp2pSync({ replica, libp2p, logger })
  let stopped = false
  const node: BenchNode = {
    name,
    libp2p,
    replica,
    sync,
    stop: async () => {
      if (stopped) return
      stopped = true
      live.delete(node)
      const errors: unknown[] = []
      for (const step of [async () => await sync.stop(), async () => await libp2p.stop(), async () => await replica.close()]) {
        try { await step() } catch (err) { errors.push(err) }
      }
      if (errors.length > 0) log(`${name}: stop: ${errors.map(e => String((e as any)?.message ?? e)).join('; ')}`)
    }
  }
  live.add(node)
  await sync.start()
  return node
}

async function stopAll (): Promise<void> {
  const all = [...live]
  await Promise.race([
    Promise.allSettled(all.map(async n => await n.stop())),
    sleep(30_000).then(() => log('some nodes did not stop within 30 s'))
  ])
}

async function dial (a: BenchNode, b: BenchNode): Promise<void> {
  await a.libp2p.dial(b.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(10_000) })
}

// --------------------------------------------------------------- phases

/**
 * CPU and event-loop use of this process over a phase, the CPU other
 * processes used meanwhile, and the phase's bounds on the monotonic clock
 * (µs, as in --cpu-prof profiles).
 */
interface PhaseLoad {
  seconds: number
  cpuCores: number
  /** Busy CPU of the whole machine minus ours (cores), undefined off Linux. */
  foreignCores?: number
  eventLoopUtilization: number
  /** Event-loop delay (ms) measured by a 10 ms timer. */
  loopDelayP50: number
  loopDelayP99: number
  fromUs: number
  toUs: number
  /** CPU-s of this process's main thread (Linux; undefined elsewhere): what runs the new node's JavaScript, its share of GC included. */
  mainThreadSeconds?: number
}

/** CPU-s of this process's main thread so far (from /proc; undefined off Linux). */
function mainThreadCpu (): number | undefined {
  try {
    const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

function startLoad (): () => PhaseLoad {
  const elu = performance.eventLoopUtilization()
  const cpu = process.cpuUsage()
  const machine = machineCpu()
  const main = mainThreadCpu()
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  const t = performance.now()
  const fromUs = Number(process.hrtime.bigint() / 1000n)
  return () => {
    const seconds = (performance.now() - t) / 1000
    const used = process.cpuUsage(cpu)
    const ours = (used.user + used.system) / 1e6
    const machineNow = machineCpu()
    const mainNow = mainThreadCpu()
    delay.disable()
    return {
      seconds,
      cpuCores: ours / seconds,
      foreignCores: machine === undefined || machineNow === undefined ? undefined : Math.max(0, machineNow - machine - ours) / seconds,
      eventLoopUtilization: performance.eventLoopUtilization(elu).utilization,
      // the histogram holds whole timer intervals: the delay is what exceeds the 10 ms resolution
      loopDelayP50: Math.max(0, delay.percentile(50) / 1e6 - 10),
      loopDelayP99: Math.max(0, delay.percentile(99) / 1e6 - 10),
      fromUs,
      toUs: Number(process.hrtime.bigint() / 1000n),
      mainThreadSeconds: main === undefined || mainNow === undefined ? undefined : mainNow - main
    }
  }
}

function loadText (l: PhaseLoad): string {
  return `${fmt(l.seconds, 1)} s, main thread ${fmt(100 * l.eventLoopUtilization)}% busy (event-loop delay p50 ${ms(l.loopDelayP50)} ms, p99 ${ms(l.loopDelayP99)} ms), ` +
    `CPU ${fmt(l.cpuCores, 2)} cores${l.foreignCores === undefined ? '' : ` + other processes ${fmt(l.foreignCores, 2)}`}`
}

/**
 * With `BENCH_HEAP_PROF=DIR`: V8's sampling heap profiler over a bootstrap
 * phase, objects the young and old collections freed included (what the
 * phase allocates, not what it keeps), written to `DIR/<phase>.heapprofile`.
 * Returns the function that stops it and writes the profile.
 */
async function startHeapSampling (): Promise<((name: string) => Promise<void>) | undefined> {
  const dir = process.env.BENCH_HEAP_PROF
  if (dir === undefined || dir === '') return undefined
  const { Session } = await import('node:inspector/promises')
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as any)
  return async (name) => {
    const { profile } = await session.post('HeapProfiler.stopSampling')
    session.disconnect()
    await writeFile(join(dir, `${name}.heapprofile`), JSON.stringify(profile))
  }
}

// ------------------------------------------------------------ spreading

/** One broadcast (a write, or a gossip message): when each other node got it. */
class Spread {
  readonly at: number[]
  t0 = NaN
  remaining: number
  readonly done: Promise<void>
  private resolve!: () => void

  constructor (n: number, readonly publisher: number, readonly label: string) {
    this.at = new Array<number>(n).fill(NaN)
    this.remaining = n - 1
    this.done = new Promise(resolve => { this.resolve = resolve })
  }

  arrive (node: number, t: number): void {
    if (node === this.publisher || !Number.isNaN(this.at[node])) return
    this.at[node] = t
    if (--this.remaining === 0) this.resolve()
  }

  missing (): number[] { return this.at.flatMap((t, i) => i !== this.publisher && Number.isNaN(t) ? [i] : []) }
  /** Per-node latencies (ms), NaN for the publisher. */
  latencies (): number[] { return this.at.map(t => t - this.t0) }
  /** Latency until the last other node had it. */
  all (): number { return Math.max(...this.at.filter(t => !Number.isNaN(t))) - this.t0 }
}

/** Wait for every spread, or fail after `ms` with what is missing. */
async function awaitSpreads (spreads: Spread[], ms: number, onTick: () => void, names: string[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = performance.now() + ms
  try {
    await new Promise<void>((resolve, reject) => {
      void Promise.all(spreads.map(async s => await s.done)).then(() => resolve())
      timer = setInterval(() => {
        onTick()
        if (isInterrupted()) reject(new Error('interrupted'))
        else if (performance.now() > deadline) {
          const late = spreads.filter(s => s.remaining > 0)
          reject(new Error(`${late.length} of ${spreads.length} not seen everywhere ${fmt(ms / 1000)} s after the last one; first: ${late.slice(0, 5).map(s => `${s.label} from ${names[s.publisher]} missing on ${s.missing().map(i => names[i]).join(',')}`).join('; ')}`))
        }
      }, 250)
    })
  } finally {
    clearInterval(timer)
  }
}


// ------------------------------------------------------------ convergence

interface Dist { p50: number, p99: number, max: number, n: number }
function dist (xs: number[]): Dist { return { p50: median(xs), p99: pct(xs, 99), max: Math.max(...xs), n: xs.length } }

interface ConvergeResult {
  nodes: number
  /** Where the LevelDBs were. */
  dir: string
  topology: string
  links: number
  connectionsAtStart: number
  connectionsAtEnd: number
  connectionsPerNode: number[]
  meshSeconds: number
  writes: number
  spacingMs: number
  /** Per write: ms until visible on all other nodes. */
  oursAll: number[]
  /** Per write: ms until visible on each node (NaN for the writer). */
  oursPerWrite: number[][]
  /** How long each putFile took on its writer (ms). */
  putFileMs: number[]
  messageBytes: number
  gossipAll: number[]
  gossipPerMessage: number[][]
  writesLoad: PhaseLoad
  gossipLoad?: PhaseLoad
  /** Per write, per node: when the gossip message carrying the entry arrived, from putFile resolving (ms; NaN if it never did). */
  gossipLegPerWrite: number[][]
  /** receive() + lookup() of one entry on an otherwise idle replica, per entry (ms). */
  idleApplyMs?: number[]
  /** LevelDB calls of all nodes during the writes: counts and total wall time (ms). */
  kvUse: { gets: number, getMs: number, batches: number, batchMs: number, getP50: number, getP99: number }
  /** Wall time of every synced LevelDB batch (commit with fsync) of any node during the writes. */
  syncedBatchMs: number[]
  foundByPoll: number
  syncStats: Record<string, number>
}

async function converge (opts: Options, work: string): Promise<ConvergeResult> {
  const n = opts.nodes
  log(`convergence: starting ${n} nodes`)
  const nodes: BenchNode[] = []
  const kvs: TimedKV[] = []
  for (let i = 0; i < n; i++) {
    const key = await generateKeyPair('Ed25519')
    // as createNamespace builds it, with the KV timed
    const inst = instrumentedReplica(join(work, `n${i}`), key)
    kvs.push(inst.kv)
    nodes.push(await startNode(`n${i}`, key, inst.replica))
  }
  const names = nodes.map(x => x.name)
  const ids = nodes.map(x => x.libp2p.peerId.toString())

  // topology
  const rand = seeded(opts.seed)
  const links = new Set<string>()
  const link = async (a: number, b: number): Promise<void> => {
    const k = a < b ? `${a}-${b}` : `${b}-${a}`
    if (a === b || links.has(k)) return
    links.add(k)
    await dial(nodes[a], nodes[b])
  }
  if (opts.topology === 'mesh') {
    for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) await link(a, b)
  } else {
    for (let a = 1; a < n; a++) await link(a, 0)
    for (let a = 1; a < n; a++) for (let k = 0; k < opts.links; k++) await link(a, 1 + Math.floor(rand() * (n - 1)))
  }
  const connections = (): number => nodes.reduce((s, x) => s + x.libp2p.getConnections().length, 0) / 2
  const connectionsAtStart = connections()
  log(`convergence: ${opts.topology === 'mesh' ? 'full mesh' : `star on n0 + ${opts.links} random links per node`}, ${links.size} links dialled`)

  // gossip listeners: the ceiling's topic and the namespace topic
  const spreadsById = new Map<number, Spread>()
  let nsProbe: Map<string, Spread> | undefined
  const nsSizes: number[] = []
  let recordSizes = false
  /** By `author:seq`: when the gossip message carrying that entry arrived at each node. */
  const gossipArrival = new Map<string, Spread>()
  for (const [i, node] of nodes.entries()) {
    const pubsub = node.libp2p.services.pubsub
    pubsub.subscribe(TEST_TOPIC)
    pubsub.addEventListener('message', (evt: CustomEvent<Message>) => {
      const t = performance.now()
      const msg = evt.detail
      if (msg.topic === TEST_TOPIC && msg.data.byteLength >= 5) {
        spreadsById.get(new DataView(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength).getUint32(1))?.arrive(i, t)
      } else if (msg.topic === NAMESPACE_TOPIC && msg.type === 'signed') {
        nsProbe?.get(msg.from.toString())?.arrive(i, t)
        if (recordSizes) {
          // when the heads message carrying a write's entry reached this node
          try {
            const heads = decodeHeadsMessage(msg.data)
            if (heads.entries.length > 0) {
              if (i === 0) nsSizes.push(msg.data.byteLength)
              const from = msg.from.toString()
              gossipArrival.get(`${from}:${heads.clock[from]}`)?.arrive(i, t)
            }
          } catch {}
        }
      }
    })
  }
  let nextId = 1

  // wait for the meshes: every node's probes on both topics reach every other node, twice in a row,
  // and every node has a mesh of min(4, subscribed peers) on both topics
  log('convergence: waiting for gossipsub meshes')
  const meshStart = performance.now()
  let good = 0
  let lastProblem = ''
  for (let round = 0; good < 2; round++) {
    checkInterrupted()
    if (performance.now() - meshStart > MESH_TIMEOUT) throw new Error(`gossipsub meshes did not form within ${MESH_TIMEOUT / 1000} s: ${lastProblem}`)
    const probes: Spread[] = []
    nsProbe = new Map()
    for (const [p, node] of nodes.entries()) {
      const s = new Spread(n, p, `probe ${round}`)
      spreadsById.set(nextId, s)
      probes.push(s)
      const ns = new Spread(n, p, `namespace probe ${round}`)
      nsProbe.set(ids[p], ns)
      probes.push(ns)
      const { clock, heads } = node.replica.state()
      const debug = (err: any): void => { if (process.env.BENCH_DEBUG !== undefined) log(`  probe from ${names[p]}: ${String(err?.message ?? err)}`) }
      await node.libp2p.services.pubsub.publish(TEST_TOPIC, payload(64, 1, nextId++)).catch(debug)
      await node.libp2p.services.pubsub.publish(NAMESPACE_TOPIC, encodeHeadsMessage({ v: 1, type: 'heads', clock, heads, entries: [] })).catch(debug)
    }
    const delivered = await Promise.race([Promise.all(probes.map(async s => await s.done)).then(() => true), sleep(2000).then(() => false)])
    nsProbe = undefined
    const thin: string[] = []
    for (const [i, node] of nodes.entries()) {
      const pubsub = node.libp2p.services.pubsub
      for (const topic of [TEST_TOPIC, NAMESPACE_TOPIC]) {
        // the GossipSub interface does not declare it; the implementation has it
        const mesh = (pubsub as unknown as { getMeshPeers: (topic: string) => string[] }).getMeshPeers(topic).length
        const want = Math.min(4, pubsub.getSubscribers(topic).length)
        if (mesh < want || want === 0) thin.push(`${names[i]} ${topic === TEST_TOPIC ? 'test' : 'ns'} mesh ${mesh}/${want}`)
      }
    }
    lastProblem = delivered ? (thin.length > 0 ? `thin meshes: ${thin.slice(0, 6).join(', ')}` : '') : `probes missing: ${probes.filter(s => s.remaining > 0).slice(0, 4).map(s => `${s.label} from ${names[s.publisher]} on ${s.missing().map(i => names[i]).join(',')}`).join('; ')}`
    if (process.env.BENCH_DEBUG !== undefined) log(`  round ${round}: ${connections()} connections, ${probes.filter(s => s.remaining === 0).length}/${probes.length} probes complete, ${probes.reduce((a, s) => a + (n - 1 - s.remaining), 0)} arrivals; ${lastProblem}`)
    if (delivered && thin.length === 0) good++
    else { good = 0; await sleep(300) }
  }
  spreadsById.clear()
  const meshSeconds = (performance.now() - meshStart) / 1000
  log(`convergence: meshes formed after ${fmt(meshSeconds, 1)} s`)

  const watchers = nodes.map(x => new Watcher(x.replica, () => performance.now(), err => { log(`watcher: lookup failed: ${String((err as any)?.message ?? err)}`) }))
  const poller = setInterval(() => { for (const w of watchers) w.poll() }, 500)
  const statsBefore = sumStats(nodes)
  try {
    const write = async (i: number, w: number, path: string, label: string): Promise<Spread> => {
      const s = new Spread(n, w, label)
      for (let j = 0; j < n; j++) if (j !== w) watchers[j].watch(path, t => { s.arrive(j, t) })
      // the path's parent exists, so putFile makes exactly one entry: the writer's next seq
      const arrival = new Spread(n, w, label)
      gossipArrival.set(`${ids[w]}:${(nodes[w].replica.state().clock[ids[w]] ?? 0) + 1}`, arrival)
      arrivals.push(arrival)
      await nodes[w].replica.putFile(path, fileRecord(i))
      s.t0 = performance.now()
      arrival.t0 = s.t0
      return s
    }
    const arrivals: Spread[] = []

    // warm-up: one write per node, each awaited everywhere (every clock then names all authors)
    log('convergence: warm-up, one write per node')
    for (let w = 0; w < n; w++) {
      const s = await write(-1 - w, w, `/bench/warmup-${names[w]}.bin`, `warm-up write by ${names[w]}`)
      await awaitSpreads([s], SPREAD_TIMEOUT, () => {}, names)
    }
    for (const w of watchers) w.foundByPoll = 0

    // measured writes, open loop: one every `spacing` ms, round-robin
    log(`convergence: ${opts.writes} writes, one every ${opts.spacing} ms`)
    recordSizes = true
    const syncedBatches: number[] = []
    const getTimes: number[] = []
    for (const kv of kvs) { kv.syncedBatches = syncedBatches; kv.getTimes = getTimes }
    const kvBefore = kvs.map(kv => kv.snapshot())
    const endWrites = startLoad()
    let lastTick = performance.now()
    const gapTimer = process.env.BENCH_DEBUG === undefined ? undefined : setInterval(() => {
      const now = performance.now()
      if (now - lastTick > 100) log(`  event loop stalled ${fmt(now - lastTick)} ms at +${fmt((now - start) / 1000, 2)} s`)
      lastTick = now
    }, 10)
    const writes: Spread[] = []
    const putFileMs: number[] = []
    const start = performance.now() + 100
    for (let i = 0; i < opts.writes; i++) {
      checkInterrupted()
      const wait = start + i * opts.spacing - performance.now()
      if (wait > 0) await sleep(wait)
      const w = i % n
      const t = performance.now()
      writes.push(await write(i, w, `/bench/w${String(i).padStart(6, '0')}.bin`, `write ${i}`))
      putFileMs.push(performance.now() - t)
      if (process.env.BENCH_DEBUG !== undefined && performance.now() - t > 150) log(`  write ${i}: putFile ${fmt(performance.now() - t)} ms, started at +${fmt((t - start) / 1000, 2)} s`)
    }
    await awaitSpreads(writes, SPREAD_TIMEOUT, () => {}, names)
    const writesLoad = endWrites()
    clearInterval(gapTimer)
    const measured = arrivals.slice(n) // after the warm-up writes
    for (const kv of kvs) { kv.syncedBatches = undefined; kv.getTimes = undefined }
    const kvUse = { gets: 0, getMs: 0, batches: 0, batchMs: 0, getP50: median(getTimes), getP99: pct(getTimes, 99) }
    for (const [j, kv] of kvs.entries()) {
      kvUse.gets += kv.t.gets - kvBefore[j].gets
      kvUse.getMs += kv.t.get - kvBefore[j].get
      kvUse.batches += kv.t.batches - kvBefore[j].batches
      kvUse.batchMs += kv.t.batch - kvBefore[j].batch
    }
    recordSizes = false
    const foundByPoll = watchers.reduce((s, w) => s + w.foundByPoll, 0)
    const syncStats = diffStats(sumStats(nodes), statsBefore)
    const messageBytes = nsSizes.length > 0 ? Math.round(median(nsSizes)) : 500
    log(`convergence: p99 ${fmt(pct(writes.map(s => s.all()), 99), 1)} ms; namespace gossip messages carrying an entry: median ${messageBytes} bytes`)

    // ceiling: gossipsub alone, same count, size, spacing and publishers
    await sleep(1000)
    log(`convergence: ceiling, ${opts.writes} gossipsub messages of ${messageBytes} bytes`)
    const gossip: Spread[] = []
    const endGossip = startLoad()
    // the same schedule the writes actually had (a write waits for the previous putFile, so a busy
    // process spreads them out): the same offered load
    const gstart = performance.now() + 100
    for (let i = 0; i < opts.writes; i++) {
      checkInterrupted()
      const wait = gstart + (writes[i].t0 - writes[0].t0) - performance.now()
      if (wait > 0) await sleep(wait)
      const p = i % n
      const id = nextId++
      const s = new Spread(n, p, `message ${i}`)
      spreadsById.set(id, s)
      gossip.push(s)
      const data = payload(messageBytes, 2, id)
      s.t0 = performance.now()
      await nodes[p].libp2p.services.pubsub.publish(TEST_TOPIC, data)
    }
    await awaitSpreads(gossip, SPREAD_TIMEOUT, () => {}, names)
    const gossipLoad = gossip.length > 0 ? endGossip() : undefined
    if (gossip.length > 0) log(`convergence: gossipsub p99 ${fmt(pct(gossip.map(s => s.all()), 99), 1)} ms`)

    return {
      nodes: n,
      dir: work,
      topology: opts.topology === 'mesh' ? 'full mesh' : `star on n0 + ${opts.links} random links per node (seed ${opts.seed})`,
      links: links.size,
      connectionsAtStart,
      connectionsAtEnd: connections(),
      connectionsPerNode: nodes.map(x => x.libp2p.getConnections().length),
      meshSeconds,
      writes: opts.writes,
      spacingMs: opts.spacing,
      oursAll: writes.map(s => s.all()),
      oursPerWrite: writes.map(s => s.latencies()),
      putFileMs,
      messageBytes,
      gossipAll: gossip.map(s => s.all()),
      gossipPerMessage: gossip.map(s => s.latencies()),
      writesLoad,
      gossipLoad,
      syncedBatchMs: syncedBatches,
      kvUse,
      gossipLegPerWrite: measured.map(a => a.latencies()),
      foundByPoll,
      syncStats
    }
  } finally {
    clearInterval(poller)
    for (const w of watchers) w.off()
    log('convergence: stopping nodes')
    await Promise.allSettled(nodes.map(async x => await x.stop()))
  }
}

/**
 * The receiving side of one write with nothing else running: receive() of
 * one entry (by one of `authors` authors, as nodes write them) into a
 * replica in LevelDB, then lookup() of its path, one entry at a time.
 */
async function idleApply (work: string, count: number, authors: number): Promise<number[]> {
  const entries = await generateEntries(count, authors, 1, 2, checkInterrupted)
  const inst = instrumentedReplica(join(work, 'idle-apply'), await generateKeyPair('Ed25519'))
  await inst.replica.open()
  try {
    const out: number[] = []
    for (const [i, e] of entries.entries()) {
      const t = performance.now()
      const r = await inst.replica.receive([e])
      if (r.applied !== 1 || await inst.replica.lookup(pathOf(i)) === undefined) throw new Error(`idle apply: entry ${i} not applied`)
      out.push(performance.now() - t)
    }
    return out
  } finally {
    await inst.replica.close()
  }
}

function sumStats (nodes: BenchNode[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const x of nodes) for (const [k, v] of Object.entries(x.sync.stats)) out[k] = (out[k] ?? 0) + v
  return out
}

function diffStats (a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]))
}

// -------------------------------------------------------------- bootstrap

/** Per-entry costs of the receive path, on a sample, outside any replica (after a warm-up pass). */
async function microCosts (entries: Uint8Array[]): Promise<Record<string, number>> {
  await microPass(entries.slice(0, 1000))
  return await microPass(entries.slice(0, 3000))
}

async function microPass (sample: Uint8Array[]): Promise<Record<string, number>> {
  const us = (ms: number): number => ms * 1000 / sample.length
  let t = performance.now()
  const decoded = sample.map(e => decodeEntry(e))
  const decode = us(performance.now() - t)
  t = performance.now()
  for (const d of decoded) encodeEntry(d)
  const reencode = us(performance.now() - t)
  t = performance.now()
  const bodies = decoded.map(d => encodeEntryBody(d))
  const encodeBody = us(performance.now() - t)
  t = performance.now()
  for (const e of sample) cborCID(e)
  const cid = us(performance.now() - t)
  const verifier = peerIdVerifier()
  t = performance.now()
  let ok = 0
  for (const [i, d] of decoded.entries()) if (await verifier(d.author, bodies[i], d.sig)) ok++
  const verify = us(performance.now() - t)
  if (ok !== sample.length) throw new Error(`micro: ${sample.length - ok} signatures did not verify`)
  // what receive does: each page of 1,000 authenticated as a batch (one signature per author and page, and the hash links)
  t = performance.now()
  for (let i = 0; i < sample.length; i += PAGE) {
    const page = decoded.slice(i, i + PAGE).map((d, j) => ({ key: cidText(cborCID(sample[i + j])), author: d.author, seq: d.seq, parents: d.parents.map(cidText), d }))
    const { ok: passed } = await authenticateBatch(page, async p => await verifier(p.author, encodeEntryBody(p.d), p.d.sig))
    if (passed.includes(false)) throw new Error('micro: a page did not authenticate')
  }
  const batchAuth = us(performance.now() - t)
  return { sample: sample.length, decodeUs: decode, reencodeUs: reencode, encodeBodyUs: encodeBody, cidUs: cid, verifyUs: verify, batchAuthUs: batchAuth }
}

/** Resolves when `node`'s clock covers `target`; reports when a snapshot got loaded. */
async function caughtUp (node: BenchNode, target: VectorClock, t0: number, ms: number, stuck?: () => boolean): Promise<{ seconds: number, snapshotAt?: number }> {
  const total = weight(target)
  let snapshotAt: number | undefined
  let off = (): void => {}
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise((resolve, reject) => {
      let lastLog = performance.now()
      const check = (): void => {
        if (dominates(node.replica.state().clock, target)) resolve({ seconds: (performance.now() - t0) / 1000, snapshotAt })
      }
      off = node.replica.onRemoteChange(() => {
        if (snapshotAt === undefined && Object.keys(node.replica.state().pruned).length > 0) snapshotAt = (performance.now() - t0) / 1000
        check()
      })
      timer = setInterval(() => {
        check()
        const have = weight(node.replica.state().clock)
        const why = (): string => `${node.name} has ${have} of ${total} entries after ${fmt((performance.now() - t0) / 1000, 1)} s (sync stats ${JSON.stringify(node.sync.stats)}; logged: ${recentErrors().slice(-4).join(' | ') || 'nothing'})`
        if (isInterrupted()) reject(new Error('interrupted'))
        else if (performance.now() - t0 > ms) reject(new Error(why()))
        else if (stuck?.() === true) reject(new Error(`no progress, giving up: ${why()}`))
        else if (performance.now() - lastLog > 5000) { lastLog = performance.now(); log(`  ${node.name}: ${fmt(have)} / ${fmt(total)} entries after ${fmt((lastLog - t0) / 1000, 1)} s`) }
      }, 250)
      check()
    })
  } finally {
    off()
    clearInterval(timer)
  }
}

/** Serve `chunks` on {@link RAW_PROTOCOL} from `host`: each stream opened to it gets them all. */
async function serveRaw (host: ShoalLibp2p, chunks: Uint8Array[]): Promise<void> {
  await host.handle(RAW_PROTOCOL, async (stream) => {
    try {
      for (const c of chunks) if (!stream.send(c)) await stream.onDrain()
      await stream.close()
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  })
}

/** Read a {@link serveRaw} stream from `addrs` into `to`; seconds from opening the stream to the last byte read. */
async function readRaw (to: ShoalLibp2p, addrs: Multiaddr[]): Promise<{ seconds: number, bytes: number }> {
  await to.dial(addrs, { signal: AbortSignal.timeout(10_000) }) // not timed
  const signal = AbortSignal.timeout(120_000)
  const t0 = performance.now()
  const stream = await to.dialProtocol(addrs, RAW_PROTOCOL, { signal })
  let bytes = 0
  for await (const chunk of stream) bytes += chunk.byteLength
  await stream.close().catch(() => {})
  return { seconds: (performance.now() - t0) / 1000, bytes }
}

/** Send `chunks` from `from` to `to` over one fresh stream; seconds from opening it to the last byte read. */
async function rawStream (from: ShoalLibp2p, to: ShoalLibp2p, chunks: Uint8Array[]): Promise<{ seconds: number, bytes: number }> {
  await serveRaw(from, chunks)
  try {
    return await readRaw(to, from.getMultiaddrs())
  } finally {
    await from.unhandle(RAW_PROTOCOL)
  }
}

interface Phase {
  /** Entries the new node had to end up with. */
  entries: number
  /** Where the source ran: in a process of its own, or in this one. */
  source: SourcePlace
  seconds: number
  entriesPerSecond: number
  verifyMs: number
  verifications: number
  kvBatchMs: number
  batches: number
  kvGetMs: number
  gets: number
  kvIterateMs: number
  sourceKvGetMs: number
  sourceKvIterateMs: number
  /** CPU-s of the source's own process during the phase (0 when the source runs in this process: its CPU is in `load`). */
  sourceCpuSeconds: number
  pages: number
  pulls: number
  snapshots: number
  compactedDuring: boolean
  /** The new node's sync counters: pages asked ahead (and dropped), compactions deferred during the pull. */
  askedAhead: number
  askedAheadDropped: number
  compactionsDeferred: number
  /** After catching up, until the new node's sync was idle (a compaction deferred during the pull runs then); not in `seconds`. */
  settleSeconds: number
  snapshotLoadedAt?: number
  load: PhaseLoad
}

/** Where a source runs: a child process of its own (as another machine would be), or this process. */
type SourcePlace = 'child' | 'here'

/** A source replica building its history from the entries. */
interface Build { seconds: number, verifyMs: number, kvBatchMs: number, batches: number, kvGetMs: number, load: PhaseLoad }

interface BootstrapResult extends Partial<SnapshotPhases> {
  entries: number
  tail: number
  authors: number
  turn: number
  entryVersion: 1 | 2
  entryBytes: number
  generateSeconds: number
  /** The source builds, per place (its load is that of the process it ran in). */
  builds: Partial<Record<SourcePlace, Build>>
  micro: Record<string, number>
  /** (a) per place of the source; the first in {@link historyOrder} is the headline. */
  histories: Partial<Record<SourcePlace, Phase>>
  /** The ceiling per place of the source: a raw stream from its host to a host of this process. */
  rawHistories: Partial<Record<SourcePlace, { seconds: number, bytes: number }>>
}

/** (b) and (b*) (absent with `--history-only`). */
interface SnapshotPhases {
  compact: { seconds: number, prunedEntries: number, snapshotEntries: number, snapshotBytes: number, snapshotBlocks: number, tailBytes: number }
  /** Undefined when it failed: see snapshotError. */
  snapshot?: Phase
  snapshotError?: string
  /** (b*): snapshot blocks handed over in-process, the tail over libp2p. */
  snapshotLocal: Phase
  rawSnapshot: { seconds: number, bytes: number }
}

/** The order (a)'s variants are run and reported in. */
const historyOrder: SourcePlace[] = ['child', 'here']

function pathOf (i: number): string {
  return `/library/d${String(Math.floor(i / 1000)).padStart(4, '0')}/f${String(i).padStart(7, '0')}.bin`
}

async function receiveAll (replica: Replica, entries: Uint8Array[], what: string): Promise<void> {
  for (let i = 0; i < entries.length; i += PAGE) {
    if (i % 20_000 === 0 && i > 0) log(`  ${what}: ${fmt(i)} entries`)
    checkInterrupted()
    const r = await replica.receive(entries.slice(i, i + PAGE))
    if (r.rejected > 0 || r.pending > 0 || r.applied !== Math.min(PAGE, entries.length - i)) throw new Error(`${what}: entries rejected or held: ${JSON.stringify(r)}`)
  }
}

/** How {@link buildSource} builds a source. */
interface SourceBuild {
  dir: string
  key: PrivateKey
  entries: Uint8Array[]
  /** Its name in the log. */
  what: string
  /** Compact its LevelDB once filled (see Options.settle). */
  settle: boolean
}

/** A source replica filled with the history, in LevelDB, never compacting by itself; receive() in pages of 1000, one fsynced batch each. */
async function buildSource (options: SourceBuild): Promise<{ src: Instrumented, build: Build }> {
  const { dir, key, entries, what, settle } = options
  const src = instrumentedReplica(dir, key, { compactAfter: Number.MAX_SAFE_INTEGER })
  await src.replica.open()
  const t = performance.now()
  const endBuild = startLoad()
  await receiveAll(src.replica, entries, what)
  const build = { seconds: (performance.now() - t) / 1000, verifyMs: src.verify.ms, kvBatchMs: src.kv.t.batch, batches: src.kv.t.batches, kvGetMs: src.kv.t.get, load: endBuild() }
  log(`bootstrap: ${what} built in ${fmt(build.seconds, 1)} s (${fmt(entries.length / build.seconds)} entries/s)`)
  if (settle) {
    // a peer serving its history has long merged the tables it wrote it in; this one wrote them a moment ago
    const settling = performance.now()
    await src.level.compact()
    log(`bootstrap: ${what} settled (its LevelDB compacted) in ${fmt((performance.now() - settling) / 1000, 1)} s`)
  }
  return { src, build }
}

/** What a phase reads of a source at its start and end. */
interface SourceCounters { served: number, kvGetMs: number, kvIterateMs: number, cpuUs: number }

/** A running source as a phase sees it, wherever it runs. */
interface Source {
  place: SourcePlace
  addrs: Multiaddr[]
  /** What the source has: a new node is done when its clock covers it. */
  clock: VectorClock
  counters: () => Promise<SourceCounters>
  /** The ceiling: its entries over one raw stream to `to`. */
  raw: (to: ShoalLibp2p) => Promise<{ seconds: number, bytes: number }>
  stop: () => Promise<void>
}

/** Entries framed for a file: each as a 4-byte big-endian length and its bytes. */
function frameEntries (entries: Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(entries.reduce((s, e) => s + 4 + e.byteLength, 0))
  let at = 0
  for (const e of entries) {
    out.writeUInt32BE(e.byteLength, at)
    out.set(e, at + 4)
    at += 4 + e.byteLength
  }
  return out
}

function unframeEntries (bytes: Buffer): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let at = 0; at < bytes.byteLength;) {
    const n = bytes.readUInt32BE(at)
    out.push(bytes.subarray(at + 4, at + 4 + n))
    at += 4 + n
  }
  return out
}

/** Messages of the source process ({@link serveHistorySource}) to the bench. */
type SourceMessage =
  | { type: 'ready', addrs: string[], clock: VectorClock, build: Build }
  | ({ type: 'counters' } & SourceCounters)
  | { type: 'raw-served' }
  | { type: 'failed', error: string }

/**
 * The source in a child process of its own (this script with
 * `--history-source FILE`): it builds its replica from the entries in FILE
 * and serves pulls and the raw stream from its own host and main thread, as
 * a peer on another machine would. Its CPU is read over IPC.
 */
async function childSource (work: string, entries: Uint8Array[], settle: boolean): Promise<Source & { build: Build }> {
  const file = join(work, 'history-entries.bin')
  await writeFile(file, frameEntries(entries))
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...(settle ? [] : ['--unsettled-source']), '--history-source', file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  const waiting: Array<(m: SourceMessage) => void> = []
  let exited: Error | undefined
  child.on('message', (m: SourceMessage) => { waiting.shift()?.(m) })
  const next = async (type: SourceMessage['type'], ms: number): Promise<SourceMessage> => {
    if (exited !== undefined) throw exited
    const m = await Promise.race([
      new Promise<SourceMessage>(resolve => waiting.push(resolve)),
      new Promise<never>((_resolve, reject) => { child.once('exit', code => reject(new Error(`the source process exited (${String(code)})`))) }),
      sleep(ms).then(() => { throw new Error(`the source process sent no ${type} within ${ms / 1000} s`) })
    ])
    if (m.type === 'failed') throw new Error(`the source process failed: ${m.error}`)
    if (m.type !== type) throw new Error(`the source process sent ${m.type}, not ${type}`)
    return m
  }
  child.once('exit', code => { exited = new Error(`the source process exited (${String(code)})`) })
  const ready = await next('ready', Math.max(300_000, entries.length * 3)) as Extract<SourceMessage, { type: 'ready' }>
  return {
    place: 'child',
    addrs: ready.addrs.map(a => multiaddr(a)),
    clock: ready.clock,
    build: ready.build,
    counters: async () => {
      child.send({ cmd: 'counters' })
      const { type: _, ...c } = await next('counters', 30_000) as Extract<SourceMessage, { type: 'counters' }>
      return c
    },
    raw: async (to) => await readRaw(to, ready.addrs.map(a => multiaddr(a))),
    stop: async () => {
      if (exited !== undefined) return
      const gone = new Promise(resolve => child.once('exit', resolve))
      child.send({ cmd: 'stop' })
      await Promise.race([gone, sleep(30_000).then(() => { child.kill('SIGKILL') })])
      children.delete(child)
    }
  }
}

/** The child side of {@link childSource}: build the source from `file`, serve until told to stop. */
async function serveHistorySource (file: string, settle: boolean): Promise<number> {
  const send = (m: SourceMessage): void => { process.send?.(m) }
  process.on('disconnect', () => { process.exit(0) })
  try {
    const entries = unframeEntries(await readFile(file))
    const key = await generateKeyPair('Ed25519')
    const { src, build } = await buildSource({ dir: join(dirname(file), 'source-child'), key, entries, what: 'source (own process)', settle })
    const node = await startNode('source', key, src.replica)
    await serveRaw(node.libp2p, pack(entries))
    const stopped = new Promise<void>(resolve => {
      process.on('message', (m: { cmd: string }) => {
        if (m.cmd === 'counters') {
          const cpu = process.cpuUsage()
          send({ type: 'counters', served: node.sync.stats.served, kvGetMs: src.kv.t.get, kvIterateMs: src.kv.t.iterate, cpuUs: cpu.user + cpu.system })
        } else if (m.cmd === 'stop') {
          void node.stop().finally(resolve)
        }
      })
    })
    send({ type: 'ready', addrs: node.libp2p.getMultiaddrs().map(a => a.toString()), clock: node.replica.state().clock, build })
    await stopped
    return 0
  } catch (err: any) {
    send({ type: 'failed', error: String(err?.message ?? err) })
    return 1
  }
}

/** The source in this process, sharing its main thread with the new node (and a handle on its replica for (b)). */
async function hereSource (work: string, entries: Uint8Array[], settle: boolean): Promise<Source & { build: Build, node: BenchNode, src: Instrumented }> {
  const key = await generateKeyPair('Ed25519')
  const { src, build } = await buildSource({ dir: join(work, 'source'), key, entries, what: 'source', settle })
  const node = await startNode('source', key, src.replica)
  return {
    place: 'here',
    addrs: node.libp2p.getMultiaddrs(),
    clock: node.replica.state().clock,
    build,
    node,
    src,
    counters: async () => ({ served: node.sync.stats.served, kvGetMs: src.kv.t.get, kvIterateMs: src.kv.t.iterate, cpuUs: 0 }),
    raw: async (to) => await rawStream(node.libp2p, to, pack(entries)),
    stop: async () => { await node.stop() }
  }
}

async function bootstrap (opts: Options, work: string): Promise<BootstrapResult> {
  const n = opts.entries
  const total = n + opts.tail
  const version = opts.entryVersion ?? (opts.historyOnly ? 2 : 1)
  log(`bootstrap: generating ${fmt(n)} + ${fmt(opts.tail)} entries (${opts.authors} authors, turns of ${opts.turn}, entries of version ${version})`)
  let t = performance.now()
  const all = await generateEntries(total, opts.authors, opts.turn, version, checkInterrupted)
  const entries = all.slice(0, n)
  const tail = all.slice(n)
  const generateSeconds = (performance.now() - t) / 1000
  const entryBytes = entries.reduce((s, e) => s + e.byteLength, 0)
  log(`bootstrap: generated in ${fmt(generateSeconds, 1)} s, ${fmt(entryBytes / MB, 1)} MB, ${fmt(entryBytes / n)} bytes per entry`)
  const micro = await microCosts(entries)

  const places = historyOrder.filter(p => opts.source === 'both' || opts.source === p)
  const sources: Partial<Record<SourcePlace, Source>> = {}
  let here: Awaited<ReturnType<typeof hereSource>> | undefined
  const timeout = Math.max(120_000, total * 3)

  /**
   * A fresh node catches up with `source` over libp2p. `preload` runs first
   * (timed): phase (b*) loads the snapshot through it.
   */
  const phase = async (name: string, count: number, source: Source, preload?: (replica: Replica) => Promise<void>): Promise<Phase> => {
    const target = source.clock
    const key = await generateKeyPair('Ed25519')
    const inst = instrumentedReplica(join(work, name), key)
    const node = await startNode(name, key, inst.replica)
    try {
      const before = await source.counters()
      const heap = await startHeapSampling()
      const t0 = performance.now()
      const endLoad = startLoad()
      let preloaded: number | undefined
      if (preload !== undefined) {
        await preload(inst.replica)
        preloaded = (performance.now() - t0) / 1000
      }
      log(`bootstrap: ${name}: dialling the source (${source.place === 'child' ? 'in its own process' : 'in this process'})`)
      await node.libp2p.dial(source.addrs, { signal: AbortSignal.timeout(10_000) })
      // a snapshot that keeps failing to load: say why instead of waiting for the timeout
      const stuck = (): boolean => node.sync.stats.pullFailures >= 3 && weight(node.replica.state().clock) === 0
      const done = await caughtUp(node, target, t0, timeout, stuck)
      const load = endLoad()
      await heap?.(name)
      const after = await source.counters()
      const settling = performance.now()
      await node.sync.idle()
      const settleSeconds = (performance.now() - settling) / 1000
      for (const i of [0, count - 1]) if (await node.replica.lookup(pathOf(i)) === undefined) throw new Error(`${name}: caught up but ${pathOf(i)} is missing`)
      const p: Phase = {
        entries: count,
        source: source.place,
        seconds: done.seconds,
        entriesPerSecond: count / done.seconds,
        verifyMs: inst.verify.ms,
        verifications: inst.verify.n,
        kvBatchMs: inst.kv.t.batch,
        batches: inst.kv.t.batches,
        kvGetMs: inst.kv.t.get,
        gets: inst.kv.t.gets,
        kvIterateMs: inst.kv.t.iterate,
        sourceKvGetMs: after.kvGetMs - before.kvGetMs,
        sourceKvIterateMs: after.kvIterateMs - before.kvIterateMs,
        sourceCpuSeconds: (after.cpuUs - before.cpuUs) / 1e6,
        pages: node.sync.stats.pages,
        pulls: node.sync.stats.pulls,
        snapshots: node.sync.stats.snapshots,
        compactedDuring: Object.keys(node.replica.state().pruned).length > 0 && node.sync.stats.snapshots === 0 && preload === undefined,
        askedAhead: node.sync.stats.pagesAskedAhead,
        askedAheadDropped: node.sync.stats.pagesAskedAheadDropped,
        compactionsDeferred: node.sync.stats.compactionsDeferred,
        settleSeconds,
        snapshotLoadedAt: preloaded ?? done.snapshotAt,
        load
      }
      log(`bootstrap: ${name}: ${fmt(p.seconds, 2)} s, ${fmt(p.entriesPerSecond)} entries/s (${p.pages} pages, source served ${after.served - before.served} requests)`)
      return p
    } finally {
      await node.stop()
    }
  }

  try {
    const builds: BootstrapResult['builds'] = {}
    for (const place of places) {
      const s = place === 'child' ? await childSource(work, entries, opts.settle) : (here = await hereSource(work, entries, opts.settle))
      if (weight(s.clock) !== n) throw new Error(`source (${place}) clock has ${weight(s.clock)} entries, not ${n}`)
      sources[place] = s
      builds[place] = s.build
    }
    // (a) the whole history, page by page, from each source; then the ceilings, from the same hosts
    const histories: BootstrapResult['histories'] = {}
    for (const place of places) histories[place] = await phase(place === 'child' ? 'history' : 'history-here', n, sources[place] as Source)
    const rawHistories: BootstrapResult['rawHistories'] = {}
    const rawHost = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    try {
      for (const place of places) {
        rawHistories[place] = await (sources[place] as Source).raw(rawHost)
        log(`bootstrap: raw stream from the source ${place === 'child' ? 'in its own process' : 'in this process'}: ${fmt((rawHistories[place]?.bytes ?? 0) / MB, 1)} MB in ${fmt(rawHistories[place]?.seconds ?? 0, 2)} s`)
      }
    } finally {
      await rawHost.stop()
    }
    const result: BootstrapResult = { entries: n, tail: tail.length, authors: opts.authors, turn: opts.turn, entryVersion: version, entryBytes, generateSeconds, builds, micro, histories, rawHistories }
    if (opts.historyOnly) return result
    if (here === undefined) throw new Error('(b) needs the source in this process: --source here or both, or --history-only')
    const source = here.node
    const hereSrc = here

    // (b) the source compacts (its snapshot covers all n entries; history every member has
    // seen is pruned), then takes `tail` newer entries, which a new node must pull after the snapshot
    t = performance.now()
    if (!await source.replica.compact(true)) throw new Error('the source did not compact')
    const compactSeconds = (performance.now() - t) / 1000
    const prunedEntries = weight(source.replica.state().pruned)
    const answer = await source.replica.pull({}, 1)
    if (answer.type !== 'snapshot') throw new Error('the source serves no snapshot after compacting')
    const [rootBytes] = await source.replica.blocks([answer.root])
    const blocks: Uint8Array[] = [rootBytes]
    // every node of the snapshot tree, as a peer fetches them
    for await (const _ of walkTree(decodeSnapshotRoot(rootBytes).tree, async cids => {
      const got = await source.replica.blocks(cids)
      blocks.push(...got)
      return got
    }, { batch: 64 })) { /* counting blocks only */ }
    await receiveAll(source.replica, tail, 'tail')
    const compact = {
      seconds: compactSeconds,
      prunedEntries,
      snapshotEntries: weight(answer.clock),
      snapshotBytes: blocks.reduce((s, b) => s + b.byteLength, 0),
      snapshotBlocks: blocks.length,
      tailBytes: tail.reduce((s, e) => s + e.byteLength, 0)
    }
    log(`bootstrap: source compacted in ${fmt(compactSeconds, 2)} s: snapshot of ${fmt(compact.snapshotEntries)} entries (${blocks.length} blocks, ${fmt(compact.snapshotBytes / MB, 1)} MB), ${fmt(prunedEntries)} pruned; then ${fmt(tail.length)} newer entries`)
    const withTail: Source = { ...hereSrc, clock: source.replica.state().clock }
    let snapshot: Phase | undefined
    let snapshotError: string | undefined
    try {
      snapshot = await phase('snapshot', total, withTail)
      if (snapshot.snapshots < 1) throw new Error('the snapshot node did not load a snapshot')
    } catch (err: any) {
      if (isInterrupted()) throw err
      snapshotError = String(err?.message ?? err)
      log(`bootstrap: snapshot: FAILED: ${snapshotError}`)
    }
    // (b*) the same, with the snapshot's blocks handed over in-process, 8 per call, through the
    // same Replica.loadSnapshot; then the tail over libp2p. Shows what (b) costs apart from the block transfer.
    const snapshotLocal = await phase('snapshot-local', total, withTail, async (replica) => {
      const fetchLocal = async (cids: CID[]): Promise<Uint8Array[]> => {
        const out: Uint8Array[] = []
        for (let i = 0; i < cids.length; i += 8) out.push(...await source.replica.blocks(cids.slice(i, i + 8)))
        return out
      }
      if (!await replica.loadSnapshot(answer.root, fetchLocal)) throw new Error('snapshot-local: loadSnapshot did nothing')
    })

    // ceiling: the same bytes over one raw stream
    const rawSnapshotHost = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    let rawSnapshot
    try {
      rawSnapshot = await rawStream(source.libp2p, rawSnapshotHost, pack([...blocks, ...tail]))
    } finally {
      await rawSnapshotHost.stop()
    }
    return { ...result, compact, snapshot, snapshotError, snapshotLocal, rawSnapshot }
  } finally {
    await Promise.allSettled(Object.values(sources).map(async s => await s.stop()))
  }
}

// ------------------------------------------------------------------ report

function table (rows: string[][]): string[] {
  const w = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)))
  const line = (r: string[]): string => '| ' + r.map((x, c) => c === 0 ? x.padEnd(w[c]) : x.padStart(w[c])).join(' | ') + ' |'
  return [line(rows[0]), '|' + w.map((k, c) => '-'.repeat(k + 1) + (c === 0 ? '-|' : ':|')).join(''), ...rows.slice(1).map(line)]
}

function ms (x: number): string { return Number.isFinite(x) ? fmt(x, x < 10 ? 1 : 0) : '-' }
function pass (ok: boolean): string { return ok ? 'PASS' : 'FAIL' }

function reportConverge (c: ConvergeResult): string[] {
  const ours = dist(c.oursAll)
  const gossip = dist(c.gossipAll)
  const perNode = (rows: number[][]): Dist[] => Array.from({ length: c.nodes }, (_, j) => dist(rows.map(r => r[j]).filter(x => !Number.isNaN(x))))
  const oursNodes = perNode(c.oursPerWrite)
  const gossipNodes = perNode(c.gossipPerMessage)
  const early = c.oursPerWrite.flat().filter(x => x < 0).length
  const gossipLeg: number[] = []
  const applyLeg: number[] = []
  let missingLeg = 0
  let totalLeg = 0
  for (const [i, row] of c.gossipLegPerWrite.entries()) {
    for (const [j, g] of row.entries()) {
      const v = c.oursPerWrite[i][j]
      if (Number.isNaN(v)) continue
      totalLeg++
      if (Number.isNaN(g)) { missingLeg++; continue }
      gossipLeg.push(g)
      applyLeg.push(v - g)
    }
  }
  const legs = { gossip: dist(gossipLeg), apply: dist(applyLeg), missing: missingLeg, total: totalLeg }
  const out = [
    `convergence: ${c.nodes} nodes in one process, ${c.topology}, ${c.links} links dialled (${c.connectionsAtStart} connections at start, ${c.connectionsAtEnd} at end); meshes formed after ${fmt(c.meshSeconds, 1)} s`,
    `${c.writes} putFile writes, one every ${c.spacingMs} ms, round-robin writers; latency from putFile resolving on the writer to lookup() finding the path; ms`,
    ...table([
      ['measure', 'p50', 'p99', 'max'],
      [`ours: visible on all ${c.nodes - 1} other nodes`, ms(ours.p50), ms(ours.p99), ms(ours.max)],
      ['ours: per node, median of the nodes\' p50 / p99', ms(median(oursNodes.map(d => d.p50))), ms(median(oursNodes.map(d => d.p99))), ms(Math.max(...oursNodes.map(d => d.max)))],
      [`gossipsub: ${c.messageBytes}-byte message on all ${c.nodes - 1} other nodes`, ms(gossip.p50), ms(gossip.p99), ms(gossip.max)],
      ['gossipsub: per node, median of the nodes\' p50 / p99', ms(median(gossipNodes.map(d => d.p50))), ms(median(gossipNodes.map(d => d.p99))), ms(Math.max(...gossipNodes.map(d => d.max)))]
    ]),
    `where a write's time goes, per (write, node): its gossip message arrived p50 ${ms(legs.gossip.p50)} ms / p99 ${ms(legs.gossip.p99)} ms after putFile resolved; ` +
      `from that arrival to lookup() finding it: p50 ${ms(legs.apply.p50)} ms / p99 ${ms(legs.apply.p99)} ms (${legs.missing} of ${legs.total} never got the message carrying the entry)`,
    ...(c.idleApplyMs === undefined ? [] : [`for comparison, receive() + lookup() of one such entry on an idle replica, nothing else running: p50 ${ms(median(c.idleApplyMs))} ms, p99 ${ms(pct(c.idleApplyMs, 99))} ms (${c.idleApplyMs.length} entries, one fsynced batch each)`]),
    ...(c.writesLoad.eventLoopUtilization > 0.9
      ? [`WARNING: the main thread was ${fmt(100 * c.writesLoad.eventLoopUtilization)}% busy during the writes: all ${c.nodes} nodes share it, so these latencies measure this process more than the protocol (try a larger --spacing)`]
      : []),
    `ratio p99 ours / gossipsub: ${fmt(ours.p99 / gossip.p99, 1)} (p50: ${fmt(ours.p50 / gossip.p50, 1)})`,
    `target p99 visible on all nodes < 1 s: ${pass(ours.p99 < 1000)} (${ms(ours.p99)} ms)`,
    `putFile on the writer (fsync included): p50 ${ms(median(c.putFileMs))} ms, p99 ${ms(pct(c.putFileMs, 99))} ms; ` +
      `LevelDB during the writes, all nodes: ${fmt(c.kvUse.gets)} gets (${fmt(c.kvUse.gets / (c.writes * (c.nodes - 1)), 1)} per write and receiving node, wall time mean ${ms(c.kvUse.getMs / c.kvUse.gets)} ms, p50 ${ms(c.kvUse.getP50)} ms, p99 ${ms(c.kvUse.getP99)} ms), ` +
      `${c.syncedBatchMs.length} synced batches (wall time p50 ${ms(median(c.syncedBatchMs))} ms, p99 ${ms(pct(c.syncedBatchMs, 99))} ms) in ${c.dir}; gossip size ${c.messageBytes} bytes is the median of the namespace messages that carried an entry`,
    `load during the writes (first write to last visible): ${loadText(c.writesLoad)}${c.gossipLoad === undefined ? '' : `; during the gossipsub ceiling: ${loadText(c.gossipLoad)}`}`,
    `sync during the writes: ${Object.entries(c.syncStats).map(([k, v]) => `${k} ${v}`).join(', ')}; paths first seen by the 500 ms safety poll rather than after a change event: ${c.foundByPoll}${early > 0 ? `; ${early} visible before putFile resolved on the writer` : ''}`,
    '',
    'per node (ms):',
    ...table([
      ['node', 'connections', 'ours p50', 'ours p99', 'ours max', 'gossipsub p50', 'gossipsub p99'],
      ...oursNodes.map((d, j) => [`n${j}`, String(c.connectionsPerNode[j]), ms(d.p50), ms(d.p99), ms(d.max), ms(gossipNodes[j].p50), ms(gossipNodes[j].p99)])
    ])
  ]
  return out
}

function reportBootstrap (b: BootstrapResult): string[] {
  const rate = (n: number, s: number): string => fmt(n / s)
  const breakdown = (p: Phase): string =>
    `verify ${fmt(p.verifyMs / 1000, 2)} s (${fmt(p.verifications)} signatures), LevelDB batches ${fmt(p.kvBatchMs / 1000, 2)} s (${p.batches}, fsynced), gets ${fmt(p.kvGetMs / 1000, 2)} s (${fmt(p.gets)}), ` +
    `source reads ${fmt((p.sourceKvGetMs + p.sourceKvIterateMs) / 1000, 2)} s; ${p.pages} pages in ${p.pulls} pulls`
  const m = b.micro
  const s: SnapshotPhases | undefined = b.compact === undefined || b.snapshotLocal === undefined || b.rawSnapshot === undefined
    ? undefined
    : { compact: b.compact, snapshot: b.snapshot, snapshotError: b.snapshotError, snapshotLocal: b.snapshotLocal, rawSnapshot: b.rawSnapshot }
  const snap = s?.snapshot
  const local = s?.snapshotLocal
  const total = b.entries + b.tail
  const snapshotMB = s === undefined ? 0 : (s.compact.snapshotBytes + s.compact.tailBytes) / MB
  const places = historyOrder.filter(p => b.histories[p] !== undefined)
  const label = (p: SourcePlace): string => p === 'child' ? '(a)' : places.length > 1 ? '(a1)' : '(a)'
  const where = (p: SourcePlace): string => p === 'child' ? 'the source in a process of its own' : 'the source in this process (one main thread for both)'
  const headline = b.histories[places[0]] as Phase
  const cpu = (h: Phase): number => h.load.cpuCores * h.load.seconds + h.sourceCpuSeconds
  return [
    `bootstrap: ${fmt(b.entries)} entries of version ${b.entryVersion} (${fmt(b.entryBytes / MB, 1)} MB, ${fmt(b.entryBytes / b.entries)} bytes each), one put each, written by ${b.authors} authors in turns of ${b.turn};`,
    'generated and signed in the bench, then received into the source replica (LevelDB) in pages of 1,000, one fsynced batch per page. New nodes pull over libp2p (127.0.0.1, noise+yamux); MB = 10^6 bytes',
    ...table([
      ['measure', 'seconds', 'entries/s', 'MB'],
      ...places.map(p => [`source build, ${p === 'child' ? 'in its own process' : 'in this process'}: receive() of all entries, local (no network)`, fmt((b.builds[p] as Build).seconds, 2), rate(b.entries, (b.builds[p] as Build).seconds), fmt(b.entryBytes / MB, 1)]),
      ...places.map(p => [`${label(p)} new node, from history, ${where(p)}: pull until its clock equals the source's`, fmt((b.histories[p] as Phase).seconds, 2), rate(b.entries, (b.histories[p] as Phase).seconds), fmt(b.entryBytes / MB, 1)]),
      ...(s === undefined || local === undefined
        ? []
        : [
            [`(b) new node, from a snapshot of ${fmt(s.compact.snapshotEntries)} + a tail of ${fmt(b.tail)} entries (source in this process)`, snap === undefined ? 'FAILED' : fmt(snap.seconds, 2), snap === undefined ? '-' : rate(total, snap.seconds), fmt(snapshotMB, 1)],
            ['(b*) the same, snapshot blocks handed over in-process, tail over libp2p', fmt(local.seconds, 2), rate(total, local.seconds), fmt(snapshotMB, 1)]
          ]),
      ...places.map(p => [`ceiling of ${label(p)}: raw libp2p stream of its bytes from the source's host`, fmt((b.rawHistories[p] as { seconds: number }).seconds, 2), rate(b.entries, (b.rawHistories[p] as { seconds: number }).seconds), fmt((b.rawHistories[p] as { bytes: number }).bytes / MB, 1)]),
      ...(s === undefined ? [] : [['ceiling: raw libp2p stream of (b)\'s bytes', fmt(s.rawSnapshot.seconds, 2), rate(total, s.rawSnapshot.seconds), fmt(s.rawSnapshot.bytes / MB, 1)]])
    ]),
    `ratio to the raw stream: ${places.map(p => `${label(p)} ${fmt((b.histories[p] as Phase).seconds / (b.rawHistories[p] as { seconds: number }).seconds, 0)}x slower`).join(', ')}` +
      (s === undefined || local === undefined ? '' : `, (b) ${snap === undefined ? '-' : `${fmt(snap.seconds / s.rawSnapshot.seconds, 0)}x`}, (b*) ${fmt(local.seconds / s.rawSnapshot.seconds, 0)}x; (a) / (b*): ${fmt(headline.seconds / local.seconds, 1)}`),
    `target history bootstrap >= 20,000 entries/s: ${pass(headline.entriesPerSecond >= 20_000)} (${label(places[0])}: ${fmt(headline.entriesPerSecond)} entries/s)`,
    ...(s === undefined || local === undefined
      ? []
      : [`target bootstrap into ${fmt(b.entries)} entries from a snapshot < 30 s: ` +
          (snap === undefined ? `FAIL (did not complete: ${s.snapshotError ?? '?'}); (b*) without the block transfer: ${fmt(local.seconds, 2)} s, ${pass(local.seconds < 30)}` : `${pass(snap.seconds < 30)} (${fmt(snap.seconds, 2)} s)`)]),
    ...places.flatMap(p => {
      const h = b.histories[p] as Phase
      return [
        `${label(p)} breakdown (wall time inside the calls, overlapping): ${breakdown(h)}${h.compactedDuring ? '; the new node compacted its own history during or right after the pull' : ''}`,
        `${label(p)} CPU: ${fmt(cpu(h), 1)} CPU-s for source and new node (this process ${fmt(h.load.cpuCores * h.load.seconds, 1)}${p === 'child' ? `, the source's process ${fmt(h.sourceCpuSeconds, 1)}` : ''}), ${fmt(1e6 * cpu(h) / b.entries, 0)} CPU-µs per entry${h.load.mainThreadSeconds === undefined ? '' : ` (new node: ${fmt(1e6 * h.load.cpuCores * h.load.seconds / b.entries, 0)}, of which its main thread ${fmt(1e6 * h.load.mainThreadSeconds / b.entries, 0)})`}; ` +
          `pages asked ahead ${h.askedAhead} (dropped ${h.askedAheadDropped}); compactions deferred while catching up ${h.compactionsDeferred}; ` +
          `after catching up, ${fmt(h.settleSeconds, 2)} s until the new node's sync was idle (a deferred compaction runs then; not in its time)`,
        `${label(p)} load: ${loadText(h.load)}`
      ]
    }),
    ...(snap === undefined ? [] : [`(b) breakdown: snapshot loaded at ${snap.snapshotLoadedAt === undefined ? '?' : fmt(snap.snapshotLoadedAt, 2)} s, then the tail; ${breakdown(snap)}`]),
    ...(local === undefined ? [] : [`(b*) breakdown: loadSnapshot took ${local.snapshotLoadedAt === undefined ? '?' : fmt(local.snapshotLoadedAt, 2)} s, then the tail; ${breakdown(local)}`]),
    `load: ${places.map(p => `source build ${p === 'child' ? 'in its own process' : 'here'} ${loadText((b.builds[p] as Build).load)}`).join('; ')}${snap === undefined ? '' : `; (b) ${loadText(snap.load)}`}${local === undefined ? '' : `; (b*) ${loadText(local.load)}`}`,
    ...(s === undefined ? [] : [`source compaction (compact(true)): ${fmt(s.compact.seconds, 2)} s; snapshot of ${fmt(s.compact.snapshotEntries)} entries in ${s.compact.snapshotBlocks} blocks, ${fmt(s.compact.snapshotBytes / MB, 1)} MB; ${fmt(s.compact.prunedEntries)} entries pruned (the rest not yet seen by every author); the tail was received after it`]),
    ...places.map(p => { const x = b.builds[p] as Build; return `source build breakdown (${p === 'child' ? 'own process' : 'here'}): verify ${fmt(x.verifyMs / 1000, 2)} s, LevelDB batches ${fmt(x.kvBatchMs / 1000, 2)} s (${x.batches}), gets ${fmt(x.kvGetMs / 1000, 2)} s` }),
    `per entry, on ${m.sample} entries: decodeEntry ${fmt(m.decodeUs, 1)} µs (canonical check included), encodeEntry ${fmt(m.reencodeUs, 1)} µs (the re-encode only non-canonical-looking entries still cost), encodeEntryBody ${fmt(m.encodeBodyUs, 1)} µs, CID ${fmt(m.cidUs, 1)} µs, ` +
      `signature verify ${fmt(m.verifyUs, 1)} µs (peerIdVerifier, one key object per author); as receive does it, pages of ${fmt(PAGE)} authenticated as a batch (CIDs as text included): ${fmt(m.batchAuthUs, 1)} µs`
  ]
}

// ------------------------------------------------------------------- main

/** Set in the re-run, so that it never re-runs itself again. */
const RERUN_MARK = 'SHOAL_BENCH_RERUN'

/** True when this process has the daemon's node flags (by name: a value of the user's counts) and malloc settings already. */
function runsAsDaemon (): boolean {
  return missingDaemonFlags({ execArgv: process.execArgv, env: process.env }).length === 0 && withMallocTunables(process.env).GLIBC_TUNABLES === process.env.GLIBC_TUNABLES
}

/**
 * Re-run this process with a larger libuv pool, the daemon's V8 flags (those
 * the command line does not set itself) and its malloc settings: all must be
 * set before the process starts.
 */
async function rerunAsDaemon (size: number): Promise<number> {
  const child = spawn(process.execPath, daemonChildArgs({ execArgv: process.execArgv, argv: process.argv, env: process.env }), {
    stdio: 'inherit',
    env: { ...withMallocTunables(process.env), UV_THREADPOOL_SIZE: String(size), [RERUN_MARK]: '1' }
  })
  const forward = (signal: NodeJS.Signals): void => { child.kill(signal) }
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  return await new Promise(resolve => {
    child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)))
  })
}

async function main (): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))

  if (opts.historySource !== undefined) return await serveHistorySource(opts.historySource, opts.settle)
  // re-run once (RERUN_MARK), unless told to run in place (--threadpool 0)
  if (opts.threadpool !== 0 && process.env[RERUN_MARK] === undefined) {
    const pool = opts.threadpool > 0 ? opts.threadpool : Number(process.env.UV_THREADPOOL_SIZE ?? Math.min(1024, 4 * Math.max(opts.converge ? opts.nodes : 3, 3)))
    if (String(pool) !== process.env.UV_THREADPOOL_SIZE || !runsAsDaemon()) return await rerunAsDaemon(pool)
  }
  installCleanup()
  process.once('SIGINT', () => { void stopAll() })
  process.once('SIGTERM', () => { void stopAll() })
  const work = await mkdtemp(join(opts.dir, 'shoal-bench-converge-'))
  if (!opts.keep) tempDirs.add(work)
  log(`working dir ${work}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, node flags ${process.execArgv.join(' ') || '(none)'}, GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? '(unset)'}`)
  const results: { converge?: ConvergeResult, bootstrap?: BootstrapResult } = {}
  try {
    if (opts.converge) {
      results.converge = await converge(opts, work)
      results.converge.idleApplyMs = await idleApply(work, 200, opts.nodes)
    }
    if (opts.bootstrap) results.bootstrap = await bootstrap(opts, work)
  } finally {
    await stopAll()
    if (opts.keep) log(`kept ${work}`)
    else { await rm(work, { recursive: true, force: true }); tempDirs.delete(work) }
  }
  const out = [`Node ${process.version}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4'}, node flags ${process.execArgv.join(' ') || '(none)'}`, '']
  if (results.converge !== undefined) out.push(...reportConverge(results.converge), '')
  if (results.bootstrap !== undefined) out.push(...reportBootstrap(results.bootstrap), '')
  process.stdout.write(out.join('\n'))
  if (opts.json) process.stdout.write(JSON.stringify(results, (_, v) => typeof v === 'number' && Number.isNaN(v) ? null : v) + '\n')
  return 0
}

main().then(code => { process.exit(code) }, (err: any) => {
  process.stderr.write(`bench/converge: ${String(err?.stack ?? err?.message ?? err)}\n`)
  void stopAll().finally(() => { process.exit(isInterrupted() ? 130 : 1) })
})
