/**
 * Transfer benchmark: `shoal cat CID` on daemon B of a file only daemon A
 * holds, so every block crosses the swarm (/shoal/blocks/1.0.0), compared
 * with a raw noise+yamux+pnet stream between two processes in the same run,
 * measured before and after the cats (the ceiling is their mean).
 *
 *   npm run build && node dist/bench/transfer.js [--size 1GiB] [--runs N]
 *     [--chunker fastcdc|size-262144] [--cpu-prof DIR] [--keep] [--quiet-wait S]
 *     [--raw-window MiB] [--no-pnet] [--metrics-ab]
 *
 * By default both daemons and both raw-stream nodes share a swarm key (pnet,
 * xsalsa20), as a private swarm runs; --no-pnet measures an open swarm.
 * With --runs N every run has a fresh daemon B (nothing cached) and its own
 * raw stream; the report gives medians of the runs that no other process
 * disturbed, and the ratio is taken within each run.
 *
 * --metrics-ab alternates the runs between libp2p's metrics on (odd runs)
 * and off (even runs, config `metrics.libp2p` false on both daemons) and
 * reports the remote-read ratio of each arm: the cost of the metrics on the
 * data path, measured against the same raw stream in the same session.
 *
 * MB = 10^6 bytes. See docs/benchmarks.md, "Transfer".
 */
import '../node/polyfills.js'
import { children, cliOk, fmt, median, writeRandomFile, installCleanup, isInterrupted, log, parseSize, SHOAL_BIN, spawnDaemon, tempDirs, type BenchDaemon } from './harness.js'
import { cpuAccount, cpuOf, foreignCpu, noisy, procStatus, rawStream, settle } from './raw-stream.js'
import { cliHashed } from './hashed-stdout.js'
import { existsSync, mkdirSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseSwarmKey } from '../protocol/swarm-key.js'

const MiB = 1024 * 1024
const MB = 1e6
/**
 * The remote cat's goal against the raw stream of the transport in use (the read
 * path's issue; the block exchange's earlier bar was 0.5).
 */
const GOAL_RATIO = 0.8

interface Options { size: number, runs: number, chunkers: string[], cpuProf?: string, keep: boolean, quietWait: number, rawWindow: number, pnet: boolean, metricsAb: boolean }

function parseArgs (argv: string[]): Options {
  const o: Options = { size: 1024 * MiB, runs: 1, chunkers: [], keep: false, quietWait: 120, rawWindow: 8, pnet: true, metricsAb: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => { const v = argv[++i]; if (v === undefined) throw new Error(`${arg} needs a value`); return v }
    switch (arg) {
      case '--size': o.size = parseSize(value()); break
      case '--runs': o.runs = Number(value()); break
      case '--chunker': o.chunkers.push(...value().split(',').filter(s => s !== '')); break
      case '--cpu-prof': o.cpuProf = resolve(value()); break
      case '--keep': o.keep = true; break
      case '--pnet': o.pnet = true; break
      case '--no-pnet': o.pnet = false; break
      case '--metrics-ab': o.metricsAb = true; break
      case '--raw-window': o.rawWindow = Number(value()); break
      case '--quiet-wait': o.quietWait = Number(value()); break
      default: throw new Error(`unknown argument ${JSON.stringify(arg)}; see the header of bench/transfer.ts`)
    }
  }
  if (o.chunkers.length === 0) o.chunkers = ['fastcdc', 'size-262144']
  if (!Number.isSafeInteger(o.runs) || o.runs < 1) throw new Error('--runs must be a whole number >= 1')
  return o
}

// ---------------------------------------------------------------- helpers

