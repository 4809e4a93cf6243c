/**
 * Durability figures, each next to its ceiling in the same run:
 *
 *   npm run build && node dist/bench/durability.js [--size 1GiB] [--nodes 8] [--keep]
 *     [--reads-only] [--rounds N] [--warm] [--holder-uplink MBPS] [--cpu-prof DIR] [--cpu-prof-all]
 *
 * `--holder-uplink MBPS` gives every other daemon an uplink of MBPS MB/s
 * to the reader for the reads (bench/uplinks.ts: tc on `lo`, root only), as
 * on a network where each holder's uplink bounds what it serves: on bare
 * loopback the reader's CPU bounds a read from one holder and from k alike.
 * `--reads-only` skips the timed adds' second striped file and the repair
 * (the reads need one striped and one plain file); `--rounds N` times the
 * one-holder and healthy striped `cat` N times, alternating, for same-run
 * ratios, each round's one-holder `cat` on a file of its own (a read keeps
 * part of a plain file as a cache, and `gc` keeps a visible file's blocks:
 * reading one file again would find part of it here); `--warm` first adds a
 * file of a quarter of the size each way, untimed (`--pin none`, then
 * `--wait`), so that the timed adds find daemons that have written and
 * placed before, as in a cluster at work (a daemon's first add pays for its
 * code's compilation and its first pages); `--cpu-prof DIR` runs the reading daemon with `--cpu-prof` (its
 * profile is written to DIR when the bench stops it); with `--cpu-prof-all`
 * every daemon is profiled, daemon i in DIR/node<i>. Each timed `cat` logs
 * the CPU seconds of every daemon (the reader last).
 *
 * Eight nodes by default: with two holders stopped, six live peers can still
 * take the six distinct shards of a stripe (repair never doubles them up).
 *
 * 1. encode: the coder alone (4+2 over 1 MiB shards, in memory) — the
 *    library's figure — next to nothing else: it is the ceiling of coding;
 *    and its rebuild of such stripes with two data shards lost, the ceiling
 *    of a degraded read's decoding.
 * 2. swarm write: `shoal add --pin ec:4+2 --wait` on daemon 0 of N (import, encode,
 *    commit, place every shard on its peer) next to the raw libp2p stream
 *    rate (tcp+pnet+noise+yamux, one stream between two processes, the same file;
 *    bench/raw-stream.ts) and to `shoal add --pin none` of a file of the same
 *    size on the same daemon (import only, no network). The writer's log
 *    gives the time of each phase (import, encode, place). Next to it, the
 *    floor of `--wait` on this machine: the plain add's CPU, the coder's,
 *    the raw stream's per byte for the bytes the writer sent, `dd
 *    conv=fdatasync`'s per byte for the holders' durable writes of them, and
 *    the other daemons' idle CPU meanwhile, spread over every core (the
 *    daemons share them), as a ratio to the plain add's time (see
 *    `waitFloor`).
 * 3. reads on the last daemon: `cat` of a file only the writer holds (one
 *    holder, the ceiling of a striped read), healthy `cat`, then degraded `cat` with two
 *    holders stopped.
 *    Then the same file added again with `--wait` at another path: its
 *    holders have its shards, and the bytes the writer sends show what it
 *    pushed again (the `held` of their answers: none).
 * 4. repair: after the grace period `shoal repair --wait` on every live
 *    daemon; bytes moved per rebuilt shard next to the k-shard minimum.
 *
 * Daemons are real processes on 127.0.0.1 (open swarm), each in its own temp
 * repo, all connected to each other. MB = 10^6 bytes.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiClient } from '../cli/client.js'
import { createErasureCoder } from '../node/durability/erasure.js'
import type { PeerInfo } from '../node/api/status-types.js'
import { cliOk, crc32Function, fmt, installCleanup, log, median, spawnDaemon, tempDirs, writeRandomFile, writeRandomFileWithCrc, type BenchDaemon } from './harness.js'
import { addIo, cpuOf, describeIo, ioSince, machineCpu, mainAndRestCpu, mainThreadIoOf, minorFaultsOf, rawStream, selfCpu, settle, threadCpuOf } from './raw-stream.js'
import { formatSwarmKey, parseSwarmKey } from '../protocol/swarm-key.js'
import { shapeUplinks, type Uplinks } from './uplinks.js'

const MiB = 1024 * 1024
const K = 4
const M = 2
const GRACE_MS = 3000

interface Options { size: number, nodes: number, keep: boolean, readsOnly: boolean, rounds: number, warm: boolean, holderUplink?: number, cpuProf?: string, cpuProfAll: boolean }

function parseArgs (argv: string[]): Options {
  const o: Options = { size: 1024 * MiB, nodes: 8, keep: false, readsOnly: false, rounds: 1, warm: false, cpuProfAll: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--size') {
      const m = /^(\d+)(MiB|GiB)$/.exec(argv[++i] ?? '')
      if (m === null) throw new Error('--size takes NMiB or NGiB')
      o.size = Number(m[1]) * (m[2] === 'GiB' ? 1024 : 1) * MiB
    } else if (a === '--nodes') o.nodes = Number(argv[++i])
    else if (a === '--keep') o.keep = true
    else if (a === '--reads-only') o.readsOnly = true
    else if (a === '--holder-uplink') {
      o.holderUplink = Number(argv[++i])
      if (!(o.holderUplink > 0)) throw new Error('--holder-uplink takes a rate in MB/s above 0')
    }
    else if (a === '--warm') o.warm = true
    else if (a === '--rounds') o.rounds = Number(argv[++i])
    else if (a === '--cpu-prof') o.cpuProf = argv[++i]
    else if (a === '--cpu-prof-all') o.cpuProfAll = true
    else throw new Error(`unknown option ${a}`)
  }
  if (!Number.isSafeInteger(o.nodes) || o.nodes < K + M) throw new Error(`--nodes must be at least ${K + M}`)
  if (!Number.isSafeInteger(o.rounds) || o.rounds < 1) throw new Error('--rounds must be a positive integer')
  if (o.cpuProf === '') throw new Error('--cpu-prof takes a directory')
  if (o.cpuProfAll && o.cpuProf === undefined) throw new Error('--cpu-prof-all needs --cpu-prof DIR')
  return o
}

const mbps = (bytes: number, seconds: number): number => bytes / seconds / 1e6

async function encodeCeiling (): Promise<number> {
  const coder = await createErasureCoder()
  const data = Array.from({ length: K }, () => new Uint8Array(randomBytes(MiB)))
  coder.encode(data, M) // warm-up
  const rounds = 128
  const t0 = performance.now()
  for (let i = 0; i < rounds; i++) coder.encode(data, M)
  return mbps(rounds * K * MiB, (performance.now() - t0) / 1000)
}

/** The coder alone rebuilding 4+2 stripes of 1 MiB shards with two data shards lost (MB/s of data): the ceiling of a degraded read's decoding. */
async function rebuildCeiling (): Promise<number> {
  const coder = await createErasureCoder()
  const data = Array.from({ length: K }, () => new Uint8Array(randomBytes(MiB)))
  const slots: Array<Uint8Array | undefined> = [...data, ...coder.encode(data, M)]
  slots[0] = undefined
  slots[2] = undefined
  coder.reconstruct(slots, K, M) // warm-up
  const rounds = 64
  const t0 = performance.now()
  for (let i = 0; i < rounds; i++) coder.reconstruct(slots, K, M)
  return mbps(rounds * K * MiB, (performance.now() - t0) / 1000)
}

