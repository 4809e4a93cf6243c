import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { AbortedError, InvalidBlockError, InvalidArgumentError, IsADirectoryError } from '../errors.js'
import type { BlockGetter } from '../reads/api.js'
import type { CID } from 'multiformats/cid'

const RAW = 0x55

/** Most leaf reads kept in flight ahead of the consumer. */
export const READ_AHEAD = 16

/**
 * Bytes of leaves (as their parents declare them) kept in flight ahead of the
 * consumer; at least one leaf is, whatever its size.
 */
export const READ_AHEAD_BYTES = 8 * 1024 * 1024


/** How far {@link readRange} reads ahead of its consumer. */
export interface ReadAhead {
  /** Most leaf reads in flight. */
  blocks: number
  /** Most declared leaf bytes in flight (at least one leaf is, whatever its size). */
  bytes: number
}

/** A piece of the file: where it starts and how to get its bytes. */
export interface LeafSpan {
  /** File offset of the piece's first byte. */
  base: number
  /** Bytes the parent says it holds. */
  size: number
  /** A raw leaf still to be read… */
  cid?: CID
  /** …or bytes already at hand (the root itself, or data inline in a dag-pb node). */
  bytes?: Uint8Array
}

/** A decoded inner node: its inline data, and its children with their file offsets. */
export interface InnerNode {
  data: Uint8Array
  children: Array<LeafSpan & { cid: CID }>
}

/**
 * The UnixFS file node `bytes` of `cid`, which starts at file offset `base`:
 * its inline data and its children, each with the offset and size its
 * parent gives it.
 */
export function innerNodeOf (cid: CID, bytes: Uint8Array, base: number): InnerNode {
  const { node, unixfs } = decodeFileNode(cid, bytes)
  const data = unixfs.data ?? new Uint8Array(0)
  const children: InnerNode['children'] = []
  let at = base + data.byteLength
  for (let i = 0; i < node.Links.length; i++) {
    const size = Number(unixfs.blockSizes[i])
    children.push({ base: at, size, cid: node.Links[i].Hash })
    at += size
  }
  return { data, children }
}

/** A file's root block, already read (and hash-checked). */
export interface RootBlock { cid: CID, bytes: Uint8Array }

/**
 * Size in bytes of the file whose root block is `root`.
 *
 * @throws {IsADirectoryError} for a UnixFS directory
 * @throws {InvalidArgumentError} for anything else that is not a file
 */
export function fileSizeOf (root: RootBlock): number {
  // the codec says what the bytes are; an identity multihash only says where they are (in the CID)
  if (root.cid.code === RAW) return root.bytes.byteLength
  return Number(decodeFileNode(root.cid, root.bytes).unixfs.fileSize())
}

/** Decode a UnixFS file node, or say clearly why it is not one. */
export function decodeFileNode (cid: CID, bytes: Uint8Array): { node: dagPb.PBNode, unixfs: UnixFS } {
  if (cid.code !== dagPb.code) throw new InvalidArgumentError(`${cid.toString()} is not a UnixFS file (codec 0x${cid.code.toString(16)})`)
  let node: dagPb.PBNode
  let unixfs: UnixFS
  try {
    node = dagPb.decode(bytes)
    if (node.Data === undefined) throw new Error('no UnixFS data')
    unixfs = UnixFS.unmarshal(node.Data)
  } catch (err: any) {
    throw new InvalidBlockError(`${cid.toString()} is not a valid UnixFS node: ${String(err.message)}`)
  }
  if (unixfs.isDirectory()) throw new IsADirectoryError(`${cid.toString()} is a directory`)
  if (unixfs.type !== 'file' && unixfs.type !== 'raw') throw new InvalidArgumentError(`${cid.toString()} is a UnixFS ${unixfs.type}, not a file`)
  if (node.Links.length !== unixfs.blockSizes.length) throw new InvalidBlockError(`${cid.toString()}: ${node.Links.length} links but ${unixfs.blockSizes.length} block sizes`)
  return { node, unixfs }
}

/**
 * The pieces of the file under `root` that overlap `[start, end)`, in file
 * order. Walks depth-first with an explicit stack and reads only the internal
 * nodes on the way to the range; leaves are left for the caller to read.
 */
