/**
 * Placing a manifest's shards on peers: each stripe's k+m shards go to the
 * live peers closest to its key (spread over zones), a `hold` then a push
 * per peer. Owns what placement learns of peers: their zones (asked once)
 * and which ones refused a hold over their quota (left out for a while).
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { CustomProgressEvent } from 'progress-events'
import { minNodesOf, stripeKey, type Stripe } from '../../protocol/durability.js'
import { shortage } from './add-encoder.js'
import { compareRefs, MAX_SHARD_REFS, type ShardRef } from '../../protocol/shards.js'
import { AbortedError } from '../errors.js'
import { raceAbort } from '../abort.js'
import { blockKey } from '../blocks/index.js'
import { explainPlacement, placeStripe, type PlacementPeer } from './placement.js'
import { loadManifestRoot, readStripes, shardCID, storedShards } from './stripes.js'
import type { DurabilityParts, DurabilityStats } from './components.js'
import type { FsyncOptions } from './encoder.js'
import type { Holdings, PlacementRecord } from './holdings.js'
import type { Logger } from '../logger.js'
import type { CID } from 'multiformats/cid'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

/** How a placement went. */
export interface PlaceResult {
  manifest: string
  stripes: number
  /** Shard blocks on other peers: sent to them, or named held already by them (see {@link DurabilityStats.shardsHeldAlready}). */
  pushed: number
  /** Shards kept here. */
  local: number
  /** Distinct peers holding shards. */
  peers: number
  /**
   * The most shards one stripe has: k+m, or fewer when every stripe is short
   * (a file of fewer than k leaves; its missing data shards are zeros that
   * need no node). The distinct live nodes the policy needs.
   */
  widest: number
  /** Peers that failed (their shards are retried by the next repair pass). */
  failed: string[]
  /**
   * Shards this node held (from an earlier placement over fewer peers) and
   * released: this placement gave them to another peer, which acknowledged them.
   */
  released: number
}

/**
 * Progress of a placement: shard blocks pushed to other peers so far, of
 * `total` (those of failed peers never arrive); a block its peer named held
 * already counts as pushed. The first event, before any
 * push, has `pushed: 0`; then one follows each part acked by a peer. In a
 * placement streamed during an add, `total` grows as the import queues
 * stripes.
 */
export type PlaceProgressEvents = ProgressEvent<'shoal:durability:place', { pushed: number, total: number, peer?: string }>

/** One stripe of a placement under way: its shards acknowledged by their holders, of how many go to other peers. */
export interface StripeProgress {
  acked: number
  total: number
}

/**
 * A placement under way, as {@link Placer.track} shows it: shard blocks
 * pushed to other peers so far, of `total`; and, when the placement counts
 * them, each stripe's shards acknowledged by their holders (stripe index →
 * counts; a stripe with no entry has nothing to push). The one who places
 * updates the object it gave to `track`.
 */
export interface PlaceProgress {
  pushed: number
  total: number
  stripes?: Map<number, StripeProgress>
}

/** Options of {@link Placer.place}. */
export interface PlaceOptions extends FsyncOptions, ProgressOptions<PlaceProgressEvents> {
  signal?: AbortSignal
}

/** Settings of a {@link Placer}. */
export interface PlacerInit {
  /** This node's zone, if any. */
  zone?: string
  /** How long a peer that refused a hold over its quota is left out (ms). */
  fullPeerMs: number
}

/** Shards placed on one peer per `hold` before they are pushed (the peer expects them for a while). */
const PLACE_PART = 4096

/**
 * How long the placement info of a peer not heard from yet is waited for,
 * from when it is asked (ms). A connected peer that does not answer (a
 * process frozen or swapping, a disk hung under it) is left out of placement
 * until it does: {@link Placer.livePeers} waits for a request at most this
 * long from the request's start, so only the calls in its first seconds
 * wait at all. Before, every `add` and `pin status` waited for such a peer
 * up to the request's own timeout (8.5 s measured for an add). A peer on a
 * working link answers in milliseconds; 5 s leaves room for one on a
 * machine loaded to its last core.
 */