/** A node of the bench's private swarm (every node shares `keyFile`, as members of a default swarm do). */
async function initRepo (dir: string, i: number, keyFile: string): Promise<string> {
  const repo = join(dir, `node${i}`)
  await cliOk(['--repo', repo, 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--swarm-key', keyFile])
  const configFile = join(repo, 'config.json')
  const config = JSON.parse(await readFile(configFile, 'utf8'))
  config.durability = { ...config.durability, grace: GRACE_MS, checkInterval: 0, repairRate: 1024 * MiB }
  await writeFile(configFile, JSON.stringify(config, null, 2))
  return repo
}

async function json<T> (args: string[]): Promise<T> {
  return JSON.parse((await cliOk(['--json', ...args])).stdout) as T
}

/** One timed `cat`: its seconds and the CPU seconds of the reading daemon and of all the others. */
interface CatRun { seconds: number, readerCpu: number, othersCpu: number }

/** The median run by seconds, the faster middle one for an even count (reported when `--rounds` is more than 1). */
function medianRun (runs: CatRun[]): CatRun {
  return [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor((runs.length - 1) / 2)]
}

/** A timed `cat` on `repo`'s daemon, with the CPU seconds the reading daemon and all the others used meanwhile. */
async function timedCat (repo: string, path: string, expected: { crc: number, size: number }, daemons: Array<BenchDaemon | undefined>): Promise<CatRun> {
  const before = cpuOfAll(daemons)
  const at = daemons.findIndex(d => d?.repo === repo)
  const readerPid = daemons[at]?.pid
  const threadsBefore = readerPid === undefined ? new Map<number, number>() : threadCpuOf(readerPid)
  const machineBefore = machineCpu()
  // checked by crc32, not sha-256: on two cores this bench's own sha-256 of the output took ~1 CPU-s of a
  // ~3 s read from the daemons it measures, a quarter of the machine's busy time (docs/benchmarks.md)
  const crc32 = crc32Function()
  let crc = 0
  let size = 0
  // the monotonic clock of a CPU profile (µs): the window of this cat in the reader's profile
  const from = process.hrtime.bigint() / 1000n
  const r = await cliOk(['--repo', repo, 'cat', path], chunk => { crc = crc32(chunk, crc); size += chunk.length })
  const used = cpuOfAll(daemons).map((c, i) => c - before[i])
  const machineAfter = machineCpu()
  if (machineBefore !== undefined && machineAfter !== undefined) {
    // every process here: the daemons, the `cat` command, and this bench reading what it prints
    const busy = machineAfter - machineBefore
    log(`  machine: ${fmt(busy, 2)} CPU-s busy, ${fmt(100 * busy / (r.seconds * cpus().length), 0)} % of its ${cpus().length} cores; the daemons ${fmt(used.reduce((a, b) => a + b, 0), 2)}`)
  }
  log(`cat ${path}: monotonic µs ${from}–${process.hrtime.bigint() / 1000n}; CPU s per daemon ${used.map(c => fmt(c, 2)).join(' ')}`)
  if (readerPid !== undefined) {
    // is the reader's event loop the bound? its main thread against the rest (libuv's pool hashing what arrives, V8's helpers)
    const { main, rest } = mainAndRestCpu(readerPid, threadsBefore)
    log(`  reader CPU s: main thread ${fmt(main, 2)} (${fmt(100 * main / r.seconds, 0)} % of the read's time), other threads ${fmt(rest, 2)}`)
  }
  if (crc !== expected.crc || size !== expected.size) throw new Error(`cat ${path} on ${repo} is not byte-identical (${size} bytes, crc32 ${crc} against ${expected.size}, ${expected.crc})`)
  return { seconds: r.seconds, readerCpu: used[at], othersCpu: used.reduce((a, b) => a + b, 0) - used[at] }
}

/** A CLI `add` (or any command), with the CPU seconds each daemon used meanwhile (0 for a stopped one). */
async function timedAdd (daemons: Array<BenchDaemon | undefined>, args: string[]): Promise<{ seconds: number, cpu: number[] }> {
  const before = cpuOfAll(daemons)
  const writer = daemons[0]
  const threadsBefore = writer === undefined ? new Map<number, number>() : threadCpuOf(writer.pid)
  const holders = daemons.slice(1).filter((d): d is BenchDaemon => d !== undefined)
  const holdersBefore = holders.map(d => threadCpuOf(d.pid))
  const faultsBefore = daemons.map(d => minorFaultsOf(d?.pid) ?? 0)
  const ioBefore = daemons.map(d => mainThreadIoOf(d?.pid))
  // the monotonic clock of a CPU profile (µs): the window of this add in the daemons' profiles
  const from = process.hrtime.bigint() / 1000n
  const r = await cliOk(args)
  log(`${args.slice(2).join(' ')}: monotonic µs ${from}–${process.hrtime.bigint() / 1000n}`)
  if (writer !== undefined) {
    // where the writer's CPU went, by thread (no profiler: it distorts eight daemons on two cores)
    const used = [...threadCpuOf(writer.pid)].map(([tid, s]) => [tid, s - (threadsBefore.get(tid) ?? 0)] as const).filter(([, s]) => s >= 0.01)
    const main = used.find(([tid]) => tid === writer.pid)?.[1] ?? 0
    // by thread id, so in creation order: V8's helpers and libuv's pool first, then the workers (leaf chunker, parity) as they started
    const others = used.filter(([tid]) => tid !== writer.pid).sort(([a], [b]) => a - b).map(([tid, s]) => `${tid - writer.pid}:${fmt(s, 2)}`)
    log(`  writer CPU s by thread: main ${fmt(main, 2)}, others (id - pid: s) ${others.join(' ')}`)
  }
  if (holders.length > 0) {
    // the other daemons together: their main threads, and every other thread (V8's helpers, libuv's pool)
    let main = 0
    let rest = 0
    holders.forEach((d, i) => {
      const used = mainAndRestCpu(d.pid, holdersBefore[i])
      main += used.main
      rest += used.rest
    })
    const faults = daemons.map((d, i) => (minorFaultsOf(d?.pid) ?? 0) - faultsBefore[i])
    log(`  other daemons' CPU s: main threads ${fmt(main, 2)}, other threads ${fmt(rest, 2)}; minor page faults: writer ${faults[0]}, others ${faults.slice(1).reduce((a, b) => a + b, 0)}`)
    // how finely the shards arrive: each read on a main thread is one wakeup of its event loop
    const io = daemons.map((d, i) => ioSince(ioBefore[i], mainThreadIoOf(d?.pid)))
    const others = io.slice(1).reduce(addIo)
    log(`  main threads' I/O calls: writer ${describeIo(io[0])}; other daemons ${describeIo(others)}`)
  }
  return { seconds: r.seconds, cpu: cpuOfAll(daemons).map((c, i) => c - before[i]) }
}

/** CPU seconds each daemon used so far (0 for a stopped one). */
function cpuOfAll (daemons: Array<BenchDaemon | undefined>): number[] {
  return daemons.map(d => d === undefined ? 0 : cpuOf(d.pid) ?? 0)
}

/** Bytes `repo`'s daemon has sent to all its peers so far (encrypted, with framing: what crosses its sockets). */
async function bytesSent (repo: string): Promise<number> {
  const peers = await (await ApiClient.connect(repo)).json<PeerInfo[]>('GET', '/api/v0/status/peers')
  return peers.reduce((sum, p) => sum + (p.bytesOut ?? Number.NaN), 0)
}

/** The least CPU an `add --wait` needs on this machine, from ceilings measured in the same run (see {@link waitFloor}). */
interface WaitFloor {
  /** CPU seconds: the plain add's, the coder's, the transport's and the disk's for the bytes sent. */
  cpu: number
  /** Of `cpu`, the holders' durable writes of the bytes sent (at `dd conv=fdatasync`'s CPU per byte). */
  disk: number
  /** CPU seconds the other daemons spend idle in the time beyond the plain add's. */
  idle: number
  /** Seconds: that CPU spread over every core without a moment idle (at least the plain add's own time). */
  seconds: number
  /** `seconds` over the plain add's time: no `--wait` on this machine can do better. */
  ratio: number
}

/**
 * A lower bound of `add --wait`'s time on this machine. The striped add
 * does everything the plain add does (its daemons' CPU, measured), codes the
 * parity (the coder alone's rate), carries `sent` bytes of shards to their
 * holders, which at the least costs what the raw stream's sender and
 * receiver spend per byte (tcp+pnet+noise+yamux, and a sha-256 at the
 * receiver, as a holder checks every shard), and the holders write those
 * bytes durably before they acknowledge them, which costs at least what
 * `dd conv=fdatasync` spends per byte (`diskCpuPerByte`). The other daemons
 * keep spending their idle CPU (`idlePerSecond`, measured with nothing to
 * do) for as long as the add takes beyond the plain add's time (which
 * already counts theirs). Left out, so the bound stays below the truth: the
 * CLI's upload, the holders' pack index and the kernel's writeback threads,
 * the placement's requests and acknowledgements. On a machine whose daemons
 * share its cores, a `--wait` goal below this ratio cannot be met by any
 * change to the add itself.
 */
function waitFloor (init: { plainSeconds: number, plainCpu: number, size: number, encodeMBps: number, sent: number, raw: { bytes: number, senderCpu?: number, receiverCpu: number }, diskCpuPerByte: number, idlePerSecond: number, cores: number }): WaitFloor | undefined {
  const { plainSeconds, plainCpu, size, encodeMBps, sent, raw, diskCpuPerByte, idlePerSecond, cores } = init
  if (raw.senderCpu === undefined || !Number.isFinite(sent)) return undefined
  const perByte = (raw.senderCpu + raw.receiverCpu) / raw.bytes
  const disk = sent * diskCpuPerByte
  const busy = plainCpu + size / (encodeMBps * 1e6) + sent * perByte + disk
  // T = (busy + idlePerSecond × (T − plain)) / cores, solved for T
  const seconds = Math.max(plainSeconds, (busy - idlePerSecond * plainSeconds) / (cores - idlePerSecond))
  const idle = idlePerSecond * (seconds - plainSeconds)
  return { cpu: busy + idle, disk, idle, seconds, ratio: seconds / plainSeconds }
}

/**
 * CPU seconds per byte of writing `file` durably: `dd bs=1M conv=fdatasync`
 * into `dir` (the daemons' disk), its user and system time (the copies into
 * the page cache; the kernel's writeback threads are not counted).
 */
function durableWriteCpuPerByte (file: string, dir: string, size: number): number {
  const out = join(dir, 'dd-floor.out')
  const before = selfCpu().reaped
  const r = spawnSync('dd', [`if=${file}`, `of=${out}`, 'bs=1M', 'conv=fdatasync'], { encoding: 'utf8' })
  const cpu = selfCpu().reaped - before
  rmSync(out, { force: true })
  if (r.status !== 0) throw new Error(`dd failed: ${r.stderr}`)
  return cpu / size
}

/** CPU seconds per second that `daemons` spend with nothing to do, over `seconds`. */
async function idleCpuRate (daemons: BenchDaemon[], seconds: number): Promise<number> {
  const before = daemons.map(d => cpuOf(d.pid) ?? 0)
  const started = performance.now()
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  const elapsed = (performance.now() - started) / 1000
  return daemons.reduce((sum, d, i) => sum + ((cpuOf(d.pid) ?? 0) - before[i]), 0) / elapsed
}

/** The phase times (ms) the writer logged for its add of `path`. */
async function addPhases (logFile: string, path: string): Promise<{ import: number, encode: number, place?: number } | undefined> {
  for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
    if (!line.includes('"msg":"added"')) continue
    const entry = JSON.parse(line) as { path?: string, ms?: { import: number, encode: number, place?: number } }
    if (entry.path === path) return entry.ms
  }
  return undefined
}

/** Seconds until the writer's placement of `path` is final (`pin status` no longer pending), polled; at most 10 min. */
async function untilPlaced (writer: string, path: string): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < 600_000) {
    const status = await json<{ pending?: boolean }>(['--repo', writer, 'pin', 'status', path])
    if (status.pending !== true) return (performance.now() - started) / 1000
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  throw new Error(`${path} was not placed within 10 min`)
}

