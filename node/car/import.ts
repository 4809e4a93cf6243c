import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { asyncIterableReader, limitReader, readBlockHead, readHeader } from '@ipld/car/decoder'
import { createBlockStore } from '../blocks/index.js'
import { IDENTITY, SHA2_256, matchesCIDOffThread } from '../blocks/verify.js'
import { AbortedError, InvalidCARError, ShoalError, TooLargeError } from '../errors.js'
import { linksOf, nodeKey } from './links.js'
import { UnixFSCheck } from './unixfs-check.js'
import type { BlockStore } from '../blocks/index.js'
import type { BlockGetter } from '../reads/api.js'
import type { BytesReader } from '@ipld/car/decoder'
import type { CID } from 'multiformats/cid'

const KiB = 1024
const MiB = 1024 * KiB

/** Default largest block accepted in a CAR. */
export const DEFAULT_MAX_BLOCK_SIZE = 4 * MiB
/** Default largest CAR header (the dag-cbor roots list) accepted. */
export const DEFAULT_MAX_HEADER_SIZE = 1 * MiB

/** What {@link importCar} needs from the node. */
export interface ImportCarComponents {
  /** The main store the blocks end up in. */
  blockstore: BlockStore
  /** Directory for the temporary staging store (created if missing). */
  tmpDir: string
}

/** Options of {@link importCar}. */
export interface ImportCarOptions {
  /** Stops the import before anything is published; throws `AbortedError`. */
  signal?: AbortSignal
  /** Largest block accepted, in bytes. @default 4 MiB */
  maxBlockSize?: number
  /** Largest CAR header accepted, in bytes. @default 1 MiB */
  maxHeaderSize?: number
  /**
   * Refuse the CAR, before anything is imported, unless every entry of the
   * UnixFS directories under its roots is a file name, given once in its
   * directory: what binding the roots as paths needs. Off, a CAR imported
   * as blocks only may hold any names. @default false
   */
  checkNames?: boolean
}

/** What {@link importCar} did. */
export interface ImportCarResult {
  /** The roots named by the CAR header, in header order. */
  roots: CID[]
  /** Distinct blocks in the CAR (all present in the store afterwards). */
  blocks: number
  /** Total size of those blocks. */
  bytes: number
  /** Of `blocks`, how many were not in the store before and were written. */
  newBlocks: number
  /** Total size of the newly written blocks. */
  newBytes: number
}

interface Limits {
  maxBlockSize: number
  maxHeaderSize: number
  signal?: AbortSignal
}

interface Staged {
  roots: CID[]
  blocks: number
  bytes: number
}

