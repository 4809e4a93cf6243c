/**
 * The scrub's first half: read back every block this node stores and
 * re-hash it, at a bounded rate, to find what the disk has silently
 * corrupted. What to do with a corrupt block (rebuild it from its stripe,
 * fetch it again, or report it lost) is the durability service's job
 * ({@link DurabilityService.scrub}); see docs/durability.md, "Scrub".
 *
 * @module
 */
import { matchesCID, type BlockStore } from '../blocks/index.js'
import { RateLimiter } from './repair-plan.js'
import { sleep } from './sleep.js'
import type { DurabilityMetrics } from './components.js'
import type { CID } from 'multiformats/cid'

/** What one scrub pass found and did. */
export interface ScrubReport {
  /** Blocks read back and re-hashed. */
  blocks: number
  /** Bytes read back. */
  bytes: number
  /** Blocks whose bytes did not match their hash (deleted). */
  corrupt: number
  /** Corrupt shards rebuilt here from their stripe. */
  rebuilt: number
  /** Corrupt blocks fetched again from peers. */
  refetched: number
  /** Corrupt blocks that could be got nowhere (CIDs). */
  lost: string[]
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
  /** The node's scrub counters, added to block by block. */
  metrics?: Pick<DurabilityMetrics, 'scrubBlocks' | 'scrubBytes' | 'scrubCorrupt'>
}

/** Bytes re-hashed between two progress reports of a scrub. */
export const SCRUB_PROGRESS_BYTES = 64 * 1024 * 1024

/**
 * Re-hash every stored block, at most `bytesPerSecond`. Returns the CIDs
 * (raw codec: the store is keyed by multihash) of blocks that do not match,
 * and counts into `report`.
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
    if (!matchesCID(cid, bytes)) {
      corrupt.push(cid)
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
  return { blocks: 0, bytes: 0, corrupt: 0, rebuilt: 0, refetched: 0, lost: [], errors: [] }
}
