/**
 * `shoal daemon`: run a node, its API and its read-only gateway until SIGINT/SIGTERM.
 *
 * @module
 */
import { rename, unlink, writeFile } from 'node:fs/promises'
import { formatApiMultiaddr, parseApiAddress } from '../protocol/api-address.js'
import { createApiServer, readApiToken } from './api/index.js'
import { createGatewayServer, gatewayUrl, isLoopbackHost, parseGatewaySetting, type GatewayServer } from './gateway/index.js'
import { ShoalError } from './errors.js'
import { nativeHash, nativeHashError } from './blocks/native-hash.js'
import { createShoalNode, type ShoalNode } from './node.js'
import type { LogLevel } from './logger.js'
import { acquireRepoLock, markStopping, initRepo, loadConfig, repoExists, repoFolderOpenMode, repoLayout } from './repo/index.js'
import { Ballast, DiskGuard } from './repo/disk.js'

/** Options of {@link startDaemon}. */
export interface DaemonInit {
  repo: string
  /** Create the repo with embedded defaults when there is none. @default false */
  init?: boolean
  /** Log level (else `$SHOAL_LOG_LEVEL`, else the config's). */
  logLevel?: LogLevel
  /**
   * How long a stop waits, from its request, for the background placement
   * of files added just before it (the node's `placementDeadline`).
   * @default {@link DEFAULT_PLACEMENT_WAIT_MS}
   */
  placementWaitMs?: number
  /**
   * How long the start waits for a daemon that holds the repo and is
   * stopping (node/repo/lock.ts). @default {@link STOPPING_DAEMON_WAIT_MS}
   */
  stoppingWaitMs?: number
  /** Ends that wait (a stop asked for meanwhile): the start fails with AbortedError, nothing opened. */
  signal?: AbortSignal
}

/**
 * How long a daemon's stop waits for the placement of files added just
 * before, by default: half of the default shutdown timeout (30 s), so the
 * rest of the stop has the other half.
 */
export const DEFAULT_PLACEMENT_WAIT_MS = 15_000

/**
 * How long a start waits, by default, for a daemon that holds the repo and
 * is stopping (node/repo/lock.ts): the default shutdown timeout (30 s),
 * after which that stop is forced, and a little more. `shoal daemon` waits
 * its own shutdown timeout and as much more.
 */
export const STOPPING_DAEMON_WAIT_MS = 35_000

/** Options of {@link Daemon.stop}. */
export interface DaemonStopOptions {
  /**
   * Keep the mounts in `<repo>/mounts.json`, so that the next start mounts
   * them again, as after a crash: the daemon was killed rather than asked
   * to stop (the `shoal daemon` process that started it went). They are
   * unmounted all the same, their files committed. @default false
   */
  keepMounts?: boolean
}

/** A running daemon. */
export interface Daemon {
  node: ShoalNode
  /** `http://host:port` of the API. */
  apiUrl: string
  /** Multiaddr written to `<repo>/api`. */
  apiMultiaddr: string
  /** `http://host:port` of the read-only gateway (also in `<repo>/gateway`); undefined when the config turns it off. */
  gatewayUrl?: string
  /** Stop the API and the node, remove `<repo>/api`, release the lock. Idempotent (a second call's options are not looked at). */
  stop: (options?: DaemonStopOptions) => Promise<void>
}

/** The API address is taken. */
export class ApiAddressInUseError extends ShoalError {
  override name = 'ApiAddressInUseError'
}

/** Write `line` to `file` through a temporary file, so a reader never sees it half written. */
async function writeLineAtomically (file: string, line: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, line + '\n')
  await rename(tmp, file)
}

/**
 * Start a node and its API on a repo. Refuses (RepoLockedError) when another
 * daemon runs on the same repo.
 */
