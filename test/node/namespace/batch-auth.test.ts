/**
 * Batch authentication of received entries: an entry is taken only when its
 * author's signature covers it, directly or through hash links from a
 * signed entry of the same author in the same batch. Real Ed25519 keys,
 * in-memory stores.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { decodeEntry, encodeEntry, encodeEntryBody, type EntryBody } from '../../../protocol/namespace.js'
import { MemoryKV, Replica, cborCID, peerIdVerifier, signerFromKey, type Verifier } from '../../../node/namespace/index.js'
import { authenticateBatch, type LinkedEntry } from '../../../node/namespace/identity.js'
import { cidOf, silent, tree } from './helpers.js'

type Key = Awaited<ReturnType<typeof generateKeyPair>>

/** An author with a real key writing a chain of one-put entries. */
interface Author { key: Key, id: string, entries: Uint8Array[] }

async function author (): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: signerFromKey(key).id, entries: [] }
}

/** The body of `a`'s entry `seq` putting `path`, with the given parents (entry bytes and their dots). */
function body (a: Author, seq: number, path: string, parents: Array<{ bytes: Uint8Array, dot: [string, number] }>): EntryBody {
  return {
    v: 2,
    author: a.id,
    seq,
    time: 1_000 + seq,
    parents: parents.map(p => cborCID(p.bytes)),
    deps: parents.map(p => p.dot),
    ops: [{ op: 'put', path, cid: CID.parse(cidOf(path)), size: 1, mode: 0o644, mtime: 1_000, replaces: [] }]
  }
}

/** Encode `b` with a signature by `key` over its body (or the given signature bytes). */
async function sign (key: Key, b: EntryBody, sig?: Uint8Array): Promise<Uint8Array> {
  return encodeEntry({ ...b, sig: sig ?? await key.sign(encodeEntryBody(b)) })
}

/** `n` chained entries by `a` (each names the previous one as parent), `/a<seq>` each. */
async function chain (a: Author, n: number): Promise<Uint8Array[]> {
  for (let seq = a.entries.length + 1; a.entries.length < n; seq++) {
    const prev = a.entries.at(-1)
    a.entries.push(await sign(a.key, body(a, seq, `/${a.id.slice(-4)}-${seq}`, prev === undefined ? [] : [{ bytes: prev, dot: [a.id, seq - 1] }])))
  }
  return a.entries
}

/** A replica whose verifier counts its calls. */
async function counted (): Promise<{ r: Replica, calls: { n: number } }> {
  const calls = { n: 0 }
  const inner = peerIdVerifier()
  const verifier: Verifier = async (who, data, sig) => { calls.n++; return await inner(who, data, sig) }
  const r = new Replica({ kv: new MemoryKV(), signer: signerFromKey(await generateKeyPair('Ed25519')), verifier, clock: { now: () => 1_000 }, logger: silent })
  await r.open()
  return { r, calls }
}

const garbage = new Uint8Array(64).fill(7)