async function main (): Promise<number> {
  installCleanup()
  const opts = parseArgs(process.argv.slice(2))
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-durability-'))
  if (!opts.keep) tempDirs.add(dir)
  log(`working dir ${dir}; ${opts.nodes} daemons; file ${fmt(opts.size / MiB)} MiB`)
  // two different files: the same bytes twice would share blocks, and the
  // unstriped copy would keep every leaf on the writer
  const file = join(dir, 'data.bin')
  const check = await writeRandomFileWithCrc(file, opts.size)
  // one plain file per round: the reader keeps part of a plain file it read (a cache gc does not drop)
  const others = Array.from({ length: opts.rounds }, (_, r) => join(dir, `other-${r}.bin`))
  const otherChecks: Array<{ sha: string, crc: number, size: number }> = []
  for (const other of others) otherChecks.push(await writeRandomFileWithCrc(other, opts.size))
  const third = join(dir, 'third.bin')
  await writeRandomFile(third, opts.size)

  const encode = await encodeCeiling()
  log(`coder alone (4+2, 1 MiB shards): ${fmt(encode)} MB/s of data`)
  const rebuild = await rebuildCeiling()
  log(`coder alone rebuilding (4+2, 1 MiB shards, 2 data shards lost): ${fmt(rebuild)} MB/s of data`)
  await settle(20)
  const keyFile = join(dir, 'swarm.key')
  await writeFile(keyFile, formatSwarmKey(randomBytes(32)))
  const raw = await rawStream(file, parseSwarmKey(await readFile(keyFile, 'utf8')), 8)
  if (raw.sha !== check.sha) throw new Error('the raw stream did not deliver the file byte-identical')
  const rawRate = mbps(raw.bytes, raw.seconds)
  log(`raw stream (tcp+pnet+noise+yamux, one stream): ${fmt(rawRate)} MB/s; CPU s of the sender ${raw.senderCpu === undefined ? '?' : fmt(raw.senderCpu, 2)}, of the receiver ${fmt(raw.receiverCpu, 2)} (with its sha-256)`)

  // the holders' durable writes: the disk's CPU per byte, on the daemons' disk (the same temp dir)
  const diskCpuPerByte = durableWriteCpuPerByte(file, dir, opts.size)
  log(`dd bs=1M conv=fdatasync of the file: ${fmt(diskCpuPerByte * 1e6 * 1000, 2)} ms of CPU per MB`)
  const repos = await Promise.all(Array.from({ length: opts.nodes }, async (_, i) => await initRepo(dir, i, keyFile)))
  const daemons: Array<BenchDaemon | undefined> = []
  // the reader is the last daemon
  const profOf = (i: number): string | undefined => opts.cpuProf === undefined
    ? undefined
    : opts.cpuProfAll ? join(opts.cpuProf, `node${i}`) : i === repos.length - 1 ? opts.cpuProf : undefined
  for (const [i, repo] of repos.entries()) daemons.push(await spawnDaemon(repo, `${repo}.log`, profOf(i)))
  let uplinks: Uplinks | undefined
  try {
    const ids = await Promise.all(repos.map(async repo => await json<{ id: string, addresses: string[] }>(['--repo', repo, 'id'])))
    for (let i = 0; i < repos.length; i++) {
      for (let j = i + 1; j < repos.length; j++) await cliOk(['--repo', repos[i], 'peers', 'connect', ids[j].addresses[0]])
    }
    const writer = repos[0]
    if (opts.warm) {
      for (const [i, pin] of ['none', `ec:${K}+${M}`].entries()) {
        const warmup = join(dir, `warm-${i}.bin`)
        await writeRandomFile(warmup, Math.max(MiB, Math.floor(opts.size / 4)))
        await cliOk(['--repo', writer, 'add', warmup, '--to', `/warm-${i}.bin`, '--pin', pin, ...(pin === 'none' ? [] : ['--wait'])])
      }
      await settle(20)
      log('warmed up: one untimed add each way')
    }
    // what the other daemons spend with nothing to do (libp2p's keep-alives, the DHT, the namespace's heartbeats)
    await settle(20)
    const idlePerSecond = await idleCpuRate(daemons.slice(1).filter((d): d is BenchDaemon => d !== undefined), 5)
    log(`the other ${opts.nodes - 1} daemons idle: ${fmt(idlePerSecond, 3)} CPU s per second together`)
    const plain = await timedAdd(daemons, ['--repo', writer, 'add', others[0], '--to', '/plain-0.bin', '--pin', 'none'])
    for (let r = 1; r < others.length; r++) await cliOk(['--repo', writer, 'add', others[r], '--to', `/plain-${r}.bin`, '--pin', 'none'])
    // --wait: returns once every shard is on its holder (a plain add returns when the file is durable here)
    const sentBefore = await bytesSent(writer)
    const striped = await timedAdd(daemons, ['--repo', writer, 'add', file, '--to', '/striped.bin', '--pin', `ec:${K}+${M}`, '--wait'])
    const sent = await bytesSent(writer) - sentBefore
    log(`add --pin none: ${fmt(mbps(opts.size, plain.seconds))} MB/s; add --pin ec:4+2 --wait (encode + place on ${opts.nodes} nodes): ${fmt(mbps(opts.size, striped.seconds))} MB/s`)
    // on one machine the daemons share its cores: the CPU all of them used bounds how fast --wait can be here
    for (const [what, a] of [['--pin none', plain], ['--wait', striped]] as const) {
      log(`add ${what}: CPU s of the writer ${fmt(a.cpu[0], 2)}, of the other daemons ${fmt(a.cpu.slice(1).reduce((x, y) => x + y, 0), 2)}`)
    }
    const cores = cpus().length
    const waitRatio = striped.seconds / plain.seconds
    const floor = waitFloor({ plainSeconds: plain.seconds, plainCpu: plain.cpu.reduce((x, y) => x + y, 0), size: opts.size, encodeMBps: encode, sent, raw, diskCpuPerByte, idlePerSecond, cores })
    if (floor !== undefined) {
      log(`add --wait floor on this machine (${cores} cores shared by ${opts.nodes} daemons): ${fmt(floor.cpu, 2)} CPU s at the least (the plain add's daemons, the coder alone, ${fmt(sent / 1e6)} MB sent at the raw stream's CPU per byte, written durably at dd's: ${fmt(floor.disk, 2)}, the others idle meanwhile: ${fmt(floor.idle, 2)}) = ${fmt(floor.seconds, 2)} s, ${fmt(floor.ratio, 2)} x the time of --pin none; measured ${fmt(waitRatio, 2)} x`)
    }
    // the same bytes added again at another path: its holders name the shards they hold already, and none is sent
    const againSentBefore = await bytesSent(writer)
    const again = await timedAdd(daemons, ['--repo', writer, 'add', file, '--to', '/striped-again.bin', '--pin', `ec:${K}+${M}`, '--wait'])
    const againSent = await bytesSent(writer) - againSentBefore
    log(`the same file added again --wait: ${fmt(mbps(opts.size, again.seconds))} MB/s = ${fmt(again.seconds / plain.seconds, 2)} x the time of --pin none, ${fmt(again.seconds / striped.seconds, 2)} x the first --wait's; the writer sent ${fmt(againSent / 1e6, 1)} MB (the first: ${fmt(sent / 1e6)} MB)`)
    // a plain add returns once the file is durable on the writer; its placement goes on after
    let background: { seconds: number } | undefined
    if (!opts.readsOnly) {
      background = await cliOk(['--repo', writer, 'add', third, '--to', '/background.bin', '--pin', `ec:${K}+${M}`])
      const placedAfter = await untilPlaced(writer, '/background.bin')
      log(`add --pin ec:4+2 (placement in the background): ${fmt(mbps(opts.size, background.seconds))} MB/s; placed ${fmt(placedAfter, 1)} s after it returned`)
    }
    const phases = await addPhases(`${writer}.log`, '/striped.bin')
    if (phases !== undefined) log(`striped add phases: import ${fmt(phases.import / 1000, 1)} s, encode ${fmt(phases.encode / 1000, 1)} s, place ${fmt((phases.place ?? 0) / 1000, 1)} s`)

    const reader = repos[repos.length - 1]
    // wait until the reader knows the files
    for (let i = 0; i < 200; i++) {
      const r = await cliOk(['--repo', reader, 'ls', '/']).catch(() => undefined)
      if (r?.stdout.includes('striped.bin') === true && r.stdout.includes(`plain-${opts.rounds - 1}.bin`)) break
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    // the writer keeps its own shards only, as once its collector has run: the reads meet the file's steady
    // state, where a leaf is on its shard holder alone (not also in the writer's whole copy of a moment ago)
    await cliOk(['--repo', writer, 'gc'])
    if (opts.holderUplink !== undefined) {
      const live = daemons.filter((d): d is BenchDaemon => d !== undefined)
      uplinks = shapeUplinks({ senders: live.slice(0, -1).map(d => d.pid), receiver: live[live.length - 1].pid, mbps: opts.holderUplink })
      log(`every other daemon's uplink to the reader: ${fmt(opts.holderUplink)} MB/s (tc on lo); connections shaped, per daemon: ${uplinks.shaped.join(' ')}`)
    }
    // the same size from one holder: the writer alone holds /plain-<round>.bin (pin none),
    // a file the reader has never read
    const singles: CatRun[] = []
    const healthies: CatRun[] = []
    for (let round = 0; round < opts.rounds; round++) {
      await cliOk(['--repo', reader, 'gc'])
      await settle(30)
      singles.push(await timedCat(reader, `/plain-${round}.bin`, otherChecks[round], daemons))
      await settle(30)
      healthies.push(await timedCat(reader, '/striped.bin', check, daemons))
      if (opts.rounds > 1) log(`round ${round + 1}: one holder ${fmt(singles[round].seconds, 2)} s, healthy striped ${fmt(healthies[round].seconds, 2)} s (ratio ${fmt(singles[round].seconds / healthies[round].seconds, 2)}); reader CPU ${fmt(singles[round].readerCpu, 2)} / ${fmt(healthies[round].readerCpu, 2)} s`)
    }
    if (opts.rounds > 1) log(`healthy striped / one holder, median of the ${opts.rounds} same-round ratios: ${fmt(median(singles.map((r, i) => r.seconds / healthies[i].seconds)), 2)}`)
    const singleCat = medianRun(singles)
    const healthyCat = medianRun(healthies)
    const single = singleCat.seconds
    const healthy = healthyCat.seconds
    const status = await json<{ stripes: Array<{ shards: Array<{ holders: string[] }> }> }>(['--repo', writer, 'pin', 'status', '/striped.bin'])
    const holders0 = status.stripes[0].shards.map(s => s.holders[0])
    const victims = holders0.map(h => ids.findIndex(x => x.id === h)).filter(i => i > 0 && i < repos.length - 1).slice(0, 2)
    for (const v of victims) { await daemons[v]?.stop(); daemons[v] = undefined }
    // the reader has the file cached now: read it on a fresh node instead? No — drop its cache with gc
    await cliOk(['--repo', reader, 'gc'])
    await settle(30)
    const degradedCat = await timedCat(reader, '/striped.bin', check, daemons)
    const degraded = degradedCat.seconds
    for (const [what, c] of [['one holder', singleCat], ['healthy striped', healthyCat], ['degraded', degradedCat]] as const) {
      log(`cat (${what}): ${fmt(c.seconds, 2)} s; CPU s of the reading daemon ${fmt(c.readerCpu, 2)}, of the other daemons ${fmt(c.othersCpu, 2)}`)
    }
    if (uplinks !== undefined) log(`connections between the reader and the others opened since shaping (not shaped): ${uplinks.unshaped()}`)
    log(`cat on the last node: one holder (pin none) ${fmt(mbps(opts.size, single))} MB/s; healthy striped ${fmt(mbps(opts.size, healthy))} MB/s; with 2 holders down ${fmt(mbps(opts.size, degraded))} MB/s (degraded/healthy ${fmt(healthy / degraded, 2)})`)

    let repaired = 0
    let moved = 0
    if (!opts.readsOnly) await new Promise(resolve => setTimeout(resolve, GRACE_MS + 500))
    for (let i = 0; i < repos.length && !opts.readsOnly; i++) {
      if (daemons[i] === undefined) continue
      const r = await json<{ repaired: number, bytesIn: number, bytesOut: number }>(['--repo', repos[i], 'repair', '--wait'])
      repaired += r.repaired
      moved += r.bytesIn + r.bytesOut
    }
    const perShard = repaired === 0 ? 0 : moved / repaired
    const stripes = status.stripes.length
    const shardMean = opts.size / (stripes * K)
    if (!opts.readsOnly) log(`repair: ${repaired} shards rebuilt, ${fmt(perShard / MiB, 2)} MiB moved per shard; k-shard minimum ≈ ${fmt(K * shardMean / MiB, 2)} MiB (ratio ${fmt(perShard / (K * shardMean), 2)})`)
    process.stdout.write([
      '',
      '| measure | MB/s or MiB | ceiling | ratio |',
      '|---|---:|---:|---:|',
      `| encode 4+2 (coder alone) | ${fmt(encode)} | – | – |`,
      `| rebuild 4+2, 2 data shards lost (coder alone) | ${fmt(rebuild)} | – | – |`,
      `| add --pin ec:4+2 --wait, ${opts.nodes} nodes | ${fmt(mbps(opts.size, striped.seconds))} | ${fmt(rawRate)} (raw stream) | ${fmt(mbps(opts.size, striped.seconds) / rawRate, 2)} |`,
      `| add --pin ec:4+2 --wait, ${opts.nodes} nodes | ${fmt(mbps(opts.size, striped.seconds))} | ${fmt(mbps(opts.size, plain.seconds))} (add --pin none) | ${fmt(plain.seconds / striped.seconds, 2)} |`,
      ...(floor === undefined ? [] : [`| add --wait time / --pin none time: measured, and the floor on ${cores} cores | ${fmt(waitRatio, 2)} × | ${fmt(floor.ratio, 2)} × (floor) | ${fmt(floor.ratio / waitRatio, 2)} |`]),
      ...(background === undefined ? [] : [`| add --pin ec:4+2 (placement in the background), ${opts.nodes} nodes | ${fmt(mbps(opts.size, background.seconds))} | ${fmt(mbps(opts.size, plain.seconds))} (add --pin none) | ${fmt(plain.seconds / background.seconds, 2)} |`]),
      ...(opts.holderUplink === undefined ? [] : [`| (reads: each holder's uplink to the reader ${fmt(opts.holderUplink)} MB/s) | | | |`]),
      `| healthy striped cat (k+m holders) | ${fmt(mbps(opts.size, healthy))} | ${fmt(mbps(opts.size, single))} (one holder) | ${fmt(single / healthy, 2)} |`,
      `| degraded cat (2 holders down) | ${fmt(mbps(opts.size, degraded))} | ${fmt(mbps(opts.size, healthy))} (healthy cat) | ${fmt(healthy / degraded, 2)} |`,
      ...(opts.readsOnly ? [] : [`| repair bytes per rebuilt shard | ${fmt(perShard / MiB, 2)} MiB | ${fmt(K * shardMean / MiB, 2)} MiB (k shards) | ${fmt(perShard / (K * shardMean), 2)} |`]),
      ''
    ].join('\n'))
    return 0
  } finally {
    uplinks?.remove()
    for (const d of daemons) await d?.stop()
  }
}

process.exitCode = await main()
