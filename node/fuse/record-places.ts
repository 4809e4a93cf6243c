/**
 * The places of a read's bytes in this node's pack files, for the libfuse3
 * binding to read and check on its own threads (native/fuse3/records.c):
 * for each leaf under the request, its record
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
import type { LeafSpan } from '../content/ranged-reader.js'
import type { CID } from 'multiformats/cid'
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

/** Leaf locations a handle keeps (a sequential read asks for each leaf about twice, and they are looked up ahead). */
const LOCATIONS_KEPT = 256

/**
 * How far past a read its records are looked up ahead of the next reads:
 * twice {@link ANSWER_AHEAD_BYTES}, so that when the binding comes back
 * after serving the places it was given, the next stretch is known already.
 */
const WARM_AHEAD_BYTES = 48 * 1024 * 1024

/** How far past a read an answer places the bytes that follow, for the binding to serve the next reads itself. */
const ANSWER_AHEAD_BYTES = 24 * 1024 * 1024

/** True when `loc`'s record holds exactly `span`'s bytes (a record of another size is not this leaf's). */
function fits (span: LeafSpan, loc: RecordLocation): boolean {
  return loc.length - loc.bytesAt === span.size
}

/** A leaf's record as looked up: pending, then known (null: not a committed record here). */
interface Located { promise: Promise<RecordLocation | null>, known?: RecordLocation | null }

/** A pack held for the handle: opening, then open; `generation`: the last version ({@link RecordPlaces.follow}) that placed or looked up a record in it. */
interface Held { promise: Promise<HeldPack>, open?: HeldPack, generation: number }

/** The record places of one open file's reads. */
export class RecordPlaces {
  private readonly held = new Map<number, Held>()
  private readonly locations = new Map<number, Located>()
  private warming = false
  private warmed = { from: 0, to: 0 }
  private layout: Promise<Pick<FileLayout, 'spans' | 'size'>> | undefined
  private closed = false
  /** Bumped by {@link follow}: what a lookup begun on an earlier version found is not kept. */
  private generation = 0

  constructor (private components: RecordPlacesComponents) {}

  /**
   * Place the reads of another version of the file from now on, one that
   * begins with every byte of the version placed so far (an append;
   * appended.ts): its layout is opened at the next read and its leaves
   * looked up again. The packs of the version placed so far stay held: the
   * binding may still serve places of it that it keeps for the handle (the
   * newer version has those bytes at those offsets). Those of the versions
   * before it are let go, but for the packs the later ones use too: a
   * handle that follows a log for days holds what its last two versions
   * need, not every pack any version used. A place the binding still kept
   * in a pack let go fails its checks there (the descriptor closed, or
   * another file's) and is read the usual way.
   */
  follow (openLayout: RecordPlacesComponents['openLayout']): void {
    const left = this.generation
    this.components = { ...this.components, openLayout }
    this.layout = undefined
    this.generation++
    this.locations.clear()
    this.warmed = { from: 0, to: 0 }
    for (const [pack, held] of this.held) {
      if (held.generation >= left) continue
      this.held.delete(pack)
      held.promise.then(h => { h.release() }, () => {})
    }
  }

  /**
   * The places of `[offset, offset + length)` clipped to the file, or
   * undefined when the range is empty or some leaf under it is not a
   * committed record here. The places of the bytes that follow (up to
   * {@link ANSWER_AHEAD_BYTES} and {@link MAX_PLACES} in all) come after
   * them when their records are known here already: the binding keeps those
   * for the handle's next reads. Looking them up never delays the answer.
   *
   * @throws what opening the file's layout throws
   */
  async places (offset: number, length: number, signal?: AbortSignal): Promise<RecordPlace[] | undefined> {
    const { blockstore } = this.components
    if (blockstore.locate === undefined || blockstore.holdPack === undefined || this.closed) return undefined
    // a follow meanwhile: what this answer looks up of the earlier version is not kept under the newer one's offsets
    const generation = this.generation
    const layout = await this.openLayout()
    const end = Math.min(offset + length, layout.size)
    if (end <= offset) return undefined
    // one walk for the request and the bytes after it
    const aheadEnd = Math.min(end + ANSWER_AHEAD_BYTES, layout.size)
    const all = await layout.spans(offset, aheadEnd, signal)
    const spans = all.filter(span => span.base < end)
    if (spans.length === 0 || spans.length > MAX_PLACES) return undefined
    const locations = await this.locateAll(spans, generation)
    if (generation === this.generation) this.warm(layout, end)
    const out: RecordPlace[] = []
    for (const [i, span] of spans.entries()) {
      const loc = locations[i]
      const pack = loc === null || !fits(span, loc) ? undefined : await this.hold(loc.pack)
      if (span.cid === undefined || loc === null || pack === undefined) return undefined
      out.push(placeOf({ ...span, cid: span.cid, loc, pack }, { start: offset, end, answerAt: offset }))
    }
    // the bytes after: only what is known and open already (a leaf across `end` is placed again from `end`)
    for (const span of all.filter(s => s.base + s.size > end)) {
      const loc = this.locations.get(span.base)?.known
      const pack = loc === undefined || loc === null ? undefined : this.heldOpen(loc.pack)
      if (out.length >= MAX_PLACES || span.cid === undefined || loc === undefined || loc === null || pack === undefined || !fits(span, loc)) break
      out.push(placeOf({ ...span, cid: span.cid, loc, pack }, { start: end, end: aheadEnd, answerAt: offset }))
    }
    return out
  }

