/**
 * The block store: block bytes in append-only pack files, a LevelDB index of
 * where each block's record is (the WiscKey/Badger design). See
 * docs/blockstore.md for the record layout, the commit protocol, recovery at
 * open, compaction and the migration from the former layout.
 *
 * @module
 */
import { reindexPacks, type ReindexReport } from './reindex.js'
import { mkdir, unlink } from 'node:fs/promises'
import { diskFree } from '../repo/disk.js'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { CorruptBlockError, typedWriteError } from './errors.js'
import { WriteInterruptedError } from '../errors.js'
import { PackAppender, PackReaders, SegmentPool, packFileName, scanPack, syncDir } from './pack-file.js'
import { INDEX_RANGE, decodeLocation, decodeMeta, encodeLocation, encodeMeta, failedCheck, indexKey, metaKey, multihashOfIndexKey, sameLocation, type Location, type PackMeta } from './pack-index.js'
import { IDENTITY, SHA2_256, matchesCID, verifyBlock } from './verify.js'
import { code as RAW } from 'multiformats/codecs/raw'
import { PACK_HEADER, RECORD_HEADER, decodeRecord, encodeRecord, rawRecordBytes, recordLength } from './pack-record.js'
import { recoverPacks, type RecoveryReport } from './recover.js'
import { auditIndex, type AuditReport } from './index-audit.js'
import { setAsideIndex, type IndexRebuildReport } from './index-rebuild.js'
import { levelDamage } from '../repo/store-damage.js'
import { migrateLegacyBlocks, type MigrationHost } from './migrate.js'
import { Compactor, liveShare, type CompactionHost } from './compactor.js'
import { idOf, once, throwIfAborted } from './util.js'
import { BlockStoreBase } from './store-base.js'
import { GroupCommit } from './group-commit.js'
import type { AbortOptions, BlockStore, BlockStoreComponents, BlockStoreInit, CompactOptions, HeldPack, OwnedWrites, RecordLocation } from './api.js'
import type { Pair } from 'interface-blockstore'

const MiB = 1024 * 1024

/** A record appended since the last commit, not yet in the index. */
interface PendingEntry {
  multihash: Uint8Array
  loc: Location
  /** Set for a record copied by compaction: where the index pointed when it was copied. */
  movedFrom?: Location
  /** A record copied by compaction that fails its check: its entry stays marked (see `failedCheck`). */
  failed?: boolean
  /** The write that put it (see `ownedWrites`), if a tagged one did. */
  owner?: object
  /** Another write put the same block while it waited for its commit: a discard of its owner keeps it. */
  shared?: boolean
  /**
   * Set for a record migrated from the former layout (only an older version
   * writes that layout, so its value is the later write), and for a put of
   * a block whose indexed record is known to fail its check: it replaces the
   * index entry the block has, whose record is counted dead.
   */
  replaces?: boolean
}

/**
 * A content-addressed block store keyed by multihash (a block stored under a
 * raw and a dag-pb CID is kept once): records in pack files under
 * `<path>/packs/`, the index in the LevelDB database at `path`.
 *
 * Puts append to memory segments written behind in large sequential writes;
 * readers see a block as soon as `put` returns. {@link PackBlockStore.commit}
 * is the durability point: fdatasync of every pack written since the last
 * commit, then the index batch with `sync: true`. Every read checks the
 * record's crc32c ({@link CorruptBlockError}), which catches a rotten disk as
 * the sha-256 would, at a fraction of its cost; the sha-256 is checked where
 * a block enters the store (the importer computes it, the exchange, CAR
 * import, the cold tier, rebuilds and the migration below check it) and by
 * the scrub.
 */
