/**
 * The LevelDB block store: the interface-blockstore contract, durability of
 * committed blocks, and hash checks that never let corrupt bytes out.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ClassicLevel } from 'classic-level'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { assertBytesEqual, randomBytes } from '../../helpers/bytes.js'
import { defer, openBlockStore, tempDir } from '../../helpers/temp.js'
import { flipEveryBlock } from './fixtures.js'
import type { CleanupContext } from '../../helpers/temp.js'
import type { LevelBlockStore } from '../../../node/blocks/index.js'

const KiB = 1024

async function rawCID (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(bytes))
}

async function makeBlocks (count: number, size: number, seed: number): Promise<Array<{ cid: CID, bytes: Uint8Array }>> {
  const blocks = []
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(size, seed * 1000 + i)
    blocks.push({ cid: await rawCID(bytes), bytes })
  }
  return blocks
}

async function concat (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const part of source) parts.push(part)
  return new Uint8Array(Buffer.concat(parts))
}

/** Assert `fn` rejects with an error whose `name` is `name`. */
async function rejectsWithName (fn: () => Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(fn, (err: any) => {
    assert.equal(err?.name, name, `expected ${name}, got ${String(err?.name)}: ${String(err?.message)}`)
    return true
  })
}

/** Close `store` and open a new one on the same directory. */
async function reopen (t: CleanupContext, dir: string, store: LevelBlockStore): Promise<LevelBlockStore> {
  await store.close()
  return await openBlockStore(t, dir)
}