export const INFO_WAIT_MS = 5_000

/** Places shards on peers and remembers what it learns of them. */
export class Placer {
  private readonly log: Logger
  /** Peers that refused a hold over their quota → until when they are left out (ms). */
  private readonly full = new Map<string, number>()
  /** Zones of peers that answered `info`. */
  private readonly zones = new Map<string, string | undefined>()
  /** `info` requests under way, by peer (one at a time per peer, whoever waits for it), and when each was sent (the network's clock). */
  private readonly asking = new Map<string, { answered: Promise<void>, since: number }>()
  /** Placements under way: manifest → their progress, as the one who places updates it. */
  private readonly running = new Map<string, PlaceProgress>()

  constructor (private readonly components: DurabilityParts, private readonly init: PlacerInit) {
    this.log = components.logger.child({ component: 'durability' })
  }

  /**
   * Place every shard of `manifest` (encoded here) on the peers closest to
   * each stripe's key: `hold` then push, one peer at a time in parallel.
   * Shards that go nowhere stay here and are retried by repair.
   */
  async place (manifest: CID, options: PlaceOptions = {}): Promise<PlaceResult> {
    const { blockstore, holdings, network, exchange, clock, stats } = this.components
    const { signal, onProgress } = options
    const sync = options.sync !== false
    const root = await loadManifestRoot(blockstore, manifest, signal)
    const { k, m } = root
    const peers = await this.livePeers(signal)
    const perPeer = new Map<string, Array<{ ref: ShardRef, cid: CID }>>()
    const records: PlacementRecord[] = []
    const now = clock.now()
    let widest = 0
    for await (const { index, stripe } of readStripes(blockstore, root, signal)) {
      const record = planStripe(index, stripe, peers, { k, m, now })
      records.push(record)
      widest = Math.max(widest, storedShards(stripe))
      record.holders.forEach((peer, shard) => {
        const cid = shardCID(stripe, k, shard)
        if (cid === undefined) return
        let list = perPeer.get(peer)
        if (list === undefined) { list = []; perPeer.set(peer, list) }
        list.push({ ref: [index, shard], cid })
      })
    }
    await holdings.noteManifest(manifest, { root: root.root.toString(), k, m, role: 'origin', since: now }, sync)
    await holdings.notePlacements(manifest, records)
    const mine = perPeer.get(network.self) ?? []
    await holdings.hold(manifest, mine, { now, sync })
    // one push per block and part: shards with equal bytes (replica copies, repeated leaves) share a CID, and the holder expects it once
    const parts = new Map<string, Array<{ shards: Array<{ ref: ShardRef, cid: CID }>, cids: CID[] }>>()
    const stripes = new Map<number, StripeProgress>()
    let total = 0
    for (const [peer, shards] of perPeer) {
      if (peer === network.self) continue
      for (const { ref: [index] } of shards) countShard(stripes, index, 'total')
      const list: Array<{ shards: Array<{ ref: ShardRef, cid: CID }>, cids: CID[] }> = []
      for (let i = 0; i < shards.length; i += PLACE_PART) {
        const part = shards.slice(i, i + PLACE_PART)
        const cids = [...new Map(part.map(s => [blockKey(s.cid), s.cid])).values()]
        total += cids.length
        list.push({ shards: part, cids })
      }
      parts.set(peer, list)
    }
    const failed: string[] = []
    let pushed = 0
    const progress: PlaceProgress = { pushed, total, stripes }
    const untrack = this.track(manifest, progress)
    try {
      onProgress?.(new CustomProgressEvent('shoal:durability:place', { pushed, total }))
      await Promise.all([...parts].map(async ([peer, list]) => {
        try {
          // hold then push, a part at a time: the peer expects the blocks of one part at once, for a while
          for (const { shards, cids } of list) {
            const refs = shards.map(s => s.ref)
            const held = await this.sendHold(peer, manifest, root.root, refs, signal)
            // what the peer holds already (this file placed there before, a holder that kept its shards) is not sent again
            const heldCids = new Set(shards.filter(s => held.has(refKey(s.ref))).map(s => blockKey(s.cid)))
            const sending = heldCids.size === 0 ? cids : cids.filter(cid => !heldCids.has(blockKey(cid)))
            const result = sending.length === 0 ? { blocks: 0 } : await exchange.putBlocks(peerIdFromString(peer), this.blocksOf(sending, signal), { signal })
            pushed += result.blocks + cids.length - sending.length
            progress.pushed = pushed
            for (const [index] of refs) countShard(stripes, index, 'acked')
            stats.shardsPushed += result.blocks
            stats.shardsHeldAlready += cids.length - sending.length
            this.components.metrics?.shardsPlaced.inc(result.blocks)
            onProgress?.(new CustomProgressEvent('shoal:durability:place', { pushed, total, peer }))
          }
        } catch (err: any) {
          this.noteRefusal(peer, err)
          this.log.warn({ peer, manifest: manifest.toString(), err: err?.message }, 'placement on peer failed')
          failed.push(peer)
        }
      }))
    } finally {
      untrack()
    }
    const released = await releaseHandedOver(holdings, manifest, perPeer, { self: network.self, failed, sync })
    await this.conclude({ manifest, root: root.root, k, m, widest, since: now, livePeers: peers.length, failed, sync })
    return { manifest: manifest.toString(), stripes: root.stripes, pushed, local: mine.length, peers: perPeer.size, widest, failed, released }
  }

