/**
 * Snapshots signed by a trusted member with hostile content: what they may
 * and may not do to a replica that merges them (docs/namespace.md, "What a
 * snapshot may claim"). Real replicas, real Ed25519 signatures.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import {
  encodeSnapshotAuthors, encodeSnapshotRoot, encodeSnapshotRootBody,
  type LinkedSnapshotRoot, type SnapshotAuthors, type SnapshotRoot, type VectorClock
} from '../../../protocol/namespace.js'
import { encodeTreeNode } from '../../../protocol/snapshot-tree.js'
import { cborCID } from '../../../node/blocks/verify.js'
import { signerFromKey } from '../../../node/namespace/index.js'
import { cidOf, converged, file, pullInto, replica, tree, writes } from './helpers.js'
import type { Replica } from '../../../node/namespace/index.js'

type Key = Awaited<ReturnType<typeof generateKeyPair>>

/**
 * A signed snapshot root by `key` claiming `clock` over an empty tree (an
 * empty namespace), and a fetch serving both; with `retired`, a version 2
 * root. Where `clock` names the key's own author, the root's tips prove that
 * counter with a real entry of the key's (served too): a counter is adopted
 * only with its author's signed entry, so without it the snapshot would
 * bring nothing to merge.
 */
async function forged (key: Key, clock: VectorClock, tips: SnapshotRoot['tips'] = [], count = 0, retired?: SnapshotRoot['retired']): Promise<{ root: CID, fetch: (cids: CID[]) => Promise<Uint8Array[]> }> {
  const leaf = encodeTreeNode({ v: 1, leaf: [] })
  const tree = cborCID(leaf)
  const signer = signerFromKey(key)
  const own = clock[signer.id] === undefined ? undefined : (await writes([signer], 'own', clock[signer.id]))[0]
  const allTips = own === undefined ? tips : [...tips, [signer.id, cborCID(own)] as [string, CID]].sort((x, y) => x[0] < y[0] ? -1 : 1)
  const body: Omit<SnapshotRoot, 'sig'> = { v: retired === undefined ? 1 : 2, author: signer.id, time: 1_000, clock, heads: [], headDots: [], count, tree, tips: allTips, ...(retired === undefined ? {} : { retired }) }
  const bytes = encodeSnapshotRoot({ ...body, sig: await key.sign(encodeSnapshotRootBody(body)) })
  const root = cborCID(bytes)
  const ownCid = own === undefined ? undefined : cborCID(own)
  return { root, fetch: async cids => cids.map(c => c.equals(root) ? bytes : c.equals(tree) ? leaf : ownCid?.equals(c) === true ? own : undefined).filter((b): b is Uint8Array => b !== undefined) }
}

/**
 * A signed v3 root by `key` over an empty tree linking author blocks
 * (`blocks`, encoded as given), and a fetch serving them — with `swap`, the
 * bytes of the block at that index replaced by other bytes.
 */
async function forgedLinked (key: Key, blocks: SnapshotAuthors[], swap?: { index: number, bytes: Uint8Array | undefined }): Promise<{ root: CID, fetch: (cids: CID[]) => Promise<Uint8Array[]> }> {
  const leaf = encodeTreeNode({ v: 1, leaf: [] })
  const tree = cborCID(leaf)
  const encoded = blocks.map(b => encodeSnapshotAuthors(b))
  const cids = encoded.map(b => cborCID(b))
  const body: Omit<LinkedSnapshotRoot, 'sig'> = { v: 3, author: signerFromKey(key).id, time: 1_000, count: 0, tree, authors: cids }
  const bytes = encodeSnapshotRoot({ ...body, sig: await key.sign(encodeSnapshotRootBody(body)) })
  const root = cborCID(bytes)
  const served = (c: CID): Uint8Array | undefined => {
    if (c.equals(root)) return bytes
    if (c.equals(tree)) return leaf
    const i = cids.findIndex(x => x.equals(c))
    if (i < 0) return undefined
    return swap?.index === i ? swap.bytes : encoded[i]
  }
  return { root, fetch: async want => { const out: Uint8Array[] = []; for (const c of want) { const b = served(c); if (b === undefined) break; out.push(b) } return out } }
}