async function startDaemon (repo: string, keyFile: string | undefined, libp2pMetrics: boolean, cpuProf?: string): Promise<BenchDaemon> {
  await cliOk(['--repo', repo, 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', ...(keyFile === undefined ? ['--open'] : ['--swarm-key', keyFile])])
  await cliOk(['--repo', repo, 'config', 'set', 'metrics.libp2p', String(libp2pMetrics)])
  return await spawnDaemon(repo, `${repo}.log`, cpuProf)
}

// ---------------------------------------------------------------- main

interface Figure { chunker: string, cid: string, seconds: number, mbps: number, identical: boolean, cpuA?: number, cpuB?: number, cpuCli?: number, cpuReader?: number, foreign?: number }
/** One raw stream's figure. */
interface RawFigure { mbps: number, seconds: number, identical: boolean, foreign?: number }

/** The run's ceiling: the mean of the raw streams before and after its cats (`mbps`, `seconds`), and each of them. */
interface RawCeiling extends RawFigure { before: RawFigure, after: RawFigure }

interface Run { figures: Figure[], raw: RawCeiling, peakB?: number, anonB?: number, libp2pMetrics: boolean }

/** One raw stream of the file, timed and checked. */
async function rawFigure (opts: Options, run: number, when: string, file: string, fileSha: string, swarmKey: Uint8Array): Promise<RawFigure> {
  await settle(opts.quietWait)
  const raw = await rawStream(file, opts.pnet ? swarmKey : undefined, opts.rawWindow)
  const mbps = raw.bytes / MB / raw.seconds
  const identical = raw.bytes === opts.size && raw.sha === fileSha
  log(`run ${run}: raw stream ${when}: ${fmt(mbps)} MB/s, ${fmt(raw.seconds, 2)} s, ${identical ? 'identical' : 'MISMATCH'}, CPU s sender ${raw.senderCpu === undefined ? '?' : fmt(raw.senderCpu, 1)} / receiver (with its sha-256) ${fmt(raw.receiverCpu, 1)}, other processes' CPU ${raw.foreign === undefined ? '?' : fmt(raw.foreign, 1)} s`)
  return { mbps, seconds: raw.seconds, identical, foreign: raw.foreign }
}

/**
 * One run: the raw stream, fresh daemons A (holding the files) and B
 * (empty), each file cat on B, then the raw stream again. The raw stream's
 * speed drifts with the machine's hour (190–407 MB/s from one run to the
 * next on these machines) more than the cat's: the ceiling is the mean of
 * the two around the cats.
 */
async function oneRun (opts: Options, run: number, work: string, file: string, fileSha: string, keyFile: string, swarmKey: Uint8Array, added: Map<string, string>, daemons: BenchDaemon[]): Promise<Run> {
  const prof = (name: string): string | undefined => opts.cpuProf === undefined ? undefined : join(opts.cpuProf, opts.runs > 1 ? `${name}-${run}` : name)
  const before = await rawFigure(opts, run, 'before', file, fileSha, swarmKey)
  const libp2pMetrics = !opts.metricsAb || run % 2 === 1
  await cliOk(['--repo', join(work, 'A'), 'config', 'set', 'metrics.libp2p', String(libp2pMetrics)])
  const a = await spawnDaemon(join(work, 'A'), join(work, `A-${run}.log`), prof('A'))
  daemons.push(a)
  if (added.size === 0) {
    for (const chunker of opts.chunkers) {
      const out = JSON.parse((await cliOk(['--repo', a.repo, '--json', 'add', file, '--to', `/bench-${chunker}`, '--chunker', chunker])).stdout) as { cid: string }
      added.set(chunker, out.cid)
    }
  }
  const b = await startDaemon(join(work, `B-${run}`), opts.pnet ? keyFile : undefined, libp2pMetrics, prof('B'))
  daemons.push(b)
  const idA = JSON.parse((await cliOk(['--repo', a.repo, '--json', 'id'])).stdout) as { addresses: string[] }
  await cliOk(['--repo', b.repo, 'peers', 'connect', idA.addresses[0]])
  log(`run ${run}: B connected to ${idA.addresses[0]}${opts.metricsAb ? `, libp2p metrics ${libp2pMetrics ? 'on' : 'off'}` : ''}`)

  const figures: Figure[] = []
  for (const chunker of opts.chunkers) {
    const cid = added.get(chunker) as string
    await settle(opts.quietWait)
    const acct0 = cpuAccount()
    const cpuA0 = cpuOf(a.pid)
    const cpuB0 = cpuOf(b.pid)
    const self0 = process.cpuUsage()
    // hashed by a worker with 1 MiB reads, as the raw stream's receiver hashes (bench/hashed-stdout.ts)
    const cat = await cliHashed(['--repo', b.repo, 'cat', cid])
    const cpuA1 = cpuOf(a.pid)
    const cpuB1 = cpuOf(b.pid)
    const acct1 = cpuAccount()
    const self1 = process.cpuUsage(self0)
    const cpuA = cpuA0 !== undefined && cpuA1 !== undefined ? cpuA1 - cpuA0 : undefined
    const cpuB = cpuB0 !== undefined && cpuB1 !== undefined ? cpuB1 - cpuB0 : undefined
    const f: Figure = {
      chunker,
      cid,
      seconds: cat.seconds,
      mbps: cat.bytes / MB / cat.seconds,
      identical: cat.bytes === opts.size && cat.sha256 === fileSha,
      cpuA,
      cpuB,
      cpuCli: cliCpu(acct0, acct1, self1),
      cpuReader: (self1.user + self1.system) / 1e6,
      foreign: foreignCpu(acct0, acct1, [cpuA, cpuB])
    }
    log(`run ${run}: remote cat (${chunker}): ${fmt(f.mbps)} MB/s, ${fmt(f.seconds, 2)} s, ${f.identical ? 'identical' : 'MISMATCH'}, CPU s A ${cpuText(cpuA)} / B ${cpuText(cpuB)} / CLI ${cpuText(f.cpuCli)} / reader of its stdout (this process's worker) ${cpuText(f.cpuReader)}, other processes' CPU ${f.foreign === undefined ? '?' : fmt(f.foreign, 1)} s`)
    figures.push(f)
  }
  const peakB = procStatus(b.pid, 'VmHWM')
  const anonB = procStatus(b.pid, 'RssAnon')
  for (const d of [b, a]) { await d.stop(); daemons.splice(daemons.indexOf(d), 1) }
  if (!opts.keep) await rm(b.repo, { recursive: true, force: true })

  const after = await rawFigure(opts, run, 'after', file, fileSha, swarmKey)
  const raw: RawCeiling = {
    mbps: (before.mbps + after.mbps) / 2,
    seconds: (before.seconds + after.seconds) / 2,
    identical: before.identical && after.identical,
    foreign: before.foreign === undefined || after.foreign === undefined ? undefined : Math.max(before.foreign, after.foreign),
    before,
    after
  }
  return { figures, raw, peakB, anonB, libp2pMetrics }
}

/**
 * CPU seconds of the `cat` CLI process: what this process and its reaped
 * children used between the two readings, less this process's own (the
 * bench hashing the CLI's stdout).
 */
function cliCpu (a: ReturnType<typeof cpuAccount>, b: ReturnType<typeof cpuAccount>, self: NodeJS.CpuUsage): number | undefined {
  if (a === undefined || b === undefined) return undefined
  return Math.max(0, b.ours - a.ours - (self.user + self.system) / 1e6)
}

function cpuText (x: number | undefined): string {
  return x === undefined ? '?' : fmt(x, 1)
}

function runNoisy (r: Run): boolean {
  return noisy(r.raw.foreign, r.raw.seconds) || r.figures.some(f => noisy(f.foreign, f.seconds))
}

function report (opts: Options, runs: Run[]): string {
  const n = runs.length
  const clean = runs.filter(r => !runNoisy(r))
  const used = clean.length > 0 ? clean : runs
  const per = (f: (r: Run) => number, digits = 0): string => n === 1 ? '' : ` [${runs.map(r => fmt(f(r), digits) + (runNoisy(r) ? '*' : '')).join(', ')}]`
  const pick = (r: Run, chunker: string): Figure => r.figures.find(f => f.chunker === chunker) as Figure
  const rawMbps = median(used.map(r => r.raw.mbps))
  const rows = [['measure', 'MB/s', 'seconds', 'ratio', 'CPU s A / B / CLI / reader']]
  const ratios = new Map<string, number>()
  for (const chunker of opts.chunkers) {
    const ratio = median(used.map(r => pick(r, chunker).mbps / r.raw.mbps))
    ratios.set(chunker, ratio)
    const cpu = (k: 'cpuA' | 'cpuB' | 'cpuCli' | 'cpuReader'): string => {
      const xs = used.map(r => pick(r, chunker)[k]).filter((x): x is number => x !== undefined)
      return xs.length === 0 ? '?' : fmt(median(xs), 1)
    }
    rows.push([`remote cat (${opts.pnet ? '' : 'open swarm, '}${chunker})`, fmt(median(used.map(r => pick(r, chunker).mbps))) + per(r => pick(r, chunker).mbps),
      fmt(median(used.map(r => pick(r, chunker).seconds)), 2), fmt(ratio, 2) + per(r => pick(r, chunker).mbps / r.raw.mbps, 2), `${cpu('cpuA')} / ${cpu('cpuB')} / ${cpu('cpuCli')} / ${cpu('cpuReader')}`])
  }
  rows.push([`raw noise+yamux${opts.pnet ? '+pnet' : ''} stream (${opts.rawWindow} MiB window; mean of before and after)`, fmt(rawMbps) + per(r => r.raw.mbps), fmt(median(used.map(r => r.raw.seconds)), 2), '1.00', ''])
  rows.push(['  before / after the cats', `${fmt(median(used.map(r => r.raw.before.mbps)))} / ${fmt(median(used.map(r => r.raw.after.mbps)))}` + per(r => r.raw.before.mbps) + per(r => r.raw.after.mbps), '', '', ''])
  const w = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)))
  const line = (r: string[]): string => '| ' + r.map((x, c) => c === 0 ? x.padEnd(w[c]) : x.padStart(w[c])).join(' | ') + ' |'
  const out = [`transfer: ${fmt(opts.size / MiB)} MiB random file, A -> B over 127.0.0.1, ${opts.pnet ? 'pnet+' : ''}noise+yamux, ${n} run${n === 1 ? '' : 's'}` +
    `${n > 1 ? ` (medians of ${used.length === n ? 'all' : `the ${used.length} quiet`} runs; per-run values in brackets, * = noisy run)` : ''}; MB/s = 10^6 bytes per second; goal ratio >= ${fmt(GOAL_RATIO, 2)} (read path v2)`]
  if (clean.length < n) out.push(`WARNING: ${n - clean.length} of ${n} runs overlapped other processes' CPU use${clean.length === 0 ? '; no quiet run: figures are unreliable' : ' and are left out of the medians'}`)
  out.push(line(rows[0]), '|' + w.map((k, c) => '-'.repeat(k + 1) + (c === 0 ? '-|' : ':|')).join(''), ...rows.slice(1).map(line), '')
  for (const chunker of opts.chunkers) {
    const ratio = ratios.get(chunker) as number
    const ok = runs.every(r => pick(r, chunker).identical)
    out.push(`${chunker}: root ${pick(runs[0], chunker).cid}, ${ok ? 'byte-identical (sha-256 match)' : 'MISMATCH'}, ratio ${fmt(ratio, 2)} (goal ${fmt(GOAL_RATIO, 2)}: ${ratio >= GOAL_RATIO ? 'met' : 'not met'})`)
  }
  out.push(`raw stream ${runs.every(r => r.raw.identical) ? 'byte-identical (sha-256 match)' : 'MISMATCH'}`)
  const peaks = used.map(r => r.peakB).filter((x): x is number => x !== undefined)
  const anons = used.map(r => r.anonB).filter((x): x is number => x !== undefined)
  if (peaks.length > 0) out.push(`daemon B: peak RSS (VmHWM) ${fmt(median(peaks) / MiB)} MiB, anonymous RSS at the end ${fmt(median(anons) / MiB)} MiB`)
  const noise = [...opts.chunkers.map(c => `cat ${c} ${runs.map(r => pick(r, c).foreign === undefined ? '?' : fmt(pick(r, c).foreign as number, 1)).join('/')}`),
    `raw ${runs.map(r => r.raw.foreign === undefined ? '?' : fmt(r.raw.foreign, 1)).join('/')}`]
  out.push(`CPU seconds used by other processes while timed (noise; 0 on a quiet machine): ${noise.join(', ')}`)
  if (opts.metricsAb) out.push(...metricsAb(opts, runs))
  return out.join('\n') + '\n'
}

