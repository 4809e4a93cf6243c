/**
 * `Files.importCar` on a real block store and namespace: a directory CAR is
 * bound as a tree, a collection waiting on the import keeps every block, a
 * CAR whose directory names an entry `..` or `a/b` (made by hand: no
 * honest tool writes one) binds nothing, and one whose UnixFS file sizes lie,
 * or whose trees hold more entries than binding takes, is refused before any
 * of its blocks is written.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CarWriter } from '@ipld/car/writer'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Files } from '../../../node/files/index.js'
import { tempDir, type CleanupContext } from '../../helpers/temp.js'
import { stageCar } from '../../../node/car/index.js'
import { filesOnDisk, type FilesOnDisk } from './fixtures.js'
import { directory, rawBlock, type Block } from '../../helpers/dags.js'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { BlockStore } from '../../../node/blocks/index.js'
import type { Replica } from '../../../node/namespace/index.js'


/** A CARv1 of `blocks` with `root` as its one root, as a stream. */
async function * carOf (root: Block, blocks: Block[]): AsyncGenerator<Uint8Array> {
  const { writer, out } = CarWriter.create([root.cid])
  void (async () => { for (const b of blocks) await writer.put(b); await writer.close() })()
  yield * out
}

async function setup (t: CleanupContext): Promise<FilesOnDisk & { tmpDir: string }> {
  return { ...await filesOnDisk(t), tmpDir: await tempDir(t) }
}

async function text (files: Files, path: string): Promise<string> {
  const parts: Uint8Array[] = []
  for await (const p of files.cat(path)) parts.push(p)
  return Buffer.concat(parts).toString('utf8')
}

/** A CARv1 of `blocks` with several roots. */
async function * carOfRoots (roots: CID[], blocks: Block[]): AsyncGenerator<Uint8Array> {
  const { writer, out } = CarWriter.create(roots)
  void (async () => { for (const b of blocks) await writer.put(b); await writer.close() })()
  yield * out
}

/** What the store and the namespace hold: block count, top-level names, file paths. */
async function snapshot (blockstore: BlockStore, namespace: Replica): Promise<{ blocks: number, top: string[], files: string[] }> {
  let blocks = 0
  for await (const _ of blockstore.cids()) blocks++
  const top = (await namespace.list('/')).map(e => e.name).sort()
  const files: string[] = []
  for await (const f of namespace.files()) files.push(f.path)
  return { blocks, top, files: files.sort() }
}

/** A store and namespace holding one file already, to see that a refused import changes neither. */
async function withAFile (t: CleanupContext): Promise<FilesOnDisk & { tmpDir: string }> {
  const s = await setup(t)
  const kept = await rawBlock('kept')
  await s.files.importCar(carOf(kept, [kept]), { tmpDir: s.tmpDir, to: '/kept.txt' })
  return s
}