export class PackBlockStore extends BlockStoreBase implements BlockStore {
  /** Records carry a crc32c, checked on every read. */
  protected readonly hashOnRead = false
  /** What open found and cut off (for logs and tests). */
  recovery: RecoveryReport | undefined
  /** What the last open's index audit found (index-audit.ts). */
  audit: AuditReport | undefined
  /** Set when this open found the index damaged, set it aside and rebuilt it from the packs (docs/blockstore.md, "A damaged index"). */
  indexRebuilt: IndexRebuildReport | undefined
  /** Blocks moved from the former layout at the last open. */
  migrated = 0
  /**
   * Blocks of the former layout that failed their hash at the last open:
   * not moved, so a read gets `NotFoundError` and a read session, repair or
   * the scrub's peers supply them again. The node logs them.
   */
  migrationDropped: CID[] = []
  private db: ClassicLevel<Uint8Array, Uint8Array>
  private readonly dir: string
  private readonly readers: PackReaders
  private readonly init: BlockStoreInit
  private readonly maxPackBytes: number
  private readonly compactBelow: number
  /** Memory of the appenders' segments, shared by all packs. */
  private readonly segments: SegmentPool
  private metas = new Map<number, PackMeta>()
  /** Packs whose metadata changed since the last commit without being written. */
  private readonly metaDirty = new Set<number>()
  private appender: PackAppender | undefined
  /** Appenders with bytes since the last commit (the current one, and ones rolled over). */
  private readonly dirty = new Map<number, PackAppender>()
  /** Appenders a commit is syncing now: a rollover meanwhile leaves them open, and the commit closes them once done. */
  private readonly syncing = new Set<PackAppender>()
  /** Commits shared by the callers that wait at once (see {@link commit}). */
  private readonly commits = new GroupCommit(async () => { await this.serial(async () => { await this.commitNow() }) })
  private rolling: Promise<void> | undefined
  private createdSinceCommit = false
  private nextPack = 1
  private pending = new Map<string, PendingEntry>()
  /** Commits that failed since the store opened (see {@link BlockStore.failedCommits}). */
  failedCommits = 0
  private committing: Map<string, PendingEntry> | undefined
  private legacyDeletes: Uint8Array[] = []
  private serialChain: Promise<unknown> = Promise.resolve()
  /** Deletes called and not yet done, by block id (the latest of each): a put of that block waits for it. */
  private readonly deleting = new Map<string, Promise<unknown>>()
  private readonly compactor: Compactor

  constructor (components: BlockStoreComponents, init: BlockStoreInit) {
    super(components)
    this.init = init
    this.maxPackBytes = init.maxPackBytes ?? 64 * MiB
    this.compactBelow = init.compactBelow ?? 0.5
    this.segments = new SegmentPool(init.flushBytes ?? 8 * MiB)
    this.dir = join(init.path, 'packs')
    this.readers = new PackReaders(this.dir)
    // the index holds small values (14-byte locations) only
    this.db = this.newIndex()
    this.compactor = new Compactor(this.compactionHost(), {
      threshold: this.compactBelow,
      bytesPerSecond: init.compactBytesPerSecond ?? 32 * MiB,
      auto: init.autoCompact ?? true
    })
  }

  private newIndex (): ClassicLevel<Uint8Array, Uint8Array> {
    return new ClassicLevel<Uint8Array, Uint8Array>(this.init.path, {
      keyEncoding: 'view', valueEncoding: 'view', writeBufferSize: this.init.writeBufferSize ?? 16 * MiB, cacheSize: this.init.cacheSize ?? 32 * MiB
    })
  }

  /**
   * Open the index and recover the packs. An index LevelDB finds damaged (at
   * its open, or while the recovery and the audit read it whole) is set aside
   * and rebuilt from the packs ({@link PackBlockStore.indexRebuilt}).
   */
  async open (): Promise<void> {
    try {
      await this.openIndex()
    } catch (err) {
      const reason = levelDamage(err)
      if (reason === undefined) {
        await this.compactor.stop()
        throw err
      }
      const keptAt = await setAsideIndex(this.init.path)
      this.indexRebuilt = { reason, keptAt }
      this.db = this.newIndex()
      try {
        await this.openIndex()
      } catch (again) {
        await this.compactor.stop()
        throw again
      }
    }
  }

  private async openIndex (): Promise<void> {
    await this.db.open()
    try {
      await this.load()
    } catch (err) {
      await this.closeAppenders()
      this.appender = undefined
      this.dirty.clear()
      this.pending.clear()
      await this.db.close()
      throw err
    }
  }

  private async load (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const { metas, report, readableEnds } = await recoverPacks(this.db, this.dir)
    this.metas = metas
    this.recovery = report
    // entries lost inside committed lengths (a record dropped from the middle of LevelDB's log),
    // and entries of records a short or missing pack no longer has, marked bad
    this.audit = await auditIndex(this.db, this.dir, metas, { readableEnds })
    const packs = [...metas.keys(), ...report.removedPacks]
    this.nextPack = packs.length === 0 ? 1 : Math.max(...packs) + 1
    const last = Math.max(0, ...metas.keys())
    const meta = metas.get(last)
    if (meta !== undefined && meta.committed < this.maxPackBytes && !report.shortPacks.includes(last) && !report.missingPacks.includes(last)) {
      this.appender = await PackAppender.reopen(this.dir, last, meta.committed, this.segments)
    }
    this.migrated = await migrateLegacyBlocks(this.migrationHost(), { batchBytes: this.init.migrateBatchBytes ?? 64 * MiB, afterBatch: this.init.faults?.afterMigrateBatch })
    this.compactor.schedule()
  }