/** Replicas a and b (a holds b's `/x`), and mallory's key: a member every replica trusts. */
async function cast (): Promise<{ a: Replica, b: Replica, malloryKey: Key, mallory: string }> {
  const sim = { now: 1_000 }
  const a = await replica(sim)
  const b = await replica(sim)
  const malloryKey = await generateKeyPair('Ed25519')
  await b.putFile('/x', file('x'))
  await pullInto(a, b)
  return { a, b, malloryKey, mallory: signerFromKey(malloryKey).id }
}

describe('hostile snapshots', () => {
  it('a root whose count is not its tree\'s is refused and changes nothing', async () => {
    const { a, malloryKey, mallory } = await cast()
    const before = await tree(a)
    const { root, fetch } = await forged(malloryKey, { [mallory]: 1 }, [], 5)
    await assert.rejects(a.loadSnapshot(root, fetch, mallory), (err: any) => err.name === 'InvalidSnapshotError' && /0 paths, its root says 5/.test(err.message))
    assert.deepEqual(await tree(a), before)
    assert.equal(a.state().clock[mallory], undefined)
  })

  it('a snapshot that proves no counter ahead is not merged: neither its author\'s word about itself nor another member\'s clock proves one', async () => {
    const { a, b, malloryKey, mallory } = await cast()
    // b, a trusted member, was heard at a clock naming mallory at 3: a second member's word, not mallory's entry
    a.noteMember(b.id, { [b.id]: 1, [mallory]: 3 })
    const before = { tree: await tree(a), clock: a.state().clock }
    // an empty namespace at b's counter (which a holds: it covers /x) and mallory at 3, signed by mallory, without tips
    const leaf = encodeTreeNode({ v: 1, leaf: [] })
    const body: Omit<SnapshotRoot, 'sig'> = { v: 1, author: mallory, time: 1_000, clock: { [b.id]: 1, [mallory]: 3 }, heads: [], headDots: [], count: 0, tree: cborCID(leaf), tips: [] }
    const bytes = encodeSnapshotRoot({ ...body, sig: await malloryKey.sign(encodeSnapshotRootBody(body)) })
    const root = cborCID(bytes)
    let asked = 0
    const fetch = async (cids: CID[]): Promise<Uint8Array[]> => { asked += cids.length; return cids.map(c => c.equals(root) ? bytes : leaf) }
    assert.equal(await a.loadSnapshot(root, fetch, mallory), false, 'nothing merged')
    assert.deepEqual({ tree: await tree(a), clock: a.state().clock }, before, '/x is not dropped, no conflict copy is published, no counter moves')
    assert.equal(asked, 1, 'only the root was fetched: its tree was not walked')
  })

  it('an inflated counter for another author is not adopted: that author\'s later writes still arrive', async () => {
    const { a, b, malloryKey, mallory } = await cast()
    // mallory claims b is at 1,000 (and itself at 1): validly signed, no tip for b
    const { root, fetch } = await forged(malloryKey, { [b.id]: 1000, [mallory]: 1 })
    await a.loadSnapshot(root, fetch, mallory)
    assert.equal(a.state().clock[b.id], 1, 'b\'s counter stays what b\'s own entries proved')
    await b.putFile('/y', file('y'))
    await pullInto(a, b)
    assert.deepEqual(await tree(a), [`/x ${cidOf('x').slice(-6)}`, `/y ${cidOf('y').slice(-6)}`])
  })

  it('a retirement at a counter the snapshot does not prove reads no peer\'s clock: the author stays named and its later writes arrive', async () => {
    const { a, b, malloryKey, mallory } = await cast()
    // mallory claims b is at 1,000 and retired there by mallory's entry 1: validly signed, no tip for b
    const { root, fetch } = await forged(malloryKey, { [b.id]: 1000, [mallory]: 1 }, [], 0, [[[mallory, 1], [[b.id, 1000]]]])
    await a.loadSnapshot(root, fetch, mallory)
    assert.equal(a.wireClock(a.state().clock)[b.id], 1)
    // a peer that covers mallory's entry 1 and leaves b out is not read as holding b up to 1,000
    assert.equal(a.readClock({ [mallory]: 1 })[b.id], undefined)
    await b.putFile('/y', file('y'))
    await pullInto(a, b)
    assert.equal((await a.lookup('/y'))?.type, 'file')
  })

  it('a tip that is not the author\'s entry at the claimed counter proves nothing', async () => {
    const { a, b, malloryKey, mallory } = await cast()
    // the tip names b's real first entry, for a claimed counter of 50
    const [bHead] = b.state().heads
    const { root, fetch } = await forged(malloryKey, { [b.id]: 50, [mallory]: 1 }, [[b.id, bHead]].sort((x, y) => x[0] < y[0] ? -1 : 1) as SnapshotRoot['tips'])
    const served = async (cids: CID[]): Promise<Uint8Array[]> => [...await fetch(cids), ...await b.blocks(cids.filter(c => !c.equals(root)))]
    await a.loadSnapshot(root, served, mallory)
    assert.equal(a.state().clock[b.id], 1)
  })

  it('a linked root whose author blocks are missing, swapped, out of order or retire beyond the clock is refused and changes nothing', async () => {
    const { a, b, malloryKey, mallory } = await cast()
    const before = { tree: await tree(a), clock: a.state().clock }
    const [low, high] = [b.id, mallory].sort()
    const one = (author: string, seq: number): SnapshotAuthors => ({ v: 1, authors: [[author, seq, null]], retired: [], heads: [] })
    // mallory's entry 5 (mallory is at 1) retires b at 1
    const retiring: SnapshotAuthors = { v: 1, authors: [[b.id, 1, null]], retired: [[[mallory, 5], [[b.id, 1]]]], heads: [] }
    const cases: Array<[string, Awaited<ReturnType<typeof forgedLinked>>, RegExp]> = [
      ['a block missing', await forgedLinked(malloryKey, [one(low, 1), one(high, 1)], { index: 1, bytes: undefined }), /author block .* missing/],
      ['a block swapped for another', await forgedLinked(malloryKey, [one(low, 1), one(high, 1)], { index: 0, bytes: encodeSnapshotAuthors(one(low, 2)) }), /does not match its CID/],
      ['blocks out of order', await forgedLinked(malloryKey, [one(high, 1), one(low, 1)]), /not in strictly ascending author order/],
      ['a retirement by a dot beyond the clock', await forgedLinked(malloryKey, [retiring, one(mallory, 1)].sort((x, y) => x.authors[0][0] < y.authors[0][0] ? -1 : 1)), /retiring dot .* beyond the snapshot's clock/]
    ]
    for (const [what, { root, fetch }, error] of cases) {
      await assert.rejects(a.loadSnapshot(root, fetch, mallory), (err: any) => err.name === 'InvalidSnapshotError' && error.test(err.message), what)
      assert.deepEqual({ tree: await tree(a), clock: a.state().clock }, before, what)
    }
  })

  it('an honest snapshot\'s counters are proven by its tips: a fresh replica bootstraps from it and goes on pulling', async () => {
    const sim = { now: 1_000 }
    const options = { compactAfter: 1, memberTimeout: 10 }
    const [a, b] = [await replica(sim, options), await replica(sim, options)]
    for (let i = 0; i < 3; i++) await a.putFile(`/a${i}`, file(`a${i}`))
    await b.putFile('/b', file('b'))
    await pullInto(a, b)
    sim.now += 100
    assert.equal(await a.compact(true), true)
    const fresh = await replica(sim)
    await pullInto(fresh, a)
    assert.deepEqual(fresh.state().clock, a.state().clock)
    await b.putFile('/b2', file('b2'))
    await pullInto(a, b)
    await pullInto(fresh, a)
    await converged([a, fresh])
  })
})
