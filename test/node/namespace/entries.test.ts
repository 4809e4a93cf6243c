/**
 * Entries without clocks (v2): what a replica derives from parent dots, and
 * what it refuses from a member that signs hostile but well-formed entries.
 * Real replicas, real Ed25519 signatures, in-memory stores.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { decodeEntry, encodeEntry, encodeEntryBody, type EntryBody, type PathOp } from '../../../protocol/namespace.js'
import { signerFromKey } from '../../../node/namespace/index.js'
import { cidOf, converged, file, pullInto, replica, tree } from './helpers.js'

/** Sign a body with `key`; the encoded entry. */
async function signed (key: Awaited<ReturnType<typeof generateKeyPair>>, body: EntryBody): Promise<Uint8Array> {
  return encodeEntry({ ...body, sig: await key.sign(encodeEntryBody(body)) })
}

describe('entries without clocks', () => {
  it('a local write is a v2 entry whose size does not grow with the number of authors', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    const sizes: number[] = []
    a.onLocalEntries(e => { for (const bytes of e) if ((decodeEntry(bytes).ops[0] as PathOp).path === '/probe') sizes.push(bytes.byteLength) })
    await a.putFile('/probe', file('p0'))
    for (let i = 0; i < 40; i++) {
      const other = await replica(sim)
      await other.putFile(`/o${i}`, file(`o${i}`))
      await pullInto(a, other)
    }
    // one head again (the writes below name every head as parent)
    await a.putFile('/merge', file('m'))
    await a.putFile('/probe', file('p1'))
    assert.equal(Object.keys(a.state().clock).length, 41)
    assert.equal(sizes.length, 2)
    // the same write, 40 authors later: only the replaced dot and the parent differ in size
    assert.ok(Math.abs(sizes[1] - sizes[0]) < 160, `entry sizes ${sizes.join(', ')}`)
  })

  it('an entry whose parent dot names another entry than its parent CID is refused, and nothing changes; with the right CID it applies', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    const b = await replica(sim)
    const malloryKey = await generateKeyPair('Ed25519')
    const mallory = signerFromKey(malloryKey).id
    await b.putFile('/b1', file('b1'))
    const [first] = b.state().heads
    await b.putFile('/b2', file('b2'))
    const [second] = b.state().heads
    await pullInto(a, b)
    const before = await tree(a)
    const entry = async (parent: CID, seq: number): Promise<Uint8Array> => await signed(malloryKey, {
      v: 2, author: mallory, seq: 1, time: 1_000, parents: [parent], deps: [[b.id, seq]],
      ops: [{ op: 'put', path: '/m', cid: CID.parse(cidOf('m')), size: 1, mode: 0o644, mtime: 1_000, replaces: [] }]
    })
    // the link and the dot disagree: b's 2nd entry under the dot of its 1st (read from the store), b's 1st under the dot of its 2nd (its latest, checked in memory)
    for (const [parent, seq] of [[second, 1], [first, 2]] as const) {
      assert.equal((await a.receive([await entry(parent, seq)], mallory)).applied, 0)
    }
    assert.equal(a.rejected, 2)
    assert.deepEqual(await tree(a), before)
    assert.equal(a.state().clock[mallory], undefined)
    // the dot with its own entry's CID
    assert.equal((await a.receive([await entry(second, 2)], mallory)).applied, 1)
    assert.equal(a.state().clock[mallory], 1)
  })

  it('a member naming another author\'s future version in `replaces` cannot hide it when it arrives', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    const b = await replica(sim)
    const malloryKey = await generateKeyPair('Ed25519')
    const mallory = signerFromKey(malloryKey).id
    await b.putFile('/x', file('x1'))
    await pullInto(a, b)
    // mallory, having seen b's 1st entry, "replaces" b's 2nd at /y before b wrote it
    const [head] = b.state().heads
    const hostile = await signed(malloryKey, {
      v: 2, author: mallory, seq: 1, time: 1_000, parents: [head], deps: [[b.id, 1]],
      ops: [{ op: 'del', path: '/y', replaces: [[b.id, 2]] }]
    })
    assert.equal((await a.receive([hostile], mallory)).applied, 1)
    await b.putFile('/y', file('y2'))
    await pullInto(a, b)
    assert.deepEqual(await tree(a), [`/x ${cidOf('x1').slice(-6)}`, `/y ${cidOf('y2').slice(-6)}`])
  })

  it('entries of the first version (with clocks) still apply beside v2 ones, and replicas converge', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    const b = await replica(sim)
    const oldKey = await generateKeyPair('Ed25519')
    const old = signerFromKey(oldKey).id
    const v1 = await signed(oldKey, {
      v: 1, author: old, seq: 1, time: 1_000, clock: { [old]: 1 }, parents: [],
      ops: [{ op: 'put', path: '/old', cid: CID.parse(cidOf('old')), size: 1, mode: 0o644, mtime: 1_000, replaces: [] }]
    })
    assert.equal((await a.receive([v1], old)).applied, 1)
    await a.putFile('/old', file('new', 2_000))
    await b.putFile('/b', file('b'))
    await pullInto(b, a)
    await pullInto(a, b)
    assert.deepEqual(await converged([a, b]), [`/b ${cidOf('b').slice(-6)}`, `/old ${cidOf('new').slice(-6)}`])
  })
})
