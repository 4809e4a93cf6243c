/**
 * A daemon on a fresh repo, set up with some settings, with its namespace
 * mounted: what the FUSE tests through the CLI start from.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { defer, tempDir, type CleanupContext } from '../helpers/temp.js'
import { shoalOk, startDaemon, type TestDaemon } from '../helpers/cli.js'
import { forceUnmount, requireFuse } from '../node/fuse/helpers.js'

/** Options of {@link mountedDaemon}. */
export interface MountedDaemonOptions {
  /** `shoal config set KEY VALUE` before the daemon starts, in order. */
  config?: Array<[key: string, value: string]>
  /** The folder the repo and the mountpoint go in. @default a fresh temp folder */
  under?: string
}

/**
 * Init a repo, apply `options.config`, start its daemon and mount its
 * namespace on a fresh directory. The mount is freed and the daemon stopped
 * when the test ends, pass or fail.
 */
export async function mountedDaemon (t: CleanupContext, options: MountedDaemonOptions = {}): Promise<{ dir: string, repo: string, mnt: string, daemon: TestDaemon }> {
  await requireFuse()
  const dir = options.under ?? await tempDir(t, 'shoal-fuse-daemon-')
  const repo = join(dir, 'repo')
  const mnt = join(dir, 'mnt')
  await mkdir(mnt)
  // deferred before the daemon's stop, so it runs after it (cleanups run last in, first out): the daemon unmounts
  // and commits first, and this frees only what a failed test left
  defer(t, async () => { await forceUnmount(mnt) })
  await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
  for (const [key, value] of options.config ?? []) await shoalOk(repo, ['config', 'set', key, value])
  const daemon = await startDaemon(t, repo)
  await shoalOk(repo, ['mount', mnt])
  return { dir, repo, mnt, daemon }
}
