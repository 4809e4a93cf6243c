/**
 * The durability simulation on the real service: N nodes, each a real
 * {@link DurabilityService} (placement, repair, scrub, GC — the production
 * parts) over a {@link MemoryBlockStore} and {@link Holdings} on a
 * `MemoryKV`, talking over a virtual shard network on virtual time. Each
 * node's view of who is up is its own (simulations/shard-node.ts).
 *
 * A run: files are imported and coded on seeded writers, placed as `add`
 * places them (in the background), then faults are injected on a seeded
 * schedule — a partition shorter than the grace period, a crash and restart
 * within it (disk kept), a departure for good, corrupt shards — and time
 * runs on until every stripe is whole again or a deadline passes. The
 * invariants are checked by simulations/durability-real-check.ts.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { importContent, parseChunker } from '../node/content/index.js'
import { DurabilityService } from '../node/durability/index.js'
import { GcLock, collectGarbage, type GcResult } from '../node/durability/gc.js'
import { Encoder } from '../node/durability/encoder.js'
import { Holdings } from '../node/durability/holdings.js'
import { createErasureCoder } from '../node/durability/erasure.js'
import { MemoryKV } from '../node/namespace/kv.js'
import { createLogger } from '../node/logger.js'
import { NotFoundError } from '../node/errors.js'
import { simPeerIds } from './durability-balance.js'
import { MemoryBlockStore } from './memory-blockstore.js'
import { Neighbourhoods } from './neighbourhoods.js'
import { copyKV, type RestartDisk } from './disk-copy.js'
import { Prng } from './prng.js'
import { ShardFabric } from './shard-fabric.js'
import { SimExchange, SimExpectations, SimShardsNetwork, simBlockReader, type SimNodeSide } from './shard-node.js'
import { VirtualTime } from './virtual-time.js'
import type { Entry } from '../node/namespace/index.js'

/** Settings of a {@link RealDurabilitySim}. */
export interface RealSimOptions {
  seed: number
  /** @default 20 */
  nodes?: number
  /** @default 6 */
  files?: number
  /** @default 'ec:4+2' */
  policy?: string
  /** Leaves per file (a multiple of k keeps every shard one size). @default 8 */
  leavesPerFile?: number
  /** Leaf size in bytes. @default 4096 */
  leafBytes?: number
  /** @default 10 min (production) */
  graceMs?: number
  /** @default 60 s (production) */
  checkIntervalMs?: number
  /** @default 20 min */
  scrubIntervalMs?: number
  /** Period of each node's probe of its peers. @default 30 s */
  probeIntervalMs?: number
  /**
   * About how many peers each node is connected to: the nodes of its range
   * of the kad key space (simulations/neighbourhoods.ts). Every node knows
   * every node when the swarm is no bigger. @default 100 (production keeps up to 300 connections)
   */
  connections?: number
  /**
   * Place the files at once, before any node's first probe of its peers:
   * each writer sees no peer, keeps every shard, and the repair pass places
   * the file again once its peers are live. @default false (place after the first probe)
   */
  placeAtStart?: boolean
  /**
   * Test-only sabotage, to show the invariants catch a broken node:
   * `lose-pushes` — pushed shards are acknowledged but never stored (a
   * repair that rebuilds nothing); `gc-blind` — garbage collection sees no
   * visible file (it collects live shards once their records age out).
   */
  sabotage?: 'none' | 'lose-pushes' | 'gc-blind'
  /**
   * Every repair wait the period itself, as before the schedule's phase was
   * drawn (node/durability/repairer.ts): for bench/repair-burst.ts, which
   * measures what the drawn phase changes. @default false
   */
  fixedRepairPeriod?: boolean
}

/** A block store that reports each deletion (garbage collection's sweep), for the check that no live shard is collected. */
export class TrackedStore extends MemoryBlockStore {
  constructor (private readonly onDelete: (cid: CID) => void) { super() }

  override async delete (cid: CID, options?: { signal?: AbortSignal }): Promise<void> {
    if (await this.has(cid)) this.onDelete(cid)
    await super.delete(cid, options)
  }
}

/** A deletion by garbage collection (or any delete): where, what, when. */
export interface Deletion { node: string, cid: string, at: number }

