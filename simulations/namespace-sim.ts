/**
 * A namespace simulation: N replicas (each a {@link Replica} over a
 * {@link MemoryKV} with a real Ed25519 key, and a {@link NamespaceSync}) on
 * one {@link VirtualNetwork} and one {@link VirtualTime}, all randomness from
 * one seed. It performs writes on chosen replicas, runs virtual time, and
 * checks the outcome: whether replicas converged (same clock, heads, tree
 * and conflicts) and whether any acknowledged write was lost.
 *
 * Write tracing: every local entry of every replica is decoded as it is
 * committed. Each version it creates (a path, a dot, a CID for files) must
 * at the end either be visible on every replica — at its path or as a
 * conflict copy of it — or have been superseded by an op that names it in
 * `replaces`, whose entry's clock covers it (a knowing overwrite or delete).
 * A version is exempt only when its author lost it with its disk before any
 * other node held it (then no node can have it).
 *
 * Lifecycle faults: a node may crash and restart keeping its store (the
 * {@link MemoryKV} survives; Replica and NamespaceSync are rebuilt from it,
 * as a real restart does), restart with its disk lost (same key, empty
 * store) or from an old backup (a copy of its store taken earlier), join
 * mid-run, leave for good, and run with a skewed wall clock.
 *
 * @module
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { decodeEntry, type Dot } from '../protocol/namespace.js'
import { covers, type VectorClock } from '../node/namespace/clock.js'
import { peerIdVerifier, signerFromKey } from '../node/namespace/identity.js'
import { FaultyKV, isPowerLoss } from './faulty-kv.js'
import { copyKV, type RestartDisk } from './disk-copy.js'
import { isDiskFull } from '../node/errors.js'
import { markNewStore } from '../node/namespace/recovery.js'
import type { PrivateKey } from '@libp2p/interface'
import { Replica, type ReplicaOptions } from '../node/namespace/replica.js'
import { NamespaceSync, type SyncOptions, type SyncStats, type HeartbeatStats } from '../node/namespace/sync.js'
import { WriterTrust } from '../node/namespace/trust.js'
import type { Logger } from '../node/logger.js'
import { EXPECTED_ERRORS, showOp, writeCID, type SimOp } from './namespace-ops.js'
import { clockKey, diffViews, viewOf, type ReplicaView } from './namespace-view.js'
import { Prng } from './prng.js'
import { VirtualNetwork, type NetworkConditions, type VirtualEndpoint } from './virtual-network.js'
import { VirtualTime, type RunResult } from './virtual-time.js'

/** How a simulation is built. */
export interface SimOptions {
  /** Number of replicas. */
  nodes: number
  /** Seed of every random choice (keys, delays, drops, sync rounds). */
  seed: number
  network?: Partial<NetworkConditions>
  replica?: ReplicaOptions
  /** Per-replica options (override {@link SimOptions.replica} for replica `index`). */
  replicaFor?: (index: number) => ReplicaOptions | undefined
  /** Sync tuning; `interval` defaults to 1000 virtual ms here. */
  sync?: SyncOptions
  /** Keep a trace of operations and events (failure reports). @default true */
  trace?: boolean
  /** Logger of every replica and sync (debugging). @default silent */
  logger?: Logger
  /**
   * Whose writes replicas apply: `'everyone'` passes no trust (every author
   * trusted); `'listed'` gives each replica a {@link WriterTrust} of an open
   * swarm ({@link SimNode.trust}): itself only, until peers are added.
   * @default 'everyone'
   */
  writers?: 'everyone' | 'listed'
}

/** One replica of a simulation. */
export interface SimNode {
  index: number
  id: string
  replica: Replica
  sync: NamespaceSync
  endpoint: VirtualEndpoint
  /** Its writer trust (with `writers: 'listed'`). */
  trust?: WriterTrust
  /** Its store: survives a crash; replaced by a disk loss or a backup restore; its writes fail while its disk is full. */
  kv: FaultyKV
  /** Its key (kept across restarts). */
  key: PrivateKey
  /** 'up', 'down' (crashed, comes back) or 'gone' (left for good). */
  status: 'up' | 'down' | 'gone'
  /** Offset of its wall clock from virtual time (ms). */
  skew: number
  /** Its last backup (a copy of its store). */
  backup?: FaultyKV
}

