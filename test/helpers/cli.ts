/**
 * Run the compiled `shoal` CLI and real daemons from tests.
 *
 * - {@link runShoal}: one CLI invocation, bounded by a timeout that kills it.
 * - {@link startDaemon}: a daemon on a temp repo (or a given one), stopped and
 *   cleaned up through the test's `after` hooks even when the test fails.
 * - {@link suiteContext}: a cleanup context for a whole `describe` block
 *   (one daemon shared by several tests).
 *
 * Every child process is also SIGKILLed when the test process exits, so a
 * crashed test run leaves no daemon behind.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { packageFile } from '../../node/package-files.js'
import { after } from 'node:test'
import { apiUrlFromMultiaddr } from '../../protocol/api-address.js'
import { defer, tempDir, type CleanupContext } from './temp.js'
import { initRepo } from '../../node/repo/init.js'

/** A test repo's addresses: the API and the swarm on loopback, on free ports. */
const LOOPBACK_REPO = { api: '127.0.0.1:0', listen: ['/ip4/127.0.0.1/tcp/0'] }

/**
 * The `shoal` command users run: the bundle (package.json `bin`, built by
 * cli/build-bundle.ts), found from the package's root: this code runs from
 * dist/test/helpers/ or from a test bundle's chunk (test/bundle-tests.ts).
 */
export const SHOAL_BIN = packageFile('dist', 'bin', 'shoal.js')

/** Default bound for one CLI invocation. */
const RUN_TIMEOUT_MS = 60_000
/** Bound for a daemon to write `<repo>/api`. */
const READY_TIMEOUT_MS = 30_000
/** Bound for a daemon to exit after a signal (then SIGKILL). */
const STOP_TIMEOUT_MS = 15_000

const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

function track (child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
}

/** Environment for a child: ours minus the test runner's markers, plus `extra`. */
function childEnv (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  delete env.NODE_TEST_CONTEXT
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k]
  return env
}

/** What a CLI invocation produced. */
export interface ShoalResult {
  /** Exit code (null only if killed by a signal). */
  code: number | null
  stdout: Buffer
  stderr: string
}

/** Options of {@link runShoal}. */
export interface RunOptions {
  /** Bytes written to stdin (stdin is closed either way). */
  input?: string | Uint8Array
  /** Variables added to (or, when undefined, removed from) the environment. */
  env?: Record<string, string | undefined>
  /** Kill the child and reject after this long. @default 60000 */
  timeoutMs?: number
  /** The child's working directory. @default this process's */
  cwd?: string
}

/** At most this many CLI processes run at once (each costs ~0.5 s of CPU to start). */
const MAX_RUNNING = Math.max(2, availableParallelism() * 2)
let running = 0
const waiting: Array<() => void> = []

async function slot (): Promise<() => void> {
  while (running >= MAX_RUNNING) await new Promise<void>(resolve => waiting.push(resolve))
  running++
  return () => { running--; waiting.shift()?.() }
}

/**
 * Run `node dist/bin/shoal.js ...args`. Resolves whatever the exit code;
 * rejects only when the process cannot start or outlives `timeoutMs`
 * (it is SIGKILLed then). Calls beyond a small number in parallel queue up.
 */
export async function runShoal (args: string[], opts: RunOptions = {}): Promise<ShoalResult> {
  const release = await slot()
  try {
    return await run(args, opts)
  } finally {
    release()
  }
}

async function run (args: string[], opts: RunOptions): Promise<ShoalResult> {
  const timeoutMs = opts.timeoutMs ?? RUN_TIMEOUT_MS
  const child = spawn(process.execPath, [SHOAL_BIN, ...args], { env: childEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd })
  track(child)
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  child.stdin.on('error', () => {}) // the CLI may exit without reading stdin
  child.stdin.end(opts.input)
  return await new Promise<ShoalResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`shoal ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${Buffer.concat(err).toString('utf8')}`))
    }, timeoutMs)
    child.once('error', e => { clearTimeout(timer); reject(e) })
    // 'close' (not 'exit'): every byte of stdout/stderr has been read
    child.once('close', code => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') })
    })
  })
}

/**
 * Run a bash pipeline (`pipefail`: a failing CLI fails it) with `$SHOAL` set
 * to the CLI on `repo`, so its stdout is a real pipe (`$SHOAL cat F | sha256sum`);
 * its exit code, stdout and stderr. Killed after 60 s.
 */
export async function runShell (script: string, repo: string): Promise<{ code: number | null, stdout: Buffer, stderr: string }> {
  const child = spawn('bash', ['-o', 'pipefail', '-c', script], { env: childEnv({ SHOAL: `${process.execPath} ${SHOAL_BIN} --repo ${repo}` }), stdio: ['ignore', 'pipe', 'pipe'] })
  track(child)
  const out: Buffer[] = []
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  try {
    const code = await new Promise<number | null>(resolve => child.once('close', resolve))
    return { code, stdout: Buffer.concat(out), stderr }
  } finally {
    clearTimeout(timer)
  }
}