async function * spansOf (blockstore: BlockGetter, root: RootBlock, start: number, end: number, signal?: AbortSignal): AsyncGenerator<LeafSpan> {
  const stack: LeafSpan[] = [{ base: 0, size: Number.MAX_SAFE_INTEGER, cid: root.cid }]
  while (stack.length > 0) {
    if (signal?.aborted === true) throw new AbortedError('read aborted')
    const span = stack.pop() as LeafSpan
    const cid = span.cid as CID
    if (cid.code === RAW) {
      yield cid === root.cid ? { ...span, bytes: root.bytes } : span
      continue
    }
    const bytes = cid === root.cid ? root.bytes : await blockstore.getBytes(cid, { signal })
    const { data, children } = innerNodeOf(cid, bytes, span.base)
    // a child holding other than its parent declares would shift every later byte, or cut the file short
    const last = children.at(-1)
    const held = (last === undefined ? span.base + data.byteLength : last.base + last.size) - span.base
    if (cid !== root.cid && held !== span.size) throw new InvalidBlockError(`${cid.toString()} holds ${held} bytes but its parent says ${span.size}`)
    if (data.byteLength > 0 || children.length === 0) yield { base: span.base, size: data.byteLength, bytes: data }
    for (let i = children.length - 1; i >= 0; i--) {
      const child = children[i]
      if (child.base < end && child.base + child.size > start) stack.push(child)
    }
  }
}

/**
 * Stream bytes `[start, end)` of the UnixFS file (or raw block) whose root is `root`,
 * reading only the blocks that hold them, each hash-checked, with at most
 * {@link READ_AHEAD} leaves and {@link READ_AHEAD_BYTES} in flight (or what
 * `readAhead` says: a server with many readers keeps less): a slow
 * consumer holds the reader back instead of making it buffer the file. The
 * read-ahead is topped up in bursts, once half of it has been consumed, so
 * that a network session can ask a peer for several leaves in one message.
 *
 * @throws {InvalidBlockError} when a leaf's or an inner node's size disagrees with its parent
 */
export async function * readRange (blockstore: BlockGetter, root: RootBlock, start: number, end: number, signal?: AbortSignal, readAhead: ReadAhead = { blocks: READ_AHEAD, bytes: READ_AHEAD_BYTES }): AsyncGenerator<Uint8Array> {
  if (end <= start) return
  const spans = spansOf(blockstore, root, start, end, signal)
  const window: Array<{ weight: number, read: Promise<{ span: LeafSpan, bytes: Uint8Array }> }> = []
  /** Declared bytes of the leaves in `window`. */
  let ahead = 0
  let exhausted = false
  const refill = async (): Promise<void> => {
    if (window.length > readAhead.blocks / 2 || ahead > readAhead.bytes / 2) return
    while (!exhausted && window.length < readAhead.blocks && (window.length === 0 || ahead < readAhead.bytes)) {
      const next = await spans.next()
      if (next.done === true) { exhausted = true; return }
      const span = next.value
      const read = span.bytes !== undefined
        ? Promise.resolve({ span, bytes: span.bytes })
        : blockstore.getBytes(span.cid as CID, { signal }).then(bytes => ({ span, bytes }))
      read.catch(() => {}) // surfaced when awaited below; never unhandled if we stop early
      const weight = span.bytes?.byteLength ?? span.size
      ahead += weight
      window.push({ weight, read })
    }
  }
  try {
    await refill()
    while (window.length > 0) {
      const next = window.shift() as { weight: number, read: Promise<{ span: LeafSpan, bytes: Uint8Array }> }
      ahead -= next.weight
      const { span, bytes } = await next.read
      // blocks read ahead may all be in already: an aborted read still stops here, not at the end of the file
      if (signal?.aborted === true) throw new AbortedError('read aborted')
      if (span.cid !== undefined && span.size !== Number.MAX_SAFE_INTEGER && bytes.byteLength !== span.size) {
        throw new InvalidBlockError(`${span.cid.toString()} holds ${bytes.byteLength} bytes but its parent says ${span.size}`)
      }
      await refill()
      const from = Math.max(0, start - span.base)
      const to = Math.min(bytes.byteLength, end - span.base)
      if (to > from) yield from === 0 && to === bytes.byteLength ? bytes : bytes.subarray(from, to)
    }
  } finally {
    await spans.return(undefined)
  }
}
