/**
 * Damage this node has met in the files it keeps, without looking for it:
 * reads that failed for want of a block (`cat`, `get`, FUSE) or on a cold
 * copy found altered or gone, and `pin
 * status` walks that found blocks of a file missing here. `shoal status`
 * shows them in one line with the last scrub's findings; nothing walks a
 * DAG per status call (docs/durability.md, "Known damage").
 *
 * In memory, newest first, at most {@link MAX_DAMAGE_NOTES} files (the last
 * scrub's findings are on disk, with the holdings). A note goes when what
 * it says is no longer so: the path names another file (rewritten,
 * removed), a read of the whole file succeeds, or `pin status` finds all
 * its blocks here.
 *
 * @module
 */
import type { Namespace } from '../namespace/index.js'
import { MISSING_BLOCK_ERRORS as MISSING_BLOCKS } from '../errors.js'

/** One file found damaged here. */
export interface DamageNote {
  path: string
  /** The file's root CID when it was noted. */
  cid: string
  /** What found it: a read that failed, or `pin status` walking the file here. */
  by: 'read' | 'pin-status'
  /** When (ms). */
  at: number
  /** What was found, one line: the read's error, or how many blocks are missing here. */
  what: string
}

/** Files noted at most: a read failing over a whole tree notes the newest ones. */
export const MAX_DAMAGE_NOTES = 16

/** Names of the errors that say a read could get a block of the file nowhere. */
export { MISSING_BLOCK_ERRORS } from '../errors.js'

/**
 * Names of the errors a read ends with that say the file is damaged here: a
 * block got nowhere, or a cold copy it was read from found altered or gone
 * (a tier that does not answer is not damage: it may answer later).
 */
export const DAMAGE_ERRORS: ReadonlySet<string> = new Set([...MISSING_BLOCKS, 'TierCorruptObjectError', 'TierObjectNotFoundError'])

/** The damage notes of one node; see the module comment. */
export class DamageNotes {
  /** By path; the order of the map is the order of the notes, oldest first. */
  private readonly notes = new Map<string, DamageNote>()

  constructor (private readonly max = MAX_DAMAGE_NOTES) {}

  /** Note `note`, in place of an older note of its path. */
  note (note: DamageNote): void {
    this.notes.delete(note.path)
    this.notes.set(note.path, note)
    for (const path of this.notes.keys()) {
      if (this.notes.size <= this.max) break
      this.notes.delete(path)
    }
  }

  /** Drop the note of `path` if it is of the file `cid` (it was found whole). */
  clear (path: string, cid: string): void {
    if (this.notes.get(path)?.cid === cid) this.notes.delete(path)
  }

  /** Drop the note of `path`, whatever it says. */
  drop (path: string): void {
    this.notes.delete(path)
  }

  /** Every note, newest first. */
  list (): DamageNote[] {
    return [...this.notes.values()].reverse()
  }
}

/** Whether `path` still names the file `cid`: not rewritten nor removed since the damage was found. */
export async function namesFile (namespace: Pick<Namespace, 'lookup'>, path: string, cid: string): Promise<boolean> {
  const entry = await namespace.lookup(path)
  return entry?.type === 'file' && entry.cid === cid
}
