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
 *
 * @module
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { decodeEntry, type Dot } from '../protocol/namespace.js'
import { covers } from '../node/namespace/clock.js'
import { peerIdVerifier, signerFromKey } from '../node/namespace/identity.js'
import { MemoryKV } from '../node/namespace/kv.js'
import { Replica, type ReplicaOptions } from '../node/namespace/replica.js'
import { NamespaceSync, type SyncOptions, type SyncStats } from '../node/namespace/sync.js'
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

/** The sync interval of simulations (virtual ms). */
export const SIM_INTERVAL = 1000
/** A request timeout far beyond any run, so the real `AbortSignal.timeout` of sync never fires; the network's virtual timeout applies. */
const REAL_REQUEST_TIMEOUT = 3_600_000

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
  private counter = 0
  /** Operations that succeeded / met an expected error. */
  readonly ops = { ok: 0, failed: 0 }
  private readonly tracing: boolean

  private constructor (readonly options: SimOptions, readonly rng: Prng) {
    this.time = new VirtualTime()
    this.net = new VirtualNetwork(this.time, rng.fork(), options.network)
    this.tracing = options.trace ?? true
  }

  /** Build, open and start every replica. */
  static async create (options: SimOptions): Promise<NamespaceSim> {
    const sim = new NamespaceSim(options, new Prng(options.seed))
    const base = options.logger ?? pino({ level: 'silent' })
    for (let index = 0; index < options.nodes; index++) {
      const key = await generateKeyPairFromSeed('Ed25519', sim.rng.bytes(32))
      const signer = signerFromKey(key)
      const logger = base.child({ node: index })
      const replicaOptions = { ...options.replica, ...options.replicaFor?.(index) }
      const trust = options.writers === 'listed' ? new WriterTrust({ self: signer.id, privateSwarm: false }) : undefined
      const replica = new Replica({ kv: new MemoryKV(), signer, verifier: peerIdVerifier(), clock: sim.time, logger, trust }, replicaOptions)
      await replica.open()
      const endpoint = sim.net.endpoint(signer.id)
      const sync = new NamespaceSync(
        { replica, network: endpoint, timers: sim.time, random: sim.rng.fork().random, logger, trust },
        { interval: SIM_INTERVAL, ...options.sync, requestTimeout: REAL_REQUEST_TIMEOUT }
      )
      replica.onLocalEntries(entries => { sim.noteLocal(index, entries) })
      sim.nodes.push({ index, id: signer.id, replica, sync, endpoint, trust })
    }
    // a swarm booting together: each node pulls from those already up when it starts
    sim.net.announceJoins = false
    for (const node of sim.nodes) await node.sync.start()
    sim.net.announceJoins = true
    return sim
  }

  private log (line: string): void {
    if (this.tracing) this.trace.push(`${this.time.now() - VirtualTime.START}ms ${line}`)
  }

  private noteLocal (node: number, entries: Uint8Array[]): void {
    for (const bytes of entries) {
      const entry = decodeEntry(bytes)
      const dot: Dot = [entry.author, entry.seq]
      for (const op of entry.ops) {
        for (const r of op.replaces) {
          this.replaced.add(versionKey(op.path, r))
          if (!covers(entry.clock, r)) this.blindReplaces.push(`node ${node} entry ${entry.seq} replaces ${op.path}@${r[0]}:${r[1]} it has not seen`)
        }
        if (op.op === 'put') this.created.set(versionKey(op.path, dot), { node, path: op.path, type: 'file', cid: op.cid.toString(), dot })
        else if (op.op === 'mkdir') this.created.set(versionKey(op.path, dot), { node, path: op.path, type: 'dir', dot })
      }
    }
  }

  /**
   * Perform `op` on replica `node`. Errors a random op can meet on that
   * replica's view (see {@link EXPECTED_ERRORS}) are returned, not thrown.
   */
  async apply (node: number, op: SimOp): Promise<OpOutcome> {
    const { replica } = this.nodes[node]
    try {
      switch (op.kind) {
        case 'put': {
          const n = ++this.counter
          const cid = writeCID(n).toString()
          const now = this.time.now()
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
      if (!EXPECTED_ERRORS.has(err?.name)) throw err
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
    const first = clockKey(this.nodes[0].replica)
    return this.nodes.every(n => clockKey(n.replica) === first)
  }

  /**
   * Run virtual time until every replica has the same clock, for at most
   * `maxTime` virtual ms. Returns whether they converged.
   */
  async converge (maxTime = 120_000): Promise<boolean> {
    const result: RunResult = await this.time.runUntil(() => this.clocksEqual(), { deadline: this.time.now() + maxTime, pollEvery: 50 })
    this.log(`converge: ${result}`)
    return result === 'done'
  }

  /** The views of every replica. */
  async views (): Promise<ReplicaView[]> {
    const out: ReplicaView[] = []
    for (const n of this.nodes) out.push(await viewOf(n.replica))
    return out
  }

  /** How every replica's view differs from replica 0's (empty when all are equal). */
  async differences (limit = 20): Promise<string[]> {
    const views = await this.views()
    const out: string[] = []
    for (let i = 1; i < views.length && out.length < limit; i++) {
      out.push(...diffViews(views[0], views[i], 'node0', `node${i}`))
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
    for (const [key, c] of this.created) {
      if (this.replaced.has(key)) continue
      for (let i = 0; i < views.length; i++) {
        const found = views[i].tree.some(e => c.type === 'dir'
          ? e.type === 'dir' && e.path === c.path
          : e.type === 'file' && e.cid === c.cid && (e.path === c.path || e.conflictOf === c.path))
        if (!found) out.push(`node ${i} lacks ${c.type} ${c.path}${c.cid !== undefined ? ' ' + c.cid : ''} written by node ${c.node} (seq ${c.dot[1]})`)
      }
    }
    return out
  }

  /** Sum of the sync counters of every replica. */
  syncStats (): SyncStats {
    const sum: SyncStats = { published: 0, messages: 0, invalidMessages: 0, pulls: 0, pullFailures: 0, pages: 0, snapshots: 0, served: 0, untrusted: 0 }
    for (const n of this.nodes) for (const k of Object.keys(sum) as Array<keyof SyncStats>) sum[k] += n.sync.stats[k]
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
    for (const n of this.nodes) await n.sync.stop()
    for (const n of this.nodes) await n.replica.close()
    this.time.clear()
  }
}
