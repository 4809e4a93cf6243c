import '../../../node/polyfills.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarIndexer } from '@ipld/car/indexer'
import { CarReader } from '@ipld/car/reader'
import { CarWriter } from '@ipld/car/writer'
import { importBytes, importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { createBlockStore } from '../../../node/blocks/index.js'
import { exportCar, importCar, linksOf } from '../../../node/car/index.js'
import type { BlockStore } from '../../../node/blocks/index.js'
import type { BlockIndex } from '@ipld/car/indexer'
import type { CID } from 'multiformats/cid'

const importOptions = { cidVersion: 1 as const, rawLeaves: true, chunker: fixedSize({ chunkSize: 1024 }) }

/** Deterministic pseudo-random bytes (xorshift), so each file has distinct chunks. */
function pseudoRandom (size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size)
  let x = seed | 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

async function collect (source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const part of source) parts.push(part)
  return Buffer.concat(parts)
}

/** Feed `bytes` in chunks of `size`, as a network stream would. */
async function * chunked (bytes: Uint8Array, size = 997): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size)
}

async function count (store: BlockStore): Promise<number> {
  let n = 0
  for await (const _ of store.getAll()) n++
  return n
}

/** The expected DAG order: recursive depth-first pre-order, each node once. */
async function dfsOrder (store: BlockStore, root: CID): Promise<CID[]> {
  const seen = new Set<string>()
  const order: CID[] = []
  const visit = async (cid: CID): Promise<void> => {
    if (seen.has(cid.toString())) return
    seen.add(cid.toString())
    order.push(cid)
    for (const link of linksOf(cid, await store.getBytes(cid))) await visit(link)
  }
  await visit(root)
  return order
}

async function blockIndex (car: Uint8Array): Promise<BlockIndex[]> {
  const indexer = await CarIndexer.fromBytes(car)
  const out: BlockIndex[] = []
  for await (const entry of indexer) out.push(entry)
  return out
}

async function assertNothingImported (store: BlockStore, tmp: string): Promise<void> {
  assert.equal(await count(store), 0, 'no block reached the main store')
  const left = (await readdir(tmp).catch(() => [])).filter(name => name.startsWith('car-'))
  assert.deepEqual(left, [], 'no staging directory left behind')
}

