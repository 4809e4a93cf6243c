/**
 * The namespace: path → file record, shared by every node of a swarm. The
 * contract ({@link Namespace} and its types) is in api.ts and re-exported
 * here; {@link Replica} implements it as a Merkle-CRDT log with vector
 * clocks and a tree materialized in LevelDB, and {@link NamespaceSync} keeps
 * replicas converged over the network. Implementation files import their
 * types from api.ts, never from here, so nothing imports this file back.
 *
 * @module
 */
import { LevelKV } from './kv.js'
import { Replica, type ReplicaOptions } from './replica.js'
import type { WallClock } from './api.js'
import { peerIdVerifier, type Signer } from './identity.js'
import type { Logger } from '../logger.js'

export { normalizePath, filePath, namesDirectory, parentOf, baseName, joinPath, isWithin } from './paths.js'
export { Replica, InvalidSnapshotError, UntrustedSnapshotError, cborCID } from './replica.js'
export { NamespaceFormatError } from './upgrade.js'
export { NamespaceRecoveringError, markNewStore } from './recovery.js'
export { conflictCopyError, rewriteFile, type FileEntry } from './rewrite.js'
import { markNewStore } from './recovery.js'
export { isPinPolicy } from '../../protocol/namespace.js'
export type {
  Namespace, Entry, FileRecord, DirRecord, NamespaceRecord, FilePin, StoredColdCopy, ConflictInfo, MkdirOptions, PutOptions, RemoveOptions, RemoveResult, RewrittenVersion
} from './api.js'
export type { ReplicaComponents, ReplicaOptions, ReplicaState, ReceiveResult, PullAnswer, WallClock } from './replica.js'
export { LevelKV, MemoryKV } from './kv.js'
export type { KV } from './kv.js'
export type { VectorClock } from './clock.js'
export type { ForgetResult } from './members.js'
export { signerFromKey, peerIdVerifier } from './identity.js'
export type { Signer, Verifier } from './identity.js'
export { WriterTrust, TRUST_EVERYONE, type TrustPolicy, type WritersMode, type WriterTrustInit } from './trust.js'
import type { TrustPolicy } from './trust.js'

/** Where to keep the namespace and who writes to it. */
export interface NamespaceInit {
  /** Directory of its LevelDB database. */
  path: string
  /** Signs this node's entries. */
  signer: Signer
  logger: Logger
  clock?: WallClock
  /** Whose entries and snapshots are applied. @default every author */
  trust?: TrustPolicy
  options?: ReplicaOptions
}

/**
 * Mark the (new, empty) namespace store at `path` as created with its
 * identity: the repo's `init` calls it, so a brand-new node writes at once,
 * while a store that lost its data later recovers its own past writes first
 * (docs/namespace.md, "A node that lost its store").
 */
export async function markNewNamespace (path: string): Promise<void> {
  await markNewStore(new LevelKV(path), Date.now())
}

/** Create (not yet open) this node's replica of the namespace in LevelDB. */
export function createNamespace (init: NamespaceInit): Replica {
  return new Replica({
    kv: new LevelKV(init.path),
    signer: init.signer,
    verifier: peerIdVerifier(),
    clock: init.clock ?? { now: () => Date.now() },
    logger: init.logger,
    trust: init.trust
  }, init.options)
}
