/**
 * Read sessions for the content a gateway request names, aware of pins.
 *
 * A gateway request names a CID, not a namespace path, so its read session
 * knows nothing of the file's pin: a plain session reads the local store,
 * then asks peers. That serves most content (a striped file's holders
 * answer for the leaves they hold), but not a file whose only copy is in the
 * cold tier, nor a striped file with a leaf no live peer holds (its holder
 * is gone: the leaf must be rebuilt from its stripe). So when a plain read
 * fails for want of a block, the namespace is searched for a visible file
 * with that CID and a stripe manifest or a cold copy, and the rest of the
 * request reads through a session on that pin — holders, Reed-Solomon
 * rebuilds, the tier — as `shoal cat PATH` reads it.
 *
 * The search is a scan of the namespace's files, made only on that failure
 * path and once per session (reads in flight at once share it).
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import type { Entry } from '../namespace/index.js'
import type { BlockGetter, BlockReader, ReadTarget } from '../reads/api.js'

/** Where the gateway finds the pins of files. */
export interface PinSource {
  /** Every visible file of the namespace. */
  files: () => AsyncIterable<Entry>
}

/** Read failures after which the file's pin is looked for. */
const WANTING = new Set(['BlockUnavailableError', 'NotFoundError', 'StripeUnavailableError', 'PeerUnavailableError'])

/** The pinned read target of the visible file whose content is `root`, when it has a manifest or a cold copy. */
export async function findPinnedTarget (pins: PinSource, root: CID, signal?: AbortSignal): Promise<ReadTarget | undefined> {
  const wanted = root.toString()
  for await (const entry of pins.files()) {
    signal?.throwIfAborted()
    if (entry.type !== 'file' || entry.cid !== wanted) continue
    const pin = entry.pin
    if (pin?.manifest === undefined && pin?.cold === undefined) continue
    return { root, manifest: pin.manifest === undefined ? undefined : CID.parse(pin.manifest), cold: pin.cold }
  }
  return undefined
}

/** Options of {@link contentSession}. */
export interface ContentSessionInit {
  blocks: BlockReader
  pins: PinSource
  /** The CID of the content (a file root) the session reads. */
  root: CID
  signal: AbortSignal
  /** Puts every read under the request's retrieval timeout. */
  wrap: (getter: BlockGetter) => BlockGetter
}

/** A read session for the DAG under `root` that turns to the file's pin when a block is wanting (see the module comment). */
export function contentSession (init: ContentSessionInit): BlockGetter {
  const { blocks, pins, root, signal, wrap } = init
  const plain = wrap(blocks.session({ root }, { signal }))
  let pinned: BlockGetter | undefined
  // reads run in parallel (read-ahead): every one that fails waits for the same search
  let search: Promise<BlockGetter | undefined> | undefined
  return {
    getBytes: async (cid, options) => {
      if (pinned !== undefined) return await pinned.getBytes(cid, options)
      try {
        return await plain.getBytes(cid, options)
      } catch (err: any) {
        if (!WANTING.has(err?.name) || signal.aborted) throw err
        search ??= findPinnedTarget(pins, root, signal).then(target => {
          if (target !== undefined) pinned = wrap(blocks.session(target, { signal }))
          return pinned
        })
        const found = await search
        if (found === undefined) throw err
        return await found.getBytes(cid, options)
      }
    }
  }
}
