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
 * half after.
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
import { MemoryKV } from '../node/namespace/kv.js'
import { Replica } from '../node/namespace/replica.js'
import { NamespaceSync, type SyncNetwork } from '../node/namespace/sync.js'
import { writeCID } from './namespace-ops.js'
import { REAL_REQUEST_TIMEOUT } from './namespace-sim.js'
import { Prng } from './prng.js'
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
  /** Virtual ms the partition lasts. @default 20000 */
  partitionFor?: number
  /** Nodes (none of them writers) that crash during the partition and restart with their store. @default 0 */
  crashes?: number
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
  /** Signatures checked for real, and answers the shared verifier gave again (0 without it). */
  signatures: { checks: number, hits: number }
}

/** A write that was acknowledged. */
interface Acked { path: string, cid: string }

const NETWORK: Partial<NetworkOptions> = { degree: 8, minDelay: 5, maxDelay: 80, jitter: 10, drop: 0.01, duplicate: 0.01, reorder: 0.01, bandwidth: 1000, requestTimeout: 2000 }

interface Node {
  id: string
  replica: Replica
  sync: NamespaceSync
  received: { messages: number, bytes: number }
  /** A new replica and sync over this node's store (its start, or a restart). */
  build: () => Promise<Pick<Node, 'replica' | 'sync'>>
}

/** Restart a crashed node over its store, as the daemon does. */
async function restart (node: Node): Promise<void> {
  Object.assign(node, await node.build())
  await node.sync.start()
}

