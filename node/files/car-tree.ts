/**
 * The shape of an imported CAR's trees, read once per block.
 *
 * Why: a UnixFS DAG may link one directory from several places (two equal
 * subfolders are one block), so a CAR of a few dozen blocks can name a
 * million paths. Binding walks paths; reading the store on every path made a
 * 22-block CAR that names 2^20 paths cost 100,000 block reads (tens of
 * seconds) before its size was refused.
 *
 * How: {@link TreeShapes} resolves each distinct CID once and keeps what
 * binding needs of it — a file's record, a directory's named links, or why
 * it is not UnixFS — with the number of entries under it, counted bottom-up.
 * A tree whose count passes the limit is refused the moment the count is
 * known, after reading only its distinct blocks; names are checked once per
 * directory block. Binding then walks the shapes, not the store.
 *
 * When: `car import` reads the shapes while the CAR is still staged
 * (node/files/car-import.ts, through `StagedCar.reader`), before any block
 * is published, so its refusals say that nothing was imported.
 *
 * @module
 */
import { entrySize, notFileOrDirectory, resolveEntry, type BlockGetter } from '../content/index.js'
import { InvalidCARError, TooLargeError } from '../errors.js'
import { fileNameProblem } from '../namespace/paths.js'
import type { FileRecord } from '../namespace/index.js'
import type { CID } from 'multiformats/cid'

/** A file as binding records it (its pin is chosen when it is bound). */
export type FileShape = { kind: 'file', record: Omit<FileRecord, 'type' | 'pin'> }

/** A directory: its links by name, in its order, each with its shape, and the entries it holds with itself. */
export interface DirShape { kind: 'dir', links: Array<{ name: string, cid: CID, shape: Shape }>, entries: number }

/** What is not a UnixFS file or directory (a dag-cbor node, a symlink…), and why. */
export interface UnboundShape { kind: 'unbound', why: string }

/** One block of an imported tree, as binding needs it. */
export type Shape = FileShape | DirShape | UnboundShape

/** Options of {@link TreeShapes}. */
export interface TreeShapesOptions {
  /** Entries (files and directories) all trees may hold together. */
  maxEntries: number
  signal?: AbortSignal
}

/**
 * Shapes of the trees under some roots, each block read once; the entries
 * of all roots asked for together stay within `maxEntries`.
 */
export class TreeShapes {
  private readonly shapes = new Map<string, Shape>()
  private total = 0

  constructor (private readonly blockstore: BlockGetter, private readonly options: TreeShapesOptions) {}

  /**
   * The shape of the tree at `root`, counted against the limit.
   *
   * @throws {TooLargeError} when this tree, or all roots asked for so far, hold more than `maxEntries` entries
   * @throws {InvalidCARError} for a directory entry whose name is not a file name, or a name given twice
   */
  async root (root: CID): Promise<Shape> {
    const shape = await this.shape(root)
    this.total += entriesOf(shape)
    if (this.total > this.options.maxEntries) throw this.tooLarge()
    return shape
  }

  private async shape (cid: CID): Promise<Shape> {
    const key = cid.toString()
    const seen = this.shapes.get(key)
    if (seen !== undefined) return seen
    const shape = await this.read(cid)
    this.shapes.set(key, shape)
    return shape
  }

  private async read (cid: CID): Promise<Shape> {
    const { signal, maxEntries } = this.options
    let entry
    try {
      entry = await resolveEntry(this.blockstore, cid, signal)
    } catch (err: any) {
      if (err?.name === 'NotUnixFSError' || err?.name === 'NoResolverError') return { kind: 'unbound', why: `not UnixFS: ${String(err.message)}` }
      throw err
    }
    const why = notFileOrDirectory(entry)
    if (why !== undefined) return { kind: 'unbound', why }
    if (entry.type !== 'directory') {
      // a UnixFS file's own mode and mtime when it carries them
      const unixfs = entry.type === 'file' ? entry.unixfs : undefined
      const mtime = unixfs?.mtime === undefined ? Date.now() : Number(unixfs.mtime.secs) * 1000 + Math.floor((unixfs.mtime.nsecs ?? 0) / 1e6)
      return { kind: 'file', record: { cid: entry.cid.toString(), size: entrySize(entry), mode: (unixfs?.mode ?? 0o644) & 0o7777, mtime } }
    }
    const links: DirShape['links'] = []
    const names = new Set<string>()
    let entries = 1
    for await (const link of entry.entries({ signal })) {
      const name = link.name
      if (fileNameProblem(name) !== undefined) {
        throw new InvalidCARError(`directory ${cid.toString()} has an entry named ${JSON.stringify(name)}, which is not a file name: nothing was imported`)
      }
      if (names.has(name)) throw new InvalidCARError(`directory ${cid.toString()} names ${JSON.stringify(name)} twice: nothing was imported`)
      names.add(name)
      const shape = await this.shape(link.cid)
      links.push({ name, cid: link.cid, shape })
      entries += entriesOf(shape)
      if (entries > maxEntries) throw this.tooLarge()
    }
    return { kind: 'dir', links, entries }
  }

  private tooLarge (): TooLargeError {
    return new TooLargeError(`the CAR's trees hold more than ${this.options.maxEntries} entries (a directory repeated under itself?): nothing was imported`)
  }
}

/** Entries a shape counts for: a directory its own and all under it; a file one; what is unbound one (it is reported). */
function entriesOf (shape: Shape): number {
  return shape.kind === 'dir' ? shape.entries : 1
}
