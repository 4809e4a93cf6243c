/**
 * `shoal daemon` runs with V8 heap flags that a running process cannot set
 * for itself (`v8.setFlagsFromString` does not resize a heap that exists):
 * the CLI starts the daemon as a child `node` with those flags, forwards
 * signals to it and exits with its status. Every other command runs in place.
 *
 * Why the flags: the daemon moves 1 MiB blocks through several short-lived
 * buffers (pnet, noise, yamux, hashing, LevelDB). With V8's small initial
 * old space it ran 60–90 full collections per 512 MiB read; starting at
 * 128 MiB it runs about a dozen, and a remote read went from 0.47 × to
 * 0.60 × the raw stream (docs/benchmarks.md, "Transfer").
 *
 * How the two processes stay one daemon to the outside world:
 *
 * - The child runs in its own process group (and session), so every signal
 *   reaches it through exactly one path: this process. A terminal's Ctrl-C
 *   goes to the foreground group only — this process — which forwards it.
 *   Without this the child got Ctrl-C twice (from the terminal and
 *   forwarded), and a second SIGINT now means "exit at once".
 * - Launchers that forward signals themselves (npm's `npx` does for SIGINT
 *   and SIGTERM, and a terminal delivers the same Ctrl-C to npm and to us)
 *   make this process receive one signal twice within a few milliseconds: a
 *   repeat of the same signal within {@link DUPLICATE_SIGNAL_MS} of the
 *   last one forwarded is taken as that one, not forwarded again.
 * - Under npm (`npx shoal daemon`, `npm exec`, an `npm run` script), npm
 *   runs `sh -c 'shoal …'` and forwards SIGINT/SIGTERM to that shell only;
 *   the shell dies of it without passing it on, and this process used to
 *   live on, orphaned, with the daemon; a SIGKILL of npm leaves the shell
 *   alive and re-parented. So when npm's variables say npm launched us, this
 *   process checks every {@link LAUNCHER_POLL_MS} whether its parent is still
 *   the one it started under and, when that parent is a shell, whether the
 *   shell's parent is still npm (Linux `/proc`); once either went, the
 *   daemon is stopped as for SIGTERM.
 * - The child holds an IPC channel to this process. When this process dies
 *   in any way, SIGKILL included, the kernel closes the channel and the
 *   child stops as if it had received SIGTERM, at any moment of its life,
 *   start-up included (cli/daemon-process.ts).
 *
 * When it applies: only to `shoal daemon` started without the heap flags
 * (`node --initial-old-space-size=128 …/bin.js daemon`, as the systemd unit
 * in contrib/ does, runs the daemon in place: one process, no relaunch).
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { withMallocTunables } from './malloc-tunables.js'

/** Node flags the daemon process needs: `shoal daemon` started without them relaunches itself with {@link daemonNodeFlags}. */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128']

/** Node's own size of V8's worker pool (`--v8-pool-size`), whatever the machine. */
export const NODE_V8_POOL_SIZE = 4

/**
 * The flags a relaunched daemon runs with: {@link DAEMON_NODE_FLAGS}, and
 * V8's worker pool (the collector's helper threads, among others) no larger
 * than the machine's cores. Node starts {@link NODE_V8_POOL_SIZE} of them
 * on any machine; on two cores, four helpers of a young-generation
 * collection contend with the main thread and LevelDB's compaction for the
 * two cores. Measured on a history pull (the new node's main thread is its
 * critical path): with two workers 3–4 % more entries a second, in seven
 * alternated pairs out of seven (docs/benchmarks.md, "History bootstrap:
 * a settled source, and V8's pool at the cores"). Not a flag the relaunch
 * waits for: a daemon started in place (the systemd unit in contrib/) keeps
 * Node's pool unless its command line sets one.
 */
export function daemonNodeFlags (cores: number = availableParallelism()): string[] {
  return [...DAEMON_NODE_FLAGS, `--v8-pool-size=${Math.max(1, Math.min(NODE_V8_POOL_SIZE, cores))}`]
}

/** Set in the child so that it never relaunches itself again. */
const CHILD_ENV = 'SHOAL_DAEMON_CHILD'

/** Global options that take a value (so their value is not taken for the command). */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--repo', '--log-level'])

/**
 * A repeat of the signal last forwarded within this many ms is the same
 * signal delivered twice (by the terminal and by a launcher such as npx),
 * not a second request.
 */
export const DUPLICATE_SIGNAL_MS = 500

/** How often, under npm, this process checks that its parent is still there. */
export const LAUNCHER_POLL_MS = 1000

/** Signals forwarded to the daemon child. */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/** The command word of a `shoal` command line (`argv` as in `process.argv`). */
export function commandOf (argv: readonly string[]): string | undefined {
  const args = argv.slice(2)
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') return args[i + 1]
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) { i++; continue }
    if (arg.startsWith('-')) continue
    return arg
  }
  return undefined
}

/**
 * True when this process should run the daemon in a child with
 * {@link daemonChildArgs}: a `daemon` command whose node lacks one of
 * {@link DAEMON_NODE_FLAGS} as written (a heap size of the user's own also
 * relaunches, and is kept in the child).
 */
export function shouldRelaunch (argv: readonly string[], env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): boolean {
  if (commandOf(argv) !== 'daemon') return false
  if (env[CHILD_ENV] === '1' || env.SHOAL_NO_RELAUNCH === '1') return false
  return !DAEMON_NODE_FLAGS.every(flag => execArgv.includes(flag))
}

/**
 * In the daemon child: true when a parent CLI process launched it (and its
 * exit should stop us). Still true once that parent is gone: check
 * `process.connected` for that.
 */