export type { RestartDisk }

/** Copy of a memory store (a backup). */
export async function copyStore (kv: FaultyKV): Promise<FaultyKV> {
  return await copyKV(kv, new FaultyKV())
}

/** What {@link NamespaceSim.apply} did. */
export interface OpOutcome {
  ok: boolean
  /** The expected error's name when not ok. */
  error?: string
  /** For puts: the CID written. */
  cid?: string
}

/** An acknowledged `putFile`. */
export interface WriteRecord {
  node: number
  path: string
  cid: string
  /** The write's dot: its replica's author id and the entry's seq. */
  dot: Dot
  time: number
}

/** A version some local entry created. */
interface Created { node: number, path: string, type: 'file' | 'dir', cid?: string, dot: Dot }

function versionKey (path: string, dot: Dot): string { return `${path}\n${dot[0]}\n${dot[1]}` }
/** A created version's key: a reused dot (a bug) must not hide the first version. */
function createdKey (c: Created): string { return `${versionKey(c.path, c.dot)}\n${c.cid ?? 'dir'}` }

/** Longest a local write waits for recovery in simulations (virtual ms). */
export const SIM_RECOVERY_TIMEOUT = 10_000

/** The sync interval of simulations (virtual ms). */
export const SIM_INTERVAL = 1000
/** A request timeout far beyond any run, so the real `AbortSignal.timeout` of sync never fires; the network's virtual timeout applies. */
export const REAL_REQUEST_TIMEOUT = 3_600_000

/** N replicas on a virtual network. */
export class NamespaceSim {
  /** The virtual clock and scheduler every replica and the network run on. */
  readonly time: VirtualTime
  /** The network between the replicas. */
  readonly net: VirtualNetwork
  /** The replicas, by index. */
  readonly nodes: SimNode[] = []
  /** Acknowledged puts, in order. */
  readonly writes: WriteRecord[] = []
  /** Operations and events, one line each (when tracing). */
  readonly trace: string[] = []
  /** Supersessions whose entry had not seen the version it replaced (should stay empty). */
  readonly blindReplaces: string[] = []
  private readonly created = new Map<string, Created>()
  private readonly replaced = new Set<string>()
  /** Versions lost with their author's disk before any other node held them (exempt from {@link lostWrites}). */
  readonly lostWithDisk = new Set<string>()
  /** Per power loss so far, the unsynced writes it undid. */
  readonly powerLosses: number[] = []
  /** Rejections counted by replicas since closed (restarts). */
  private closedRejections = 0
  private counter = 0
  private readonly base: Logger
  /** Operations that succeeded / met an expected error. */
  readonly ops = { ok: 0, failed: 0 }
  private readonly tracing: boolean

  private constructor (readonly options: SimOptions, readonly rng: Prng) {
    this.time = new VirtualTime()
    this.net = new VirtualNetwork(this.time, rng.fork(), options.network)
    this.tracing = options.trace ?? true
    this.base = options.logger ?? pino({ level: 'silent' })
  }

  /** Build, open and start every replica. */
  static async create (options: SimOptions): Promise<NamespaceSim> {
    const sim = new NamespaceSim(options, new Prng(options.seed))
    for (let index = 0; index < options.nodes; index++) await sim.addNode()
    // a swarm booting together: each node pulls from those already up when it starts
    sim.net.announceJoins = false
    for (const node of sim.nodes) await node.sync.start()
    sim.net.announceJoins = true
    return sim
  }

  /** A new node with a new key and a new store (marked as such, as `init` does); not started. */
  private async addNode (): Promise<SimNode> {
    const index = this.nodes.length
    const key = await generateKeyPairFromSeed('Ed25519', this.rng.bytes(32))
    const kv = new FaultyKV()
    await markNewStore(kv, this.time.now())
    const node = { index, id: signerFromKey(key).id, key, kv, status: 'up', skew: 0 } as unknown as SimNode
    this.nodes.push(node)
    await this.build(node)
    return node
  }

