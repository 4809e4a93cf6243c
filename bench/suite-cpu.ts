/**
 * Where the test suite's time goes: runs `dist/test/run.js` (what `npm
 * test` runs after its build) with a preload in every Node process it
 * starts — test files, daemons, CLI commands, simulation children — that
 * records its CPU time at exit; then prints the suite's wall time, how busy
 * the cores were (from /proc/stat), and per test file the CPU of its own
 * process and of the processes it started.
 *
 * The suite is CPU-bound on two cores when the cores are busy all along
 * (its length is then its CPU-seconds over two), and bound by its waits
 * when they are not: the two figures side by side say which.
 *
 * ```sh
 * npm run build && node dist/bench/suite-cpu.js [--top 30] [--log FILE] [--test-name-pattern=P] [--no-bundle]
 * ```
 *
 * A process killed with SIGKILL records nothing (its CPU is missing from
 * the totals); processes that exit (SIGTERM included) are counted.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createWriteStream } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { machineCpu } from './raw-stream.js'

/** One process's record. */
interface ProcessCpu { pid: number, ppid: number, cpuMs: number, argv: string }

const PRELOAD = `
const fs = require('node:fs')
const file = process.env.SUITE_CPU_FILE
if (file) process.on('exit', () => {
  try {
    const u = process.resourceUsage()
    fs.appendFileSync(file, JSON.stringify({ pid: process.pid, ppid: process.ppid, cpuMs: Math.round((u.userCPUTime + u.systemCPUTime) / 1000), argv: process.argv.slice(1).join(' ').slice(0, 300) }) + '\\n')
  } catch {}
})
`

function parseArgs (argv: string[]): { top: number, log?: string, passOn: string[] } {
  let top = 30
  let log: string | undefined
  const passOn: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--top') top = Number(argv[++i])
    else if (a === '--log') log = argv[++i]
    else if (a.startsWith('--test-name-pattern=') || a === '--no-bundle') passOn.push(a)
    else if (a === '--help') {
      console.log('node dist/bench/suite-cpu.js [--top N] [--log FILE] [--test-name-pattern=P] [--no-bundle]')
      process.exit(0)
    } else {
      console.error(`suite-cpu: unknown argument ${a} (--help lists the options)`)
      process.exit(2)
    }
  }
  if (!Number.isSafeInteger(top) || top < 1) {
    console.error('suite-cpu: --top takes a positive integer')
    process.exit(2)
  }
  return { top, log, passOn }
}

async function main (): Promise<void> {
  const { top, log, passOn } = parseArgs(process.argv.slice(2))
  const dir = await mkdtemp(join(tmpdir(), 'shoal-suite-cpu-'))
  try {
    const preload = join(dir, 'preload.cjs')
    const records = join(dir, 'cpu.jsonl')
    await writeFile(preload, PRELOAD)
    // some tests run processes as another user (test/cli/cat-pipe.test.ts): they must load the preload, and may write a record
    await chmod(dir, 0o755)
    await chmod(preload, 0o644)
    await writeFile(records, '', { mode: 0o666 })
    await chmod(records, 0o666)
    const env: NodeJS.ProcessEnv = { ...process.env, SUITE_CPU_FILE: records, NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require=${preload}`].filter(Boolean).join(' ') }
    // as `npm test`: without a CA bundle every process would parse at start
    delete env.NODE_EXTRA_CA_CERTS
    const out = createWriteStream(log ?? join(dir, 'suite.log'))
    const before = machineCpu()
    const started = performance.now()
    const child = spawn(process.execPath, ['dist/test/run.js', ...passOn], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.pipe(out)
    child.stderr.pipe(out)
    const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
    const wallS = (performance.now() - started) / 1000
    const after = machineCpu()
    const rows: ProcessCpu[] = (await readFile(records, 'utf8')).split('\n').filter(l => l !== '').map(l => JSON.parse(l))
    const children = new Map<number, ProcessCpu[]>()
    for (const r of rows) children.set(r.ppid, [...(children.get(r.ppid) ?? []), r])
    const tree = (r: ProcessCpu): { cpuMs: number, count: number } => {
      let cpuMs = r.cpuMs
      let count = 1
      for (const c of children.get(r.pid) ?? []) { const t = tree(c); cpuMs += t.cpuMs; count += t.count }
      return { cpuMs, count }
    }
    // a test file's process runs its bundle (x.test.bundle.js) or, with --no-bundle, tsc's x.test.js
    const testFile = /\.test(\.bundle)?\.js$/
    const files = rows.filter(r => r.argv.split(' ').some(a => testFile.test(a)) && !r.argv.includes('run.js')).map(r => {
      const t = tree(r)
      return { file: r.argv.split(' ').find(a => testFile.test(a))?.replace(/^.*dist\/test\//, '').replace(/\.bundle\.js$/, '.js') ?? r.argv, own: r.cpuMs / 1000, all: t.cpuMs / 1000, started: t.count - 1 }
    }).sort((a, b) => b.all - a.all)
    const allCpu = rows.reduce((s, r) => s + r.cpuMs, 0) / 1000
    // the cores' busy share: CPU-seconds of the whole machine over the wall time on every core
    const busy = before === undefined || after === undefined ? NaN : (after - before) / (wallS * cpus().length)
    console.log(`suite exit code ${String(code)}; wall ${wallS.toFixed(0)} s; cores busy ${(busy * 100).toFixed(1)} %; CPU of the processes recorded ${allCpu.toFixed(0)} s (${rows.length} processes), of test files' own processes ${files.reduce((s, f) => s + f.own, 0).toFixed(0)} s`)
    console.log('CPU-s with started  own CPU-s  processes started  file')
    for (const f of files.slice(0, top)) console.log(`${f.all.toFixed(1).padStart(17)}  ${f.own.toFixed(1).padStart(9)}  ${String(f.started).padStart(17)}  ${f.file}`)
    if (code !== 0) process.exitCode = 1
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
