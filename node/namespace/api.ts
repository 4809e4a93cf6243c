/**
 * The namespace's contract, types only: what a path points at
 * ({@link FileRecord}, {@link Entry}), the {@link Namespace} interface every
 * implementation and user programs against, and the small types the
 * implementation files share ({@link WallClock}).
 *
 * Why a file of its own: the implementation files (replica.ts and the
 * modules it is built from, tree.ts, pins.ts…) need these types, and
 * index.ts re-exports the implementation. Were the types in index.ts, every
 * implementation file would import the index that imports it — a circle.
 * Here they import `./api.js`, which imports no implementation, and index.ts
 * re-exports this file.
 *
 * @module
 */
import type { ColdCopy } from '../../protocol/namespace.js'
import type { VectorClock } from './clock.js'

/** Time source (virtual in simulations). */
export interface WallClock { now: () => number }

/**
 * A file's durability policy, part of its record: every node knows every
 * policy, and changing it is an ordinary write (see docs/namespace.md, "Pins").
 */
export interface FilePin {
  /** Canonical policy text: `none`, `ec:K+M` or `replicas:N` ({@link isPinPolicy}). */
  policy: string
  /** CID (string form) of the file's stripe manifest (dag-cbor, sha2-256); only with an `ec:` policy. */
  manifest?: string
  /** A verified copy in the S3 cold tier (docs/tier.md); with policy `none`, the only copy kept. */
  cold?: StoredColdCopy
}

/** A cold copy as stored (the wire form's index CID as a string). */
export type StoredColdCopy = Omit<ColdCopy, 'indexCid'> & { indexCid: string }

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
  /** The file's durability policy; absent when it has none (a put without a pin leaves none). */
  pin?: FilePin
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
  /** Set on a conflict copy: the path whose concurrent, losing version this is. */
  conflictOf?: string
}

/** A conflict copy: a losing version of `path`, visible at `copy`. */
export interface ConflictInfo {
  /** The path written concurrently. */
  path: string
  /** Where the losing version is visible (`name.conflict-<peer>-<time>.ext`). */
  copy: string
  /** Peer id of the losing version's author. */
  author: string
  /** When the losing version was written (ms). */
  time: number
  cid: string
  size: number
}

/** What a put replaces. */
export interface PutOptions {
  /**
   * The CID of the version the writer started from. A different version
   * visible at the path (written meanwhile, by another node or here) is not
   * replaced: it stays beside the new one, and the two are a conflict (one
   * shown at the path, the other as a conflict copy). `null`: the writer
   * made a new file, so whatever is there now stays. A version with the same
   * content as the new one is replaced all the same. Absent: the visible
   * version is replaced, whatever it is.
   */
  replacing?: string | null
  /**
   * The write began when its path was no directory and its parents were
   * directories (a file written through the mount): a directory put at the
   * path, or a file at a parent, by another write meanwhile does not fail
   * it. Both are kept, as for concurrent writes (docs/namespace.md, "A file
   * and a directory at one path"): the directory shown, this file as its
   * conflict copy. Absent: such a put fails with {@link IsADirectoryError}
   * or {@link NotADirectoryError}, as a put onto them always does.
   */
  besideTypeChanges?: boolean
  /**
   * The version this put changes in place (the same bytes with another pin,
   * mode or time), as read from the namespace a moment before: the put is
   * made only while this replica still shows it at the path, with that CID,
   * mode, time and pin. When the path shows none (removed, moved) or it has
   * changed since the read (another version, another pin), nothing is
   * written and the put fails with `VersionGoneError`: a change that lands
   * after a removal would bring the removed file back, and one that lands
   * after another change of the pin would undo it. Absent: the put is made
   * whatever the path shows now.
   */
  rewriting?: RewrittenVersion
}

/** What identifies the version a put changes in place ({@link PutOptions.rewriting}): a file's entry as read will do. */
export type RewrittenVersion = Pick<FileRecord, 'cid' | 'mode' | 'mtime' | 'pin'>

/** Options for {@link Namespace.mkdir}. */
export interface MkdirOptions {
  /** Create missing parents and accept an existing directory. @default false */
  parents?: boolean
  mode?: number
  mtime?: number
  /**
   * A file shown at the path does not stop the mkdir: the directory is made
   * and the file kept beside it, its conflict copy (the directory wins, as
   * when the two are written at once). For a file the caller never saw
   * (`Files.mkdir`'s `startedAt`). @default false
   */
  besideFile?: boolean
  /**
   * With `parents`: a file shown at a parent does not stop the mkdir either;
   * the parent directory is made and the file kept beside it, as
   * {@link PutOptions.besideTypeChanges} does for a put. For files the
   * caller never saw (`Files.mkdir`'s `startedAt`). @default false
   */
  besideParentFiles?: boolean
}