describe('batch authentication', () => {
  it('a chain of one author is authenticated by its newest signature', async () => {
    const a = await author()
    const entries = await chain(a, 20)
    const { r, calls } = await counted()
    const result = await r.receive(entries)
    assert.equal(result.applied, 20)
    assert.equal(calls.n, 1)
    assert.equal(r.state().clock[a.id], 20)
  })

  it('interleaved authors: one signature per author, links through the others\' entries', async () => {
    const a = await author()
    const b = await author()
    const list: Uint8Array[] = []
    let prev: { bytes: Uint8Array, dot: [string, number] } | undefined
    const seqs = new Map<string, number>()
    for (let i = 0; i < 12; i++) {
      const w = i % 2 === 0 ? a : b
      const seq = (seqs.get(w.id) ?? 0) + 1
      seqs.set(w.id, seq)
      // one chain of parents: each entry names the previous one, whoever wrote it
      const bytes = await sign(w.key, body(w, seq, `/i${i}`, prev === undefined ? [] : [prev]))
      list.push(bytes)
      prev = { bytes, dot: [w.id, seq] }
    }
    const { r, calls } = await counted()
    assert.equal((await r.receive(list)).applied, 12)
    assert.equal(calls.n, 2)
  })

  it('a forged middle entry is rejected; the genuine ones before it apply, the ones after wait for the genuine one', async () => {
    const a = await author()
    const [e1, e2, e3, e4] = await chain(a, 4)
    // same author and seq, other content, the genuine signature: not what a signed
    const forged = await sign(a.key, body(a, 2, '/forged', [{ bytes: e1, dot: [a.id, 1] }]), decodeEntry(e2).sig)
    const { r } = await counted()
    const result = await r.receive([e1, forged, e3, e4])
    assert.equal(result.rejected, 1)
    assert.equal(result.applied, 1)
    assert.equal(result.pending, 2)
    assert.equal(r.rejected, 1)
    assert.ok(!(await tree(r)).some(line => line.startsWith('/forged')))
    // the genuine entry arrives: the held ones follow it
    assert.equal((await r.receive([e2])).applied, 3)
    assert.equal(r.state().clock[a.id], 4)
  })

  it('a forged newest entry does not take the genuine ones down, nor let them through unchecked', async () => {
    const a = await author()
    const [e1, e2, e3] = await chain(a, 3)
    const mallory = await generateKeyPair('Ed25519')
    // a 4th entry "by a", linking to its genuine 3rd, signed with another key
    const forged = await sign(mallory, body(a, 4, '/forged', [{ bytes: e3, dot: [a.id, 3] }]))
    const { r, calls } = await counted()
    const result = await r.receive([e1, e2, e3, forged])
    assert.equal(result.applied, 3)
    assert.equal(result.rejected, 1)
    // the forged one, then the genuine newest, which covers the rest
    assert.equal(calls.n, 2)
    assert.equal(r.state().clock[a.id], 3)
    // nor does a forged newest entry cover older forged ones: each is checked on its own
    const { r: r2 } = await counted()
    const bad2 = await sign(a.key, body(a, 2, '/bad2', [{ bytes: e1, dot: [a.id, 1] }]), garbage)
    const bad3 = await sign(mallory, body(a, 3, '/bad3', [{ bytes: bad2, dot: [a.id, 2] }]))
    const r2result = await r2.receive([e1, bad2, bad3])
    assert.equal(r2result.applied, 1)
    assert.equal(r2result.rejected, 2)
  })

  it('an entry claiming another author is not covered by the signature of the entry linking to it', async () => {
    const a = await author()
    const m = await author()
    const [a1] = await chain(a, 1)
    // m forges a's 2nd entry (signed by m's key) and links to it from its own signed entry
    const fake = await sign(m.key, body(a, 2, '/fake', [{ bytes: a1, dot: [a.id, 1] }]))
    const m1 = await sign(m.key, body(m, 1, '/m1', [{ bytes: fake, dot: [a.id, 2] }]))
    const { r } = await counted()
    const result = await r.receive([a1, fake, m1])
    assert.equal(result.rejected, 1)
    assert.equal(result.applied, 1)
    // m1 is m's own and genuine, but its past is the forged entry: it waits, never applied
    assert.equal(result.pending, 1)
    assert.equal(r.state().clock[a.id], 1)
    assert.equal(r.state().clock[m.id], undefined)
    assert.deepEqual((await tree(r)).filter(line => line.includes('fake') || line.includes('m1')), [])
  })

  it('two entries with one author and seq: a forged one is rejected; of two signed ones the second is', async () => {
    const a = await author()
    const [e1, e2, e3] = await chain(a, 3)
    const forged = await sign(a.key, body(a, 2, '/forged', [{ bytes: e1, dot: [a.id, 1] }]), garbage)
    const { r } = await counted()
    const result = await r.receive([e1, forged, e2, e3])
    assert.equal(result.rejected, 1)
    assert.equal(result.applied, 3)
    // a signed the other one too (it equivocates): the first in the batch is kept
    const other = await sign(a.key, body(a, 2, '/other', [{ bytes: e1, dot: [a.id, 1] }]))
    const { r: r2 } = await counted()
    const r2result = await r2.receive([e1, e2, other, e3])
    assert.equal(r2result.rejected, 1)
    assert.equal(r2result.applied, 3)
    assert.ok(!(await tree(r2)).some(line => line.startsWith('/other')))
    // and a batch repeating an entry's bytes counts the repeat as a duplicate
    const { r: r3 } = await counted()
    const r3result = await r3.receive([e1, e1, e2])
    assert.equal(r3result.duplicates, 1)
    assert.equal(r3result.applied, 2)
  })

  it('a batch checked before another one applied its dots: the same entries are duplicates, others with those dots are rejected', async () => {
    const a = await author()
    const [e1, e2] = await chain(a, 2)
    const other = await sign(a.key, body(a, 2, '/other', [{ bytes: e1, dot: [a.id, 1] }]))
    const { r } = await counted()
    // checked (nothing applied yet), then the genuine chain arrives and is applied first
    const same = await r.prepare([e1, e2])
    const equivocating = await r.prepare([other])
    assert.equal(same.fresh.length, 2)
    assert.equal(equivocating.fresh.length, 1)
    assert.equal((await r.receive([e1, e2])).applied, 2)
    const late = await r.accept(same)
    assert.deepEqual({ applied: late.applied, duplicates: late.duplicates, rejected: late.rejected }, { applied: 0, duplicates: 2, rejected: 0 })
    const forked = await r.accept(equivocating)
    assert.deepEqual({ applied: forked.applied, duplicates: forked.duplicates, rejected: forked.rejected }, { applied: 0, duplicates: 0, rejected: 1 })
    assert.equal(r.rejected, 1)
    assert.ok(!(await tree(r)).some(line => line.startsWith('/other')))
    assert.equal(r.state().clock[a.id], 2)
  })

  it('applying a long batch lets the event loop run (a pull\'s next request is not held up for the whole page)', async () => {
    const a = await author()
    const entries = await chain(a, 300)
    const { r } = await counted()
    let done = false
    let ranDuring: boolean | undefined
    setImmediate(() => { ranDuring = !done })
    const result = await r.receive(entries).finally(() => { done = true })
    assert.equal(result.applied, 300)
    assert.equal(ranDuring, true, 'no macrotask ran while the batch was applied')
  })

  it('authenticateBatch: coverage is per author, and falls back to each entry\'s own check', async () => {
    // a: 3 -> 2 -> 1 linked; b: 1, linked from a's 3 (a's signature does not cover it)
    const batch: LinkedEntry[] = [
      { key: 'a1', author: 'a', seq: 1, parents: [] },
      { key: 'b1', author: 'b', seq: 1, parents: ['a1'] },
      { key: 'a2', author: 'a', seq: 2, parents: ['b1'] },
      { key: 'a3', author: 'a', seq: 3, parents: ['a2'] },
      { key: 'a4', author: 'a', seq: 4, parents: ['a3'] }
    ]
    const checked: string[] = []
    // a4 is forged; everything else genuine
    const result = await authenticateBatch(batch, async e => { checked.push(e.key); return e.key !== 'a4' })
    assert.deepEqual(result.ok, [true, true, true, true, false])
    assert.deepEqual(checked.sort(), ['a3', 'a4', 'b1'])
    assert.equal(result.verified, 3)
    // with no links to follow, every entry is checked on its own
    const none = await authenticateBatch(batch, async () => true, { maxLinks: 0 })
    assert.deepEqual(none, { ok: [true, true, true, true, true], verified: 5 })
  })
})
