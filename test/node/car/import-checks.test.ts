/**
 * The UnixFS checks of `importCar` / `stageCar` (node/car/unixfs-check.ts),
 * over a real pack block store on disk: a file node whose declared sizes
 * disagree with its children, and (with `checkNames`) a directory entry that
 * is not a file name or is named twice, refuse the CAR before any block
 * reaches the store, naming the node; honest DAGs (nested, HAMT-sharded,
 * made by ipfs-unixfs-importer) pass.
 */
import '../../../node/polyfills.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { readdir } from 'node:fs/promises'
import * as dagPb from '@ipld/dag-pb'
import { CarWriter } from '@ipld/car/writer'
import { UnixFS } from 'ipfs-unixfs'
import { importer } from 'ipfs-unixfs-importer'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { importCar, stageCar } from '../../../node/car/index.js'
import { directory, rawBlock, type Block } from '../../helpers/dags.js'
import { openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import type { BlockStore } from '../../../node/blocks/index.js'

/** A CARv1 of `blocks` with `root` as its one root, as a stream. */
async function * carOf (root: Block, blocks: Block[]): AsyncGenerator<Uint8Array> {
  const { writer, out } = CarWriter.create([root.cid])
  void (async () => { for (const b of blocks) await writer.put(b); await writer.close() })()
  yield * out
}

async function dagPbBlock (node: dagPb.PBNode): Promise<Block> {
  const bytes = dagPb.encode(dagPb.prepare(node))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

/** A UnixFS file node over `links`, declaring `sizes` as their block sizes (whatever they hold). */
async function fileNode (links: Block[], sizes: bigint[], data?: Uint8Array): Promise<Block> {
  return await dagPbBlock({ Data: new UnixFS({ type: 'file', data, blockSizes: sizes }).marshal(), Links: links.map(l => ({ Hash: l.cid, Tsize: l.bytes.byteLength })) })
}

/** A HAMT shard (fanout 256: two hex digits of bucket) linking `links` by their full link names. */
async function shard (links: Array<{ name: string, block: Block }>): Promise<Block> {
  return await dagPbBlock({ Data: new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n }).marshal(), Links: links.map(l => ({ Name: l.name, Hash: l.block.cid, Tsize: l.block.bytes.byteLength })) })
}

function assertBytes (actual: Uint8Array, expected: Uint8Array, message: string): void {
  assert.equal(Buffer.compare(actual, expected), 0, message)
}

async function count (store: BlockStore): Promise<number> {
  let n = 0
  for await (const _ of store.cids()) n++
  return n
}

/** A main store holding one unrelated block, and a staging folder. */
async function setup (t: CleanupContext): Promise<{ store: BlockStore, tmpDir: string }> {
  const store = await openBlockStore(t)
  const there = await rawBlock('was here before')
  await store.put(there.cid, there.bytes)
  await store.commit()
  return { store, tmpDir: await tempDir(t) }
}

/** `importCar` of `blocks` under `root` is refused as `check` says, and leaves the store and the staging folder as they were. */
async function refused (t: CleanupContext, root: Block, blocks: Block[], check: (err: any) => boolean, options: { checkNames?: boolean } = {}): Promise<void> {
  const { store, tmpDir } = await setup(t)
  const before = await count(store)
  await assert.rejects(importCar({ blockstore: store, tmpDir }, carOf(root, blocks), options), (err: any) => {
    assert.ok(check(err), `${String(err.name)}: ${String(err.message)}`)
    assert.match(err.message, /nothing was imported$/)
    return true
  })
  assert.equal(await count(store), before, 'no block written')
  for (const b of blocks) assert.equal(await store.has(b.cid), false, `${b.cid.toString()} not in the store`)
  assert.deepEqual((await readdir(tmpDir)).filter(f => f.startsWith('car-')), [], 'no staging store left')
}

