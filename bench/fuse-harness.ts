/**
 * What the FUSE benches share: timed shell workloads in child processes
 * (nothing in a bench touches a mount synchronously), dropping the page
 * cache, the in-memory ceiling file system, and waiting for a Shoal daemon's
 * commit and idleness.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { children, installCleanup, log, tempDirs, trackChild, writeRandomFile } from './harness.js'
import { cpuOf } from './raw-stream.js'

const CEILING_BIN = fileURLToPath(new URL('./fuse-ceiling.js', import.meta.url))

/** Run `sh -c script`; resolves with its seconds, throws on failure. */
export async function timed (script: string): Promise<number> {
  const started = performance.now()
  await new Promise<void>((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] })
    children.add(child)
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s })
    child.once('close', code => { children.delete(child); if (code === 0) resolve(); else reject(new Error(`\`${script}\` exited ${String(code)}: ${err.trim()}`)) })
  })
  return (performance.now() - started) / 1000
}

/** Drop the page cache, dentries and inodes (root only). */
export async function dropCaches (): Promise<void> {
  await timed('sync; echo 3 > /proc/sys/vm/drop_caches')
}

/**
 * Wait (at most 2 minutes) until process `pid` uses less than 5 % of a core
 * over a second: after a commit the node still compacts its stores and
 * places shards, and a read measured meanwhile measures that work too.
 * Resolves with the seconds waited.
 */
export async function idle (pid: number): Promise<number> {
  const started = performance.now()
  let last = cpuOf(pid) ?? 0
  while (performance.now() - started < 120_000) {
    await new Promise(resolve => setTimeout(resolve, 1000))
    const now = cpuOf(pid) ?? 0
    if (now - last < 0.05) break
    last = now
  }
  return (performance.now() - started) / 1000
}

/** Poll `fn` every 200 ms until it says true; throws after `ms`. */
export async function poll (what: string, fn: () => Promise<boolean>, ms = 20 * 60_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn()) return
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`${what}: not within ${ms} ms`)
}

/** The in-memory ceiling file system, mounted in its own process. */
export interface Ceiling {
  pid: number
  /** Unmount and end the process. */
  stop: () => Promise<void>
}

/**
 * Mount the ceiling (`bench/fuse-ceiling.ts`) at `dir`; resolves once it is
 * mounted. `cpuProf` names a folder for a `--cpu-prof` profile of it.
 */
export async function startCeiling (dir: string, cpuProf?: string): Promise<Ceiling> {
  const nodeArgs = cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProf]
  const proc = spawn(process.execPath, [...nodeArgs, CEILING_BIN, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const stop = trackChild(proc, 10_000)
  await new Promise<void>((resolve, reject) => {
    proc.stdout.setEncoding('utf8').on('data', (s: string) => { if (s.includes('ready')) resolve() })
    proc.once('exit', code => reject(new Error(`the ceiling file system exited (${String(code)})`)))
  })
  return { pid: proc.pid as number, stop }
}

/**
 * Start a FUSE bench: cleanup handlers, a temp folder (removed at exit) and
 * a random source file of `mib` MiB in it (with its sha-256).
 */
export async function benchSetup (name: string, mib: number): Promise<{ root: string, source: string, sha: string }> {
  installCleanup()
  const root = await mkdtemp(join(tmpdir(), `shoal-bench-${name}-`))
  tempDirs.add(root)
  const source = join(root, 'source.bin')
  log(`writing a ${mib} MiB random source file`)
  const sha = await writeRandomFile(source, mib * 1024 * 1024)
  return { root, source, sha }
}
