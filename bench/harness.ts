/**
 * What every benchmark needs around its measurements: daemons to measure,
 * a registry of the child processes and temp dirs it made, cleaned up on exit
 * and on SIGINT/SIGTERM, and number formatting.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { existsSync, rmSync } from 'node:fs'
import { mkdir, open, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as zlib from 'node:zlib'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

/** Child processes to stop when the benchmark ends. */
export const children = new Set<ChildProcess>()
/** Temp dirs to remove when the benchmark ends. */
export const tempDirs = new Set<string>()
/** Other undoings to run when the benchmark ends (each synchronous, each run once). */
export const exitHooks = new Set<() => void>()

let interrupted = false

/** True once SIGINT/SIGTERM arrived: measurements should stop. */
export function isInterrupted (): boolean {
  return interrupted
}

function signalChildren (signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
  }
}

/** Last resort on exit: kill what we started, remove temp dirs. */
export function cleanupSync (): void {
  signalChildren('SIGTERM')
  for (const hook of exitHooks) {
    exitHooks.delete(hook)
    try { hook() } catch {}
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

function onSignal (signal: NodeJS.Signals): void {
  if (interrupted) return
  interrupted = true
  process.stderr.write(`\nreceived ${signal}: stopping daemons, removing temp dirs\n`)
  // give daemons a moment to release LevelDB before their dirs go
  signalChildren('SIGTERM')
  setTimeout(() => {
    signalChildren('SIGKILL')
    cleanupSync()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }, 2000).unref()
}

/** Install the exit and signal handlers (once, at the start of main). */
export function installCleanup (): void {
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', cleanupSync)
}

/** A number with thousands separators and `digits` decimals. */
export function fmt (n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** The median of a non-empty list. */
export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** Progress goes to stderr; stdout is for the report. */
export function log (line: string): void {
  process.stderr.write(line + '\n')
}

/** The `shoal` command users run (the bundle, package.json `bin`), next to this file's folder in dist/. */
export const SHOAL_BIN = fileURLToPath(new URL('../bin/shoal.js', import.meta.url))

/** A daemon started by a benchmark. */
export interface BenchDaemon {
  /** The `shoal daemon` CLI process (it relaunches the node in a child, see cli/relaunch.ts). */
  child: ChildProcess
  /** Pid of the process running the node (from `<repo>/daemon.lock`): measure CPU and memory here. */
  pid: number
  repo: string
  /** Its stdout and stderr. */
  logPath: string
  /** SIGTERM, SIGKILL after 30 s. */
  stop: () => Promise<void>
}

/**
 * Track `child` for cleanup at exit and return how to stop it: SIGTERM, then
 * SIGKILL after `killAfterMs`; resolves once it has exited.
 */
export function trackChild (child: ChildProcess, killAfterMs: number): () => Promise<void> {
  children.add(child)
  const exited = new Promise<void>(resolve => child.once('exit', () => { children.delete(child); resolve() }))
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    await exited
    clearTimeout(timer)
  }
}

/**
 * Run `shoal daemon` on an initialised repo, logging to `logPath`, and wait
 * (at most 30 s) until it has written `<repo>/api`. `cpuProf` names a folder
 * for a `--cpu-prof` profile of the daemon.
 */
export async function spawnDaemon (repo: string, logPath: string, cpuProf?: string): Promise<BenchDaemon> {
  const nodeArgs = cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProf]
  // extra node flags for daemons (e.g. to compare heap settings); the CLI
  // passes its own flags on to the node process it relaunches
  const extra = process.env.SHOAL_BENCH_DAEMON_NODE_ARGS
  if (extra !== undefined && extra !== '') nodeArgs.push(...extra.split(' '))
  const logFile = await open(logPath, 'w')
  const child = spawn(process.execPath, [...nodeArgs, SHOAL_BIN, '--repo', repo, 'daemon'], {
    stdio: ['ignore', logFile.fd, logFile.fd],
    env: { ...process.env, SHOAL_LOG_LEVEL: process.env.SHOAL_LOG_LEVEL ?? 'info' }
  })
  await logFile.close()
  const stop = trackChild(child, 30_000)
  const apiFile = join(repo, 'api')
  const deadline = Date.now() + 30_000
  while (!existsSync(apiFile)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`daemon exited early (${child.signalCode ?? `exit ${String(child.exitCode)}`}): ${(await readFile(logPath, 'utf8')).trim()}`)
    }
    if (Date.now() > deadline) { await stop(); throw new Error('daemon did not write <repo>/api within 30 s') }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
  return { child, pid, repo, logPath, stop }
}

/** How a CLI run ended. */
export interface CliExit { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, seconds: number }

/** Run the CLI to completion, timed; `onStdout` takes stdout instead of collecting it. */
export async function runCli (args: string[], onStdout?: (chunk: Buffer) => void): Promise<CliExit> {
  const started = performance.now()
  const child = spawn(process.execPath, [SHOAL_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => { if (onStdout !== undefined) onStdout(chunk); else out.push(chunk) })
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
  return await new Promise<CliExit>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => {
      children.delete(child)
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        seconds: (performance.now() - started) / 1000
      })
    })
  })
}

