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
 * The lock is made whole or not at all (written under another name, then
 * linked: `createLock`), and a dead process's lock is moved aside and
 * looked at before it goes (`takeOver`): two starts polling at once never
 * both hold it.
 *
 * @module
 */
import { link, open, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { AbortedError, RepoLockedError } from '../errors.js'

/** How often a start waiting for a stopping daemon looks at the lock again. */
const STOPPING_POLL_MS = 100
/** Takeovers of a dead process's lock tried before giving up (another start may take it each time). */
const MAX_TAKEOVERS = 3

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

/** The marker a stopping daemon writes beside the lock `file`. */
function stoppingMarker (file: string): string {
  return `${file}.stopping`
}

/** A wait, for a message: `300 ms`, `35 s`. */
function waited (ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`
}

/**
 * Create the lock `file` holding this process's pid, whole or not at all:
 * written and synced under a name of this process's, then linked to the
 * lock's name, which fails when it exists. Before, the lock was created
 * empty and the pid written after: a start that read it in between took it
 * for a dead process's and removed it, and both daemons ran on the repo.
 *
 * @returns false when the lock exists
 */
async function createLock (file: string): Promise<boolean> {
  const mine = `${file}.${process.pid}.tmp`
  try {
    await writePid(mine, 'w')
    await link(mine, file).catch(async (err: any) => {
      // a file system without hard links (vfat, exFAT, some network and FUSE file systems): created in place, as before
      if (!NO_LINKS.has(err.code)) throw err
      await writePid(file, 'wx')
    })
    return true
  } catch (err: any) {
    if (err.code === 'EEXIST') return false
    throw err
  } finally {
    await unlink(mine).catch(() => {})
  }
}

/** Write this process's pid into `file`, opened with `flags`, and sync it. */
async function writePid (file: string, flags: 'w' | 'wx'): Promise<void> {
  const handle = await open(file, flags, 0o600)
  try {
    await handle.writeFile(String(process.pid))
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** What `link(2)` fails with on a file system that has no hard links. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'])

/**
 * Remove the lock `file` of a process that is gone (`pid`, undefined for a
 * lock holding none): moved aside under a name of this process's, then
 * looked at. Another start that took the lock meanwhile (it removed the
 * dead one first) gets its lock back rather than lose it to a blind unlink.
 */
async function takeOver (file: string, pid: number | undefined): Promise<void> {
  const aside = `${file}.stale.${process.pid}`
  try {
    await rename(file, aside)
  } catch {
    return // gone already: another start removed it
  }
  if (await pidIn(aside) !== pid) await link(aside, file).catch(() => {})
  await unlink(aside).catch(() => {})
}

/** Options of {@link acquireRepoLock}. */
export interface RepoLockOptions {
  /** How long to wait for a daemon that holds the lock and is stopping. @default 0: refused at once */
  waitForStoppingMs?: number
  /** Told once, when the start begins to wait for a stopping daemon, with its pid. */
  onWait?: (pid: number) => void
  /** Ends the wait for a stopping daemon (the start is no longer wanted): AbortedError. */
  signal?: AbortSignal
}

/**
 * Take the repo's daemon lock (see the module).
 *
 * @returns a function that releases the lock
 * @throws {RepoLockedError} when a live daemon holds it (one stopping: once `waitForStoppingMs` passed)
 * @throws {AbortedError} when `signal` fires while it waits
 */
export async function acquireRepoLock (file: string, options: RepoLockOptions = {}): Promise<() => Promise<void>> {
  const { signal } = options
  const deadline = Date.now() + (options.waitForStoppingMs ?? 0)
  const where = file.replace(/\/daemon\.lock$/, '')
  let told = false
  let takeovers = 0
  for (;;) {
    if (signal?.aborted === true) throw new AbortedError(`stopped while waiting for the daemon stopping on repo ${where}`)
    if (await createLock(file)) {
      // a mark left by an earlier holder that did not stop cleanly is not this lock's
      await unlink(stoppingMarker(file)).catch(() => {})
      return async () => {
        await unlink(file).catch(() => {})
        await unlink(stoppingMarker(file)).catch(() => {})
      }
    }
    const pid = await pidIn(file)
    if (pid !== undefined && alive(pid)) {
      const stopping = await pidIn(stoppingMarker(file)) === pid
      if (!stopping) throw new RepoLockedError(`another daemon (pid ${pid}) is already running on repo ${where}`)
      if (Date.now() >= deadline) throw new RepoLockedError(`another daemon (pid ${pid}) is stopping on repo ${where} and still holds it${options.waitForStoppingMs === undefined ? '' : ` after ${waited(options.waitForStoppingMs)}`}`)
      if (!told) { told = true; options.onWait?.(pid) }
      await sleep(STOPPING_POLL_MS, undefined, { signal }).catch(() => {})
      continue
    }
    // a lock of a process that is gone: taken over (a few tries: another start may take it first)
    if (++takeovers > MAX_TAKEOVERS) throw new RepoLockedError(`could not take the repo lock ${file}`)
    await takeOver(file, pid)
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
