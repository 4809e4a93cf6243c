/**
 * The repo's daemon lock: `<repo>/daemon.lock`, created exclusively and
 * holding the daemon's pid. A lock left by a dead process is taken over.
 *
 * A daemon that stops marks it beside the lock (`daemon.lock.stopping`, its
 * pid): a stop commits the mounts and waits for the placement of files added
 * just before (up to 15 s), holding the lock meanwhile. A daemon started on
 * the repo then waits for that stop, bounded, rather than refusing at once.
 * Why: an operator's test killed `shoal daemon` with SIGKILL and started it
 * again at once; the node it had started was still stopping (about 7 s) and
 * the new one failed with RepoLockedError, as a supervisor restarting it
 * would have (systemd gives up after five failed starts in ten seconds).
 * A live daemon not stopping is refused at once, as before: starting a
 * second daemon by mistake says so without a wait.
 *
 * @module
 */
import { open, readFile, unlink, writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { RepoLockedError } from '../errors.js'

/** How often a start waiting for a stopping daemon looks at the lock again. */
const STOPPING_POLL_MS = 100

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code === 'EPERM'
  }
}

/** The pid a lock or marker file holds, if it holds one. */
async function pidIn (file: string): Promise<number | undefined> {
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/** A wait, for a message: `300 ms`, `35 s`. */
function waited (ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`
}

/** The marker a stopping daemon writes beside the lock `file`. */
function stoppingMarker (file: string): string {
  return `${file}.stopping`
}

/** Options of {@link acquireRepoLock}. */
export interface RepoLockOptions {
  /** How long to wait for a daemon that holds the lock and is stopping. @default 0: refused at once */
  waitForStoppingMs?: number
  /** Told once, when the start begins to wait for a stopping daemon, with its pid. */
  onWait?: (pid: number) => void
}

/**
 * Take the repo's daemon lock (see the module).
 *
 * @returns a function that releases the lock
 * @throws {RepoLockedError} when a live daemon holds it (one stopping: once `waitForStoppingMs` passed)
 */
export async function acquireRepoLock (file: string, options: RepoLockOptions = {}): Promise<() => Promise<void>> {
  const deadline = Date.now() + (options.waitForStoppingMs ?? 0)
  let told = false
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600)
      await handle.writeFile(String(process.pid))
      await handle.sync()
      await handle.close()
      return async () => {
        await unlink(file).catch(() => {})
        await unlink(stoppingMarker(file)).catch(() => {})
      }
    } catch (err: any) {
      if (err.code !== 'EEXIST') throw err
      const pid = await pidIn(file)
      const where = file.replace(/\/daemon\.lock$/, '')
      if (pid !== undefined && alive(pid)) {
        const stopping = await pidIn(stoppingMarker(file)) === pid
        if (!stopping) throw new RepoLockedError(`another daemon (pid ${pid}) is already running on repo ${where}`)
        if (Date.now() >= deadline) throw new RepoLockedError(`another daemon (pid ${pid}) is stopping on repo ${where} and still holds it${options.waitForStoppingMs === undefined ? '' : ` after ${waited(options.waitForStoppingMs)}`}`)
        if (!told) { told = true; options.onWait?.(pid) }
        await sleep(STOPPING_POLL_MS)
        continue
      }
      // a lock of a dead process: taken over (a few tries: another start may take it first)
      if (attempt >= 3 && Date.now() >= deadline) throw new RepoLockedError(`could not take the repo lock ${file}`)
      await unlink(file).catch(() => {})
    }
  }
}

/**
 * Mark the lock `file`, held by this process, as held by a daemon that is
 * stopping: a start on the repo waits for it (see the module). The lock's
 * release removes the mark.
 */
export async function markStopping (file: string): Promise<void> {
  await writeFile(stoppingMarker(file), String(process.pid), { mode: 0o600 }).catch(() => {})
}