  /** Build and open a node's Replica and NamespaceSync over its store (start or restart). */
  private async build (node: SimNode): Promise<void> {
    const { options } = this
    const signer = signerFromKey(node.key)
    const logger = this.base.child({ node: node.index })
    const replicaOptions = { recoverEmptyStore: true, checkOnRestart: true, recoveryTimeout: SIM_RECOVERY_TIMEOUT, ...options.replica, ...options.replicaFor?.(node.index) }
    const trust = node.trust ?? (options.writers === 'listed' ? new WriterTrust({ self: signer.id, privateSwarm: false }) : undefined)
    const clock = { now: () => this.time.now() + node.skew }
    const replica = new Replica({ kv: node.kv, signer, verifier: peerIdVerifier(), clock, timers: this.time, logger, trust }, replicaOptions)
    await replica.open()
    const endpoint = this.net.endpoint(signer.id)
    const sync = new NamespaceSync(
      { replica, network: endpoint, timers: this.time, random: this.rng.fork().random, logger, trust, clock: this.time },
      { interval: SIM_INTERVAL, ...options.sync, requestTimeout: REAL_REQUEST_TIMEOUT }
    )
    replica.onLocalEntries(entries => { this.noteLocal(node.index, entries, replica.state().clock) })
    Object.assign(node, { replica, sync, endpoint, trust })
  }

  /** Nodes that are up. */
  up (): SimNode[] { return this.nodes.filter(n => n.status === 'up') }

  /** Crash node `index` (its store survives). */
  async crash (index: number): Promise<void> {
    const node = this.nodes[index]
    if (node.status !== 'up') return
    await node.sync.stop()
    this.closedRejections += node.replica.rejected
    await node.replica.close()
    node.status = 'down'
    this.log(`node ${index} crashed`)
  }

  /**
   * Node `index`'s machine loses power: what its store wrote since its last
   * completed sync is undone (FaultyKV), the writes waiting for a sync fail,
   * and the node is down; {@link restart} brings it back on what was
   * durable. Needs its store's `recordUnsynced`. Returns the writes undone.
   */
  async losePower (index: number): Promise<number> {
    const node = this.nodes[index]
    if (node.status !== 'up') return 0
    const undone = await node.kv.losePower()
    this.powerLosses.push(undone)
    await this.crash(index)
    node.kv.powerOn()
    this.log(`node ${index} lost power: ${undone} unsynced writes undone`)
    return undone
  }

  /**
   * A power cut on node `index`: its disk stops flushing for `ms` virtual ms
   * (its own writes wait, what it receives is applied unsynced), then the
   * machine loses power ({@link losePower}) and restarts with its store.
   */
  async powerCut (index: number, ms: number): Promise<void> {
    const node = this.nodes[index]
    if (node.status !== 'up') return
    node.kv.recordUnsynced = true
    node.kv.stallSyncs = true
    await this.advance(ms)
    await this.losePower(index)
    node.kv.recordUnsynced = false
    await this.restart(index, 'keep')
  }

  /**
   * Take a backup of node `index`'s store now. None is taken of a store
   * that holds no other author's entry: restored, it looks like a lone
   * node's, which writes at once, and the check after a restart cannot tell
   * it from one (docs/namespace.md, "A node that lost its store").
   */
  async backup (index: number): Promise<void> {
    const node = this.nodes[index]
    if (node.status === 'gone') return
    if (node.status === 'up' && !node.replica.holdsOthersEntries) {
      this.log(`node ${index} not backed up: its store holds no other author's entry`)
      return
    }
    node.backup = await copyStore(node.kv)
    this.log(`node ${index} backed up at seq ${node.replica.state().clock[node.id] ?? 0}`)
  }

