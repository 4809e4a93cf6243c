/**
 * A namespace swarm at scale: hundreds to thousands of real `Replica` +
 * `NamespaceSync` pairs on a bounded {@link VirtualNetwork} (each node a few
 * links, gossip flooded hop by hop), driven through one scenario — writes
 * from many nodes, a partition with writes on both sides, a cut of random
 * links and one-way links, a heal — and checked: every replica converges to
 * the same clock and every acknowledged write is visible on every replica.
 * With `crashes`, that many nodes that do not write crash during the
 * partition (sync stopped, replica closed; their store kept) and restart,
 * as the daemon does (`checkOnRestart`), half of them before the heal and
 * half after. With `joins`, new nodes (new keys, stores marked new) join,
 * half during the partition and half after the heal; with `leaves`, nodes
 * leave for good halfway through the partition. With `diskLosses` and
 * `restores`, once the swarm has converged after the heal, nodes restart
 * one at a time with an empty store (same key) or from a backup taken
 * before the partition, each once the swarm is whole and in sync again (the
 * documented limit of recovery, docs/namespace.md); a writer among them
 * writes the moment it is back, which must wait until it has recovered its
 * own past writes. Then every other writer still there and every joined
 * node writes, and the swarm must converge again. Who meets which fault:
 * scale-lifecycle.ts.
 *
 * Why a harness of its own: `NamespaceSim` keeps per-op traces and compares
 * whole views, which is the right tool for dozens of replicas; at thousands
 * the checks must cost O(N × writes) and the build O(N). Everything is
 * seeded (keys, links, delays, sync rounds) and runs on virtual time.
 *
 * @module
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { peerIdVerifier, signerFromKey } from '../node/namespace/identity.js'
import { markNewStore } from '../node/namespace/recovery.js'
import { Replica } from '../node/namespace/replica.js'
import { NamespaceSync, type SyncNetwork } from '../node/namespace/sync.js'
import { FaultyKV } from './faulty-kv.js'
import { writeCID } from './namespace-ops.js'
import { REAL_REQUEST_TIMEOUT } from './namespace-sim.js'
import { Prng } from './prng.js'
import { backup, crash, exemptLost, leave, planFaults, restart, type AckedWrite, type ScaleDisk, type ScaleNode } from './scale-lifecycle.js'
import { swarmVerifier } from './swarm-verifier.js'
import { VirtualNetwork, type NetworkOptions, type NetworkStats } from './virtual-network.js'
import { VirtualTime } from './virtual-time.js'

/** How a scale run is built and driven. */
export interface ScaleOptions {
  /** Number of replicas. */
  nodes: number
  /** Seed of every random choice. */
  seed: number
  /** Network shape and conditions. @default degree 8, 5..80 ms links, jitter 10, drop 0.01, duplicate 0.01, reorder 0.01, 1 MB/s */
  network?: Partial<NetworkOptions>
  /** Sync interval (virtual ms). @default 10000 (production's) */
  interval?: number
  /** Distinct nodes that write (each its own paths). @default min(nodes, 100) */
  writers?: number
  /** Writes per writer in each of the two write phases. @default 1 */
  writesPerWriter?: number
  /** Writers that write again during the partition: the first this many of `writers` (all of them write before it). @default all */
  partitionWriters?: number
  /** Virtual ms the partition lasts. @default 20000 */
  partitionFor?: number
  /** Nodes (none of them writers) that crash during the partition and restart with their store. @default 0 */
  crashes?: number
  /** Nodes (half of them writers, rounded up) restarted with their disk lost — same key, empty store — once the swarm is whole and in sync after the heal, one at a time (see {@link ScaleOptions.lossesTogether}); a writer writes the moment it is back. @default 0 */
  diskLosses?: number
  /** Nodes (half of them writers, rounded up) restarted from a backup of their store taken before the partition, after the disk losses and as they are. @default 0 */
  restores?: number
  /** New nodes (new keys, stores marked new as `init` does) that join: half during the partition, half after the heal; they write after the losses. @default 0 */
  joins?: number
  /** Nodes (half of them writers, rounded up) that leave for good halfway through the partition. @default 0 */
  leaves?: number
  /**
   * Lose and restore every store at once instead of one at a time, each
   * once the swarm is in sync again: a node that recovers then hears from
   * peers that lost or restored their own store a moment before (what
   * recovery's quorum of two views is for, docs/namespace.md "A node that
   * lost its store"). @default false
   */
  lossesTogether?: boolean
  /** Replicas skip recovery (the old bug, `SHOAL_NAMESPACE_RECOVERY=skip` everywhere): a run with disk losses or restores must then fail its checks. @default false */
  skipRecovery?: boolean
  /** Longest virtual time to converge after the heal (ms). @default 300000 */
  convergeWithin?: number
  /** Virtual ms to run on after convergence with no writes (a quiet swarm), measured apart. @default 0 */
  quietFor?: number
  /**
   * Every replica checks signatures through one {@link swarmVerifier} (each
   * signed entry verified once for the swarm, not once per node that
   * receives it: the answer is the same); false gives each replica its own
   * `peerIdVerifier`, as production has. @default true
   */
  sharedVerifier?: boolean
  /** Called once the swarm has converged, every node still up (a heap snapshot at the peak, `SIM_HEAP_SNAPSHOT`). */
  onConverged?: () => void
  /** Told where the run is: each phase as it starts, and every {@link PROGRESS_EVERY} virtual ms while converging, how many nodes have the first node's clock. */
  progress?: (line: string) => void
}

