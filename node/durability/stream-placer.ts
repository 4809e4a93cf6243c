/**
 * Placing an add's shards while the add is still importing: each stripe,
 * as soon as it is stored (its leaves and parity still in memory), is
 * planned over the live peers (the same rule as {@link Placer.place}) and
 * its shards queued for their holders; one loop per peer asks it to take a
 * batch (`reserve`), then pushes it with the block exchange. At the end,
 * once the manifest exists, one `hold` per peer binds what it received to
 * the manifest, and the placement is concluded as a placement after the
 * import would be.
 *
 * Why: placement after the import reads every shard back from the store and
 * hashes it again, and the network idles while the import runs. Streamed,
 * the shards go out from memory while the next ones are read and coded.
 * Memory stays bounded: at most {@link MAX_QUEUED_BYTES} of shards wait for
 * their peers, the import waits beyond that.
 *
 * A peer that holds some of the blocks already (the same content added
 * again, at another path or on another node) names them in its answer to
 * the `reserve`, and they are not pushed: the final `hold` binds them all.
 *
 * A peer that fails (refuses the reservation, or a push) gets nothing more
 * from this add; its shards stay here and the placement is not final: the
 * add then places the whole file again (files/index.ts), as the repair
 * pass would. The holder's side (reservation records, sizes checked, what
 * `gc` does with a reservation no hold bound) is in shards-server.ts.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { CustomProgressEvent } from 'progress-events'
import { MAX_RESERVE_BLOCKS, type ShardRef } from '../../protocol/shards.js'
import { AbortedError } from '../errors.js'
import { blockKey } from '../blocks/index.js'
import { countShard, planStripe, refKey, type PlaceProgress, type StripeProgress } from './placer.js'
import { MAX_QUEUED_BYTES, type InFlightMeter } from './in-flight.js'
import type { DurabilityParts } from './components.js'
import type { PlacementRecord } from './holdings.js'
import type { PlacementPeer } from './placement.js'
import type { Placer, PlaceProgressEvents, PlaceResult } from './placer.js'
import type { StoredStripe } from './stripe-writer.js'
import { storedShards, type Block } from './stripes.js'
import type { CID } from 'multiformats/cid'
import type { ProgressOptions } from 'progress-events'

/** A peer's batch is sent once it holds this many bytes (or at the end). */
const BATCH_BYTES = 8 * 1024 * 1024

/** What a {@link StreamPlacer} needs. */
export interface StreamPlacerInit extends ProgressOptions<PlaceProgressEvents> {
  k: number
  m: number
  /** The live peers to place on, this node included (as {@link Placer.livePeers} gives them). */
  peers: PlacementPeer[]
  signal?: AbortSignal
  /** Counts the shards queued for peers until they are pushed (or dropped). */
  meter?: InFlightMeter
}

interface Queued { ref: ShardRef, block: Block }

interface PeerState {
  queue: Queued[]
  queuedBytes: number
  /** Every shard assigned to the peer (bound by its final `hold`). */
  refs: ShardRef[]
  /** Block keys pushed to it already (a shard repeated in the file goes once). */
  sent: Set<string>
  /** The loop that pushes its batches, while one runs. */
  running?: Promise<void>
  failed?: string
}

/** Places one add's stripes as they are stored. */
export class StreamPlacer {
  private readonly peers = new Map<string, PeerState>()
  private readonly records: PlacementRecord[] = []
  private readonly mine: Array<{ ref: ShardRef, cid: CID }> = []
  private readonly since: number
  private queuedBytes = 0
  /** Each stripe's shards acknowledged by their holders, of how many go to other peers. */
  private readonly stripes = new Map<number, StripeProgress>()
  /** Shard blocks pushed to peers so far, of how many were queued for them, and by stripe (shown by `pin status` once the manifest exists). */
  private readonly progress: PlaceProgress = { pushed: 0, total: 0, stripes: this.stripes }
  private wake?: () => void
  /** The most shards one stripe has so far (see `PlaceResult.widest`). */
  private widest = 0

  constructor (private readonly components: DurabilityParts, private readonly placer: Pick<Placer, 'sendHold' | 'noteRefusal' | 'conclude' | 'track'>, private readonly init: StreamPlacerInit) {
    this.since = components.clock.now()
  }

  /** Plan one stored stripe and queue its shards for their holders (waits while too much is queued). */
  readonly add = async ({ index, stripe, data, parity }: StoredStripe): Promise<void> => {
    const { k, m, peers, signal } = this.init
    const self = this.components.network.self
    const record = planStripe(index, stripe, peers, { k, m, now: this.since })
    this.records.push(record)
    this.widest = Math.max(this.widest, storedShards(stripe))
    record.holders.forEach((peer, shard) => {
      const block = shard < k ? data[shard] : parity[shard - k]
      if (block === undefined) return // a zero shard of a short last stripe
      const ref: ShardRef = [index, shard]
      if (peer === self) { this.mine.push({ ref, cid: block.cid }); return }
      let state = this.peers.get(peer)
      if (state === undefined) { state = { queue: [], queuedBytes: 0, refs: [], sent: new Set() }; this.peers.set(peer, state) }
      state.refs.push(ref)
      if (state.failed !== undefined) return
      const key = blockKey(block.cid)
      if (state.sent.has(key)) return
      state.sent.add(key)
      this.progress.total++
      countShard(this.stripes, index, 'total')
      state.queue.push({ ref, block })
      state.queuedBytes += block.bytes.byteLength
      this.queuedBytes += block.bytes.byteLength
      this.init.meter?.add(block.bytes.byteLength)
      if (state.queuedBytes >= BATCH_BYTES || state.queue.length >= MAX_RESERVE_BLOCKS) this.run(peer, state)
    })
    while (this.queuedBytes > MAX_QUEUED_BYTES) {
      if (signal?.aborted === true) throw new AbortedError('placement aborted')
      // the fullest queues go out first
      for (const [peer, state] of this.peers) if (state.queue.length > 0) this.run(peer, state)
      await new Promise<void>(resolve => { this.wake = resolve })
    }
  }

