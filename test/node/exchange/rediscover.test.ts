/**
 * A read session whose providers all go while it reads finds the holders
 * that came since (a search for the root's providers made again), between
 * real libp2p hosts on 127.0.0.1 with real LevelDB block stores; content
 * that nobody had is not searched for twice; what the exchange keeps per
 * peer goes with the peer.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { importContent, parseChunker } from '../../../node/content/index.js'
import { rawCID } from '../../../node/blocks/verify.js'
import { randomBytes, randomPieces, toAsync } from '../../helpers/bytes.js'
import { connect, startNode, type TestNode } from './nodes.js'

const MiB = 1024 * 1024

/** Import `size` seeded bytes with 256 KiB leaves; the same seed gives the same CIDs on any node. */
async function importFile (node: TestNode, size: number, seed: number): Promise<CID> {
  const { cid } = await importContent(node.blockstore, toAsync(randomPieces(size, seed)), { chunker: parseChunker('size-262144') })
  return cid
}

/** Byte equality whatever the view types (Buffer or Uint8Array). */
function assertSameBytes (actual: Uint8Array, expected: Uint8Array): void {
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), `${actual.byteLength} bytes differ from the ${expected.byteLength} expected`)
}

describe('block exchange: providers searched again', { timeout: 60_000 }, () => {
  it('a session whose only provider left reads the rest from a holder that connected since', async (t) => {
    const reader = await startNode(t, { init: { rediscoverAfterMs: 300, findProvidersTimeoutMs: 1_000 } })
    const [first, later] = await Promise.all([startNode(t), startNode(t)])
    const root = await importFile(first, 2 * MiB, 7)
    assert.ok(root.equals(await importFile(later, 2 * MiB, 7)), 'both hold the same DAG')
    const leaves = dagPb.decode(await first.blockstore.getBytes(root)).Links.map(l => l.Hash)
    await connect(reader, first)
    const session = reader.exchange.session(root, { store: false })
    assertSameBytes(await session.getBytes(root, { signal: AbortSignal.timeout(10_000) }), await first.blockstore.getBytes(root))
    assertSameBytes(await session.getBytes(leaves[0], { signal: AbortSignal.timeout(10_000) }), await first.blockstore.getBytes(leaves[0]))
    // the first holder goes; another, which the session never heard of, connects
    await first.libp2p.stop()
    await connect(reader, later)
    await sleep(400)
    for (const leaf of leaves.slice(1)) {
      assertSameBytes(await session.getBytes(leaf, { signal: AbortSignal.timeout(15_000) }), await later.blockstore.getBytes(leaf))
    }
    assert.equal(reader.exchange.stats().rediscoveries, 1, 'one search made again, for the whole rest of the read')
  })

  it('content nobody had is not searched for again', async (t) => {
    const reader = await startNode(t, { init: { rediscoverAfterMs: 0, findProvidersTimeoutMs: 1_000 } })
    const other = await startNode(t)
    await connect(reader, other)
    const missing = rawCID(randomBytes(1024, 8))
    const root = CID.parse(missing.toString())
    const session = reader.exchange.session(root)
    await assert.rejects(session.getBytes(missing, { signal: AbortSignal.timeout(15_000) }), (err: Error) => err.name === 'BlockUnavailableError')
    await assert.rejects(session.getBytes(missing, { signal: AbortSignal.timeout(15_000) }), (err: Error) => err.name === 'BlockUnavailableError')
    assert.equal(reader.exchange.stats().rediscoveries, 0)
  })

  it('the channel kept to a peer goes when the peer disconnects, and comes back when it is asked again', async (t) => {
    const reader = await startNode(t)
    const holders = await Promise.all([startNode(t), startNode(t), startNode(t)])
    const held = holders.map((h, i) => ({ holder: h, bytes: randomBytes(1024, 20 + i) }))
    for (const { holder, bytes } of held) await holder.blockstore.put(rawCID(bytes), bytes)
    for (const { holder } of held) await connect(reader, holder)
    for (const { holder, bytes } of held) {
      assertSameBytes(await reader.exchange.getBlock(rawCID(bytes), { providers: [holder.libp2p.peerId], store: false, signal: AbortSignal.timeout(10_000) }), bytes)
    }
    assert.equal(reader.exchange.stats().peerChannels, 3)
    for (const { holder } of held) await reader.libp2p.hangUp(holder.libp2p.peerId)
    for (let i = 0; i < 50 && reader.exchange.stats().peerChannels > 0; i++) await sleep(100)
    assert.equal(reader.exchange.stats().peerChannels, 0, 'nothing kept for peers gone')
    await connect(reader, held[0].holder)
    assertSameBytes(await reader.exchange.getBlock(rawCID(held[0].bytes), { providers: [held[0].holder.libp2p.peerId], store: false, signal: AbortSignal.timeout(10_000) }), held[0].bytes)
    assert.equal(reader.exchange.stats().peerChannels, 1)
  })
})