/** {@link runCli}, throwing when the command fails. */
export async function cliOk (args: string[], onStdout?: (chunk: Buffer) => void): Promise<CliExit> {
  const r = await runCli(args, onStdout)
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')} failed (${r.signal ?? `exit ${String(r.code)}`}): ${r.stderr.trim()}`)
  return r
}

/**
 * Write `size` pseudo-random bytes (a chacha20 keystream, 4 MiB at a time,
 * never the whole file in memory) to `path`, fsynced; returns their sha-256.
 */
export async function writeRandomFile (path: string, size: number): Promise<string> {
  return (await writeRandom(path, size, {})).sha
}

/**
 * {@link writeRandomFile}, with the crc32 and the size of what it wrote, for a
 * bench that checks reads by crc32: its own sha-256 of a read's output would
 * take a share of the machine the read needs (crc32 ~3 GB/s, sha-256
 * ~0.3 GB/s per core without the SHA extensions). A crc32 still catches any
 * wrong or missing byte a bug would cause; the tests check the same reads
 * byte for byte.
 */
export async function writeRandomFileWithCrc (path: string, size: number): Promise<{ sha: string, crc: number, size: number }> {
  return await writeRandom(path, size, { crc32: crc32Function() })
}

async function writeRandom (path: string, size: number, options: { crc32?: (data: Uint8Array, value?: number) => number }): Promise<{ sha: string, crc: number, size: number }> {
  const piece = 4 * 1024 * 1024
  const cipher = createCipheriv('chacha20', randomBytes(32), randomBytes(16))
  const zeros = Buffer.alloc(piece)
  const hash = createHash('sha256')
  let crc = 0
  const fh = await open(path, 'w')
  try {
    for (let left = size; left > 0; left -= piece) {
      const bytes = cipher.update(zeros.subarray(0, Math.min(piece, left)))
      hash.update(bytes)
      if (options.crc32 !== undefined) crc = options.crc32(bytes, crc)
      for (let off = 0; off < bytes.length;) off += (await fh.write(bytes, off)).bytesWritten
    }
    await fh.sync()
  } finally {
    await fh.close()
  }
  return { sha: hash.digest('hex'), crc, size }
}

/**
 * `zlib.crc32` (Node 20.15 and later), looked up when a bench needs it: a
 * named import would stop every bench from loading on an older Node 20.
 *
 * @throws Error naming the Node version needed, where it is missing
 */
export function crc32Function (): (data: Uint8Array, value?: number) => number {
  const fn = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32
  if (typeof fn !== 'function') throw new Error(`this bench checks its reads by zlib.crc32, which needs Node 20.15 or later (this is ${process.version})`)
  return fn
}

/** A `--size` argument (`512MiB`, `1GiB`, `1.5G`, `4096`…) in bytes, at least 1. */
export function parseSize (text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kib|kb|m|mib|mb|g|gib|gb)?$/i.exec(text.trim())
  if (m === null) throw new Error(`--size: cannot parse ${JSON.stringify(text)}`)
  const unit = (m[2] ?? 'b').toLowerCase()
  const mult: Record<string, number> = { b: 1, k: 1024, kib: 1024, kb: 1e3, m: 1024 ** 2, mib: 1024 ** 2, mb: 1e6, g: 1024 ** 3, gib: 1024 ** 3, gb: 1e9 }
  const n = Math.round(Number(m[1]) * mult[unit])
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--size: must be at least 1 byte, got ${JSON.stringify(text)}`)
  return n
}

/** `count` files of `size` random bytes (`f0`, `f1`, …) in a new folder `dir`. */
export async function writeRandomFiles (dir: string, count: number, size: number): Promise<void> {
  await mkdir(dir)
  for (let i = 0; i < count; i++) await writeFile(join(dir, `f${i}`), randomBytes(size))
}

/** Options of the hashing benches: bytes to hash, the block size, rounds. */
export interface HashBenchOptions { size: number, block: number, rounds: number }

/** `--size`, `--block` and `--rounds` of a hashing bench (hash-handoff, hash-lanes), over `defaults`. */
export function parseHashBenchArgs (argv: string[], defaults: HashBenchOptions): HashBenchOptions {
  const o = { ...defaults }
  for (let i = 0; i < argv.length; i++) {
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${argv[i - 1]} needs a value`)
      return v
    }
    switch (argv[i]) {
      case '--size': o.size = parseSize(value()); break
      case '--block': o.block = parseSize(value()); break
      case '--rounds': o.rounds = Number(value()); break
      default: throw new Error(`unknown option ${argv[i]}`)
    }
  }
  if (!(o.rounds >= 1) || !(o.block >= 64) || o.size < o.block) throw new Error('--rounds ≥ 1, --block ≥ 64 and --size ≥ --block')
  return o
}
