/**
 * Faults of peers towards the block exchange, between real libp2p hosts on
 * 127.0.0.1 with real LevelDB block stores (a misbehaving peer speaks the
 * protocol by hand: a fault that cannot be made real): a `haves` answer of
 * the wrong length, one stalled stream with several wants in flight, a
 * corrupt block from a peer that had served good ones first, wants still
 * waiting for a slot when their peer is hung up on.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { lpStream } from '@libp2p/utils'
import { setTimeout as sleep } from 'node:timers/promises'
import { BLOCKS_PROTOCOL, MAX_MESSAGE_BYTES, decodeRequest, encodeResponse } from '../../../protocol/block-exchange.js'
import { rawCID } from '../../../node/blocks/verify.js'
import { randomBytes } from '../../helpers/bytes.js'
import { connect, serveBlocksAs, startNode, type TestNode } from './nodes.js'
import type { CID } from 'multiformats/cid'

/** `count` distinct raw blocks of `size` bytes. */
function blocks (count: number, size: number, seed: number): Array<{ cid: CID, bytes: Uint8Array }> {
  return Array.from({ length: count }, (_, i) => {
    const bytes = randomBytes(size, seed * 1000 + i)
    return { cid: rawCID(bytes), bytes }
  })
}

/** `node` (started without its exchange) answers every `have` with 256 `true`s, whatever it was asked. */
async function answerHavesOfWrongLength (node: TestNode): Promise<void> {
  await node.libp2p.handle(BLOCKS_PROTOCOL, async (stream) => {
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    try {
      while (true) {
        const request = decodeRequest((await lp.read()).subarray())
        if (request.type === 'have') await lp.write(encodeResponse({ v: 1, type: 'haves', id: request.id, haves: new Array(256).fill(true) }))
      }
    } catch { stream.abort(new Error('done')) }
  })
}

describe('block exchange: faults of peers', { timeout: 60_000 }, () => {
  it('a haves answer that does not have one boolean per CID asked is refused, not counted', async (t) => {
    const [reader, honest] = await Promise.all([startNode(t), startNode(t)])
    const liar = await startNode(t, { exchange: false })
    await answerHavesOfWrongLength(liar)
    const [held, missing] = blocks(2, 1024, 1)
    await honest.blockstore.put(held.cid, held.bytes)
    await connect(reader, liar)
    await connect(reader, honest)
    const survey = await reader.exchange.askHave([held.cid, missing.cid], { signal: AbortSignal.timeout(10_000) })
    for (const a of survey.peers) assert.ok(a.have <= a.asked, `${a.peer} said it has ${a.have} of ${a.asked} blocks`)
    assert.deepEqual(survey.peers, [{ peer: honest.libp2p.peerId.toString(), have: 1, asked: 2 }])
    // the liar's answer does not count: the missing block is held by no peer that answered
    assert.equal(survey.heldByNone, 1)
    assert.ok(reader.exchange.stats().invalidResponses >= 1, 'counted as an invalid response')
  })

  it('one stalled stream with several wants in flight costs its peer one failure, not a ban', async (t) => {
    const reader = await startNode(t, { init: { requestTimeoutMs: 1_000 } })
    const holder = await startNode(t, { exchange: false })
    const wanted = blocks(8, 1024, 2)
    let stalled = true
    await serveBlocksAs(holder, cid => stalled ? undefined : wanted.find(b => b.cid.equals(cid))?.bytes)
    await connect(reader, holder)
    // eight wants go out together; the holder answers none of them, and the stream times out once
    const first = await Promise.allSettled(wanted.map(async b => await reader.exchange.getBlock(b.cid, { providers: [holder.libp2p.peerId], signal: AbortSignal.timeout(10_000) })))
    assert.ok(first.every(r => r.status === 'rejected'))
    assert.equal(reader.exchange.stats().streamFailures, 1, 'one stream failed, once')
    // the holder answers again, still connected: it is asked, not shunned for five minutes
    stalled = false
    const bytes = await reader.exchange.getBlock(wanted[0].cid, { providers: [holder.libp2p.peerId], signal: AbortSignal.timeout(10_000) })
    assert.deepEqual(new Uint8Array(bytes), wanted[0].bytes)
  })

  it('a corrupt block bans its peer even after it served good blocks', async (t) => {
    const [reader, honest] = await Promise.all([startNode(t), startNode(t)])
    const liar = await startNode(t, { exchange: false })
    const good = blocks(60, 1024, 3)
    const [target, next] = blocks(2, 1024, 4)
    for (const b of [target, next]) await honest.blockstore.put(b.cid, b.bytes)
    let lies = 0
    await serveBlocksAs(liar, cid => {
      const known = good.find(b => b.cid.equals(cid))
      if (known !== undefined) return known.bytes
      lies++
      return new Uint8Array(1024).fill(7)
    })
    await connect(reader, liar)
    await connect(reader, honest)
    // sixty good blocks from the liar first
    for (const b of good) await reader.exchange.getBlock(b.cid, { providers: [liar.libp2p.peerId], signal: AbortSignal.timeout(10_000) })
    // then wrong bytes: caught, never served; the honest holder gives the block
    const bytes = await reader.exchange.getBlock(target.cid, { providers: [liar.libp2p.peerId, honest.libp2p.peerId], signal: AbortSignal.timeout(10_000) })
    assert.deepEqual(new Uint8Array(bytes), target.bytes)
    assert.equal(lies, 1)
    assert.equal(reader.exchange.stats().corruptBlocks, 1)
    // back again: the liar is banned, not asked
    await connect(reader, liar)
    const again = await reader.exchange.getBlock(next.cid, { providers: [liar.libp2p.peerId, honest.libp2p.peerId], signal: AbortSignal.timeout(10_000) })
    assert.deepEqual(new Uint8Array(again), next.bytes)
    assert.equal(lies, 1, 'the liar was not asked again')
  })

  it('wants waiting for a slot when their peer is hung up on fail without dialling it again', async (t) => {
    // a window of one: the first want goes out, the three others wait for its slot
    const reader = await startNode(t, { init: { window: 1 } })
    const liar = await startNode(t, { exchange: false })
    const wanted = blocks(4, 1024, 5)
    let streams = 0
    await liar.libp2p.handle(BLOCKS_PROTOCOL, async (stream) => {
      streams++
      const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      try {
        while (true) {
          const request = decodeRequest((await lp.read()).subarray())
          // wrong bytes for every block asked: the reader punishes and hangs up
          if (request.type === 'want') for (const cid of request.cids) await lp.write(encodeResponse({ v: 1, type: 'block', id: request.id, cid, data: new Uint8Array(1024).fill(9) }))
        }
      } catch { stream.abort(new Error('done')) }
    })
    await connect(reader, liar)
    const results = await Promise.allSettled(wanted.map(async b => await reader.exchange.getBlock(b.cid, { providers: [liar.libp2p.peerId], signal: AbortSignal.timeout(10_000) })))
    assert.ok(results.every(r => r.status === 'rejected'), 'no wrong bytes served')
    assert.equal(streams, 1, 'the peer hung up on was not dialled again for the wants that waited')
    // the hang-up itself is asynchronous: give it a moment, then it must hold
    for (let i = 0; i < 50 && reader.libp2p.getConnections(liar.libp2p.peerId).length > 0; i++) await sleep(100)
    assert.equal(reader.libp2p.getConnections(liar.libp2p.peerId).length, 0, 'and stays hung up on')
    await sleep(500)
    assert.equal(reader.libp2p.getConnections(liar.libp2p.peerId).length, 0, 'and stays hung up on')
    assert.equal(streams, 1)
  })
})
