/**
 * The places of a read's bytes in this node's pack files, for the libfuse3
 * binding to read and check on its own threads (native/fuse3/fuse3.c,
 * "Reads from pack records"): for each leaf under the request, its record
 * (a held pack's descriptor, offset, length), the range of the record the
 * request takes and where it goes in the answer, and the leaf's multihash,
 * which the binding checks the record carries with its crc32c. A request is
 * placed only when every one of its leaves is a committed record here;
 * anything else (a leaf to fetch, a striped file's missing shard, data
 * inline in an inner node, a store without records) is read the usual way.
 *
 * @module
 */
import type { FileLayout } from '../content/file-layout.js'
import type { BlockStore, HeldPack, RecordLocation } from '../blocks/index.js'

/** One piece of a read's answer, as the binding takes it. */
export interface RecordPlace {
  /** A pack file's descriptor, held open while the handle is. */
  fd: number
  /** The record's offset in the pack file, and its length. */
  recordOffset: number
  recordLength: number
  /** The bytes taken: from this offset of the record, this many, to this offset of the answer. */
  from: number
  length: number
  to: number
  /** The block's multihash, which the record must carry. */
  multihash: Uint8Array
}

/** What {@link RecordPlaces} reads. */
export interface RecordPlacesComponents {
  /** Opens the file's layout; asked at the first read (again after a failure). */
  openLayout: () => Promise<Pick<FileLayout, 'spans' | 'size'>>
  blockstore: Pick<BlockStore, 'locate' | 'holdPack'>
}

/** Most places in one answer (the binding's `FUSE3_MAX_PLACES`). */
export const MAX_PLACES = 32

/** Longest multihash a place carries (the binding's `FUSE3_MAX_MULTIHASH`). */
export const MAX_MULTIHASH = 64

/** Leaf locations a handle keeps (a sequential read asks for each leaf about twice). */
const LOCATIONS_KEPT = 64

/** The record places of one open file's reads. */
export class RecordPlaces {
  private readonly held = new Map<number, Promise<HeldPack>>()
  private readonly locations = new Map<number, RecordLocation | null>()
  private layout: Promise<Pick<FileLayout, 'spans' | 'size'>> | undefined
  private closed = false

  constructor (private readonly components: RecordPlacesComponents) {}

  /**
   * The places of `[offset, offset + length)` clipped to the file, or
   * undefined when the range is empty or some leaf under it is not a
   * committed record here.
   *
   * @throws what opening the file's layout throws
   */
  async places (offset: number, length: number, signal?: AbortSignal): Promise<RecordPlace[] | undefined> {
    const { blockstore } = this.components
    if (blockstore.locate === undefined || blockstore.holdPack === undefined || this.closed) return undefined
    const layout = await this.openLayout()
    const end = Math.min(offset + length, layout.size)
    if (end <= offset) return undefined
    const spans = await layout.spans(offset, end, signal)
    if (spans.length === 0 || spans.length > MAX_PLACES) return undefined
    const out: RecordPlace[] = []
    for (const span of spans) {
      if (span.cid === undefined) return undefined
      let loc = this.locations.get(span.base)
      if (loc === undefined) {
        loc = await blockstore.locate(span.cid) ?? null
        this.locations.set(span.base, loc)
        if (this.locations.size > LOCATIONS_KEPT) this.locations.delete(this.locations.keys().next().value as number)
      }
      if (loc === null || loc.length - loc.bytesAt !== span.size) return undefined
      const pack = await this.hold(loc.pack)
      if (pack === undefined) return undefined
      const from = Math.max(offset, span.base)
      const to = Math.min(end, span.base + span.size)
      out.push({ fd: pack.fd, recordOffset: loc.offset, recordLength: loc.length, from: loc.bytesAt + from - span.base, length: to - from, to: from - offset, multihash: span.cid.multihash.bytes })
    }
    return out
  }

  /** The file's layout, opened once (a failed open is tried again by the next read). */
  private async openLayout (): Promise<Pick<FileLayout, 'spans' | 'size'>> {
    if (this.layout === undefined) {
      const opening = this.components.openLayout()
      this.layout = opening
      opening.catch(() => { if (this.layout === opening) this.layout = undefined })
    }
    return await this.layout
  }

  /** Let go of the packs held (the handle is released). */
  close (): void {
    this.closed = true
    for (const held of this.held.values()) held.then(h => { h.release() }, () => {})
    this.held.clear()
    this.locations.clear()
  }

  /** Pack `pack`, held until {@link close}; undefined when it cannot be opened (gone: read the usual way). */
  private async hold (pack: number): Promise<HeldPack | undefined> {
    let held = this.held.get(pack)
    if (held === undefined) {
      const { blockstore } = this.components
      if (blockstore.holdPack === undefined) return undefined
      held = blockstore.holdPack(pack)
      this.held.set(pack, held)
      held.catch(() => { this.held.delete(pack) })
    }
    const h = await held.catch(() => undefined)
    // released while it opened: let go now
    if (h !== undefined && this.closed) h.release()
    return this.closed ? undefined : h
  }
}

/** The places packed as the binding reads them: 24 uint32s each (native/fuse3/fuse3.c, `fuse3_signal_read_places`). */
export function packPlaces (places: readonly RecordPlace[]): Buffer {
  const ints = new Uint32Array(places.length * 24)
  places.forEach((p, i) => {
    const at = i * 24
    ints[at] = p.fd
    ints[at + 1] = p.recordOffset % 4294967296
    ints[at + 2] = Math.floor(p.recordOffset / 4294967296)
    ints[at + 3] = p.recordLength
    ints[at + 4] = p.from
    ints[at + 5] = p.length
    ints[at + 6] = p.to
    ints[at + 7] = p.multihash.byteLength
    new Uint8Array(ints.buffer, (at + 8) * 4, MAX_MULTIHASH).set(p.multihash.subarray(0, MAX_MULTIHASH))
  })
  return Buffer.from(ints.buffer)
}
