/**
 * Ingest benchmark: `shoal add` of one large random file through a real
 * daemon, compared with ceilings measured on the same bytes in the same run.
 *
 *   npm run build && node dist/bench/ingest.js [--size 1GiB]
 *     [--chunker fastcdc|size-262144] [--runs N] [--dir DIR]
 *     [--cpu-prof DIR] [--json] [--keep] [--quiet-wait S]
 *
 * Per run and chunker: a fresh repo, `init --api 127.0.0.1:0`, `daemon`, then
 * the timed `add FILE --to /bench --json` (whole CLI process, start-up
 * included), then `cat /bench` hashed with sha-256 and compared with the
 * file's digest. Ceilings: raw tuned classic-level batch put of the file in
 * 256 KiB blocks keyed by their sha-256, `dd bs=4M conv=fsync` of the file,
 * sha-256 of the file, raw file read.
 * MB = 10^6 bytes. See docs/benchmarks.md.
 */
import '../node/polyfills.js'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { children, cliOk, fmt, writeRandomFile, installCleanup, isInterrupted, log, median, parseSize, SHOAL_BIN, spawnDaemon, tempDirs, type BenchDaemon } from './harness.js'
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { ClassicLevel } from 'classic-level'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const MB = 1e6

/** Block size of the raw LevelDB ceiling (Kubo's default leaf size). */
const BLOCK = 256 * KiB
/** Bytes per LevelDB batch in the ceiling, as the block store's write-behind. */
const BATCH_BYTES = 16 * MiB
/** Piece size for file generation and plain reads. */
const PIECE = 4 * MiB

const DEFAULT_CHUNKERS = ['fastcdc', 'size-262144']

interface Options {
  size: number
  chunkers: string[]
  runs: number
  dir: string
  cpuProf?: string
  json: boolean
  keep: boolean
  /** Seconds to wait, before each timed phase, for other processes to go quiet. */
  quietWait: number
}

function usage (): string {
  return [
    'usage: node dist/bench/ingest.js [options]',
    '  --size N          file size: bytes or with KiB/MiB/GiB (KB/MB/GB = 10^3..) (default 1GiB)',
    '  --chunker SPEC    chunker to measure, repeatable or comma-separated (default fastcdc,size-262144)',
    '  --runs N          repeat everything N times, report medians (default 1)',
    '  --dir DIR         where the temp working dir goes, on local disk (default the OS tmpdir)',
    '  --cpu-prof DIR    run each daemon with --cpu-prof, writing profiles into DIR (kept)',
    '  --json            also print the results as one JSON document',
    '  --keep            keep the working dir (repos, file, daemon logs)',
    '  --quiet-wait S    before each timed phase wait up to S seconds for the machine to go quiet (default 300, 0: never)'
  ].join('\n')
}

