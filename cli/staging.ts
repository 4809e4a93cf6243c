/**
 * Staging files of downloads (`get`, `car export`): where a download is
 * written before it is renamed into place, and their removal when the CLI
 * is interrupted.
 *
 * Why: a download goes to `OUT.shoal-partial-PID` beside its target so a
 * failure never leaves a half-written `OUT`. A failure inside the command
 * removes it, but Ctrl-C or a SIGTERM ended the process first and left it
 * behind. And the name is predictable: opened with `w`, a symbolic link
 * planted there was followed, writing wherever it pointed.
 *
 * How: staging files are created exclusively ({@link openStagingFile}:
 * `wx`, which neither follows a link nor reuses a file), and every staging
 * path in use is held in a small registry. While it is not empty, or a
 * staging path is being created ({@link createHeld}), SIGINT, SIGTERM and
 * SIGHUP remove what it holds and exit as a shell reports the signal (130,
 * 143, 129). A signal that comes while a creation is under way waits for it
 * to settle first: the file exists from the moment the system call returns,
 * before the code that awaited it runs, and a handler installed only then
 * left a Ctrl-C of that moment to Node's default, which killed the process
 * with the staging file behind (a test under load caught it).
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { rmSync } from 'node:fs'
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { AlreadyExistsError, ShoalError } from '../node/errors.js'

/** The longest file name Linux file systems take, in bytes. */
const NAME_MAX = 255

/**
 * The staging name of `out` for this process: `OUT.shoal-partial-PID`, or,
 * when that name would pass {@link NAME_MAX} (a name of 255 bytes is valid
 * and IPFS directories hold them), `.shoal-partial-PID-HASH` beside it, the
 * hash of the name keeping two such names apart.
 */
export function stagingPath (out: string): string {
  const suffix = `.shoal-partial-${process.pid}`
  if (Buffer.byteLength(basename(out) + suffix) <= NAME_MAX) return `${out}${suffix}`
  const digest = createHash('sha256').update(basename(out)).digest('hex').slice(0, 16)
  return join(dirname(out), `${suffix}-${digest}`)
}

/** Exit codes of the signals that interrupt a command (a download, an add of a folder), as a shell reports them. */
export const SIGNAL_EXIT: Readonly<Partial<Record<NodeJS.Signals, number>>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 }
/** The signals of {@link SIGNAL_EXIT}. */
export const SIGNALS = Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]

const held = new Set<string>()
/** Creations of staging paths under way ({@link createHeld}). */
const creating = new Set<Promise<unknown>>()

/** Paths held or being created: the signal handlers are set while there are any. */
function busy (): boolean {
  return held.size > 0 || creating.size > 0
}

function onSignal (signal: NodeJS.Signals): void {
  // a staging path whose creation is under way is held once it returns: wait for that, then remove what is held
  void Promise.allSettled(creating).then(() => {
    for (const path of held) {
      try { rmSync(path, { recursive: true, force: true }) } catch {}
    }
    held.clear()
    process.exit(SIGNAL_EXIT[signal] ?? 1)
  })
}

function stopListeningWhenIdle (): void {
  if (!busy()) for (const s of SIGNALS) process.off(s, onSignal)
}

/**
 * Create the staging path `path` with `create` (which must fail when
 * anything is there already) and hold it: removed if the CLI is
 * interrupted before {@link release} is called for it, from the moment the
 * creation is asked for. What `create` failed to make is not touched.
 */
export async function createHeld<T> (path: string, create: () => Promise<T>): Promise<T> {
  if (!busy()) for (const s of SIGNALS) process.on(s, onSignal)
  const creation = create()
  creating.add(creation)
  try {
    const made = await creation
    held.add(path)
    return made
  } finally {
    creating.delete(creation)
    stopListeningWhenIdle()
  }
}

/** `path` is no longer the CLI's to remove (renamed into place, removed, or kept on purpose). */
export function release (path: string): void {
  if (held.delete(path)) stopListeningWhenIdle()
}

