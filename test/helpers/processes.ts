/**
 * Real processes in tests, beyond one CLI call: a `shoal` process started
 * without waiting for anything (to signal it at a chosen moment), the
 * processes it started (from /proc), whether a pid lives.
 * Everything started here is killed at the test's cleanup, children
 * included, even when the test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { defer, type CleanupContext } from './temp.js'
import { SHOAL_BIN, sleep, type DaemonExit } from './cli.js'

/** True while `pid` is a live process. */
export function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err: any) { return err.code === 'EPERM' }
}

/** Poll every 20 ms until `fn` holds; fail naming `what` after `ms`. */
export async function until (what: string, fn: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await sleep(20)
  }
}

/** `promise`, or an error naming `what` once it has waited `ms` (the timer does not outlive it). */
export async function settlesWithin<T> (promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`timed out waiting for: ${what}`)) }, ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Pids whose parent is `ppid` (from /proc). */
export async function childrenOf (ppid: number): Promise<number[]> {
  const found: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '')
    // pid (comm) state ppid …: comm may hold spaces, so read after its ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[1]) === ppid) found.push(Number(name))
  }
  return found
}

/** Environment of a spawned CLI: ours without the test runner's marker, log level warn, plus `extra`. */
export function cliEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_LOG_LEVEL: 'warn', ...extra }
  delete env.NODE_TEST_CONTEXT
  return env
}

/** A `shoal` process started by {@link launchShoal}. */
export interface Launched {
  process: ChildProcess
  /** Resolves when it exits. */
  exited: Promise<DaemonExit>
  /** What it (and the processes sharing its output) printed so far. */
  stdout: () => string
  stderr: () => string
}

/**
 * Start `node dist/bin/shoal.js ...args` and return at once. At cleanup it is
 * SIGKILLed, and so is every process it had started.
 */
export function launchShoal (t: CleanupContext, args: string[], extraEnv: Record<string, string> = {}): Launched {
  const child = spawn(process.execPath, [SHOAL_BIN, ...args], { env: cliEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const exited = new Promise<DaemonExit>(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  defer(t, async () => {
    const kids = child.pid === undefined ? [] : await childrenOf(child.pid)
    child.kill('SIGKILL')
    for (const pid of kids) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  return { process: child, exited, stdout: () => stdout, stderr: () => stderr }
}