function parseArgs (argv: string[]): Options {
  const opts: Options = { size: GiB, chunkers: [], runs: 1, dir: tmpdir(), json: false, keep: false, quietWait: 300 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${arg} needs a value\n${usage()}`)
      return v
    }
    switch (arg) {
      case '--size': opts.size = parseSize(value()); break
      case '--chunker': opts.chunkers.push(...value().split(',').filter(s => s !== '')); break
      case '--runs': {
        opts.runs = Number(value())
        if (!Number.isSafeInteger(opts.runs) || opts.runs < 1) throw new Error('--runs must be a positive integer')
        break
      }
      case '--dir': opts.dir = resolve(value()); break
      case '--cpu-prof': opts.cpuProf = resolve(value()); break
      case '--json': opts.json = true; break
      case '--keep': opts.keep = true; break
      case '--quiet-wait': {
        opts.quietWait = Number(value())
        if (!(opts.quietWait >= 0)) throw new Error('--quiet-wait must be a number of seconds >= 0')
        break
      }
      case '-h': case '--help': process.stdout.write(usage() + '\n'); process.exit(0); break
      default: throw new Error(`unknown argument ${JSON.stringify(arg)}\n${usage()}`)
    }
  }
  if (opts.chunkers.length === 0) opts.chunkers = [...DEFAULT_CHUNKERS]
  return opts
}

// ---------------------------------------------------------------- helpers

/** Flush dirty pages so one phase's writeback does not land in the next one's timing. */
function syncDisk (): void {
  spawnSync('sync', { stdio: 'ignore' })
}

let quietWait = 300

/**
 * Before a timed phase: flush dirty pages, then wait (up to `quietWait`
 * seconds) until the machine has been nearly idle for 2 s, so other
 * processes (and our previous phase's compaction) do not land in the timing.
 * Whatever still overlaps is counted by {@link foreignCpu} and reported.
 */
async function settle (): Promise<void> {
  if (isInterrupted()) throw new Error('interrupted')
  syncDisk()
  const deadline = Date.now() + quietWait * 1000
  let warned = false
  for (;;) {
    const a = cpuAccount()
    if (a === undefined) return
    await new Promise(resolve => setTimeout(resolve, 2000))
    const b = cpuAccount()
    if (b === undefined) return
    const busy = b.machine - a.machine
    if (busy < 0.2 || Date.now() > deadline) {
      if (busy >= 0.2) log(`machine still busy (${fmt(busy / 2 / cpus().length * 100)}% of CPU), measuring anyway`)
      return
    }
    if (!warned) { log(`waiting for the machine to go quiet (${fmt(busy / 2 / cpus().length * 100)}% busy)`); warned = true }
  }
}

/** CPU seconds (user + system) a live process has used, from /proc; undefined elsewhere. */
function cpuSeconds (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[11] = utime, fields[12] = stime (fields 14 and 15 of proc(5))
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

/**
 * CPU seconds used machine-wide (/proc/stat) and by this process plus its
 * reaped children (/proc/self/stat utime, stime, cutime, cstime); undefined
 * elsewhere. Their difference, less a live daemon's own, is what processes
 * that are not part of the benchmark used: the noise in a measurement.
 */
function cpuAccount (): { machine: number, ours: number } | undefined {
  try {
    const tick = 100
    const all = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal guest guest_nice
    const machine = (all[0] + all[1] + all[2] + all[5] + all[6] + all[7]) / tick
    const stat = readFileSync('/proc/self/stat', 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ours = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / tick
    return { machine, ours }
  } catch {
    return undefined
  }
}

/** CPU seconds other processes used between two {@link cpuAccount} readings. */
function foreignCpu (a: ReturnType<typeof cpuAccount>, b: ReturnType<typeof cpuAccount>, daemonCpu = 0): number | undefined {
  if (a === undefined || b === undefined) return undefined
  return Math.max(0, (b.machine - a.machine) - (b.ours - a.ours) - daemonCpu)
}

/**
 * Memory of a live process in bytes, from /proc/PID/status: peak resident set
 * (VmHWM) and the current anonymous and file-backed parts (LevelDB mmaps its
 * table files for reads, so reading blocks shows up as RssFile: page cache,
 * not heap). Undefined elsewhere.
 */
interface Memory { peak: number, anon: number, file: number }
function memoryOf (pid: number | undefined): Memory | undefined {
  if (pid === undefined) return undefined
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (field: string): number => {
      const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)
      if (m === null) throw new Error(`no ${field}`)
      return Number(m[1]) * 1024
    }
    return { peak: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') }
  } catch {
    return undefined
  }
}

/** The block device (major, minor) a path lives on, from its st_dev. */
async function deviceOf (path: string): Promise<{ major: number, minor: number }> {
  const dev = (await stat(path)).dev
  return { major: (dev >> 8) & 0xfff, minor: (dev & 0xff) | ((dev >> 12) & 0xfff00) }
}

/** Bytes written to a block device so far (/proc/diskstats); undefined elsewhere. */
function deviceWrittenBytes (dev: { major: number, minor: number } | undefined): number | undefined {
  if (dev === undefined) return undefined
  try {
    for (const line of readFileSync('/proc/diskstats', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/)
      if (Number(f[0]) === dev.major && Number(f[1]) === dev.minor) return Number(f[9]) * 512
    }
  } catch {}
  return undefined
}

let device: { major: number, minor: number } | undefined

// ---------------------------------------------------------------- the file

/** Read `path` in `size`-byte pieces into fresh buffers (the consumer keeps them) or one reused buffer. */
async function * readPieces (path: string, size: number, fresh: boolean): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r')
  try {
    let reused = fresh ? undefined : Buffer.allocUnsafeSlow(size)
    for (;;) {
      const buf = reused ?? Buffer.allocUnsafeSlow(size)
      let filled = 0
      while (filled < size) {
        const { bytesRead } = await fh.read(buf, filled, size - filled, null)
        if (bytesRead === 0) break
        filled += bytesRead
      }
      if (filled === 0) return
      yield filled === size ? buf : buf.subarray(0, filled)
      if (filled < size) return
      if (!fresh) reused = buf
    }
  } finally {
    await fh.close()
  }
}

// ---------------------------------------------------------------- ceilings

interface Ceiling {
  seconds: number
  /** CPU seconds other processes used meanwhile (noise). */
  foreignCpu?: number
  mbps: number
  cpuSeconds: number
  /** Bytes the disk took while timed (write amplification = this / file size). */
  diskBytes?: number
  /** Raw LevelDB only: seconds spent inside awaited batch writes. */
  writeSeconds?: number
}

function cpuNow (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/**
 * `dd if=FILE of=COPY bs=4M conv=fsync`: the disk's own speed for writing
 * the same bytes durably (the file itself is in the page cache).
 */
async function ceilingDd (file: string, size: number, out: string): Promise<Ceiling> {
  const t0 = performance.now()
  const dev = deviceWrittenBytes(device)
  const r = spawnSync('dd', [`if=${file}`, `of=${out}`, 'bs=4M', 'conv=fsync'], { encoding: 'utf8' })
  const seconds = (performance.now() - t0) / 1000
  const after = deviceWrittenBytes(device)
  await rm(out, { force: true })
  if (r.status !== 0) throw new Error(`dd failed: ${r.stderr}`)
  return { seconds, mbps: size / MB / seconds, cpuSeconds: 0, diskBytes: dev === undefined || after === undefined ? undefined : after - dev }
}

/** Plain sequential read of the file in 4 MiB pieces. */
async function ceilingRead (file: string, size: number): Promise<Ceiling> {
  const cpu0 = cpuNow()
  const t0 = performance.now()
  let total = 0
  for await (const piece of readPieces(file, PIECE, false)) total += piece.length
  const seconds = (performance.now() - t0) / 1000
  if (total !== size) throw new Error(`read ${total} bytes, expected ${size}`)
  return { seconds, mbps: size / MB / seconds, cpuSeconds: cpuNow() - cpu0 }
}

/**
 * sha-256 of every 256 KiB block of the file (a digest per block, as the
 * importer hashes leaves), read from disk in 4 MiB pieces.
 */
async function ceilingSha256 (file: string, size: number): Promise<Ceiling> {
  const cpu0 = cpuNow()
  const t0 = performance.now()
  let total = 0
  for await (const piece of readPieces(file, PIECE, false)) {
    for (let off = 0; off < piece.length; off += BLOCK) {
      createHash('sha256').update(piece.subarray(off, Math.min(off + BLOCK, piece.length))).digest()
    }
    total += piece.length
  }
  const seconds = (performance.now() - t0) / 1000
  if (total !== size) throw new Error(`hashed ${total} bytes, expected ${size}`)
  return { seconds, mbps: size / MB / seconds, cpuSeconds: cpuNow() - cpu0 }
}

/**
 * Raw tuned classic-level: the file read in 256 KiB blocks, each put under
 * its sha-256 (multihash-shaped key, as the block store), in ~16 MiB batches
 * with the block store's options; the last batch is written with
 * `sync: true`. Reading and hashing the next batch overlaps the write of the
 * previous one (at most one batch in flight, as the block store's chain), so
 * this is the speed of LevelDB itself, not of read + hash + write in series.
 */
async function ceilingLevel (file: string, size: number, dbPath: string): Promise<Ceiling> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dbPath, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    writeBufferSize: 64 * MiB,
    maxFileSize: 64 * MiB,
    cacheSize: 64 * MiB,
    compression: false
  })
  await db.open()
  try {
    const cpu0 = cpuNow()
    const disk0 = deviceWrittenBytes(device)
    const t0 = performance.now()
    let inFlight: Promise<void> = Promise.resolve()
    let writeSeconds = 0
    const write = async (ops: Array<[Uint8Array, Uint8Array]>, sync: boolean): Promise<void> => {
      const chained = db.batch()
      for (const [k, v] of ops) chained.put(k, v)
      const w0 = performance.now()
      await chained.write({ sync })
      writeSeconds += (performance.now() - w0) / 1000
    }
    let ops: Array<[Uint8Array, Uint8Array]> = []
    let opsBytes = 0
    let total = 0
    for await (const block of readPieces(file, BLOCK, true)) {
      const digest = createHash('sha256').update(block).digest()
      const key = new Uint8Array(34)
      key[0] = 0x12
      key[1] = 0x20
      key.set(digest, 2)
      ops.push([key, block])
      opsBytes += block.length
      total += block.length
      if (opsBytes >= BATCH_BYTES) {
        await inFlight
        inFlight = write(ops, false)
        ops = []
        opsBytes = 0
      }
    }
    await inFlight
    await write(ops, true)
    const seconds = (performance.now() - t0) / 1000
    const disk1 = deviceWrittenBytes(device)
    if (total !== size) throw new Error(`stored ${total} bytes, expected ${size}`)
    return {
      seconds,
      mbps: size / MB / seconds,
      cpuSeconds: cpuNow() - cpu0,
      diskBytes: disk0 !== undefined && disk1 !== undefined ? disk1 - disk0 : undefined,
      writeSeconds
    }
  } finally {
    await db.close()
  }
}

async function withForeign (measure: () => Promise<Ceiling>): Promise<Ceiling> {
  const a = cpuAccount()
  const c = await measure()
  return { ...c, foreignCpu: foreignCpu(a, cpuAccount()) }
}

// ---------------------------------------------------------------- the figure

interface Figure {
  chunker: string
  cid: string
  addSeconds: number
  addMbps: number
  catSeconds: number
  catMbps: number
  identical: boolean
  daemonCpuAdd?: number
  /** Bytes the disk took during the add. */
  addDiskBytes?: number
  /** CPU seconds other processes used during the add (noise). */
  addForeignCpu?: number
  daemonCpuCat?: number
  /** Daemon memory right after the add, and at the end (after the cat). */
  daemonMemAdd?: Memory
  daemonMem?: Memory
  startupSeconds: number
  /** CLOCK_MONOTONIC microseconds around the add and the cat, to cut a daemon --cpu-prof to them. */
  windows: { add: [number, number], cat: [number, number] }
}

function monotonicMicros (): number {
  return Number(process.hrtime.bigint() / 1000n)
}

async function startDaemon (repo: string, logPath: string, cpuProf?: string): Promise<BenchDaemon> {
  await cliOk(['--repo', repo, 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
  return await spawnDaemon(repo, logPath, cpuProf)
}

async function measureFigure (work: string, file: string, size: number, fileSha: string, chunker: string, run: number, cpuProf?: string): Promise<Figure> {
  const repo = join(work, `repo-${chunker}-${run}`)
  const daemon = await startDaemon(repo, join(work, `daemon-${chunker}-${run}.log`), cpuProf)
  try {
    const pid = daemon.pid
    // process start-up + one round trip, to put the start-up share of the figure in numbers
    const startup = await cliOk(['--repo', repo, 'ls', '/'])
    await settle()

    const cpu0 = cpuSeconds(pid)
    const disk0 = deviceWrittenBytes(device)
    const acct0 = cpuAccount()
    const addStart = monotonicMicros()
    const add = await cliOk(['--repo', repo, 'add', file, '--to', '/bench', '--json', '--chunker', chunker])
    const addEnd = monotonicMicros()
    const acct1 = cpuAccount()
    const disk1 = deviceWrittenBytes(device)
    const cpu1 = cpuSeconds(pid)
    const memAdd = memoryOf(pid)
    const added = JSON.parse(add.stdout) as { cid: string, size: number }
    if (added.size !== size) throw new Error(`add reported ${added.size} bytes, expected ${size}`)
    await settle()

    const hash = createHash('sha256')
    let catBytes = 0
    const cpu2 = cpuSeconds(pid)
    const catStart = monotonicMicros()
    const cat = await cliOk(['--repo', repo, 'cat', '/bench'], chunk => { hash.update(chunk); catBytes += chunk.length })
    const catEnd = monotonicMicros()
    const cpu3 = cpuSeconds(pid)
    const catSha = hash.digest('hex')
    const mem = memoryOf(pid)
    return {
      chunker,
      cid: added.cid,
      addSeconds: add.seconds,
      addMbps: size / MB / add.seconds,
      catSeconds: cat.seconds,
      catMbps: catBytes / MB / cat.seconds,
      identical: catBytes === size && catSha === fileSha,
      daemonCpuAdd: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined,
      addDiskBytes: disk0 !== undefined && disk1 !== undefined ? disk1 - disk0 : undefined,
      addForeignCpu: foreignCpu(acct0, acct1, cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : 0),
      daemonCpuCat: cpu2 !== undefined && cpu3 !== undefined ? cpu3 - cpu2 : undefined,
      daemonMemAdd: memAdd,
      daemonMem: mem,
      startupSeconds: startup.seconds,
      windows: { add: [addStart, addEnd], cat: [catStart, catEnd] }
    }
  } catch (err) {
    const tail = await readFile(daemon.logPath, 'utf8').catch(() => '')
    if (tail !== '') log(`daemon log (last lines):\n${tail.trim().split('\n').slice(-20).join('\n')}`)
    throw err
  } finally {
    await daemon.stop()
    await rm(repo, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------- report

interface RunResult {
  run: number
  read: Ceiling
  sha256: Ceiling
  level: Ceiling
  dd: Ceiling
  figures: Figure[]
}

function table (rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)))
  const line = (r: string[]): string => '| ' + r.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join(' | ') + ' |'
  return [line(rows[0]), '|' + widths.map((w, c) => (c === 0 ? '-'.repeat(w + 1) : '-'.repeat(w + 1)) + (c === 0 ? '-|' : ':|')).join(''), ...rows.slice(1).map(line)].join('\n')
}

/** More than 5% of the machine's CPU went to other processes during a timed phase. */
function noisy (r: RunResult): boolean {
  const cores = cpus().length
  const phases: Array<[number | undefined, number]> = [
    [r.level.foreignCpu, r.level.seconds],
    [r.sha256.foreignCpu, r.sha256.seconds],
    ...r.figures.map((f): [number | undefined, number] => [f.addForeignCpu, f.addSeconds])
  ]
  return phases.some(([foreign, seconds]) => foreign !== undefined && foreign > Math.max(0.5, 0.05 * cores * seconds))
}

function report (opts: Options, results: RunResult[], fileSha: string): string {
  const clean = results.filter(r => !noisy(r))
  const used = clean.length > 0 ? clean : results
  const med = (f: (r: RunResult) => number): number => median(used.map(f))
  const level = med(r => r.level.mbps)
  const sha = med(r => r.sha256.mbps)
  const read = med(r => r.read.mbps)
  const n = results.length
  const lines: string[] = []
  lines.push(`ingest: ${fmt(opts.size / MiB)} MiB random file, ${n} run${n === 1 ? '' : 's'}` +
    `${n > 1 ? ` (medians of ${used.length === n ? 'all' : `the ${used.length} quiet`} runs; per-run values in brackets, * = noisy run)` : ''}; MB/s = 10^6 bytes per second`)
  if (clean.length < n) lines.push(`WARNING: ${n - clean.length} of ${n} runs overlapped other processes' CPU use (see noise below)${clean.length === 0 ? '; no quiet run: figures are unreliable' : ' and are left out of the medians'}`)
  lines.push(`file sha-256 ${fileSha}`)
  lines.push('')
  const per = (f: (r: RunResult) => number, digits = 0): string => n === 1 ? '' : ` [${results.map(r => fmt(f(r), digits) + (noisy(r) ? '*' : '')).join(', ')}]`
  const dd = med(r => r.dd.mbps)
  const rows: string[][] = [['measure', 'MB/s', 'seconds', 'add / raw LevelDB', 'add / dd conv=fsync', 'add / sha-256']]
  for (const chunker of opts.chunkers) {
    const pick = (r: RunResult): Figure => r.figures.find(f => f.chunker === chunker) as Figure
    const add = med(r => pick(r).addMbps)
    rows.push([`shoal add --chunker ${chunker}`, fmt(add) + per(r => pick(r).addMbps), fmt(med(r => pick(r).addSeconds), 2),
      fmt(add / level, 2) + per(r => pick(r).addMbps / r.level.mbps, 2), fmt(add / dd, 2) + per(r => pick(r).addMbps / r.dd.mbps, 2), fmt(add / sha, 2)])
  }
  for (const chunker of opts.chunkers) {
    const pick = (r: RunResult): Figure => r.figures.find(f => f.chunker === chunker) as Figure
    rows.push([`shoal cat (${chunker} DAG) into sha-256`, fmt(med(r => pick(r).catMbps)) + per(r => pick(r).catMbps), fmt(med(r => pick(r).catSeconds), 2), '', '', ''])
  }
  rows.push(['ceiling: raw classic-level batch put', fmt(level) + per(r => r.level.mbps), fmt(med(r => r.level.seconds), 2), '', '', ''])
  rows.push(['ceiling: dd bs=4M conv=fsync of the file', fmt(dd) + per(r => r.dd.mbps), fmt(med(r => r.dd.seconds), 2), '', '', ''])
  rows.push(['ceiling: sha-256 (256 KiB blocks, from file)', fmt(sha) + per(r => r.sha256.mbps), fmt(med(r => r.sha256.seconds), 2), '', '', ''])
  rows.push(['ceiling: plain file read (page cache)', fmt(read) + per(r => r.read.mbps), fmt(med(r => r.read.seconds), 2), '', '', ''])
  lines.push(table(rows))
  lines.push('')
  for (const chunker of opts.chunkers) {
    const figs = used.map(r => r.figures.find(f => f.chunker === chunker) as Figure)
    const ok = figs.every(f => f.identical)
    const cpuAdd = figs.map(f => f.daemonCpuAdd).filter((x): x is number => x !== undefined)
    const memAdd = figs.map(f => f.daemonMemAdd).filter((x): x is Memory => x !== undefined)
    const mem = figs.map(f => f.daemonMem).filter((x): x is Memory => x !== undefined)
    const mib = (xs: Memory[], k: keyof Memory): string => fmt(median(xs.map(x => x[k])) / MiB)
    const disk = figs.map(f => f.addDiskBytes).filter((x): x is number => x !== undefined)
    const ratio = median(figs.map(f => f.addMbps)) / level
    lines.push(`${chunker}: root ${figs[0].cid}; read-back ${ok ? 'byte-identical (sha-256 match)' : 'MISMATCH'}; ` +
      `ratio to raw LevelDB ${fmt(ratio, 2)} (target >= 0.60: ${ratio >= 0.6 ? 'met' : `missed by ${fmt((0.6 - ratio) * level)} MB/s`})` +
      (cpuAdd.length > 0 ? `; daemon CPU during add ${fmt(median(cpuAdd), 2)} s of ${fmt(median(figs.map(f => f.addSeconds)), 2)} s` : '') +
      (disk.length > 0 ? `; disk writes during add ${fmt(median(disk) / opts.size, 1)} x the file` : '') +
      (memAdd.length > 0 ? `; daemon RSS after the add: peak ${mib(memAdd, 'peak')} MiB, now ${mib(memAdd, 'anon')} MiB anon + ${mib(memAdd, 'file')} MiB file-backed` : '') +
      (mem.length > 0 ? `; after the cat: peak ${mib(mem, 'peak')} MiB, now ${mib(mem, 'anon')} MiB anon + ${mib(mem, 'file')} MiB file-backed (LevelDB's mmapped tables)` : ''))
  }
  lines.push(`CLI start-up + one API round trip (\`shoal ls /\`): ${fmt(median(used.flatMap(r => r.figures.map(f => f.startupSeconds))), 2)} s, included in the add and cat figures`)
  const levelDisk = used.map(r => r.level.diskBytes).filter((x): x is number => x !== undefined)
  lines.push(`raw LevelDB: inside awaited batch writes ${fmt(med(r => r.level.writeSeconds ?? NaN), 2)} s of ${fmt(med(r => r.level.seconds), 2)} s; bench process CPU ${fmt(med(r => r.level.cpuSeconds), 2)} s` +
    (levelDisk.length > 0 ? `; disk writes ${fmt(median(levelDisk) / opts.size, 1)} x the file` : ''))
  // noise: CPU that processes outside the benchmark used while a phase was timed
  const noise: string[] = []
  const show = (label: string, xs: Array<number | undefined>): void => {
    if (xs.every(x => x !== undefined)) noise.push(`${label} ${xs.map(x => fmt(x as number, 1)).join('/')}`)
  }
  for (const chunker of opts.chunkers) show(`add ${chunker}`, results.map(r => r.figures.find(f => f.chunker === chunker)?.addForeignCpu))
  show('raw LevelDB', results.map(r => r.level.foreignCpu))
  show('sha-256', results.map(r => r.sha256.foreignCpu))
  if (noise.length > 0) lines.push(`CPU seconds used by other processes while timed (noise; 0 on a quiet machine): ${noise.join(', ')}`)
  return lines.join('\n')
}

// ---------------------------------------------------------------- main

async function main (): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  if (!existsSync(SHOAL_BIN)) throw new Error(`${SHOAL_BIN} not found: run \`npm run build\` first`)
  installCleanup()
  quietWait = opts.quietWait
  mkdirSync(opts.dir, { recursive: true })
  if (opts.cpuProf !== undefined) mkdirSync(opts.cpuProf, { recursive: true })
  const work = await mkdtemp(join(opts.dir, 'shoal-bench-ingest-'))
  if (!opts.keep) tempDirs.add(work)
  device = await deviceOf(work)
  log(`working dir ${work} (${cpus().length} CPUs, node ${process.version})`)
  try {
    const file = join(work, 'random.bin')
    const g0 = performance.now()
    const fileSha = await writeRandomFile(file, opts.size)
    log(`wrote ${fmt(opts.size / MiB)} MiB of random bytes in ${fmt((performance.now() - g0) / 1000, 2)} s`)
    if ((await stat(file)).size !== opts.size) throw new Error('file has the wrong size')

    const results: RunResult[] = []
    for (let run = 1; run <= opts.runs; run++) {
      const dbPath = join(work, `level-${run}`)
      await settle()
      const read = await withForeign(async () => await ceilingRead(file, opts.size))
      log(`run ${run}: plain read ${fmt(read.mbps)} MB/s`)
      const sha256 = await withForeign(async () => await ceilingSha256(file, opts.size))
      log(`run ${run}: sha-256 ${fmt(sha256.mbps)} MB/s`)
      await settle()
      const level = await withForeign(async () => await ceilingLevel(file, opts.size, dbPath))
      await rm(dbPath, { recursive: true, force: true })
      log(`run ${run}: raw classic-level batch put ${fmt(level.mbps)} MB/s (inside batch writes ${fmt(level.writeSeconds ?? NaN, 2)} s; other processes' CPU ${fmt(level.foreignCpu ?? NaN, 1)} s)`)
      await settle()
      const dd = await withForeign(async () => await ceilingDd(file, opts.size, join(work, `dd-${run}.out`)))
      log(`run ${run}: dd bs=4M conv=fsync ${fmt(dd.mbps)} MB/s`)
      const figures: Figure[] = []
      for (const chunker of opts.chunkers) {
        await settle()
        const f = await measureFigure(work, file, opts.size, fileSha, chunker, run, opts.cpuProf)
        log(`run ${run}: add --chunker ${chunker} ${fmt(f.addMbps)} MB/s (${fmt(f.addSeconds, 2)} s; other processes' CPU ${fmt(f.addForeignCpu ?? NaN, 1)} s), cat ${fmt(f.catMbps)} MB/s, ${f.identical ? 'identical' : 'MISMATCH'}`)
        figures.push(f)
      }
      results.push({ run, read, sha256, level, dd, figures })
    }
    process.stdout.write(report(opts, results, fileSha) + '\n')
    if (opts.json) process.stdout.write(JSON.stringify({ size: opts.size, fileSha, results }) + '\n')
    return results.every(r => r.figures.every(f => f.identical)) ? 0 : 1
  } finally {
    for (const child of children) child.kill('SIGTERM')
    if (!opts.keep) {
      await rm(work, { recursive: true, force: true })
      tempDirs.delete(work)
    } else {
      log(`kept ${work}`)
    }
  }
}

main().then(code => { process.exitCode = code }, (err: any) => {
  process.stderr.write(`bench/ingest: ${String(err?.message ?? err)}\n`)
  process.exitCode = isInterrupted() ? 130 : 1
})