describe('LevelBlockStore', () => {
  it('put / get / getBytes / has / delete / getAll round trip', async (t) => {
    const store = await openBlockStore(t)
    const blocks = await makeBlocks(5, 3000, 1)
    for (const { cid, bytes } of blocks) {
      assert.equal(await store.has(cid), false)
      assert.equal((await store.put(cid, bytes)).toString(), cid.toString())
      assert.equal(await store.has(cid), true)
    }
    for (const { cid, bytes } of blocks) {
      assertBytesEqual(await store.getBytes(cid), bytes)
      assertBytesEqual(await concat(store.get(cid)), bytes)
    }

    // the same multihash under a dag-pb CID is the same block
    const asDagPb = CID.createV1(0x70, blocks[0].cid.multihash)
    assert.equal(await store.has(asDagPb), true)
    assertBytesEqual(await store.getBytes(asDagPb), blocks[0].bytes)

    const all = new Map<string, Uint8Array>()
    for await (const { cid, bytes } of store.getAll()) {
      all.set(cid.toString(), await concat(bytes))
    }
    assert.equal(all.size, blocks.length)
    for (const { cid, bytes } of blocks) assertBytesEqual(all.get(cid.toString()) ?? new Uint8Array(), bytes)

    await store.delete(blocks[1].cid)
    assert.equal(await store.has(blocks[1].cid), false)
    await rejectsWithName(async () => await store.getBytes(blocks[1].cid), 'NotFoundError')
    assert.equal(await store.has(blocks[0].cid), true)
    let left = 0
    for await (const { cid } of store.getAll()) {
      assert.notEqual(cid.toString(), blocks[1].cid.toString())
      left++
    }
    assert.equal(left, blocks.length - 1)
  })

  it('keeps committed blocks across close and reopen', async (t) => {
    const dir = await tempDir(t)
    let store = await openBlockStore(t, dir)
    const [block] = await makeBlocks(1, 10 * KiB, 2)
    await store.put(block.cid, block.bytes)
    await store.commit()
    store = await reopen(t, dir, store)
    assert.equal(await store.has(block.cid), true)
    assertBytesEqual(await store.getBytes(block.cid), block.bytes)
  })

  it('keeps uncommitted blocks across a clean close', async (t) => {
    const dir = await tempDir(t)
    let store = await openBlockStore(t, dir)
    const blocks = await makeBlocks(3, 1000, 3)
    for (const { cid, bytes } of blocks) await store.put(cid, bytes)
    store = await reopen(t, dir, store)
    for (const { cid, bytes } of blocks) assertBytesEqual(await store.getBytes(cid), bytes)
  })

  it('detects a block corrupted on disk: the migration drops a former-layout value that fails its hash, and a pack record that fails its crc32c makes getBytes, get and getAll throw CorruptBlockError (an InvalidBlockError)', async (t) => {
    const dir = await tempDir(t)
    let store = await openBlockStore(t, dir)
    const [good, victim] = await makeBlocks(2, 4 * KiB, 4)
    await store.put(good.cid, good.bytes)
    await store.commit()
    await store.close()

    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    defer(t, async () => { await db.close() })
    await db.open()
    // a corrupt value in the former layout (bytes under the bare multihash):
    // open hashes it before moving it into a pack, and does not move it
    const corrupt = new Uint8Array(victim.bytes)
    corrupt[100] ^= 0x01
    await db.put(victim.cid.multihash.bytes, corrupt)
    await db.close()

    store = await openBlockStore(t, dir)
    assertBytesEqual(await store.getBytes(good.cid), good.bytes)
    assert.deepEqual(store.migrationDropped.map(c => c.toString()), [victim.cid.toString()], 'reported, never silent')
    assert.equal(await store.has(victim.cid), false)
    await rejectsWithName(async () => await store.getBytes(victim.cid), 'NotFoundError')
    // a pack record corrupted on disk fails its crc32c on every kind of read
    await store.put(victim.cid, victim.bytes)
    await store.commit()
    await store.close()
    assert.ok(await flipEveryBlock(dir) >= 2)
    store = await openBlockStore(t, dir)
    await rejectsWithName(async () => await store.getBytes(good.cid), 'CorruptBlockError')
    await rejectsWithName(async () => await store.getBytes(victim.cid), 'CorruptBlockError')
    // a good copy replaces a corrupt record once that record is deleted (as reads do)
    await store.delete(good.cid)
    await store.put(good.cid, good.bytes)
    assertBytesEqual(await store.getBytes(good.cid), good.bytes)
    await rejectsWithName(async () => await concat(store.get(victim.cid)), 'CorruptBlockError')
    await rejectsWithName(async () => {
      for await (const { bytes } of store.getMany([good.cid, victim.cid])) await concat(bytes)
    }, 'CorruptBlockError')

    const seen: string[] = []
    await rejectsWithName(async () => {
      for await (const { cid, bytes } of store.getAll()) {
        assert.notEqual(cid.toString(), victim.cid.toString(), 'corrupt block must not be yielded')
        await concat(bytes)
        seen.push(cid.toString())
      }
    }, 'CorruptBlockError')
    assert.ok(seen.every(c => c === good.cid.toString()))
  })

  it('throws NotFoundError for a missing block', async (t) => {
    const store = await openBlockStore(t)
    const cid = await rawCID(new TextEncoder().encode('not stored'))
    assert.equal(await store.has(cid), false)
    await rejectsWithName(async () => await store.getBytes(cid), 'NotFoundError')
    await rejectsWithName(async () => await concat(store.get(cid)), 'NotFoundError')
  })

  it('rejects a CID with an unsupported hash function on put', async (t) => {
    const store = await openBlockStore(t)
    const bytes = new TextEncoder().encode('sha2-512 block')
    const cid = CID.createV1(raw.code, await sha512.digest(bytes))
    await rejectsWithName(async () => await store.put(cid, bytes), 'InvalidArgumentError')
    assert.equal(await store.has(cid), false)
    await rejectsWithName(async () => await store.getBytes(cid), 'InvalidArgumentError')
  })

  it('put with verify: true refuses bytes that do not match the CID and stores nothing', async (t) => {
    const store = await openBlockStore(t)
    const [block] = await makeBlocks(1, 2 * KiB, 5)
    const wrong = randomBytes(2 * KiB, 6)
    await rejectsWithName(async () => await store.put(block.cid, wrong, { verify: true }), 'InvalidBlockError')
    assert.equal(await store.has(block.cid), false)
    await rejectsWithName(async () => await store.getBytes(block.cid), 'NotFoundError')
    await store.commit()
    for await (const _ of store.getAll()) assert.fail('nothing should be stored')

    // the right bytes are accepted, also as an (async) iterable of parts
    async function * parts (): AsyncGenerator<Uint8Array> {
      yield block.bytes.subarray(0, 100)
      yield block.bytes.subarray(100)
    }
    await store.put(block.cid, parts(), { verify: true })
    assertBytesEqual(await store.getBytes(block.cid), block.bytes)
  })

  it('serves blocks written past flushBytes without commit: pending, in flight and flushed', async (t) => {
    const store = await openBlockStore(t, undefined, { flushBytes: 64 * KiB })
    const blocks = await makeBlocks(40, 10 * KiB, 7) // 400 KiB: several background flushes

    // pending, below the threshold
    await store.put(blocks[0].cid, blocks[0].bytes)
    assertBytesEqual(await store.getBytes(blocks[0].cid), blocks[0].bytes)

    // reads of stored blocks racing each put (which may start a background
    // flush, so blocks move pending → in flight → LevelDB under the reads)
    for (let i = 1; i < blocks.length; i++) {
      const put = store.put(blocks[i].cid, blocks[i].bytes)
      const reads = blocks.slice(Math.max(0, i - 8), i).map(async ({ cid, bytes }) => {
        assertBytesEqual(await store.getBytes(cid), bytes)
        assert.equal(await store.has(cid), true)
      })
      await Promise.all([put, ...reads])
      assertBytesEqual(await store.getBytes(blocks[i].cid), blocks[i].bytes)
    }

    for (const { cid, bytes } of blocks) {
      assert.equal(await store.has(cid), true)
      assertBytesEqual(await store.getBytes(cid), bytes)
    }
    let count = 0
    for await (const _ of store.getAll()) count++
    assert.equal(count, blocks.length)
  })
})