  async close (): Promise<void> {
    if (this.db.status !== 'open') return
    await this.compactor.stop()
    try {
      await this.commit()
    } finally {
      await this.closeAppenders()
      this.dirty.clear()
      this.appender = undefined
      await this.readers.closeAll()
      await this.db.close()
    }
  }

  async put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions & { owner?: object }): Promise<CID> {
    const { data, multihash, id } = await this.acceptPut(cid, bytes, options)
    const owner = options?.owner
    // an identity "hash" is the block: nothing to store
    if (cid.multihash.code === IDENTITY) return cid
    // a delete of this block called before: the entry or pending copy found below would be the one it takes
    await this.deleting.get(id)?.catch(() => {})
    if (this.pendingHas(id)) {
      this.sharePending(id, owner)
      return cid
    }
    // one index lookup, never a pack read: a copy here is kept unless a read found it bad
    const indexed = await this.db.get(indexKey(multihash))
    if (indexed !== undefined && !failedCheck(indexed)) return cid
    // the bytes that take the place of a bad copy are hashed first (rare: only after a failed read)
    if (indexed !== undefined) verifyBlock(cid, data)
    const length = recordLength(multihash.byteLength, data.byteLength)
    const appended = await this.appendRecord(id, multihash, length, out => { encodeRecord(out, multihash, data) }, {
      entry: owner === undefined && indexed === undefined ? undefined : { owner, replaces: indexed !== undefined ? true : undefined },
      due: () => {
        const known = this.pending.get(id)
        if (known !== undefined && known.movedFrom === undefined) {
          this.sharePending(id, owner)
          return false
        }
        if (known !== undefined) this.countDead(known.loc) // a copy by compaction: this one wins
        return true
      }
    })
    if (appended) {
      this.components.metrics?.blocksWritten.inc()
      this.components.metrics?.bytesWritten.inc(data.byteLength)
    }
    return cid
  }

  /**
   * The record's block bytes, crc32c-checked ({@link BlockStoreBase.getBytes}
   * then checks the sha-256).
   *
   * @throws {CorruptBlockError} when the record fails the crc (never served)
   */
  protected async readStored (multihash: Uint8Array): Promise<Uint8Array | undefined> {
    return await this.readBlock(multihash, true)
  }

  /**
   * Where the committed record of `cid` lies (see {@link BlockStore.locate}):
   * from the index only, so a block still pending (not committed, maybe not
   * on disk yet), in a pack with writes since the last commit, or whose
   * record is known to fail its check, is not placed, and is read the usual
   * way.
   */
  async locate (cid: CID): Promise<RecordLocation | undefined> {
    if (cid.multihash.code === IDENTITY) return undefined
    const multihash = cid.multihash.bytes
    if (this.lookupPending(idOf(multihash)) !== undefined) return undefined
    const value = await this.db.get(indexKey(multihash))
    if (value === undefined || failedCheck(value)) return undefined
    const loc = decodeLocation(value)
    if (this.dirty.has(loc.pack)) return undefined
    return { pack: loc.pack, offset: loc.offset, length: loc.length, bytesAt: RECORD_HEADER + multihash.byteLength }
  }

  async holdPack (pack: number): Promise<HeldPack> {
    return await this.readers.hold(pack)
  }

  /**
   * True when the block is here; reads the index only, never a pack. A block
   * whose only copy a read found bad (see `failedCheck`) is not here: a
   * writer that checks `has` first puts it again, and that put replaces it.
   * A delete of the block called before and not done is waited for: a
   * writer that reuses a block it was told is here must not lose it to a
   * collection that decided to delete it just before (it tells the
   * collection with `touch` first, then asks).
   */
  async has (cid: CID, options?: AbortOptions): Promise<boolean> {
    throwIfAborted(options)
    if (cid.multihash.code === IDENTITY) return true
    const multihash = cid.multihash.bytes
    await this.deleting.get(idOf(multihash))?.catch(() => {})
    if (this.pendingHas(idOf(multihash))) return true
    const value = await this.db.get(indexKey(multihash))
    return value !== undefined && !failedCheck(value)
  }

  async delete (cid: CID, options?: AbortOptions): Promise<void> {
    throwIfAborted(options)
    const multihash = cid.multihash.bytes
    const id = idOf(multihash)
    // known at once (a put that begins from now on waits for it): its caller checked, just before, that no write wants the block
    const deleting = this.serial(async () => {
      const entry = this.pending.get(id)
      if (entry !== undefined) {
        this.pending.delete(id)
        this.countDead(entry.loc)
      }
      const key = indexKey(multihash)
      const value = await this.db.get(key)
      if (value === undefined) return undefined
      const loc = decodeLocation(value)
      this.countDead(loc)
      const meta = this.metas.get(loc.pack)
      const batch = this.db.batch().del(key)
      if (meta !== undefined) {
        batch.put(metaKey(loc.pack), encodeMeta(meta))
        this.metaDirty.delete(loc.pack)
      }
      await batch.write()
      return meta
    })
    this.deleting.set(id, deleting)
    let pack: PackMeta | undefined
    try {
      pack = await deleting
    } finally {
      if (this.deleting.get(id) === deleting) this.deleting.delete(id)
    }
    // only a pack this delete pushed under the threshold can make work
    if (pack !== undefined && liveShare(pack) < this.compactBelow) this.compactor.schedule()
  }

  /** Every stored block (raw codec CIDs), in key order, checked like `getBytes`. Commits first. */
  async * getAll (options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const cid of this.cids(options)) {
      let bytes: Uint8Array
      try {
        bytes = await this.getBytes(cid, options)
      } catch (err: any) {
        if (err?.name === 'NotFoundError') continue // deleted meanwhile
        throw err
      }
      yield { cid, bytes: once(bytes) }
    }
  }

  /** Every stored block's CID (raw codec), in key order, from the index only. Commits first. */
  async * cids (options?: AbortOptions): AsyncGenerator<CID> {
    await this.commit()
    for await (const key of this.db.keys(INDEX_RANGE)) {
      throwIfAborted(options)
      yield CID.createV1(RAW, Digest.decode(multihashOfIndexKey(key)))
    }
  }

  /** Every stored block's bytes as stored, unchecked (a short or corrupt record yields what is there). Commits first. */
  async * storedEntries (options?: AbortOptions): AsyncGenerator<{ cid: CID, bytes: Uint8Array }> {
    for await (const cid of this.cids(options)) {
      const bytes = await this.readBlock(cid.multihash.bytes, false)
      if (bytes !== undefined) yield { cid, bytes }
    }
  }

  /**
   * Make every write so far durable: fdatasync every pack written since the
   * last commit (and the pack folder when a pack was created), then write the
   * index entries with `sync: true`. Puts may go on meanwhile (they belong to
   * the next commit).
   *
   * Callers that arrive while a commit waits its turn share it
   * ({@link GroupCommit}): it begins after their call, so it covers their
   * writes too, and a burst of callers (the pushes a holder acknowledges, a
   * mount's commit batches) costs a commit or two, not one each.
   *
   * @throws {DiskFullError} when the disk is full: nothing since the last commit is kept
   */
  async commit (): Promise<void> {
    await this.commits.durable()
  }

  /**
   * Check the whole index against every committed record of every pack and
   * rebuild what disagrees (`shoal repair --reindex`); see reindex.ts.
   * Commits first; commits and deletes wait meanwhile.
   */
  async reindex (options?: AbortOptions): Promise<ReindexReport> {
    await this.commit()
    const report = await this.serial(async () => await reindexPacks({ db: this.db, dir: this.dir, metas: this.metas }, options))
    this.compactor.schedule()
    return report
  }

  /** Blocks put since the last finished {@link commit} (0: everything put is durable). */
  get uncommitted (): number {
    return this.pending.size + (this.committing?.size ?? 0)
  }

  /** Bytes on disk: committed and buffered pack bytes, and the index. */
  async approximateSize (): Promise<number> {
    let packs = 0
    for (const [pack, meta] of this.metas) packs += this.dirty.get(pack)?.size ?? meta.committed
    for (const [pack, a] of this.dirty) if (!this.metas.has(pack)) packs += a.size
    return packs + await this.db.approximateSize(new Uint8Array([0]), new Uint8Array([0xff, 0xff]))
  }

  /**
   * Rewrite every pack whose live share is under the threshold now (rather
   * than in the background), or under `liveBelow`, and wait for it.
   */
  async compact (options?: CompactOptions): Promise<void> {
    const threshold = options?.liveBelow ?? this.compactBelow
    await this.sealSparseCurrent(threshold)
    await this.compactor.run(options?.signal, threshold)
  }

  /** Bytes of dead records in every pack (what compacting them all would give back). */
  deadBytes (): number {
    let dead = 0
    for (const meta of this.metas.values()) dead += meta.deadBytes
    return dead
  }

  /**
   * The pack being written is never compacted; when its live share is under
   * `threshold` (a small repo whose files were all removed), close it and
   * start a new one, so that an explicit compaction can give its space back too.
   */
  private async sealSparseCurrent (threshold: number): Promise<void> {
    const current = this.appender
    const meta = current === undefined ? undefined : this.metas.get(current.pack)
    if (current === undefined || meta === undefined || liveShare(meta) >= threshold) return
    await this.commit()
    if (this.appender !== current) return
    this.rolling ??= this.rollover().finally(() => { this.rolling = undefined })
    await this.rolling
  }

  /** Close every pack appender (errors ignored: nothing of theirs is acknowledged past the last commit). */
  private async closeAppenders (): Promise<void> {
    for (const a of new Set([...this.dirty.values(), ...(this.appender !== undefined ? [this.appender] : [])])) await a.close().catch(() => {})
  }

  /** A put of a block already waiting for its commit: unless the same write put it, its owner's discard must keep it. */
  private sharePending (id: string, owner: object | undefined): void {
    const known = this.pending.get(id)
    if (known !== undefined && known.owner !== owner) known.shared = true
  }

  ownedWrites (): OwnedWrites {
    const owner = {}
    /** The write's puts not settled yet: an importer keeps several in flight, and one failing does not stop the others. */
    const underWay = new Set<Promise<unknown>>()
    let discarded = false
    const put = async (cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<CID> => {
      if (discarded) throw new WriteInterruptedError('this write was given up and its blocks discarded: add it again')
      const putting = this.put(cid, bytes, { ...options, owner })
      underWay.add(putting)
      try {
        return await putting
      } finally {
        underWay.delete(putting)
      }
    }
    // every member of the store, bound to it, but puts tagged with `owner`
    const store = new Proxy(this, {
      get: (target, prop) => {
        if (prop === 'put') return put
        const value = Reflect.get(target, prop, target)
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
    const discard = async (): Promise<number> => {
      // no put of this write starts from now on, and those under way settle first: one that appended after the cut would stay
      discarded = true
      await Promise.allSettled([...underWay])
      return await this.discard(owner)
    }
    return { store, discard }
  }

  /**
   * Drop what `owner` put and no commit covered (see
   * {@link OwnedWrites.discard}). Serialised with commits: a commit under
   * way finishes first, and what it covered stays.
   */
  private async discard (owner: object): Promise<number> {
    return await this.serial(async () => {
      const packs = new Set<number>()
      for (const [id, entry] of this.pending) {
        if (entry.owner !== owner || entry.shared === true || entry.movedFrom !== undefined) continue
        this.pending.delete(id)
        packs.add(entry.loc.pack)
      }
      let given = 0
      for (const pack of packs) {
        const a = this.dirty.get(pack)
        if (a === undefined) continue
        // no more appends here: a write that comes next goes to a new pack
        if (a === this.appender) this.appender = undefined
        // appends made before settle first; then what must stay is known
        await a.flush().catch(() => {})
        const meta = this.metas.get(pack)
        let keep = Math.max(PACK_HEADER, meta?.committed ?? 0)
        for (const entry of this.pending.values()) if (entry.loc.pack === pack) keep = Math.max(keep, entry.loc.offset + entry.loc.length)
        const end = a.size
        if (keep >= end) continue
        try {
          await a.truncate(keep)
        } catch {
          continue
        }
        if (a.size !== end) {
          // a write that held this appender from before appended meanwhile: its record may be cut; its commit must fail
          a.poison(new Error(`pack ${pack} was cut back while a record was appended to it`))
          continue
        }
        given += end - keep
        a.size = keep
        if ((meta?.committed ?? 0) === 0 && keep === PACK_HEADER) {
          // a pack this write began and nothing else uses: gone, as a failed commit's would be
          this.dirty.delete(pack)
          this.metas.delete(pack)
          await a.close().catch(() => {})
          await unlink(join(this.dir, packFileName(pack))).catch(() => {})
        }
      }
      return given
    })
  }

  private pendingHas (id: string): boolean {
    return this.pending.has(id) || this.committing?.has(id) === true
  }

  private lookupPending (id: string): Location | undefined {
    return this.pending.get(id)?.loc ?? this.committing?.get(id)?.loc
  }

  private countDead (loc: Location): void {
    const meta = this.metas.get(loc.pack)
    if (meta === undefined) return
    meta.deadBytes += loc.length
    meta.deadRecords++
    this.metaDirty.add(loc.pack)
  }

  /**
   * The block bytes of `multihash` (`checked`: crc-verified, else as stored),
   * or undefined when it is not here. A pack removed under the read (by
   * compaction) is looked up once more.
   */
  private async readBlock (multihash: Uint8Array, checked: boolean): Promise<Uint8Array | undefined> {
    const id = idOf(multihash)
    for (let attempt = 0; ; attempt++) {
      let loc = this.lookupPending(id)
      /** Whether the index entry read marks the record bad; undefined for a pending record. */
      let marked: boolean | undefined
      if (loc === undefined) {
        const value = await this.db.get(indexKey(multihash))
        if (value === undefined) return undefined
        loc = decodeLocation(value)
        marked = failedCheck(value)
      }
      if (checked) {
        const read = await this.checkedRecord(multihash, id, loc, attempt)
        if (read === 'again') continue
        // a read of an indexed record notes what it found on the entry: a bad one is replaced by the next put
        const bad = read instanceof CorruptBlockError
        if (marked !== undefined && marked !== bad) await this.markRecord(multihash, loc, bad)
        if (read instanceof CorruptBlockError) throw read
        return read
      }
      const record = await this.recordAt(loc, attempt)
      if (record === 'again') continue
      return record === 'missing' ? new Uint8Array(0) : rawRecordBytes(record)
    }
  }

  /**
   * The block bytes of the record at `loc` if it passes its check, else the
   * {@link CorruptBlockError} that says why (returned, not thrown); `again`
   * when its pack was removed under the read on a first attempt.
   */
  private async checkedRecord (multihash: Uint8Array, id: string, loc: Location, attempt: number): Promise<Uint8Array | CorruptBlockError | 'again'> {
    const record = await this.recordAt(loc, attempt)
    if (record === 'again') return record
    if (record === 'missing') return new CorruptBlockError(`pack ${packFileName(loc.pack)} holding block ${id} is missing`)
    const decoded = decodeRecord(record)
    if (decoded === 'short') return new CorruptBlockError(`record of block ${id} in pack ${packFileName(loc.pack)} at ${loc.offset} is cut short (${record.byteLength} of ${loc.length} bytes)`)
    if (decoded === 'crc') return new CorruptBlockError(`record of block ${id} in pack ${packFileName(loc.pack)} at ${loc.offset} fails its crc32c: corrupt data`)
    if (Buffer.compare(decoded.multihash, multihash) !== 0) return new CorruptBlockError(`record in pack ${packFileName(loc.pack)} at ${loc.offset} holds another block than ${id}`)
    return decoded.bytes
  }

  /** The record at `loc` as read (from memory or the pack); `again` when its pack is gone on a first attempt, `missing` on a later one. */
  private async recordAt (loc: Location, attempt: number): Promise<Uint8Array | 'again' | 'missing'> {
    const appender = this.dirty.get(loc.pack) ?? (this.appender?.pack === loc.pack ? this.appender : undefined)
    const buffered = appender?.readBuffered(loc.offset, loc.length)
    if (buffered !== undefined) return buffered
    try {
      return await this.readers.read(loc.pack, loc.offset, loc.length)
    } catch (err: any) {
      if (err?.code !== 'ENOENT') throw err
      return attempt === 0 ? 'again' : 'missing'
    }
  }

  /**
   * Note on the index entry of `multihash` what a read of its record at
   * `loc` found: `failed` marks it bad (the block counts as not here, and
   * the next put writes it anew; see `failedCheck`), else the mark is
   * cleared. Only while the entry still points at that record, and
   * serialised with commits and deletes (a delete in between must not be
   * undone). Not synced: a mark lost in a crash is made again by the next
   * read. A failure to note is not the reader's: it is ignored.
   */
  private async markRecord (multihash: Uint8Array, loc: Location, failed: boolean): Promise<void> {
    await this.serial(async () => {
      const key = indexKey(multihash)
      const value = await this.db.get(key)
      if (value === undefined || failedCheck(value) === failed || !sameLocation(decodeLocation(value), loc)) return
      await this.db.put(key, encodeLocation(loc, failed))
    }).catch(() => {})
  }

  /**
   * Append one record of `length` bytes (written by `fill`) for the block
   * `id` and note it for the next commit; `due`, asked once the appender is
   * ready (another writer may have got there meanwhile), can call it off.
   * Waits while the appender is congested. True when it was appended.
   */
  private async appendRecord (id: string, multihash: Uint8Array, length: number, fill: (out: Uint8Array) => void, options: { entry?: Pick<PendingEntry, 'movedFrom' | 'failed' | 'replaces' | 'owner'>, due?: () => boolean } = {}): Promise<boolean> {
    const appender = await this.appenderFor(length)
    if (options.due?.() === false) return false
    const offset = appender.append(length, fill)
    this.dirty.set(appender.pack, appender)
    this.pending.set(id, { multihash, loc: { pack: appender.pack, offset, length }, ...options.entry })
    if (appender.congested) await appender.drain()
    return true
  }

  /** The appender to write a record of `length` bytes to, rolling over to a new pack when full. */
  private async appenderFor (length: number): Promise<PackAppender> {
    for (;;) {
      const a = this.appender
      if (a !== undefined && a.failed === undefined && (a.size + length <= this.maxPackBytes || a.size === PACK_HEADER)) return a
      this.rolling ??= this.rollover().finally(() => { this.rolling = undefined })
      await this.rolling
    }
  }

  private async rollover (): Promise<void> {
    const old = this.appender
    this.appender = undefined
    // a full pack waiting for its commit is written now and holds no memory meanwhile
    if (old !== undefined && this.dirty.has(old.pack)) old.writeBehind()
    // closed now unless a commit syncs it: closing it under that commit failed it ("file closed"), losing what it covered
    else if (old !== undefined && !this.syncing.has(old)) await old.close()
    const pack = this.nextPack++
    const a = await PackAppender.create(this.dir, pack, this.segments)
    this.createdSinceCommit = true
    this.metas.set(pack, { committed: 0, deadBytes: 0, deadRecords: 0 })
    this.dirty.set(pack, a)
    this.appender = a
  }

  /** Run `fn` after every earlier serialised index change (commits, deletes, pack removals). */
  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.serialChain.then(fn, fn)
    this.serialChain = run.catch(() => {})
    return await run
  }

  private async commitNow (): Promise<void> {
    const entries = this.pending
    this.pending = new Map()
    this.committing = entries
    const legacyDeletes = this.legacyDeletes
    this.legacyDeletes = []
    const written = [...this.dirty.values()]
    this.dirty.clear()
    for (const a of written) this.syncing.add(a)
    const sizes = written.map(a => a.size)
    try {
      // every sync settles before a failure is handled: which packs were written whole is then known
      const synced = await Promise.allSettled(written.map(async a => { await a.sync() }))
      const failure = synced.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failure !== undefined) throw failure.reason
      if (this.createdSinceCommit) {
        this.createdSinceCommit = false
        await syncDir(this.dir)
      }
      const batch = this.db.batch()
      for (const entry of entries.values()) {
        const key = indexKey(entry.multihash)
        let failed = false
        if (entry.movedFrom !== undefined) {
          const value = await this.db.get(key)
          if (value === undefined || !sameLocation(decodeLocation(value), entry.movedFrom)) {
            this.countDead(entry.loc) // deleted (or rewritten) while being moved
            continue
          }
          this.countDead(entry.movedFrom)
          // a verbatim copy of a bad record is as bad: the mark moves with it
          failed = entry.failed === true || failedCheck(value)
        } else if (entry.replaces === true) {
          const value = await this.db.get(key)
          if (value !== undefined) this.countDead(decodeLocation(value))
        }
        batch.put(key, encodeLocation(entry.loc, failed))
      }
      for (const key of legacyDeletes) batch.del(key)
      const committed = new Map<number, number>()
      written.forEach((a, i) => committed.set(a.pack, sizes[i]))
      for (const pack of new Set([...committed.keys(), ...this.metaDirty])) {
        const meta = this.metas.get(pack)
        if (meta !== undefined) batch.put(metaKey(pack), encodeMeta({ ...meta, committed: committed.get(pack) ?? meta.committed }))
      }
      if (batch.length === 0) batch.del(new Uint8Array([0xff, 0xff, 0xff])) // still fsyncs LevelDB's log
      await batch.write({ sync: true })
      for (const [pack, size] of committed) {
        const meta = this.metas.get(pack)
        if (meta !== undefined) meta.committed = size
      }
      this.metaDirty.clear()
    } catch (err) {
      this.failedCommits++
      await this.abandon(written)
      this.requeue(entries, written)
      throw typedWriteError(err)
    } finally {
      this.committing = undefined
      for (const a of written) this.syncing.delete(a)
      for (const a of written) {
        if (a !== this.appender && !this.dirty.has(a.pack)) await a.close().catch(() => {})
      }
    }
  }

  /**
   * After a failed commit, what it covered in packs that were written
   * whole waits for the next commit again: other writers' blocks were in it
   * (a commit covers every write so far), and their own commit must cover
   * them. What was in packs that failed is gone (cut back by
   * {@link abandon}); {@link failedCommits} tells writers that a commit
   * failed while they wrote. Deletes of the former layout's rows are not
   * queued again: the migration moves those blocks again at the next open.
   */
  private requeue (entries: Map<string, PendingEntry>, written: PackAppender[]): void {
    const failed = new Set(written.filter(a => a.failed !== undefined).map(a => a.pack))
    for (const a of written) if (a.failed === undefined && !this.dirty.has(a.pack) && this.metas.has(a.pack)) this.dirty.set(a.pack, a)
    for (const [id, entry] of entries) {
      if (!failed.has(entry.loc.pack) && !this.pending.has(id)) this.pending.set(id, entry)
    }
  }

  /**
   * After a failed commit: what it covered is not acknowledged. Packs that
   * failed to write are cut back to their committed length and no longer
   * appended to; writes go on in a new pack.
   */
  private async abandon (written: PackAppender[]): Promise<void> {
    // dead counts taken since the last commit may be of records now dropped:
    // back to what is on disk
    for (const pack of this.metaDirty) {
      const value = await this.db.get(metaKey(pack)).catch(() => undefined)
      if (value !== undefined) this.metas.set(pack, decodeMeta(value))
    }
    this.metaDirty.clear()
    for (const a of written) {
      if (a.failed === undefined) continue
      const meta = this.metas.get(a.pack)
      await a.truncate(meta?.committed ?? 0).catch(() => {})
      if (a === this.appender) this.appender = undefined
      this.dirty.delete(a.pack)
      if (meta !== undefined && meta.committed === 0) {
        this.metas.delete(a.pack)
        await unlink(join(this.dir, packFileName(a.pack))).catch(() => {})
      }
    }
  }

  private migrationHost (): MigrationHost {
    return {
      db: this.db,
      move: async (multihash, bytes, legacyKey) => {
        this.legacyDeletes.push(legacyKey)
        const id = idOf(multihash)
        if (multihash[0] === IDENTITY || this.pendingHas(id)) return
        // indexed already and intact: a run killed between its pack's sync and its
        // index batch left the record, which this open salvaged (recover.ts); a
        // second copy would be dead space, so only the old row goes
        const indexed = await this.db.get(indexKey(multihash))
        if (indexed !== undefined && !failedCheck(indexed)) return
        // values of that layout had no checksum of their own: hash them once
        // here, as the record's crc32c will vouch only for what is written
        const cid = CID.createV1(RAW, Digest.decode(multihash))
        if (cid.multihash.code === SHA2_256 && !matchesCID(cid, bytes)) { this.migrationDropped.push(cid); return }
        const length = recordLength(multihash.byteLength, bytes.byteLength)
        await this.appendRecord(id, multihash, length, out => { encodeRecord(out, multihash, bytes) }, { entry: { replaces: true } })
      },
      commit: async () => { await this.commit() }
    }
  }

  private compactionHost (): CompactionHost {
    return {
      dir: this.dir,
      freeBytes: async () => {
        return await diskFree(this.dir)
      },
      packs: () => {
        const current = this.appender?.pack
        return [...this.metas].filter(([pack]) => pack !== current && !this.dirty.has(pack)).map(([pack, meta]) => ({ pack, meta: { ...meta } }))
      },
      isLive: async (multihash, loc) => {
        const id = idOf(multihash)
        if (this.pending.has(id)) return false
        const value = await this.db.get(indexKey(multihash))
        return value !== undefined && sameLocation(decodeLocation(value), loc)
      },
      copy: async (multihash, record, from, failed) => {
        const id = idOf(multihash)
        if (this.pending.has(id)) return
        await this.appendRecord(id, multihash, record.byteLength, out => { out.set(record) }, { entry: { movedFrom: from, failed: failed ? true : undefined }, due: () => !this.pending.has(id) })
      },
      commit: async () => { await this.commit() },
      remove: async (pack) => {
        return await this.serial(async () => {
          const meta = this.metas.get(pack)
          if (meta === undefined || meta.deadBytes < meta.committed - PACK_HEADER) return false
          // the counters say nothing is live: the index must agree before a
          // byte is lost. Each block with a record here is looked up (headers
          // only, O(records of this pack)), not the whole index, under the lock
          // that every commit waits for.
          try {
            for await (const { multihash } of scanPack(join(this.dir, packFileName(pack)), PACK_HEADER, meta.committed)) {
              const value = await this.db.get(indexKey(multihash))
              if (value !== undefined && decodeLocation(value).pack === pack) return false
            }
          } catch (err: any) {
            if (err?.code !== 'ENOENT') throw err // a pack already gone holds nothing
          }
          await this.init.faults?.beforePackRemoval?.(pack, 'counters')
          await this.db.del(metaKey(pack), { sync: true })
          this.metas.delete(pack)
          this.readers.retire(pack)
          await this.init.faults?.beforePackRemoval?.(pack, 'file')
          await unlink(join(this.dir, packFileName(pack))).catch(() => {})
          return true
        })
      }
    }
  }
}