describe('importCar: UnixFS file sizes', () => {
  it('a file node declaring 99999999999 bytes over a 5-byte leaf is refused, naming it (InvalidUnixFSError); nothing is written', async t => {
    const leaf = await rawBlock('hello')
    const liar = await fileNode([leaf], [99999999999n])
    await refused(t, liar, [liar, leaf], err => err.name === 'InvalidUnixFSError' && err.cid === liar.cid.toString() && err.message.includes(liar.cid.toString()) && /99999999999/.test(err.message))
  })

  it('refuses a lie anywhere in the file: an inner node, a filesize, a link count, a child that is no piece of a file', async t => {
    const a = await rawBlock('aaaaa')
    const b = await rawBlock('bbb')
    const inner = await fileNode([a, b], [5n, 3n]) // honest: 8 bytes
    const cases: Array<{ what: string, root: Block, blocks: Block[], at: Block }> = []
    // the root is honest about its own sum, but says its inner child holds 9
    const outer = await fileNode([inner, a], [9n, 5n])
    cases.push({ what: 'an inner child size', root: outer, blocks: [outer, inner, a, b], at: outer })
    // an inner node lying under an honest-looking root
    const lyingInner = await fileNode([a, b], [5n, 4n])
    const top = await fileNode([lyingInner], [9n])
    cases.push({ what: 'a lie one level down', root: top, blocks: [top, lyingInner, a, b], at: lyingInner })
    // filesize 7 where data and block sizes say 5 (written by hand: ipfs-unixfs always writes the sum)
    const badFilesize = await dagPbBlock({ Data: Uint8Array.from([0x08, 0x02, 0x18, 7, 0x20, 5]), Links: [{ Hash: a.cid, Tsize: 5 }] })
    cases.push({ what: 'a filesize', root: badFilesize, blocks: [badFilesize, a], at: badFilesize })
    // two links, one block size
    const short = await dagPbBlock({ Data: new UnixFS({ type: 'file', blockSizes: [5n] }).marshal(), Links: [{ Hash: a.cid, Tsize: 5 }, { Hash: b.cid, Tsize: 3 }] })
    cases.push({ what: 'a link count', root: short, blocks: [short, a, b], at: short })
    // a directory linked as a piece of a file
    const dir = await directory([{ name: 'a', block: a }])
    const overDir = await fileNode([dir], [0n])
    cases.push({ what: 'a directory child', root: overDir, blocks: [overDir, dir, a], at: overDir })
    for (const c of cases) {
      await refused(t, c.root, c.blocks, err => err.name === 'InvalidUnixFSError' && err.cid === c.at.cid.toString())
    }
    // the honest inner node alone, and under an honest root, import
    const { store, tmpDir } = await setup(t)
    const honest = await fileNode([inner, a], [8n, 5n], new TextEncoder().encode('xy'))
    const result = await importCar({ blockstore: store, tmpDir }, carOf(honest, [honest, inner, a, b]))
    assert.equal(result.newBlocks, 4)
  })
})

describe('stageCar with checkNames: directory entry names', () => {
  const bad: Array<{ label: string, names: string[] }> = [
    { label: '..', names: ['..'] },
    { label: '.', names: ['.'] },
    { label: 'a/b', names: ['a/b'] },
    { label: 'empty', names: [''] },
    { label: 'NUL', names: ['nul\0name'] },
    { label: '256 bytes', names: ['n'.repeat(256)] },
    { label: 'twice', names: ['dup.txt', 'dup.txt'] }
  ]
  for (const c of bad) {
    it(`an entry named ${c.label} in a subdirectory refuses the CAR before anything is written (InvalidCARError)`, async t => {
      const ok = await rawBlock(`fine ${c.label}`)
      const leaves = await Promise.all(c.names.map(async (_, i) => await rawBlock(`bad ${c.label} ${i}`)))
      const sub = await directory([{ name: 'fine.txt', block: ok }, ...c.names.map((name, i) => ({ name, block: leaves[i] }))])
      const top = await directory([{ name: 'sub', block: sub }])
      const blocks = [top, sub, ok, ...leaves]
      await refused(t, top, blocks, err => err.name === 'InvalidCARError' && err.message.includes(sub.cid.toString()) && err.message.includes(JSON.stringify(c.names[0])), { checkNames: true })
      // without checkNames (blocks only, no binding) the same CAR imports
      const { store, tmpDir } = await setup(t)
      const staged = await stageCar({ blockstore: store, tmpDir }, carOf(top, blocks))
      try {
        assert.equal((await staged.publish()).newBlocks, new Set(blocks.map(b => b.cid.toString())).size)
      } finally {
        await staged.discard()
      }
    })
  }

  it('HAMT shards: a bad name, or a name in two shards of one directory, is refused; an honest sharded tree passes', async t => {
    const x = await rawBlock('x')
    const y = await rawBlock('y')
    const evil = await shard([{ name: '0A..', block: x }, { name: '1Bok', block: y }])
    await refused(t, evil, [evil, x, y], err => err.name === 'InvalidCARError' && err.message.includes('".."'), { checkNames: true })
    const sub = await shard([{ name: 'C3same', block: y }])
    const split = await shard([{ name: '0Asame', block: x }, { name: '1B', block: sub }])
    await refused(t, split, [split, sub, x, y], err => err.name === 'InvalidCARError' && /"same" twice/.test(err.message), { checkNames: true })
    // a HAMT under a plain directory is walked too
    const top = await directory([{ name: 'sharded', block: evil }])
    await refused(t, top, [top, evil, x, y], err => err.name === 'InvalidCARError' && err.message.includes(evil.cid.toString()), { checkNames: true })

    // made by ipfs-unixfs-importer, sharded from the first entry: imports with checkNames
    const { store, tmpDir } = await setup(t)
    const source = await openBlockStore(t)
    let root: CID | undefined
    const files = Array.from({ length: 40 }, (_, i) => ({ path: `d/sub/f${i}.txt`, content: new TextEncoder().encode(`file ${i}`) }))
    for await (const entry of importer(files, source, { cidVersion: 1, rawLeaves: true, shardSplitThresholdBytes: 1 })) root = entry.cid
    assert.ok(root !== undefined)
    const blocks = await dagOf(source, root)
    assert.ok(blocks.some(b => b.cid.code === dagPb.code && UnixFS.unmarshal(dagPb.decode(b.bytes).Data ?? new Uint8Array(0)).type === 'hamt-sharded-directory'), 'sharded')
    const result = await importCar({ blockstore: store, tmpDir }, carOf(blocks[0], blocks), { checkNames: true })
    assert.equal(result.roots[0].toString(), root.toString())
  })
})

