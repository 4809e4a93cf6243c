/**
 * A Shoal node: builds the one `components` object and starts/stops it.
 *
 * @module
 */
import './polyfills.js'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { parseSwarmKey } from '../protocol/swarm-key.js'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createBlockStore, type BlockStore } from './blocks/index.js'
import { openStore } from './repo/store-damage.js'
import { parseChunker, type ChunkerSpec } from './content/index.js'
import { LeafWorker } from './content/leaf-chunker.js'
import { Files } from './files/index.js'
import { createLogger, resolveLogLevel, type Logger, type LogLevel } from './logger.js'
import { createMetrics, registerExchangeMetrics, registerPeerMetrics, type NodeMetrics } from './metrics/index.js'
import { createNamespace, signerFromKey, WriterTrust, type Replica } from './namespace/index.js'
import type { NamespaceSync } from './namespace/sync.js'
import { registerNamespaceMetrics } from './namespace/metrics.js'
import { createLibp2pSync } from './namespace/libp2p-network.js'
import { swarmListenError } from './net/listen-errors.js'
import { createHost, type ShoalLibp2p } from './net/host.js'
import { foreignConnectionWarnings } from './net/swarm-guard.js'
import { peerTrafficOf } from './api/peer-traffic.js'
import { PeerManager } from './peers/index.js'
import { TrustAdmin } from './peers/trust-admin.js'
import { createBlockExchange, ExpectedPuts, type BlockExchange } from './exchange/index.js'
import { createDurability, GcLock, registerDurabilityMetrics, type DurabilityService, type Holdings } from './durability/index.js'
import { TierService } from './tiers/service.js'
import { Blocks } from './reads/index.js'
import { PinIndex } from './reads/pin-index.js'
import { DiskGuard } from './repo/disk.js'
import { loadConfig, loadIdentity, repoLayout, type RepoConfig, type RepoLayout } from './repo/index.js'
import { createFuseService, registerFuseMetrics, type FuseService } from './fuse/index.js'

/** Everything a node's services are built from. */
export interface ShoalComponents {
  repo: RepoLayout
  config: RepoConfig
  peerId: string
  logger: Logger
  metrics: NodeMetrics
  blockstore: BlockStore
  /** This node's replica of the shared namespace. */
  namespace: Replica
  /** Whose namespace entries are applied. */
  trust: WriterTrust
  /** `shoal trust`: changes the trust and saves it in the config. */
  trustAdmin: TrustAdmin
  /** Keeps the namespace converged with the swarm. */
  sync: NamespaceSync
  files: Files
  /** The libp2p host (started by the node's `start`). */
  libp2p: ShoalLibp2p
  peers: PeerManager
  /** Block exchange with other nodes (`/shoal/blocks/1.0.0`). */
  exchange: BlockExchange
  /** The repo's default chunker. */
  chunker: ChunkerSpec
  /** Pins: encoding, placement, status, repair. */
  durability: DurabilityService
  /** What this node holds for durability. */
  holdings: Holdings
  /** The block service: every read of the node goes through it. */
  blocks: Blocks
  /** The namespace's pinned files by content: reads by CID (`cat CID`, the gateway) turn to them when a block is wanting. */
  pins: PinIndex
  /** Writers share it; garbage collection takes it to start. */
  gcLock: GcLock
  /** FUSE mounts of the namespace (`shoal mount`). */
  fuse: FuseService
  /** The S3 cold tier (`shoal tier`, `pin add --tier cold`). */
  tiers: TierService
  /** Room on the repo disk: new data stops at the reserve kept for rm, gc and restarts. */
  disk: DiskGuard
}

/** Options for {@link createShoalNode}. */
export interface ShoalNodeInit {
  /** Repo folder (must have been initialised). */
  repo: string
  /** Override the configured log level. */
  logLevel?: LogLevel
  /** Supply a logger (tests). */
  logger?: Logger
}

/** Options of {@link ShoalNode.stop}. */
export interface NodeStopOptions {
  /**
   * Until when (ms since the epoch) the stop waits, once the mounts are
   * committed, for the background placement of files added just before
   * (see `Files.finishPlacement`); what is left is placed after the next
   * start. A deadline, not a length: the unmounts before it count against
   * it. @default no wait
   */
  placementDeadline?: number
  /** Keep the mounts recorded for the next start (see `FuseService.stop`). @default false */
  keepMounts?: boolean
}

/** A node over one repo. */
export interface ShoalNode {
  components: ShoalComponents
  start: () => Promise<void>
  stop: (options?: NodeStopOptions) => Promise<void>
}