/** One simulated node: its disk (store, holdings) outlives its service across restarts. */
export interface RealSimNode {
  id: string
  side: SimNodeSide
  holdings: Holdings
  service: DurabilityService
  /** Every service this node ran (a restart makes a new one), for their counters. */
  services: DurabilityService[]
  /** Up now, or left for good. */
  state: 'up' | 'down' | 'gone'
  /** The GC lock of its node process. */
  gcLock: GcLock
  /** Offset of its wall clock from virtual time (ms): its service's `clock.now()` is the virtual time plus this. */
  skew: number
  /** The nodes it is connected to (its neighbourhood, itself included; those that left stay listed, as peers that went away do). */
  peers: readonly string[]
  /** The store of its holdings records (on its disk). */
  kv: MemoryKV
  /** The last copy taken of its disk ({@link RealDurabilitySim.backup}). */
  backup?: NodeBackup
}

/** A copy of a node's disk (block store and holdings records, taken at one instant) and when it was taken. */
export interface NodeBackup {
  store: MemoryBlockStore
  kv: MemoryKV
  at: number
}

export type { RestartDisk }

/** A file the simulation added: acknowledged once coded and recorded on its writer. */
export interface SimFile {
  path: string
  root: CID
  manifest: CID
  writer: string
  /** When it was removed from the namespace (undefined: visible). */
  removed?: number
}

/** N real durability services on a virtual shard network; see the module comment. */
export class RealDurabilitySim {
  readonly time = new VirtualTime()
  readonly rng: Prng
  /** The repair schedules' phases: a stream of its own, so that drawing them leaves the faults a seed draws as they were. */
  private readonly schedules: Prng
  readonly fabric: ShardFabric
  readonly nodes: RealSimNode[] = []
  readonly files: SimFile[] = []
  readonly settings: Required<Omit<RealSimOptions, 'seed'>>
  /** The sabotage (settings) is on: set once the initial placement is done. */
  sabotaging = false
  /** Every block deletion on every node, in order. */
  readonly deletions: Deletion[] = []
  private readonly sides = new Map<string, SimNodeSide>()
  private readonly byId = new Map<string, RealSimNode>()
  /** Ids of the nodes that may hold shards ({@link mayHold}). */
  private readonly holderIds = new Set<string>()
  private readonly logger = createLogger('silent')
  /** Who is connected to whom: every node ever started, by range of the key space. */
  readonly neighbourhoods: Neighbourhoods

  constructor (readonly options: RealSimOptions) {
    this.rng = new Prng(options.seed)
    this.schedules = new Prng(options.seed ^ 0x5c4ed)
    this.fabric = new ShardFabric({ time: this.time, rng: this.rng.fork() })
    this.settings = {
      nodes: options.nodes ?? 20,
      files: options.files ?? 6,
      policy: options.policy ?? 'ec:4+2',
      leavesPerFile: options.leavesPerFile ?? 8,
      leafBytes: options.leafBytes ?? 4096,
      graceMs: options.graceMs ?? 10 * 60_000,
      checkIntervalMs: options.checkIntervalMs ?? 60_000,
      scrubIntervalMs: options.scrubIntervalMs ?? 20 * 60_000,
      probeIntervalMs: options.probeIntervalMs ?? 30_000,
      connections: options.connections ?? 100,
      placeAtStart: options.placeAtStart ?? false,
      sabotage: options.sabotage ?? 'none',
      fixedRepairPeriod: options.fixedRepairPeriod ?? false
    }
    this.neighbourhoods = new Neighbourhoods({ nodes: this.settings.nodes, connections: this.settings.connections })
  }