/**
 * Create the staging file `path` exclusively and hold it ({@link createHeld}).
 *
 * @throws {AlreadyExistsError} when anything is there already (a file left by another run, a planted link): it is not touched
 */
export async function openStagingFile (path: string, shownAs: string): Promise<FileHandle> {
  try {
    return await createHeld(path, async () => await open(path, 'wx'))
  } catch (err: any) {
    if (err?.code === 'EEXIST') throw new AlreadyExistsError(`cannot write ${shownAs}: its staging name ${path} is taken (left by an interrupted run, or not ours); remove it and try again`)
    throw err
  }
}

/** A complete download could not be renamed into place: it is kept at its staging name, which the message gives. */
export class DownloadKeptError extends ShoalError {
  override name = 'DownloadKeptError'
}

/**
 * Rename the complete download `staging` to `out`. When that fails (a
 * directory that appeared at `out` meanwhile, not empty) the download is
 * kept, never deleted.
 *
 * @throws {DownloadKeptError} naming where the download is
 */
export async function moveIntoPlace (staging: string, out: string): Promise<void> {
  try {
    await rename(staging, out)
  } catch (err: any) {
    release(staging)
    const why = err?.code === 'EEXIST' || err?.code === 'ENOTEMPTY' ? `${out} appeared meanwhile and is not empty` : err?.code === 'EISDIR' ? `${out} is now a directory` : String(err?.code ?? err?.message ?? err)
    throw new DownloadKeptError(`cannot move the download into place (${why}): it is complete and kept at ${staging}`, { cause: err })
  }
  release(staging)
}

/**
 * Where one file download writes: a staging file renamed into place at the
 * end, or `out` itself when it is a device, a FIFO or a socket (`-o
 * /dev/null`, `-o /dev/stdout`, a named pipe). Renaming over such a node
 * would replace it with a regular file (as root, `/dev/null` itself), so
 * those are written in place; they hold no earlier content to keep.
 */
export interface DownloadTarget {
  /** Where the bytes go. */
  readonly handle: FileHandle
  /** The download is complete: close, and move it into place when staged. */
  finish: () => Promise<void>
  /** The download failed: close, and remove what was staged. */
  abort: () => Promise<void>
}

/**
 * Open the {@link DownloadTarget} of `out` (already checked by
 * `checkOutputPath`).
 *
 * @throws {AlreadyExistsError} when the staging name is taken
 */
export async function openDownloadTarget (out: string): Promise<DownloadTarget> {
  const there = await stat(out).catch(() => undefined)
  if (there !== undefined && !there.isFile() && !there.isDirectory()) {
    const handle = await open(out, 'w')
    return {
      handle,
      finish: async () => { await handle.close().catch(() => {}) },
      abort: async () => { await handle.close().catch(() => {}) }
    }
  }
  const tmp = stagingPath(out)
  const handle = await openStagingFile(tmp, out)
  return {
    handle,
    finish: async () => {
      // the write stream closed it already when it ended
      await handle.close().catch(() => {})
      await moveIntoPlace(tmp, out)
    },
    abort: async () => {
      await handle.close().catch(() => {})
      await rm(tmp, { force: true })
      release(tmp)
    }
  }
}

/** A download could not be written where it was asked to go (disk full, no permission, …). */
export class LocalWriteError extends ShoalError {
  override name = 'LocalWriteError'
}

/** `err` as the error of a download to `out`: a system error of the write becomes a {@link LocalWriteError} naming `out`; others are returned as they are. */
export function downloadError (out: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  if (typeof code !== 'string' || (err as NodeJS.ErrnoException).syscall === undefined) return err
  const why = code === 'ENOSPC' ? 'no space left on the device' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'read-only file system' : code === 'ENOENT' ? 'no file can be created in its directory' : code
  return new LocalWriteError(`cannot write ${out}: ${why}; nothing was kept`, { cause: err })
}