/** Virtual ms between two progress lines while converging. */
const PROGRESS_EVERY = 10_000

/** Gossip counted over the whole run or one phase, summed over the replicas. */
export interface GossipTally {
  /** Gossip messages handed to sync (each node counts each message it received). */
  messages: number
  /** Their bytes. */
  bytes: number
  /** Heartbeats the rounds published. */
  heartbeats: number
  /** Rounds that published no heartbeat. */
  heartbeatsSkipped: number
}

/** What the lifecycle faults of a scale run did. */
export interface LifecycleTally {
  /** Nodes restarted with their disk lost. */
  diskLosses: number
  /** Nodes restarted from their backup. */
  restored: number
  /** Nodes to be restored whose store held no other author's entry when backups were taken (restarted with an empty store instead). */
  backupsSkipped: number
  /** New nodes that joined. */
  joined: number
  /** Nodes that left for good. */
  left: number
  /** Writers among the nodes that lost their disk, were restored or left. */
  writersFaulted: number
  /**
   * Writers whose writes waited for their recovery (of their own past
   * writes, or the check after a restart), by what they met: a lost disk,
   * a restore, nothing of the two (joined nodes, whose stores are marked
   * new, and the writers left alone: none should wait).
   */
  waited: { lost: number, restored: number, others: number }
  /** Writes refused (recovery timed out): not acknowledged. */
  refused: number
  /**
   * Writes of the lost and restored writers that took a seq at or below the
   * one they had reached before their store was lost: a seq used twice,
   * which peers refuse and recovery exists to prevent (an honest run: 0).
   */
  seqReused: number
  /** Acknowledged writes no store held any more once a disk was lost or a node left: not expected anywhere. */
  exempted: number
  /** The first 20 of them, as `path@author:seq` (the author's id shortened to its last 6 characters). */
  exempt: string[]
  /** Virtual ms from the first loss or restore to the last convergence (0 without them). */
  convergeMs: number
}

/** What a scale run measured. */
export interface ScaleResult {
  nodes: number
  /** Acknowledged writes. */
  writes: number
  converged: boolean
  /** Virtual ms from the heal to convergence (or to giving up). */
  convergeMs: number
  /** Virtual ms of the whole run. */
  virtualMs: number
  /** Writes missing on some replica, as `path@node` (first 20). */
  lost: string[]
  /** Replicas that miss at least one write. */
  replicasMissing: number
  network: NetworkStats
  /** Sync counters summed over the replicas. */
  pulls: number
  pullFailures: number
  gossipHandled: number
  /** Gossip received and heartbeats over the whole run. */
  gossip: GossipTally
  /** The same over the quiet phase ({@link ScaleOptions.quietFor}), with its virtual ms. */
  quiet: GossipTally & { ms: number }
  /** Events the scheduler ran. */
  events: number
  /** Nodes that crashed and restarted. */
  crashed: number
  /** Entries the replicas up at the end rejected (an honest swarm: 0). */
  rejected: number
  /** What the lifecycle faults did ({@link ScaleOptions.diskLosses} and the rest). */
  lifecycle: LifecycleTally
  /** Signatures checked for real, and answers the shared verifier gave again (0 without it). */
  signatures: { checks: number, hits: number }
}