export async function startDaemon (init: DaemonInit): Promise<Daemon> {
  const layout = repoLayout(init.repo)
  if (init.init === true && !(await repoExists(init.repo))) await initRepo(init.repo)
  // checked before anything is opened or changed (a missing repo is named as such first):
  // a daemon never serves its API without a real token
  await loadConfig(layout.config)
  const token = await readApiToken(layout.apiToken)
  // a disk filled to the last byte: give back the ballast so the stores can open
  const released = await new Ballast(layout.ballast, new DiskGuard({ path: layout.root })).releaseIfFull()
  const node = await createShoalNode({ repo: init.repo, logLevel: init.logLevel })
  const { components } = node
  const release = await acquireRepoLock(layout.lock, {
    waitForStoppingMs: init.stoppingWaitMs ?? STOPPING_DAEMON_WAIT_MS,
    signal: init.signal,
    onWait: pid => { components.logger.warn({ pid, waitS: (init.stoppingWaitMs ?? STOPPING_DAEMON_WAIT_MS) / 1000 }, 'the daemon that ran on this repo is stopping: waiting for it to release the repo') }
  })
  let api: ReturnType<typeof createApiServer> | undefined
  let gateway: GatewayServer | undefined
  try {
    const gatewaySetting = parseGatewaySetting(components.config.gateway)
    await node.start()
    const { host, port } = parseApiAddress(components.config.api)
    api = createApiServer(components, { host, port, token })
    const address = await api.start().catch((err: any) => {
      if (err.code === 'EADDRINUSE') throw new ApiAddressInUseError(`API address ${components.config.api} is already in use: set another with \`shoal config set api 127.0.0.1:PORT\``)
      throw err
    })
    let gatewayAt: string | undefined
    await unlink(layout.gateway).catch(() => {})
    if (gatewaySetting.enabled) {
      gateway = createGatewayServer(components, { host: gatewaySetting.host, port: gatewaySetting.port })
      const bound = await gateway.start()
      gatewayAt = gatewayUrl(bound.address, bound.port)
      // written before <repo>/api, which says the daemon is ready
      await writeLineAtomically(layout.gateway, gatewayAt)
      if (!isLoopbackHost(gatewaySetting.host)) {
        components.logger.warn({ gateway: gatewayAt }, 'the gateway listens beyond this machine: whoever reaches it reads everything this node can fetch from the swarm, private or not (docs/security.md)')
      }
    }
    // mounts left by a daemon that was killed: freed and mounted again before we say we are ready
    await components.fuse.restore().catch((err: any) => { components.logger.warn({ err: err?.message }, 'restoring recorded mounts failed') })
    // said before <repo>/api (which says the daemon is ready), so whoever waits for that file finds the warning already written
    if (released) components.logger.warn({ ballast: layout.ballast }, 'the repo disk was full: its ballast was deleted so the node could start; remove files and run `shoal gc`, or free space')
    const openMode = await repoFolderOpenMode(layout.root).catch(() => undefined)
    if (openMode !== undefined) components.logger.warn({ repo: layout.root, mode: openMode }, `the repo folder is open to other users of this machine (mode ${openMode}): they can read the swarm's data this node stores; close it with \`chmod go-rwx ${layout.root}\` (docs/security.md)`)
    if (nativeHash() === undefined) components.logger.info({ err: nativeHashError()?.message }, 'the sha-256 addon is not built (`npm run build:hash`, needs make, g++ and python3): blocks received from peers are hashed through WebCrypto, which copies each first, and an import\'s leaves one at a time (docs/decisions.md, "Received blocks hashed without a copy")')
    const apiMultiaddr = formatApiMultiaddr(address.address, address.port)
    await writeLineAtomically(layout.api, apiMultiaddr)
    components.logger.info({ api: apiMultiaddr, gateway: gatewayAt ?? 'off', peerId: components.peerId, repo: layout.root, swarm: components.config.privateSwarm ? 'private' : 'open' }, 'daemon ready')
    new Ballast(layout.ballast, components.disk).ensure().catch((err: any) => { components.logger.warn({ err: err?.message }, 'cannot write the ballast file') })
    if (!components.config.privateSwarm) {
      components.logger.warn({ listen: components.config.listen, trusted: components.trust.list().length }, 'open swarm: any node that reaches the listen addresses can connect and fetch blocks; only this node and `shoal trust` peers write the namespace (docs/security.md)')
    }
    let stopping: Promise<void> | undefined
    const server = api
    const gatewayServer = gateway
    return {
      node,
      apiMultiaddr,
      gatewayUrl: gatewayAt,
      apiUrl: address.family === 'IPv6' ? `http://[${address.address}]:${address.port}` : `http://${address.address}:${address.port}`,
      async stop (options: DaemonStopOptions = {}) {
        stopping ??= (async () => {
          // counted from the stop request: the API, the gateway and the unmounts take their share of the wait
          const placementDeadline = Date.now() + (init.placementWaitMs ?? DEFAULT_PLACEMENT_WAIT_MS)
          // a start on this repo meanwhile waits for this stop rather than failing (node/repo/lock.ts)
          await markStopping(layout.lock)
          await unlink(layout.api).catch(() => {})
          await unlink(layout.gateway).catch(() => {})
          await gatewayServer?.stop()
          await server.stop()
          await node.stop({ placementDeadline, keepMounts: options.keepMounts })
          await release()
          components.logger.info('daemon stopped')
          components.logger.flush()
        })()
        await stopping
      }
    }
  } catch (err) {
    await api?.stop().catch(() => {})
    await gateway?.stop().catch(() => {})
    await unlink(layout.gateway).catch(() => {})
    await node.stop().catch(() => {})
    await release()
    throw err
  }
}
