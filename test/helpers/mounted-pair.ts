/**
 * Two real daemons in one private swarm, connected, each serving a mount of
 * the namespace in its own process (so the test's process may touch both
 * mounts itself): what the tests of one node's mount seeing another node's
 * changes start from. Stopped, unmounted and removed when the suite's
 * context ends, pass or fail.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { defer, tempDir, type CleanupContext } from './temp.js'
import { initSwarm, shoalJson, shoalOk, startDaemon, type TestDaemon } from './cli.js'
import { forceUnmount, requireFuse } from '../node/fuse/helpers.js'

/** One of the pair: its daemon, its mountpoint, and what `shoal mount` answered. */
export interface MountedNode {
  daemon: TestDaemon
  mnt: string
  /** The binding serving the mount (`libfuse3`, or `libfuse2` where libfuse3's was not built). */
  binding: string
}

/** Nodes `a` and `b`, each with its mount; `prefix` names the temp folder. */
export async function mountedPair (ctx: CleanupContext, prefix: string): Promise<{ a: MountedNode, b: MountedNode }> {
  await requireFuse()
  const dir = await tempDir(ctx, prefix)
  const mnts = [join(dir, 'mnt-a'), join(dir, 'mnt-b')]
  for (const mnt of mnts) await mkdir(mnt)
  // runs after the daemons stopped (cleanups run last in, first out), before the temp dir goes
  defer(ctx, async () => { for (const mnt of mnts) await forceUnmount(mnt) })
  const [a, b] = await Promise.all((await initSwarm(dir, ['a', 'b'])).map(async r => await startDaemon(ctx, r)))
  await shoalOk(b.repo, ['peers', 'connect', (await shoalJson(a.repo, ['id'])).addresses[0]])
  const mounted = async (daemon: TestDaemon, mnt: string): Promise<MountedNode> =>
    ({ daemon, mnt, binding: (await shoalJson<{ binding: string }>(daemon.repo, ['mount', mnt])).binding })
  return { a: await mounted(a, mnts[0]), b: await mounted(b, mnts[1]) }
}
