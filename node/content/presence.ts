/**
 * Whether this node still holds a file's blocks: a walk of the file's DAG in
 * the local store only (never the network), for `pin status` of a file that
 * is not erasure coded (nothing else tells whether its blocks are still
 * anywhere; docs/durability.md, "A file that is not coded").
 *
 * Each block costs one index lookup (`has`: no pack read); inner nodes are
 * read from the local store to find their links. The walk is bounded: it
 * stops after {@link PresenceOptions.maxBlocks} blocks or
 * {@link PresenceOptions.maxMissing} missing ones (`complete` false), and
 * the subtree under a missing inner node is not known here (counted once,
 * in `unknownSubtrees`). `has` trusts the index: a copy rotted on disk that
 * no read, scrub or open has found yet counts as here.
 *
 * @module
 */
import * as dagPB from '@ipld/dag-pb'
import type { CID } from 'multiformats/cid'
import type { BlockStore } from '../blocks/index.js'

/** What {@link localPresence} found. */
export interface BlockPresence {
  /** Blocks looked up. */
  checked: number
  /** Blocks of the file this node does not hold (of those looked up). */
  missing: number
  /** Inner nodes missing here: their subtrees could not be walked (their blocks are not in `checked`). */
  unknownSubtrees: number
  /** True when the whole DAG was walked (no bound reached, no subtree unknown). */
  complete: boolean
  /** The first missing blocks' CIDs (at most {@link PresenceOptions.keepMissing}). */
  firstMissing: string[]
}

/** Options of {@link localPresence}. */
export interface PresenceOptions {
  /** Stop after looking up this many blocks. @default 100_000 */
  maxBlocks?: number
  /** Stop after finding this many missing blocks. @default 1_000 */
  maxMissing?: number
  /** Missing CIDs kept in `firstMissing`. @default 256 */
  keepMissing?: number
  signal?: AbortSignal
}

const DAG_PB = 0x70
const IDENTITY = 0x00

/** Walk the DAG under `root` in `store` only; see the module comment. */
export async function localPresence (store: Pick<BlockStore, 'has' | 'getBytes'>, root: CID, options: PresenceOptions = {}): Promise<BlockPresence> {
  const maxBlocks = options.maxBlocks ?? 100_000
  const maxMissing = options.maxMissing ?? 1_000
  const keep = options.keepMissing ?? 256
  const found: BlockPresence = { checked: 0, missing: 0, unknownSubtrees: 0, complete: true, firstMissing: [] }
  const stack: CID[] = [root]
  while (stack.length > 0) {
    options.signal?.throwIfAborted()
    if (found.checked >= maxBlocks || found.missing >= maxMissing) { found.complete = false; break }
    const cid = stack.pop() as CID
    if (cid.multihash.code === IDENTITY) continue
    found.checked++
    let bytes: Uint8Array | undefined
    if (await store.has(cid, { signal: options.signal })) {
      if (cid.code !== DAG_PB) continue
      // a read that fails (a copy found bad now) is a block not here
      bytes = await store.getBytes(cid, { signal: options.signal }).catch(() => undefined)
    }
    const links = bytes === undefined ? undefined : linksOf(bytes)
    if (links === undefined) {
      found.missing++
      if (found.firstMissing.length < keep) found.firstMissing.push(cid.toString())
      if (cid.code === DAG_PB) { found.unknownSubtrees++; found.complete = false }
      continue
    }
    for (let i = links.length - 1; i >= 0; i--) stack.push(links[i])
  }
  return found
}

/** The links of a dag-pb block; undefined when it does not decode (its hash matched, so it was stored so: counted as not usable here). */
function linksOf (bytes: Uint8Array): CID[] | undefined {
  try {
    return dagPB.decode(bytes).Links.map(l => l.Hash)
  } catch {
    return undefined
  }
}
