/**
 * A change of one file version in place — the same bytes with another pin,
 * mode or time — made with `PutOptions.rewriting`, so that it never brings
 * back a file removed since it was read, nor undoes a change of its pin made
 * meanwhile.
 *
 * Why a helper: an add returns before its file is coded, and the background
 * coding then binds the manifest into the file's record. A `pin add`, a
 * `chmod` through a mount or the coding itself that read the record before
 * that bind would find it changed. Only its pin, mode or time moved: the
 * same file is still there, so the change is made again from the version
 * now there, a few times at most. A removal, a move or another version
 * ends it with `VersionGoneError`.
 *
 * @module
 */
import { ConflictCopyError } from '../errors.js'
import type { Entry, FileRecord, Namespace } from './api.js'

/** The refusal of a change of pin, mode or time of the conflict copy `entry` ({@link ConflictCopyError}). */
export function conflictCopyError (entry: Entry): ConflictCopyError {
  return new ConflictCopyError(`${entry.path} is a conflict copy of ${entry.conflictOf ?? '?'}: a change of its pin, mode or time would end the conflict unseen, so nothing was changed; resolve it first (\`shoal mv\` it to a path of its own, or \`shoal rm\` it; \`shoal conflicts\` lists them)`)
}

/** Times a change is made again from the version now there before `VersionGoneError` is let through. */
const TRIES = 4

/** A file's entry. */
export type FileEntry = Entry & { type: 'file' }

/**
 * Write `change(version)` over `entry` in place: `change` gives the record
 * from the version as read (undefined: leave it as it is, and return
 * undefined); when that version's pin, mode or time changed meanwhile, it is
 * asked again with the version now there.
 *
 * @throws {VersionGoneError} when the file was removed, moved or replaced since it was read (nothing is written)
 * @throws {ConflictCopyError} when it is a conflict copy: written at the copy's name, it would end its conflict (nothing is written)
 */
export async function rewriteFile (namespace: Pick<Namespace, 'lookup' | 'putFile'>, entry: FileEntry, change: (version: FileEntry) => Omit<FileRecord, 'type'>): Promise<Entry>
export async function rewriteFile (namespace: Pick<Namespace, 'lookup' | 'putFile'>, entry: FileEntry, change: (version: FileEntry) => Omit<FileRecord, 'type'> | undefined): Promise<Entry | undefined>
export async function rewriteFile (namespace: Pick<Namespace, 'lookup' | 'putFile'>, entry: FileEntry, change: (version: FileEntry) => Omit<FileRecord, 'type'> | undefined): Promise<Entry | undefined> {
  let version = entry
  for (let tried = 1; ; tried++) {
    if (version.conflictOf !== undefined) throw conflictCopyError(version)
    const record = change(version)
    if (record === undefined) return undefined
    try {
      return await namespace.putFile(version.path, record, { rewriting: version })
    } catch (err: any) {
      if (err?.name !== 'VersionGoneError' || err.reason !== 'changed' || tried >= TRIES) throw err
      const now = await namespace.lookup(version.path)
      // gone or other bytes since the check: the same error, as the check would have said
      if (now?.type !== 'file' || now.cid !== version.cid) throw err
      version = now
    }
  }
}
