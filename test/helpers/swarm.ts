/**
 * Swarms of real Shoal nodes in one process for tests: real libp2p on
 * 127.0.0.1, real LevelDB in temp repos, one private swarm key, a short
 * durability grace period; every node stopped when the test ends.
 */
import { createHash, randomBytes } from 'node:crypto'
import { basename, join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { createShoalNode, type ShoalNode } from '../../node/node.js'
import { initRepo } from '../../node/repo/init.js'
import { formatSwarmKey } from '../../protocol/swarm-key.js'
import { loadConfig, saveConfig } from '../../node/repo/config.js'
import { createLogger, type LogLevel } from '../../node/logger.js'
import { defer, tempDir, type CleanupContext } from './temp.js'
import type { ShardsRequest } from '../../protocol/shards.js'

/** The durability grace period of test repos. */
export const GRACE_MS = 2_000

/** One private swarm for every node of a test file. */
const SWARM_KEY = formatSwarmKey(randomBytes(32))

/** Wait until every one of `nodes` has the namespace record of `path`. */
export async function untilOnEvery (nodes: ShoalNode[], path: string): Promise<void> {
  await until(`the record of ${path} on every node`, async () => {
    for (const n of nodes) if ((await n.components.namespace.lookup(path)) === undefined) return false
    return true
  })
}

/** A test repo in `dir` (private swarm, short grace, fast namespace sync). */
export async function makeRepo (dir: string, name: string, zone?: string): Promise<string> {
  const repo = join(dir, name)
  await initRepo(repo, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', swarmKey: SWARM_KEY })
  const config = await loadConfig(join(repo, 'config.json'))
  config.durability = { ...config.durability, grace: GRACE_MS, checkInterval: 0, repairRate: 512 * 1024 * 1024 }
  if (zone !== undefined) config.durability.zone = zone
  config.namespace = { ...config.namespace, syncInterval: 500 }
  await saveConfig(join(repo, 'config.json'), config)
  return repo
}

/** The nodes' log level: `$SHOAL_TEST_LOG_LEVEL` (to read what a failing multi-node test did), else silent. */
const TEST_LOG_LEVEL = (process.env.SHOAL_TEST_LOG_LEVEL ?? 'silent') as LogLevel

export async function startNode (repo: string): Promise<ShoalNode> {
  const node = await createShoalNode({ repo, logger: createLogger(TEST_LOG_LEVEL).child({ repo: basename(repo) }) })
  await node.start()
  return node
}

export async function connectAll (nodes: ShoalNode[]): Promise<void> {
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const addr = nodes[j].components.libp2p.getMultiaddrs()[0]
      await nodes[i].components.libp2p.dial(multiaddr(addr.toString()))
    }
  }
}

export async function until (what: string, fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

export async function readAll (node: ShoalNode, path: string): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of node.components.files.cat(path, { signal: AbortSignal.timeout(60_000) })) chunks.push(chunk)
  return Buffer.concat(chunks)
}

export function sha (b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex')
}

export async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

export interface Swarm { nodes: Array<ShoalNode | undefined>, repos: string[] }

export async function swarmOf (t: CleanupContext, n: number): Promise<Swarm> {
  const dir = await tempDir(t, 'shoal-durability-')
  const repos = await Promise.all(Array.from({ length: n }, async (_, i) => await makeRepo(dir, `n${i}`)))
  const swarm: Swarm = { nodes: [], repos }
  defer(t, async () => { await Promise.all(swarm.nodes.map(async node => { await node?.stop().catch(() => {}) })) })
  for (const repo of repos) swarm.nodes.push(await startNode(repo))
  await connectAll(swarm.nodes as ShoalNode[])
  return swarm
}

export function live (swarm: Swarm): ShoalNode[] {
  return swarm.nodes.filter((n): n is ShoalNode => n !== undefined)
}

export async function stopNode (swarm: Swarm, i: number): Promise<void> {
  await swarm.nodes[i]?.stop()
  swarm.nodes[i] = undefined
}


/**
 * Make `node`'s durability requests that `pick` chooses wait for `gate`
 * before they go out (a holder that answers late); restored when the test ends.
 */
export function holdBackRequests (t: CleanupContext, node: ShoalNode, pick: (peer: string, request: ShardsRequest) => boolean, gate: Promise<void>): void {
  const network = node.components.durability.network
  const request = network.request.bind(network)
  network.request = async (peer, message, signal) => {
    if (pick(peer, message)) await gate
    return await request(peer, message, signal)
  }
  defer(t, async () => { network.request = request })
}
