/**
 * Coding files after their add: an add acknowledges once the file's blocks
 * and its namespace entry are durable here, and leaves a deferred record
 * (`d!<root>` in holdings) and no parity. {@link DeferredCoder} then codes
 * the file (its leaves read back from the local packs: a pread and a crc32c
 * per leaf, no second sha-256), binds the pin to its namespace record
 * through the injected `rebind`, and places its shards:
 *
 * - at once, for an add ({@link DeferredCoder.code}, queued by the files
 *   service after the add returns);
 * - in every repair pass ({@link DeferredCoder.codeAll}), for the files that
 *   waited for live nodes (a node with too few live nodes for a policy's
 *   parity to survive a lost node codes nothing: see add-encoder.ts), and
 *   for those whose coding a stop or crash interrupted: the record outlives
 *   a restart, so a restarted daemon finishes the work.
 *
 * A record is one content under one policy (`d!<root>` + NUL + policy):
 * one content added at two paths under two policies is coded twice, each
 * path bound to its own policy's manifest. The two paths above share one
 * coding per record: a root and policy coded now by one is joined, not
 * coded twice, by the other.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import PQueue from 'p-queue'
import { codingOf, isCodedPolicy, minNodesOf, parsePolicy, placementShortfall } from '../../protocol/durability.js'
import { AbortedError, MISSING_BLOCK_ERRORS } from '../errors.js'
import type { DurabilityParts } from './components.js'
import type { Encoder } from './encoder.js'
import type { DeferredRecord } from './holdings.js'
import type { Placer } from './placer.js'
import { withSession } from '../reads/session-scope.js'

/** Deferred files a repair pass codes and places at once. */
const CODE_CONCURRENCY = 8

/** A record no visible file waits for is dropped past this age (its add has bound its namespace entry long before). */
const STALE_MS = 10 * 60_000

/** The visible files of one content and policy with no manifest (see {@link uncodedFiles}). */
interface Uncoded {
  /** Their paths, conflict copies left out. */
  paths: string[]
  /** Whether a conflict copy is among them: its record is kept, uncoded, until the conflict is resolved. */
  copies: boolean
}

/** Roots of the visible files with a coded policy and no manifest → their policies → those files. */
async function uncodedFiles (files: DurabilityParts['files'], signal?: AbortSignal): Promise<Map<string, Map<string, Uncoded>>> {
  const out = new Map<string, Map<string, Uncoded>>()
  for await (const entry of files()) {
    if (signal?.aborted === true) throw new AbortedError('repair aborted')
    if (entry.type !== 'file' || entry.pin === undefined || entry.pin.manifest !== undefined || !isCodedPolicy(entry.pin.policy)) continue
    let policies = out.get(entry.cid)
    if (policies === undefined) { policies = new Map(); out.set(entry.cid, policies) }
    let uncoded = policies.get(entry.pin.policy)
    if (uncoded === undefined) { uncoded = { paths: [], copies: false }; policies.set(entry.pin.policy, uncoded) }
    if (entry.conflictOf !== undefined) uncoded.copies = true
    else uncoded.paths.push(entry.path)
  }
  return out
}

/** The key of a coding under way: one content under one policy. */
function runningKey (root: CID | string, policy: string): string {
  return `${root.toString()}\x00${policy}`
}

/** What one look at the deferred files did. */
export interface DeferredReport {
  /** Files coded, bound to their namespace records and placed. */
  coded: number
  /** Files still waiting for enough live nodes. */
  waiting: number
  /** Files whose coding failed for want of their blocks: neither here nor on a peer (lost unless a peer brings them back). */
  lost: number
  errors: string[]
}

/** Whether a coding failed for want of the file's blocks (none here, none from a peer, or a corrupt copy). */
function blocksGone (err: any): boolean {
  return MISSING_BLOCK_ERRORS.has(err?.name) || err?.name === 'NotFoundError'
}

/** What became of one deferred file ({@link DeferredCoder.code}). */
export type DeferredOutcome =
  /**
   * Coded, bound to every visible file with its content and policy, and
   * placed; `short` when the placement left its shards on fewer distinct
   * nodes than its stripes need, or failed on a peer (repair places them).
   */
  | { kind: 'coded', manifest: CID, short: boolean }
  /** Too few live nodes for its policy: it keeps waiting. */
  | { kind: 'waiting' }
  /** No record (coded already), or no visible file waits for it any more (the record is dropped). */
  | { kind: 'none' }

