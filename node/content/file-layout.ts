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
import { fileSizeOf, innerNodeOf, type InnerNode, type LeafSpan, type RootBlock } from './ranged-reader.js'
import { AbortedError, InvalidBlockError } from '../errors.js'
import type { BlockGetter } from '../reads/api.js'
import { code as RAW } from 'multiformats/codecs/raw'
import type { CID } from 'multiformats/cid'

/** Inner nodes a layout keeps decoded: enough for ~11 GiB of 1 MiB leaves. */
const INNER_NODES_KEPT = 64

/** The leaves of one file, found by offset. */
export class FileLayout {
  /** The file's size in bytes. */
  readonly size: number
  private readonly inner = new Map<string, InnerNode>()

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

  private async innerNode (cid: CID, at: { base: number, size: number }, signal?: AbortSignal): Promise<InnerNode> {
    const key = cid.toString()
    const kept = this.inner.get(key)
    if (kept !== undefined) return kept
    const bytes = cid.equals(this.root.cid) ? this.root.bytes : await this.getter.getBytes(cid, { signal })
    const node = innerNodeOf(cid, bytes, at.base)
    const last = node.children.at(-1)
    const held = (last === undefined ? at.base + node.data.byteLength : last.base + last.size) - at.base
    if (held !== at.size) throw new InvalidBlockError(`${key} holds ${held} bytes but its parent says ${at.size}`)
    this.inner.set(key, node)
    if (this.inner.size > INNER_NODES_KEPT) this.inner.delete(this.inner.keys().next().value as string)
    return node
  }
}
