/**
 * Telling a LevelDB store damaged on disk (a flipped byte in a table or in
 * the MANIFEST, a file of it gone) from other failures, and the one line a
 * user gets for it. The block index is rebuilt from the packs by the block
 * store itself (docs/blockstore.md, "A damaged index"); the namespace and
 * holdings stores hold what no other file here has, so the daemon refuses
 * to start on them and says what to do (docs/namespace.md, "A node that lost
 * its store").
 *
 * @module
 */
import { StoreDamagedError } from '../errors.js'

/** LevelDB's own file names, as an I/O error names them when one of them is gone. */
const LEVEL_FILE = /(MANIFEST-\d+|CURRENT|\d+\.(ldb|sst|log))\b/

/**
 * What LevelDB said when `err` (from opening or reading a store) means its
 * files are damaged: a corruption it found (a checksum mismatch, a missing
 * table it expected, a bad CURRENT file), or one of its own files gone.
 * Undefined for every other failure (a lock held, no permission, a full or
 * failing disk).
 */
export function levelDamage (err: unknown): string | undefined {
  for (let e: any = err, depth = 0; e != null && depth < 4; e = e.cause, depth++) {
    const message = String(e.message ?? '')
    if (e.code === 'LEVEL_CORRUPTION' || message.startsWith('Corruption:')) return message
    if (e.code === 'LEVEL_IO_ERROR' && /No such file or directory/.test(message) && LEVEL_FILE.test(message)) return message
  }
  return undefined
}

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** The store as the user knows it: `namespace store`, `holdings store`. */
  what: string
  /** Its folder. */
  path: string
  /** What moving the folder aside costs and how the node gets it back (after "start the daemon again:"). */
  recovery: string
}

/**
 * Run `open` (opening a LevelDB store and reading what its open reads) and
 * turn a damaged-store failure into a {@link StoreDamagedError} whose one
 * line names the store, LevelDB's finding and the commands that fix it.
 * Other failures pass through unchanged.
 */
export async function openStore<T> (options: OpenStoreOptions, open: () => Promise<T>): Promise<T> {
  try {
    return await open()
  } catch (err) {
    const found = levelDamage(err)
    if (found === undefined) throw err
    const { what, path, recovery } = options
    throw new StoreDamagedError(`the ${what} ${path} is damaged (${found}): move it aside with \`mv ${path} ${path}.damaged\` and start the daemon again: ${recovery}`, { cause: err })
  }
}
