/**
 * One simulated node's side of the wire, as the durability service sees it:
 * the shards protocol ({@link SimShardsNetwork}, a `ShardsNetwork`), the
 * block exchange ({@link SimExchange}: fetch from given peers, push what a
 * peer agreed to hold), the block reader of manifests and skeletons, and
 * the put policy (blocks are accepted only after a `hold` named them).
 *
 * Liveness is per node and may disagree between nodes: a node believes a
 * peer up or down only from its own calls — the requests the service makes,
 * and a probe of every peer on its own timer (the connection keep-alive of
 * libp2p). A call that succeeds marks both ends up for each other (a
 * connection is two-way); one that fails marks the peer down for the
 * caller only, from the moment it failed. A peer never reached counts as
 * away since this node started, as in production (node/durability/network.ts).
 *
 * The probe sends a call only where its outcome could change a view: to a
 * peer this node never reached, or whose state here (or, for a peer it
 * reaches, whose view of this node) disagrees with the fabric now. It looks
 * only at the peers that may disagree: every peer on its first run and
 * after a partition or a change of this node's own reachability, else the
 * peers whose reachability changed, whose state here changed, or that
 * disagreed last time. A quiet swarm of N nodes costs O(N) per probe
 * period rather than O(N²) calls.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { NotFoundError } from '../node/errors.js'
import { RemoteError } from '../node/exchange/index.js'
import { verifyBlock } from '../node/blocks/verify.js'
import { refusal, refusalAnswer, type ShardsHandler, type ShardsNetwork } from '../node/durability/network.js'
import type { ShardExchange } from '../node/durability/service.js'
import type { BlockReader, GetBlockOptions } from '../node/reads/api.js'
import type { ExchangeGetOptions, PutBlocksResult, PutExpectations } from '../node/exchange/index.js'
import type { ShardsRequest, ShardsResponse } from '../protocol/shards.js'
import type { CID } from 'multiformats/cid'
import type { PeerId } from '@libp2p/interface'
import type { MemoryBlockStore } from './memory-blockstore.js'
import type { Prng } from './prng.js'
import type { CallShape, ShardFabric } from './shard-fabric.js'
import type { VirtualTime } from './virtual-time.js'

/** Bytes of a shards-protocol message on the wire (they are small and bounded). */
const MESSAGE_BYTES = 256

/** The signal of a request made without one: never aborted (one for all, not one per request). */
const NEVER = new AbortController().signal

/** Blocks expected from peers after their `hold`s: the put policy of one node. */
export class SimExpectations implements PutExpectations {
  private readonly byPeer = new Map<string, Set<string>>()

  /** @param onExpect told of every `expect` (a `hold` or `reserve` accepted: this node may hold shards from now on) */
  constructor (private readonly onExpect: () => void = () => {}) {}

  room (): number { return 1 << 20 }

  expect (peer: string, cids: CID[]): void {
    this.onExpect()
    let set = this.byPeer.get(peer)
    if (set === undefined) { set = new Set(); this.byPeer.set(peer, set) }
    for (const cid of cids) set.add(cid.toString())
  }

  cancel (peer: string, cids: CID[]): void {
    const set = this.byPeer.get(peer)
    for (const cid of cids) set?.delete(cid.toString())
  }

  /** Whether a put of `cid` from `peer` is accepted (it is expected once). */
  take (peer: string, cid: CID): boolean {
    return this.byPeer.get(peer)?.delete(cid.toString()) ?? false
  }
}

/** Everything one simulated node serves to others, looked up by peer id. */
export interface SimNodeSide {
  store: MemoryBlockStore
  expected: SimExpectations
  /** The node's shards handler while its service runs. */
  handler?: ShardsHandler
  /** Its view of the peers, told when a peer reached it. */
  network?: SimShardsNetwork
}

/** What a {@link SimShardsNetwork} is built from. */
export interface SimShardsNetworkComponents {
  fabric: ShardFabric
  time: VirtualTime
  /** Jitter of the probe timer. */
  rng: Prng
  /** Every node's side, by peer id (the directory of the simulation). */
  sides: ReadonlyMap<string, SimNodeSide>
}

/** Settings of a {@link SimShardsNetwork}. */
export interface SimShardsNetworkInit {
  self: string
  /** The peers this node knows (it probes them). */
  peers: readonly string[]
  /** Period of the probe of every peer (ms, ± 20 % jitter). @default 30_000 */
  probeIntervalMs?: number
}

