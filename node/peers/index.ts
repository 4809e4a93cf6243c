/**
 * Peer management: connect, disconnect, list (with latency), and keep the
 * peers we have met — bootstrap peers and everyone we connected to —
 * re-dialled after restarts and disconnections, with exponential backoff.
 *
 * Each re-dial waits its backoff times a factor drawn in [0.5, 1.5)
 * ({@link REDIAL_JITTER}). When a node goes away, every peer of it sees
 * the connection close within the same few milliseconds; with waits of
 * exactly 1, 2, 4… s they all re-dialled it at the same instants, so the
 * node, once back, met all their dials (a handshake each) at once — a
 * thousand at a seed every node bootstraps from. Drawn waits spread them
 * over the backoff; its mean is unchanged.
 *
 * Which peers are kept: the bootstrap list and the peers a user connected
 * to (`shoal peers connect`) until `shoal peers disconnect`; the peers this
 * node merely met — dialled for the DHT, a sync, a read — at most
 * {@link PeersInit.maxMetPeers} (the least recently connected go first), and
 * each forgotten once it has been unreachable for
 * {@link PeersInit.forgetAfterMs}. Before, every peer ever dialled was kept
 * and dialled again every minute for ever: in a swarm that lives for years,
 * machines replaced or retired piled up in `peers.json` and in every node's
 * dials. A peer forgotten that comes back dials its own peers, and the DHT
 * finds it. A peer a user disconnected is not remembered again when it (or
 * the DHT) connects, until a user connects to it again.
 *
 * @module
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { parsePeerAddress, parsePeerId } from '../../protocol/peer-address.js'
import { InvalidArgumentError, NotFoundError, PeerUnreachableError } from '../errors.js'
import { loadKnownPeers, saveKnownPeers, type KnownPeer } from './known-peers.js'
import { dialFailureHint, dialFailureKind, type DialFailureKind } from './dial-failure.js'
import type { Logger } from '../logger.js'
import type { ShoalLibp2p } from '../net/host.js'
import { KEEP_ALIVE, type IdentifyResult, type PeerId, type PeerStore } from '@libp2p/interface'
import { jittered, systemTimers, type Timers } from '../timers.js'

/** What the peer manager is built from. */
export interface PeersComponents {
  libp2p: ShoalLibp2p
  logger: Logger
  /** Timers of the re-dials. @default real timers, unref'd (a pending re-dial never keeps a process alive) */
  timers?: Timers
  /** Uniform in [0, 1): the re-dials' spread. @default Math.random */
  random?: () => number
  /** Wall clock (ms since the epoch): when a peer was last connected, saved in peers.json. @default Date.now */
  now?: () => number
}

/** A known peer this node is not connected to ({@link PeerManager.unreachable}). */
export interface UnreachablePeer {
  id: string
  /** Kept until `shoal peers disconnect` (else forgotten after a day unreachable). */
  kept: boolean
  /** When it was last connected or disconnected (ms since the epoch), if known. */
  since?: number
}

/** A disconnection saves the times peers were seen when the last save is at least this old (ms). */
const SEEN_SAVE_MS = 60_000

/** Each re-dial waits its backoff times 1 ± this (drawn uniformly). */
export const REDIAL_JITTER = 0.5

/** Where to keep state and whom to dial. */
export interface PeersInit {
  /** `<repo>/peers.json`. */
  file: string
  /** Bootstrap multiaddrs (with /p2p/ID). */
  bootstrap: string[]
  /** First re-dial delay. @default 1000 */
  minBackoffMs?: number
  /** Longest re-dial delay. @default 60000 */
  maxBackoffMs?: number
  /** A peer this node met (not one a user connected to) is forgotten once unreachable this long (ms). @default 86_400_000 (a day) */
  forgetAfterMs?: number
  /** Peers this node met kept at most; past it the least recently connected that is not connected now is forgotten. @default 256 */
  maxMetPeers?: number
}

/** A connected peer as `shoal peers ls` shows it. */
export interface PeerStatus {
  id: string
  addresses: string[]
  direction: 'inbound' | 'outbound'
  /** Round trip of a ping, when it answered within 2 s. */
  latencyMs?: number
}

function withPeerId (addr: string, id: string): string {
  return addr.includes('/p2p/') ? addr : `${addr}/p2p/${id}`
}

/** The IP of a multiaddr's first component, if it is one. */
function hostOf (addr: Multiaddr): string | undefined {
  const first = addr.getComponents()[0]
  return first !== undefined && (first.name === 'ip4' || first.name === 'ip6') ? first.value : undefined
}

