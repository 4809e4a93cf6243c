/**
 * The life of the daemon process: what makes it stop, and that it does stop.
 *
 * Why: a daemon that outlives its reason to run holds the repo lock and the
 * API port, so the next `shoal daemon` on the repo fails; and a shutdown
 * that hangs (a stuck store, a peer that never answers) used to leave a
 * process that ignored every later signal.
 *
 * How:
 * - Stop requests are watched from the first moment, before the node
 *   starts: SIGINT, SIGTERM, SIGHUP, and, when a `shoal` CLI process
 *   launched this one (cli/relaunch.ts), the close of its IPC channel —
 *   which the kernel closes however that parent dies, SIGKILL included. A
 *   channel already closed when watching begins counts too (the parent died
 *   while this process was loading).
 * - A request during start-up lets the start finish (the stores and the lock
 *   are then in a known state), then stops at once, without announcing
 *   readiness. A request before the start began skips it.
 * - The first request starts a clock: a shutdown not finished within the
 *   shutdown timeout (`SHOAL_SHUTDOWN_TIMEOUT` seconds, default
 *   {@link DEFAULT_SHUTDOWN_TIMEOUT_S}) is forced. A second SIGINT or
 *   SIGTERM forces it at once, as Kubo does — but a repeat of the same
 *   signal within {@link DUPLICATE_SIGNAL_MS} of the last one is that one
 *   delivered twice, not a second request: `kill $(pgrep -f 'shoal
 *   daemon')`, systemd signalling the whole group or an init signalling the
 *   tree reach this process directly and again through the CLI's
 *   forwarding (cli/relaunch.ts filters the same way). A forced exit says
 *   so on stderr, removes `<repo>/api`, `<repo>/gateway` and the repo lock
 *   when they are this process's (so the next daemon starts without a
 *   stale-lock dance), and exits with {@link EXIT_FORCED}. FUSE mounts it served are left stale;
 *   the next daemon frees and restores them (docs/fuse.md).
 * - Once the node has stopped, the clock stays as a last guard: a handle
 *   leaked by some part that keeps the process alive past the deadline gets
 *   it forced out too. `shoal daemon` then exits at once
 *   (cli/commands/node.ts) rather than when the event loop empties: libp2p's
 *   parts leave timers running after their own stop — gossipsub's next
 *   heartbeat (its stop replaces the status that holds the timer without
 *   clearing it), the address manager's debounced peer-store update — and
 *   every stop idled up to a second more for them (measured: "daemon
 *   stopped" at 35 ms, the process gone at 1,087 ms). Nothing of the node's
 *   is left to finish then: its stores are closed and its log flushed, and
 *   stdout and stderr are written synchronously (pipes and files).
 *
 * When it applies: to `shoal daemon`, relaunched or run in place (systemd).
 *
 * @module
 */
import { readFileSync, unlinkSync } from 'node:fs'
import { InvalidArgumentError, ShoalError } from '../node/errors.js'
import { DUPLICATE_SIGNAL_MS, launchedByCli, SignalForwarder } from './relaunch.js'

/** Seconds a shutdown may take before it is forced. */
export const DEFAULT_SHUTDOWN_TIMEOUT_S = 30

/** Exit code of a forced exit (a second signal, or the timeout). */
export const EXIT_FORCED = 1

/** The daemon exits without a clean shutdown (the timeout passed, or a second signal came). */
export class ShutdownForcedError extends ShoalError {
  override name = 'ShutdownForcedError'
}

/** A part of the node failed while it stopped (the process still exits, with code 1). */
export class ShutdownFailedError extends ShoalError {
  override name = 'ShutdownFailedError'
}

/** Environment variable that sets the shutdown timeout, in seconds. */
export const SHUTDOWN_TIMEOUT_ENV = 'SHOAL_SHUTDOWN_TIMEOUT'

/** The shutdown timeout in ms from `env`. @throws {InvalidArgumentError} for a value that is not a positive number of seconds */
export function shutdownTimeoutMs (env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[SHUTDOWN_TIMEOUT_ENV]
  if (raw === undefined || raw === '') return DEFAULT_SHUTDOWN_TIMEOUT_S * 1000
  const seconds = Number(raw)
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || !Number.isFinite(seconds) || seconds <= 0) {
    throw new InvalidArgumentError(`${SHUTDOWN_TIMEOUT_ENV} must be a number of seconds greater than 0, not ${JSON.stringify(raw)}`)
  }
  return Math.round(seconds * 1000)
}

/** A started daemon, as far as its process's life is concerned. */
export interface Stoppable {
  /**
   * Shut down cleanly; `keepMounts` when the daemon was killed rather than
   * asked to stop (its parent went): its mounts come back at the next start,
   * as after a crash.
   */
  stop: (options?: { keepMounts?: boolean }) => Promise<void>
}

