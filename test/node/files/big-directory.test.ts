/**
 * A namespace directory with too many entries for one UnixFS block, on a
 * real LevelDB namespace and pack block store: its DAG is HAMT-sharded, so it
 * and the directories above it have CIDs, and a CAR export of it holds a DAG
 * IPFS's exporter lists in full. Before, such a directory had no CID (a flat
 * folder of 20,000 mails), and `get` and `car export` of it were refused.
 *
 * Also the directory DAGs' memory (node/content/directory.ts): a quiet
 * namespace's directories are built once, a write builds them again, and a
 * directory whose node garbage collection removed is built again.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagPb from '@ipld/dag-pb'
import { CarReader } from '@ipld/car'
import { UnixFS } from 'ipfs-unixfs'
import { exporter } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import { filesOnDisk } from './fixtures.js'
import { DirectoryDags, parseChunker } from '../../../node/content/index.js'

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

async function collect (source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of source) parts.push(p)
  return Buffer.concat(parts)
}

describe('a directory too large for one block', () => {
  it('is HAMT-sharded: it and the directories above it have CIDs, and its CAR lists every entry', { timeout: 120_000 }, async t => {
    const { files, namespace } = await filesOnDisk(t)
    const small = await files.add('/ok/small.txt', once(new TextEncoder().encode('small')), { chunker: parseChunker('size-65536') })
    const okBefore = (await files.stat('/ok')).cid
    // long names: ~4,400 links of ~240 bytes pass the 1 MiB block
    const names = Array.from({ length: 4400 }, (_, i) => `${'m'.repeat(200)}-${String(i).padStart(5, '0')}.eml`)
    for (let i = 0; i < names.length; i += 1000) {
      await namespace.putFiles(names.slice(i, i + 1000).map(name => ({ path: `/mail/${name}`, record: { cid: small.cid, size: small.size, mode: 0o644, mtime: 1_000 } })))
    }
    const root = await files.ls('/')
    const byName = new Map(root.map(e => [e.name, e]))
    assert.match(byName.get('mail')?.cid ?? '', /^bafy/)
    assert.equal(byName.get('ok')?.cid, okBefore, 'a sibling keeps its CID')
    assert.match((await files.stat('/')).cid, /^bafy/)
    assert.equal((await files.ls('/mail')).length, 4400)

    const { root: carRoot, car } = await files.exportCar('/mail')
    assert.equal(carRoot.toString(), byName.get('mail')?.cid)
    const reader = await CarReader.fromBytes(await collect(car))
    const rootNode = dagPb.decode((await reader.get(carRoot))?.bytes as Uint8Array)
    assert.equal(UnixFS.unmarshal(rootNode.Data as Uint8Array).type, 'hamt-sharded-directory')
    const store = {
      async * get (cid: CID) {
        const block = await reader.get(cid)
        if (block === undefined) throw new Error(`${cid.toString()} is not in the CAR`)
        yield block.bytes
      }
    }
    const dir = await exporter(carRoot, store)
    assert.equal(dir.type, 'directory')
    const listed: string[] = []
    for await (const e of dir.entries()) {
      assert.equal(e.cid.toString(), small.cid)
      listed.push(e.name)
    }
    assert.deepEqual(listed.sort(), [...names].sort())
  })

  it('is not remembered across or during a garbage collection, which sweeps directory nodes', { timeout: 60_000 }, async t => {
    const { files, namespace, blockstore } = await filesOnDisk(t)
    await files.add('/a/b/small.txt', once(new TextEncoder().encode('small')), { chunker: parseChunker('size-65536') })
    // the GC lock's view, driven by hand: a collection that keeps the root's node stored during it
    // and sweeps /a's, stored before it, must leave nothing remembered that names the swept node
    const gc = { generation: 0, inCollection: false }
    const dags = new DirectoryDags({ blockstore, namespace, gcLock: gc })
    await dags.cidOf('/a')
    const before = dags.built
    gc.generation++
    gc.inCollection = true
    await dags.cidOf('/')
    assert.equal(dags.built - before, 3, 'during a collection, /a/b, /a and / are built again, not taken from memory')
    await dags.cidOf('/')
    assert.equal(dags.built - before, 6, 'and nothing built during it is remembered')
    gc.generation++
    gc.inCollection = false
    await dags.cidOf('/')
    const after = dags.built
    await dags.cidOf('/')
    assert.equal(dags.built, after, 'after it, directories are remembered again')
  })

  it('is built once while the namespace is quiet, again after a write or after gc removed its node', { timeout: 60_000 }, async t => {
    const { files, blockstore, gc } = await filesOnDisk(t)
    const small = await files.add('/a/b/c/small.txt', once(new TextEncoder().encode('small')), { chunker: parseChunker('size-65536') })
    const dirs = (): number => (files as any).dirs.built
    const first = await files.stat('/')
    const builtFirst = dirs()
    assert.equal(builtFirst, 4, '/, /a, /a/b, /a/b/c')
    await files.ls('/')
    await files.stat('/a/b')
    assert.equal(dirs(), builtFirst, 'nothing built again')

    await files.add('/a/other.txt', once(new TextEncoder().encode('other')), { chunker: parseChunker('size-65536') })
    const second = await files.stat('/')
    assert.notEqual(second.cid, first.cid)
    assert.ok(dirs() > builtFirst, 'built again after a write')

    // garbage collection removes directory nodes (no file needs them): asked again, they are stored again
    await gc()
    assert.equal(await blockstore.has(CID.parse(second.cid)), false)
    const again = await files.stat('/')
    assert.equal(again.cid, second.cid)
    assert.equal(await blockstore.has(CID.parse(again.cid)), true)
    const { car } = await files.exportCar('/')
    const reader = await CarReader.fromBytes(await collect(car))
    assert.ok(await reader.has(CID.parse(small.cid)), 'the whole tree is exported')
  })
})
