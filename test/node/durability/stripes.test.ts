/**
 * Stripe rules on real UnixFS DAGs imported with importContent into a real
 * LevelDB block store: the leaf and skeleton walks, striping with parity,
 * the paged manifest, rebuilding from every combination of lost shards
 * (virtual zero shards included), corruption, and the golden stripe vector.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { importContent, parseChunker } from '../../../node/content/index.js'
import { createErasureCoder, type ErasureCoder } from '../../../node/durability/erasure.js'
import {
  buildManifest, encodeStripes, fileLeaves, fileSkeleton, loadManifestRoot, rawCID, readManifest,
  rebuildShard, rebuildStripe, shardCID, verifyShard, type Block
} from '../../../node/durability/stripes.js'
import type { BlockGetter } from '../../../node/reads/api.js'
import { encodeManifestPage, encodeManifestRoot, stripeKey, type Stripe } from '../../../protocol/durability.js'
import { sha256 } from '../../../node/blocks/verify.js'
import * as Digest from 'multiformats/hashes/digest'
import { assertBytesEqual, randomBytes, toAsync } from '../../helpers/bytes.js'
import { openBlockStore, type CleanupContext } from '../../helpers/temp.js'
import type { LevelBlockStore } from '../../../node/blocks/index.js'

const KiB = 1024
const MiB = 1024 * KiB

const vectors = JSON.parse(readFileSync(new URL('../../../../test/fixtures/erasure/vectors.json', import.meta.url), 'utf8'))

/** Blocks in memory, hash-checked on read like the real store. */
class MemoryGetter implements BlockGetter {
  readonly blocks = new Map<string, Uint8Array>()
  reads = 0
  put (block: Block): void { this.blocks.set(block.cid.toString(), block.bytes) }
  async getBytes (cid: CID): Promise<Uint8Array> {
    this.reads++
    const bytes = this.blocks.get(cid.toString())
    if (bytes === undefined) throw new Error(`no block ${cid.toString()}`)
    return bytes
  }
}

async function collect<T> (source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of source) out.push(item)
  return out
}

/** Every subset of `items` with 1..max members. */
function subsets<T> (items: T[], max: number): T[][] {
  const out: T[][] = []
  for (let mask = 1; mask < (1 << items.length); mask++) {
    const members = items.filter((_, i) => (mask & (1 << i)) !== 0)
    if (members.length <= max) out.push(members)
  }
  return out
}

/** A stripe with CIDs as strings, for deepEqual (decoded digests are Uint8Arrays, hashed ones Buffers). */
function plain (s: Stripe): unknown {
  return { data: s.data.map(String), sizes: s.sizes, shardSize: s.shardSize, parity: s.parity.map(String) }
}

/** A copy (Buffer#slice would be a view). */
function copy (bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes)
}