  /**
   * Restart node `index` (crashing it first when up): with its store, with
   * an empty store (disk lost), or with a copy of its last backup (an empty
   * store when it has none). Versions it wrote that no other node holds now
   * are gone with the disk: they are exempt from {@link lostWrites}.
   */
  async restart (index: number, disk: RestartDisk = 'keep'): Promise<void> {
    const node = this.nodes[index]
    if (node.status === 'gone') return
    await this.crash(index)
    if (disk !== 'keep') node.kv = disk === 'backup' && node.backup !== undefined ? await copyStore(node.backup) : new FaultyKV()
    await this.build(node)
    if (disk !== 'keep') this.noteDiskLoss(node)
    node.status = 'up'
    await node.sync.start()
    this.log(`node ${index} restarted (${disk}), seq ${node.replica.state().clock[node.id] ?? 0}, ${node.replica.recovering ? 'recovering' : 'writable'}`)
  }

  /**
   * Versions that no store holds any more once `node`'s disk is lost (or it
   * left) are lost with it: its own, and other nodes' writes of which it
   * was the last holder (their writers left or lost their disks too).
   */
  private noteDiskLoss (node: SimNode): void {
    const holders = this.nodes.filter(n => n.status !== 'gone')
    for (const [key, c] of this.created) {
      if (!holders.some(n => covers(n.replica.state().clock, c.dot))) this.lostWithDisk.add(key)
    }
  }

  /** A new node joins the running swarm. */
  async join (): Promise<number> {
    const node = await this.addNode()
    await node.sync.start()
    this.log(`node ${node.index} joined`)
    return node.index
  }

  /** Node `index` leaves for good (what it wrote and no other node holds leaves with it). */
  async leave (index: number): Promise<void> {
    const node = this.nodes[index]
    if (node.status === 'gone') return
    await this.crash(index)
    node.status = 'gone'
    this.noteDiskLoss(node)
    this.log(`node ${index} left`)
  }

  /**
   * Fill node `index`'s disk for `ms` virtual ms: every write of its store
   * fails meanwhile (its reads go on), then it has room again. Its local
   * writes are refused (not acknowledged); what it receives is not stored
   * and comes again by pull.
   */
  fill (index: number, ms: number): void {
    const node = this.nodes[index]
    if (node.status === 'gone') return
    const kv = node.kv
    kv.full = true
    this.time.setTimeout(() => { kv.full = false; this.log(`node ${index} disk has room again`) }, ms)
    this.log(`node ${index} disk full for ${ms} ms`)
  }

  /** Set node `index`'s wall-clock offset (ms; entry times and mtimes follow it). */
  skew (index: number, ms: number): void {
    this.nodes[index].skew = ms
    this.log(`node ${index} clock skew ${ms} ms`)
  }

  /** Restart every crashed node with its store (end of a scenario). */
  async restartCrashed (): Promise<void> {
    for (const n of this.nodes) if (n.status === 'down') await this.restart(n.index, 'keep')
  }

  /** Entries rejected by every replica so far (honest runs: 0). */
  rejections (): number {
    return this.closedRejections + this.up().reduce((sum, n) => sum + n.replica.rejected, 0)
  }

  private log (line: string): void {
    if (this.tracing) this.trace.push(`${this.time.now() - VirtualTime.START}ms ${line}`)
  }

  /** Note a node's local write; `seen` is its clock right after the write (entries no longer carry the writer's clock). */
  private noteLocal (node: number, entries: Uint8Array[], seen: VectorClock): void {
    for (const bytes of entries) {
      const entry = decodeEntry(bytes)
      const dot: Dot = [entry.author, entry.seq]
      for (const op of entry.ops) {
        if (op.op === 'retire') continue
        for (const r of op.replaces) {
          this.replaced.add(versionKey(op.path, r))
          if (!covers(entry.v === 1 ? entry.clock : seen, r)) this.blindReplaces.push(`node ${node} entry ${entry.seq} replaces ${op.path}@${r[0]}:${r[1]} it has not seen`)
        }
        let c: Created | undefined
        if (op.op === 'put') c = { node, path: op.path, type: 'file', cid: op.cid.toString(), dot }
        else if (op.op === 'mkdir') c = { node, path: op.path, type: 'dir', dot }
        if (c !== undefined) this.created.set(createdKey(c), c)
      }
    }
  }