  /** The record of each span (null: not a committed record here), kept for the next reads and looked up at once. */
  private async locateAll (spans: readonly LeafSpan[], generation = this.generation): Promise<Array<RecordLocation | null>> {
    const { blockstore } = this.components
    return await Promise.all(spans.map(async span => {
      if (span.cid === undefined || blockstore.locate === undefined) return null
      // spans of a version followed away from: looked up, not kept under their offsets
      if (generation !== this.generation) return await blockstore.locate(span.cid).then(l => l ?? null)
      let located = this.locations.get(span.base)
      if (located === undefined) {
        const entry: Located = { promise: blockstore.locate(span.cid).then(l => l ?? null) }
        entry.promise.then(l => { entry.known = l }, () => { this.locations.delete(span.base) })
        this.locations.set(span.base, entry)
        if (this.locations.size > LOCATIONS_KEPT) this.locations.delete(this.locations.keys().next().value as number)
        located = entry
      }
      return await located.promise
    }))
  }

  /**
   * Look up the records of the bytes after `from` ahead of their reads, and
   * hold their packs: a sequential reader's next requests then find every
   * answer here, and answers place the bytes ahead. One lookup at a time; a
   * failure is left for the read itself to meet.
   */
  private warm (layout: Pick<FileLayout, 'spans' | 'size'>, from: number): void {
    const to = Math.min(from + WARM_AHEAD_BYTES, layout.size)
    if (this.warming || this.closed || to <= from || (from >= this.warmed.from && to <= this.warmed.to)) return
    const start = from >= this.warmed.from && from < this.warmed.to ? this.warmed.to : from
    const generation = this.generation
    this.warming = true
    void (async () => {
      const spans = await layout.spans(start, to)
      if (generation !== this.generation) return
      const locations = await this.locateAll(spans, generation)
      if (generation !== this.generation) return
      for (const pack of new Set(locations.map(l => l?.pack))) if (pack !== undefined) await this.hold(pack)
      if (generation === this.generation) this.warmed = { from, to }
    })().catch(() => {}).finally(() => { this.warming = false })
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
    for (const held of this.held.values()) held.promise.then(h => { h.release() }, () => {})
    this.held.clear()
    this.locations.clear()
  }

  /** Pack `pack` when it is held and open already, noted as used by the version placed now; else undefined. */
  private heldOpen (pack: number): HeldPack | undefined {
    const held = this.held.get(pack)
    if (held?.open === undefined) return undefined
    held.generation = Math.max(held.generation, this.generation)
    return held.open
  }

  /** Pack `pack`, held until {@link close}; undefined when it cannot be opened (gone: read the usual way). */
  private async hold (pack: number): Promise<HeldPack | undefined> {
    let held = this.held.get(pack)
    if (held === undefined) {
      const { blockstore } = this.components
      if (blockstore.holdPack === undefined) return undefined
      const entry: Held = { promise: blockstore.holdPack(pack), generation: this.generation }
      entry.promise.then(h => { entry.open = h }, () => { if (this.held.get(pack) === entry) this.held.delete(pack) })
      this.held.set(pack, entry)
      held = entry
    }
    held.generation = Math.max(held.generation, this.generation)
    const h = await held.promise.catch(() => undefined)
    // released while it opened: let go now
    if (h !== undefined && this.closed) h.release()
    return this.closed ? undefined : h
  }
}

/** A leaf's record, open: what a place is made of. */
interface PlacedLeaf { base: number, size: number, cid: CID, loc: RecordLocation, pack: HeldPack }

/** The place of a leaf's bytes within the file's `[start, end)`, in an answer whose first byte is the file's `answerAt`. */
function placeOf (leaf: PlacedLeaf, taken: { start: number, end: number, answerAt: number }): RecordPlace {
  const from = Math.max(taken.start, leaf.base)
  const to = Math.min(taken.end, leaf.base + leaf.size)
  return { fd: leaf.pack.fd, recordOffset: leaf.loc.offset, recordLength: leaf.loc.length, from: leaf.loc.bytesAt + from - leaf.base, length: to - from, to: from - taken.answerAt, multihash: leaf.cid.multihash.bytes }
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
