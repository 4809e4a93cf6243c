/**
 * The writes a namespace simulation performs: a small fixed set of paths
 * (so that concurrent writes collide often), the four mutations of the
 * namespace, and a unique content CID per written file so that every
 * acknowledged write can be traced to the end of a run.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import type { Prng } from './prng.js'

/** Multicodec of raw leaves. */
const RAW = 0x55
/** Multihash code of sha2-256. */
const SHA2_256 = 0x12

/** The paths random operations touch: files, directories, nested names, and names that are both. */
export const SIM_PATHS: readonly string[] = ['/a', '/b.txt', '/d', '/d/x', '/d/y.txt', '/d/e', '/d/e/z.txt', '/f']

/** One mutation of the namespace. */
export type SimOp =
  | { kind: 'put', path: string }
  | { kind: 'mkdir', path: string }
  | { kind: 'move', from: string, to: string }
  | { kind: 'remove', path: string, recursive: boolean }

/** Errors a valid-looking operation may meet on a replica's current view; anything else is a bug. */
export const EXPECTED_ERRORS: ReadonlySet<string> = new Set([
  'AlreadyExistsError', 'NotFoundError', 'NotADirectoryError', 'IsADirectoryError', 'DirectoryNotEmptyError', 'InvalidArgumentError',
  // a move of a path onto itself (mv A A) is refused, as POSIX mv refuses it
  'SameFileError',
  // a node recovering its own past writes that no peer answers (isolated): the write is refused, not acknowledged
  'NamespaceRecoveringError'
])

/** The CID of write number `n` of a run: sha2-256 of its label, raw codec. */
export function writeCID (n: number): CID {
  const digest = createHash('sha256').update(`shoal-sim-write-${n}`).digest()
  return CID.createV1(RAW, Digest.create(SHA2_256, new Uint8Array(digest)))
}

/** A random operation over {@link SIM_PATHS} (puts weigh most). */
export function randomOp (rng: Prng, paths: readonly string[] = SIM_PATHS): SimOp {
  const r = rng.next()
  if (r < 0.5) return { kind: 'put', path: rng.pick(paths) }
  if (r < 0.65) return { kind: 'mkdir', path: rng.pick(paths) }
  if (r < 0.8) return { kind: 'move', from: rng.pick(paths), to: rng.pick(paths) }
  return { kind: 'remove', path: rng.pick(paths), recursive: rng.chance(0.5) }
}

/** A one-line form of an operation (traces, failure reports). */
export function showOp (op: SimOp): string {
  switch (op.kind) {
    case 'put': return `put ${op.path}`
    case 'mkdir': return `mkdir ${op.path}`
    case 'move': return `mv ${op.from} ${op.to}`
    case 'remove': return `rm${op.recursive ? ' -r' : ''} ${op.path}`
  }
}
