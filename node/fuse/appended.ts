/**
 * Whether a newer version of a file begins with every byte of an older one:
 * an append, made on this node or another. The mount's read handles use it
 * to follow a file that grows while they are open (`tail -f` of a log
 * written on another node; docs/fuse.md, "Open files keep their version").
 *
 * Why not compare the bytes: a file of gigabytes would be read twice for
 * each line appended. Versions of one file share their leaves (the same
 * chunker cuts the same bytes the same way), so the leaves both versions
 * have at the same offsets are compared by CID, without reading them, and
 * only the bytes after the last leaf they share are read and compared.
 * After an append that is the older version's last leaf: its end was cut at
 * the end of the file, and the newer version's leaf there runs on (at most
 * the chunker's largest leaf, 2 MiB for fastcdc by default, 4 MiB at most).
 * A version whose leaves part from the older one's further back is not
 * taken as an append when more than {@link MAX_COMPARED_BYTES} would have
 * to be read: the reader keeps the version it opened, as before.
 *
 * @module
 */
import type { Entry } from '../namespace/index.js'
import type { Files } from '../files/index.js'
import type { LeafSpan } from '../content/ranged-reader.js'

/** A file's entry in the namespace: the version a handle reads. */
export type FileEntry = Entry & { type: 'file' }

/** What {@link isAppendOf} reads the two versions through. */
export interface AppendCheckComponents {
  files: Pick<Files, 'layoutOf' | 'catEntry'>
}

/** Options of {@link isAppendOf}. */
export interface AppendCheckOptions {
  signal?: AbortSignal
  /** Most bytes read from each version to compare them. @default {@link MAX_COMPARED_BYTES} */
  maxComparedBytes?: number
}

/** Most bytes of each version compared after the leaves they share (four of the largest leaves a chunker cuts). */
export const MAX_COMPARED_BYTES = 16 * 1024 * 1024

/**
 * True when `newer` is longer than `older` and its first `older.size`
 * bytes are `older`'s: a reader of `older` may go on reading `newer` past
 * `older`'s end and see one file that grew. False for any other version,
 * and when telling would take comparing more than `maxComparedBytes`.
 *
 * @throws what reading either version throws (a block no peer has: the caller keeps its version)
 */
export async function isAppendOf (components: AppendCheckComponents, older: FileEntry, newer: FileEntry, options: AppendCheckOptions = {}): Promise<boolean> {
  const { files } = components
  const { signal } = options
  if (newer.size <= older.size || newer.cid === older.cid) return false
  if (older.size === 0) return true
  const [a, b] = await Promise.all([files.layoutOf(older, { signal }), files.layoutOf(newer, { signal })])
  const [ours, theirs] = await Promise.all([a.spans(0, older.size, signal), b.spans(0, older.size, signal)])
  // the first byte not under a leaf both versions have at the same offset
  let from = older.size
  for (let i = 0; i < ours.length; i++) {
    if (!sameLeaf(ours[i], theirs[i])) {
      from = ours[i].base
      break
    }
  }
  const length = older.size - from
  if (length === 0) return true
  if (length > (options.maxComparedBytes ?? MAX_COMPARED_BYTES)) return false
  return await sameBytes(files.catEntry(older, { offset: from, length, signal }), files.catEntry(newer, { offset: from, length, signal }))
}

/** The same leaf block at the same place of both files (inline bytes are compared, not matched). */
function sameLeaf (a: LeafSpan, b: LeafSpan | undefined): boolean {
  return b !== undefined && a.base === b.base && a.size === b.size && a.cid !== undefined && b.cid !== undefined && a.cid.equals(b.cid)
}

/** True when two streams yield the same bytes, however they cut them; both are closed. */
async function sameBytes (a: AsyncIterable<Uint8Array>, b: AsyncIterable<Uint8Array>): Promise<boolean> {
  const left = a[Symbol.asyncIterator]()
  const right = b[Symbol.asyncIterator]()
  let x: Uint8Array | undefined = new Uint8Array(0)
  let y: Uint8Array | undefined = new Uint8Array(0)
  try {
    for (;;) {
      while (x !== undefined && x.byteLength === 0) x = await nextOf(left)
      while (y !== undefined && y.byteLength === 0) y = await nextOf(right)
      if (x === undefined || y === undefined) return x === undefined && y === undefined
      const n = Math.min(x.byteLength, y.byteLength)
      if (Buffer.compare(x.subarray(0, n), y.subarray(0, n)) !== 0) return false
      x = x.subarray(n)
      y = y.subarray(n)
    }
  } finally {
    await Promise.all([left.return?.(), right.return?.()])
  }
}

async function nextOf (it: AsyncIterator<Uint8Array>): Promise<Uint8Array | undefined> {
  const next = await it.next()
  return next.done === true ? undefined : next.value
}
