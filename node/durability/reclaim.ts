/**
 * Shards held here found again after the holdings store was lost. The
 * daemon's answer to a damaged holdings store is to move it aside and start
 * again (node/repo/store-damage.ts): the node then starts with an empty
 * store, while its block store still has the shards it held for others,
 * good and hash-checked. Left so, it answered `holdings` without them (its
 * stripes' coordinators rebuilt each elsewhere at once, k shards of traffic
 * a shard) and the next `gc` deleted them as unpinned garbage.
 *
 * So a holdings store created in a repo whose block store has blocks begins
 * a **recovery** (a durable mark in the store, {@link Holdings.beginRecovery}):
 * for every file of the namespace with a coded pin whose manifest is in the
 * block store, each shard the block store has is held again (a holder
 * record, no `from`: it counts as this node's own, as an adopted copy
 * does). The look-up reads this node's disk only. It runs at start in the
 * background; a peer's `holdings` request for a manifest not looked up yet
 * looks that one up first, so a coordinator never sees the node without
 * shards it has; a repair pass finishes a look-up that did not. While the
 * recovery lasts, garbage collection removes no block it does not mark
 * (node/durability/gc.ts). It ends when a look-up went through every such
 * file, or at the latest {@link RECOVERY_MAX_MS} after it began.
 * docs/durability.md, "A holdings store moved aside".
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { AbortedError } from '../errors.js'
import { liveManifests } from './live-manifests.js'
import { SharedPass } from './shared-pass.js'
import { loadManifestRoot, readStripes, shardCID } from './stripes.js'
import type { DurabilityParts } from './components.js'
import type { ShardToHold } from './holdings.js'
import type { BlockStore } from '../blocks/index.js'
import type { Logger } from '../logger.js'

/** The longest a recovery keeps garbage collection from removing unmarked blocks (ms): a day. */
export const RECOVERY_MAX_MS = 24 * 3600_000

/** Shards recorded in one batch of a look-up. */
const HOLD_BATCH = 4096

/** What {@link ShardReclaimer} is built from. */
export type ReclaimComponents = Pick<DurabilityParts, 'blockstore' | 'holdings' | 'files' | 'clock' | 'logger'>

/** Whether `recovery` (a {@link Holdings.recovery}) still keeps unmarked blocks at `now`. */
export function recovering (recovery: { since: number } | undefined, now: number): boolean {
  return recovery !== undefined && now - recovery.since < RECOVERY_MAX_MS
}

/** Finds the shards held here again during a recovery of the holdings store. */
export class ShardReclaimer {
  private readonly log: Logger
  /** Mirrors the store's recovery mark (set by {@link begin}, cleared when it ends). */
  private active = false
  /** Manifests looked up in this recovery. */
  private readonly done = new Set<string>()
  /** Look-ups of one manifest under way, shared by the pass and `holdings` requests. */
  private readonly underWay = new Map<string, Promise<number>>()
  private readonly pass = new SharedPass<void>()
  private stopping = new AbortController()

  constructor (private readonly components: ReclaimComponents) {
    this.log = components.logger.child({ component: 'durability' })
  }

  /**
   * At start, before peers are served: a holdings store this open created
   * in a repo whose block store has blocks begins a recovery. True while a
   * recovery is under way (begun now or at an earlier start).
   */
  async begin (): Promise<boolean> {
    const { holdings, blockstore, clock } = this.components
    this.stopping = new AbortController()
    if (holdings.takeCreated() && await hasBlocks(blockstore)) {
      await holdings.beginRecovery(clock.now())
      this.log.warn('the holdings store is new but the block store has blocks: the shards held here are looked up again in the block store, and gc removes nothing it does not mark until that is done (docs/durability.md, "A holdings store moved aside")')
    }
    this.active = await holdings.recovery() !== undefined
    return this.active
  }

  /**
   * During a recovery: look up every file's shards not looked up yet (one
   * pass, shared by concurrent callers), and end the recovery when each
   * look-up went through, or when it has lasted {@link RECOVERY_MAX_MS}.
   * A look-up that failed is tried again by the next call.
   *
   * @throws {AbortedError} when `signal` aborts or the service stops
   */
  async run (signal?: AbortSignal): Promise<void> {
    if (!this.active) return
    await this.pass.run(async () => { await this.lookUpAll(signal) })
  }

  /**
   * Before `holdings` about `manifest` is answered during a recovery: its
   * shards in the block store are held first (never throws: a failure is
   * logged, and the answer is what is known).
   */
  async manifest (manifest: CID): Promise<void> {
    if (!this.active || this.done.has(manifest.toString())) return
    try {
      await this.lookUp(manifest)
    } catch (err: any) {
      this.log.debug({ manifest: manifest.toString(), err: err?.message }, 'shards of a manifest not looked up again')
    }
  }

