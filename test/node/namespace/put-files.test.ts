/**
 * `putFiles`: several files as one namespace write — one log entry, one
 * fsync, all or nothing — with the CRDT semantics of single puts (a batch
 * is just an entry with several ops).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createNamespace, signerFromKey } from '../../../node/namespace/index.js'
import { cidOf, converged, file, replica, silent, syncAll } from './helpers.js'
import { tempDir } from '../../helpers/temp.js'

describe('putFiles', () => {
  it('writes a batch of puts (and their missing parents) as one durable entry', async t => {
    const dir = await tempDir(t)
    const key = await generateKeyPair('Ed25519')
    const ns = createNamespace({ path: dir, signer: signerFromKey(key), logger: silent })
    await ns.open()
    await ns.putFile('/old.txt', file('old'))
    const before = ns.state().clock[ns.id]
    const published: Uint8Array[][] = []
    ns.onLocalEntries(entries => { published.push(entries) })
    const entries = await ns.putFiles([
      { path: '/a/b/one.txt', record: file('one') },
      { path: '/a/two.txt', record: file('two') },
      { path: '/old.txt', record: file('old, replaced') },
      { path: '/a/two.txt', record: file('two, last') }
    ])
    assert.deepEqual(entries.map(e => e.path), ['/a/b/one.txt', '/a/two.txt', '/old.txt', '/a/two.txt'])
    assert.equal(ns.state().clock[ns.id], before + 1, 'one entry')
    assert.deepEqual(published.map(p => p.length), [1], 'announced as one entry')
    await ns.close()
    // durable: a fresh open of the same store has all of it
    const again = createNamespace({ path: dir, signer: signerFromKey(key), logger: silent })
    await again.open()
    t.after(async () => { await again.close() })
    const two = await again.stat('/a/two.txt')
    assert.equal(two.type === 'file' && two.cid, cidOf('two, last'), 'a path given twice takes its last record')
    const old = await again.stat('/old.txt')
    assert.equal(old.type === 'file' && old.cid, cidOf('old, replaced'))
    assert.equal((await again.stat('/a/b')).type, 'dir')
    assert.equal((await again.stat('/a/b/one.txt')).type, 'file')
    assert.equal((await again.conflicts()).length, 0)
  })

  it('is all or nothing', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    await a.mkdir('/d')
    const seq = a.state().clock[a.id]
    await assert.rejects(a.putFiles([{ path: '/x.txt', record: file('x') }, { path: '/d', record: file('d') }]), { name: 'IsADirectoryError' })
    await assert.rejects(a.putFiles([{ path: '/f', record: file('f') }, { path: '/f/g', record: file('g') }]), { name: 'NotADirectoryError' })
    assert.equal(a.state().clock[a.id], seq, 'no entry')
    assert.equal(await a.lookup('/x.txt'), undefined)
    assert.deepEqual(await a.putFiles([]), [])
  })

  it('a concurrent remote write to one of its paths still makes a conflict copy, the same everywhere', async () => {
    const sim = { now: Date.UTC(2026, 10, 22, 10, 30, 5) }
    const [a, b, c] = [await replica(sim), await replica(sim), await replica(sim)]
    await a.putFile('/notes.txt', file('base'))
    await syncAll([a, b, c])
    await a.putFiles([
      { path: '/notes.txt', record: file('from a', 2_000) },
      { path: '/other.txt', record: file('other') }
    ])
    await b.putFile('/notes.txt', file('from b', 3_000))
    await syncAll([a, b, c])
    await converged([a, b, c])
    for (const r of [a, b, c]) {
      const winner = await r.stat('/notes.txt')
      assert.equal(winner.type === 'file' && winner.cid, cidOf('from b'), 'latest mtime wins')
      const conflicts = await r.conflicts()
      assert.equal(conflicts.length, 1)
      assert.equal(conflicts[0].path, '/notes.txt')
      assert.equal(conflicts[0].cid, cidOf('from a'))
      const other = await r.stat('/other.txt')
      assert.equal(other.type === 'file' && other.cid, cidOf('other'))
    }
  })
})