/**
 * Whether a listen address a peer gave (identify) is worth dialling from
 * here: not loopback unless the peer came from loopback (the same machine;
 * a remote peer's 127.0.0.1 is this machine, and dialling it dialled this
 * node itself, reported as "another node answers at that address"), never
 * link-local or unspecified.
 */
function reachableFrom (host: string | undefined, seenFrom: string | undefined): boolean {
  if (host === undefined) return false
  if (host === '0.0.0.0' || host === '::' || host.startsWith('169.254.') || host.toLowerCase().startsWith('fe80:')) return false
  const loopback = (h: string): boolean => h.startsWith('127.') || h === '::1'
  return !loopback(host) || (seenFrom !== undefined && loopback(seenFrom))
}

/**
 * The listen addresses a peer that dialled this node gave (identify) worth
 * dialling it at later ({@link reachableFrom}), those on the host it came
 * from first (likeliest to answer).
 */
export function dialableListenAddrs (listenAddrs: Multiaddr[], remoteAddr: Multiaddr): Multiaddr[] {
  const seenFrom = hostOf(remoteAddr)
  return listenAddrs
    .filter(a => reachableFrom(hostOf(a), seenFrom))
    .sort((x, y) => Number(hostOf(y) === seenFrom) - Number(hostOf(x) === seenFrom))
}

/**
 * Remove the `keep-alive…` tags a peer store holds for `peerId`: libp2p's
 * reconnect queue re-dials a peer so tagged as soon as it disconnects, and
 * the DHT so tags the peers closest to this node (in a small swarm, all).
 *
 * @throws the store's NotFoundError for a peer it does not hold (no tags)
 */
export async function dropKeepAliveTags (peerStore: PeerStore, peerId: PeerId): Promise<void> {
  const tags = [...(await peerStore.get(peerId)).tags.keys()].filter(tag => tag.startsWith(KEEP_ALIVE))
  if (tags.length > 0) await peerStore.merge(peerId, { tags: Object.fromEntries(tags.map(tag => [tag, undefined])) })
}

/** See the module doc. */
export class PeerManager {
  private readonly components: PeersComponents
  private readonly init: Required<PeersInit>
  private readonly known = new Map<string, KnownPeer>()
  /** The pending re-dial of each peer (its timer). */
  private readonly timers = new Map<string, unknown>()
  private running = false
  private saving: Promise<void> = Promise.resolve()
  /** When the known peers were last saved (ms, {@link PeerManager}'s clock; 0: not since start). */
  private savedAt = 0
  /** Counters since start (metrics): re-dials that reached none of a known peer's addresses. */
  readonly stats = { redialsFailed: 0 }
  /**
   * Peers whose failed re-dials were told already (until they connect
   * again), with the kind of failure told: a new kind is told again (a peer
   * that was down and is back with another swarm key is a new problem).
   */
  private readonly unreachableTold = new Map<string, DialFailureKind>()
  /**
   * Peers a user disconnected (`shoal peers disconnect`) since this node
   * started: not remembered again as met when they connect (the peer itself
   * re-dials this node, which it still knows; the DHT dials it), until a
   * user connects to one again. Without it the peer was back in peers.json
   * a second after it was forgotten, and re-dialled after every restart.
   */
  private readonly dropped = new Set<string>()

  constructor (components: PeersComponents, init: PeersInit) {
    this.components = components
    this.init = { minBackoffMs: 1000, maxBackoffMs: 60_000, forgetAfterMs: 24 * 3600_000, maxMetPeers: 256, ...init }
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    const id = evt.detail.toString()
    this.clearRedial(id)
    this.unreachableTold.delete(id)
    const addrs = this.components.libp2p.getConnections(evt.detail)
      .filter(c => c.direction === 'outbound')
      .map(c => withPeerId(c.remoteAddr.toString(), id))
    if (addrs.length === 0) {
      // inbound only: remembered once identify tells where it listens (onIdentify); a known one was seen now
      this.noteSeen(id)
      return
    }
    this.remember({ id, addrs })
  }

