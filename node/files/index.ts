/**
 * The user-facing file operations: a namespace path or a CID in, records and
 * byte streams out. Composes the namespace (where things are) with content
 * (what the bytes are).
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { parseTarget } from '../../protocol/target.js'
import { IsADirectoryError } from '../errors.js'
import { buildDirectory, entrySize, importContent, readContent, resolveEntry, type ChunkerSpec, type ImportProgressEvents } from '../content/index.js'
import { normalizePath } from '../namespace/index.js'
import type { BlockStore } from '../blocks/index.js'
import type { Entry, Namespace } from '../namespace/index.js'
import type { Logger } from '../logger.js'
import type { BlockExchange } from '../exchange/index.js'
import type { BlockGetter } from '../content/index.js'
import type { ProgressOptions } from 'progress-events'

/** What the files service is built from. */
export interface FilesComponents {
  blockstore: BlockStore
  namespace: Namespace
  logger: Logger
  /** Fetches content this node does not hold from the swarm, and announces what it adds. */
  exchange?: Pick<BlockExchange, 'session' | 'announce'>
}

/** A file or directory as the API and CLI show it. */
export interface FileInfo {
  /** Namespace path, absent for a bare CID. */
  path?: string
  name: string
  type: 'file' | 'dir'
  /** Content CID (for a namespace directory: its UnixFS directory DAG). */
  cid: string
  size: number
  mode?: number
  mtime?: number
  /** A conflict copy: the path it lost to. */
  conflictOf?: string
}

/** Options for {@link Files.add}. */
export interface AddOptions extends ProgressOptions<ImportProgressEvents> {
  chunker: ChunkerSpec
  mode?: number
  mtime?: number
  signal?: AbortSignal
}

/** Range options for {@link Files.cat}. */
export interface CatOptions { offset?: number, length?: number, signal?: AbortSignal }


/** File operations over one node's namespace and block store. */
export class Files {
  private readonly components: FilesComponents

  constructor (components: FilesComponents) {
    this.components = components
  }

  /** Where to read the DAG under `root` from: the local store, or a swarm session that fetches what is missing. */
  private getter (root: CID, signal?: AbortSignal): BlockGetter {
    return this.components.exchange?.session(root, { signal }) ?? this.components.blockstore
  }

  /** Describe a namespace entry; a directory gets the CID of its UnixFS DAG. */
  private async infoOf (entry: Entry): Promise<FileInfo> {
    if (entry.type === 'file') {
      const info: FileInfo = { path: entry.path, name: entry.name, type: 'file', cid: entry.cid, size: entry.size, mode: entry.mode, mtime: entry.mtime }
      if (entry.conflictOf !== undefined) info.conflictOf = entry.conflictOf
      return info
    }
    const cid = await buildDirectory(this.components, entry.path)
    return { path: entry.path, name: entry.name, type: 'dir', cid: cid.toString(), size: 0, mode: entry.mode, mtime: entry.mtime }
  }

  /**
   * Import a byte stream and bind it to `path` (missing parents are created,
   * an existing file is replaced). Durable when it resolves.
   */
  async add (path: string, source: AsyncIterable<Uint8Array>, options: AddOptions): Promise<FileInfo> {
    const target = normalizePath(path)
    const existing = await this.components.namespace.lookup(target)
    if (existing?.type === 'dir') throw new IsADirectoryError(`is a directory: ${target}`)
    const { cid, size } = await importContent(this.components.blockstore, source, options)
    const entry = await this.components.namespace.putFile(target, {
      cid: cid.toString(),
      size,
      mode: options.mode ?? 0o644,
      mtime: options.mtime ?? Date.now()
    })
    this.components.logger.info({ path: target, cid: cid.toString(), size }, 'added')
    void this.components.exchange?.announce(cid)
    return await this.infoOf(entry)
  }

  /** The CID a `PATH|CID` argument stands for (directories get their DAG built). */
  async cidOf (arg: string): Promise<CID> {
    const target = parseTarget(arg)
    if (target.kind === 'cid') return target.cid
    const entry = await this.components.namespace.stat(target.path)
    if (entry.type === 'file') return CID.parse(entry.cid)
    return await buildDirectory(this.components, entry.path)
  }

  /** Stream a file's bytes (or a range of them). */
  async * cat (arg: string, options: CatOptions = {}): AsyncGenerator<Uint8Array> {
    const target = parseTarget(arg)
    let cid: CID
    if (target.kind === 'path') {
      const entry = await this.components.namespace.stat(target.path)
      if (entry.type === 'dir') throw new IsADirectoryError(`is a directory: ${entry.path}`)
      cid = CID.parse(entry.cid)
    } else {
      cid = target.cid
    }
    yield * readContent(this.getter(cid, options.signal), cid, options)
  }

  /** Describe a path or CID. */
  async stat (arg: string, signal?: AbortSignal): Promise<FileInfo> {
    const target = parseTarget(arg)
    if (target.kind === 'path') {
      const entry = await this.components.namespace.stat(target.path)
      return await this.infoOf(entry)
    }
    const entry = await resolveEntry(this.getter(target.cid, signal), target.cid, signal)
    return {
      name: target.cid.toString(),
      type: entry.type === 'directory' ? 'dir' : 'file',
      cid: target.cid.toString(),
      size: entrySize(entry)
    }
  }

  /** Children of a directory (a namespace path or a UnixFS directory CID); a file lists as itself. */
  async ls (arg: string, signal?: AbortSignal): Promise<FileInfo[]> {
    const target = parseTarget(arg)
    if (target.kind === 'path') {
      const entry = await this.components.namespace.stat(target.path)
      if (entry.type === 'file') return [await this.infoOf(entry)]
      const children = await this.components.namespace.list(entry.path)
      const out: FileInfo[] = []
      for (const child of children) {
        out.push(await this.infoOf(child))
      }
      return out
    }
    const getter = this.getter(target.cid, signal)
    const entry = await resolveEntry(getter, target.cid, signal)
    if (entry.type !== 'directory') return [{ name: target.cid.toString(), type: 'file', cid: target.cid.toString(), size: entrySize(entry) }]
    const out: FileInfo[] = []
    for await (const link of entry.entries({ signal })) {
      const child = await resolveEntry(getter, link.cid, signal)
      out.push({ name: link.name, type: child.type === 'directory' ? 'dir' : 'file', cid: link.cid.toString(), size: entrySize(child) })
    }
    return out
  }

  /** Create a directory. */
  async mkdir (path: string, options: { parents?: boolean } = {}): Promise<FileInfo> {
    return await this.infoOf(await this.components.namespace.mkdir(path, options))
  }

  /** Move or rename. */
  async mv (from: string, to: string): Promise<FileInfo> {
    const entry = await this.components.namespace.move(from, to)
    return await this.infoOf(entry)
  }

  /** Remove a path (the blocks stay until garbage collection). */
  async rm (path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await this.components.namespace.remove(path, options)
  }
}