function throwIfAborted (signal?: AbortSignal): void {
  if (signal?.aborted === true) throw new AbortedError('CAR import aborted')
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * A reader that refuses any single read over `limit.max` bytes (so a lying
 * length prefix cannot make the decoder buffer the whole input) and any
 * negative length (which would move the underlying reader backwards).
 */
function guardedReader (reader: BytesReader, limit: { max: number, what: string }): BytesReader {
  return {
    async upTo (length: number) {
      return await reader.upTo(length)
    },
    async exactly (length: number, seek?: boolean) {
      if (length < 0 || !Number.isSafeInteger(length)) {
        throw new InvalidCARError(`invalid CAR: bad length ${length} at byte ${reader.pos}`)
      }
      if (length > limit.max) {
        throw new TooLargeError(`${limit.what} of ${length} bytes exceeds the limit of ${limit.max} bytes`)
      }
      return await reader.exactly(length, seek)
    },
    seek (length: number) {
      reader.seek(length)
    },
    get pos () {
      return reader.pos
    }
  }
}

/** Bytes of a length varint the CAR decoder reads at most: a longer one declares 2^56 bytes or more. */
const MAX_LENGTH_VARINT = 8

/**
 * Refuse a length prefix (of the header, or of a block's section) that
 * declares more than the decoder can read, before it reads it: its first
 * {@link MAX_LENGTH_VARINT} bytes all say "more follows", so the length is
 * 2^56 bytes or more, far over `limit.max` (the decoder's own error would
 * be "Could not decode varint"). A prefix cut short by the end of the input
 * is left to the decoder: a truncated CAR.
 *
 * @throws {TooLargeError}
 */
async function refuseHugeLength (reader: BytesReader, limit: { max: number, what: string }): Promise<void> {
  const next = await reader.upTo(MAX_LENGTH_VARINT)
  if (next.length < MAX_LENGTH_VARINT || next.some(b => (b & 0x80) === 0)) return
  throw new TooLargeError(`${limit.what} at byte ${reader.pos} declares a length of 2^56 bytes or more, over the limit of ${limit.max} bytes`)
}

/**
 * Decode the CAR from `source`, verify every block and write it into
 * `staging`. Decoder errors become `InvalidCARError`; errors thrown by the
 * source itself pass through unchanged.
 */
async function stage (source: AsyncIterable<Uint8Array>, staging: BlockStore, limits: Limits): Promise<Staged> {
  const { signal } = limits
  const iterator = source[Symbol.asyncIterator]()
  let sourceError: unknown
  const chunks: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      async next () {
        try {
          throwIfAborted(signal)
          return await iterator.next()
        } catch (err) {
          sourceError = err
          throw err
        }
      }
    })
  }
  const limit = { max: limits.maxHeaderSize, what: 'CAR header' }
  let reader = guardedReader(asyncIterableReader(chunks), limit)

  const decode = async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step()
    } catch (err) {
      if (err === sourceError || err instanceof ShoalError) throw err
      const msg = messageOf(err)
      // the byte named is where what was being read starts (a header, a section's length, CID or block): a cut CAR ends
      // after it, not there
      const hint = /unexpected end of data/i.test(msg) ? ' (truncated CAR: it ends before what starts there is whole)' : ''
      throw new InvalidCARError(`invalid CAR at byte ${reader.pos}: ${msg}${hint}`, { cause: err })
    }
  }

  try {
    if ((await decode(async () => await reader.upTo(8))).length === 0) {
      throw new InvalidCARError('invalid CAR: empty input')
    }
    await decode(async () => { await refuseHugeLength(reader, limit) })
    const header = await decode(async () => await readHeader(reader))
    if (header.version === 2) {
      // CARv2: only the wrapped CARv1 payload matters, the index is ignored
      reader = limitReader(reader, header.dataSize - (reader.pos - header.dataOffset))
    }
    if (header.roots.length === 0) throw new InvalidCARError('invalid CAR: the header names no roots')

    limit.max = limits.maxBlockSize
    limit.what = 'CAR block'
    let blocks = 0
    let bytes = 0
    while ((await decode(async () => await reader.upTo(8))).length > 0) {
      throwIfAborted(signal)
      await decode(async () => { await refuseHugeLength(reader, limit) })
      const head = await decode(async () => await readBlockHead(reader))
      const { cid, blockLength } = head
      if (blockLength < 0) throw new InvalidCARError(`invalid CAR at byte ${reader.pos}: section of block ${cid.toString()} is shorter than its CID`)
      if (blockLength > limits.maxBlockSize) {
        throw new TooLargeError(`block ${cid.toString()} is ${blockLength} bytes, over the limit of ${limits.maxBlockSize} bytes`)
      }
      const data = await decode(async () => await reader.exactly(blockLength, true))
      if (cid.multihash.code !== SHA2_256) {
        throw new InvalidCARError(`block ${cid.toString()} uses multihash 0x${cid.multihash.code.toString(16)}: only sha2-256 is accepted`)
      }
      if (!await matchesCIDOffThread(cid, data)) {
        throw new InvalidCARError(`block ${cid.toString()} does not match its hash: the CAR is corrupt or was tampered with`)
      }
      if (await staging.has(cid)) continue
      await staging.put(cid, data, { signal })
      blocks++
      bytes += data.byteLength
    }
    return { roots: header.roots, blocks, bytes }
  } finally {
    try {
      await iterator.return?.()
    } catch {}
  }
}

/**
 * Walk the DAG under every root (breadth-first, explicit queue, seen-set),
 * reading each node from the staging store or, failing that, the main store
 * (whose blocks are walked through too: a partial DAG there does not count),
 * and hand each node to `unixfs`, which checks the sizes of file nodes.
 *
 * @throws {InvalidCARError} naming the first block found in neither
 * @throws {InvalidUnixFSError} for a file node whose sizes disagree with its children
 */