/** The shards protocol of one node on the fabric, with this node's own view of who is up; see the module comment. */
export class SimShardsNetwork implements ShardsNetwork {
  readonly self: string
  private readonly startedAt: number
  private readonly state = new Map<string, { up: boolean, since: number }>()
  private readonly listeners: Array<(peer: string) => void> = []
  private readonly probeIntervalMs: number
  private timer: unknown
  private running = false
  /** The fabric's version at the last probe (-1: none yet). */
  private probedAt = -1
  /** Peers to look at in the next probe: their state here changed, or they disagreed last time. */
  private readonly recheck = new Set<string>()

  constructor (private readonly components: SimShardsNetworkComponents, private readonly init: SimShardsNetworkInit) {
    this.self = init.self
    this.startedAt = components.time.now()
    this.probeIntervalMs = init.probeIntervalMs ?? 30_000
  }

  async start (handler: ShardsHandler): Promise<void> {
    const side = this.side(this.self)
    side.handler = handler
    side.network = this
    this.running = true
    this.schedule(Math.floor(this.components.rng.next() * 1000))
  }

  async stop (): Promise<void> {
    this.running = false
    const side = this.side(this.self)
    if (side.network === this) {
      side.handler = undefined
      side.network = undefined
    }
    this.components.time.clearTimeout(this.timer)
  }

  connected (): string[] {
    return this.init.peers.filter(p => p !== this.self && this.state.get(p)?.up === true)
  }

  /** Virtual time (never skewed: a node's skewed wall clock is its service's `clock`). */
  now (): number { return this.components.time.now() }

  downSince (peer: string): number | undefined {
    if (peer === this.self) return undefined
    const state = this.state.get(peer)
    if (state === undefined) return this.startedAt
    return state.up ? undefined : state.since
  }

  onDisconnect (fn: (peer: string) => void): void {
    this.listeners.push(fn)
  }

  async request (peer: string, request: ShardsRequest, signal?: AbortSignal): Promise<ShardsResponse> {
    const answer = await this.call(peer, { requestBytes: MESSAGE_BYTES, answerBytes: () => MESSAGE_BYTES }, async side => {
      const handler = side.handler
      if (handler === undefined) return { v: 1, type: 'error', message: 'not serving' } satisfies ShardsResponse
      try {
        return await handler(this.self, request, signal ?? NEVER)
      } catch (err: any) {
        return refusalAnswer(err)
      }
    })
    if (answer.type === 'error') throw refusal(peer, request.type, answer.message)
    return answer
  }

  /**
   * One call to `peer` on the fabric, run at its side; its outcome updates
   * this node's view of `peer` (and `peer`'s view of this node on success).
   */
  async call<T>(peer: string, shape: CallShape<T>, serve: (side: SimNodeSide) => Promise<T>): Promise<T> {
    try {
      const answer = await this.components.fabric.call(this.self, peer, shape, async () => await serve(this.side(peer)))
      this.saw(peer, true)
      // the peer learns this node is up, unless it wrongly believes it down (its calls here are refused)
      if (!this.components.fabric.refuses(peer, this.self)) this.side(peer).network?.saw(this.self, true)
      return answer
    } catch (err: any) {
      if (err?.name === 'PeerUnreachableError') this.saw(peer, false)
      throw err
    }
  }

  /** Note the outcome of a call to `peer`. */
  saw (peer: string, up: boolean): void {
    if (!this.running || peer === this.self) return
    const before = this.state.get(peer)
    if (before?.up === up) return
    this.state.set(peer, { up, since: this.components.time.now() })
    this.recheck.add(peer)
    if (!up && before?.up === true) for (const fn of this.listeners) fn(peer)
  }

  private schedule (ms: number): void {
    if (!this.running) return
    this.timer = this.components.time.setTimeout(() => {
      this.probe()
      const jitter = 0.8 + 0.4 * this.components.rng.next()
      this.schedule(Math.round(this.probeIntervalMs * jitter))
    }, ms)
  }

  /** Probe the peers whose state a call could change (see the module comment). */
  private probe (): void {
    const { fabric } = this.components
    const { peers } = this.init
    const changed = this.probedAt < 0 ? undefined : fabric.changedSince(this.probedAt, peers.length)
    this.probedAt = fabric.version
    if (changed !== undefined) for (const peer of changed) this.recheck.add(peer)
    const look = changed === undefined || changed.has(this.self) ? peers : [...this.recheck]
    this.recheck.clear()
    for (const peer of look) {
      if (peer === this.self || this.agrees(peer)) continue
      this.recheck.add(peer)
      this.call(peer, { requestBytes: 64, answerBytes: () => 64 }, async () => true).catch(() => {})
    }
  }

