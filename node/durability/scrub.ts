/**
 * The scrub's first half: read back every block this node stores and
 * re-hash it, at a bounded rate, to find what the disk has silently
 * corrupted. What to do with a corrupt block (rebuild it from its stripe,
 * fetch it again, or report it lost) is the durability service's job
 * ({@link DurabilityService.scrub}); see docs/durability.md, "Scrub".
 *
 * @module
 */
import { matchesCIDOffThread, type BlockStore } from '../blocks/index.js'
import { RateLimiter } from './repair-plan.js'
import { sleep } from './sleep.js'
import type { DurabilityMetrics } from './components.js'
import type { CID } from 'multiformats/cid'

/**
 * A corrupt block the scrub could get nowhere, that a file or pin here still
 * needs. Named by the CID its file's DAG (or its pin's manifest) links it
 * with: the codec is the block's own, so the CID names that block for any
 * tool (`shoal car import` of a copy, IPFS tools, a peer asked for it). The
 * store is keyed by multihash and knows no codec.
 */
export interface LostBlock {
  cid: string
  /**
   * The visible files it belongs to (at most {@link LOST_PATHS_KEPT});
   * empty for a shard of a pin not known here yet, or a block a peer
   * reserved for its placement.
   */
  paths: string[]
}

/** Paths kept per lost block. */
export const LOST_PATHS_KEPT = 4

/** What one scrub pass found and did. */
export interface ScrubReport {
  /** Blocks read back and re-hashed. */
  blocks: number
  /** Bytes read back. */
  bytes: number
  /** Blocks whose bytes did not match their hash (deleted). */
  corrupt: number
  /**
   * Blocks the scrub before lost that are still not here, looked for again
   * with the corrupt ones: rebuilt, fetched again or lost again (a loss is
   * reported by every scrub until its file is removed or the block is back).
   */
  missing: number
  /** Corrupt (or missing) shards rebuilt here from their stripe. */
  rebuilt: number
  /** Corrupt blocks fetched again from peers. */
  refetched: number
  /** Corrupt blocks a file or pin here needs that could be got nowhere. */
  lost: LostBlock[]
  /**
   * Corrupt blocks nothing here needs: leftovers of removed files (or of a
   * coded file, leaves this node does not hold) that garbage collection
   * drops. Deleted, not fetched again, not lost.
   */
  leftovers: number
  /**
   * Corrupt blocks no file's walk reached, that may still be a file's: a
   * lost inner block (or manifest) whose links are gone with it, or were
   * changed by the rot, hides what lies below it. Counted here rather than
   * as leftovers whenever such a block is lost; deleted, not fetched again
   * (no CID with their codec is known).
   */
  unknown: number
  errors: string[]
}

/** Options of {@link findCorruptBlocks}. */
export interface ScanOptions {
  /** Read budget (bytes/s); a scrub must not starve reads and writes. */
  bytesPerSecond: number
  signal?: AbortSignal
  /** For tests: the clock and the wait (default: real time). */
  now?: () => number
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /** Told of the scan's progress every {@link SCRUB_PROGRESS_BYTES} re-hashed, and once at its end. */
  onScanned?: (report: Readonly<ScrubReport>) => void
  /** Told of each corrupt block with its bytes as stored (before the scrub deletes it). */
  onCorrupt?: (cid: CID, bytes: Uint8Array) => void
  /** The node's scrub counters, added to block by block. */
  metrics?: Pick<DurabilityMetrics, 'scrubBlocks' | 'scrubBytes' | 'scrubCorrupt'>
}

/** Bytes re-hashed between two progress reports of a scrub. */
export const SCRUB_PROGRESS_BYTES = 64 * 1024 * 1024

/**
 * Re-hash every stored block, at most `bytesPerSecond`. Returns the blocks
 * that do not match, as the store names them (raw codec: it is keyed by
 * multihash, so these CIDs only stand for the multihash; kept.ts finds the
 * CID a file names each with), and counts into `report`.
 */
