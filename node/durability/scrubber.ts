/**
 * The scrub: read back every block this node stores and re-hash it, at a
 * bounded rate (scrub.ts); a corrupt block is deleted, then a shard this
 * node holds is rebuilt here from k shards of its stripe, and any other
 * block a file or pin here needs (kept.ts) is fetched again from peers or
 * reported lost with its files; leftovers nothing needs are only counted.
 * Owns the scrub's schedule (on the injected timers and clock; the last
 * scrub's time and findings are kept in the holdings table).
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import * as dagPb from '@ipld/dag-pb'
import { blockKey } from '../blocks/index.js'
import { AbortedError } from '../errors.js'
import { emptyScrubReport, findCorruptBlocks, LOST_PATHS_KEPT, scrubFindings, type ScrubReport } from './scrub.js'
import { walkKept } from './kept.js'
import { CorruptNodes } from './corrupt-nodes.js'
import { SharedPass } from './shared-pass.js'
import { sleepOn } from './sleep.js'
import { loadManifestRoot, readStripes, shardCID } from './stripes.js'
import { gatherView } from './view.js'
import type { DurabilityParts } from './components.js'
import type { ShardRebuilder } from './rebuilder.js'
import type { Logger } from '../logger.js'


/** Progress of a scrub: blocks and bytes re-hashed so far, and how many failed. */
export type ScrubProgressEvents = ProgressEvent<'shoal:durability:scrub', { blocks: number, bytes: number, corrupt: number }>
/** Settings of a {@link Scrubber}. */
export interface ScrubberInit {
  /** Period of the scrub (ms); 0 = only on demand. */
  scrubIntervalMs: number
  /** Read budget (bytes/s). */
  scrubBytesPerSecond: number
  /** How long shards of a manifest no visible file refers to are kept (what the scrub counts as still needed follows gc). */
  graceMs: number
  rebuilder: Pick<ShardRebuilder, 'rebuildOnto'>
}

/** How long the scrub waits for a peer to send back one corrupt block. */
const SCRUB_FETCH_TIMEOUT_MS = 30_000

/** Longest wait one timer takes (setTimeout's bound, ~24.8 days): longer ones wake up early and re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** A block the last scrub lost, still missing: the files (path and root CID) it was lost from. */
interface MissingBlock { cid: CID, files: Array<{ path: string, cid: string }> }

/** Runs scrubs, on demand and on a period. */
export class Scrubber {
  private readonly log: Logger
  private timer?: unknown
  private readonly pass = new SharedPass<ScrubReport>()
  private stopScrub = new AbortController()
  private stopped = false
  private ran = false

  constructor (private readonly components: DurabilityParts, private readonly init: ScrubberInit) {
    this.log = components.logger.child({ component: 'durability' })
  }

  /** Whether a scrub pass finished since this scrubber was made. */
  get ranSinceStart (): boolean {
    return this.ran
  }

  /** Scrub every `scrubIntervalMs` (none when 0), the first one period after the last scrub (or after now, in a new repo). */
  async start (): Promise<void> {
    this.stopped = false
    this.stopScrub = new AbortController()
    if (this.init.scrubIntervalMs <= 0) return
    const { holdings, clock } = this.components
    let last = await holdings.lastScrub()
    if (last === undefined) {
      // a new repo: its first scrub comes one period from now, not at every first start
      last = clock.now()
      await holdings.noteScrub(last)
    }
    this.arm(last + this.init.scrubIntervalMs)
  }

