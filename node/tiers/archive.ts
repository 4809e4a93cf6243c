/**
 * Pushing a file's DAG to the cold tier: a CARv1 object plus a block-offset
 * index object, streamed, then verified before anything is reported.
 *
 * @module
 */
import { createHash, randomInt } from 'node:crypto'
import { CustomProgressEvent } from 'progress-events'
import { exportCar } from '../car/index.js'
import { IDENTITY } from '../blocks/verify.js'
import { InvalidArgumentError } from '../errors.js'
import { ColdReader, assertSameBucket, corruptObject } from './cold-reader.js'
import { CarSectionScanner, encodeColdIndex, type ColdIndexEntry } from './format.js'
import { COLD_LOCATION_VERSION, coldObjectNames, type ColdLocation } from './location.js'
import { DEFAULT_PART_SIZE, MAX_PARTS, type TierClient } from './s3-client.js'
import type { BlockGetter } from '../reads/api.js'
import type { CID } from 'multiformats/cid'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

const MiB = 1024 * 1024

/**
 * How a cold copy is checked:
 * - `sample`: both objects' sizes (HEAD), the index read back and checked
 *   against its CID, and a few blocks (the first, the last, some at random)
 *   read back through ranged GETs and hash-checked;
 * - `full`: sizes and index as above, then the whole CAR read back and its
 *   sha2-256 compared with the one the index records.
 */
export type VerifyMode = 'sample' | 'full'

/** Events of {@link pushCold}. */
export type PushColdProgressEvents =
  ProgressEvent<'shoal:tier:push:bytes', { bytes: number }> |
  ProgressEvent<'shoal:tier:push:uploaded', { carSize: number, indexSize: number }> |
  ProgressEvent<'shoal:tier:push:verified', ColdVerification>

/** Options of {@link pushCold}. */
export interface PushColdOptions extends ProgressOptions<PushColdProgressEvents> {
  signal?: AbortSignal
  /**
   * The file's size in bytes, when known: multipart parts are made large
   * enough for S3's 10,000-part limit (else 8 MiB parts: up to ~70 GiB).
   */
  sizeHint?: number
  /** How the copy is checked before it is reported. @default 'sample' */
  verify?: VerifyMode
  /** Blocks read back by a `sample` check. @default 8 */
  samples?: number
}

/** What a verification read and found (everything matched, or it threw). */
export interface ColdVerification {
  mode: VerifyMode
  /** Size of the CAR object, as HEAD reports it. */
  carSize: number
  /** Size of the index object, as HEAD reports it. */
  indexSize: number
  /** Blocks read back and hash-checked (`full`: all, through the CAR's digest). */
  blocksChecked: number
  /** Bytes downloaded to verify. */
  bytesRead: number
}

/** What {@link pushCold} made. */
export interface PushColdResult {
  /** Where the copy is: plain data, for the namespace. */
  location: ColdLocation
  verification: ColdVerification
}

/** Options of {@link verifyCold}. */
export interface VerifyColdOptions {
  signal?: AbortSignal
  /** @default 'sample' */
  mode?: VerifyMode
  /** Blocks read back in `sample` mode. @default 8 */
  samples?: number
}

/** Part size that keeps a CAR of about `sizeHint` bytes under S3's part limit. */
function partSizeFor (sizeHint: number | undefined): number | undefined {
  if (sizeHint === undefined || !Number.isFinite(sizeHint) || sizeHint <= 0) return undefined
  // framing and internal nodes add well under 5 %; leave 10 % of the parts spare
  const needed = Math.ceil((sizeHint * 1.05 + MiB) / (MAX_PARTS * 0.9) / MiB) * MiB
  return needed > DEFAULT_PART_SIZE ? needed : undefined
}

/** Entry numbers to read back: the first, the last and `count - 2` others at random. */
function samplePicks (blocks: number, count: number): number[] {
  const picks = new Set<number>([0, blocks - 1])
  const wanted = Math.min(blocks, Math.max(count, 2))
  for (let tries = 0; picks.size < wanted && tries < wanted * 8; tries++) picks.add(randomInt(blocks))
  return [...picks].sort((a, b) => a - b)
}

/**
 * Check a cold copy against its location: see {@link VerifyMode}.
 *
 * @throws {TierCorruptObjectError} when an object is truncated, replaced or altered
 * @throws {TierObjectNotFoundError} when an object is missing
 * @throws {TierError} subclasses for any other S3 failure
 */