  /**
   * A peer that dialled this node is remembered at the addresses it says it
   * listens on (identify), as one this node dialled is at the address it
   * dialled. Before, only the peers this node dialled were remembered: a
   * node every other member had joined through (the first node of a swarm)
   * kept an empty peers.json, and once its own address changed (a new
   * listen port, a new IP) the others dialled the old one for ever and it
   * found none of them again.
   */
  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    const { peerId, listenAddrs, connection } = evt.detail
    if (!this.running || connection.direction !== 'inbound') return
    const id = peerId.toString()
    const addrs = dialableListenAddrs(listenAddrs, connection.remoteAddr).map(a => withPeerId(a.toString(), id))
    if (addrs.length > 0) this.remember({ id, addrs })
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const id = evt.detail.toString()
    if (!this.running || !this.known.has(id)) return
    // unreachable from now on, not from when the connection opened (it may have lasted days); saved at most once a
    // minute, so that a crash of this node does not leave the connection's start as its last sight (the status said
    // a peer away for 3 minutes was away 7)
    this.noteSeen(id)
    if (this.now() - this.savedAt >= SEEN_SAVE_MS) this.persist()
    this.scheduleRedial(id)
  }

  /** Load known peers, add bootstrap peers, dial them all in the background. */
  async start (): Promise<void> {
    this.running = true
    // a file written before peers were told apart: each counts as met, seen now (forgotten after a day unreachable)
    for (const peer of await loadKnownPeers(this.init.file)) this.known.set(peer.id, { ...peer, seen: peer.seen ?? this.now() })
    for (const text of this.init.bootstrap) {
      const { addr, peerId } = parsePeerAddress(text)
      const id = peerId.toString()
      const prev = this.known.get(id)
      this.known.set(id, { id, addrs: [...new Set([...(prev?.addrs ?? []), addr.toString()])], kept: true, seen: prev?.seen ?? this.now() })
    }
    // a file over the bound (written before there was one) is cut to it before any dial: the least recently seen go,
    // the oldest entries first among equals (a file keeps peers in the order they were first met)
    if (this.metCount > this.init.maxMetPeers) {
      this.forgetMetBeyondBound()
      this.persist()
    }
    this.components.libp2p.addEventListener('peer:connect', this.onConnect)
    this.components.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.components.libp2p.addEventListener('peer:identify', this.onIdentify)
    for (const id of this.known.keys()) this.scheduleRedial(id, 0)
  }

  /** Stop re-dialling and save what we know. */
  async stop (): Promise<void> {
    // a start that failed before this one ran (a damaged store) must not save an empty list over peers.json
    const started = this.running
    this.running = false
    this.components.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.components.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.components.libp2p.removeEventListener('peer:identify', this.onIdentify)
    for (const id of [...this.timers.keys()]) this.clearRedial(id)
    // the times peers were last seen, noted since the last save
    if (started) this.persist()
    await this.saving
  }

  /**
   * Dial a peer by multiaddr (with /p2p/ID) and remember it.
   *
   * @throws {InvalidArgumentError} for a malformed address, or one that names this node
   * @throws {PeerUnreachableError} when the dial fails
   */
  async connect (address: string, signal?: AbortSignal): Promise<PeerStatus> {
    const { addr, peerId } = parsePeerAddress(address)
    // the address's mistake, not the network's: no dial, no failure noted against a peer
    if (peerId.equals(this.components.libp2p.peerId)) throw new InvalidArgumentError(`${address} names this node (${peerId.toString()}): give the address of another node`)
    // already connected to it over another address: that address is dialled all the same (its handshake checks the
    // id that answers), and the new connection closed after (the one there stays). libp2p would hand back the open
    // connection without a dial, and an address where another node answers (another peer id: a typo, a port reused)
    // was remembered and re-dialled for good
    const bare = (a: { toString: () => string }): string => a.toString().replace(/\/p2p\/[^/]+$/, '')
    const open = this.components.libp2p.getConnections(peerId)
    const check = open.length > 0 && !open.some(c => bare(c.remoteAddr) === bare(addr))
    let verified = true
    try {
      const conn = await this.components.libp2p.dial(addr, { signal: signal ?? AbortSignal.timeout(15_000), force: check })
      // a dial to the peer already under way (a re-dial: the usual reason to connect by hand) takes ours in and may
      // answer over another address: the peer is connected, but this address was not tried, so it is not remembered
      // (a name, /dns…, is answered over the address it resolves to: taken as tried)
      verified = /\/dns(4|6|addr)?\//.test(addr.toString()) || bare(conn.remoteAddr) === bare(addr)
      if (check && !open.includes(conn)) await conn.close().catch(() => {})
    } catch (err: any) {
      const reason = String(err?.message ?? err?.type ?? err)
      // pnet drops the handshake of a node with another key (or none)
      const kind = dialFailureKind(err)
      const hint = kind === 'handshake' || kind === 'identity' ? ` (${dialFailureHint(kind)})` : ''
      throw new PeerUnreachableError(`could not connect to ${peerId.toString()}: ${reason}${hint}`, { cause: err })
    }
    this.dropped.delete(peerId.toString())
    this.remember({ id: peerId.toString(), addrs: verified ? [addr.toString()] : [], kept: true })
    return await this.status(peerId)
  }

  /**
   * Close every connection to a peer and forget it (no re-dial): neither by
   * this manager nor by libp2p's reconnect queue, which re-dials at once
   * every peer tagged `keep-alive…` — the DHT so tags the peers closest to
   * this node, in a swarm of twenty nodes or fewer every peer. The tags are
   * dropped first; the DHT tags a peer again only once it has left the
   * closest set and come back.
   *
   * @throws {NotFoundError} when we neither know nor are connected to it
   */
  async disconnect (peer: string): Promise<void> {
    const peerId = parsePeerId(peer)
    const id = peerId.toString()
    const known = this.known.delete(id)
    this.dropped.add(id)
    this.clearRedial(id)
    const connected = this.components.libp2p.getConnections(peerId).length > 0
    if (!known && !connected) throw new NotFoundError(`not connected to ${id}`)
    await this.dropKeepAlive(peerId)
    await this.components.libp2p.hangUp(peerId)
    this.persist()
  }

  /** Remove the peer's `keep-alive…` tags (libp2p re-dials a peer that has one as soon as it disconnects). */
  private async dropKeepAlive (peerId: PeerId): Promise<void> {
    try {
      await dropKeepAliveTags(this.components.libp2p.peerStore, peerId)
    } catch (err: any) {
      // a peer the store does not hold has no tags
      if (err?.name !== 'NotFoundError') this.components.logger.debug({ peer: peerId.toString(), err: err?.message }, 'keep-alive tags not dropped')
    }
  }

  /** Peers remembered and re-dialled (peers.json and the bootstrap list). */
  get knownCount (): number {
    return this.known.size
  }

  /** Every connected peer, with a ping round trip. */
  async list (): Promise<PeerStatus[]> {
    return await Promise.all(this.components.libp2p.getPeers().map(async peer => await this.status(peer)))
  }

  private async status (peer: PeerId): Promise<PeerStatus> {
    const conns = this.components.libp2p.getConnections(peer)
    let latencyMs: number | undefined
    try {
      latencyMs = await this.components.libp2p.services.ping.ping(peer, { signal: AbortSignal.timeout(2000) })
    } catch {}
    return {
      id: peer.toString(),
      addresses: [...new Set(conns.map(c => c.remoteAddr.toString()))],
      direction: conns.some(c => c.direction === 'outbound') ? 'outbound' : 'inbound',
      latencyMs
    }
  }

  /**
   * Known peers not connected now whose last dial failed (re-dialled with
   * backoff), with when each was last connected: a machine gone for good stays here while kept
   * (`shoal peers connect`, an invite's members) until `shoal peers
   * disconnect`, a met one for {@link PeersInit.forgetAfterMs}.
   */
  unreachable (): UnreachablePeer[] {
    const out: UnreachablePeer[] = []
    for (const peer of this.known.values()) {
      // a dial of it failed since it was last connected (right after a start, the first dials are still under way)
      if (!this.unreachableTold.has(peer.id) || this.components.libp2p.getConnections(parsePeerId(peer.id)).length > 0) continue
      out.push({ id: peer.id, kept: peer.kept === true, ...(peer.seen === undefined ? {} : { since: peer.seen }) })
    }
    return out
  }

  /** Peers this node met (not kept by a user) that it remembers. */
  get metCount (): number {
    let met = 0
    for (const peer of this.known.values()) if (peer.kept !== true) met++
    return met
  }

  private now (): number {
    return (this.components.now ?? Date.now)()
  }

  /**
   * A known peer was connected just now. Saved with the next change of the
   * list or at stop, not each time (a churning swarm connects and
   * disconnects often).
   */
  private noteSeen (id: string): void {
    const known = this.known.get(id)
    if (known !== undefined) this.known.set(id, { ...known, seen: this.now() })
  }

  private remember (peer: KnownPeer): void {
    // a peer a user disconnected is not met again by connecting: only `peers connect` keeps it again
    if (peer.kept !== true && this.dropped.has(peer.id)) return
    const prev = this.known.get(peer.id)
    const kept = prev?.kept === true || peer.kept === true
    this.known.set(peer.id, { id: peer.id, addrs: [...new Set([...peer.addrs, ...(prev?.addrs ?? [])])].slice(0, 8), ...(kept ? { kept } : {}), seen: this.now() })
    if (prev === undefined && !kept) this.forgetMetBeyondBound(peer.id)
    this.persist()
  }

  /** While more met peers are known than {@link PeersInit.maxMetPeers}, forget the least recently seen one not connected now (never `keep`). */
  private forgetMetBeyondBound (keep?: string): void {
    let over = this.metCount - this.init.maxMetPeers
    if (over <= 0) return
    const candidates = [...this.known.values()]
      .filter(p => p.kept !== true && p.id !== keep && this.components.libp2p.getConnections(parsePeerId(p.id)).length === 0)
      .sort((a, b) => (a.seen ?? 0) - (b.seen ?? 0))
    for (const peer of candidates) {
      if (over-- <= 0) break
      this.forget(peer.id)
    }
  }

  /** Stop re-dialling a peer and drop it from peers.json (the caller persists). */
  private forget (id: string): void {
    this.known.delete(id)
    this.clearRedial(id)
    this.unreachableTold.delete(id)
  }

  private persist (): void {
    this.savedAt = this.now()
    const snapshot = [...this.known.values()]
    this.saving = this.saving.then(async () => { await saveKnownPeers(this.init.file, snapshot) }).catch(err => {
      this.components.logger.warn({ err }, 'could not save known peers')
    })
  }

  /** Re-dial `id` after `delay` (the backoff; {@link PeersInit.minBackoffMs} by default) ± {@link REDIAL_JITTER} of it. */
  private scheduleRedial (id: string, delay?: number): void {
    if (!this.running || this.timers.has(id)) return
    const backoff = delay ?? this.init.minBackoffMs
    const { timers = systemTimers, random = Math.random } = this.components
    this.timers.set(id, timers.setTimeout(() => { void this.redial(id, backoff) }, jittered(backoff, REDIAL_JITTER, random)))
  }

  private async redial (id: string, lastDelay: number): Promise<void> {
    this.timers.delete(id)
    const peer = this.known.get(id)
    if (!this.running || peer === undefined) return
    const peerId = parsePeerId(id)
    if (this.components.libp2p.getConnections(peerId).length > 0) return
    let why: string | undefined
    let kind: DialFailureKind = 'other'
    for (const a of peer.addrs) {
      try {
        await this.components.libp2p.dial(multiaddr(a), { signal: AbortSignal.timeout(10_000) })
        this.components.logger.debug({ peer: id, addr: a }, 're-dialled peer')
        return
      } catch (err: any) {
        why = String(err?.code ?? err?.message ?? err)
        kind = worst(kind, dialFailureKind(err))
      }
      // stopped meanwhile: the dials were cut short by the shutdown, not failed
      if (!this.running) return
    }
    this.stats.redialsFailed++
    const unreachableFor = this.now() - (peer.seen ?? this.now())
    if (peer.kept !== true && unreachableFor >= this.init.forgetAfterMs) {
      this.components.logger.info({ peer: id, addrs: peer.addrs, err: why, failure: kind, unreachableForMs: unreachableFor }, 'forgot a peer this node met: unreachable too long (it is dialled again when it connects, or the DHT names it)')
      this.forget(id)
      this.persist()
      return
    }
    if (this.unreachableTold.get(id) !== kind) {
      // once per streak and kind: a node whose only peer cannot be reached would otherwise sit at 0 peers, silent
      this.unreachableTold.set(id, kind)
      this.components.logger.warn({ peer: id, addrs: peer.addrs, err: why, failure: kind }, `cannot reach a known peer; retrying with backoff (${dialFailureHint(kind)})`)
    }
    const next = Math.min(Math.max(lastDelay * 2, this.init.minBackoffMs), this.init.maxBackoffMs)
    this.scheduleRedial(id, next)
  }

  private clearRedial (id: string): void {
    const timer = this.timers.get(id)
    if (timer !== undefined) (this.components.timers ?? systemTimers).clearTimeout(timer)
    this.timers.delete(id)
  }
}

/** Of the failures of a peer's addresses, the one that says most: someone answers (with another peer id, or another key) over a refusal. */
function worst (a: DialFailureKind, b: DialFailureKind): DialFailureKind {
  if (a === 'identity' || b === 'identity') return 'identity'
  if (a === 'handshake' || b === 'handshake') return 'handshake'
  if (a === 'refused' || b === 'refused') return 'refused'
  return 'other'
}