async function checkComplete (roots: CID[], staging: BlockStore, main: BlockStore, unixfs: UnixFSCheck, signal?: AbortSignal): Promise<CID[]> {
  const fromMain: CID[] = []
  const seen = new Set<string>()
  const queue: Array<{ cid: CID, parent?: CID }> = roots.map(cid => ({ cid }))
  for (const { cid } of queue) seen.add(nodeKey(cid))
  // a read index instead of shift(): O(1) per step, memory freed in slices
  let head = 0
  while (head < queue.length) {
    throwIfAborted(signal)
    const { cid, parent } = queue[head++]
    if (head >= 4096) {
      queue.splice(0, head)
      head = 0
    }
    const bytes = await readNode(cid, staging, main, signal, fromMain)
    if (bytes === undefined) {
      const what = parent === undefined ? `root ${cid.toString()}` : `block ${cid.toString()} (linked from ${parent.toString()})`
      throw new InvalidCARError(`incomplete DAG: ${what} is neither in the CAR nor in the store`)
    }
    const links = linksOf(cid, bytes)
    unixfs.visit(cid, bytes, links)
    for (const link of links) {
      const key = nodeKey(link)
      if (seen.has(key)) continue
      seen.add(key)
      queue.push({ cid: link, parent: cid })
    }
  }
  return fromMain
}

/** A node's bytes from the CAR, else the main store, else `undefined`. */
async function readNode (cid: CID, staging: BlockStore, main: BlockStore, signal: AbortSignal | undefined, fromMain: CID[]): Promise<Uint8Array | undefined> {
  if (cid.multihash.code === IDENTITY) return cid.multihash.digest
  if (await staging.has(cid)) return await staging.getBytes(cid, { signal })
  try {
    const bytes = await main.getBytes(cid, { signal })
    // the import relies on it: a garbage collection under way keeps it
    main.touch(cid)
    fromMain.push(cid)
    return bytes
  } catch (err) {
    if ((err as Error | undefined)?.name === 'NotFoundError') return undefined
    throw err
  }
}

/**
 * A reader of the blocks a check walked: from `staging`, else from `main`
 * ({@link readNode}); one found in neither was there when the DAG was checked
 * complete and is gone since.
 */
function stagedReader (staging: BlockStore, main: BlockStore, signal?: AbortSignal): BlockGetter {
  return {
    getBytes: async (cid, options) => {
      const bytes = await readNode(cid, staging, main, options?.signal ?? signal, [])
      if (bytes === undefined) throw new InvalidCARError(`incomplete DAG: block ${cid.toString()} is gone from the store (collected meanwhile): nothing was imported`)
      return bytes
    }
  }
}

/**
 * Copy every staged block not already there into the main store, then make
 * them durable with one `commit()`. Not interruptible: once started it runs
 * to the end so an abort cannot leave half a DAG behind.
 */
async function publish (staging: BlockStore, main: BlockStore): Promise<{ newBlocks: number, newBytes: number }> {
  let newBlocks = 0
  let newBytes = 0
  for await (const { cid, bytes } of staging.getAll()) {
    // already here: a garbage collection under way must keep it all the same (told first: `has`
    // then waits for a delete it began before, and answers what is left)
    main.touch(cid)
    if (await main.has(cid)) continue
    let size = 0
    for await (const part of bytes) {
      await main.put(cid, part)
      size += part.byteLength
    }
    newBlocks++
    newBytes += size
  }
  await main.commit()
  return { newBlocks, newBytes }
}

/**
 * Import a CAR (v1, or the v1 payload of a v2) all-or-nothing.
 *
 * The CAR is streamed into a temporary LevelDB store under
 * `components.tmpDir`, each block verified on arrival (sha2-256 only). Then
 * the DAG under every root is checked to be complete: every link must resolve
 * to a block in the CAR or already in the main store, walking through the
 * latter too; every UnixFS file node in it must declare the sizes its
 * children hold (node/car/unixfs-check.ts); with `checkNames`, every entry of
 * its UnixFS directories must be a file name. Only then are the blocks copied
 * into the main store and committed. Blocks of the CAR not reachable from a
 * root are imported too. The staging store is removed on success and on
 * every failure.
 *
 * @throws {InvalidCARError} for a truncated, garbage, tampered, rootless or
 * incomplete CAR, a block not hashed with sha2-256, or (with `checkNames`) a
 * directory entry that is not a file name or is named twice: nothing is imported
 * @throws {InvalidUnixFSError} (an `InvalidCARError`) for a UnixFS file node
 * whose declared sizes disagree with its children, naming it: nothing is imported
 * @throws {TooLargeError} for a block or header over its limit: nothing is imported
 * @throws {AbortedError} when `options.signal` fires before publishing: nothing is imported
 */
