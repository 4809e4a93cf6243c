/**
 * Formats of a cold copy, pure (no I/O): the block-offset index written next
 * to each CAR object, and a streaming scanner that finds where each block's
 * bytes lie in a CARv1 as the CAR goes by.
 *
 * @module
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { DEFAULT_MAX_BLOCK_SIZE, DEFAULT_MAX_HEADER_SIZE } from '../car/index.js'
import { SHA2_256, cborCID } from '../blocks/verify.js'
import { InvalidColdIndexError } from './errors.js'

/** Version of the index format. */
export const COLD_INDEX_VERSION = 1

/** Where one block's bytes lie in the CAR object. */
export interface ColdIndexEntry {
  cid: CID
  /** Byte offset of the block's data (after its section's length and CID) in the CAR. */
  offset: number
  /** Bytes of data. */
  length: number
}

/**
 * The index of a cold copy, stored as one dag-cbor object:
 * `{ v: 1, root, carSize, carSha256, blocks: [[cid, offset, length], …] }`
 * with the blocks in CAR order (offsets strictly increasing), the root first.
 */
export interface ColdIndex {
  root: CID
  /** Size of the CAR object in bytes. */
  carSize: number
  /** sha2-256 of the whole CAR object. */
  carSha256: Uint8Array
  entries: ColdIndexEntry[]
}

/** What a decoded index must agree with (from the cold location). */
export interface ColdIndexExpectations {
  root?: CID
  carSize?: number
  blocks?: number
}

/** The dag-cbor CID (CIDv1, sha2-256) of `bytes` (blocks/verify's `cborCID`). */
export { cborCID as cborCid }

/** Encode an index; its CID is what the cold location records. */
export function encodeColdIndex (index: ColdIndex): { bytes: Uint8Array, cid: CID } {
  const bytes = dagCbor.encode({
    v: COLD_INDEX_VERSION,
    root: index.root,
    carSize: index.carSize,
    carSha256: index.carSha256,
    blocks: index.entries.map(entry => [entry.cid, entry.offset, entry.length])
  })
  return { bytes, cid: cborCID(bytes) }
}