/** Options for {@link Namespace.remove}. */
/** What {@link Namespace.remove} left. */
export interface RemoveResult {
  /** Paths whose versions arrived from another replica after `seen`: kept, the path itself first when it is one. */
  kept: string[]
}

export interface RemoveOptions {
  /** Remove a non-empty directory with everything below it. @default false */
  recursive?: boolean
  /**
   * The namespace as the caller saw it (`seenAt` of its command's start):
   * only versions this clock covers, and this replica's own, are removed.
   * A version that arrived from another replica after it — a file added
   * into the folder while the command started — is a write concurrent with
   * the removal, and kept (docs/namespace.md). Absent: every version the
   * path and what is below it show.
   */
  seen?: Readonly<VectorClock>
}

/**
 * Path → record, with directory semantics. Every mutation is durable
 * (fsynced) when its promise resolves and atomic (all or nothing).
 */
export interface Namespace {
  /**
   * Open the store; a store written by an older build is upgraded first
   * (docs/namespace.md, "On-disk format and upgrades").
   * @throws {NamespaceFormatError} when it cannot be upgraded without losing data
   */
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
  /**
   * Every visible file entry, conflict copies included (pin listing, garbage
   * collection). Grouped by directory, in no other promised order.
   */
  files: () => AsyncGenerator<Entry>
  /**
   * Create or replace the file at `path` (replacing the version this node
   * sees there, pin included: the record's `pin`, or none); missing parents
   * are created. @throws {IsADirectoryError} {NotADirectoryError} {InvalidArgumentError}
   */
  putFile: (path: string, record: Omit<FileRecord, 'type'>, options?: PutOptions) => Promise<Entry>
  /**
   * {@link putFile} for several files as one write: one log entry (split
   * only past an entry's limits) and one fsync; all or nothing. Returns the
   * entries in the order given. @throws {IsADirectoryError} {NotADirectoryError} {InvalidArgumentError}
   */
  putFiles: (files: ReadonlyArray<{ path: string, record: Omit<FileRecord, 'type'> } & Omit<PutOptions, 'rewriting'>>) => Promise<Entry[]>
  /** @throws {AlreadyExistsError} {NotFoundError} {NotADirectoryError} */
  mkdir: (path: string, options?: MkdirOptions) => Promise<Entry>
  /**
   * Change a directory's mode and time (what `chmod` and `touch` of a
   * directory through a mount do): one mkdir at `path` replacing the
   * versions of it this replica sees; its children stay.
   *
   * @throws {NotFoundError} {NotADirectoryError} {InvalidArgumentError} (the root, a bad mtime)
   */
  setDirAttrs: (path: string, attrs: { mode: number, mtime: number }) => Promise<Entry>
  /** Move a file or directory. When `to` is an existing directory, moves into it. @throws {AlreadyExistsError} {NotFoundError} {InvalidArgumentError} */
  move: (from: string, to: string) => Promise<Entry>
  /**
   * Remove a path (and, `recursive`, what is below it). Resolves with the
   * paths `options.seen` kept (empty without it).
   *
   * @throws {NotFoundError} {DirectoryNotEmptyError} {InvalidArgumentError}
   */
  remove: (path: string, options?: RemoveOptions) => Promise<RemoveResult>
  /** Every conflict copy. */
  conflicts: () => Promise<ConflictInfo[]>
  /**
   * What this replica has applied, as it is now, in a record that never
   * changes (shared by the callers until another replica's entry arrives:
   * one copy per arrival, not per call). A writer that notes it when its
   * work begins asks {@link arrivedSince} at the end what it never saw.
   */
  seen: () => Readonly<VectorClock>
  /**
   * What {@link seen} was at `time` (ms on this node's wall clock), as far
   * as other replicas' entries go: the clock a writer who began then had
   * seen (a `shoal add` asks it of the moment its command started).
   * Undefined for a time more than a minute ago, or before the replica
   * opened. A time still to come is now.
   */
  seenAt: (time: number) => Readonly<VectorClock> | undefined
  /**
   * Whether the file version or directory visible at `path` was written by
   * another replica and reached this one after it had applied `clock`: one
   * that a writer who began at `clock` never saw (a save by rename asks it
   * of its target, docs/fuse.md; `add DIR --to` of the folder it would add
   * into). False when the path shows nothing, a directory present only for
   * what lives below it, or a version this replica wrote or had by then.
   */
  arrivedSince: (path: string, clock: Readonly<VectorClock>) => Promise<boolean>
}
