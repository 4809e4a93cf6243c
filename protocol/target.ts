import { CID } from 'multiformats/cid'
import { bases } from 'multiformats/basics'
import type { MultibaseDecoder } from 'multiformats/bases/interface'
import { InvalidCIDError } from './errors.js'
import { namesDirectory, normalizePath } from './paths.js'

/** What a `PATH|CID` argument names. */
export type Target = PathTarget | { kind: 'cid', cid: CID }

/** A namespace path argument. */
export interface PathTarget {
  kind: 'path'
  /**
   * The path, normalised but for a trailing `/`, which it keeps: such a path
   * names a directory ({@link namesDirectory}), and the namespace's reads
   * refuse a file there.
   */
  path: string
}

/** Every multibase multiformats knows, by its prefix. */
const BASES = new Map<string, { decode: (text: string) => Uint8Array<ArrayBuffer> }>(Object.values(bases).map(b => [b.prefix, b]))
/**
 * A decoder of every multibase in {@link BASES} (base32upper `B…`, base16
 * `f…`, base64url `u…`…): `CID.parse` alone takes only base58btc, base32
 * and base36.
 */
const ANY_BASE: MultibaseDecoder<string> = {
  decode (text: string): Uint8Array<ArrayBuffer> {
    const prefix = String.fromCodePoint(text.codePointAt(0) ?? 0)
    const base = BASES.get(prefix)
    if (base === undefined) throw new Error(`unknown multibase prefix ${JSON.stringify(prefix)}`)
    return base.decode(text)
  }
}

/**
 * Parse a CID string (CIDv0, or CIDv1 in any multibase).
 *
 * @throws {InvalidCIDError} with the offending text
 */
export function parseCID (text: string): CID {
  // the multibase decoder's own word for "" is about a NUL prefix
  if (text === '') throw new InvalidCIDError('missing CID')
  try {
    return CID.parse(text, ANY_BASE)
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
  if (arg.startsWith('/')) return { kind: 'path', path: normalizePath(arg) + (namesDirectory(arg) ? '/' : '') }
  return { kind: 'cid', cid: parseCID(arg) }
}
