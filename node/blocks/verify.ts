import * as crypto from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { InvalidBlockError, InvalidArgumentError } from '../errors.js'
import { nativeHash } from './native-hash.js'

/** Multihash code of sha2-256, the only hash Shoal writes. */
export const SHA2_256 = 0x12
/** Multihash code of the identity "hash" (the digest is the data). */
export const IDENTITY = 0x00
/** Multicodec of raw blocks. */
const RAW_CODE = 0x55
/** Multicodec of dag-cbor blocks. */
const DAG_CBOR_CODE = 0x71

/**
 * Hash `bytes` with sha2-256 (node:crypto, synchronous: ~1.7 GB/s per core,
 * cheaper than a promise per block).
 */
export function sha256 (bytes: Uint8Array): Uint8Array {
  return oneShot !== undefined ? oneShot('sha256', bytes, 'buffer') : crypto.createHash('sha256').update(bytes).digest()
}

/**
 * Node's one-shot `crypto.hash` (Node ≥ 20.12; `engines` allows 20.10, which
 * lacks it): no `Hash` stream object per call. For the small blocks hashed
 * one by one (a namespace entry, ~400 bytes: 0.74 against 1.1 µs, and what
 * it allocates) it is cheaper; for 1 MiB leaves the same.
 */
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash

/** The CIDv1 (raw codec, sha2-256) of a raw block. */
export function rawCID (bytes: Uint8Array): CID {
  return rawCIDOfDigest(sha256(bytes))
}

/** The CIDv1 (raw codec, sha2-256) of a block whose sha-256 `digest` is known already (computed elsewhere, e.g. on a worker). */
export function rawCIDOfDigest (digest: Uint8Array): CID {
  return sha256CIDv1(RAW_CODE, digest)
}

/** The CIDv1 (dag-cbor, sha2-256) of a dag-cbor block. */
export function cborCID (bytes: Uint8Array): CID {
  return sha256CIDv1(DAG_CBOR_CODE, sha256(bytes))
}

/**
 * The CIDv1 of `codec` over a sha2-256 `digest`, in one array: its
 * multihash and digest are views of the CID's bytes, as `CID.decode` makes
 * them. `CID.createV1(…, Digest.create(…))` keeps three arrays (the hash's
 * output, the multihash, the CID's bytes), each an object and a buffer of
 * its own: a history pull holds a page of entries' CIDs while the page is
 * applied, long enough for the young-generation collector to copy them, and
 * these CIDs were the largest part of an entry held (~0.9 of ~3 KB;
 * docs/benchmarks.md, "History bootstrap: what a page holds, and the young
 * generation's memory"). `codec` is one of this module's, each a one-byte
 * varint, as is the size of a sha2-256 digest.
 */
function sha256CIDv1 (codec: typeof RAW_CODE | typeof DAG_CBOR_CODE, digest: Uint8Array): CID {
  // a digest of 128 bytes or more has a size of two varint bytes: not a sha2-256 one, left to multiformats
  if (digest.byteLength >= 0x80) return CID.createV1(codec, Digest.create(SHA2_256, digest))
  const cid = new Uint8Array(4 + digest.byteLength)
  cid.set([1, codec, SHA2_256, digest.byteLength])
  cid.set(digest, 4)
  const multihash = cid.subarray(2)
  return new CID(1, codec, new Digest.Digest(SHA2_256, digest.byteLength, multihash.subarray(2), multihash), cid)
}

/** Throw unless `cid` uses a hash function this store can check. */
export function assertSupportedHash (cid: CID): void {
  const code = cid.multihash.code
  if (code !== SHA2_256 && code !== IDENTITY) {
    throw new InvalidArgumentError(`unsupported multihash 0x${code.toString(16)} in ${cid.toString()}: only sha2-256 is accepted`)
  }
}

/** True when `bytes` hash to the digest carried by `cid`. */
export function matchesCID (cid: CID, bytes: Uint8Array): boolean {
  const { code, digest } = cid.multihash
  if (code === IDENTITY) return Buffer.compare(digest, bytes) === 0
  if (code !== SHA2_256) return false
  return Buffer.compare(sha256(bytes), digest) === 0
}

/**
 * Blocks of at least this many bytes are hashed by {@link matchesCIDOffThread}
 * on libuv's thread pool; smaller ones on the calling thread, where a hash
 * costs less than the job's hand-off (~20 µs).
 */
export const OFF_THREAD_HASH_MIN = 64 * 1024

/**
 * {@link matchesCID} with the hash computed off the event loop, for blocks
 * that arrive from peers (a fetched leaf or shard, a pushed one).
 *
 * Why: a remote read hashes every byte it receives. On the event loop that
 * hash is a fixed share of the receiving daemon's one JavaScript thread —
 * on a core without the SHA extensions (~0.23 GB/s) about a quarter of a
 * remote `cat`'s main-thread time (docs/benchmarks.md, "Received blocks
 * hashed off the event loop") — while the other core waits on it.
 *
 * How: the sha-256 addon ({@link nativeHash}) hashes the bytes where they
 * lie, as a job on libuv's thread pool; without it, WebCrypto's `digest`
 * ({@link webCryptoSha256}) runs such a job after copying the bytes on the
 * calling thread (200–320 CPU-ms of the event loop per 512 MiB, against
 * 30–80 through the addon). Blocks smaller than
 * {@link OFF_THREAD_HASH_MIN}, and identity CIDs, are checked in place. The
 * caller must not change or transfer `bytes` until this settles.
 */
export async function matchesCIDOffThread (cid: CID, bytes: Uint8Array, options: OffThreadOptions = {}): Promise<boolean> {
  const { code, digest } = cid.multihash
  if (code !== SHA2_256 || bytes.byteLength < OFF_THREAD_HASH_MIN) return matchesCID(cid, bytes)
  const sha256OffThread = options.sha256 ?? nativeHash()?.sha256 ?? webCryptoSha256
  return Buffer.compare(await sha256OffThread(bytes), digest) === 0
}

/** Options of {@link matchesCIDOffThread}. */
export interface OffThreadOptions {
  /** How the sha-256 is computed off the event loop. @default the addon's, else {@link webCryptoSha256} */
  sha256?: (bytes: Uint8Array) => Promise<Uint8Array>
}

/** sha-256 through WebCrypto's `digest`: a job on libuv's thread pool, after a copy of the bytes on the calling thread. */
export async function webCryptoSha256 (bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.webcrypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>))
}

/**
 * Check that `bytes` are the block `cid` names.
 *
 * @throws {InvalidBlockError} when they are not
 */
export function verifyBlock (cid: CID, bytes: Uint8Array): void {
  assertSupportedHash(cid)
  if (!matchesCID(cid, bytes)) {
    throw new InvalidBlockError(`block ${cid.toString()} does not match its hash (${bytes.byteLength} bytes): corrupt data`)
  }
}