/** Build the swarm, run the scenario, check it. */
export async function runScale (options: ScaleOptions): Promise<ScaleResult> {
  const rng = new Prng(options.seed)
  const time = new VirtualTime()
  const net = new VirtualNetwork(time, rng.fork(), { ...NETWORK, ...options.network })
  const logger = pino({ level: 'silent' })
  const interval = options.interval ?? 10_000
  const nodes: Node[] = []
  const shared = options.sharedVerifier === false ? undefined : swarmVerifier()
  for (let i = 0; i < options.nodes; i++) {
    const signer = signerFromKey(await generateKeyPairFromSeed('Ed25519', rng.bytes(32)))
    const kv = new MemoryKV()
    const received = { messages: 0, bytes: 0 }
    const random = rng.fork().random
    const build = async (): Promise<Pick<Node, 'replica' | 'sync'>> => {
      const replica = new Replica({ kv, signer, verifier: shared?.verifier ?? peerIdVerifier(), clock: time, timers: time, logger }, { checkOnRestart: true })
      await replica.open()
      const sync = new NamespaceSync(
        { replica, network: counted(net.endpoint(signer.id), received), timers: time, random, logger, clock: time },
        { interval, requestTimeout: REAL_REQUEST_TIMEOUT }
      )
      return { replica, sync }
    }
    nodes.push({ id: signer.id, ...await build(), received, build })
  }
  const say = (what: string): void => { options.progress?.(`${((time.now() - VirtualTime.START) / 1000).toFixed(1)} s virtual: ${what}`) }
  say(`${nodes.length} replicas built`)
  net.announceJoins = false
  for (const n of nodes) await n.sync.start()
  net.announceJoins = true

  const acked: Acked[] = []
  let counter = 0
  const writerCount = Math.min(options.nodes, options.writers ?? 100)
  const writers = sample(rng, options.nodes, writerCount)
  const perWriter = options.writesPerWriter ?? 1
  const write = async (phase: string): Promise<void> => {
    for (const w of writers) {
      for (let k = 0; k < perWriter; k++) {
        const n = ++counter
        const path = `/scale/${phase}/${w}-${k}`
        const cid = writeCID(n).toString()
        await nodes[w].replica.putFile(path, { cid, size: n, mode: 0o644, mtime: time.now() })
        acked.push({ path, cid })
      }
      await time.advance(rng.int(0, 20))
    }
  }

  await time.advance(2000)
  say('writes before the partition')
  await write('before')
  await time.advance(5000)
  say('partition, writes on both sides')

  // a partition into two halves with writes on both sides, plus partial faults inside each half
  const half = new Set(sample(rng, options.nodes, Math.floor(options.nodes / 2)))
  net.partition([nodes.filter((_, i) => half.has(i)).map(n => n.id)])
  const links = net.links()
  const cut = sample(rng, links.length, Math.floor(links.length / 20)).map(k => links[k])
  const oneWay = sample(rng, links.length, Math.floor(links.length / 20)).map(k => links[k])
  net.cut(cut)
  net.cut(oneWay, { oneWay: true })
  // crashes: nodes that do not write stop (their store kept); half come back before the heal, half after
  const writing = new Set(writers)
  const idle = nodes.map((_, i) => i).filter(i => !writing.has(i))
  const crashed = sample(rng, idle.length, Math.min(idle.length, options.crashes ?? 0)).map(k => nodes[idle[k]])
  for (const n of crashed) {
    await n.sync.stop()
    await n.replica.close()
  }
  if (crashed.length > 0) say(`${crashed.length} nodes crashed`)
  await write('split')
  const partitionFor = options.partitionFor ?? 20_000
  await time.advance(Math.floor(partitionFor / 2))
  const early = crashed.slice(0, Math.floor(crashed.length / 2))
  for (const n of early) await restart(n)
  await time.advance(partitionFor - Math.floor(partitionFor / 2))
  net.heal()
  const healed = time.now()
  say('heal')
  for (const n of crashed.slice(early.length)) await restart(n)
  if (crashed.length > 0) say(`${crashed.length} nodes restarted (${early.length} before the heal)`)

  const target = (): boolean => {
    const want = nodes[0].replica.clockNow()
    const authors = Object.keys(want)
    if (authors.length < writerCount) return false
    for (const n of nodes) {
      const c = n.replica.clockNow()
      for (const a of authors) if (c[a] !== want[a]) return false
    }
    return true
  }
  let told = healed
  const watched = (): boolean => {
    if (options.progress !== undefined && time.now() - told >= PROGRESS_EVERY) {
      told = time.now()
      say(`${agreeing(nodes)} of ${nodes.length} nodes have node 0's clock (${Object.keys(nodes[0].replica.clockNow()).length} authors)`)
    }
    return target()
  }
  const within = options.convergeWithin ?? 300_000
  const result = await time.runUntil(watched, { deadline: healed + within, pollEvery: 1000, maxEvents: 1e9 })
  const convergeMs = time.now() - healed
  options.onConverged?.()
  const gossip = tally(nodes)
  const quietFrom = time.now()
  if (result === 'done' && (options.quietFor ?? 0) > 0) await time.runUntil(quietFrom + (options.quietFor ?? 0), { maxEvents: 1e9 })
  const after = tally(nodes)
  const quiet = { ms: time.now() - quietFrom, ...minus(after, gossip) }

  const lost: string[] = []
  let replicasMissing = 0
  for (let i = 0; i < nodes.length; i++) {
    let missing = false
    for (const w of acked) {
      const e = await nodes[i].replica.lookup(w.path)
      if (e === undefined || e.type !== 'file' || e.cid.toString() !== w.cid) {
        missing = true
        if (lost.length < 20) lost.push(`${w.path}@${i}`)
      }
    }
    if (missing) replicasMissing++
  }
  const totals = { pulls: 0, pullFailures: 0, gossipHandled: 0 }
  for (const n of nodes) {
    totals.pulls += n.sync.stats.pulls
    totals.pullFailures += n.sync.stats.pullFailures
    totals.gossipHandled += n.sync.stats.messages
  }
  for (const n of nodes) await n.sync.stop()
  time.clear()
  return {
    nodes: options.nodes,
    writes: acked.length,
    converged: result === 'done',
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
    signatures: { checks: shared?.stats.checks ?? 0, hits: shared?.stats.hits ?? 0 }
  }
}

/** How many of `nodes` have node 0's clock. */
function agreeing (nodes: Node[]): number {
  const want = nodes[0].replica.clockNow()
  const authors = Object.keys(want)
  let n = 0
  for (const node of nodes) {
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
function tally (nodes: Node[]): GossipTally {
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
