/**
 * Random access to a UnixFS file's leaves. {@link readRange} streams a range
 * front to back; a reader that needs the leaves under any offset (the FUSE
 * mount answering a request with the places of its bytes) finds them here
 * without walking the DAG from its first leaf each time. A
 * {@link FileLayout} descends from the root to the leaves of a range,
 * keeping the inner nodes it decoded (a few KiB each, one per 174 leaves of
 * a balanced DAG) for the next lookup.
 *
 * @module
 */
import { decodeFileNode, fileSizeOf, type RootBlock } from './ranged-reader.js'
import { AbortedError, InvalidBlockError } from '../errors.js'
import type { BlockGetter } from '../reads/api.js'
import type { CID } from 'multiformats/cid'

const RAW = 0x55

/** Inner nodes a layout keeps decoded: enough for ~11 GiB of 1 MiB leaves. */
const INNER_NODES_KEPT = 64

/** A piece of the file: where it starts, its size, and its leaf or its bytes. */
export interface LeafSpan {
  /** File offset of the piece's first byte. */
  base: number
  /** Bytes the parent says it holds. */
  size: number
  /** A leaf block… */
  cid?: CID
  /** …or bytes at hand (the root itself, or data inline in an inner node). */
  bytes?: Uint8Array
}

/** A decoded inner node: its inline data and its children with their offsets. */
interface Inner {
  data: Uint8Array
  children: Array<{ base: number, size: number, cid: CID }>
}

/** The leaves of one file, found by offset. */
export class FileLayout {
  /** The file's size in bytes. */
  readonly size: number
  private readonly inner = new Map<string, Inner>()

  private constructor (private readonly getter: BlockGetter, private readonly root: RootBlock) {
    this.size = fileSizeOf(root)
  }

  /**
   * The layout of the file whose root is `cid`, its blocks read through `getter`.
   *
   * @throws {IsADirectoryError} for a directory, {InvalidArgumentError} for what is not a file
   */
  static async open (getter: BlockGetter, cid: CID, signal?: AbortSignal): Promise<FileLayout> {
    const bytes = await getter.getBytes(cid, { signal })
    return new FileLayout(getter, { cid, bytes })
  }

  /**
   * The pieces overlapping `[start, end)`, in file order. Inner nodes are read
   * through the layout's getter (once while kept); leaves are left to the caller.
   *
   * @throws {InvalidBlockError} when an inner node's sizes disagree with its parent's
   */
  async spans (start: number, end: number, signal?: AbortSignal): Promise<LeafSpan[]> {
    const out: LeafSpan[] = []
    if (end > start) await this.collect(this.root.cid, { base: 0, size: this.size }, start, end, out, signal)
    return out
  }

  private async collect (cid: CID, at: { base: number, size: number }, start: number, end: number, out: LeafSpan[], signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) throw new AbortedError('read aborted')
    if (cid.code === RAW) {
      out.push(cid.equals(this.root.cid) ? { ...at, bytes: this.root.bytes } : { ...at, cid })
      return
    }
    const node = await this.innerNode(cid, at, signal)
    if (node.data.byteLength > 0 && at.base < end && at.base + node.data.byteLength > start) out.push({ base: at.base, size: node.data.byteLength, bytes: node.data })
    for (const child of node.children) {
      if (child.base >= end) break
      if (child.base + child.size <= start) continue
      await this.collect(child.cid, child, start, end, out, signal)
    }
  }

  private async innerNode (cid: CID, at: { base: number, size: number }, signal?: AbortSignal): Promise<Inner> {
    const key = cid.toString()
    const kept = this.inner.get(key)
    if (kept !== undefined) return kept
    const bytes = cid.equals(this.root.cid) ? this.root.bytes : await this.getter.getBytes(cid, { signal })
    const { node, unixfs } = decodeFileNode(cid, bytes)
    const data = unixfs.data ?? new Uint8Array(0)
    const children: Inner['children'] = []
    let base = at.base + data.byteLength
    for (let i = 0; i < node.Links.length; i++) {
      const size = Number(unixfs.blockSizes[i])
      children.push({ base, size, cid: node.Links[i].Hash })
      base += size
    }
    if (base - at.base !== at.size) throw new InvalidBlockError(`${key} holds ${base - at.base} bytes but its parent says ${at.size}`)
    const decoded = { data, children }
    this.inner.set(key, decoded)
    if (this.inner.size > INNER_NODES_KEPT) this.inner.delete(this.inner.keys().next().value as string)
    return decoded
  }
}