  /** Make the nodes, start their services, and import and code the files on seeded writers (not placed yet). */
  async setup (): Promise<void> {
    await createErasureCoder()
    for (const id of await simPeerIds(this.rng.fork(), this.settings.nodes)) this.addNode(id)
    for (const node of this.nodes) await node.service.start()
    const chunker = parseChunker(`size-${this.settings.leafBytes}`)
    for (let f = 0; f < this.settings.files; f++) {
      const writer = this.rng.pick(this.nodes)
      this.holderIds.add(writer.id)
      const bytes = this.rng.bytes(this.settings.leavesPerFile * this.settings.leafBytes)
      const { cid, size } = await importContent(writer.side.store, (async function * () { yield bytes })(), { chunker })
      const encoder = new Encoder({ blockstore: writer.side.store, holdings: writer.holdings, clock: this.time }, { workers: false })
      const pin = await encoder.encode(cid, size, this.settings.policy)
      this.files.push({ path: `/f${f}.bin`, root: cid, manifest: CID.parse(pin.manifest as string), writer: writer.id })
    }
  }

  /**
   * Place every file from its writer, as `add` does in the background;
   * resolves when each placement returned. The files are coded already
   * (setup), as a `pin add` or an add whose live peers dropped before its
   * placement would leave them.
   */
  async place (): Promise<void> {
    // the writers' first probe of their peers (within 1 s of start): an add happens on a node that is connected;
    // placed at start instead, a writer sees no peer and the repair pass places the file again
    if (!this.settings.placeAtStart) await this.time.advance(2_000)
    let done = 0
    for (const file of this.files) {
      const writer = this.node(file.writer)
      writer.service.place(file.manifest).catch(() => {}).finally(() => { done++ })
    }
    await this.time.runUntil(() => done === this.files.length, { maxEvents: 2_000_000 })
  }

  /** The node `id`. */
  node (id: string): RealSimNode {
    const node = this.byId.get(id)
    if (node === undefined) throw new Error(`no node ${id}`)
    return node
  }

  /** Crash `node`: it drops off the network and its service stops (its disk is kept). */
  crash (node: RealSimNode): void {
    node.state = 'down'
    this.fabric.setUp(node.id, false)
    void node.service.stop().catch(() => {})
  }

  /**
   * Restart a crashed node: a new service with a fresh view of its peers,
   * over the same store and holdings (`keep`), over empty ones with the
   * same key (`lost`: its disk was replaced), or over a copy of its last
   * backup (`backup`, see {@link restoreBackup}).
   */
  async restart (node: RealSimNode, disk: RestartDisk = 'keep'): Promise<void> {
    if (disk === 'lost') this.replaceDisk(node, this.newStore(node.id), new MemoryKV())
    if (disk === 'backup') await this.restoreBackup(node)
    node.state = 'up'
    this.fabric.setUp(node.id, true)
    node.service = this.makeService(node)
    await node.service.start()
  }

  /** Take a copy of `node`'s disk now (its block store and holdings records), for a later {@link restoreBackup}. */
  async backup (node: RealSimNode): Promise<NodeBackup> {
    const at = this.time.now()
    const store = new MemoryBlockStore()
    node.side.store.copyTo(store)
    node.backup = { store, kv: await copyKV(node.kv, new MemoryKV()), at }
    return node.backup
  }

  /**
   * Put a copy of its last backup on a crashed node's disk (same key): it
   * lacks what the node was given since, and has what it held then —
   * perhaps rebuilt elsewhere or collected since.
   *
   * @throws {NotFoundError} when no backup of the node was taken
   */
  async restoreBackup (node: RealSimNode): Promise<void> {
    if (node.backup === undefined) throw new NotFoundError(`no backup of ${node.id}`)
    const store = this.newStore(node.id)
    node.backup.store.copyTo(store)
    this.replaceDisk(node, store, await copyKV(node.backup.kv, new MemoryKV()))
  }

  private replaceDisk (node: RealSimNode, store: MemoryBlockStore, kv: MemoryKV): void {
    node.side.store = store
    node.side.expected = this.expectations(node.id)
    node.kv = kv
    node.holdings = new Holdings(kv)
  }

  /** `node` leaves for good: its disk is gone with it. */
  leave (node: RealSimNode): void {
    this.crash(node)
    node.state = 'gone'
  }

  /** A new node (a new key, an empty disk) joins: the nodes of its neighbourhood learn of it, it starts. */
  async join (): Promise<RealSimNode> {
    const [id] = await simPeerIds(this.rng.fork(), 1)
    const node = this.addNode(id)
    await node.service.start()
    return node
  }

  /** Remove `file` from the namespace (its holders free its shards once gc forgets it). */
  remove (file: SimFile): void {
    file.removed = this.time.now()
  }