  /**
   * The end of a placement: with no failed peer it is final on k+m distinct
   * peers (`placed`), or over fewer (`spreadOver`: the repair pass places
   * again once more peers are live); the file root is announced.
   */
  async conclude (done: { manifest: CID, root: CID, k: number, m: number, widest: number, since: number, livePeers: number, failed: string[], sync: boolean }): Promise<void> {
    const { holdings, exchange, clock } = this.components
    const { manifest, root, k, m, widest, since, livePeers, failed, sync } = done
    if (failed.length === 0) {
      // placed for good only on as many distinct peers as a stripe has shards
      // (k+m, fewer for a file of fewer than k leaves); with fewer the stripes
      // are at risk, and the repair pass places again once more peers are live
      const final = livePeers >= Math.min(k + m, widest) ? { placed: clock.now() } : { spreadOver: livePeers }
      await holdings.noteManifest(manifest, { root: root.toString(), k, m, role: 'origin', since, ...final }, sync)
    }
    exchange.announceSoon(root)
  }

  /**
   * This node and every connected peer not left out, with their zones (asked
   * once per peer). A peer not heard from yet is waited for until its
   * request is {@link INFO_WAIT_MS} old, or until `signal` aborts: one that
   * has not answered by then is left out of this answer.
   */
  async livePeers (signal?: AbortSignal): Promise<PlacementPeer[]> {
    const { network } = this.components
    const peers = network.connected().filter(peer => !this.isFull(peer))
    const asked = peers.filter(peer => !this.zones.has(peer)).map(peer => this.askInfo(peer))
    if (asked.length > 0) {
      // until the newest request is INFO_WAIT_MS old: a peer asked long ago and silent since is not waited for again
      const until = Math.max(...asked.map(a => a.since)) + INFO_WAIT_MS
      const ms = until - network.now()
      if (ms > 0) await this.waitAtMost(Promise.all(asked.map(a => a.answered)), ms, signal)
    }
    const out: PlacementPeer[] = [{ id: network.self, zone: this.init.zone }]
    for (const peer of peers) if (this.zones.has(peer)) out.push({ id: peer, zone: this.zones.get(peer) })
    return out
  }

  /**
   * Ask `peer` for its placement info, or join the request under way: the
   * zone is kept when it answers. `answered` never rejects: a peer that fails
   * or is not a Shoal node with durability is no candidate, and is asked again
   * next time. The request has the network's own timeout, not a caller's
   * signal: other callers may be waiting for it.
   */
  private askInfo (peer: string): { answered: Promise<void>, since: number } {
    const under = this.asking.get(peer)
    if (under !== undefined) return under
    const { network } = this.components
    const request = {
      since: network.now(),
      answered: (async () => {
        try {
          const answer = await network.request(peer, { v: 1, type: 'info' })
          if (answer.type === 'info') this.zones.set(peer, answer.zone)
        } catch (err: any) {
          this.log.debug({ peer, err: err?.message }, 'no placement info')
        } finally {
          this.asking.delete(peer)
        }
      })()
    }
    this.asking.set(peer, request)
    return request
  }