export async function importCar (components: ImportCarComponents, source: AsyncIterable<Uint8Array>, options: ImportCarOptions = {}): Promise<ImportCarResult> {
  const staged = await stageCar(components, source, options)
  try {
    return await staged.publish()
  } finally {
    await staged.discard()
  }
}

/** A CAR staged and checked by {@link stageCar}, not yet in the main store. */
export interface StagedCar {
  roots: CID[]
  blocks: number
  bytes: number
  /**
   * The DAG the check walked, as a block reader: each block from the CAR,
   * else from the main store (a CAR may leave out blocks the node holds),
   * those read from the main store reported to its watches as the check's
   * were. For what a caller checks before `publish` (a bound import plans
   * its trees with it, so that refusing one leaves nothing behind); valid
   * until `discard`.
   *
   * @throws {InvalidCARError} for a block in neither (gone from the main store since the check)
   */
  reader: BlockGetter
  /**
   * Copy the blocks into the main store and commit (once). The blocks of the
   * main store the DAG relied on are checked to be there still (a garbage
   * collection may have run since the check) and reported to its watches.
   *
   * @throws {InvalidCARError} when one of them is gone: nothing is published
   */
  publish: () => Promise<ImportCarResult>
  /** Remove the staging store (after `publish`, or instead of it). */
  discard: () => Promise<void>
}

/**
 * The first half of {@link importCar}: stream the CAR into a staging store
 * and check it whole, without touching the main store, so that a caller can
 * publish it under a lock it does not want to hold during an upload.
 * Failures remove the staging store; otherwise `discard` does.
 *
 * @throws what {@link importCar} throws, before anything reaches the main store
 */
export async function stageCar (components: ImportCarComponents, source: AsyncIterable<Uint8Array>, options: ImportCarOptions = {}): Promise<StagedCar> {
  const { signal } = options
  const limits: Limits = {
    maxBlockSize: options.maxBlockSize ?? DEFAULT_MAX_BLOCK_SIZE,
    maxHeaderSize: options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE,
    signal
  }
  throwIfAborted(signal)
  await mkdir(components.tmpDir, { recursive: true })
  const stagingPath = join(components.tmpDir, `car-${randomBytes(8).toString('hex')}`)
  const staging = createBlockStore({}, { path: stagingPath, writeBufferSize: 16 * MiB, cacheSize: 8 * MiB })
  let discarded = false
  const discard = async (): Promise<void> => {
    if (discarded) return
    discarded = true
    try {
      await staging.close()
    } catch {}
    await rm(stagingPath, { recursive: true, force: true })
  }
  try {
    await staging.open()
    const staged = await stage(source, staging, limits)
    const unixfs = new UnixFSCheck()
    const fromMain = await checkComplete(staged.roots, staging, components.blockstore, unixfs, signal)
    const reader = stagedReader(staging, components.blockstore, signal)
    if (options.checkNames === true) await unixfs.checkNames(staged.roots, async cid => await reader.getBytes(cid), signal)
    let published: Promise<ImportCarResult> | undefined
    return {
      ...staged,
      reader,
      discard,
      publish: async () => {
        published ??= (async () => {
          throwIfAborted(signal)
          for (const cid of fromMain) {
            // told first, as in publish()
            components.blockstore.touch(cid)
            if (!(await components.blockstore.has(cid))) throw new InvalidCARError(`incomplete DAG: block ${cid.toString()} was in the store when the CAR was checked and is gone (collected meanwhile): nothing was imported`)
          }
          return { ...staged, ...await publish(staging, components.blockstore) }
        })()
        return await published
      }
    }
  } catch (err) {
    await discard()
    throw err
  }
}
