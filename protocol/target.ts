import { CID } from 'multiformats/cid'
import { InvalidCIDError } from './errors.js'
import { namesDirectory, normalizePath } from './paths.js'

/** What a `PATH|CID` argument names. */
export type Target = PathTarget | { kind: 'cid', cid: CID }

/** A namespace path argument. */
export interface PathTarget {
  kind: 'path'
  /** The path, normalised. */
  path: string
  /** The argument ended in `/`: it must name a directory ({@link namesDirectory}). */
  directory: boolean
}

/**
 * Parse a CID string (any multibase CIDv0/CIDv1).
 *
 * @throws {InvalidCIDError} with the offending text
 */
export function parseCID (text: string): CID {
  try {
    return CID.parse(text)
  } catch (err: any) {
    throw new InvalidCIDError(`invalid CID ${JSON.stringify(text.length > 100 ? text.slice(0, 100) + '…' : text)}: ${String(err?.message ?? err)}`)
  }
}

/**
 * A `PATH|CID` argument: a namespace path when it starts with `/`, else a
 * CID (`/ipfs/<cid>` is accepted too).
 *
 * @throws {InvalidPathError} {InvalidCIDError}
 */
export function parseTarget (arg: string): Target {
  if (arg.startsWith('/ipfs/')) return { kind: 'cid', cid: parseCID(arg.slice(6).replace(/\/$/, '')) }
  if (arg.startsWith('/')) return { kind: 'path', path: normalizePath(arg), directory: namesDirectory(arg) }
  return { kind: 'cid', cid: parseCID(arg) }
}
