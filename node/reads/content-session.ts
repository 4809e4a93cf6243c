/**
 * Read sessions for content named by a CID, aware of pins: what the gateway
 * serves, and `shoal cat|get|stat|ls|car export CID` (node/files).
 *
 * A read by CID names no namespace path, so its read session knows nothing
 * of the file's pin: a plain session reads the local store,
 * then asks peers. That serves most content (a striped file's holders
 * answer for the leaves they hold), but not a file whose only copy is in the
 * cold tier, nor a striped file with a leaf no live peer holds (its holder
 * is gone: the leaf must be rebuilt from its stripe). So when a plain read
 * fails for want of a block, the pin of the session's root is looked up in
 * pin index (./pin-index.ts, by multihash: a CIDv0 finds a CIDv1 pin), and the
 * rest of the session reads through a session on that pin — holders,
 * Reed-Solomon rebuilds, the tier — as `shoal cat PATH` reads it.
 *
 * The lookup is made at most once per session (reads in flight at once
 * share it; one that failed is made again by the next wanting read, which
 * fails with its own error meanwhile), under the caller's `wrap` (the gateway's retrieval timeout), and never scans the
 * namespace itself (the index is built once per namespace change). An
 * identity-hashed root is never looked up: its block is its CID, no pin
 * is needed to read it, and no file is pinned under one.
 *
 * @module
 */
import { IDENTITY } from '../blocks/verify.js'
import { SessionScope } from './session-scope.js'
import type { BlockGetter, BlockReader, ReadSession, ReadTarget } from './api.js'
import type { CID } from 'multiformats/cid'


/** Read failures after which the file's pin is looked for. */
const WANTING = new Set(['BlockUnavailableError', 'NotFoundError', 'StripeUnavailableError', 'PeerUnavailableError'])

/** Options of {@link contentSession}. */
export interface ContentSessionInit {
  blocks: BlockReader
  /** The pinned read target of a content root (a pin index lookup; the gateway's under its retrieval timeout). */
  lookup: (root: CID) => Promise<ReadTarget | undefined>
  /** The CID of the content (a file root) the session reads. */
  root: CID
  signal?: AbortSignal
  /** Wraps every session (the gateway puts every read under its retrieval timeout). @default none */
  wrap?: (getter: BlockGetter) => BlockGetter
}

/**
 * A read session for the DAG under `root` that turns to the file's pin when
 * a block is wanting (see the module comment); closing it closes both.
 */
export function contentSession (init: ContentSessionInit): ReadSession {
  const { blocks, lookup, root, signal } = init
  const wrap = init.wrap ?? ((getter: BlockGetter) => getter)
  const scope = new SessionScope()
  const plain = wrap(scope.add(blocks.session({ root }, { signal })))
  if (root.multihash.code === IDENTITY) return { getBytes: plain.getBytes, close: () => { scope.close() } }
  let pinned: BlockGetter | undefined
  // reads run in parallel (read-ahead): every one that fails waits for the same lookup
  let search: Promise<BlockGetter | undefined> | undefined
  return {
    getBytes: async (cid, options) => {
      if (pinned !== undefined) return await pinned.getBytes(cid, options)
      try {
        return await plain.getBytes(cid, options)
      } catch (err: any) {
        if (!WANTING.has(err?.name) || signal?.aborted === true) throw err
        search ??= lookup(root).then(target => {
          if (target !== undefined) pinned = wrap(scope.add(blocks.session(target, { signal })))
          return pinned
        })
        let found: BlockGetter | undefined
        try {
          found = await search
        } catch {
          // a lookup that failed (the gateway's timeout, the index unreadable) is not kept for the
          // rest of the session: the next wanting block looks again, and this read keeps its own error
          search = undefined
          throw err
        }
        if (found === undefined) throw err
        return await found.getBytes(cid, options)
      }
    },
    close: () => { scope.close() }
  }
}
