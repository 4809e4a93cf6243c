/**
 * The `damage` part of `GET /api/v0/status`: what this node knows is
 * missing of the files it keeps, from what already looked — the last scrub
 * (kept across restarts), reads that failed for want of a block and `pin
 * status` walks (node/files/damage.ts), and the blocks the block store's
 * open found gone. Nothing walks a DAG for it: a status call costs one
 * holdings read and one namespace lookup per file named
 * (docs/durability.md, "Known damage").
 *
 * @module
 */
import { namesFile, type DamageNote } from '../files/damage.js'
import type { ScrubFindings } from '../durability/index.js'
import type { ShoalComponents } from '../node.js'

/** `damage` of `GET /api/v0/status`. */
export interface DamageStatus {
  /** Files found damaged by reads and `pin status` since the daemon started, newest first. */
  files: DamageNote[]
  /** What the last scrub found (absent before the first); its files only while their paths name the same files. */
  scrub?: ScrubFindings
  /**
   * Blocks the block store's open found gone (in a missing pack or past a
   * short pack's end: their files are not known without a walk), when no
   * scrub has run since; the scrub names their files.
   */
  goneAtStart?: number
}

/** The node's {@link DamageStatus}. */
export async function damageStatus (components: Pick<ShoalComponents, 'files' | 'durability' | 'blockstore' | 'namespace'>): Promise<DamageStatus> {
  const { files, durability, blockstore, namespace } = components
  const status: DamageStatus = { files: await files.damaged() }
  const scrub = await durability.lastScrub()
  if (scrub !== undefined) {
    // a file rewritten or removed since the scrub is not the file it found damaged
    const still: ScrubFindings['files'] = []
    for (const file of scrub.files) if (await namesFile(namespace, file.path, file.cid)) still.push(file)
    // the lost blocks are the next scrub's to look for, not the status's (up to 4,096 of them)
    const { lostBlocks: _, ...told } = scrub
    status.scrub = { ...told, files: still }
  }
  const gone = blockstore.audit?.markedUnreadable ?? 0
  if (gone > 0 && !durability.scrubbedSinceStart()) status.goneAtStart = gone
  return status
}