const NETWORK: Partial<NetworkOptions> = { degree: 8, minDelay: 5, maxDelay: 80, jitter: 10, drop: 0.01, duplicate: 0.01, reorder: 0.01, bandwidth: 1000, requestTimeout: 2000 }

/** Longest the writes of a phase wait for their nodes' recovery (virtual ms): beyond the replica's own recovery timeout. */
const WRITES_SETTLE_WITHIN = 120_000

/** Build the swarm, run the scenario, check it. */
export async function runScale (options: ScaleOptions): Promise<ScaleResult> {
  const rng = new Prng(options.seed)
  // the lifecycle faults draw from a stream of their own: a run without them replays as it did before they existed
  const lifeRng = new Prng(options.seed + LIFECYCLE_STREAM)
  const time = new VirtualTime()
  const net = new VirtualNetwork(time, rng.fork(), { ...NETWORK, ...options.network })
  const logger = pino({ level: 'silent' })
  const interval = options.interval ?? 10_000
  const nodes: ScaleNode[] = []
  const shared = options.sharedVerifier === false ? undefined : swarmVerifier()
  const replicaOptions = { checkOnRestart: true, recoverEmptyStore: true, skipRecovery: options.skipRecovery === true }
  /** A new node with a new key and a store marked new (as `init` does), built, not started. */
  const addNode = async (keys: Prng): Promise<ScaleNode> => {
    const signer = signerFromKey(await generateKeyPairFromSeed('Ed25519', keys.bytes(32)))
    const kv = new FaultyKV()
    await markNewStore(kv, time.now())
    const received = { messages: 0, bytes: 0 }
    const random = keys.fork().random
    const build = async (store: FaultyKV): Promise<Pick<ScaleNode, 'replica' | 'sync'>> => {
      const replica = new Replica({ kv: store, signer, verifier: shared?.verifier ?? peerIdVerifier(), clock: time, timers: time, logger }, replicaOptions)
      await replica.open()
      const sync = new NamespaceSync(
        { replica, network: counted(net.endpoint(signer.id), received), timers: time, random, logger, clock: time },
        { interval, requestTimeout: REAL_REQUEST_TIMEOUT }
      )
      return { replica, sync }
    }
    const node: ScaleNode = { index: nodes.length, id: signer.id, kv, status: 'up', received, build, ...await build(kv) }
    nodes.push(node)
    return node
  }
  for (let i = 0; i < options.nodes; i++) await addNode(rng)
  const say = (what: string): void => { options.progress?.(`${((time.now() - VirtualTime.START) / 1000).toFixed(1)} s virtual: ${what}`) }
  say(`${nodes.length} replicas built`)
  net.announceJoins = false
  for (const n of nodes) await n.sync.start()
  net.announceJoins = true

  const acked: AckedWrite[] = []
  const life: LifecycleTally = { diskLosses: 0, restored: 0, backupsSkipped: 0, joined: 0, left: 0, writersFaulted: 0, waited: { lost: 0, restored: 0, others: 0 }, refused: 0, seqReused: 0, exempted: 0, exempt: [], convergeMs: 0 }
  const exempted = (writes: readonly AckedWrite[]): void => {
    for (const w of writes) if (life.exempt.length < 20) life.exempt.push(`${w.path}@${w.author.slice(-6)}:${w.seq}`)
    life.exempted += writes.length
  }
  let counter = 0
  const writerCount = Math.min(options.nodes, options.writers ?? 100)
  const writers = sample(rng, options.nodes, writerCount)
  const perWriter = options.writesPerWriter ?? 1
  const counts = { crashes: options.crashes ?? 0, diskLosses: options.diskLosses ?? 0, restores: options.restores ?? 0, leaves: options.leaves ?? 0 }
  const plan = planFaults(lifeRng, { nodes: options.nodes, writers, counts })
  life.writersFaulted = plan.writers.size
  /** The seq each lost or restored writer had reached when its store was lost. */
  const seqBefore = new Map<number, number>()
  /** Each of `who` writes `perWriter` files under `phase`; a node still recovering writes in the background, and the phase ends once every write settled. */
  const write = async (phase: string, who: readonly number[]): Promise<void> => {
    const waiting: Array<Promise<void>> = []
    for (const w of who) {
      const node = nodes[w]
      const writes = async (): Promise<void> => {
        for (let k = 0; k < perWriter; k++) {
          const n = ++counter
          const path = `/scale/${phase}/${w}-${k}`
          const cid = writeCID(n).toString()
          try {
            await node.replica.putFile(path, { cid, size: n, mode: 0o644, mtime: time.now() })
          } catch (err: any) {
            // refused, nothing written (recovery timed out): not acknowledged, counted
            if (err?.name !== 'NamespaceRecoveringError') throw err
            life.refused++
            continue
          }
          const seq = node.replica.clockNow()[node.id]
          if (seq <= (seqBefore.get(w) ?? 0)) life.seqReused++
          acked.push({ path, cid, author: node.id, seq })
        }
      }
      if (node.replica.recovering) {
        // the write waits on virtual timers (a peer's word on this node's own seq): time must run meanwhile
        life.waited[plan.lost.includes(w) ? 'lost' : plan.restored.includes(w) ? 'restored' : 'others']++
        waiting.push(writes())
      } else {
        await writes()
      }
      await time.advance(rng.int(0, 20))
    }
    if (waiting.length === 0) return
    let pending = waiting.length
    for (const p of waiting) void p.then(() => { pending-- }, () => { pending-- })
    await time.runUntil(() => pending === 0, { deadline: time.now() + WRITES_SETTLE_WITHIN, pollEvery: 50, maxEvents: 1e9 })
    await Promise.all(waiting)
  }

  await time.advance(2000)
  say('writes before the partition')
  await write('before', writers)
  await time.advance(5000)
  // backups of the nodes to be restored, taken now (each holds its own first write and others'), restored once the swarm is whole again
  for (const i of plan.restored) if (!await backup(nodes[i])) life.backupsSkipped++
  say('partition, writes on both sides')

  // a partition into two halves with writes on both sides, plus partial faults inside each half
  const half = new Set(sample(rng, options.nodes, Math.floor(options.nodes / 2)))
  net.partition([nodes.filter((_, i) => half.has(i)).map(n => n.id)])
  const links = net.links()
  const cut = sample(rng, links.length, Math.floor(links.length / 20)).map(k => links[k])
  const oneWay = sample(rng, links.length, Math.floor(links.length / 20)).map(k => links[k])
  net.cut(cut)
  net.cut(oneWay, { oneWay: true })
  // crashes: nodes that do not write and meet no other fault stop (their store kept); half come back before the heal, half after
  const taken = new Set([...writers, ...plan.lost, ...plan.restored, ...plan.leaving])
  const idle = nodes.map((_, i) => i).filter(i => !taken.has(i))
  const crashed = sample(rng, idle.length, Math.min(idle.length, counts.crashes)).map(k => nodes[idle[k]])
  for (const n of crashed) await crash(n)
  if (crashed.length > 0) say(`${crashed.length} nodes crashed`)
  // joins: half during the partition (they dial into the side they start on), half after the heal
  const joins = options.joins ?? 0
  const joinNow = async (k: number): Promise<void> => {
    for (let j = 0; j < k; j++) await (await addNode(lifeRng)).sync.start()
    life.joined += k
    if (k > 0) say(`${k} nodes joined`)
  }
  await joinNow(Math.ceil(joins / 2))
  await write('split', writers.slice(0, options.partitionWriters ?? writers.length))
  const partitionFor = options.partitionFor ?? 20_000
  await time.advance(Math.floor(partitionFor / 2))
  const early = crashed.slice(0, Math.floor(crashed.length / 2))
  for (const n of early) await restart(n)
  // leaves, halfway through the partition: what only the leavers held leaves with them
  for (const i of plan.leaving) await leave(nodes[i])
  life.left = plan.leaving.length
  if (life.left > 0) say(`${life.left} nodes left for good`)
  exempted(exemptLost(acked, nodes))
  await time.advance(partitionFor - Math.floor(partitionFor / 2))
  net.heal()
  const healed = time.now()
  say('heal')
  for (const n of crashed.slice(early.length)) await restart(n)
  if (crashed.length > 0) say(`${crashed.length} nodes restarted (${early.length} before the heal)`)
  await joinNow(joins - Math.ceil(joins / 2))

  const within = options.convergeWithin ?? 300_000
  const converge = async (authors: number): Promise<boolean> => {
    const from = time.now()
    let told = from
    const watched = (): boolean => {
      if (options.progress !== undefined && time.now() - told >= PROGRESS_EVERY) {
        told = time.now()
        say(`${agreeing(nodes)} of ${up(nodes).length} nodes have the first node's clock (${Object.keys(up(nodes)[0].replica.clockNow()).length} authors)`)
      }
      return sameClocks(nodes, authors)
    }
    return await time.runUntil(watched, { deadline: from + within, pollEvery: 1000, maxEvents: 1e9 }) === 'done'
  }
  let converged = await converge(writerCount)
  const convergeMs = time.now() - healed

  // stores lost and restored while the swarm is whole and in sync (the documented limit of recovery,
  // docs/namespace.md); then every writer left and every joined node writes, the recovering ones first waiting for their own past writes
  const lifecycle = plan.lost.length + plan.restored.length + joins > 0
  if (lifecycle && converged) {
    const lossAt = time.now()
    for (const i of [...plan.lost, ...plan.restored]) if (plan.writers.has(i)) seqBefore.set(i, nodes[i].replica.clockNow()[nodes[i].id] ?? 0)
    // one node at a time, each once the swarm is in sync again: a node that recovers takes its first peer's word, and a peer that
    // lost or restored its own store a moment before may not hold the node's last writes (docs/namespace.md, "Limits"); together: all at once
    const faulted: Array<[number, ScaleDisk]> = [...plan.lost.map(i => [i, 'lost'] as [number, ScaleDisk]), ...plan.restored.map(i => [i, 'backup'] as [number, ScaleDisk])]
    const stages = options.lossesTogether === true ? [faulted] : faulted.map(f => [f])
    for (const stage of stages) {
      if (!converged) break
      for (const [i, disk] of stage) {
        if (disk === 'lost') life.diskLosses++
        else if (nodes[i].backup !== undefined) life.restored++
        await restart(nodes[i], disk)
      }
      // a writer writes the moment it is back (the case that diverged before recovery): its write waits for its own past writes
      await write('after', stage.map(([i]) => i).filter(i => plan.writers.has(i)))
      converged = await converge(writerCount)
    }
    exempted(exemptLost(acked, nodes))
    say(`${life.diskLosses} disks lost, ${life.restored} stores restored from their backups (${options.lossesTogether === true ? 'all at once' : 'one at a time'}); the others write again`)
    const joined = nodes.slice(options.nodes).map(n => n.index)
    const others = writers.filter(w => nodes[w].status === 'up' && !seqBefore.has(w))
    if (converged) await write('after', [...others, ...joined])
    if (converged) converged = await converge(writerCount + joined.length)
    life.convergeMs = time.now() - lossAt
  }
  options.onConverged?.()
  const gossip = tally(nodes)
  const quietFrom = time.now()
  if (converged && (options.quietFor ?? 0) > 0) await time.runUntil(quietFrom + (options.quietFor ?? 0), { maxEvents: 1e9 })
  const after = tally(nodes)
  const quiet = { ms: time.now() - quietFrom, ...minus(after, gossip) }

  const { lost, replicasMissing } = await missing(acked, nodes)
  const totals = { pulls: 0, pullFailures: 0, gossipHandled: 0, rejected: 0 }
  for (const n of up(nodes)) {
    totals.pulls += n.sync.stats.pulls
    totals.pullFailures += n.sync.stats.pullFailures
    totals.gossipHandled += n.sync.stats.messages
    totals.rejected += n.replica.rejected
  }
  for (const n of up(nodes)) await n.sync.stop()
  time.clear()
  return {
    nodes: options.nodes,
    writes: acked.length,
    converged,
    convergeMs,
    virtualMs: time.now() - VirtualTime.START,
    lost,
    replicasMissing,
    network: { ...net.stats },
    ...totals,
    gossip,
    quiet,
    events: time.events,
    crashed: crashed.length,
    lifecycle: life,
    signatures: { checks: shared?.stats.checks ?? 0, hits: shared?.stats.hits ?? 0 }
  }
}

