/**
 * One node of bench/converge-procs.ts, in a process of its own as a real
 * Shoal node is: a libp2p host on 127.0.0.1 (`createHost`), a replica in its
 * own LevelDB (`createNamespace`, as the daemon builds it) and a
 * NamespaceSync over Libp2pSyncNetwork with the default options.
 *
 *   forked by dist/bench/converge-procs.js with `--dir DIR --name nI`
 *
 * The parent drives it over IPC with {@link Command}s, each answered by one
 * {@link Reply}; the node reports what it saw as {@link NodeEvent}s, stamped
 * with `process.hrtime.bigint()` (CLOCK_MONOTONIC, the same clock in every
 * process of the machine) and sent in batches every {@link FLUSH_MS} ms, so
 * that reporting adds nothing to the latencies it reports. It exits when the
 * parent says `stop` or goes away.
 *
 * @module
 */
import '../node/polyfills.js'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import type { Message } from '@libp2p/gossipsub'
import { createHost, type ShoalLibp2p } from '../node/net/host.js'
import { createNamespace, signerFromKey, type Replica } from '../node/namespace/index.js'
import { createLibp2pSync } from '../node/namespace/libp2p-network.js'
import type { NamespaceSync } from '../node/namespace/sync.js'
import { NAMESPACE_TOPIC, decodeHeadsMessage, encodeHeadsMessage } from '../protocol/namespace.js'
import { TEST_TOPIC, Watcher, fileRecord, monoMs, payload, payloadId } from './converge-common.js'

/** How often seen events go to the parent (ms). */
const FLUSH_MS = 100

/** What the parent asks; `id` pairs it with its {@link Reply}. */
export type Command = { id: number } & (
  | { cmd: 'dial', addrs: string[] }
  | { cmd: 'probe', probeId: number }
  | { cmd: 'mesh' }
  | { cmd: 'record', probes: boolean, entries: boolean }
  | { cmd: 'expect', path: string }
  | { cmd: 'write', i: number, path: string }
  | { cmd: 'publish', probeId: number, size: number }
  | { cmd: 'load-start' }
  | { cmd: 'load-end' }
  | { cmd: 'stats' }
  | { cmd: 'stop' }
)

/** The answer to one {@link Command}. */
export interface Reply { reply: number, ok: boolean, value?: unknown, error?: string }

/** What a node saw, when (ms on CLOCK_MONOTONIC). */
export type NodeEvent =
  /** A ceiling or probe message on the test topic. */
  | { k: 'test', id: number, t: number }
  /** A namespace gossip message carrying entries: `seq` is the publisher's counter in its push clock. */
  | { k: 'entry', from: string, seq: number, bytes: number, t: number }
  /** A namespace gossip message without entries, while probing. */
  | { k: 'nsprobe', from: string, t: number }
  /** An expected path found by lookup(). */
  | { k: 'found', path: string, t: number }
  /** A lookup failed. */
  | { k: 'error', message: string }

/** Everything a node sends to the parent. */
export type ChildMessage =
  | { type: 'ready', peerId: string, addrs: string[], pid: number }
  | { type: 'events', events: NodeEvent[] }
  | { type: 'fatal', message: string }
  | Reply

/** A node's own load over a phase. */
export interface NodeLoad {
  seconds: number
  /** CPU seconds of this process (all threads). */
  cpuS: number
  eventLoopUtilization: number
  /** Event-loop delay (ms) measured by a 10 ms timer, over what the timer asked. */
  loopDelayP50: number
  loopDelayP99: number
  loopDelayMax: number
  /** The phase's bounds on CLOCK_MONOTONIC (µs, as in --cpu-prof profiles). */
  fromUs: number
  toUs: number
}

/** A node's counters at the end. */
export interface NodeStats {
  connections: number
  foundByPoll: number
  sync: Record<string, number>
  putFileMs: number[]
}

function argValue (name: string): string {
  const i = process.argv.indexOf(name)
  const v = i < 0 ? undefined : process.argv[i + 1]
  if (v === undefined) throw new Error(`converge-node: ${name} is required`)
  return v
}