/** How one deferred file is coded. */
interface CodingOptions {
  signal?: AbortSignal
  /**
   * The paths of the visible files that wait for this coding, from the
   * repair pass's scan of the namespace: bound besides the paths the adds
   * noted (a file moved before its coding is found where it is now).
   */
  found?: readonly string[]
}

/** What a {@link DeferredCoder} works with besides the components. */
export interface DeferredCoderInit {
  encoder: Pick<Encoder, 'encode'>
  placer: Pick<Placer, 'livePeers' | 'place'>
}

/** Codes, binds and places the files added without coding. */
export class DeferredCoder {
  /** Codings under way, by root and policy: a second caller joins the first. */
  private readonly running = new Map<string, Promise<DeferredOutcome>>()
  /** By root and policy, the last coding's error when it failed for want of the file's blocks; gone once one succeeds. */
  private readonly missing = new Map<string, string>()

  constructor (private readonly components: DurabilityParts, private readonly init: DeferredCoderInit) {}

  /**
   * Why the last coding of `root` under `policy` failed, when the file's
   * blocks could be had neither here nor from a peer (lost before its
   * coding, unless a peer brings them back): the error's message; undefined
   * when none failed so since this node started, or one succeeded after.
   */
  blocksMissing (root: CID | string, policy: string): string | undefined {
    return this.missing.get(runningKey(root, policy))
  }

  /** Whether the file `root` is being coded under `policy` (canonical) now. */
  coding (root: CID | string, policy: string): boolean {
    return this.running.has(runningKey(root, policy))
  }

  /**
   * Code, bind and place the file `root` deferred under `policy`
   * (canonical) now, if the live nodes can carry it (else it keeps waiting
   * for a repair pass).
   */
  async code (root: CID, policy: string, signal?: AbortSignal): Promise<DeferredOutcome> {
    // the record's head only (one read): a file that waits for live nodes costs no read of its paths, which grow with
    // every add of the same content (a lone node given many identical files read them all for every add)
    const waiting = await this.components.holdings.deferredHeadOf(root, policy)
    if (waiting === undefined) return { kind: 'none' }
    const nodes = (await this.init.placer.livePeers(signal)).length
    return await this.codeRecord(root, waiting.policy, { nodes, signal })
  }

  /**
   * One repair pass's look at every deferred record: code, bind and place
   * each file whose policy the live nodes can now carry; the others keep
   * waiting. Without a `rebind` in the components (no namespace to bind a
   * pin to) every file keeps waiting.
   */
  async codeAll (signal?: AbortSignal): Promise<DeferredReport> {
    const { holdings, rebind, logger, clock } = this.components
    const report: DeferredReport = { coded: 0, waiting: 0, lost: 0, errors: [] }
    const records: Array<[string, DeferredRecord]> = []
    for await (const record of holdings.deferred()) records.push(record)
    if (records.length === 0) return report
    if (rebind === undefined) { report.waiting = records.length; return report }
    const wanted = await uncodedFiles(this.components.files, signal)
    const nodes = (await this.init.placer.livePeers(signal)).length
    // a few files at once: each is a few round trips and fsyncs, seldom CPU
    const queue = new PQueue({ concurrency: CODE_CONCURRENCY })
    let aborted: unknown
    for (const [text, record] of records) {
      if (signal?.aborted === true || aborted !== undefined) break
      const coding = codingOf(parsePolicy(record.policy))
      const uncoded = wanted.get(text)?.get(record.policy)
      // only conflict copies of it wait: the record stays, uncoded (a write of the pin would end the conflict), until
      // the user resolves it (moves the copy to a path of its own, which the next pass codes) or removes the copy
      if (coding !== undefined && uncoded !== undefined && uncoded.paths.length === 0) continue
      const found = uncoded?.paths
      if (coding === undefined || (found === undefined && !this.coding(text, record.policy))) {
        // no visible file waits for it (removed, unpinned, another policy): dropped once the add that wrote it is surely bound
        if (coding === undefined || clock.now() - record.since > STALE_MS) await holdings.dropDeferred(text, record.policy)
        continue
      }
      await queue.onSizeLessThan(CODE_CONCURRENCY)
      void queue.add(async () => {
        try {
          const outcome = await this.codeRecord(CID.parse(text), record.policy, { nodes, found, signal })
          if (outcome.kind === 'coded') report.coded++
          if (outcome.kind === 'waiting') report.waiting++
        } catch (err: any) {
          if (err?.name === 'AbortedError') { aborted ??= err; return }
          if (blocksGone(err)) report.lost++
          report.errors.push(`${text}: ${String(err?.message ?? err)}`)
          logger.warn({ root: text, err: err?.message }, 'coding of a deferred file failed; the next pass retries')
        }
      })
    }
    await queue.onIdle()
    if (aborted !== undefined) throw aborted
    if (signal?.aborted === true) throw new AbortedError('repair aborted')
    return report
  }