/** Build a node from its repo; call `start()` to open its stores. */
export async function createShoalNode (init: ShoalNodeInit): Promise<ShoalNode> {
  const repo = repoLayout(init.repo)
  const config = await loadConfig(repo.config)
  const key = await loadIdentity(repo.root)
  const logger = init.logger ?? createLogger(resolveLogLevel(init.logLevel, config))
  // the size gauge reads the store at scrape time, long after both exist
  const metrics = createMetrics({ sizeOf: async () => await blockstore.approximateSize(), processMetrics: config.metrics.process, libp2pMetrics: config.metrics.libp2p, logger })
  const blockstore = createBlockStore({ metrics }, { path: repo.blocks })
  const peerId = peerIdFromPrivateKey(key).toString()
  const trust = new WriterTrust({ self: peerId, privateSwarm: config.privateSwarm, writers: config.namespace.writers, trusted: config.namespace.trusted })
  const namespace = createNamespace({
    path: repo.namespace,
    signer: signerFromKey(key),
    trust,
    logger: logger.child({ component: 'namespace' }),
    options: {
      memberTimeout: config.namespace.memberTimeout,
      compactAfter: config.namespace.compactAfter,
      // an empty store of an identity that existed before recovers its own past writes first (docs/namespace.md)
      recoverEmptyStore: true,
      checkOnRestart: true,
      skipRecovery: process.env.SHOAL_NAMESPACE_RECOVERY === 'skip'
    }
  })
  const swarmKey = config.privateSwarm ? parseSwarmKey(await readFile(repo.swarmKey, 'utf8')) : undefined
  const libp2p = await createHost({
    privateKey: key,
    listen: config.listen,
    announce: config.announce,
    swarmKey,
    onForeignConnection: foreignConnectionWarnings(logger.child({ component: 'swarm' })),
    mdns: config.mdns,
    metrics: metrics.libp2p,
    start: false
  })
  // peers may push only the shards this node agreed to hold for them
  const expected = new ExpectedPuts()
  // the exchange names its own component (a second `component` key made lines with a duplicate key)
  const exchange = createBlockExchange({ libp2p, blockstore, logger, putPolicy: expected })
  registerExchangeMetrics(metrics.registry, exchange)
  const sync = createLibp2pSync({
    replica: namespace,
    libp2p,
    logger: logger.child({ component: 'ns-sync' }),
    trust,
    options: { interval: config.namespace.syncInterval }
  })
  registerNamespaceMetrics(metrics.registry, namespace, { sync })
  const gcLock = new GcLock()
  const durabilityConfig = config.durability
  const tiers = new TierService({ configFile: repo.config, logger: logger.child({ component: 'tier' }) }, config.tier)
  // the one read path; striped reads learn holders from the durability service built below
  const blocks = new Blocks({
    blockstore,
    exchange,
    tiers,
    logger,
    stripes: {
      holders: async (manifest, shape, signal) => await durability.holderView(manifest, shape, { signal, searchWhen: 'a-stripe-unreadable' }),
      rebuild: async (stripe, k, m, shards) => await durability.rebuildStripe(stripe, k, m, shards),
      self: peerId.toString()
    }
  })
  const { service: durability, holdings } = createDurability({
    path: repo.durability,
    libp2p,
    blockstore,
    exchange,
    blocks,
    expected,
    files: () => namespace.files(),
    // the conflict copies, from the namespace's index of conflicts (kept whole on several nodes: conflict-copies.ts)
    conflictCopies: async function * () {
      for (const conflict of await namespace.conflicts()) {
        const entry = await namespace.lookup(conflict.copy)
        if (entry !== undefined) yield entry
      }
    },
    // a removed file's shards go only once every active member has seen the removal (removal-clocks.ts)
    namespace,
    // `files` is built below; a deferred coding binds its pin long after
    rebind: async (root, pin, paths) => await files.bindPin(root, pin, paths),
    gcLock,
    logger,
    maxForOthers: config.storage.maxForOthers,
    zone: durabilityConfig.zone,
    largePolicy: durabilityConfig.largePolicy,
    smallPolicy: durabilityConfig.smallPolicy,
    largeFrom: durabilityConfig.largeFrom,
    graceMs: durabilityConfig.grace,
    checkIntervalMs: durabilityConfig.checkInterval,
    repairBytesPerSecond: durabilityConfig.repairRate,
    scrubIntervalMs: durabilityConfig.scrubInterval,
    scrubBytesPerSecond: durabilityConfig.scrubRate,
    metrics
  })
  registerDurabilityMetrics(metrics.registry, durability, holdings)
  // a file that refers to a manifest again makes that manifest's removal clock stale (removal-clocks.ts)
  namespace.onReferences(durability.removals)
  const peers = new PeerManager({ libp2p, logger: logger.child({ component: 'peers' }) }, { file: repo.peers, bootstrap: config.bootstrap })
  registerPeerMetrics(metrics.registry, { libp2p, peers, trust })
  const disk = new DiskGuard({ path: repo.root, reserveBytes: config.storage.reserve, ballast: repo.ballast, logger })
  // chunking and hashing of imports run on one worker thread beside the main one
  const leafWorker = new LeafWorker()
  const pins = new PinIndex(namespace)
  const files = new Files({ blockstore, namespace, logger, exchange, blocks, pins, durability, gcLock, tiers, disk, leafWorker })
  const chunker = parseChunker(config.chunker)
  const components: ShoalComponents = {
    repo,
    config,
    peerId,
    trust,
    trustAdmin: new TrustAdmin({ trust, sync, logger: logger.child({ component: 'trust' }) }, { configFile: repo.config, self: peerId, privateSwarm: config.privateSwarm }),
    logger,
    metrics,
    blockstore,
    namespace,
    sync,
    files,
    libp2p,
    peers,
    exchange,
    chunker,
    durability,
    holdings,
    blocks,
    pins,
    gcLock,
    fuse: createFuseService({ files, namespace, repo, config, chunker, logger, blockstore, disk }),
    tiers,
    disk
  }
  registerFuseMetrics(metrics.registry, components.fuse)
  return {
    components,
    async start () {
      // files a mount acknowledged and a crash kept from their commit: taken out of the journal before their staging folder goes
      await components.fuse.rescueClosed()
      // leftovers of an interrupted import are garbage
      await rm(repo.tmp, { recursive: true, force: true })
      await mkdir(repo.tmp, { recursive: true })
      await components.blockstore.open()
      const found = components.blockstore.recovery
      if (found !== undefined && (found.salvagedRecords > 0 || found.tornRecords > 0 || found.corruptRanges > 0 || found.shortPacks.length > 0 || found.missingPacks.length > 0)) {
        // never silent: what the index had lost, and what the packs have lost
        logger.warn({ ...found }, 'block store: packs and index disagreed at open (salvaged records are indexed again; short or missing packs lost data: run `shoal repair --scrub`)')
      }
      const rebuilt = components.blockstore.indexRebuilt
      if (rebuilt !== undefined) {
        logger.warn({ ...rebuilt }, `block store: the index was damaged (${rebuilt.reason}) and was rebuilt from the packs; the damaged one is kept in ${rebuilt.keptAt} (remove it when all is well); run \`shoal gc\` to remove the deleted blocks it brought back`)
      }
      const audit = components.blockstore.audit
      if (audit !== undefined && audit.markedUnreadable > 0) {
        // never claimed: blocks whose records a short or missing pack lost are not here from now on
        logger.warn({ markedUnreadable: audit.markedUnreadable, shortPacks: found?.shortPacks, missingPacks: found?.missingPacks }, `block store: ${audit.markedUnreadable} blocks lie in missing packs or past a short pack's end: marked bad, so this node no longer offers them; repair rebuilds or fetches again the shards among them, and a put of the same bytes replaces them`)
      }
      if (audit !== undefined && audit.disagreeingPacks.length > 0) {
        // never silent: index entries lost inside packs (LevelDB dropped a record from the middle of its log)
        logger.warn({ ...audit }, 'block store: index entries were missing for records inside packs; they are indexed again (damaged ranges are lost here: run `shoal repair --scrub`)')
      }
      const dropped = blockstore.migrationDropped
      if (dropped.length > 0) {
        logger.warn({ blocks: dropped.length, first: dropped.slice(0, 10).map(c => c.toString()) }, 'block store: blocks of the former layout failed their hash and were not moved (reads fetch them from peers; `shoal repair` rebuilds held shards)')
      }
      // these hold what no other file here has: a damaged one stops the start with what to do
      await openStore({ what: 'namespace store', path: repo.namespace, recovery: 'the node recovers the namespace from its peers (its own writes no peer received are lost)' }, async () => { await components.namespace.open() })
      await openStore({ what: 'holdings store', path: repo.durability, recovery: 'the shards it held that its block store still has are found again and held (gc removes none of them meanwhile), and repair places again the ones it lost' }, async () => { await holdings.open() })
      // bytes per peer (the status page), counted from the first connection on
      peerTrafficOf(libp2p).start()
      // a listen address taken or refused: one line naming it and the setting (net/listen-errors.ts)
      try {
        await libp2p.start()
      } catch (err) {
        throw swarmListenError(err)
      }
      await exchange.start()
      await durability.start()
      await sync.start()
      await peers.start()
      // committed as their commit would have been: a version written meanwhile is kept beside them
      await components.fuse.commitRescued().catch((err: any) => { logger.error({ err: err?.message }, 'fuse: committing the files a crash kept from their commit failed; they stay in the repo\'s fuse-journal folder, tried again at the next start') })
    },
    async stop (options: NodeStopOptions = {}) {
      // unmount first: what was written through a mount is committed while the stores are open
      await components.fuse.stop({ keepMounts: options.keepMounts })
      // then the files added last (and those the unmount committed) go to their holders while the network is up
      await files.finishPlacement({ timeoutMs: Math.max(0, (options.placementDeadline ?? 0) - Date.now()) })
      await peers.stop()
      await sync.stop()
      await durability.stop()
      await leafWorker.close()
      tiers.stop()
      pins.close()
      await exchange.stop()
      peerTrafficOf(libp2p).stop()
      await libp2p.stop()
      await components.namespace.close()
      await holdings.close()
      await components.blockstore.close()
    }
  }
}