/**
 * --metrics-ab: each chunker's remote-read ratio (to the run's raw stream)
 * and the CPU seconds both daemons spent on the cat, with libp2p's metrics
 * on and off, and what they cost. CPU seconds hold up better than
 * throughput on a machine others use at the same time.
 */
function metricsAb (opts: Options, runs: Run[]): string[] {
  const out = ['libp2p metrics A/B (ratio of remote cat to the same run\'s raw stream; CPU s of daemons A+B during the cat; per-run values in brackets, * = noisy run):']
  const list = (xs: Array<{ x: number, noisy: boolean }>, digits: number): string => `[${xs.map(v => fmt(v.x, digits) + (v.noisy ? '*' : '')).join(', ')}]`
  for (const chunker of opts.chunkers) {
    const arm = (on: boolean): Array<{ ratio: number, cpu?: number, noisy: boolean }> => runs.filter(r => r.libp2pMetrics === on).map(r => {
      const f = r.figures.find(f => f.chunker === chunker) as Figure
      return { ratio: f.mbps / r.raw.mbps, cpu: f.cpuA !== undefined && f.cpuB !== undefined ? f.cpuA + f.cpuB : undefined, noisy: runNoisy(r) }
    })
    const on = arm(true)
    const off = arm(false)
    if (on.length === 0 || off.length === 0) { out.push(`${chunker}: needs --runs 2 or more`); continue }
    const ratio = (xs: typeof on): number => median(xs.map(v => v.ratio))
    const cpus = (xs: typeof on): Array<{ x: number, noisy: boolean }> => xs.filter(v => v.cpu !== undefined).map(v => ({ x: v.cpu as number, noisy: v.noisy }))
    const cpu = (xs: typeof on): number => median(cpus(xs).map(v => v.x))
    out.push(`${chunker}: ratio on ${fmt(ratio(on), 3)} ${list(on.map(v => ({ x: v.ratio, noisy: v.noisy })), 3)}, off ${fmt(ratio(off), 3)} ${list(off.map(v => ({ x: v.ratio, noisy: v.noisy })), 3)}: ` +
      `throughput cost ${fmt(100 * (1 - ratio(on) / ratio(off)), 1)} %; CPU on ${fmt(cpu(on), 2)} ${list(cpus(on), 2)}, off ${fmt(cpu(off), 2)} ${list(cpus(off), 2)}: CPU cost ${fmt(100 * (cpu(on) / cpu(off) - 1), 1)} %`)
  }
  return out
}