export async function findCorruptBlocks (blockstore: Pick<BlockStore, 'storedEntries'>, report: ScrubReport, options: ScanOptions): Promise<CID[]> {
  const now = options.now ?? Date.now
  const wait = options.sleep ?? sleep
  // a burst of one second's budget: short scrubs of small stores do not wait at all
  const limiter = new RateLimiter(options.bytesPerSecond, options.bytesPerSecond)
  const corrupt: CID[] = []
  let told = 0
  for await (const { cid, bytes } of blockstore.storedEntries({ signal: options.signal })) {
    report.blocks++
    report.bytes += bytes.byteLength
    options.metrics?.scrubBlocks.inc()
    options.metrics?.scrubBytes.inc(bytes.byteLength)
    // hashed off the event loop: a scrub of a large store does not hold the node's other work back
    if (!await matchesCIDOffThread(cid, bytes)) {
      corrupt.push(cid)
      options.onCorrupt?.(cid, bytes)
      options.metrics?.scrubCorrupt.inc()
    }
    if (report.bytes - told >= SCRUB_PROGRESS_BYTES) { told = report.bytes; report.corrupt = corrupt.length; options.onScanned?.(report) }
    const delay = limiter.delay(bytes.byteLength, now())
    if (delay > 0) await wait(delay, options.signal)
  }
  report.corrupt = corrupt.length
  options.onScanned?.(report)
  return corrupt
}

/** An empty report. */
export function emptyScrubReport (): ScrubReport {
  return { blocks: 0, bytes: 0, corrupt: 0, missing: 0, rebuilt: 0, refetched: 0, lost: [], leftovers: 0, unknown: 0, errors: [] }
}

/**
 * What the last scrub found, kept with its time in the holdings store so
 * `shoal status` can say it without scanning anything (docs/durability.md,
 * "Known damage").
 */
export interface ScrubFindings {
  /** When the scrub finished (ms). */
  at: number
  /** Blocks found corrupt. */
  corrupt: number
  /** Of them, blocks a file or pin here needs that could be got nowhere. */
  lost: number
  /** Files those lost blocks belong to, with their root CID then (the first {@link FINDINGS_FILES_KEPT} by path). */
  files: Array<{ path: string, cid: string }>
  /** Files with lost blocks beyond those listed. */
  moreFiles: number
  /** Lost blocks of no visible file (shards of a pin not known here yet, blocks a peer reserved). */
  unowned: number
  /** Of them, leftovers nothing here needs (see {@link ScrubReport.leftovers}). */
  leftovers: number
  /** Of them, blocks that may be a file's, below a lost inner block (see {@link ScrubReport.unknown}). */
  unknown: number
  /**
   * The lost blocks, each with its files and their root CIDs then (at most
   * {@link LOST_BLOCKS_KEPT}, one of each file first): the next scrub looks
   * for them again. Absent in findings of older builds. Not part of `status`.
   */
  lostBlocks?: LostBefore[]
}

/** A block a scrub lost, kept for the next: its CID and the files it was lost from, as path and root CID. */
export interface LostBefore {
  cid: string
  files: Array<{ path: string, cid: string }>
}

/** Lost blocks whose CIDs {@link ScrubFindings} keeps for the next scrub. */
export const LOST_BLOCKS_KEPT = 4096

/** Files named in {@link ScrubFindings}. */
export const FINDINGS_FILES_KEPT = 16

/** The findings of `report`, a scrub that finished at `at`; `roots`: the root CID of each file its lost blocks name. */
export function scrubFindings (report: ScrubReport, at: number, roots: ReadonlyMap<string, string>): ScrubFindings {
  const paths = new Set<string>()
  for (const block of report.lost) for (const path of block.paths) paths.add(path)
  const listed = [...paths].sort().slice(0, FINDINGS_FILES_KEPT)
  const files = listed.map(path => ({ path, cid: roots.get(path) ?? '' }))
  const unowned = report.lost.filter(block => block.paths.length === 0).length
  // one block of each file first, so that a file with many lost blocks does not push another's out of the bound
  const kept = new Set<LostBlock>()
  const named = new Set<string>()
  for (const block of report.lost) {
    if (kept.size >= LOST_BLOCKS_KEPT) break
    if (block.paths.length === 0 || block.paths.some(path => !named.has(path))) kept.add(block)
    for (const path of block.paths) named.add(path)
  }
  for (const block of report.lost) {
    if (kept.size >= LOST_BLOCKS_KEPT) break
    kept.add(block)
  }
  const lostBlocks = [...kept].map(block => ({ cid: block.cid, files: block.paths.map(path => ({ path, cid: roots.get(path) ?? '' })) }))
  return { at, corrupt: report.corrupt, lost: report.lost.length, files, moreFiles: paths.size - listed.length, unowned, leftovers: report.leftovers, unknown: report.unknown, lostBlocks }
}
