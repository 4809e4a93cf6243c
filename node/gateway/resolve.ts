/**
 * Content paths resolved through UnixFS directories (HAMT-sharded ones
 * included) with `ipfs-unixfs-exporter`'s path walker, reading through the
 * node's block service. Besides the CID at the end of the path, it keeps
 * which blocks the walk read: a CAR for a path carries exactly those before
 * the content, so a client can verify the path from its root.
 *
 * @module
 */
import { walkPath } from 'ipfs-unixfs-exporter'
import { NotFoundError, ShoalError } from '../errors.js'
import { nodeKey } from '../car/links.js'
import type { BlockGetter } from '../reads/api.js'
import type { ContentPath } from './request.js'
import type { CID } from 'multiformats/cid'

/** A content path resolved to the CID at its end. */
/** Longest piece of a path an error message repeats (a 16 KiB path made a 32 KB answer of its 404). */
const MAX_ECHO = 200

/** `text`, cut to {@link MAX_ECHO} characters with an ellipsis. */
function clip (text: string): string {
  return text.length <= MAX_ECHO ? text : `${text.slice(0, MAX_ECHO)}…`
}

export interface ResolvedPath {
  /** The CID at the end of the path. */
  terminal: CID
  /** The CID of the root and of every segment, in order (`X-Ipfs-Roots`). */
  roots: CID[]
  /** Keys ({@link nodeKey}) of the blocks read to resolve the path: the root, the directories and HAMT shards on the way. */
  pathBlocks: Set<string>
}

/**
 * Resolve `path`; a path of no segments resolves to its root without a read.
 *
 * @throws {NotFoundError} when a name is missing, or the path goes on below a file
 * @throws whatever the block service throws for a block it cannot give (BlockUnavailableError, AbortedError…)
 */
export async function resolvePath (blocks: BlockGetter, path: ContentPath, signal: AbortSignal): Promise<ResolvedPath> {
  const pathBlocks = new Set<string>()
  if (path.segments.length === 0) return { terminal: path.root, roots: [path.root], pathBlocks }
  // the walker reads through the v7 blockstore contract (a generator per block)
  const storage = {
    async * get (cid: CID, options?: { signal?: AbortSignal }) {
      pathBlocks.add(nodeKey(cid))
      yield await blocks.getBytes(cid, { signal: options?.signal ?? signal })
    }
  }
  const text = [path.root.toString(), ...path.segments].join('/')
  let last: { cid: CID, roots: CID[], remainder: string[] } | undefined
  try {
    for await (const entry of walkPath(text, storage, { signal })) last = entry
  } catch (err: any) {
    // errors of our own read path (not found anywhere, timed out, aborted) keep their meaning
    if (err instanceof ShoalError) throw err
    if (err?.name === 'NotFoundError' || err?.name === 'NoResolverError' || err?.name === 'NotUnixFSError') {
      throw new NotFoundError(`${clip(path.text)}: ${clip(String(err.message))}`, { cause: err })
    }
    throw err
  }
  if (last === undefined || last.remainder.length > 0) {
    throw new NotFoundError(`${clip(path.text)}: no ${JSON.stringify(clip((last?.remainder ?? path.segments).join('/')))} below ${String(last?.cid ?? path.root)} (not a directory, or no such name)`)
  }
  return { terminal: last.cid, roots: last.roots, pathBlocks }
}
