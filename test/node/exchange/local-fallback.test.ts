/**
 * A read session that stopped looking in its own store (its DAG taken to be
 * remote once a block had to be fetched) still reads here a block no peer
 * gives: real libp2p on 127.0.0.1, real LevelDB. A file spread over the
 * swarm — an `ec` file after `pin rm`, each node keeping its own share of
 * the leaves — has leaves this node alone holds; before, such a leaf was
 * asked of the peers only and the read failed ("not found here", every
 * peer `dont-have`) though the block was here. Such a block is looked up
 * here as soon as the first peer asked does not give it at once: after its
 * `dont-have`, or when it has not answered within a quarter second (a
 * stalled peer used to hold the read for its whole request timeout).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { CID } from 'multiformats/cid'
import { connect, serveBlocksAs, startNode, type TestNode } from './nodes.js'

async function rawBlock (bytes: Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

function same (a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0
}

describe('exchange session: blocks held here only', () => {
  it('a block no peer has is read from the local store when the session had stopped looking there', { timeout: 60_000 }, async t => {
    const [a, b] = await Promise.all([startNode(t), startNode(t)])
    await connect(a, b)
    // the leaf at b only, and the leaf at a only: the file's own share on each node
    const there = await rawBlock(randomBytes(64 * 1024))
    const here = await rawBlock(randomBytes(64 * 1024))
    const node = dagPb.prepare({ Links: [{ Hash: there.cid, Tsize: 64 * 1024 }, { Hash: here.cid, Tsize: 64 * 1024 }] })
    const rootBytes = dagPb.encode(node)
    const root = CID.createV1(dagPb.code, await sha256.digest(rootBytes))
    await b.blockstore.put(root, rootBytes)
    await b.blockstore.put(there.cid, there.bytes)
    await a.blockstore.put(root, rootBytes)
    await a.blockstore.put(here.cid, here.bytes)

    const session = a.exchange.session(root, { signal: AbortSignal.timeout(30_000) })
    assert.ok(same(await session.getBytes(root), rootBytes), 'the root, read here')
    // fetched from b: the session now takes the DAG to be remote
    assert.ok(same(await session.getBytes(there.cid), there.bytes), 'the leaf b holds')
    assert.ok(same(await session.getBytes(here.cid), here.bytes), 'the leaf only this node holds')
    assert.equal(a.exchange.stats().localFallbacks, 1)
  })

  it('a block held here is read after the first slow or empty answer, not after every peer', { timeout: 60_000 }, async t => {
    const [a, b] = await Promise.all([startNode(t, { init: { requestTimeoutMs: 20_000 } }), startNode(t)])
    const there = await rawBlock(randomBytes(64 * 1024))
    // a fault that cannot be made real: a peer that serves one block and
    // takes the wants of every other without ever answering them
    const stall = await startNode(t, { exchange: false })
    await serveBlocksAs(stall, cid => cid.equals(there.cid) ? there.bytes : undefined)
    await connect(a, b)
    await connect(a, stall)
    const hereOnly = await Promise.all([0, 1, 2, 3].map(async () => await rawBlock(randomBytes(64 * 1024))))
    const links = [there, ...hereOnly].map(x => ({ Hash: x.cid, Tsize: 64 * 1024 }))
    const rootBytes = dagPb.encode(dagPb.prepare({ Links: links }))
    const root = CID.createV1(dagPb.code, await sha256.digest(rootBytes))
    for (const n of [a, b] as TestNode[]) await n.blockstore.put(root, rootBytes)
    await b.blockstore.put(there.cid, there.bytes)
    for (const x of hereOnly) await a.blockstore.put(x.cid, x.bytes)

    const session = a.exchange.session(root, { signal: AbortSignal.timeout(30_000) })
    assert.ok(same(await session.getBytes(root), rootBytes), 'the root, read here')
    // from b or from the stalling peer, which serves this one
    assert.ok(same(await session.getBytes(there.cid), there.bytes), 'the leaf b holds')
    const started = performance.now()
    for (const x of hereOnly) assert.ok(same(await session.getBytes(x.cid), x.bytes), 'a leaf only this node holds')
    const ms = performance.now() - started
    // each read here right after the first peer's answer or its quarter second,
    // where one stalled want used to wait out the 20 s request timeout
    assert.ok(ms < 10_000, `four leaves held here read in ${Math.round(ms)} ms`)
    assert.ok(a.exchange.stats().localFallbacks >= 1)
  })

  it('a block a slow peer sends while the skipped local lookup runs is the read\'s answer, not lost', { timeout: 60_000 }, async t => {
    const a = await startNode(t, { init: { requestTimeoutMs: 20_000, findProvidersTimeoutMs: 2_000 } })
    const there = await rawBlock(randomBytes(64 * 1024))
    const late = await rawBlock(randomBytes(64 * 1024))
    // faults that cannot be made real: a peer that answers each want after 300 ms (past the
    // quarter second after which the read looks here), and a disk whose miss takes 200 ms
    const slow = await startNode(t, { exchange: false })
    await serveBlocksAs(slow, cid => cid.equals(there.cid) ? there.bytes : cid.equals(late.cid) ? late.bytes : undefined, { delayMs: 300 })
    await connect(a, slow)
    const rootBytes = dagPb.encode(dagPb.prepare({ Links: [there, late].map(x => ({ Hash: x.cid, Tsize: 64 * 1024 })) }))
    const root = CID.createV1(dagPb.code, await sha256.digest(rootBytes))
    await a.blockstore.put(root, rootBytes)
    const getBytes = a.blockstore.getBytes.bind(a.blockstore)
    a.blockstore.getBytes = async (cid, options) => {
      if (cid.equals(late.cid)) await new Promise(resolve => setTimeout(resolve, 200))
      return await getBytes(cid, options)
    }

    const session = a.exchange.session(root, { signal: AbortSignal.timeout(30_000) })
    assert.ok(same(await session.getBytes(root), rootBytes), 'the root, read here')
    assert.ok(same(await session.getBytes(there.cid), there.bytes), 'the first leaf, from the slow peer')
    // the session takes the DAG to be remote: the local lookup is made 250 ms into the want,
    // and the peer's answer (300 ms) arrives while it runs (until 450 ms); before, that answer
    // was dropped and the read failed: "not found here and no peer could supply it"
    assert.ok(same(await session.getBytes(late.cid), late.bytes), 'the second leaf, answered during the local lookup')
  })
})