function isSize (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/**
 * Decode and check an index: its shape, every entry (sha2-256 CIDs, blocks
 * inside the CAR, in order, not overlapping, at most 4 MiB each), the root
 * first, and agreement with `expect`.
 *
 * @throws {InvalidColdIndexError} naming the first problem
 */
export function decodeColdIndex (bytes: Uint8Array, expect: ColdIndexExpectations = {}): ColdIndex {
  let value: any
  try {
    value = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidColdIndexError(`cold index is not valid dag-cbor: ${String(err?.message ?? err)}`, { cause: err })
  }
  if (value === null || typeof value !== 'object' || value.v !== COLD_INDEX_VERSION) {
    throw new InvalidColdIndexError(`cold index has version ${String(value?.v)}, expected ${COLD_INDEX_VERSION}`)
  }
  const root = CID.asCID(value.root)
  if (root === null) throw new InvalidColdIndexError('cold index has no root CID')
  if (!isSize(value.carSize)) throw new InvalidColdIndexError('cold index has no valid carSize')
  if (!(value.carSha256 instanceof Uint8Array) || value.carSha256.byteLength !== 32) {
    throw new InvalidColdIndexError('cold index has no valid carSha256')
  }
  if (!Array.isArray(value.blocks) || value.blocks.length === 0) throw new InvalidColdIndexError('cold index lists no blocks')
  const carSize: number = value.carSize
  const entries: ColdIndexEntry[] = new Array(value.blocks.length)
  let end = 0
  for (let i = 0; i < value.blocks.length; i++) {
    const item = value.blocks[i]
    const cid = Array.isArray(item) && item.length === 3 ? CID.asCID(item[0]) : null
    const [, offset, length] = Array.isArray(item) ? item : []
    if (cid === null || !isSize(offset) || !isSize(length)) throw new InvalidColdIndexError(`cold index entry ${i} is malformed`)
    if (cid.multihash.code !== SHA2_256) throw new InvalidColdIndexError(`cold index entry ${i} is not hashed with sha2-256`)
    if (length > DEFAULT_MAX_BLOCK_SIZE) throw new InvalidColdIndexError(`cold index entry ${i} is ${length} bytes, over the ${DEFAULT_MAX_BLOCK_SIZE}-byte block limit`)
    if (offset < end || offset + length > carSize) throw new InvalidColdIndexError(`cold index entry ${i} at [${offset}, ${offset + length}) overlaps the previous block or lies outside the ${carSize}-byte CAR`)
    end = offset + length
    entries[i] = { cid, offset, length }
  }
  if (!entries[0].cid.equals(root)) throw new InvalidColdIndexError('cold index does not list its root first')
  const expectedRoot = expect.root
  if (expectedRoot !== undefined && expectedRoot.toString() !== root.toString()) {
    throw new InvalidColdIndexError(`cold index is for ${root.toString()}, expected ${expectedRoot.toString()}`)
  }
  if (expect.carSize !== undefined && carSize !== expect.carSize) {
    throw new InvalidColdIndexError(`cold index describes a ${carSize}-byte CAR, expected ${expect.carSize}`)
  }
  if (expect.blocks !== undefined && entries.length !== expect.blocks) {
    throw new InvalidColdIndexError(`cold index lists ${entries.length} blocks, expected ${expect.blocks}`)
  }
  return { root, carSize, carSha256: value.carSha256, entries }
}

/** Longest varint of a CAR length prefix we accept (2^63 needs 9 bytes). */
const MAX_VARINT_BYTES = 9
/** Enough bytes to hold any CID we accept (CIDv1 + sha2-256 is 36). */
const CID_PEEK = 128

type Phase = 'varint' | 'header' | 'cid' | 'data'

/**
 * Finds the sections of a CARv1 in a stream of chunks split anywhere, holding
 * at most a header or a section's first 128 bytes — never a block. Feed it
 * with {@link CarSectionScanner.push}, then call {@link CarSectionScanner.finish}.
 *
 * It checks the framing only (lengths, CIDs, a header naming `root`); block
 * bytes are not hashed here.
 */
export class CarSectionScanner {
  /** Bytes seen so far. */
  position = 0
  private phase: Phase = 'varint'
  private inHeader = true
  private varint: number[] = []
  private buffer: Uint8Array = new Uint8Array(0)
  private filled = 0
  private sectionLength = 0
  private remaining = 0
  private readonly onSection: (entry: ColdIndexEntry) => void
  private readonly root?: CID

  /**
   * @param onSection - called with each block's CID and data offset/length, in CAR order
   * @param root - when given, the header must name this root and only it
   */
  constructor (onSection: (entry: ColdIndexEntry) => void, root?: CID) {
    this.onSection = onSection
    this.root = root
  }

  /** @throws {InvalidColdIndexError} when the bytes are not a CARv1 */
  push (chunk: Uint8Array): void {
    let i = 0
    while (i < chunk.byteLength) {
      if (this.phase === 'data') {
        const n = Math.min(this.remaining, chunk.byteLength - i)
        i += n
        this.position += n
        this.remaining -= n
        if (this.remaining === 0) this.phase = 'varint'
      } else if (this.phase === 'varint') {
        const byte = chunk[i++]
        this.position++
        this.varint.push(byte)
        if ((byte & 0x80) !== 0) {
          if (this.varint.length >= MAX_VARINT_BYTES) throw this.invalid('length prefix too long')
          continue
        }
        this.startFrame(this.varint.reduce((sum, b, k) => sum + (b & 0x7f) * 2 ** (7 * k), 0))
        this.varint = []
      } else {
        const n = Math.min(this.buffer.byteLength - this.filled, chunk.byteLength - i)
        this.buffer.set(chunk.subarray(i, i + n), this.filled)
        this.filled += n
        i += n
        this.position += n
        if (this.filled === this.buffer.byteLength) {
          if (this.phase === 'header') this.endHeader()
          else this.endCid()
        }
      }
    }
  }

  /** @throws {InvalidColdIndexError} when the CAR stopped mid-section or had no header */
  finish (): void {
    if (this.inHeader || this.phase !== 'varint' || this.varint.length > 0) throw this.invalid('the CAR ends mid-section (truncated)')
  }

  private invalid (what: string): InvalidColdIndexError {
    return new InvalidColdIndexError(`invalid CAR at byte ${this.position}: ${what}`)
  }

  private startFrame (length: number): void {
    if (this.inHeader) {
      if (length === 0 || length > DEFAULT_MAX_HEADER_SIZE) throw this.invalid(`header length ${length}`)
      this.phase = 'header'
      this.buffer = new Uint8Array(length)
    } else {
      if (length === 0 || length > DEFAULT_MAX_BLOCK_SIZE + CID_PEEK) throw this.invalid(`section length ${length}`)
      this.sectionLength = length
      this.phase = 'cid'
      this.buffer = new Uint8Array(Math.min(length, CID_PEEK))
    }
    this.filled = 0
  }

  private endHeader (): void {
    let header: any
    try {
      header = dagCbor.decode(this.buffer)
    } catch (err: any) {
      throw this.invalid(`header is not dag-cbor: ${String(err?.message ?? err)}`)
    }
    if (header?.version !== 1 || !Array.isArray(header.roots)) throw this.invalid('not a CARv1 header')
    if (this.root !== undefined && (header.roots.length !== 1 || CID.asCID(header.roots[0])?.equals(this.root) !== true)) {
      throw this.invalid(`header does not name ${this.root.toString()} as its only root`)
    }
    this.inHeader = false
    this.phase = 'varint'
  }

  private endCid (): void {
    let cid: CID
    let rest: Uint8Array
    try {
      [cid, rest] = CID.decodeFirst(this.buffer)
    } catch (err: any) {
      throw this.invalid(`bad CID: ${String(err?.message ?? err)}`)
    }
    const cidLength = this.buffer.byteLength - rest.byteLength
    const length = this.sectionLength - cidLength
    // the data started inside the peeked bytes: `rest` of it is already seen
    this.onSection({ cid, offset: this.position - rest.byteLength, length })
    this.remaining = length - rest.byteLength
    this.phase = this.remaining === 0 ? 'varint' : 'data'
  }
}
