/**
 * `shoal mount DIR`, `shoal unmount DIR`, `shoal mounts`: FUSE mounts, made
 * by the daemon (it serves them), asked for through the API.
 *
 * @module
 */
import { isAbsolute, resolve } from 'node:path'
import { InvalidArgumentError } from '../../node/errors.js'
import { ApiClient } from '../client.js'
import { formatTime, printJson, printLines, type GlobalOptions } from '../output.js'
import type { MountInfo } from '../../node/fuse/index.js'

/**
 * The daemon runs elsewhere (another working directory): a mountpoint is
 * given as an absolute path, never guessed.
 *
 * @throws {InvalidArgumentError}
 */
function absolute (dir: string): string {
  if (!isAbsolute(dir)) throw new InvalidArgumentError(`the mountpoint must be an absolute path (did you mean ${resolve(dir)}?)`)
  return dir
}

/** `shoal mount DIR`. */
export async function mountCommand (g: GlobalOptions, dir: string): Promise<void> {
  const path = absolute(dir)
  const client = await ApiClient.connect(g.repo)
  const info = await client.json<MountInfo>('POST', '/api/v0/mount', { path })
  if (g.json) printJson(info)
  else printLines(`mounted the namespace at ${info.dir} (${requests(info)})`)
}

/**
 * `shoal unmount DIR`: what was written through the mount is committed
 * before it returns; refused while files are open there, unless `force`.
 */
export async function unmountCommand (g: GlobalOptions, dir: string, opts: { force?: boolean } = {}): Promise<void> {
  const path = absolute(dir)
  const client = await ApiClient.connect(g.repo)
  const result = await client.json<{ unmounted: string }>('POST', '/api/v0/unmount', opts.force === true ? { path, force: 'true' } : { path })
  if (g.json) printJson(result)
  else printLines(`unmounted ${result.unmounted}`)
}

/** `shoal mounts`: active mounts of the daemon. */
export async function mountsCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const mounts = await client.json<MountInfo[]>('GET', '/api/v0/mounts')
  if (g.json) printJson(mounts)
  else printLines(...mounts.map(m => `${m.dir}\tsince ${formatTime(m.since)}\t${requests(m)}`))
}

/** A mount's binding, request size and read-ahead window, as one phrase. */
function requests (m: MountInfo): string {
  const readAhead = m.readAheadKb === undefined ? '' : `, read-ahead ${m.readAheadKb} KiB`
  return `${m.binding}, requests up to ${m.maxRequest / 1024} KiB${readAhead}`
}
