/**
 * Snapshot roots of many authors (node/namespace/snapshot-authors.ts): a
 * snapshot of more authors than a root names inline links author blocks,
 * which a fresh or a merging replica fetches, checks and reads as it reads
 * an inline root; the author blocks a snapshot no longer links are deleted
 * with it. Real replicas, real Ed25519 signatures.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import {
  MAX_SNAPSHOT_ROOT_BYTES, decodeSnapshotAuthors, decodeSnapshotRoot, encodeSnapshotRoot,
  type LinkedSnapshotRoot, type SnapshotRoot
} from '../../../protocol/namespace.js'
import type { Replica } from '../../../node/namespace/index.js'
import { authors, chainedWrites, file, pullInto, replica, tree, writes } from './helpers.js'

/** `r`'s snapshot root at `root`, decoded. */
async function rootOf (r: Replica, root: CID): Promise<ReturnType<typeof decodeSnapshotRoot> & { bytes: number }> {
  const [bytes] = await r.blocks([root])
  return { ...decodeSnapshotRoot(bytes), bytes: bytes.byteLength }
}

/** The author blocks a v3 root links, decoded (fetched from `r`). */
async function authorBlocks (r: Replica, root: LinkedSnapshotRoot): Promise<Array<ReturnType<typeof decodeSnapshotAuthors>>> {
  const out = []
  for (const cid of root.authors) out.push(decodeSnapshotAuthors((await r.blocks([cid]))[0]))
  return out
}

describe('snapshot roots of many authors', () => {
  it('28,000 lifetime authors, more than an inline root holds: the root links author blocks and a fresh replica loads it whole', async () => {
    const sim = { now: 1_000 }
    const a = await replica(sim)
    const many = await authors(28_000)
    assert.equal((await a.receive(await chainedWrites(many, 'w'))).applied, 28_000)
    const root = await a.snapshot()
    const signed = await rootOf(a, root)
    assert.equal(signed.v, 3, 'a root of 28,000 authors links them')
    assert.ok(signed.bytes < 64 * 1024, `the root is ${signed.bytes} bytes`)
    const blocks = await authorBlocks(a, signed as LinkedSnapshotRoot)
    assert.equal(blocks.length, Math.ceil(28_000 / 2048))
    assert.equal(blocks.reduce((n, b) => n + b.authors.length, 0), 28_000)
    // what an inline root of the same clock and tips would have been: larger than a root may be
    const inline: SnapshotRoot = {
      v: 1,
      author: signed.author,
      time: signed.time,
      heads: blocks.flatMap(b => b.heads.map(([, , entry]) => entry)),
      headDots: blocks.flatMap(b => b.heads.map(([author, seq]) => [author, seq] as [string, number])),
      count: signed.count,
      tree: signed.tree,
      clock: a.state().clock,
      tips: blocks.flatMap(b => b.authors.flatMap(([author, , tip]) => tip === null ? [] : [[author, tip] as [string, CID]])),
      sig: signed.sig
    }
    assert.throws(() => encodeSnapshotRoot(inline), (err: any) => err.name === 'InvalidMessageError' && new RegExp(`> ${MAX_SNAPSHOT_ROOT_BYTES}`).test(err.message))

    const fresh = await replica(sim)
    assert.equal(await fresh.loadSnapshot(root, async cids => await a.blocks(cids), a.id), true)
    assert.deepEqual(fresh.state().clock, a.state().clock)
    assert.equal((await fresh.lookup('/w/27999'))?.type, 'file')
    assert.equal((await tree(fresh)).length, (await tree(a)).length)
    // and the new replica's own snapshot links its authors the same way
    const own = await rootOf(fresh, await fresh.snapshot())
    assert.equal(own.v, 3)
  })

  it('a replica with a snapshot of its own merges a linked root, and the author blocks no snapshot links any more are deleted', async () => {
    const sim = { now: 1_000 }
    const options = { inlineRootAuthors: 4 }
    const a = await replica(sim, options)
    const c = await replica(sim, options)
    const ten = await authors(10)
    await a.receive(await writes(ten, 'w'))
    await c.putFile('/c', file('c'))
    const first = await rootOf(a, await a.snapshot())
    assert.equal(first.v, 3)
    const firstBlocks = (first as LinkedSnapshotRoot).authors
    assert.equal(firstBlocks.length, 3, '11 authors in blocks of 4')
    // c has a snapshot of its own (one author: inline), then merges a's
    assert.equal((await rootOf(c, await c.snapshot())).v, 1)
    assert.equal(await c.loadSnapshot(await a.snapshot(), async cids => await a.blocks(cids), a.id), true)
    assert.deepEqual(await tree(c), [...await tree(a), '/c ' + (await tree(c)).find(l => l.startsWith('/c '))?.split(' ')[1]].sort())
    for (const author of ten) assert.equal(c.state().clock[author.id], 1)
    // c's snapshot is now its own linked root; a's blocks that it does not link are gone from c's store
    const merged = await rootOf(c, await c.snapshot())
    assert.equal(merged.v, 3)
    const linked = new Set((merged as LinkedSnapshotRoot).authors.map(String))
    for (const cid of firstBlocks) if (!linked.has(cid.toString())) assert.deepEqual(await c.blocks([cid]), [], `block ${cid.toString()} left in c's store`)
    // a writes again: a new snapshot deletes the author blocks the old one linked and the new one does not
    await a.putFile('/later', file('later'))
    const second = await rootOf(a, await a.snapshot())
    const kept = new Set((second as LinkedSnapshotRoot).authors.map(String))
    const gone = firstBlocks.filter(cid => !kept.has(cid.toString()))
    assert.ok(gone.length > 0, 'a\'s own counter moved: its block changed')
    for (const cid of gone) assert.deepEqual(await a.blocks([cid]), [], `block ${cid.toString()} left in a's store`)
    // a third replica pulls it all (history and snapshot) and agrees
    const d = await replica(sim, options)
    await pullInto(d, a)
    assert.deepEqual(await tree(d), await tree(a))
  })

  it('more concurrent heads than an inline root holds (4,200 authors writing at once): the snapshot links them, a fresh replica takes them all', async () => {
    const sim = { now: 1_000 }
    // authors alone would not need author blocks here: the heads do
    const a = await replica(sim, { inlineRootAuthors: 10_000 })
    assert.equal((await a.receive(await writes(await authors(4_200), 'w'))).applied, 4_200)
    assert.equal(a.state().heads.length, 4_200)
    const root = await a.snapshot()
    const signed = await rootOf(a, root)
    assert.equal(signed.v, 3)
    const fresh = await replica(sim)
    assert.equal(await fresh.loadSnapshot(root, async cids => await a.blocks(cids), a.id), true)
    assert.deepEqual(fresh.state().heads.map(String).sort(), a.state().heads.map(String).sort())
    // and it goes on: its next write follows heads it took from the snapshot
    await fresh.putFile('/after', file('after'))
    assert.ok(fresh.state().heads.length < 4_200)
    await pullInto(a, fresh)
    assert.equal((await a.lookup('/after'))?.type, 'file')
  })

  it('refuses a bad inlineRootAuthors', async () => {
    await assert.rejects(replica({ now: 1_000 }, { inlineRootAuthors: 0 }), /inlineRootAuthors must be a positive integer, not 0/)
  })
})