/** `runShoal(['--repo', repo, ...args])`, asserting exit code 0; returns stdout. */
export async function shoalOk (repo: string, args: string[], opts: RunOptions = {}): Promise<Buffer> {
  const r = await runShoal(['--repo', repo, ...args], opts)
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}`)
  return r.stdout
}

/** `--json` output of a successful command, parsed. */
export async function shoalJson<T = any> (repo: string, args: string[], opts: RunOptions = {}): Promise<T> {
  return JSON.parse((await shoalOk(repo, ['--json', ...args], opts)).toString('utf8')) as T
}

/** How a stopped daemon exited. */
export interface DaemonExit { code: number | null, signal: NodeJS.Signals | null }

/** A daemon started by {@link startDaemon}. */
export interface TestDaemon {
  repo: string
  /** `http://127.0.0.1:PORT` of its API. */
  url: string
  /** Contents of `<repo>/api` (a multiaddr). */
  api: string
  /** The API token (`<repo>/api.token`). */
  token: string
  child: ChildProcess
  /** Everything the daemon printed so far. */
  output: () => { stdout: string, stderr: string }
  /** Send `signal` (SIGTERM by default), wait (bounded) for the exit, SIGKILL as a fallback. Idempotent. */
  stop: (signal?: NodeJS.Signals) => Promise<DaemonExit>
}

/** Options of {@link startDaemon}. */
export interface StartDaemonOptions {
  /** Environment additions (default log level: warn, to keep output small). */
  env?: Record<string, string | undefined>
}

/**
 * Start `shoal daemon` on `repo`, or on a fresh repo (`init --api 127.0.0.1:0`)
 * in a temp dir that is removed at cleanup. Resolves once `<repo>/api` exists.
 * The daemon is stopped at cleanup (before its temp dir is removed).
 */
export async function startDaemon (t: CleanupContext, repo?: string, options: StartDaemonOptions = {}): Promise<TestDaemon> {
  if (repo === undefined) {
    repo = join(await tempDir(t, 'shoal-cli-'), 'repo')
    // what `shoal init --api 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0` does, in this process: a CLI process
    // loads ~0.3 CPU-s of modules, and the suite made ~150 repos (the command is tested in init's own tests)
    await initRepo(repo, LOOPBACK_REPO)
  }
  const apiFile = join(repo, 'api')
  const child = spawn(process.execPath, [SHOAL_BIN, '--repo', repo, 'daemon'], {
    env: childEnv({ SHOAL_LOG_LEVEL: 'warn', ...options.env }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  track(child)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const exited = new Promise<DaemonExit>(resolve => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  let stopping: Promise<DaemonExit> | undefined
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<DaemonExit> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const result = await within(exited, STOP_TIMEOUT_MS)
      if (result !== undefined) return result
      child.kill('SIGKILL')
      return await within(exited, STOP_TIMEOUT_MS) ?? { code: null, signal: 'SIGKILL' }
    })()
    return await stopping
  }
  defer(t, async () => { await stop() })

  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    if (await exists(apiFile)) {
      // the daemon writes the file by rename, so it is complete when it exists
      const api = (await readFile(apiFile, 'utf8')).trim()
      const token = (await readFile(join(repo, 'api.token'), 'utf8')).trim()
      return { repo, url: apiUrlFromMultiaddr(api), api, token, child, output: () => ({ stdout, stderr }), stop }
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`daemon on ${repo} exited (${String(child.exitCode ?? child.signalCode)}) before it was ready: ${stderr}`)
    }
    if (Date.now() > deadline) {
      await stop('SIGKILL')
      throw new Error(`daemon on ${repo} not ready within ${READY_TIMEOUT_MS} ms: ${stderr}`)
    }
    await sleep(50)
  }
}

/**
 * A cleanup context for a `describe` block: call it in the block's body; its
 * cleanups run (in registration order, like node:test's own) in the block's
 * `after` hook. Use it with {@link startDaemon} in a `before` hook to share
 * one daemon between the block's tests.
 */
export function suiteContext (): CleanupContext {
  const fns: Array<() => Promise<void>> = []
  after(async () => {
    const errors: unknown[] = []
    for (const fn of fns) {
      try { await fn() } catch (err) { errors.push(err) }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'suite cleanup failed')
  })
  return { after: fn => { fns.push(fn) } }
}

/** True when `path` exists. */
export async function exists (path: string): Promise<boolean> {
  try { await stat(path); return true } catch { return false }
}

/** `promise`'s value, or undefined when it takes longer than `ms` (the timer is cleared either way). */
export async function within<T> (promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<undefined>(resolve => { timer = setTimeout(resolve, ms, undefined) })])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolve after `ms` milliseconds. */
export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Split stderr into its non-empty lines. */
export function lines (text: string): string[] {
  return text.split('\n').filter(l => l.length > 0)
}

/**
 * `init` one repo per name under `dir`, all in one new private swarm (one
 * `shoal swarm key new` file), on loopback with free ports. Returns the repo paths.
 */
export async function initSwarm (dir: string, names: string[]): Promise<string[]> {
  const keyFile = join(dir, 'swarm.key')
  await writeFile(keyFile, await shoalOk(dir, ['swarm', 'key', 'new']))
  const repos = names.map(n => join(dir, n))
  // as `shoal init … --swarm-key FILE` does, in this process (see startDaemon)
  const swarmKey = await readFile(keyFile, 'utf8')
  for (const r of repos) await initRepo(r, { ...LOOPBACK_REPO, swarmKey })
  return repos
}

/** Poll `fn` every 200 ms until it returns true; fail naming `what` after `ms`. */
export async function eventually (what: string, fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn()) return
    await sleep(200)
  }
  throw new Error(`timed out waiting for: ${what}`)
}