/** Options of {@link runDaemonProcess}. */
export interface DaemonProcessOptions<D extends Stoppable> {
  /**
   * Start the node. `signal` fires at a stop request during the start: a
   * start still waiting for the daemon stopping on the repo gives up then
   * (AbortedError), and the process exits 0, nothing started.
   */
  start: (signal: AbortSignal) => Promise<D>
  /** Announce readiness (not called when a stop was requested during start-up). */
  ready: (daemon: D) => void
  /** Write one line for a person on stderr (or nothing, under `--json`). */
  say: (line: string) => void
  /** Report a forced or failed shutdown: one line on stderr (JSON under `--json`). */
  fail: (err: ShutdownForcedError | ShutdownFailedError) => void
  /** Files this process removes on a forced exit, when the lock holds its pid: the lock, `<repo>/api` and `<repo>/gateway`. */
  files: OwnFiles
  /** @default from `SHOAL_SHUTDOWN_TIMEOUT`, else {@link DEFAULT_SHUTDOWN_TIMEOUT_S} s */
  timeoutMs?: number
}

/** The files a running daemon writes in its repo. */
export interface OwnFiles {
  lock: string
  api: string
  gateway: string
}

/** Why the daemon stops. */
type StopReason = { kind: 'signal', signal: NodeJS.Signals } | { kind: 'parent' }

function describe (reason: StopReason): string {
  return reason.kind === 'signal' ? `received ${reason.signal}` : 'the shoal process that started this daemon exited'
}

/**
 * Run the daemon process: start, announce, wait for a stop request, stop —
 * forced after the timeout or by a second SIGINT/SIGTERM (not a repeat of
 * the same signal within {@link DUPLICATE_SIGNAL_MS}; see the module
 * comment). Resolves with the exit code once the node has stopped; rejects
 * with the start's error when the node does not start.
 */
export async function runDaemonProcess<D extends Stoppable> (options: DaemonProcessOptions<D>): Promise<number> {
  const timeoutMs = options.timeoutMs ?? shutdownTimeoutMs()
  let first: StopReason | undefined
  let timer: NodeJS.Timeout | undefined
  let stopRequested!: () => void
  const requested = new Promise<void>(resolve => { stopRequested = resolve })
  const starting = new AbortController()

  const force = (why: string): void => {
    options.fail(new ShutdownForcedError(`${why}; exiting without a clean shutdown`))
    removeOwnFiles(options.files)
    process.exit(EXIT_FORCED)
  }
  // the same signal delivered twice (directly and forwarded) is one request
  const repeats = new SignalForwarder()
  const request = (reason: StopReason): void => {
    if (reason.kind === 'signal' && !repeats.accept(reason.signal)) {
      options.say(`received ${reason.signal} again within ${DUPLICATE_SIGNAL_MS} ms: the same request`)
      return
    }
    if (first === undefined) {
      first = reason
      options.say(`${describe(reason)}, shutting down`)
      timer = setTimeout(() => { force(`shutdown did not finish within ${timeoutMs / 1000} s`) }, timeoutMs)
      starting.abort()
      stopRequested()
      return
    }
    // a second interrupt or termination request: the user means it
    if (reason.kind === 'signal' && (reason.signal === 'SIGINT' || reason.signal === 'SIGTERM')) force(`${describe(reason)} again`)
  }
  const onSignal = (signal: NodeJS.Signals): void => { request({ kind: 'signal', signal }) }
  const onDisconnect = (): void => { request({ kind: 'parent' }) }
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  for (const s of signals) process.on(s, onSignal)
  if (launchedByCli()) {
    process.once('disconnect', onDisconnect)
    // the channel must not keep the process alive once the node has stopped
    process.channel?.unref()
    if (!process.connected) onDisconnect()
  }
  // a closed terminal or pipe must not crash a shutdown that writes a line
  process.stdout.on('error', () => {})
  process.stderr.on('error', () => {})

  try {
    if (first !== undefined) return 0
    let daemon: D
    try {
      daemon = await options.start(starting.signal)
    } catch (err: any) {
      // a stop asked for while the start waited for the daemon stopping on the repo: nothing was started
      if (starting.signal.aborted && err?.name === 'AbortedError') return 0
      throw err
    }
    if (first === undefined) options.ready(daemon)
    await requested
    try {
      // the `shoal daemon` process that started this one went (killed, say with SIGKILL): for the user the daemon
      // was killed, not stopped, so its mounts are mounted again at the next start, as after a crash
      // (set by the handlers above since the check at the start: TypeScript cannot see it)
      const reason = first as StopReason | undefined
      await daemon.stop(reason?.kind === 'parent' ? { keepMounts: true } : undefined)
      return 0
    } catch (err: any) {
      options.fail(new ShutdownFailedError(`error during shutdown: ${String(err?.message ?? err)}`, { cause: err }))
      return 1
    }
  } finally {
    // keep guarding against a process that does not exit, without keeping it alive
    timer?.unref()
  }
}

/** On a forced exit: remove `<repo>/api`, `<repo>/gateway` and the lock if this process holds it (synchronously: we exit next). */
function removeOwnFiles (files: OwnFiles): void {
  try {
    if (readFileSync(files.lock, 'utf8').trim() !== String(process.pid)) return
  } catch {
    return
  }
  try { unlinkSync(files.api) } catch {}
  try { unlinkSync(files.gateway) } catch {}
  try { unlinkSync(files.lock) } catch {}
  // the mark of a stop under way (node/repo/lock.ts): not left for a later daemon of this pid
  try { unlinkSync(`${files.lock}.stopping`) } catch {}
}