  /**
   * Perform `op` on replica `node`. Errors a random op can meet on that
   * replica's view (see {@link EXPECTED_ERRORS}) are returned, not thrown.
   */
  async apply (node: number, op: SimOp): Promise<OpOutcome> {
    const sim = this.nodes[node]
    if (sim.status !== 'up') return { ok: false, error: sim.status }
    if (sim.replica.recovering) {
      // the write waits on virtual timers (recovery): run time until it settles
      let settled = false
      const run = this.perform(node, op).finally(() => { settled = true })
      await this.time.runUntil(() => settled, { deadline: this.time.now() + 2 * SIM_RECOVERY_TIMEOUT + 1000, pollEvery: 50 })
      return await run
    }
    return await this.perform(node, op)
  }

  private async perform (node: number, op: SimOp): Promise<OpOutcome> {
    const { replica, skew } = this.nodes[node]
    try {
      switch (op.kind) {
        case 'put': {
          const n = ++this.counter
          const cid = writeCID(n).toString()
          const now = this.time.now() + skew
          await replica.putFile(op.path, { cid, size: n, mode: 0o644, mtime: now })
          const dot: Dot = [replica.id, replica.state().clock[replica.id]]
          this.writes.push({ node, path: op.path, cid, dot, time: now })
          this.ops.ok++
          this.log(`node ${node}: ${showOp(op)} → ${cid.slice(-8)} (seq ${dot[1]})`)
          return { ok: true, cid }
        }
        case 'mkdir': await replica.mkdir(op.path); break
        case 'move': await replica.move(op.from, op.to); break
        case 'remove': await replica.remove(op.path, { recursive: op.recursive }); break
      }
      this.ops.ok++
      this.log(`node ${node}: ${showOp(op)} (seq ${replica.state().clock[replica.id]})`)
      return { ok: true }
    } catch (err: any) {
      // a full disk refuses the write, a power loss fails it: expected, not acknowledged
      if (!EXPECTED_ERRORS.has(err?.name) && !(isDiskFull(err) && this.nodes[node].kv.full) && !isPowerLoss(err)) throw err
      this.ops.failed++
      this.log(`node ${node}: ${showOp(op)} ✗ ${String(err.name)}`)
      return { ok: false, error: err.name }
    }
  }

  /** Split the nodes (by index) into groups that cannot talk; unlisted nodes form one more group. */
  partition (groups: number[][]): void {
    this.log(`partition ${groups.map(g => `[${g.join(',')}]`).join(' ')}`)
    this.net.partition(groups.map(g => g.map(i => this.nodes[i].id)))
  }

  /** Cut node `index` off from every other. */
  isolate (index: number): void {
    this.log(`isolate ${index}`)
    this.net.isolate(this.nodes[index].id)
  }

  /** With `writers: 'listed'`: node `index` trusts the nodes `peers` from now on. */
  trust (index: number, peers: number[]): void {
    for (const p of peers) this.trustOf(index).add(this.nodes[p].id)
    this.log(`node ${index} trusts ${peers.join(',')}`)
  }

  /** With `writers: 'listed'`: node `index` no longer trusts the nodes `peers`. */
  untrust (index: number, peers: number[]): void {
    for (const p of peers) this.trustOf(index).remove(this.nodes[p].id)
    this.log(`node ${index} no longer trusts ${peers.join(',')}`)
  }

  private trustOf (index: number): WriterTrust {
    const trust = this.nodes[index].trust
    if (trust === undefined) throw new RangeError('trust lists need a simulation with writers: \'listed\'')
    return trust
  }

  /** Reconnect every node. */
  heal (): void {
    this.log('heal')
    this.net.heal()
  }

  /** Advance virtual time by `ms`. */
  async advance (ms: number): Promise<void> {
    await this.time.advance(ms)
  }

  /** True when every replica has the same clock. */
  clocksEqual (): boolean {
    const up = this.up()
    // no node up (every one crashed or left): nothing to compare
    if (up.length === 0) return true
    const first = clockKey(up[0].replica)
    return up.every(n => clockKey(n.replica) === first)
  }