/** A stream offset: the lifecycle faults' random stream is seeded with the run's seed plus this. */
const LIFECYCLE_STREAM = 0x5ca1e

/** The nodes that are up. */
function up (nodes: readonly ScaleNode[]): ScaleNode[] {
  return nodes.filter(n => n.status === 'up')
}

/** Every node up has the first one's clock, which names at least `authors` authors. */
function sameClocks (nodes: readonly ScaleNode[], authors: number): boolean {
  const live = up(nodes)
  const want = live[0].replica.clockNow()
  const names = Object.keys(want)
  if (names.length < authors) return false
  for (const n of live) {
    const c = n.replica.clockNow()
    if (Object.keys(c).length !== names.length) return false
    for (const a of names) if (c[a] !== want[a]) return false
  }
  return true
}

/** Acknowledged writes (those not exempt) missing on some node that is up: the first 20 as `path@node`, and how many nodes miss any. O(nodes × writes). */
async function missing (acked: readonly AckedWrite[], nodes: readonly ScaleNode[]): Promise<{ lost: string[], replicasMissing: number }> {
  const lost: string[] = []
  let replicasMissing = 0
  const expected = acked.filter(w => w.exempt !== true)
  for (const node of up(nodes)) {
    let miss = false
    for (const w of expected) {
      const e = await node.replica.lookup(w.path)
      if (e === undefined || e.type !== 'file' || e.cid.toString() !== w.cid) {
        miss = true
        if (lost.length < 20) lost.push(`${w.path}@${node.index}`)
      }
    }
    if (miss) replicasMissing++
  }
  return { lost, replicasMissing }
}