  /** Wait for `work` at most `ms` (on the injected timers), and not past `signal`'s abort (which ends the wait, not the work). */
  private async waitAtMost (work: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<void> {
    const { timers } = this.components
    let handle: unknown
    const timeUp = new Promise<void>(resolve => { handle = timers.setTimeout(resolve, ms) })
    try {
      // `work` never rejects: what is caught is the abort, which only ends the wait
      await raceAbort(Promise.race([work, timeUp]), signal).catch(() => {})
    } finally {
      timers.clearTimeout(handle)
    }
  }

  /**
   * Why the live nodes cannot carry a policy coded as `coding` (its text
   * `policy`): too few for its parity to survive a lost node, one line; or
   * undefined when they can.
   */
  async shortage (policy: string, coding: { k: number, m: number }, signal?: AbortSignal): Promise<string | undefined> {
    const nodes = (await this.livePeers(signal)).length
    const needed = minNodesOf(coding)
    return nodes < needed ? shortage(nodes, policy, needed) : undefined
  }

  /** How far a placement of `manifest` under way is (shard blocks pushed, of how many), if one runs. */
  placing (manifest: CID | string): { pushed: number, total: number } | undefined {
    const p = this.underWay(manifest)
    return p === undefined ? undefined : { pushed: p.pushed, total: p.total }
  }

  /** The placement of `manifest` under way here, as tracked (with its stripes' counts when it has them), if one runs. */
  underWay (manifest: CID | string): Readonly<PlaceProgress> | undefined {
    return this.running.get(manifest.toString())
  }

  /**
   * Show `progress` (updated by the caller as it pushes; with `stripes`,
   * stripe by stripe) as the placement of `manifest` under way, for `pin
   * status` and `status`, until the returned function is called.
   */
  track (manifest: CID | string, progress: PlaceProgress): () => void {
    const key = manifest.toString()
    this.running.set(key, progress)
    return () => { if (this.running.get(key) === progress) this.running.delete(key) }
  }

  /** Manifests whose placement runs now. */
  placingNow (): string[] {
    return [...this.running.keys()]
  }

  /** The zone of `peer` (this node's own, or what the peer said when asked by {@link livePeers}), if it has one. */
  zoneOf (peer: string): string | undefined {
    return peer === this.components.network.self ? this.init.zone : this.zones.get(peer)
  }

  /**
   * Ask `peer` to hold `refs` of `manifest` (of the file `root`), in as many
   * requests as the protocol needs. Returns the refs whose blocks the peer
   * has already, by {@link refKey} (its answers' `held`): they need no push.
   */
  async sendHold (peer: string, manifest: CID, root: CID, refs: ShardRef[], signal?: AbortSignal): Promise<Set<string>> {
    const sorted = [...refs].sort(compareRefs)
    const held = new Set<string>()
    for (let i = 0; i < sorted.length; i += MAX_SHARD_REFS) {
      const part = sorted.slice(i, i + MAX_SHARD_REFS)
      const answer = await this.components.network.request(peer, { v: 1, type: 'hold', manifest, root, shards: part }, signal)
      if (answer.type !== 'ok') throw new Error(`peer ${peer} answered hold with ${answer.type}`)
      for (const index of answer.held ?? []) {
        const ref = part[index]
        if (ref === undefined) throw new Error(`peer ${peer} answered hold naming a shard it was not asked to hold`)
        held.add(refKey(ref))
      }
    }
    return held
  }

  /**
   * A peer that refused a hold over its quota is left out of placement and
   * repair for a while, timed on the network's monotonic clock: a step of
   * the wall clock neither forgives nor prolongs it.
   */
  noteRefusal (peer: string, err: unknown): void {
    if ((err as { name?: string } | undefined)?.name !== 'QuotaExceededError') return
    this.full.set(peer, this.components.network.now() + this.init.fullPeerMs)
  }

  /** True while `peer` is left out for having refused a hold over its quota. */
  private isFull (peer: string): boolean {
    const until = this.full.get(peer)
    if (until === undefined) return false
    if (until > this.components.network.now()) return true
    this.full.delete(peer)
    return false
  }

  private async * blocksOf (cids: CID[], signal?: AbortSignal): AsyncGenerator<{ cid: CID, bytes: Uint8Array }> {
    for (const cid of cids) {
      if (signal?.aborted === true) throw new AbortedError('placement aborted')
      yield { cid, bytes: await this.components.blockstore.getBytes(cid, { signal }) }
    }
  }
}

/**
 * After a placement, release the shards this node holds that the placement
 * gave to another peer which acknowledged them (its `hold` accepted, every
 * block pushed): an earlier placement over fewer peers left them here, and
 * kept, they would be a full extra copy that garbage collection keeps too.
 * A shard whose new holder failed, or that this placement gives to this
 * node, stays. Each released shard sits on its acknowledged holder, so
 * every stripe keeps its k+m shards. Returns how many were released.
 */
async function releaseHandedOver (holdings: Holdings, manifest: CID, perPeer: Map<string, Array<{ ref: ShardRef }>>, done: { self: string, failed: string[], sync: boolean }): Promise<number> {
  const handedOver = new Set<string>()
  for (const [peer, shards] of perPeer) {
    if (peer === done.self || done.failed.includes(peer)) continue
    for (const { ref } of shards) handedOver.add(`${ref[0]}:${ref[1]}`)
  }
  for (const { ref } of perPeer.get(done.self) ?? []) handedOver.delete(`${ref[0]}:${ref[1]}`)
  if (handedOver.size === 0) return 0
  const release: ShardRef[] = []
  for await (const held of holdings.held(manifest)) if (handedOver.has(`${held.stripe}:${held.shard}`)) release.push([held.stripe, held.shard])
  await holdings.releaseShards(manifest, release, done.sync)
  return release.length
}

/** Count one shard of stripe `index` as to place (`total`) or acknowledged by its holder (`acked`). */
export function countShard (stripes: Map<number, StripeProgress>, index: number, what: keyof StripeProgress): void {
  let counts = stripes.get(index)
  if (counts === undefined) {
    counts = { acked: 0, total: 0 }
    stripes.set(index, counts)
  }
  counts[what]++
}

/**
 * Where the k+m shards of one stripe go among `peers` (spread over zones),
 * and why. A short stripe's zero shards (a file of fewer than k leaves) need
 * no node: its real shards take the distinct slots first, so that as many
 * live peers as it has shards carry one each (a full stripe's slots are
 * those of the placement rule, in order).
 */
export function planStripe (index: number, stripe: Stripe, peers: PlacementPeer[], init: { k: number, m: number, now: number }): PlacementRecord {
  const count = init.k + init.m
  const slots = placeStripe(stripeKey(stripe), peers, count, init.m)
  // the zero shards are the data slots past the stripe's leaves: they take the last slots
  const leaves = stripe.data.length
  const order = [...shardRange(0, leaves), ...shardRange(init.k, count), ...shardRange(leaves, init.k)]
  const holders = new Array<string>(count)
  for (const [slot, shard] of order.entries()) holders[shard] = slots[slot]
  const why = explainPlacement(holders, peers, init.m)
  return { stripe: index, holders, why: describePlacement(why, peers.length), time: init.now }
}

/** Shard indices `from` up to `to` (excluded). */
function shardRange (from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i)
}

function describePlacement (why: ReturnType<typeof explainPlacement>, candidates: number): string {
  const parts = [`${why.shards} shards on ${why.peersUsed} of ${candidates} live peers`, `${why.zonesUsed} zone${why.zonesUsed === 1 ? '' : 's'}`]
  if (why.reason !== undefined) parts.push(why.reason)
  return parts.join(', ')
}

/** A shard ref as a set key: `stripe:shard`. */
export function refKey ([stripe, shard]: ShardRef): string {
  return `${stripe}:${shard}`
}
