/**
 * The `interface-blockstore` methods that are the same in every block store:
 * streaming and many-block forms of `put`, `getBytes` and `delete`.
 *
 * @module
 */
import { NotFoundError } from '../errors.js'
import { collect, idOf, once, throwIfAborted } from './util.js'
import { IDENTITY, assertSupportedHash, verifyBlock } from './verify.js'
import type { AbortOptions, BlockStoreComponents, PutWatch } from './api.js'
import type { InputPair, Pair } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

/** Base class: a store implements `put`, `getBytes` and `delete`; the rest follows. */
export abstract class BlockStoreBase {
  /** Open {@link BlockStoreBase.watchPuts} watches: ids of blocks put while each is open. */
  private readonly watches = new Set<Set<string>>()

  abstract put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<CID>
  abstract delete (cid: CID, options?: AbortOptions): Promise<void>
  /** The stored bytes of `multihash` (not hash-checked here), or undefined. */
  protected abstract readStored (multihash: Uint8Array): Promise<Uint8Array | undefined>
  /**
   * Whether `getBytes` checks the sha-256 of what it read: a store whose
   * records carry their own checksum (checked by `readStored`) need not, as
   * blocks are hash-checked where they enter the store.
   */
  protected abstract readonly hashOnRead: boolean

  constructor (protected readonly components: BlockStoreComponents) {}

  /**
   * The whole block as one buffer, checked: by its sha-256, or by the
   * record's own checksum where the store has one ({@link hashOnRead}).
   *
   * @throws {NotFoundError} when the block is not here
   * @throws {InvalidBlockError} when the stored bytes fail their check
   */
  async getBytes (cid: CID, options?: AbortOptions): Promise<Uint8Array> {
    throwIfAborted(options)
    assertSupportedHash(cid)
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest
    const bytes = await this.readStored(cid.multihash.bytes)
    if (bytes === undefined) throw new NotFoundError(`block ${cid.toString()} not found`)
    if (this.hashOnRead) verifyBlock(cid, bytes)
    this.components.metrics?.blocksRead.inc()
    return bytes
  }

  async * putMany (source: Iterable<InputPair> | AsyncIterable<InputPair>, options?: AbortOptions): AsyncGenerator<CID> {
    for await (const { cid, bytes } of source) {
      yield await this.put(cid, bytes, options)
    }
  }

  async * get (cid: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    yield await this.getBytes(cid, options)
  }

  async * getMany (source: Iterable<CID> | AsyncIterable<CID>, options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const cid of source) {
      yield { cid, bytes: once(await this.getBytes(cid, options)) }
    }
  }

  async * deleteMany (source: Iterable<CID> | AsyncIterable<CID>, options?: AbortOptions): AsyncGenerator<CID> {
    for await (const cid of source) {
      await this.delete(cid, options)
      yield cid
    }
  }

  touch (cid: CID): void {
    if (this.watches.size === 0) return
    const id = idOf(cid.multihash.bytes)
    for (const watch of this.watches) watch.add(id)
  }

  watchPuts (): PutWatch {
    const ids = new Set<string>()
    this.watches.add(ids)
    return {
      seen: (cid: CID) => ids.has(idOf(cid.multihash.bytes)),
      stop: () => { this.watches.delete(ids) }
    }
  }

  /**
   * What every `put` does first: check the abort signal and the hash
   * function, gather the bytes, hash-check them when asked, tell the watches.
   */
  protected async acceptPut (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<{ data: Uint8Array, multihash: Uint8Array, id: string }> {
    throwIfAborted(options)
    assertSupportedHash(cid)
    const data = await collect(bytes)
    if (options?.verify === true) verifyBlock(cid, data)
    const multihash = cid.multihash.bytes
    const id = idOf(multihash)
    for (const watch of this.watches) watch.add(id)
    return { data, multihash, id }
  }
}