  /**
   * Push what is still queued, then bind every peer's shards to `manifest`
   * (of the file `root`) with one `hold` each, record this node's own, and
   * conclude the placement.
   */
  async finish (manifest: CID, root: CID, options: { sync?: boolean } = {}): Promise<PlaceResult> {
    const sync = options.sync !== false
    const untrack = this.placer.track(manifest, this.progress)
    try {
      return await this.pushAndBind(manifest, root, sync)
    } finally {
      untrack()
    }
  }

  /** What {@link finish} does while the placement shows as under way: push what is queued, bind it, conclude. */
  private async pushAndBind (manifest: CID, root: CID, sync: boolean): Promise<PlaceResult> {
    const { holdings } = this.components
    const { k, m, signal, peers } = this.init
    for (const [peer, state] of this.peers) if (state.queue.length > 0) this.run(peer, state)
    await Promise.all([...this.peers.values()].map(async s => { await s.running }))
    await holdings.noteManifest(manifest, { root: root.toString(), k, m, role: 'origin', since: this.since }, sync)
    await holdings.notePlacements(manifest, this.records)
    await holdings.hold(manifest, this.mine, { now: this.since, sync })
    const failed: string[] = []
    await Promise.all([...this.peers].map(async ([peer, state]) => {
      if (state.failed === undefined) {
        try {
          const held = await this.placer.sendHold(peer, manifest, root, state.refs, signal)
          // a peer that names what it has (a version that knows `held`) but not all it was sent lost some since (a
          // collection after its reservation ran out): failed, so the add places again, sending only what is missing
          const lost = held.size > 0 ? state.refs.filter(ref => !held.has(refKey(ref))).length : 0
          if (lost === 0) return
          this.fail(peer, state, new Error(`peer ${peer} no longer has ${lost} of the shards it was sent`))
        } catch (err: any) {
          this.fail(peer, state, err)
        }
      }
      failed.push(peer)
    }))
    await this.placer.conclude({ manifest, root, k, m, widest: this.widest, since: this.since, livePeers: peers.length, failed, sync })
    // a new manifest: this node held none of its shards before, so none is released
    return { manifest: manifest.toString(), stripes: this.records.length, pushed: this.progress.pushed, local: this.mine.length, peers: this.peers.size + (this.mine.length > 0 ? 1 : 0), widest: this.widest, failed, released: 0 }
  }

  /** Start the peer's push loop unless it runs. */
  private run (peer: string, state: PeerState): void {
    state.running ??= this.pushLoop(peer, state).finally(() => { state.running = undefined; this.release() })
  }

  /** Reserve then push the peer's queue, a batch at a time, until it is empty. */
  private async pushLoop (peer: string, state: PeerState): Promise<void> {
    const { network, exchange, stats } = this.components
    const { signal, onProgress } = this.init
    while (state.queue.length > 0 && state.failed === undefined) {
      const batch = state.queue.splice(0, MAX_RESERVE_BLOCKS)
      const bytes = batch.reduce((sum, q) => sum + q.block.bytes.byteLength, 0)
      try {
        const answer = await network.request(peer, { v: 1, type: 'reserve', blocks: batch.map(q => ({ cid: q.block.cid, size: q.block.bytes.byteLength })) }, signal)
        if (answer.type !== 'ok') throw new Error(`peer ${peer} answered reserve with ${answer.type}`)
        // the blocks it holds already (the same content placed before) are not sent again
        const held = new Set(answer.held)
        if (answer.held !== undefined && answer.held[answer.held.length - 1] >= batch.length) throw new Error(`peer ${peer} answered reserve naming a block it was not asked for`)
        const pushing = held.size === 0 ? batch : batch.filter((_, i) => !held.has(i))
        const result = pushing.length === 0 ? { blocks: 0 } : await exchange.putBlocks(peerIdFromString(peer), pushing.map(q => q.block), { signal })
        this.progress.pushed += result.blocks + held.size
        for (const q of batch) countShard(this.stripes, q.ref[0], 'acked')
        stats.shardsPushed += result.blocks
        stats.shardsHeldAlready += held.size
        this.components.metrics?.shardsPlaced.inc(result.blocks)
        onProgress?.(new CustomProgressEvent('shoal:durability:place', { pushed: this.progress.pushed, total: this.progress.total, peer }))
      } catch (err: any) {
        this.fail(peer, state, err)
      } finally {
        state.queuedBytes -= bytes
        this.queuedBytes -= bytes
        this.init.meter?.take(bytes)
        this.release()
      }
    }
  }

  /** The peer gets nothing more from this add; its queue is dropped (its shards stay here). */
  private fail (peer: string, state: PeerState, err: unknown): void {
    if (state.failed !== undefined) return
    state.failed = String((err as Error | undefined)?.message ?? err)
    this.placer.noteRefusal(peer, err)
    this.components.logger.warn({ peer, err: state.failed }, 'streamed placement on peer failed; repair places its shards again')
    // what is still queued is dropped; a batch being pushed is counted off by its loop
    const dropped = state.queue.reduce((sum, q) => sum + q.block.bytes.byteLength, 0)
    this.queuedBytes -= dropped
    state.queuedBytes -= dropped
    this.init.meter?.take(dropped)
    state.queue = []
    this.release()
  }

  private release (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}