/** How many of the nodes up have the first one's clock. */
function agreeing (nodes: readonly ScaleNode[]): number {
  const live = up(nodes)
  const want = live[0].replica.clockNow()
  const authors = Object.keys(want)
  let n = 0
  for (const node of live) {
    const c = node.replica.clockNow()
    if (authors.every(a => c[a] === want[a])) n++
  }
  return n
}

/** A node's endpoint that counts the gossip it hands to sync. */
function counted (endpoint: SyncNetwork, received: { messages: number, bytes: number }): SyncNetwork {
  return {
    handle: async handlers => {
      await endpoint.handle({
        ...handlers,
        message: (from, data, via) => {
          received.messages++
          received.bytes += data.byteLength
          handlers.message(from, data, via)
        }
      })
    },
    unhandle: async () => { await endpoint.unhandle() },
    publish: async data => { await endpoint.publish(data) },
    request: async (peer, data, signal) => await endpoint.request(peer, data, signal),
    peers: () => endpoint.peers()
  }
}

/** Gossip received and heartbeats so far, summed over `nodes`. */
function tally (nodes: readonly ScaleNode[]): GossipTally {
  const t: GossipTally = { messages: 0, bytes: 0, heartbeats: 0, heartbeatsSkipped: 0 }
  for (const n of nodes) {
    t.messages += n.received.messages
    t.bytes += n.received.bytes
    t.heartbeats += n.sync.stats.heartbeats
    t.heartbeatsSkipped += n.sync.stats.heartbeatsSkipped
  }
  return t
}

/** `a - b`, field by field. */
function minus (a: GossipTally, b: GossipTally): GossipTally {
  return { messages: a.messages - b.messages, bytes: a.bytes - b.bytes, heartbeats: a.heartbeats - b.heartbeats, heartbeatsSkipped: a.heartbeatsSkipped - b.heartbeatsSkipped }
}

/** `k` distinct numbers of 0..n-1 in random order (partial Fisher–Yates). */
function sample (rng: Prng, n: number, k: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i)
  for (let i = 0; i < k; i++) {
    const j = rng.int(i, n - 1)
    ;[all[i], all[j]] = [all[j], all[i]]
  }
  return all.slice(0, k)
}
