/**
 * A block store in memory, for simulations that run the durability service
 * on hundreds of nodes in one process: the pack store's contract (every
 * read hash-checked, `storedEntries` unchecked for the scrub, put watches
 * for garbage collection) with a `Map` in place of packs and LevelDB.
 *
 * The mechanism: blocks are kept by multihash, as the pack store keys them,
 * so one block under a raw and a dag-pb CID is stored once; `commit` has
 * nothing to fsync. {@link MemoryBlockStore.corrupt} flips a byte of a
 * stored block in place — the silent disk fault a scrub must find.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { BlockStoreBase } from '../node/blocks/store-base.js'
import { idOf, throwIfAborted } from '../node/blocks/util.js'
import type { AbortOptions, BlockStore, PutWatch } from '../node/blocks/index.js'
import type { Pair } from 'interface-blockstore'

const RAW = 0x55

/** {@link BlockStore} in memory; see the module comment. */
export class MemoryBlockStore extends BlockStoreBase implements BlockStore {
  protected readonly hashOnRead = true
  private readonly blocks = new Map<string, { multihash: Uint8Array, bytes: Uint8Array }>()
  private bytesStored = 0

  constructor () {
    super({})
  }

  async open (): Promise<void> {}
  async close (): Promise<void> {}
  async commit (): Promise<void> {}

  async put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<CID> {
    const { data, multihash, id } = await this.acceptPut(cid, bytes, options)
    const before = this.blocks.get(id)
    if (before !== undefined) this.bytesStored -= before.bytes.byteLength
    this.blocks.set(id, { multihash, bytes: data })
    this.bytesStored += data.byteLength
    return cid
  }

  async has (cid: CID, options?: AbortOptions): Promise<boolean> {
    throwIfAborted(options)
    return this.blocks.has(idOf(cid.multihash.bytes))
  }

  async delete (cid: CID, options?: AbortOptions): Promise<void> {
    throwIfAborted(options)
    const id = idOf(cid.multihash.bytes)
    const block = this.blocks.get(id)
    if (block === undefined) return
    this.bytesStored -= block.bytes.byteLength
    this.blocks.delete(id)
  }

  protected async readStored (multihash: Uint8Array): Promise<Uint8Array | undefined> {
    return this.blocks.get(idOf(multihash))?.bytes
  }

  async * getAll (options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const { cid, bytes } of this.storedEntries(options)) yield { cid, bytes: (function * () { yield bytes })() }
  }

  async * cids (options?: AbortOptions): AsyncGenerator<CID> {
    for (const { multihash } of [...this.blocks.values()]) {
      throwIfAborted(options)
      yield CID.createV1(RAW, Digest.decode(multihash))
    }
  }

  async * storedEntries (options?: AbortOptions): AsyncGenerator<{ cid: CID, bytes: Uint8Array }> {
    for (const { multihash, bytes } of [...this.blocks.values()]) {
      throwIfAborted(options)
      yield { cid: CID.createV1(RAW, Digest.decode(multihash)), bytes }
    }
  }

  override watchPuts (): PutWatch {
    return super.watchPuts()
  }

  async approximateSize (): Promise<number> {
    return this.bytesStored
  }

  /** Flip one byte of the stored block `cid` (a silent disk fault); false when it is not here. */
  corrupt (cid: CID): boolean {
    const block = this.blocks.get(idOf(cid.multihash.bytes))
    if (block === undefined || block.bytes.byteLength === 0) return false
    const bytes = block.bytes.slice()
    bytes[0] ^= 0xff
    block.bytes = bytes
    return true
  }

  /**
   * Make `target` hold exactly the blocks stored here now, bytes as they are
   * (a corrupt block stays corrupt): a copy of the disk, as a backup takes it.
   */
  copyTo (target: MemoryBlockStore): void {
    target.blocks.clear()
    for (const [id, block] of this.blocks) target.blocks.set(id, { ...block })
    target.bytesStored = this.bytesStored
  }

  /** Number of blocks stored. */
  get size (): number { return this.blocks.size }
}