function send (message: ChildMessage): void {
  if (process.connected) process.send?.(message)
}

class Node {
  private readonly events: NodeEvent[] = []
  /** Set while events wait to be sent: no timer runs while nothing happens. */
  private flusher?: NodeJS.Timeout
  private readonly poller: NodeJS.Timeout
  private recordProbes = false
  private recordEntries = false
  private load?: () => NodeLoad
  readonly putFileMs: number[] = []
  readonly watcher: Watcher

  constructor (readonly name: string, readonly libp2p: ShoalLibp2p, readonly replica: Replica, readonly sync: NamespaceSync) {
    this.watcher = new Watcher(replica, monoMs, err => { this.record({ k: 'error', message: String((err as any)?.message ?? err) }) })
    this.poller = setInterval(() => { this.watcher.poll() }, 500)
    libp2p.services.pubsub.subscribe(TEST_TOPIC)
    libp2p.services.pubsub.addEventListener('message', this.onMessage)
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const t = monoMs()
    const msg = evt.detail
    if (msg.topic === TEST_TOPIC) {
      const id = payloadId(msg.data)
      if (id !== undefined) this.record({ k: 'test', id, t })
      return
    }
    if (msg.topic !== NAMESPACE_TOPIC || msg.type !== 'signed' || !(this.recordProbes || this.recordEntries)) return
    try {
      const heads = decodeHeadsMessage(msg.data)
      const from = msg.from.toString()
      if (heads.entries.length > 0) {
        if (this.recordEntries) this.record({ k: 'entry', from, seq: heads.clock[from] ?? 0, bytes: msg.data.byteLength, t })
      } else if (this.recordProbes) {
        this.record({ k: 'nsprobe', from, t })
      }
    } catch {}
  }

  /** Keep `e` for the next batch to the parent, sent within {@link FLUSH_MS}. */
  private record (e: NodeEvent): void {
    this.events.push(e)
    this.flusher ??= setTimeout(() => { this.flush() }, FLUSH_MS)
  }

  flush (): void {
    clearTimeout(this.flusher)
    this.flusher = undefined
    if (this.events.length === 0) return
    send({ type: 'events', events: this.events.splice(0) })
  }

  async run (c: Command): Promise<unknown> {
    const pubsub = this.libp2p.services.pubsub
    switch (c.cmd) {
      case 'dial':
        await this.libp2p.dial(c.addrs.map(a => multiaddr(a)), { signal: AbortSignal.timeout(10_000) })
        return
      case 'probe': {
        const { clock, heads } = this.replica.state()
        await pubsub.publish(TEST_TOPIC, payload(64, 1, c.probeId)).catch(() => {})
        await pubsub.publish(NAMESPACE_TOPIC, encodeHeadsMessage({ v: 1, type: 'heads', clock, heads, entries: [] })).catch(() => {})
        return
      }
      case 'mesh': {
        // the GossipSub interface does not declare getMeshPeers; the implementation has it
        const mesh = (topic: string): number => (pubsub as unknown as { getMeshPeers: (topic: string) => string[] }).getMeshPeers(topic).length
        return {
          test: mesh(TEST_TOPIC),
          testWant: Math.min(4, pubsub.getSubscribers(TEST_TOPIC).length),
          ns: mesh(NAMESPACE_TOPIC),
          nsWant: Math.min(4, pubsub.getSubscribers(NAMESPACE_TOPIC).length),
          connections: this.libp2p.getConnections().length
        }
      }
      case 'record':
        this.recordProbes = c.probes
        this.recordEntries = c.entries
        return
      case 'expect':
        // the parent names a path one write ahead: a path already there is found by the safety poll (and counted)
        this.watcher.watch(c.path, t => { this.record({ k: 'found', path: c.path, t }) })
        return
      case 'write': {
        const self = this.libp2p.peerId.toString()
        // the path's parent exists, so putFile makes exactly one entry: the writer's next seq
        const seq = (this.replica.state().clock[self] ?? 0) + 1
        const s = performance.now()
        await this.replica.putFile(c.path, fileRecord(c.i))
        const t0 = monoMs()
        this.putFileMs.push(performance.now() - s)
        return { t0, seq, putFileMs: performance.now() - s }
      }
      case 'publish': {
        const t0 = monoMs()
        await pubsub.publish(TEST_TOPIC, payload(c.size, 2, c.probeId))
        return { t0 }
      }
      case 'load-start':
        this.load = startLoad()
        return
      case 'load-end': {
        if (this.load === undefined) throw new Error('load-end without load-start')
        const l = this.load()
        this.load = undefined
        return l
      }
      case 'stats': {
        const stats: NodeStats = {
          connections: this.libp2p.getConnections().length,
          foundByPoll: this.watcher.foundByPoll,
          sync: { ...this.sync.stats },
          putFileMs: this.putFileMs
        }
        return stats
      }
      case 'stop':
        await this.stop()
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.poller)
    this.watcher.off()
    this.flush()
    const errors: string[] = []
    for (const step of [async () => await this.sync.stop(), async () => await this.libp2p.stop(), async () => await this.replica.close()]) {
      try { await step() } catch (err: any) { errors.push(String(err?.message ?? err)) }
    }
    if (errors.length > 0) throw new Error(`${this.name}: stop: ${errors.join('; ')}`)
  }
}