  /**
   * Collect `node`'s garbage as `shoal gc` does (its service's
   * `collectGarbage`); with the `gc-blind` sabotage, two collections that
   * see no visible file, the second on a clock a grace period ahead (the
   * first finds every manifest unreferenced, the second forgets them: a gc
   * blind once keeps everything for the grace period, and the next repair
   * pass, which sees the files, undoes what it recorded).
   */
  async collect (node: RealSimNode): Promise<GcResult> {
    if (this.settings.sabotage !== 'gc-blind' || !this.sabotaging) return await node.service.collectGarbage()
    const blind = async (ahead: number): Promise<GcResult> => await collectGarbage({ blockstore: node.side.store, holdings: node.holdings, files: async function * () {}, lock: node.gcLock, logger: this.logger, clock: { now: () => this.time.now() + ahead } }, this.settings.graceMs)
    await blind(0)
    return await blind(this.settings.graceMs + 1)
  }

  private addNode (id: string): RealSimNode {
    const side: SimNodeSide = { store: this.newStore(id), expected: this.expectations(id) }
    this.sides.set(id, side)
    this.fabric.setUp(id, true)
    const kv = new MemoryKV()
    const node: RealSimNode = { id, side, kv, holdings: new Holdings(kv), service: undefined as unknown as DurabilityService, services: [], state: 'up', gcLock: new GcLock(), skew: 0, peers: this.neighbourhoods.add(id) }
    node.service = this.makeService(node)
    this.nodes.push(node)
    this.byId.set(id, node)
    return node
  }

  /**
   * The nodes that may hold shards, in the order of {@link nodes}: the
   * writers, every node that accepted a `hold` or `reserve` (a node records
   * a shard only then, or as the writer that coded it), and any node whose
   * store is not empty. The checks of the disks read only these:
   * O(holders × files), not O(nodes × files).
   */
  mayHold (): RealSimNode[] {
    return this.nodes.filter(n => this.holderIds.has(n.id) || n.side.store.size > 0)
  }

  /** The put policy of node `id`: what it expects marks it as a possible holder. */
  private expectations (id: string): SimExpectations {
    return new SimExpectations(() => { this.holderIds.add(id) })
  }

  private newStore (id: string): MemoryBlockStore {
    return new TrackedStore(cid => { this.deletions.push({ node: id, cid: cid.toString(), at: this.time.now() }) })
  }

  /** The visible files of the (converged) namespace every node reads. */
  private async * visible (): AsyncGenerator<Entry> {
    for (const file of this.files) {
      if (file.removed !== undefined) continue
      const entry: Entry = { type: 'file', path: file.path, name: file.path.slice(1), cid: file.root.toString(), size: this.settings.leavesPerFile * this.settings.leafBytes, mode: 0o644, mtime: 0, pin: { policy: this.settings.policy, manifest: file.manifest.toString() } }
      yield entry
    }
  }

  private makeService (node: RealSimNode): DurabilityService {
    const network = new SimShardsNetwork({ fabric: this.fabric, time: this.time, rng: this.rng.fork(), sides: this.sides }, { self: node.id, peers: node.peers, probeIntervalMs: this.settings.probeIntervalMs })
    const exchange = new SimExchange(network, node.side.store, () => this.sabotaging && this.settings.sabotage === 'lose-pushes')
    const service = new DurabilityService({
      blockstore: node.side.store,
      exchange,
      blocks: simBlockReader(exchange),
      network,
      holdings: node.holdings,
      expected: node.side.expected,
      files: () => this.visible(),
      gcLock: node.gcLock,
      logger: this.logger,
      // its own wall clock, skewed or not; timers run on virtual time (durations, not dates)
      clock: { now: () => this.time.now() + node.skew },
      timers: this.time,
      // the middle draw: each wait is the period itself
      random: this.settings.fixedRepairPeriod ? () => 0.5 : this.schedules.fork().random
    }, { graceMs: this.settings.graceMs, checkIntervalMs: this.settings.checkIntervalMs, scrubIntervalMs: this.settings.scrubIntervalMs })
    node.services.push(service)
    return service
  }
}