  /** Stop the schedule, abort a scheduled scrub and wait for it. */
  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) this.components.timers.clearTimeout(this.timer)
    this.stopScrub.abort()
    await this.pass.settled()
  }

  /** One scrub pass; concurrent calls share one pass (its progress goes to the caller that started it). */
  async scrub (signal?: AbortSignal, options: ProgressOptions<ScrubProgressEvents> = {}): Promise<ScrubReport> {
    return await this.pass.run(async () => await this.scrubPass(signal, options))
  }

  /** Scrub at `due` (ms timestamp), then every period after. */
  private arm (due: number): void {
    if (this.stopped) return
    const { clock, timers } = this.components
    const wait = Math.min(Math.max(0, due - clock.now()), MAX_TIMER_MS)
    this.timer = timers.setTimeout(() => {
      if (clock.now() < due) { this.arm(due); return }
      this.scrub(this.stopScrub.signal)
        .then(r => { if (r.corrupt > 0) this.log.warn({ ...r, lost: r.lost.length }, 'scrub found corrupt blocks') })
        .catch(err => { if (!this.stopped) this.log.warn({ err: err?.message }, 'scrub failed') })
        .finally(() => { this.arm(clock.now() + this.init.scrubIntervalMs) })
    }, wait)
  }

  private async scrubPass (signal: AbortSignal | undefined, options: ProgressOptions<ScrubProgressEvents>): Promise<ScrubReport> {
    const { blockstore, holdings, clock, timers } = this.components
    const report = emptyScrubReport()
    /** Root CIDs of the files lost blocks belong to, by path. */
    const roots = new Map<string, string>()
    // corrupt inner nodes: the walk that tells whose the corrupt blocks are goes on below them
    const nodes = new CorruptNodes()
    const corrupt = await findCorruptBlocks(blockstore, report, {
      onCorrupt: (cid, bytes) => { nodes.add(cid, bytes) },
      bytesPerSecond: this.init.scrubBytesPerSecond,
      signal,
      onScanned: r => options.onProgress?.(new CustomProgressEvent('shoal:durability:scrub', { blocks: r.blocks, bytes: r.bytes, corrupt: r.corrupt })),
      now: () => clock.now(),
      sleep: async (ms, s) => { await sleepOn(timers, ms, s) },
      metrics: this.components.metrics
    })
    // what the scrub before lost and is still not here: looked for again (a loss stays reported until its file goes or
    // the block is back; before, the next scrub, finding nothing corrupt, forgot it, and `status` said no damage)
    const missing = await this.stillMissing(new Set(corrupt.map(cid => blockKey(cid))), signal)
    report.missing = missing.size
    if (corrupt.length > 0 || missing.size > 0) {
      for (const cid of corrupt) await blockstore.delete(cid, { signal })
      const pending = new Map([...corrupt.map(cid => [blockKey(cid), cid] as const), ...[...missing].map(([key, was]) => [key, was.cid] as const)])
      // shards this node holds come back from their stripes
      const heldCorrupt = new Map<string, Array<{ stripe: number, shard: number }>>()
      for await (const [manifest] of holdings.manifests()) {
        if (signal?.aborted === true) throw new AbortedError('scrub aborted')
        for await (const held of holdings.held(manifest)) {
          if (!pending.has(blockKey(CID.parse(held.cid)))) continue
          let list = heldCorrupt.get(manifest)
          if (list === undefined) { list = []; heldCorrupt.set(manifest, list) }
          list.push({ stripe: held.stripe, shard: held.shard })
        }
      }
      for (const [manifest, shards] of heldCorrupt) {
        try {
          await this.rebuildHere(CID.parse(manifest), shards, { report, pending }, signal)
        } catch (err: any) {
          report.errors.push(`${manifest}: ${String(err?.message ?? err)}`)
        }
      }
      // anything else (and shards that could not be rebuilt) that a file or pin
      // here needs: fetched again from a peer that has it, else lost; the rest
      // is counted (leftovers of removed files, gc drops them)
      await this.refetchWanted(pending, { report, roots, nodes, missing }, signal)
      await blockstore.commit()
    }
    const at = clock.now()
    await holdings.noteScrub(at, scrubFindings(report, at, roots))
    this.ran = true
    this.log.info({ ...report, lost: report.lost.length, errors: report.errors.length }, 'scrub done')
    return report
  }

  /**
   * Of the corrupt blocks `pending` (deleted here; by key), fetch again those
   * a file or pin here needs, each under the CID that names it, and list in
   * `report.lost` those no peer gives, with their files (`roots` gets the
   * root CID of each file named); count the rest as leftovers, or as
   * unknown when a lost inner block may hide them. Writes in flight are let
   * through first (the GC lock), so a block of a file being added is seen
   * as that file's. A DAG node fetched again may link blocks of `pending`
   * the walk could not reach: the walk runs again while that happens (each
   * round settles at least one block).
   */
  private async refetchWanted (pending: Map<string, CID>, found: { report: ScrubReport, roots: Map<string, string>, nodes: CorruptNodes, missing: ReadonlyMap<string, MissingBlock> }, signal?: AbortSignal): Promise<void> {
    const { report, roots, nodes, missing } = found
    const { gcLock, blockstore } = this.components
    const corrupt: ReadonlySet<string> = new Set(pending.keys())
    const lost: CID[] = []
    // the root CID the namespace shows now at each path a block lost before was lost from
    const shown = new Map<string, string>()
    const watched = new Set([...missing.values()].flatMap(was => was.files.map(f => f.path)))
    await gcLock.exclusive(async () => {})
    while (pending.size > 0) {
      const wanted = await this.wantedOf(pending, nodes, { paths: watched, shown }, signal)
      if (wanted.size === 0) break
      let opened = false
      for (const [key, { cid, files }] of wanted) {
        pending.delete(key)
        if (await this.fetchAgain(cid, files, { report, roots, lost }, signal)) opened ||= cid.code === dagPb.code
      }
      if (!opened) break
    }
    // what no walk reached is a leftover, unless a lost block may hide it
    let hidden = false
    for (const cid of lost) {
      if (await nodes.linksAccounted(cid, corrupt, async link => await blockstore.has(link))) continue
      hidden = true
      break
    }
    // a block lost before that no walk reached (below an inner block lost too): still lost while a file the last
    // scrub lost it from is there unchanged (its path names the same root), looked for again; else nothing needs it
    // now (its file removed or written anew): dropped, not counted
    for (const [key, was] of missing) {
      if (!pending.delete(key)) continue
      const still = new Map(was.files.filter(f => shown.get(f.path) === f.cid).map(f => [f.path, f.cid]))
      if (still.size > 0) await this.fetchAgain(was.cid, still, { report, roots, lost }, signal)
    }
    if (pending.size === 0) return
    if (hidden) report.unknown = pending.size
    else report.leftovers = pending.size
    this.components.metrics?.scrubLost.inc({ outcome: hidden ? 'unknown' : 'leftover' }, pending.size)
  }

  /**
   * Fetch `cid` again from a peer (true), else count it lost with its
   * `files` (root CIDs by path; `lost` gets it, `roots` its files).
   */
  private async fetchAgain (cid: CID, files: ReadonlyMap<string, string>, into: { report: ScrubReport, roots: Map<string, string>, lost: CID[] }, signal?: AbortSignal): Promise<boolean> {
    const { report, roots, lost } = into
    const paths = [...files.keys()]
    try {
      await this.components.exchange.getBlock(cid, { signal: signal === undefined ? AbortSignal.timeout(SCRUB_FETCH_TIMEOUT_MS) : AbortSignal.any([signal, AbortSignal.timeout(SCRUB_FETCH_TIMEOUT_MS)]) })
      report.refetched++
      this.components.metrics?.scrubLost.inc({ outcome: 'refetched' })
      return true
    } catch (err: any) {
      if (signal?.aborted === true) throw new AbortedError('scrub aborted')
      report.lost.push({ cid: cid.toString(), paths })
      lost.push(cid)
      for (const [path, root] of files) if (root !== '') roots.set(path, root)
      this.components.metrics?.scrubLost.inc({ outcome: 'lost' })
      this.log.error({ cid: cid.toString(), paths, err: err?.message }, 'corrupt block lost: no peer has it')
      return false
    }
  }

  /**
   * The blocks the last scrub lost ({@link ScrubFindings.lostBlocks}) that
   * are still not stored here, by key, less those found corrupt now
   * (`corrupt`, by key), each with the files that scrub named it with.
   */
  private async stillMissing (corrupt: ReadonlySet<string>, signal?: AbortSignal): Promise<Map<string, MissingBlock>> {
    const { blockstore, holdings } = this.components
    const findings = await holdings.scrubFindings()
    const out = new Map<string, MissingBlock>()
    for (const block of findings?.lostBlocks ?? []) {
      if (signal?.aborted === true) throw new AbortedError('scrub aborted')
      let cid: CID
      try { cid = CID.parse(block.cid) } catch { continue }
      const key = blockKey(cid)
      if (corrupt.has(key) || await blockstore.has(cid)) continue
      out.set(key, { cid, files: Array.isArray(block.files) ? block.files.filter(f => typeof f?.path === 'string' && typeof f?.cid === 'string') : [] })
    }
    return out
  }

  /**
   * The blocks of `pending` a file or pin here needs (kept.ts), by key: the
   * CID that names each, and its files (root CIDs by path). The walk reads
   * the corrupt copies of inner nodes it deleted (`nodes`) to go on below them.
   * `watch.shown` gets the root CID of each visible file at `watch.paths`.
   */
  private async wantedOf (pending: ReadonlyMap<string, CID>, nodes: CorruptNodes, watch: { paths: ReadonlySet<string>, shown: Map<string, string> }, signal?: AbortSignal): Promise<Map<string, { cid: CID, files: Map<string, string> }>> {
    const { blockstore, holdings, files, clock } = this.components
    const wanted = new Map<string, { cid: CID, files: Map<string, string> }>()
    await walkKept({ blockstore: nodes.over(blockstore), holdings, files }, (cid, file) => {
      if (file !== undefined && watch.paths.has(file.path)) watch.shown.set(file.path, file.cid)
      const key = blockKey(cid)
      if (!pending.has(key)) return
      let found = wanted.get(key)
      if (found === undefined) { found = { cid, files: new Map() }; wanted.set(key, found) }
      if (file !== undefined && found.files.size < LOST_PATHS_KEPT) found.files.set(file.path, file.cid)
    }, { now: clock.now(), graceMs: this.init.graceMs, signal })
    return wanted
  }

  /**
   * Rebuild `shards` of `manifest` here, each from k shards of its stripe,
   * and take each block rebuilt out of `pending`. A block is rebuilt once:
   * a shard whose block is no longer pending (a leaf that repeats in the
   * file, or in another file held here, was rebuilt as another shard) is
   * skipped, so `rebuilt` counts corrupt blocks as the other counts do.
   */
  private async rebuildHere (manifest: CID, shards: Array<{ stripe: number, shard: number }>, into: { report: ScrubReport, pending: Map<string, CID> }, signal?: AbortSignal): Promise<void> {
    const { report, pending } = into
    const getter = this.components.blocks.getter({ signal })
    const mroot = await loadManifestRoot(getter, manifest, signal)
    const view = await gatherView(this.components, manifest, mroot.stripes, { signal, width: mroot.k + mroot.m })
    const wanted = new Map<number, number[]>()
    for (const { stripe, shard } of shards) wanted.set(stripe, [...(wanted.get(stripe) ?? []), shard])
    const counts = { repaired: 0, bytesIn: 0, bytesOut: 0 }
    for await (const { index, stripe } of readStripes(getter, mroot, signal)) {
      for (const shard of wanted.get(index) ?? []) {
        const cid = shardCID(stripe, mroot.k, shard)
        if (cid === undefined || !pending.has(blockKey(cid))) continue
        try {
          await this.init.rebuilder.rebuildOnto({ manifest, mroot, stripe, stripeIndex: index, shard, to: this.components.network.self, view, counts, signal })
          pending.delete(blockKey(cid))
          report.rebuilt++
        } catch (err: any) {
          report.errors.push(`stripe ${index} shard ${shard}: ${String(err?.message ?? err)}`)
        }
      }
    }
  }
}