  /** Whether a probe of `peer` now would change no view: its outcome is what this node, and the peer of this node, believe already. */
  private agrees (peer: string): boolean {
    const state = this.state.get(peer)
    if (state === undefined) return false
    const { fabric } = this.components
    const reaches = !fabric.refuses(this.self, peer) && fabric.reachable(this.self, peer) && fabric.reachable(peer, this.self)
    if (!reaches) return !state.up
    if (!state.up) return false
    if (fabric.refuses(peer, this.self)) return true
    const theirs = this.components.sides.get(peer)?.network
    return theirs === undefined || theirs.believesUp(this.self)
  }

  /** Whether this node would take no news from a call of `peer` (it is not running, or believes `peer` up already). */
  believesUp (peer: string): boolean {
    return !this.running || this.state.get(peer)?.up === true
  }

  private side (id: string): SimNodeSide {
    const side = this.components.sides.get(id)
    if (side === undefined) throw new NotFoundError(`no simulated node ${id}`)
    return side
  }
}

/** The block exchange of one node on the fabric: what the durability service uses of it. */
export class SimExchange implements ShardExchange {
  /**
   * @param losePushes test-only sabotage: while it returns true, a peer
   *   accepts this node's pushes but stores nothing (a broken repair the
   *   invariants must catch)
   */
  constructor (private readonly network: SimShardsNetwork, private readonly store: MemoryBlockStore, private readonly losePushes: () => boolean = () => false) {}

  /**
   * The local copy when it passes its check, else the first of `providers`
   * (default: the peers this node believes up) that has a good copy; a
   * fetched block is hash-checked and kept here unless `store` is false.
   *
   * @throws {NotFoundError} when no provider gives it
   */
  async getBlock (cid: CID, options: ExchangeGetOptions = {}): Promise<Uint8Array> {
    if (await this.store.has(cid)) {
      try {
        const bytes = await this.store.getBytes(cid)
        options.onSource?.('local')
        return bytes
      } catch {}
    }
    const self = this.network.self
    const providers = options.providers?.map(p => p.toString()) ?? this.network.connected()
    for (const peer of providers) {
      if (peer === self) continue
      try {
        const bytes = await this.network.call(peer, {
          requestBytes: 64,
          answerBytes: (b: Uint8Array) => b.byteLength,
          block: (b: Uint8Array) => ({ cid: cid.toString(), bytes: b.byteLength })
        }, async side => await side.store.getBytes(cid))
        verifyBlock(cid, bytes)
        if (options.store !== false) await this.store.put(cid, bytes)
        options.onSource?.('peer')
        return bytes
      } catch {}
    }
    throw new NotFoundError(`block ${cid.toString()} not found on ${providers.length} peers`)
  }

  /**
   * Push `blocks` to `peer`, one call each; the peer stores a block only
   * when a `hold` of this node named it (and acknowledges one it has already).
   *
   * @throws {RemoteError} when the peer refuses a block
   * @throws {PeerUnreachableError} when the peer cannot be reached
   */
  async putBlocks (peer: PeerId, blocks: AsyncIterable<{ cid: CID, bytes: Uint8Array }> | Iterable<{ cid: CID, bytes: Uint8Array }>): Promise<PutBlocksResult> {
    const to = peer.toString()
    const self = this.network.self
    let count = 0
    let total = 0
    for await (const { cid, bytes } of blocks) {
      await this.network.call(to, {
        requestBytes: bytes.byteLength,
        answerBytes: () => 16,
        block: () => ({ cid: cid.toString(), bytes: bytes.byteLength, push: true })
      }, async side => {
        if (!side.expected.take(self, cid)) {
          // a block held there already is acknowledged, nothing written, as node/exchange/server.ts does
          if (await side.store.has(cid)) return true
          throw new RemoteError(`peer ${to} refused an unexpected put of ${cid.toString()}`)
        }
        if (!this.losePushes()) await side.store.put(cid, bytes, { verify: true })
        return true
      })
      count++
      total += bytes.byteLength
    }
    return { blocks: count, bytes: total }
  }

  announceSoon (): void {}
}

/** The block reader of manifests and skeletons: this node's store, else the given peers or every peer it believes up. */
export function simBlockReader (exchange: SimExchange): BlockReader {
  const get = async (cid: CID, options: GetBlockOptions = {}): Promise<Uint8Array> => await exchange.getBlock(cid, { signal: options.signal, providers: options.providers?.map(simPeerId) })
  return {
    get,
    getter: (options = {}) => ({ getBytes: async (cid, o) => await get(cid, { ...options, signal: o?.signal ?? options.signal }) }),
    session: (_target, options = {}) => ({ getBytes: async (cid, o) => await get(cid, { signal: o?.signal ?? options.signal }), close: () => {} })
  }
}

/** A peer id object of a simulated node (the exchange's API takes them). */
export function simPeerId (id: string): PeerId {
  return peerIdFromString(id)
}
