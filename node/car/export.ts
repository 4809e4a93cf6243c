import { CarWriter } from '@ipld/car/writer'
import { AbortedError } from '../errors.js'
import { IDENTITY } from '../blocks/verify.js'
import { isUnixFSDirectory, linksOf, nodeKey } from './links.js'
import type { BlockGetter } from '../reads/api.js'
import type { CID } from 'multiformats/cid'

/** Options of {@link exportCar}. */
export interface ExportCarOptions {
  /** Stops the export; the consumer sees an `AbortedError`. */
  signal?: AbortSignal
  /**
   * The links of a block the walk goes on to, in the order given (default:
   * every link, as {@link linksOf} lists them). Lets a caller export part of
   * a DAG: the gateway's `dag-scope` and `entity-bytes` (node/gateway/).
   */
  follow?: (block: { cid: CID, bytes: Uint8Array }) => CID[]
  /**
   * Whether a block already written is walked again when it is met again
   * (read again and given to `follow`, never written twice). Default: never,
   * each block is walked once. A `follow` that needs a block's links for a
   * second occurrence of it (another byte range of a file) says so here;
   * it must stop saying so, or the walk does not end.
   */
  revisit?: (cid: CID) => boolean
  /**
   * The reader of the DAG under `entry`, an entry of a UnixFS directory or
   * HAMT shard the walk goes on to: the entry and every block under it are
   * read through it. Without it, an entry is read as its directory was. Lets
   * each file of a directory be read through its own pin (its stripes, its
   * cold copy), as a read of that file alone would be. It is asked for when
   * the walk reaches the entry, and closed (when it has `close`) once the
   * walk has left the entry's DAG: a directory of many files holds the
   * readers of the entries being walked, not one per entry.
   */
  entryReader?: (entry: CID) => BlockGetter & { close?: () => void }
}

type BlockWriter = ReturnType<typeof CarWriter.create>['writer']

function throwIfAborted (signal?: AbortSignal): void {
  if (signal?.aborted === true) throw new AbortedError('CAR export aborted')
}

/**
 * Put every block of the DAG under `root` into `writer`, depth-first
 * pre-order (parents before children, children in link order, each block
 * once; `revisit` may walk a block again, never writing it twice), with an
 * explicit stack. Each `put` resolves only once the consumer
 * has read its bytes, so at most one block is in flight. Identity-hashed
 * nodes are walked through but not written (their data is in the CID).
 */
async function writeDag (blockstore: BlockGetter, root: CID, rootBytes: Uint8Array, writer: BlockWriter, stopped: () => boolean, options: ExportCarOptions): Promise<void> {
  const { signal, follow, revisit, entryReader } = options
  const seen = new Set<string>()
  const wanted = (cid: CID): boolean => !seen.has(nodeKey(cid)) || revisit?.(cid) === true
  const stack: WalkItem[] = [{ cid: root, reader: blockstore }]
  while (stack.length > 0 && !stopped()) {
    throwIfAborted(signal)
    const item = stack.pop() as WalkItem
    if ('leave' in item) { item.leave(); continue }
    const { cid } = item
    const key = nodeKey(cid)
    if (!wanted(cid)) continue
    let reader = item.reader
    if (reader === undefined) {
      // an entry of a directory: its reader from now until the walk leaves its DAG
      // (popped after every block pushed above it)
      const own = (entryReader as NonNullable<typeof entryReader>)(cid)
      if (own.close !== undefined) stack.push({ leave: own.close.bind(own) })
      reader = own
    }
    const again = seen.has(key)
    seen.add(key)
    const bytes = cid === root ? rootBytes : await reader.getBytes(cid, { signal })
    if (!again && cid.multihash.code !== IDENTITY) await writer.put({ cid, bytes })
    const links = follow === undefined ? linksOf(cid, bytes) : follow({ cid, bytes })
    // a directory's entries each through a reader of their own (the block decoded once, not once per entry)
    const ownReaders = entryReader !== undefined && isUnixFSDirectory({ cid, bytes })
    for (let i = links.length - 1; i >= 0; i--) {
      if (wanted(links[i])) stack.push({ cid: links[i], reader: ownReaders ? undefined : reader })
    }
  }
}

/**
 * What the walk's stack holds: a block with the reader of the DAG it is met
 * in (none yet for a directory's entry, whose own reader is made when the
 * walk reaches it), or the end of an entry's DAG (its reader closed).
 */
type WalkItem = { cid: CID, reader: BlockGetter | undefined } | { leave: () => void }

/**
 * Stream the DAG under `root` as a CARv1 with `root` as its only root.
 *
 * Blocks come in depth-first pre-order, as Kubo's `dag export` writes them:
 * parents before children, each block once. The CAR is produced as it is
 * read (backpressure): one block at a time is held in memory, never the DAG.
 *
 * @throws {NotFoundError} when the root (before any byte is yielded) or any
 * block under it (mid-stream) is not in the store
 * @throws {AbortedError} when `options.signal` fires
 * @throws {InvalidCARError} when a block uses a codec other than dag-pb, dag-cbor or raw
 */
export async function * exportCar (blockstore: BlockGetter, root: CID, options: ExportCarOptions = {}): AsyncGenerator<Uint8Array> {
  const { signal } = options
  throwIfAborted(signal)
  // fail before the header is sent, so an HTTP caller can still answer 404
  const rootBytes = await blockstore.getBytes(root, { signal })

  const { writer, out } = CarWriter.create([root])
  let stop = false
  const producer = (async (): Promise<{ error?: unknown }> => {
    try {
      await writeDag(blockstore, root, rootBytes, writer, () => stop, options)
      return {}
    } catch (error) {
      return { error }
    } finally {
      // ends `out`: the consumer loop below drains what is left, then stops
      await writer.close()
    }
  })()

  const chunks = out[Symbol.asyncIterator]()
  let finished = false
  try {
    while (true) {
      const next = await chunks.next()
      if (next.done === true) break
      yield next.value
    }
    finished = true
    const { error } = await producer
    if (error !== undefined) throw error
  } finally {
    if (!finished) {
      // the consumer stopped early: let the producer finish its current put
      // and close the writer, draining (and dropping) what it still writes
      stop = true
      while (true) {
        const next = await chunks.next()
        if (next.done === true) break
      }
      await producer
    }
  }
}