function concat (parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

interface Imported { store: LevelBlockStore, root: CID, bytes: Uint8Array }

async function importFile (t: CleanupContext, bytes: Uint8Array, chunker: string): Promise<Imported> {
  const store = await openBlockStore(t)
  const pieces = bytes.byteLength === 0 ? [bytes] : Array.from({ length: Math.ceil(bytes.byteLength / MiB) }, (_, i) => bytes.subarray(i * MiB, (i + 1) * MiB))
  const { cid } = await importContent(store, toAsync(pieces), { chunker: parseChunker(chunker) })
  return { store, root: cid, bytes }
}

/** Shards of a stripe by index: data leaves (unpadded) then parity. */
function shardsOf (leaves: Uint8Array[], parity: Block[], k: number): Map<number, Uint8Array> {
  const shards = new Map<number, Uint8Array>()
  leaves.forEach((leaf, i) => shards.set(i, leaf))
  parity.forEach((p, i) => shards.set(k + i, p.bytes))
  return shards
}

/** Every combination of up to m lost real shards gives the leaves back, and each lost shard is rebuilt exactly. */
function checkEveryLoss (stripe: Stripe, leaves: Uint8Array[], parity: Block[], k: number, m: number, coder: ErasureCoder): number {
  const all = shardsOf(leaves, parity, k)
  const real = [...all.keys()]
  let combos = 0
  for (const lost of subsets(real, m)) {
    const shards = new Map([...all].filter(([i]) => !lost.includes(i)))
    const rebuilt = rebuildStripe(stripe, k, m, shards, coder)
    assert.equal(rebuilt.length, leaves.length)
    rebuilt.forEach((leaf, i) => { assertBytesEqual(leaf, leaves[i], `lost ${lost.join(',')}: leaf ${i}`) })
    for (const index of lost) {
      assertBytesEqual(rebuildShard(stripe, k, m, index, shards, coder), all.get(index) as Uint8Array, `lost ${lost.join(',')}: shard ${index}`)
    }
    combos++
  }
  const tooMany = real.slice(0, m + 1)
  if (tooMany.length === m + 1 && real.length - tooMany.length + (k - leaves.length) < k) {
    const shards = new Map([...all].filter(([i]) => !tooMany.includes(i)))
    assert.throws(() => rebuildStripe(stripe, k, m, shards, coder), { name: 'StripeUnavailableError' })
  }
  return combos
}

const FILES = [
  { name: 'empty file', size: 0, chunker: 'fastcdc', k: 4, m: 2, leaves: 1 },
  { name: 'one byte', size: 1, chunker: 'size-262144', k: 4, m: 2, leaves: 1 },
  { name: 'exactly one 256 KiB leaf', size: 262144, chunker: 'size-262144', k: 2, m: 1, leaves: 1 },
  { name: 'six leaves at 4+2 (last stripe short: 2 leaves)', size: 5 * 262144 + 1000, chunker: 'size-262144', k: 4, m: 2, leaves: 6 },
  { name: 'fastcdc ~6 MiB at 4+2', size: 6 * MiB + 12345, chunker: 'fastcdc', k: 4, m: 2 },
  { name: 'fastcdc ~3 MiB at 2+1', size: 3 * MiB + 17, chunker: 'fastcdc', k: 2, m: 1 },
  { name: 'two-level DAG (200 leaves of 4 KiB) at 3+2', size: 200 * 4096 - 5, chunker: 'size-4096', k: 3, m: 2, leaves: 200 },
  { name: 'replicas (k = 1, m = 2): one 4 KiB leaf', size: 4096, chunker: 'size-262144', k: 1, m: 2, leaves: 1 },
  { name: 'replicas (k = 1, m = 3): three leaves, the last not a multiple of 8 bytes', size: 2 * 262144 + 1001, chunker: 'size-262144', k: 1, m: 3, leaves: 3 }
] as const

describe('stripes', () => {
  let coder: ErasureCoder
  before(async () => { coder = await createErasureCoder() })

  for (const file of FILES) {
    describe(file.name, () => {
      it('fileLeaves yields the raw leaves in file order; fileSkeleton the dag-pb nodes, root first; together every block', async (t) => {
        const { store, root, bytes } = await importFile(t, randomBytes(file.size, file.size + 1), file.chunker)
        const leaves = await collect(fileLeaves(store, root))
        if ('leaves' in file) assert.equal(leaves.length, file.leaves)
        assert.ok(leaves.every(l => l.cid.code === 0x55))
        assertBytesEqual(concat(leaves.map(l => l.bytes)), bytes)
        const skeleton = await collect(fileSkeleton(store, root))
        assert.ok(skeleton.every(b => b.cid.code === 0x70))
        if (root.code === 0x70) assert.ok(skeleton[0].cid.equals(root))
        else assert.equal(skeleton.length, 0)
        const walked = new Set([...leaves, ...skeleton].map(b => b.cid.toString()))
        const stored = new Set<string>()
        for await (const { cid } of store.getAll()) stored.add(CID.createV1(0x55, cid.multihash).toString())
        const walkedHashes = new Set([...leaves, ...skeleton].map(b => CID.createV1(0x55, b.cid.multihash).toString()))
        assert.deepEqual([...walkedHashes].sort(), [...stored].sort())
        assert.equal(walked.size, walkedHashes.size)
        if (file.name.startsWith('two-level')) assert.equal(skeleton.length, 3, 'a root and two internal nodes')
      })

      it('encodeStripes, manifest round trip, and every loss of up to m shards rebuilt', async (t) => {
        const { store, root, bytes } = await importFile(t, randomBytes(file.size, file.size + 2), file.chunker)
        const { k, m } = file
        const leaves = await collect(fileLeaves(store, root))
        const encoded = await collect(encodeStripes(fileLeaves(store, root), k, m, coder))
        assert.equal(encoded.length, Math.ceil(leaves.length / k))
        encoded.forEach(({ stripe, parity }, s) => {
          const mine = leaves.slice(s * k, (s + 1) * k)
          assert.deepEqual(stripe.data.map(String), mine.map(l => l.cid.toString()))
          assert.deepEqual(stripe.sizes, mine.map(l => l.bytes.byteLength))
          assert.equal(stripe.shardSize, Math.ceil(Math.max(...stripe.sizes) / 8) * 8)
          assert.equal(parity.length, m)
          parity.forEach((p, i) => {
            assert.equal(p.bytes.byteLength, stripe.shardSize)
            assert.ok(p.cid.equals(stripe.parity[i]))
            assert.ok(p.cid.equals(rawCID(p.bytes)))
          })
        })
        // the manifest, through the real store
        const built = buildManifest(root, k, m, bytes.byteLength, encoded.map(e => e.stripe))
        for (const block of [...built.blocks, ...encoded.flatMap(e => e.parity)]) await store.put(block.cid, block.bytes)
        const manifest = await loadManifestRoot(store, built.cid)
        assert.deepEqual({ ...manifest, root: manifest.root.toString(), pages: manifest.pages.length }, { v: 1, root: root.toString(), k, m, size: bytes.byteLength, stripes: encoded.length, pages: 1 })
        const read = await collect(readManifest(store, built.cid))
        assert.deepEqual(read.map(r => r.index), encoded.map((_, i) => i))
        assert.deepEqual(read.map(r => plain(r.stripe)), encoded.map(e => plain(e.stripe)))
        // rebuild: the first and the last stripe (the short one when there is one), from every loss of up to m shards
        for (const s of new Set([0, encoded.length - 1])) {
          const { stripe, parity } = encoded[s]
          const mine = leaves.slice(s * k, (s + 1) * k).map(l => l.bytes)
          const combos = checkEveryLoss(stripe, mine, parity, k, m, coder)
          assert.ok(combos >= mine.length + m, `${combos} combinations`)
        }
      })
    })
  }

  it('an empty file is one empty leaf in one stripe of zero-length shards', async (t) => {
    const { store, root } = await importFile(t, new Uint8Array(0), 'fastcdc')
    const [{ stripe, parity }, ...rest] = await collect(encodeStripes(fileLeaves(store, root), 4, 2, coder))
    assert.equal(rest.length, 0)
    assert.deepEqual(stripe.sizes, [0])
    assert.equal(stripe.shardSize, 0)
    assert.ok(parity.every(p => p.bytes.byteLength === 0 && p.cid.equals(stripe.data[0])))
    assertBytesEqual(rebuildStripe(stripe, 4, 2, new Map([[4, parity[0].bytes]]), coder)[0], new Uint8Array(0))
  })

  it('replicas (k = 1): the parity is exactly what the coder makes of one data shard', async (t) => {
    for (const size of [4096, 1001]) {
      const { store, root } = await importFile(t, randomBytes(size, size), 'size-262144')
      const [{ stripe, parity }] = await collect(encodeStripes(fileLeaves(store, root), 1, 3, coder))
      const [leaf] = await collect(fileLeaves(store, root))
      const shard = new Uint8Array(stripe.shardSize)
      shard.set(leaf.bytes)
      const coded = coder.encode([shard], 3)
      assert.equal(parity.length, 3)
      parity.forEach((p, i) => {
        assertBytesEqual(p.bytes, coded[i])
        assert.ok(p.cid.equals(rawCID(coded[i])))
      })
      // no padding needed: the copies are the leaf itself
      assert.equal(parity[0].cid.equals(leaf.cid), size % 8 === 0)
    }
  })

  it('a short last stripe rebuilds from parity alone (its virtual zero shards count as present)', async (t) => {
    const { store, root } = await importFile(t, randomBytes(5 * 262144 + 1000, 9), 'size-262144')
    const encoded = await collect(encodeStripes(fileLeaves(store, root), 4, 2, coder))
    const { stripe, parity } = encoded[1]
    assert.equal(stripe.data.length, 2)
    const leaves = await collect(fileLeaves(store, root))
    const rebuilt = rebuildStripe(stripe, 4, 2, new Map([[4, parity[0].bytes], [5, parity[1].bytes]]), coder)
    assertBytesEqual(rebuilt[0], leaves[4].bytes)
    assertBytesEqual(rebuilt[1], leaves[5].bytes)
    assert.equal(shardCID(stripe, 4, 2), undefined)
    assert.equal(shardCID(stripe, 4, 3), undefined)
    assert.ok(shardCID(stripe, 4, 5)?.equals(stripe.parity[1]))
    assert.throws(() => shardCID(stripe, 4, 6), { name: 'InvalidArgumentError' })
    assert.throws(() => shardCID(stripe, 4, -1), { name: 'InvalidArgumentError' })
    assert.throws(() => rebuildShard(stripe, 4, 2, 3, new Map(), coder), { name: 'InvalidArgumentError' })
    // given virtual shards are ignored, whatever they hold
    const withJunk = new Map([[2, Uint8Array.of(1)], [4, parity[0].bytes], [5, parity[1].bytes]])
    assertBytesEqual(rebuildStripe(stripe, 4, 2, withJunk, coder)[1], leaves[5].bytes)
  })

  describe('corruption', () => {
    async function fixture (t: CleanupContext): Promise<{ stripe: Stripe, leaves: Uint8Array[], parity: Block[] }> {
      const { store, root } = await importFile(t, randomBytes(4 * 262144, 77), 'size-262144')
      const [{ stripe, parity }] = await collect(encodeStripes(fileLeaves(store, root), 4, 2, coder))
      const leaves = (await collect(fileLeaves(store, root))).map(l => l.bytes)
      return { stripe, leaves, parity }
    }

    it('a corrupt parity or data shard is an InvalidBlockError naming the shard', async (t) => {
      const { stripe, leaves, parity } = await fixture(t)
      const badParity = copy(parity[0].bytes)
      badParity[1000] ^= 1
      const shards = new Map<number, Uint8Array>([[1, leaves[1]], [2, leaves[2]], [3, leaves[3]], [4, badParity]])
      assert.throws(() => rebuildStripe(stripe, 4, 2, shards, coder), { name: 'InvalidBlockError', message: /shard 4/ })
      assert.throws(() => rebuildShard(stripe, 4, 2, 0, shards, coder), { name: 'InvalidBlockError' })
      const badLeaf = copy(leaves[2])
      badLeaf[0] ^= 0x80
      assert.throws(() => rebuildStripe(stripe, 4, 2, new Map([[0, leaves[0]], [1, leaves[1]], [2, badLeaf], [3, leaves[3]]]), coder), { name: 'InvalidBlockError', message: /shard 2/ })
      assert.equal(verifyShard(stripe, 4, 4, badParity), false)
      assert.equal(verifyShard(stripe, 4, 4, parity[0].bytes), true)
      // a corrupt copy of the shard being rebuilt is ignored
      assertBytesEqual(rebuildShard(stripe, 4, 2, 4, new Map([...shardsOf(leaves, parity, 4), [4, badParity]]), coder), parity[0].bytes)
    })

    it('a stripe whose parity does not match its data: rebuilt leaves fail their CID check', async (t) => {
      const { stripe, leaves } = await fixture(t)
      const other = (await collect(encodeStripes(toAsync(leaves.map((l, i) => {
        const changed = i === 0 ? copy(l).fill(7, 0, 10) : l
        return { cid: rawCID(changed), bytes: changed }
      })), 4, 2, coder)))[0]
      const lying: Stripe = { ...stripe, parity: other.stripe.parity }
      const shards = new Map<number, Uint8Array>([[1, leaves[1]], [2, leaves[2]], [3, leaves[3]], [4, other.parity[0].bytes]])
      assert.throws(() => rebuildStripe(lying, 4, 2, shards, coder), { name: 'InvalidBlockError', message: /parity does not match/ })
    })

    it('a stripe that does not fit k+m is an InvalidManifestError', async (t) => {
      const { stripe, leaves } = await fixture(t)
      const shards = new Map(leaves.map((l, i) => [i, l]))
      assert.throws(() => rebuildStripe(stripe, 3, 2, shards, coder), { name: 'InvalidManifestError' })
      assert.throws(() => rebuildStripe(stripe, 4, 3, shards, coder), { name: 'InvalidManifestError' })
      assert.throws(() => rebuildStripe({ ...stripe, shardSize: stripe.shardSize + 8 }, 4, 2, shards, coder), { name: 'InvalidManifestError' })
    })

    it('a manifest block whose bytes do not match its CID is an InvalidBlockError', async () => {
      const getter = new MemoryGetter()
      const stripes = syntheticStripes(300, 4, 2)
      const built = buildManifest(rawCID(Uint8Array.of(1)), 4, 2, 300 * 4 * 1000, stripes)
      built.blocks.forEach(b => getter.put(b))
      const page = built.blocks[1]
      const tampered = copy(page.bytes)
      tampered[tampered.length - 1] ^= 1
      getter.blocks.set(page.cid.toString(), tampered)
      await assert.rejects(collect(readManifest(getter, built.cid)), { name: 'InvalidBlockError' })
    })
  })

  describe('leaf checks', () => {
    it('encodeStripes hash-checks leaves and rejects non-raw leaves and bad k, m', async () => {
      const bytes = randomBytes(100, 1)
      const good = { cid: rawCID(bytes), bytes }
      await assert.rejects(collect(encodeStripes(toAsync([{ cid: good.cid, bytes: randomBytes(100, 2) }]), 2, 1, coder)), { name: 'InvalidBlockError' })
      const pb = CID.createV1(0x70, good.cid.multihash)
      await assert.rejects(collect(encodeStripes(toAsync([{ cid: pb, bytes }]), 2, 1, coder)), { name: 'InvalidArgumentError' })
      for (const [k, m] of [[0, 1], [2, 0], [17, 1], [2, 9], [1.5, 1]]) {
        await assert.rejects(collect(encodeStripes(toAsync([good]), k, m, coder)), { name: 'InvalidPolicyError' })
      }
      assert.equal((await collect(encodeStripes(toAsync([]), 2, 1, coder))).length, 0)
    })

    it('fileLeaves refuses a directory, honours an abort signal, and checks leaf sizes against the parent', async (t) => {
      const store = await openBlockStore(t)
      const dir = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [] }))
      const dirCID = CID.createV1(0x70, Digest.create(0x12, sha256(dir)))
      await store.put(dirCID, dir)
      await assert.rejects(collect(fileLeaves(store, dirCID)), { name: 'IsADirectoryError' })
      const { root } = await importFile(t, randomBytes(3 * 262144, 5), 'size-262144')
      const { store: other } = await importFile(t, randomBytes(3 * 262144, 5), 'size-262144')
      const controller = new AbortController()
      controller.abort()
      await assert.rejects(collect(fileLeaves(other, root, controller.signal)), { name: 'AbortedError' })
      // a parent that declares a wrong size for a leaf
      const leaf = randomBytes(10, 3)
      const leafCID = rawCID(leaf)
      const unixfs = new UnixFS({ type: 'file', blockSizes: [11n] })
      const node = dagPb.encode(dagPb.prepare({ Data: unixfs.marshal(), Links: [{ Hash: leafCID, Tsize: 10 }] }))
      const nodeCID = CID.createV1(0x70, Digest.create(0x12, sha256(node)))
      await store.put(leafCID, leaf)
      await store.put(nodeCID, node)
      await assert.rejects(collect(fileLeaves(store, nodeCID)), { name: 'InvalidBlockError', message: /parent says 11/ })
    })
  })

  describe('manifest', () => {
    it('pages of 256 stripes: 600 stripes round-trip through three pages', async () => {
      const getter = new MemoryGetter()
      const stripes = syntheticStripes(600, 4, 2)
      const built = buildManifest(rawCID(Uint8Array.of(1)), 4, 2, 600 * 4 * 1000, stripes)
      assert.equal(built.blocks.length, 4)
      assert.ok(built.blocks[3].cid.equals(built.cid))
      built.blocks.forEach(b => getter.put(b))
      const root = await loadManifestRoot(getter, built.cid)
      assert.equal(root.stripes, 600)
      assert.equal(root.pages.length, 3)
      const read = await collect(readManifest(getter, built.cid))
      assert.deepEqual(read.map(r => plain(r.stripe)), stripes.map(plain))
      assert.deepEqual(read.map(r => r.index), stripes.map((_, i) => i))
      // deterministic: the same stripes give the same manifest
      assert.ok(buildManifest(rawCID(Uint8Array.of(1)), 4, 2, 600 * 4 * 1000, syntheticStripes(600, 4, 2)).cid.equals(built.cid))
    })

    it('a file without leaves has a manifest of zero stripes and no pages', async () => {
      const getter = new MemoryGetter()
      const built = buildManifest(rawCID(new Uint8Array(0)), 2, 1, 0, [])
      built.blocks.forEach(b => getter.put(b))
      assert.equal(built.blocks.length, 1)
      assert.deepEqual(await collect(readManifest(getter, built.cid)), [])
    })

    it('inconsistent manifests are InvalidManifestErrors', async () => {
      const fileRoot = rawCID(Uint8Array.of(1))
      const stripes = syntheticStripes(5, 4, 2)
      // a short stripe before the last
      const short = [...stripes]
      short[2] = { ...short[2], data: short[2].data.slice(0, 3), sizes: short[2].sizes.slice(0, 3) }
      assert.throws(() => buildManifest(fileRoot, 4, 2, 1e9, short), { name: 'InvalidManifestError' })
      const getter = new MemoryGetter()
      const cbor = (bytes: Uint8Array): Block => ({ cid: CID.createV1(0x71, Digest.create(0x12, sha256(bytes))), bytes })
      const rootOf = (pages: Block[], count: number, size = 1e9): CID => {
        pages.forEach(p => getter.put(p))
        const block = cbor(encodeManifestRoot({ v: 1, root: fileRoot, k: 4, m: 2, size, stripes: count, pages: pages.map(p => p.cid) }))
        getter.put(block)
        return block.cid
      }
      const shortPage = cbor(encodeManifestPage({ v: 1, stripes: short }, 4, 2))
      await assert.rejects(collect(readManifest(getter, rootOf([shortPage], 5))), { name: 'InvalidManifestError', message: /only the last/ })
      const page = cbor(encodeManifestPage({ v: 1, stripes }, 4, 2))
      await assert.rejects(collect(readManifest(getter, rootOf([page], 6))), { name: 'InvalidManifestError', message: /root says 6/ })
      await assert.rejects(collect(readManifest(getter, rootOf([page], 5, 100))), { name: 'InvalidManifestError', message: /more than the file/ })
      // a page decoded against the root's k+m
      const wide = cbor(encodeManifestPage({ v: 1, stripes: syntheticStripes(1, 5, 2) }, 5, 2))
      await assert.rejects(collect(readManifest(getter, rootOf([wide], 1))), { name: 'InvalidManifestError' })
      await assert.rejects(loadManifestRoot(getter, fileRoot), { name: 'InvalidManifestError' })
      getter.put(cbor(Uint8Array.of(0xa0)))
      await assert.rejects(loadManifestRoot(getter, cbor(Uint8Array.of(0xa0)).cid), { name: 'InvalidManifestError' })
    })
  })

  describe('golden stripe vector (test/fixtures/erasure/vectors.json)', () => {
    it('encodeStripes, stripeKey and buildManifest give the committed bytes', async () => {
      const v = vectors.stripe
      const leaves: Block[] = v.leaves.map((h: string) => {
        const bytes = new Uint8Array(Buffer.from(h, 'hex'))
        return { cid: rawCID(bytes), bytes }
      })
      const [{ stripe, parity }] = await collect(encodeStripes(toAsync(leaves), v.k, v.m, coder))
      assert.deepEqual(plain(stripe), v.stripe)
      assert.deepEqual(parity.map(p => Buffer.from(p.bytes).toString('hex')), v.parity)
      assert.equal(Buffer.from(stripeKey(stripe)).toString('hex'), v.stripeKey)
      const built = buildManifest(CID.parse(v.fileRoot), v.k, v.m, v.fileSize, [stripe])
      assert.equal(Buffer.from(built.blocks[0].bytes).toString('hex'), v.page)
      assert.equal(built.blocks[0].cid.toString(), v.pageCID)
      assert.equal(Buffer.from(built.blocks[1].bytes).toString('hex'), v.manifestRoot)
      assert.equal(built.cid.toString(), v.manifestCID)
      // and every loss of up to 2 of its 5 real shards
      checkEveryLoss(stripe, leaves.map(l => l.bytes), parity, v.k, v.m, coder)
    })
  })
})

/** `count` full stripes of k random leaf CIDs of 1000 bytes each. */
function syntheticStripes (count: number, k: number, m: number): Stripe[] {
  return Array.from({ length: count }, (_, s) => ({
    data: Array.from({ length: k }, (_, i) => rawCID(randomBytes(8, s * 100 + i))),
    sizes: Array.from({ length: k }, () => 1000),
    shardSize: 1000,
    parity: Array.from({ length: m }, (_, i) => rawCID(randomBytes(8, 1e6 + s * 100 + i)))
  }))
}