  /**
   * Run virtual time until every replica has the same clock, for at most
   * `maxTime` virtual ms. Returns whether they converged.
   */
  async converge (maxTime = 120_000): Promise<boolean> {
    const deadline = this.time.now() + maxTime
    for (let round = 0; round < 1000; round++) {
      const result: RunResult = await this.time.runUntil(() => this.clocksEqual(), { deadline, pollEvery: 50 })
      if (result === 'done' && (await this.differences(1)).length === 0) {
        this.log(`converge: done (views equal) after ${round} extra rounds`)
        return true
      }
      if (this.time.now() >= deadline) break
      // equal clocks are not enough: trees, heads and conflicts must be equal too
      await this.time.advance(Math.min(SIM_INTERVAL, deadline - this.time.now()))
    }
    this.log('converge: deadline')
    return false
  }

  /** The views of every replica. */
  async views (): Promise<ReplicaView[]> {
    const out: ReplicaView[] = []
    for (const n of this.up()) out.push(await viewOf(n.replica))
    return out
  }

  /** How every replica's view differs from replica 0's (empty when all are equal). */
  async differences (limit = 20): Promise<string[]> {
    const views = await this.views()
    const names = this.up().map(n => `node${n.index}`)
    const out: string[] = []
    for (let i = 1; i < views.length && out.length < limit; i++) {
      out.push(...diffViews(views[0], views[i], names[0], names[i]))
    }
    return out.slice(0, limit)
  }

  /**
   * Versions written by some replica that are neither visible on every
   * replica (at their path or as a conflict copy of it) nor superseded by a
   * knowing op. Empty when no write was lost.
   */
  async lostWrites (): Promise<string[]> {
    const out: string[] = [...this.blindReplaces]
    const views = await this.views()
    const names = this.up().map(n => n.index)
    for (const [key, c] of this.created) {
      if (this.replaced.has(versionKey(c.path, c.dot)) || this.lostWithDisk.has(key)) continue
      for (let i = 0; i < views.length; i++) {
        const found = views[i].tree.some(e => c.type === 'dir'
          ? e.type === 'dir' && e.path === c.path
          : e.type === 'file' && e.cid === c.cid && (e.path === c.path || e.conflictOf === c.path))
        if (!found) out.push(`node ${names[i]} lacks ${c.type} ${c.path}${c.cid !== undefined ? ' ' + c.cid : ''} written by node ${c.node} (seq ${c.dot[1]})`)
      }
    }
    return out
  }

  /** Sum of the sync counters of every replica. */
  syncStats (): SyncStats & HeartbeatStats {
    const sum: SyncStats & HeartbeatStats = { published: 0, messages: 0, invalidMessages: 0, pulls: 0, pullFailures: 0, pages: 0, snapshots: 0, served: 0, untrusted: 0, shunned: 0, heartbeats: 0, heartbeatsSkipped: 0 }
    for (const n of this.up()) for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += n.sync.stats[k]
    return sum
  }

  /** One line about the run: operations, final tree, network and sync counters, virtual time. */
  async summary (): Promise<string> {
    const [view] = await this.views()
    const s = this.syncStats()
    const n = this.net.stats
    return `${this.nodes.length} replicas: ops ${this.ops.ok} ok ${this.ops.failed} refused; ` +
      `tree ${view.tree.length} names, ${view.conflicts.length} conflict copies; ` +
      `net ${n.sent} sent ${n.dropped} dropped ${n.duplicated} duplicated ${n.timeouts} timeouts; ` +
      `sync ${s.pulls} pulls ${s.pullFailures} failed ${s.snapshots} snapshots; ` +
      `${this.time.now() - VirtualTime.START} virtual ms, ${this.time.events} events`
  }

  /** Stop every sync and close every replica; drop pending virtual events. */
  async stop (): Promise<void> {
    for (const n of this.up()) await n.sync.stop()
    for (const n of this.up()) await n.replica.close()
    this.time.clear()
  }
}