/** CPU, event-loop use and delay of this process from now until the returned function is called. */
function startLoad (): () => NodeLoad {
  const elu = performance.eventLoopUtilization()
  const cpu = process.cpuUsage()
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  const t = performance.now()
  const fromUs = Number(process.hrtime.bigint() / 1000n)
  return () => {
    const seconds = (performance.now() - t) / 1000
    const used = process.cpuUsage(cpu)
    delay.disable()
    // the histogram holds whole timer intervals: the delay is what exceeds the 10 ms resolution
    const over = (ns: number): number => Math.max(0, ns / 1e6 - 10)
    return {
      seconds,
      cpuS: (used.user + used.system) / 1e6,
      eventLoopUtilization: performance.eventLoopUtilization(elu).utilization,
      loopDelayP50: over(delay.percentile(50)),
      loopDelayP99: over(delay.percentile(99)),
      loopDelayMax: over(delay.max),
      fromUs,
      toUs: Number(process.hrtime.bigint() / 1000n)
    }
  }
}

async function main (): Promise<void> {
  const dir = argValue('--dir')
  const name = argValue('--name')
  const logger = pino({ level: process.env.SHOAL_LOG_LEVEL ?? 'info', base: { node: name } }, pino.destination(2))
  const key = await generateKeyPair('Ed25519')
  const replica = createNamespace({ path: dir, signer: signerFromKey(key), logger })
  await replica.open()
  const libp2p = await createHost({ privateKey: key })
  const sync = createLibp2pSync({ replica, libp2p, logger })
  await sync.start()
  const node = new Node(name, libp2p, replica, sync)
  let stopping = false
  const exit = (code: number): void => {
    // flushes a --cpu-prof profile on the way out
    setImmediate(() => process.exit(code))
  }
  process.on('message', (c: Command) => {
    if (stopping) return
    if (c.cmd === 'stop') stopping = true
    node.run(c).then(value => {
      node.flush()
      send({ reply: c.id, ok: true, value })
      if (c.cmd === 'stop') exit(0)
    }, (err: any) => {
      send({ reply: c.id, ok: false, error: String(err?.message ?? err) })
      if (c.cmd === 'stop') exit(1)
    })
  })
  process.on('disconnect', () => {
    if (stopping) return
    stopping = true
    // the parent went away: stop within 10 s, then go anyway
    setTimeout(() => process.exit(1), 10_000).unref()
    node.stop().finally(() => exit(1))
  })
  send({ type: 'ready', peerId: libp2p.peerId.toString(), addrs: libp2p.getMultiaddrs().map(a => a.toString()), pid: process.pid })
}

main().catch((err: any) => {
  send({ type: 'fatal', message: String(err?.stack ?? err?.message ?? err) })
  process.exit(1)
})