describe('Files.importCar', () => {
  it('a CAR staged outside the lock is published only if the store still holds the blocks it relied on', { timeout: 60_000 }, async t => {
    const { blockstore, tmpDir } = await setup(t)
    const shared = await rawBlock('already here')
    await blockstore.put(shared.cid, shared.bytes)
    const top = await directory([{ name: 'shared.txt', block: shared }])
    // the CAR leaves out the block the store has
    const staged = await stageCar({ blockstore, tmpDir }, carOf(top, [top]))
    await blockstore.delete(shared.cid) // a gc took it meanwhile
    await assert.rejects(staged.publish(), (err: any) => err.name === 'InvalidCARError' && /gone/.test(err.message))
    assert.equal(await blockstore.has(top.cid), false, 'nothing published')
    await staged.discard()
  })

  it('a DAG that repeats a directory under itself is refused, not unrolled; a name given twice is refused; nothing is bound', { timeout: 60_000 }, async t => {
    const { files, tmpDir, namespace } = await setup(t)
    // 20 levels, each linking the next twice: 2^20 paths from 22 blocks
    let level = await directory([{ name: 'leaf.txt', block: await rawBlock('x') }])
    const blocks: Block[] = [level, await rawBlock('x')]
    for (let i = 0; i < 20; i++) {
      level = await directory([{ name: 'a', block: level }, { name: 'b', block: level }])
      blocks.push(level)
    }
    await assert.rejects(files.importCar(carOf(level, blocks.reverse()), { tmpDir, to: '/bomb' }), (err: any) => err.name === 'TooLargeError')
    assert.equal(await namespace.lookup('/bomb'), undefined)
    const x = await rawBlock('one')
    const y = await rawBlock('two')
    const twice = await directory([{ name: 'same.txt', block: x }, { name: 'same.txt', block: y }])
    await assert.rejects(files.importCar(carOf(twice, [twice, x, y]), { tmpDir, to: '/twice' }), (err: any) => err.name === 'InvalidCARError' && /twice/.test(err.message))
    assert.equal(await namespace.lookup('/twice'), undefined)
  })

  it('a tree of more than MAX_BOUND_ENTRIES entries is refused (TooLargeError) before any block is written, its blocks read from the CAR or the store', { timeout: 60_000 }, async t => {
    const { files, blockstore, namespace, tmpDir } = await withAFile(t)
    // 20 levels, each linking the next twice: millions of entries from 22 blocks; the leaf is the one the store holds
    const kept = await rawBlock('kept')
    let level = await directory([{ name: 'leaf.txt', block: kept }])
    const blocks: Block[] = [level]
    for (let i = 0; i < 20; i++) {
      level = await directory([{ name: 'a', block: level }, { name: 'b', block: level }])
      blocks.push(level)
    }
    const before = await snapshot(blockstore, namespace)
    // the whole DAG in the CAR, then without the leaf (the planning reads it from the store)
    for (const [i, car] of [[...blocks, kept], blocks].entries()) {
      await assert.rejects(files.importCar(carOf(level, [...car].reverse()), { tmpDir, to: `/bomb${i}` }), (err: any) => {
        assert.equal(err.name, 'TooLargeError', err.message)
        assert.match(err.message, /more than 100000 entries.*: nothing was imported$/)
        return true
      })
      assert.deepEqual(await snapshot(blockstore, namespace), before, 'no new block, the namespace unchanged')
      for (const b of blocks) assert.equal(await blockstore.has(b.cid), false, `${b.cid.toString()} not in the store`)
    }
    // a CAR that leaves out a block the store holds is planned and bound as well
    const top = await directory([{ name: 'leaf.txt', block: kept }])
    const result = await files.importCar(carOf(top, [top]), { tmpDir, to: '/reuse' })
    assert.deepEqual(result.paths, ['/reuse'])
    assert.equal(await text(files, '/reuse/leaf.txt'), 'kept')
  })

  it('a root that is not UnixFS is imported but not bound: its path is null, the others are bound', { timeout: 60_000 }, async t => {
    const { files, tmpDir } = await setup(t)
    const good = await rawBlock('kept')
    const realCbor = await (async () => {
      const dagCbor = await import('@ipld/dag-cbor')
      const bytes = dagCbor.encode({ hello: 'world' })
      return { cid: CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes }
    })()
    const mixed = await files.importCar(carOfRoots([realCbor.cid, good.cid], [realCbor, good]), { tmpDir, to: '/mixed' })
    assert.deepEqual(mixed.paths, [null, `/mixed/${good.cid.toString()}`])
    assert.equal(mixed.unbound.length, 1)
    assert.equal(mixed.unbound[0].root, realCbor.cid.toString())
    assert.equal(await text(files, `/mixed/${good.cid.toString()}`), 'kept')
  })

  it('binds a directory CAR as a tree that garbage collection keeps', { timeout: 60_000 }, async t => {
    const { files, gc, tmpDir } = await setup(t)
    const a = await rawBlock('alpha')
    const b = await rawBlock('beta')
    const sub = await directory([{ name: 'b.txt', block: b }])
    const top = await directory([{ name: 'a.txt', block: a }, { name: 'sub', block: sub }])
    const result = await files.importCar(carOf(top, [top, a, sub, b]), { tmpDir, to: '/in/tree' })
    assert.deepEqual(result.paths, ['/in/tree'])
    await gc()
    assert.equal(await text(files, '/in/tree/a.txt'), 'alpha')
    assert.equal(await text(files, '/in/tree/sub/b.txt'), 'beta')
  })

  it('a directory linked from two places is bound at both', { timeout: 60_000 }, async t => {
    const { files, tmpDir } = await setup(t)
    const leaf = await rawBlock('twin')
    const sub = await directory([{ name: 'f.txt', block: leaf }])
    const top = await directory([{ name: 'one', block: sub }, { name: 'two', block: sub }])
    const result = await files.importCar(carOf(top, [top, sub, leaf]), { tmpDir, to: '/twins' })
    assert.deepEqual(result.paths, ['/twins'])
    assert.equal(await text(files, '/twins/one/f.txt'), 'twin')
    assert.equal(await text(files, '/twins/two/f.txt'), 'twin')
  })

  it('a file node declaring 99999999999 bytes over a 5-byte leaf is refused, naming it (InvalidUnixFSError): no block written, nothing bound', { timeout: 60_000 }, async t => {
    const { files, blockstore, namespace, tmpDir } = await withAFile(t)
    const leaf = await rawBlock('hello')
    const bytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'file', blockSizes: [99999999999n] }).marshal(), Links: [{ Hash: leaf.cid, Tsize: 5 }] }))
    const liar: Block = { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
    const before = await snapshot(blockstore, namespace)
    for (const to of [undefined, '/liar']) {
      await assert.rejects(files.importCar(carOf(liar, [liar, leaf]), { tmpDir, to }), (err: any) => {
        assert.equal(err.name, 'InvalidUnixFSError', err.message)
        assert.equal(err.cid, liar.cid.toString())
        assert.ok(err.message.includes(liar.cid.toString()) && /nothing was imported$/.test(err.message), err.message)
        return true
      })
      assert.deepEqual(await snapshot(blockstore, namespace), before, 'no new block, the namespace unchanged')
      assert.equal(await blockstore.has(leaf.cid), false)
      assert.equal(await blockstore.has(liar.cid), false)
    }
  })

  it('a directory entry that is not a file name, or a name given twice, refuses the import before any block is written', { timeout: 60_000 }, async t => {
    const { files, blockstore, namespace, tmpDir } = await withAFile(t)
    const cases = [['..'], ['.'], ['a/b'], [''], ['nul\0name'], ['n'.repeat(256)], ['dup.txt', 'dup.txt']]
    const before = await snapshot(blockstore, namespace)
    for (const names of cases) {
      const ok = await rawBlock(`fine ${names[0]}`)
      const leaves = await Promise.all(names.map(async (n, i) => await rawBlock(`bad ${n} ${i}`)))
      const sub = await directory([{ name: 'fine.txt', block: ok }, ...names.map((name, i) => ({ name, block: leaves[i] }))])
      const top = await directory([{ name: 'sub', block: sub }])
      await assert.rejects(files.importCar(carOf(top, [top, sub, ok, ...leaves]), { tmpDir, to: '/evil' }), (err: any) => {
        assert.equal(err.name, 'InvalidCARError', err.message)
        assert.ok(err.message.includes(JSON.stringify(names[0])) && /nothing was imported$/.test(err.message), err.message)
        return true
      })
      assert.deepEqual(await snapshot(blockstore, namespace), before, `${JSON.stringify(names[0])}: no new block, the namespace unchanged`)
      for (const b of [top, sub, ok, ...leaves]) assert.equal(await blockstore.has(b.cid), false)
    }
  })

  it('a directory naming an entry .. or a/b binds nothing (InvalidCARError), and gc drops its blocks', { timeout: 60_000 }, async t => {
    const { files, gc, tmpDir, namespace } = await setup(t)
    for (const name of ['..', 'a/b']) {
      const ok = await rawBlock(`fine ${name}`)
      const bad = await rawBlock(`bad ${name}`)
      const top = await directory([{ name: 'fine.txt', block: ok }, { name, block: bad }])
      await assert.rejects(files.importCar(carOf(top, [top, ok, bad]), { tmpDir, to: '/evil' }), (err: any) => err.name === 'InvalidCARError' && err.message.includes(JSON.stringify(name)))
      assert.equal(await namespace.lookup('/evil'), undefined, 'nothing bound, not even the good entry')
      await gc()
      await assert.rejects(text(files, top.cid.toString()), (err: any) => err.name === 'NotFoundError')
    }
  })
})