export async function verifyCold (client: TierClient, location: ColdLocation, options: VerifyColdOptions = {}): Promise<ColdVerification> {
  const { signal } = options
  const mode = options.mode ?? 'sample'
  assertSameBucket(client, location)
  const car = await client.head(location.carKey, signal)
  if (car.size !== location.carSize) throw corruptObject(client, location.carKey, `is ${car.size} bytes, not the ${location.carSize} written (truncated or replaced)`)
  const idx = await client.head(location.indexKey, signal)
  if (idx.size !== location.indexSize) throw corruptObject(client, location.indexKey, `is ${idx.size} bytes, not the ${location.indexSize} written (truncated or replaced)`)
  // a small cache: samples are scattered, nothing is worth keeping
  const reader = new ColdReader(client, location, { cacheBytes: 0, windowBytes: 4 * MiB })
  try {
    const index = await reader.load(signal)
    if (mode === 'full') {
      const { body } = await client.getObject(location.carKey, signal)
      const hash = createHash('sha256')
      let size = 0
      for await (const chunk of body) {
        hash.update(chunk)
        size += chunk.byteLength
      }
      if (size !== location.carSize) throw corruptObject(client, location.carKey, `was read back as ${size} bytes, not ${location.carSize} (truncated)`)
      if (Buffer.compare(hash.digest(), index.carSha256) !== 0) throw corruptObject(client, location.carKey, 'does not match the digest its index records (altered)')
      return { mode, carSize: car.size, indexSize: idx.size, blocksChecked: index.entries.length, bytesRead: size + location.indexSize }
    }
    const picks = samplePicks(index.entries.length, options.samples ?? 8)
    await Promise.all(picks.map(async i => await reader.getBytes(index.entries[i].cid, { signal })))
    const stats = reader.stats
    return { mode, carSize: car.size, indexSize: idx.size, blocksChecked: picks.length, bytesRead: stats.bytesFetched + stats.indexBytes }
  } finally {
    reader.close()
  }
}

/**
 * Push the DAG under `root` to the tier as two objects under the prefix,
 * named by the root: `<root>.car`, a CARv1 (depth-first, each block once,
 * as `exportCar` writes it) and `<root>.car.idx`, the dag-cbor index of where
 * each block's bytes lie in it.
 *
 * The CAR is streamed from `getter` into a multipart upload (one PutObject
 * when it fits one part): memory holds the parts in flight, never the file.
 * The index is built as the CAR goes by. Then the copy is verified
 * ({@link verifyCold}); only a verified copy is returned. Pushing the same
 * root again writes the same bytes to the same keys.
 *
 * Nothing is deleted on failure: the objects may be the good copy another
 * node pushed of the same root.
 *
 * @throws {NotFoundError} when a block of the DAG is not in `getter`
 * @throws {TierCorruptObjectError} when the copy read back is not what was written
 * @throws {TierError} subclasses for S3 failures; {@link AbortedError} when `signal` fires
 */
export async function pushCold (client: TierClient, getter: BlockGetter, root: CID, options: PushColdOptions = {}): Promise<PushColdResult> {
  const { signal, onProgress } = options
  if (root.multihash.code === IDENTITY) throw new InvalidArgumentError(`${root.toString()} is an identity CID: its data is in the CID, there is nothing to push`)
  await client.checkBucket(signal)
  const names = coldObjectNames(root)
  const carKey = client.keyFor(names.car)
  const indexKey = client.keyFor(names.index)

  const entries: ColdIndexEntry[] = []
  const scanner = new CarSectionScanner(entry => entries.push(entry), root)
  const hash = createHash('sha256')
  // exportCar only reads blocks through getBytes
  const car = exportCar(getter, root, { signal })
  async function * tapped (): AsyncGenerator<Uint8Array> {
    for await (const chunk of car) {
      scanner.push(chunk)
      hash.update(chunk)
      onProgress?.(new CustomProgressEvent('shoal:tier:push:bytes', { bytes: scanner.position }))
      yield chunk
    }
    scanner.finish()
  }
  await client.upload(carKey, tapped(), { signal, partSize: partSizeFor(options.sizeHint) })

  const carSize = scanner.position
  const index = encodeColdIndex({ root, carSize, carSha256: hash.digest(), entries })
  await client.putBytes(indexKey, index.bytes, signal)
  onProgress?.(new CustomProgressEvent('shoal:tier:push:uploaded', { carSize, indexSize: index.bytes.byteLength }))

  const location: ColdLocation = {
    v: COLD_LOCATION_VERSION,
    root: root.toString(),
    bucket: client.bucket,
    carKey,
    carSize,
    indexKey,
    indexSize: index.bytes.byteLength,
    indexCid: index.cid.toString(),
    blocks: entries.length,
    blockBytes: entries.reduce((sum, entry) => sum + entry.length, 0)
  }
  const verification = await verifyCold(client, location, { signal, mode: options.verify, samples: options.samples })
  onProgress?.(new CustomProgressEvent('shoal:tier:push:verified', verification))
  return { location, verification }
}
