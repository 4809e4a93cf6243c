import { stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { IsADirectoryError, NotADirectoryError, NotFoundError } from '../node/errors.js'

/**
 * Check that `out` can receive a download of `kind` before any byte moves,
 * so the error names the user's path (not a temporary file).
 *
 * @throws {NotFoundError} when the parent folder is missing
 * @throws {IsADirectoryError} a file download onto a folder
 * @throws {NotADirectoryError} a tree download onto a file
 */
export async function checkOutputPath (out: string, kind: 'file' | 'dir'): Promise<void> {
  const parent = await stat(dirname(out)).catch(() => undefined)
  if (parent === undefined) throw new NotFoundError(`cannot write ${out}: no such directory ${dirname(out)}`)
  if (!parent.isDirectory()) throw new NotADirectoryError(`cannot write ${out}: ${dirname(out)} is not a directory`)
  const existing = await stat(out).catch(() => undefined)
  if (kind === 'file' && existing?.isDirectory() === true) throw new IsADirectoryError(`cannot write ${out}: it is a directory`)
  if (kind === 'dir' && existing !== undefined && !existing.isDirectory()) throw new NotADirectoryError(`cannot write a directory to ${out}: a file is there`)
}