/** The blocks of the DAG under `root`, root first. */
async function dagOf (store: BlockStore, root: CID): Promise<Block[]> {
  const out: Block[] = []
  const seen = new Set<string>()
  const stack = [root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    if (seen.has(cid.toString())) continue
    seen.add(cid.toString())
    const bytes = await store.getBytes(cid)
    out.push({ cid, bytes })
    if (cid.code === dagPb.code) for (const link of dagPb.decode(bytes).Links) stack.push(link.Hash)
  }
  return out
}

describe('importCar while a collection sweeps', () => {
  /**
   * A store holding `garbage` (a removed file's leaves), a CAR of a directory
   * over them staged (holding `inCar` of them), and a collection that began
   * before and decided to delete each of them before the import reached it.
   * Its deletes wait their turn behind the index changes under way: a
   * compaction held for a moment in its removal of a pack (the store's
   * fault hook).
   */
  async function racing (t: CleanupContext, garbage: Block[], inCar: Block[]): Promise<{ store: BlockStore, root: Block, watch: ReturnType<BlockStore['watchPuts']>, publish: () => Promise<unknown> }> {
    let removing!: () => void
    const removal = new Promise<void>(resolve => { removing = resolve })
    const store = await openBlockStore(t, undefined, {
      autoCompact: false,
      maxPackBytes: 64 * 1024,
      faults: { beforePackRemoval: async (_pack, step) => { if (step === 'counters') { removing(); await sleep(100) } } }
    })
    const tmpDir = await tempDir(t)
    // a pack of its own, dead once its block is deleted
    const dead = randomBytes(60 * 1024)
    const deadCid = CID.createV1(raw.code, await sha256.digest(dead))
    await store.put(deadCid, dead)
    for (const b of garbage) await store.put(b.cid, b.bytes)
    await store.commit()
    await store.delete(deadCid)
    const root = await directory(garbage.map((block, i) => ({ name: `f${i}`, block })))
    const staged = await stageCar({ blockstore: store, tmpDir }, carOf(root, [root, ...inCar]))
    t.after(async () => { await staged.discard() })
    const watch = store.watchPuts()
    t.after(async () => { watch.stop() })
    const compacting = store.compact()
    await removal
    const deletes = garbage.map(async b => { if (!watch.seen(b.cid)) await store.delete(b.cid) })
    const publish = async (): Promise<unknown> => {
      const published = staged.publish()
      await Promise.all([...deletes, compacting])
      return await published
    }
    return { store, root, watch, publish }
  }

  it('a block of the CAR the store holds and a collection is deleting is written anew, and the collection is told', async t => {
    const leaf = await rawBlock('a leaf of a removed file, in the CAR')
    const { store, root, watch, publish } = await racing(t, [leaf], [leaf])
    await publish()
    for (const b of [root, leaf]) {
      assertBytes(await store.getBytes(b.cid), b.bytes, `${b.cid.toString()} here after the import`)
      assert.equal(watch.seen(b.cid), true, 'a collection under way keeps it')
    }
  })

  it('a block the CAR leaves out, that the store held and a collection is deleting: the import is refused, nothing imported', async t => {
    const leaf = await rawBlock('a leaf of a removed file, left out of the CAR')
    const { store, root, publish } = await racing(t, [leaf], [])
    await assert.rejects(publish(), (err: any) => {
      assert.equal(err.name, 'InvalidCARError')
      assert.match(err.message, /collected meanwhile.*nothing was imported/)
      return true
    })
    assert.equal(await store.has(root.cid), false, 'no directory over a hole')
  })
})