  /** Stop: look-ups under way end, and are waited for. */
  async stop (): Promise<void> {
    this.stopping.abort()
    await this.pass.settled()
    await Promise.allSettled(this.underWay.values())
  }

  private async lookUpAll (signal?: AbortSignal): Promise<void> {
    const { holdings, clock, files } = this.components
    const stop = signal === undefined ? this.stopping.signal : AbortSignal.any([signal, this.stopping.signal])
    if (!recovering(await holdings.recovery(), clock.now())) {
      await this.end(`it began ${RECOVERY_MAX_MS / 3600_000} h ago; shards not found by then are rebuilt by repair where needed`)
      return
    }
    let manifests = 0
    let shards = 0
    let failed = 0
    for (const text of await liveManifests(files, stop)) {
      if (stop.aborted) throw new AbortedError('looking up held shards aborted')
      if (this.done.has(text)) continue
      try {
        const found = await this.lookUp(CID.parse(text))
        if (found > 0) { manifests++; shards += found }
      } catch (err: any) {
        if (stop.aborted) throw new AbortedError('looking up held shards aborted')
        failed++
        this.log.warn({ manifest: text, err: err?.message }, 'the shards of a manifest could not be looked up again (tried again at the next repair pass)')
      }
    }
    if (failed > 0) return
    this.log.info({ manifests, shards }, 'holdings store recovered: the shards found in the block store are held again')
    await this.end()
  }

  private async end (why?: string): Promise<void> {
    await this.components.holdings.endRecovery()
    this.active = false
    this.done.clear()
    if (why !== undefined) this.log.warn(`the look-up of the shards held here ended: ${why}`)
  }

  /** The shards of `manifest` in the block store, held again (one look-up at a time per manifest); how many were recorded. */
  private async lookUp (manifest: CID): Promise<number> {
    const key = manifest.toString()
    let run = this.underWay.get(key)
    if (run === undefined) {
      run = this.holdPresent(manifest, this.stopping.signal).then(found => { this.done.add(key); return found })
        .finally(() => { this.underWay.delete(key) })
      this.underWay.set(key, run)
    }
    return await run
  }

  /**
   * Hold every shard of `manifest` the block store has and the holdings
   * store does not name yet; none when the manifest itself is not in the
   * block store (this node held none of its shards, or lost them).
   */
  private async holdPresent (manifest: CID, signal: AbortSignal): Promise<number> {
    const { blockstore, holdings, clock } = this.components
    let mroot
    try {
      mroot = await loadManifestRoot(blockstore, manifest, signal)
    } catch (err: any) {
      if (err?.name === 'NotFoundError') return 0
      throw err
    }
    const { k, m } = mroot
    const known = new Set<string>()
    // the blocks already held for a stripe: a block is one shard here, whatever index it stands at
    // (the replicas of a `replicas:N` pin, or equal leaves, are one block: N copies on one disk are one)
    const heldBlocks = new Set<string>()
    for await (const held of holdings.held(manifest)) {
      known.add(`${held.stripe}:${held.shard}`)
      heldBlocks.add(`${held.stripe}:${held.cid}`)
    }
    let batch: ShardToHold[] = []
    let total = 0
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      if (total === 0) await holdings.noteManifest(manifest, { root: mroot.root.toString(), k, m, role: 'holder', since: clock.now() })
      await holdings.hold(manifest, batch, { now: clock.now() })
      total += batch.length
      batch = []
    }
    try {
      for await (const { index, stripe } of readStripes(blockstore, mroot, signal)) {
        for (let i = 0; i < k + m; i++) {
          const cid = shardCID(stripe, k, i)
          if (cid === undefined || known.has(`${index}:${i}`) || heldBlocks.has(`${index}:${cid.toString()}`)) continue
          // a data shard is its leaf; every parity shard is as long as the stripe's longest leaf
          if (await blockstore.has(cid)) {
            batch.push({ ref: [index, i], cid, size: i < k ? stripe.sizes[i] : stripe.shardSize })
            heldBlocks.add(`${index}:${cid.toString()}`)
          }
        }
        if (batch.length >= HOLD_BATCH) await flush()
      }
    } catch (err: any) {
      // a manifest page not here: what was found before it is held, the rest is not ours to find
      if (err?.name !== 'NotFoundError') throw err
    } finally {
      await flush()
    }
    return total
  }
}

/** Whether the block store has at least one block. */
async function hasBlocks (blockstore: Pick<BlockStore, 'cids'>): Promise<boolean> {
  for await (const cid of blockstore.cids()) {
    void cid
    return true
  }
  return false
}
