/**
 * The namespace: path → file record. This module states the contract; the
 * single-node implementation keeps it in LevelDB. The Merkle-CRDT log of the
 * shared namespace becomes its source of truth later, behind the same
 * interface.
 *
 * @module
 */
import { LevelNamespace } from './level-namespace.js'

export { normalizePath, parentOf, baseName, joinPath, isWithin } from './paths.js'
export { LevelNamespace }

/** What a file path points at. */
export interface FileRecord {
  type: 'file'
  /** CID (string form) of the UnixFS root of the file's content. */
  cid: string
  /** File size in bytes. */
  size: number
  /** POSIX permission bits. */
  mode: number
  /** Modification time, ms since the epoch. */
  mtime: number
}

/** A directory. Its content is the set of paths below it. */
export interface DirRecord {
  type: 'dir'
  mode: number
  mtime: number
}

/** A record at a path. */
export type NamespaceRecord = FileRecord | DirRecord

/** A record with where it lives. */
export type Entry = NamespaceRecord & {
  /** Normalised absolute path. */
  path: string
  /** Last path segment (`''` for the root). */
  name: string
}

/** Options for {@link Namespace.mkdir}. */
export interface MkdirOptions {
  /** Create missing parents and accept an existing directory. @default false */
  parents?: boolean
  mode?: number
  mtime?: number
}

/** Options for {@link Namespace.remove}. */
export interface RemoveOptions {
  /** Remove a non-empty directory with everything below it. @default false */
  recursive?: boolean
}

/**
 * Path → record, with directory semantics. Every mutation is durable
 * (fsynced) when its promise resolves and atomic (all or nothing).
 */
export interface Namespace {
  open: () => Promise<void>
  close: () => Promise<void>
  /** @throws {NotFoundError} */
  stat: (path: string) => Promise<Entry>
  /** The entry at `path`, or undefined. */
  lookup: (path: string) => Promise<Entry | undefined>
  /** Direct children of a directory, sorted by name. @throws {NotFoundError} {NotADirectoryError} */
  list: (path: string) => Promise<Entry[]>
  /** Every entry strictly below a directory, parents before children. */
  walk: (path: string) => AsyncGenerator<Entry>
  /** Create or replace the file at `path`; missing parents are created. @throws {IsADirectoryError} {NotADirectoryError} */
  putFile: (path: string, record: Omit<FileRecord, 'type'>) => Promise<Entry>
  /** @throws {AlreadyExistsError} {NotFoundError} {NotADirectoryError} */
  mkdir: (path: string, options?: MkdirOptions) => Promise<Entry>
  /** Move a file or directory. When `to` is an existing directory, moves into it. @throws {AlreadyExistsError} {NotFoundError} {InvalidArgumentError} */
  move: (from: string, to: string) => Promise<Entry>
  /** @throws {NotFoundError} {DirectoryNotEmptyError} {InvalidArgumentError} */
  remove: (path: string, options?: RemoveOptions) => Promise<void>
}

/** Where to keep the namespace. */
export interface NamespaceInit {
  /** Directory of its LevelDB database. */
  path: string
}

/** Create (not yet open) the single-node namespace. */
export function createNamespace (init: NamespaceInit): Namespace {
  return new LevelNamespace(init)
}