export function launchedByCli (): boolean {
  return process.env[CHILD_ENV] === '1' && typeof process.send === 'function'
}

/**
 * Decides which received signals are new requests (here: to forward; in the
 * node process, cli/daemon-process.ts: to act on): every one, except a
 * repeat of the last accepted signal within {@link DUPLICATE_SIGNAL_MS}.
 */
export class SignalForwarder {
  private last?: { signal: NodeJS.Signals, at: number }

  /** @param now the clock (ms), injectable for tests */
  constructor (private readonly now: () => number = () => performance.now()) {}

  /** True when `signal`, received now, is a new request (not a repeat of the last one). */
  accept (signal: NodeJS.Signals): boolean {
    const at = this.now()
    if (this.last !== undefined && this.last.signal === signal && at - this.last.at < DUPLICATE_SIGNAL_MS) return false
    this.last = { signal, at }
    return true
  }
}

/**
 * When npm launched this process (`npm_lifecycle_event` is set: npx, npm
 * exec, npm run), call `onGone` once the parent process it started under
 * has exited (this process was re-parented). A no-op otherwise: a daemon
 * started from a shell outlives that shell, as `nohup shoal daemon &`
 * expects.
 *
 * @returns a function that stops watching
 */
export function watchNpmLauncher (onGone: () => void, env: NodeJS.ProcessEnv = process.env): () => void {
  if (env.npm_lifecycle_event === undefined) return () => {}
  const parent = process.ppid
  // npm runs us through `sh -c`: when npm itself is killed (SIGKILL of npx)
  // the shell lives on, re-parented; watch npm through the shell too
  const npm = isShell(parent) ? parentOf(parent) : undefined
  const timer = setInterval(() => {
    if (process.ppid === parent && (npm === undefined || parentOf(parent) === npm)) return
    clearInterval(timer)
    onGone()
  }, LAUNCHER_POLL_MS)
  timer.unref()
  return () => { clearInterval(timer) }
}

/** The parent pid of process `pid` (Linux `/proc`), or undefined when it is gone or unknown. */
function parentOf (pid: number): number | undefined {
  try {
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so read after the last `)`
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    return Number.isInteger(ppid) ? ppid : undefined
  } catch {
    return undefined
  }
}

/** True when process `pid` is a POSIX shell (`sh`, `dash`, `bash`), as npm's `sh -c` is. */
function isShell (pid: number): boolean {
  try {
    return ['sh', 'dash', 'bash'].includes(readFileSync(`/proc/${pid}/comm`, 'utf8').trim())
  } catch {
    return false
  }
}

/**
 * Run this command line again in a child `node` with the daemon's flags, in
 * its own process group, forwarding SIGINT/SIGTERM/SIGHUP and stopping it
 * when an npm launcher goes away (see the module comment), and resolve with the exit code to use: the child's.
 */
export async function relaunchDaemon (): Promise<number> {
  const child = spawn(process.execPath, daemonChildArgs({ execArgv: process.execArgv, argv: process.argv, env: process.env }), {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    // glibc's malloc settings for the data path's buffers (cli/malloc-tunables.ts)
    env: { ...withMallocTunables(process.env), [CHILD_ENV]: '1' },
    // own session and process group: signals reach it only through us
    detached: true
  })
  const forwarder = new SignalForwarder()
  let forwarded = false
  const forward = (signal: NodeJS.Signals): void => {
    if (child.exitCode !== null || child.signalCode !== null) return
    if (forwarder.accept(signal)) { forwarded = true; child.kill(signal) }
  }
  for (const s of FORWARDED) process.on(s, forward)
  // the launcher going away is a stop request only when none was made (a
  // Ctrl-C reaches npm and us together: not a second request)
  const unwatch = watchNpmLauncher(() => { if (!forwarded) forward('SIGTERM') })
  const done = (): void => {
    for (const s of FORWARDED) process.off(s, forward)
    unwatch()
  }
  return await new Promise<number>(resolve => {
    child.once('error', err => {
      done()
      process.stderr.write(`cannot start the daemon process: ${err.message}\n`)
      resolve(1)
    })
    child.once('exit', (code, signal) => {
      done()
      // a child killed by a signal: exit as a shell reports it
      resolve(code ?? (signal === null ? 1 : 128 + signalNumber(signal)))
    })
  })
}

/**
 * The relaunched daemon's arguments to `node`: {@link daemonNodeFlags}
 * except those the user set already (by name, on node's command line or in
 * `NODE_OPTIONS`: theirs stay, whatever their value), then this process's
 * own node flags and its command line.
 */
export function daemonChildArgs (options: { execArgv: readonly string[], argv: readonly string[], env: NodeJS.ProcessEnv, cores?: number }): string[] {
  return [...missingDaemonFlags(options), ...options.execArgv, ...options.argv.slice(1)]
}

/**
 * Those of {@link daemonNodeFlags} a node started with `execArgv` and `env`
 * lacks, by name (a value of the user's own counts as set, on node's
 * command line or in `NODE_OPTIONS`).
 */
export function missingDaemonFlags (options: { execArgv: readonly string[], env: NodeJS.ProcessEnv, cores?: number }): string[] {
  const own = [...options.execArgv, ...(options.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)].map(flagName)
  return daemonNodeFlags(options.cores).filter(flag => !own.includes(flagName(flag)))
}

/** A command-line flag's name, in Node's either spelling: `--v8-pool-size` of `--v8_pool_size=2`. */
function flagName (flag: string): string {
  const i = flag.indexOf('=')
  return (i < 0 ? flag : flag.slice(0, i)).replaceAll('_', '-')
}

function signalNumber (signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }
  return numbers[signal] ?? 1
}