describe('CAR export and import', () => {
  let dir: string
  let source: BlockStore
  let fileRoot: CID
  let dirRoot: CID
  let fileCar: Uint8Array
  let dirCar: Uint8Array
  let n = 0
  const stores: BlockStore[] = []

  /** A fresh, open main store plus a tmp dir for staging. */
  async function fresh (): Promise<{ store: BlockStore, tmp: string }> {
    n++
    const store = createBlockStore({}, { path: join(dir, `store-${n}`) })
    await store.open()
    stores.push(store)
    return { store, tmp: join(dir, `tmp-${n}`) }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-car-'))
    source = createBlockStore({}, { path: join(dir, 'source') })
    await source.open()
    const big = pseudoRandom(300 * 1024, 7) // 300 raw leaves: two levels of dag-pb
    fileRoot = (await importBytes(big, source, importOptions)).cid
    let last: CID | undefined
    for await (const entry of importer([
      { path: 'dir/big.bin', content: big },
      { path: 'dir/small.txt', content: new TextEncoder().encode('hello car\n') },
      { path: 'dir/sub/other.bin', content: pseudoRandom(5 * 1024, 11) }
    ], source, importOptions)) {
      last = entry.cid
    }
    assert.ok(last !== undefined)
    dirRoot = last
    fileCar = await collect(exportCar(source, fileRoot))
    dirCar = await collect(exportCar(source, dirRoot))
  })

  after(async () => {
    for (const store of stores) await store.close().catch(() => {})
    await source?.close().catch(() => {})
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  describe('round trip', () => {
    for (const which of ['file', 'directory'] as const) {
      it(`exports and re-imports a ${which} DAG block for block`, async () => {
        const root = which === 'file' ? fileRoot : dirRoot
        const car = which === 'file' ? fileCar : dirCar
        const expected = await dfsOrder(source, root)
        assert.ok(expected.length > 300, `many blocks (${expected.length})`)

        const reader = await CarReader.fromBytes(car)
        assert.equal(reader.version, 1)
        assert.deepEqual((await reader.getRoots()).map(String), [root.toString()])
        const written: CID[] = []
        for await (const block of reader.blocks()) written.push(block.cid)
        assert.deepEqual(written.map(String), expected.map(String), 'depth-first pre-order, each block once')
        const position = new Map(written.map((cid, i) => [cid.toString(), i]))
        for await (const block of reader.blocks()) {
          for (const link of linksOf(block.cid, block.bytes)) {
            assert.ok((position.get(link.toString()) ?? -1) > (position.get(block.cid.toString()) ?? Infinity), 'parent before child')
          }
        }

        const { store, tmp } = await fresh()
        const result = await importCar({ blockstore: store, tmpDir: tmp }, chunked(car))
        assert.deepEqual(result.roots.map(String), [root.toString()])
        assert.equal(result.blocks, expected.length)
        assert.equal(result.newBlocks, expected.length)
        let size = 0
        for (const cid of expected) {
          const bytes = await store.getBytes(cid)
          assert.equal(Buffer.compare(bytes, await source.getBytes(cid)), 0, `block ${cid.toString()} byte-identical`)
          size += bytes.byteLength
        }
        assert.equal(result.bytes, size)
        assert.equal(await count(store), expected.length)
        const left = (await readdir(tmp)).filter(name => name.startsWith('car-'))
        assert.deepEqual(left, [], 'staging removed after success')
      })
    }

    it('exports the same bytes twice and stops cleanly when the consumer leaves early', async () => {
      assert.deepEqual(await collect(exportCar(source, fileRoot)), fileCar)
      let chunks = 0
      for await (const _ of exportCar(source, dirRoot)) {
        if (++chunks === 3) break
      }
      assert.equal(chunks, 3)
    })
  })

  describe('rejects bad CARs and imports nothing', () => {
    it('truncated at several offsets', async () => {
      const index = await blockIndex(fileCar)
      const headerEnd = index[0].offset
      const mid = index[Math.floor(index.length / 2)]
      const offsets = [
        3, // mid-header
        headerEnd, // header only: every block missing
        index[1].offset + 2, // mid section length / CID
        mid.blockOffset + 100, // mid-block data
        index[index.length - 1].offset, // block boundary: last block missing
        fileCar.length - 1 // last byte missing
      ]
      for (const cut of offsets) {
        const { store, tmp } = await fresh()
        await assert.rejects(importCar({ blockstore: store, tmpDir: tmp }, chunked(fileCar.subarray(0, cut))), (err: Error) => {
          assert.equal(err.name, 'InvalidCARError', `cut at ${cut}: ${err.message}`)
          return true
        })
        await assertNothingImported(store, tmp)
      }
    })

    it('tampered: one byte flipped inside a block', async () => {
      const index = await blockIndex(fileCar)
      const leaf = index[index.length - 2]
      const car = Uint8Array.from(fileCar)
      car[leaf.blockOffset + 17] ^= 0x01
      const { store, tmp } = await fresh()
      await assert.rejects(importCar({ blockstore: store, tmpDir: tmp }, chunked(car)), (err: Error) => {
        assert.equal(err.name, 'InvalidCARError')
        assert.match(err.message, new RegExp(leaf.cid.toString()))
        return true
      })
      await assertNothingImported(store, tmp)
    })

    it('incomplete DAG: one leaf left out, the error names it', async () => {
      const reader = await CarReader.fromBytes(dirCar)
      const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
      for await (const block of reader.blocks()) blocks.push(block)
      const missing = blocks.filter(b => b.cid.code === 0x55)[5]
      const { writer, out } = CarWriter.create([dirRoot])
      const bytes = collect(out)
      for (const block of blocks) if (block !== missing) await writer.put(block)
      await writer.close()
      const { store, tmp } = await fresh()
      await assert.rejects(importCar({ blockstore: store, tmpDir: tmp }, chunked(await bytes)), (err: Error) => {
        assert.equal(err.name, 'InvalidCARError')
        assert.match(err.message, new RegExp(missing.cid.toString()))
        return true
      })
      await assertNothingImported(store, tmp)
    })

    it('incomplete DAG: a partial DAG already in the store does not count', async () => {
      const { store, tmp } = await fresh()
      const { writer, out } = CarWriter.create([fileRoot])
      const bytes = collect(out)
      await writer.close() // header only, no blocks
      await store.put(fileRoot, await source.getBytes(fileRoot))
      await assert.rejects(importCar({ blockstore: store, tmpDir: tmp }, chunked(await bytes)), { name: 'InvalidCARError' })
      assert.equal(await count(store), 1, 'only the block that was there before')
    })

    it('garbage bytes, an empty input and a rootless CAR', async () => {
      const garbage = new TextEncoder().encode('this is certainly not a CAR file; '.repeat(20))
      const { writer, out } = CarWriter.create([])
      const rootless = collect(out)
      await writer.put({ cid: fileRoot, bytes: await source.getBytes(fileRoot) })
      await writer.close()
      for (const input of [garbage, new Uint8Array(0), await rootless]) {
        const { store, tmp } = await fresh()
        await assert.rejects(importCar({ blockstore: store, tmpDir: tmp }, chunked(input)), (err: Error) => {
          assert.equal(err.name, 'InvalidCARError', err.message)
          return true
        })
        await assertNothingImported(store, tmp)
      }
    })

    it('a block over maxBlockSize', async () => {
      const { store, tmp } = await fresh()
      await assert.rejects(importCar({ blockstore: store, tmpDir: tmp }, chunked(fileCar), { maxBlockSize: 512 }), (err: Error) => {
        assert.ok(err.name === 'TooLargeError' || err.name === 'InvalidCARError', err.name)
        return true
      })
      await assertNothingImported(store, tmp)
    })

    it('a header over maxHeaderSize', async () => {
      const { store, tmp } = await fresh()
      await assert.rejects(importCar({ blockstore: store, tmpDir: tmp }, chunked(fileCar), { maxHeaderSize: 8 }), { name: 'TooLargeError' })
      await assertNothingImported(store, tmp)
    })

    it('an aborted import', async () => {
      const { store, tmp } = await fresh()
      const controller = new AbortController()
      async function * slow (): AsyncGenerator<Uint8Array> {
        let i = 0
        for await (const chunk of chunked(fileCar)) {
          if (++i === 20) controller.abort()
          yield chunk
        }
      }
      await assert.rejects(importCar({ blockstore: store, tmpDir: tmp }, slow(), { signal: controller.signal }), { name: 'AbortedError' })
      await assertNothingImported(store, tmp)
    })
  })

  it('imports a CAR whose blocks partly exist already and reports counts', async () => {
    const { store, tmp } = await fresh()
    const first = await importCar({ blockstore: store, tmpDir: tmp }, chunked(fileCar))
    const second = await importCar({ blockstore: store, tmpDir: tmp }, chunked(dirCar))
    const dirBlocks = await dfsOrder(source, dirRoot)
    assert.equal(second.blocks, dirBlocks.length)
    assert.equal(second.newBlocks, dirBlocks.length - first.blocks, 'the shared file subtree is not written again')
    assert.ok(second.newBytes < second.bytes)
    assert.equal(await count(store), dirBlocks.length)
    const again = await importCar({ blockstore: store, tmpDir: tmp }, chunked(dirCar))
    assert.equal(again.blocks, dirBlocks.length)
    assert.equal(again.newBlocks, 0)
    assert.equal(again.newBytes, 0)
  })

  describe('export errors', () => {
    it('a root missing from the store → NotFoundError', async () => {
      const { store } = await fresh()
      await assert.rejects(collect(exportCar(store, fileRoot)), { name: 'NotFoundError' })
    })

    it('a block missing under the root → NotFoundError mid-stream', async () => {
      const { store, tmp } = await fresh()
      await importCar({ blockstore: store, tmpDir: tmp }, chunked(fileCar))
      const order = await dfsOrder(store, fileRoot)
      await store.delete(order[order.length - 1])
      await assert.rejects(collect(exportCar(store, fileRoot)), { name: 'NotFoundError' })
    })

    it('an aborted export → AbortedError', async () => {
      const controller = new AbortController()
      let chunks = 0
      await assert.rejects(async () => {
        for await (const _ of exportCar(source, fileRoot, { signal: controller.signal })) {
          if (++chunks === 10) controller.abort()
        }
      }, { name: 'AbortedError' })
    })
  })
})