async function main (): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  if (!existsSync(SHOAL_BIN)) throw new Error(`${SHOAL_BIN} not found: run \`npm run build\` first`)
  installCleanup()
  if (opts.cpuProf !== undefined) mkdirSync(opts.cpuProf, { recursive: true })
  const work = await mkdtemp(join(tmpdir(), 'shoal-bench-transfer-'))
  if (!opts.keep) tempDirs.add(work)
  log(`working dir ${work}`)
  const daemons: BenchDaemon[] = []
  try {
    const file = join(work, 'random.bin')
    const fileSha = await writeRandomFile(file, opts.size)
    const keyFile = join(work, 'swarm.key')
    await writeFile(keyFile, JSON.parse((await cliOk(['--json', 'swarm', 'key', 'new'])).stdout).key as string)
    const swarmKey = parseSwarmKey(await readFile(keyFile, 'utf8'))
    await cliOk(['--repo', join(work, 'A'), 'init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', ...(opts.pnet ? ['--swarm-key', keyFile] : ['--open'])])
    const added = new Map<string, string>()
    const runs: Run[] = []
    for (let run = 1; run <= opts.runs; run++) runs.push(await oneRun(opts, run, work, file, fileSha, keyFile, swarmKey, added, daemons))
    process.stdout.write(report(opts, runs))
    return runs.every(r => r.raw.identical && r.figures.every(f => f.identical)) ? 0 : 1
  } catch (err) {
    for (const d of daemons) {
      const tail = await readFile(d.logPath, 'utf8').catch(() => '')
      if (tail !== '') log(`${d.repo} log (last lines):\n${tail.trim().split('\n').slice(-10).join('\n')}`)
    }
    throw err
  } finally {
    for (const d of daemons) await d.stop()
    for (const c of children) c.kill('SIGTERM')
    if (opts.keep) log(`kept ${work}`)
    else { await rm(work, { recursive: true, force: true }); tempDirs.delete(work) }
  }
}

main().then(code => { process.exitCode = code }, (err: any) => {
  process.stderr.write(`bench/transfer: ${String(err?.message ?? err)}\n`)
  process.exitCode = isInterrupted() ? 130 : 1
})
