/**
 * `shoal daemon` runs with V8 heap flags that a running process cannot set
 * for itself (`v8.setFlagsFromString` does not resize a heap that exists):
 * the CLI starts the daemon as a child `node` with those flags, forwards
 * signals to it and exits with its status. Every other command runs in place.
 *
 * Why: the daemon moves 1 MiB blocks through several short-lived buffers
 * (pnet, noise, yamux, hashing, LevelDB). With V8's small initial old
 * space it ran 60–90 full collections per 512 MiB read; starting at 128 MiB
 * it runs about a dozen, and a remote read went from 0.47 × to 0.60 × the
 * raw stream (docs/benchmarks.md, "Transfer").
 *
 * @module
 */
import { spawn } from 'node:child_process'

/** Node flags the daemon process runs with. */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128']

/** Set in the child so that it never relaunches itself again. */
const CHILD_ENV = 'SHOAL_DAEMON_CHILD'

/** Global options that take a value (so their value is not taken for the command). */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--repo'])

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

/** True when this process should run the daemon in a child with {@link DAEMON_NODE_FLAGS}. */
export function shouldRelaunch (argv: readonly string[], env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): boolean {
  if (commandOf(argv) !== 'daemon') return false
  if (env[CHILD_ENV] === '1' || env.SHOAL_NO_RELAUNCH === '1') return false
  return !DAEMON_NODE_FLAGS.every(flag => execArgv.includes(flag))
}

/** In the daemon child: true when a parent CLI process launched it (and its exit should stop us). */
export function launchedByCli (): boolean {
  return process.env[CHILD_ENV] === '1' && typeof process.send === 'function'
}

/**
 * Run this command line again in a child `node` with the daemon's flags,
 * forwarding SIGINT/SIGTERM/SIGHUP, and resolve with the exit code to use.
 * The child gets an IPC channel: when this process dies (even by SIGKILL)
 * the channel closes and the child shuts down cleanly (see `daemonCommand`).
 */
export async function relaunchDaemon (): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...DAEMON_NODE_FLAGS, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [CHILD_ENV]: '1' }
  })
  const forward = (signal: NodeJS.Signals): void => { child.kill(signal) }
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  for (const s of signals) process.on(s, forward)
  return await new Promise<number>(resolve => {
    child.once('error', err => {
      process.stderr.write(`cannot start the daemon process: ${err.message}\n`)
      resolve(1)
    })
    child.once('exit', (code, signal) => {
      for (const s of signals) process.off(s, forward)
      // a child killed by a signal: exit as a shell reports it
      resolve(code ?? (signal === null ? 1 : 128 + signalNumber(signal)))
    })
  })
}

function signalNumber (signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }
  return numbers[signal] ?? 1
}
