/**
 * Pins in the namespace: a file's durability policy is part of its record,
 * written by putFile, read back by every read, carried by sync, snapshots,
 * moves and conflict copies, and kept on disk.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createNamespace, signerFromKey, type Entry, type FilePin, type Replica } from '../../../node/namespace/index.js'
import { decodeEntry } from '../../../protocol/namespace.js'
import { defer, tempDir } from '../../helpers/temp.js'
import { cborCidOf, cidOf, converged, file, pullInto, replica, silent, syncAll } from './helpers.js'

const MANIFEST = cborCidOf('manifest')
const EC: FilePin = { policy: 'ec:4+2', manifest: MANIFEST }
const REPLICAS: FilePin = { policy: 'replicas:3' }

function pinOf (e: Entry | undefined): FilePin | undefined {
  assert.ok(e !== undefined && e.type === 'file', 'a file entry')
  return e.pin
}

/** path → pin (or 'no pin') of every file, from files(). */
async function pins (r: Replica): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for await (const e of r.files()) {
    assert.equal(e.type, 'file')
    out[e.path] = e.type === 'file' && e.pin !== undefined ? `${e.pin.policy}${e.pin.manifest !== undefined ? ' ' + e.pin.manifest : ''}` : 'no pin'
  }
  return out
}

describe('namespace pins', () => {
  it('putFile writes the pin; stat, lookup, list, walk and files return it; a put without pin has none', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    const put = await a.putFile('/docs/big.iso', { ...file('big'), pin: EC })
    assert.deepEqual(pinOf(put), EC)
    await a.putFile('/docs/small.txt', { ...file('small'), pin: REPLICAS })
    await a.putFile('/docs/plain.txt', file('plain'))
    assert.deepEqual(pinOf(await a.stat('/docs/big.iso')), EC)
    assert.deepEqual(pinOf(await a.lookup('/docs/small.txt')), REPLICAS)
    const plain = await a.stat('/docs/plain.txt')
    assert.equal(Object.hasOwn(plain, 'pin'), false, 'no pin key at all')
    assert.deepEqual((await a.list('/docs')).map(e => [e.name, e.type === 'file' ? e.pin?.policy : 'dir']), [['big.iso', 'ec:4+2'], ['plain.txt', undefined], ['small.txt', 'replicas:3']])
    const walked: Array<string | undefined> = []
    for await (const e of a.walk('/')) walked.push(e.type === 'file' ? e.pin?.policy : 'dir')
    assert.deepEqual(walked, ['dir', 'ec:4+2', undefined, 'replicas:3'])
    assert.deepEqual(await pins(a), { '/docs/big.iso': `ec:4+2 ${MANIFEST}`, '/docs/plain.txt': 'no pin', '/docs/small.txt': 'replicas:3' })
    // a put without a pin leaves none, even over a pinned file
    await a.putFile('/docs/big.iso', file('big'))
    assert.equal(pinOf(await a.stat('/docs/big.iso')), undefined)
  })

  it('the pin travels in the entry; changing it is a put of the same cid that replaces what the writer saw', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    const sent: Uint8Array[] = []
    a.onLocalEntries(e => sent.push(...e))
    await a.putFile('/f', { ...file('f'), pin: { policy: 'ec:4+2' } })
    await a.putFile('/f', { ...file('f'), pin: EC })
    const [first, second] = sent.map(decodeEntry)
    const op1 = first.ops.find(o => o.op !== 'retire' && o.path === '/f')
    const op2 = second.ops.find(o => o.op !== 'retire' && o.path === '/f')
    assert.ok(op1?.op === 'put' && op2?.op === 'put')
    assert.deepEqual(op1.pin, { policy: 'ec:4+2' })
    assert.equal(op2.pin?.manifest?.toString(), MANIFEST)
    assert.deepEqual(op2.replaces, [[a.id, 1]])
    assert.deepEqual(await a.conflicts(), [])
  })

  it('rejects a bad pin with InvalidArgumentError and writes nothing', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    const bad: unknown[] = [
      { policy: 'ec:0+2' }, { policy: 'ec:04+2' }, { policy: 'replicas:0' }, { policy: ' none' }, { policy: 'ec:4+2', manifest: 'nope' },
      { policy: 'replicas:1', manifest: MANIFEST }, { policy: 'ec:4+2', manifest: cidOf('raw codec') }, 'ec:4+2'
    ]
    for (const pin of bad) {
      await assert.rejects(a.putFile('/x', { ...file('x'), pin: pin as FilePin }), (err: any) => err.name === 'InvalidArgumentError', JSON.stringify(pin))
    }
    assert.equal(await a.lookup('/x'), undefined)
    assert.deepEqual(a.state().clock, {})
  })

  it('pins reach other replicas through sync, and so do pin changes', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.putFile('/v/disk.img', { ...file('disk'), pin: EC })
    await a.putFile('/v/notes', { ...file('notes'), pin: REPLICAS })
    await syncAll([a, b])
    await converged([a, b])
    assert.deepEqual(pinOf(await b.stat('/v/disk.img')), EC)
    assert.deepEqual(await pins(b), await pins(a))
    await b.putFile('/v/notes', { ...file('notes'), pin: { policy: 'none' } })
    await syncAll([a, b])
    assert.deepEqual(pinOf(await a.stat('/v/notes')), { policy: 'none' })
    assert.deepEqual(await a.conflicts(), [])
  })

  it('a move keeps the pin', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.putFile('/src/f', { ...file('f'), pin: EC })
    await a.mkdir('/dst')
    await a.move('/src', '/dst')
    await syncAll([a, b])
    assert.deepEqual(pinOf(await b.stat('/dst/src/f')), EC)
  })

  it('a concurrent pin change is a conflict like any write; each copy keeps its own version\'s pin', async () => {
    const sim = { now: Date.UTC(2026, 10, 22, 10, 30, 5) }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.putFile('/data.bin', { ...file('data'), pin: REPLICAS })
    await syncAll([a, b])
    await a.putFile('/data.bin', { ...file('data', 2_000), pin: EC })
    await b.putFile('/data.bin', { ...file('data', 3_000), pin: { policy: 'replicas:5' } })
    await syncAll([a, b])
    await converged([a, b])
    for (const r of [a, b]) {
      assert.deepEqual(pinOf(await r.stat('/data.bin')), { policy: 'replicas:5' }, 'latest mtime wins')
      const [conflict] = await r.conflicts()
      assert.ok(conflict !== undefined)
      const copy = await r.stat(conflict.copy)
      assert.equal(copy.conflictOf, '/data.bin')
      assert.deepEqual(pinOf(copy), EC)
      assert.deepEqual(await pins(r), { '/data.bin': 'replicas:5', [conflict.copy]: `ec:4+2 ${MANIFEST}` })
    }
    // moving the copy keeps its pin
    const [conflict] = await a.conflicts()
    await a.move(conflict.copy, '/data.ec.bin')
    assert.deepEqual(pinOf(await a.stat('/data.ec.bin')), EC)
  })

  it('a replica bootstrapped from a snapshot knows the same pins', async () => {
    const sim = { now: 1_000 }
    const options = { compactAfter: 5 }
    const [a, b] = [await replica(sim, options), await replica(sim, options)]
    for (let i = 0; i < 8; i++) await a.putFile(`/d/f${i}`, { ...file(`f${i}`), ...(i % 2 === 0 ? { pin: i % 4 === 0 ? EC : REPLICAS } : {}) })
    await a.putFile('/c', { ...file('c1', 2_000), pin: EC })
    await b.putFile('/c', { ...file('c2', 3_000), pin: REPLICAS })
    await syncAll([a, b])
    a.noteMember(b.id, b.state().clock)
    assert.equal(await a.compact(), true)
    const c = await replica(sim, options)
    assert.equal((await a.pull(c.state().clock, 100)).type, 'snapshot')
    await pullInto(c, a)
    assert.deepEqual(await pins(c), await pins(a))
    assert.deepEqual(pinOf(await c.stat('/d/f0')), EC)
    assert.equal(pinOf(await c.stat('/d/f1')), undefined)
    assert.equal((await c.conflicts()).length, 1)
    // the merge path too: a replica with writes of its own merges the snapshot
    const d = await replica(sim, options)
    await d.putFile('/mine', { ...file('mine'), pin: { policy: 'none' } })
    const root = await a.snapshot()
    assert.equal(await d.loadSnapshot(root, async cids => await a.blocks(cids), a.id), true)
    assert.deepEqual(pinOf(await d.stat('/d/f2')), REPLICAS)
    assert.deepEqual(pinOf(await d.stat('/mine')), { policy: 'none' })
  })

  it('files() lists every visible file, conflict copies included, and nothing else', async () => {
    const sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    await a.mkdir('/empty')
    await a.putFile('/x/y/z', file('z'))
    await a.putFile('/same', file('a'))
    await b.putFile('/same', file('b'))
    await syncAll([a, b])
    const listed: string[] = []
    for await (const e of a.files()) listed.push(e.path)
    const [conflict] = await a.conflicts()
    assert.deepEqual(listed.sort(), ['/same', conflict.copy, '/x/y/z'].sort())
  })

  it('the pin is kept on disk (LevelDB) across a restart', async (t) => {
    const dir = join(await tempDir(t), 'ns')
    const key = await generateKeyPair('Ed25519')
    const open = async (): Promise<Replica> => {
      const ns = createNamespace({ path: dir, signer: signerFromKey(key), logger: silent })
      await ns.open()
      return ns
    }
    const first = await open()
    await first.putFile('/pinned', { ...file('p'), pin: EC })
    await first.putFile('/plain', file('q'))
    await first.close()
    const again = await open()
    defer(t, async () => { await again.close() })
    assert.deepEqual(pinOf(await again.stat('/pinned')), EC)
    assert.equal(pinOf(await again.stat('/plain')), undefined)
  })

  it('the replica tells of every manifest a file it shows refers to, once committed: a local put, entries pulled from another replica, a conflict copy; a snapshot merged tells of any (durability: removal-clocks.ts)', async () => {
    const sim = { now: Date.UTC(2026, 10, 22, 10, 30, 5) }
    const options = { compactAfter: 5 }
    const [a, b] = [await replica(sim, options), await replica(sim, options)]
    const told: string[] = []
    let any = 0
    b.onReferences({
      referenced: manifest => { told.push(manifest) },
      referencedAny: () => { any++ }
    })
    await b.putFile('/local.bin', { ...file('local'), pin: EC })
    assert.deepEqual(told, [MANIFEST])
    const pulled = cborCidOf('pulled')
    await a.putFile('/pulled.bin', { ...file('pulled'), pin: { policy: 'ec:4+2', manifest: pulled } })
    told.length = 0
    await pullInto(b, a)
    assert.deepEqual(told, [pulled])
    // a conflict: b's version wins the name, a's shows as a copy on b with its own manifest
    const lost = cborCidOf('lost')
    await a.putFile('/c.bin', { ...file('c1', 2_000), pin: { policy: 'ec:4+2', manifest: lost } })
    await b.putFile('/c.bin', { ...file('c2', 3_000), pin: REPLICAS })
    told.length = 0
    await pullInto(b, a)
    assert.equal((await b.conflicts()).length, 1)
    assert.ok(told.includes(lost), `told ${told.join(' ')}`)
    assert.equal(any, 0, 'entries tell of their manifests, not of any')
    // a replica that merges a snapshot may show any file of it
    for (let i = 0; i < 6; i++) await a.putFile(`/d/f${i}`, file(`f${i}`))
    await syncAll([a, b])
    a.noteMember(b.id, b.state().clock)
    assert.equal(await a.compact(), true)
    const d = await replica(sim, options)
    let dAny = 0
    d.onReferences({ referenced: () => {}, referencedAny: () => { dAny++ } })
    await d.putFile('/mine', file('mine'))
    assert.equal(await d.loadSnapshot(await a.snapshot(), async cids => await a.blocks(cids), a.id), true)
    assert.ok(dAny > 0)
    assert.deepEqual(pinOf(await d.stat('/pulled.bin')), { policy: 'ec:4+2', manifest: pulled })
  })
})
