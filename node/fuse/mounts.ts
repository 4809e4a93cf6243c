/**
 * Mountpoints: checking one before mounting, the record of active mounts in
 * `<repo>/mounts.json` (what a killed daemon leaves behind), and freeing a
 * stale mount — `fusermount -uz`, then the fusectl abort when that is not
 * enough.
 *
 * @module
 */
import { execFile } from 'node:child_process'
import { readdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises'
import { isAbsolute, resolve } from 'node:path'
import { promisify } from 'node:util'
import { InvalidArgumentError, NotADirectoryError, NotFoundError } from '../errors.js'
import type { Logger } from '../logger.js'
import { MountpointBusyError } from './errors.js'

const run = promisify(execFile)
/** Bound of one helper command (fusermount, mount, umount). */
const COMMAND_TIMEOUT_MS = 10_000
/** Where the kernel's FUSE control file system lives. */
const FUSECTL = '/sys/fs/fuse/connections'

/** One active mount as recorded. */
export interface MountRecord {
  /** Absolute mountpoint. */
  dir: string
  /** When it was mounted (ms). */
  since: number
}

/** Read `<repo>/mounts.json` (none or unreadable: no records). */
export async function readMountRecords (file: string): Promise<MountRecord[]> {
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as { mounts?: unknown }
    if (!Array.isArray(json.mounts)) return []
    return json.mounts.filter((m): m is MountRecord => typeof m?.dir === 'string' && isAbsolute(m.dir) && typeof m?.since === 'number')
  } catch {
    return []
  }
}

/** Write `<repo>/mounts.json` atomically. */
export async function writeMountRecords (file: string, records: MountRecord[]): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify({ version: 1, mounts: records }, null, 2) + '\n')
  await rename(tmp, file)
}

/** A mount in `/proc/self/mountinfo`. */
export interface MountInfoLine {
  /** Mountpoint (octal escapes decoded). */
  dir: string
  /** Device minor number: for a FUSE mount, its connection number in fusectl. */
  minor: number
  /** File-system type (`fuse.shoal`, `ext4`…). */
  type: string
}

/** The mounts this process sees. */
export async function mountTable (): Promise<MountInfoLine[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const out: MountInfoLine[] = []
  for (const line of text.split('\n')) {
    const fields = line.split(' ')
    const dash = fields.indexOf('-')
    if (fields.length < 7 || dash < 0) continue
    const minor = Number(fields[2].split(':')[1])
    out.push({ dir: unescapeMount(fields[4]), minor, type: fields[dash + 1] ?? '' })
  }
  return out
}

function unescapeMount (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

/**
 * Whether a FUSE file system is mounted at `dir` (an absolute path) now, by
 * /proc/self/mountinfo, which names a mountpoint by its real path (`dir`
 * through a symlink is looked up as both). Asynchronous only: a lookup of a
 * mount of this process is answered by this process.
 */
export async function isFuseMountAt (dir: string): Promise<boolean> {
  const real = await realpath(dir).catch(() => dir)
  return (await mountTable()).some(m => (m.dir === dir || m.dir === real) && m.type.startsWith('fuse'))
}

/** True when `dir` is a FUSE mount whose server is gone (every access answers ENOTCONN). */
export async function isStaleMount (dir: string): Promise<boolean> {
  try {
    await stat(dir)
    return false
  } catch (err: any) {
    return err?.code === 'ENOTCONN' || err?.code === 'ECONNABORTED'
  }
}

/**
 * Free a FUSE mount whose server is gone: `fusermount -uz`; when the mount
 * is still there, abort its connection through fusectl and `umount -l` it.
 * Resolves when `dir` is no longer a mountpoint.
 *
 * @throws {MountpointBusyError} when it cannot be freed
 */
export async function cleanStaleMount (dir: string, logger: Logger): Promise<void> {
  const mounted = async (): Promise<MountInfoLine | undefined> => (await mountTable()).find(m => m.dir === dir)
  await run('fusermount', ['-uz', dir], { timeout: COMMAND_TIMEOUT_MS }).catch((err: any) => {
    logger.debug({ dir, err: err?.message }, 'fusermount -uz failed')
  })
  const left = await mounted()
  if (left === undefined) return
  logger.warn({ dir, connection: left.minor }, 'fusermount could not free the mount: aborting its FUSE connection')
  await run('mount', ['-t', 'fusectl', 'none', FUSECTL], { timeout: COMMAND_TIMEOUT_MS }).catch(() => {})
  await writeFile(`${FUSECTL}/${left.minor}/abort`, '1').catch((err: any) => {
    logger.debug({ dir, err: err?.message }, 'fusectl abort failed')
  })
  await run('umount', ['-l', dir], { timeout: COMMAND_TIMEOUT_MS }).catch(() => {})
  if (await mounted() !== undefined) {
    throw new MountpointBusyError(`${dir} is a stale FUSE mount that could not be freed: run \`fusermount -uz ${dir}\` (docs/fuse.md, "A stuck mount")`)
  }
}

/**
 * A mountpoint as `mount` and `unmount` name it: the absolute path given,
 * normalised (`/mnt/x/`, `/mnt/x/.` and `/mnt/y/../x` are `/mnt/x`), so an
 * unmount finds the mount whatever way its path is written. Symbolic links
 * are not followed.
 *
 * @throws {InvalidArgumentError} when `dir` is not an absolute path
 */
export function mountpointPath (dir: string): string {
  if (typeof dir !== 'string' || dir === '' || !isAbsolute(dir)) throw new InvalidArgumentError(`the mountpoint must be an absolute path, got ${JSON.stringify(dir)}`)
  return resolve(dir)
}

/**
 * Check a directory to mount on: absolute, existing, a directory, empty,
 * not a mountpoint. Returns its normalised path.
 *
 * @throws {InvalidArgumentError} {NotFoundError} {NotADirectoryError} {MountpointBusyError}
 */
export async function checkMountpoint (dir: string): Promise<string> {
  const path = mountpointPath(dir)
  let info
  try {
    info = await stat(path)
  } catch (err: any) {
    if (err?.code === 'ENOENT') throw new NotFoundError(`no such directory: ${path}`)
    if (err?.code === 'ENOTCONN' || err?.code === 'ECONNABORTED') throw new MountpointBusyError(`${path} is a stale FUSE mount: free it with \`fusermount -uz ${path}\``)
    throw err
  }
  if (!info.isDirectory()) throw new NotADirectoryError(`not a directory: ${path}`)
  if ((await mountTable()).some(m => m.dir === path)) throw new MountpointBusyError(`${path} is already a mountpoint`)
  if ((await readdir(path)).length > 0) throw new MountpointBusyError(`${path} is not empty: mount on an empty directory`)
  return path
}