  /** Code one file waiting under `policy` with `options.nodes` live nodes, or join its coding under way. */
  private async codeRecord (root: CID, policy: string, options: CodingOptions & { nodes: number }): Promise<DeferredOutcome> {
    const { nodes } = options
    const key = runningKey(root, policy)
    const running = this.running.get(key)
    if (running !== undefined) return await running
    const coding = codingOf(parsePolicy(policy))
    if (coding === undefined || this.components.rebind === undefined) return { kind: 'none' }
    if (nodes < minNodesOf(coding)) return { kind: 'waiting' }
    const work = this.codeNow(root, policy, options)
    this.running.set(key, work)
    try {
      const outcome = await work
      this.missing.delete(key)
      return outcome
    } catch (err: any) {
      // the file's blocks could be had neither here nor from a peer: what waits says so instead of promising a coding
      if (blocksGone(err)) this.missing.set(key, String(err.message))
      throw err
    } finally {
      this.running.delete(key)
    }
  }

  private async codeNow (root: CID, policy: string, options: CodingOptions): Promise<DeferredOutcome> {
    const { signal, found } = options
    const { holdings, blocks, gcLock } = this.components
    const rebind = this.components.rebind as NonNullable<DurabilityParts['rebind']>
    let manifest: CID | undefined
    // an add of the same content that rewrote the record meanwhile (other paths) is bound by one more round (same manifest:
    // the coding is deterministic); each round binds the paths noted since the round before (holdings.dropDeferredIf)
    for (let coded = await holdings.deferredOf(root, policy); coded !== undefined; coded = await holdings.deferredOf(root, policy)) {
      const seen: DeferredRecord = coded
      const paths = seen.paths === undefined || found === undefined ? seen.paths : [...new Set([...seen.paths, ...found])]
      // under the write lock: the parity and manifest are not garbage before the pin names them
      const { pin, bound, left } = await gcLock.shared(async () => {
        const pin = await withSession(blocks.session({ root }, { signal }), async getter => await this.init.encoder.encode(root, seen.size, seen.policy, { signal, getter }))
        return { pin, ...await rebind(root, pin, paths) }
      })
      if (bound > 0 && pin.manifest !== undefined) manifest = CID.parse(pin.manifest)
      // a path noted by the add shows no file waiting for this coding, and none bound to it: moved before it (here or
      // by a peer), or removed, replaced or re-pinned. Only a scan of the namespace tells which, and one per coding
      // would cost a scan per file after an `rm -rf` of files just added: the record keeps those paths alone (the
      // bound ones go, so that it does not grow with later adds of the content) and waits for the repair pass, whose
      // one scan for every record finds a moved file where it is now (`found`). Dropped here, a file moved before its
      // coding was never coded. A record noted again meanwhile has new paths to bind: one more round.
      // With `found`, the record is done once the file is bound where the scan found it; one that bound nothing (the
      // file moved again since the scan, or became a conflict copy) is kept too
      if (left.length > 0 && (found === undefined || bound === 0)) {
        if (await holdings.keepDeferredPaths(root, seen, left)) break
        continue
      }
      if (await holdings.dropDeferredIf(root, seen)) break
    }
    if (manifest === undefined) return { kind: 'none' }
    // the same content added again codes to a manifest already placed (by this node: its placement is final; or by
    // the peer that placed shards here): the repair pass keeps it, waiting for holders away within the grace period.
    // Placed again here, it was spread over the nodes live now: with one of them down, its shards doubled up on the
    // others and the stripes of every file of that content turned at-risk
    const known = await holdings.manifest(manifest)
    if (known?.role === 'holder' || known?.placed !== undefined) return { kind: 'coded', manifest, short: false }
    const placed = await this.init.placer.place(manifest, { signal })
    return { kind: 'coded', manifest, short: placementShortfall(policy, placed).length > 0 }
  }
}
