/**
 * The block exchange's limits between real libp2p hosts on 127.0.0.1 with
 * real LevelDB block stores: an unsolicited push is refused block by block
 * and the victim's disk does not grow; only expected blocks are stored, and
 * only from the peer expected to push them; a peer flooding `want`s is
 * slowed while another peer is served; malformed and oversized requests
 * change nothing.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { lpStream } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ExpectedPuts, PUT_REFUSED } from '../../../node/exchange/index.js'
import { importContent, readContent, parseChunker } from '../../../node/content/index.js'
import { BLOCKS_PROTOCOL, MAX_MESSAGE_BYTES, decodeResponse, encodeRequest, type BlockExchangeResponse } from '../../../protocol/block-exchange.js'
import { assertBytesEqual, randomBytes, randomPieces, sha256OfStream, toAsync } from '../../helpers/bytes.js'
import { flipRecord } from '../blocks/fixtures.js'
import { connect, startNode, type TestNode } from './nodes.js'
import type { BlockStore } from '../../../node/blocks/index.js'

const MiB = 1024 * 1024

/** Bytes of every file under `dir` (what `du` counts, without block rounding). */
async function folderBytes (dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    total += entry.isDirectory() ? await folderBytes(path) : (await stat(path)).size
  }
  return total
}

/** A raw block: `bytes` and its CID. */
async function rawBlock (bytes: Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  return { cid: CID.createV1(0x55, await sha256.digest(bytes)), bytes }
}

/** `count` distinct blocks of `size` bytes (one random buffer, a counter in the first bytes). */
async function distinctBlocks (count: number, size: number, seed: number): Promise<Array<{ cid: CID, bytes: Uint8Array }>> {
  const base = randomBytes(size, seed)
  const out: Array<{ cid: CID, bytes: Uint8Array }> = []
  for (let i = 0; i < count; i++) {
    const bytes = Uint8Array.from(base)
    new DataView(bytes.buffer).setUint32(0, i)
    out.push(await rawBlock(bytes))
  }
  return out
}

/** A client speaking the protocol by hand on one stream: one request, its responses. */
async function rawClient (from: TestNode, to: TestNode): Promise<{ ask: (request: Parameters<typeof encodeRequest>[0], responses?: number) => Promise<BlockExchangeResponse[]>, close: () => void }> {
  const stream = await from.libp2p.dialProtocol(to.libp2p.peerId, BLOCKS_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
  const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES, maxBufferSize: 64 * MAX_MESSAGE_BYTES })
  return {
    ask: async (request, responses = 1) => {
      await lp.write(encodeRequest(request))
      const out: BlockExchangeResponse[] = []
      for (let i = 0; i < responses; i++) out.push(decodeResponse((await lp.read()).subarray()))
      return out
    },
    close: () => { stream.abort(new Error('done')) }
  }
}

describe('block exchange limits', { timeout: 120_000 }, () => {
  it('refuses an unsolicited push of 300 blocks of 1 MiB one by one, and the victim\'s store does not grow', async (t) => {
    const victim = await startNode(t, { putPolicy: new ExpectedPuts() })
    const stranger = await startNode(t)
    await connect(stranger, victim)
    const blocks = await distinctBlocks(300, MiB, 1)
    await victim.blockstore.commit()
    const before = await folderBytes(victim.dir)
    const client = await rawClient(stranger, victim)
    const started = Date.now()
    let refused = 0
    for (const [i, block] of blocks.entries()) {
      const [answer] = await client.ask({ v: 1, type: 'put', id: i + 1, cid: block.cid, data: block.bytes })
      assert.equal(answer.type, 'error')
      assert.equal(answer.id, i + 1)
      if (answer.type === 'error' && answer.message.startsWith(PUT_REFUSED)) refused++
    }
    const seconds = (Date.now() - started) / 1000
    client.close()
    assert.equal(refused, 300, 'every put got a typed refusal')
    // the put helper of a well-behaved node stops at the first refusal, with a typed error
    await assert.rejects(stranger.exchange.putBlocks(victim.libp2p.peerId, blocks.slice(0, 3)), (err: Error) => err.name === 'RemoteError' && err.message.includes(PUT_REFUSED))
    await victim.blockstore.commit()
    const after = await folderBytes(victim.dir)
    for (const block of blocks) assert.equal(await victim.blockstore.has(block.cid), false)
    assert.equal(victim.exchange.stats().putsRefused, 303, 'and the three the put helper had in flight')
    assert.equal(victim.exchange.stats().blocksStored, 0)
    // LevelDB may append a few bytes of its own (log, manifest): nothing near one block
    assert.ok(after - before < 64 * 1024, `the store folder grew by ${after - before} bytes`)
    t.diagnostic(`300 MiB pushed and refused in ${seconds.toFixed(1)} s; store folder ${before} → ${after} bytes`)
  })

  it('stores an expected block only from the peer expected to push it, and nothing else; a push of a block held already is acknowledged, nothing written', async (t) => {
    const expected = new ExpectedPuts()
    const holder = await startNode(t, { putPolicy: expected })
    const [placer, other] = await Promise.all([startNode(t), startNode(t)])
    await Promise.all([connect(placer, holder), connect(other, holder)])
    const [shard, stranger] = await distinctBlocks(2, 256 * 1024, 2)
    // what the durability service does when it accepts the placer's hold
    expected.expect(placer.libp2p.peerId.toString(), [shard.cid])
    // another peer pushing that very shard is refused
    await assert.rejects(other.exchange.putBlocks(holder.libp2p.peerId, [shard]), { name: 'RemoteError' })
    // the placer pushing a block not in its hold is refused
    await assert.rejects(placer.exchange.putBlocks(holder.libp2p.peerId, [stranger]), { name: 'RemoteError' })
    assert.equal(await holder.blockstore.has(shard.cid), false)
    assert.equal(await holder.blockstore.has(stranger.cid), false)
    // a corrupt copy of the expected shard is refused and does not use the expectation up
    await assert.rejects(placer.exchange.putBlocks(holder.libp2p.peerId, [{ cid: shard.cid, bytes: stranger.bytes }]), { name: 'RemoteError' })
    // the placer's push of it is stored, once
    const result = await placer.exchange.putBlocks(holder.libp2p.peerId, [shard])
    assert.equal(result.blocks, 1)
    assert.equal(await holder.blockstore.has(shard.cid), true)
    assert.equal(expected.size, 0, 'the expectation was used up')
    // a push of a block held here already, expected or not, from any peer, is acknowledged and writes nothing
    // (a placing node that does not read the held blocks a hold's answer names pushes them)
    assert.equal((await placer.exchange.putBlocks(holder.libp2p.peerId, [shard])).blocks, 1)
    assert.equal((await other.exchange.putBlocks(holder.libp2p.peerId, [shard])).blocks, 1)
    // but not with other bytes than its own
    await assert.rejects(other.exchange.putBlocks(holder.libp2p.peerId, [{ cid: shard.cid, bytes: stranger.bytes }]), { name: 'RemoteError' })
    assert.equal(await holder.blockstore.has(stranger.cid), false)
    const stats = holder.exchange.stats()
    assert.equal(stats.blocksStored, 1)
    assert.equal(stats.putsRefused, 3)
  })

  it('a pushed block replaces a copy here that fails its check, though no read had found the damage yet', async (t) => {
    const expected = new ExpectedPuts()
    const holder = await startNode(t, { putPolicy: expected })
    const placer = await startNode(t)
    await connect(placer, holder)
    const [shard] = await distinctBlocks(1, 256 * 1024, 7)
    await holder.blockstore.put(shard.cid, shard.bytes)
    await holder.blockstore.commit()
    // a byte of the record flipped on disk
    const at = await holder.blockstore.locate?.(shard.cid)
    assert.ok(at !== undefined)
    await flipRecord(holder.dir, at)
    expected.expect(placer.libp2p.peerId.toString(), [shard.cid])
    const result = await placer.exchange.putBlocks(holder.libp2p.peerId, [shard])
    assert.equal(result.blocks, 1)
    await holder.blockstore.commit()
    assertBytesEqual(await holder.blockstore.getBytes(shard.cid), shard.bytes, 'the good bytes are here now')
    assert.equal(holder.exchange.stats().blocksStored, 1)
  })

  it('slows a peer flooding wants while another peer\'s read completes', async (t) => {
    // small rates so that a flood is quick to provoke: 200 CIDs/s, 8 MiB/s per peer
    const holder = await startNode(t, { init: { requestsPerSecond: 200, requestBurst: 64, bytesPerSecond: 8 * MiB, byteBurst: 2 * MiB } })
    const [flooder, reader] = await Promise.all([startNode(t), startNode(t)])
    await Promise.all([connect(flooder, holder), connect(reader, holder)])
    const size = 2 * MiB
    const { cid: root } = await importContent(holder.blockstore, toAsync(randomPieces(size, 3)), { chunker: parseChunker('size-262144') })
    const leaves: CID[] = []
    for await (const block of holder.blockstore.cids()) leaves.push(block)
    // the flood: 4 streams (the most a peer may open), each asking for 32 blocks per want, over and over
    let floodBlocks = 0
    let flooding = true
    const clients = await Promise.all(Array.from({ length: 4 }, async () => await rawClient(flooder, holder)))
    const flood = Promise.all(clients.map(async client => {
      for (let id = 1; flooding; id++) {
        const cids = Array.from({ length: 32 }, (_, i) => leaves[(id + i) % leaves.length])
        try {
          for (const r of await client.ask({ v: 1, type: 'want', id, cids }, cids.length)) if (r.type === 'block') floodBlocks++
        } catch { return }
      }
    }))
    // a fifth stream of the flooder is refused (by libp2p on this connection; by the server over several)
    await assert.rejects(async () => { const c = await rawClient(flooder, holder); await c.ask({ v: 1, type: 'have', id: 1, cids: [root] }) })
    await new Promise(resolve => setTimeout(resolve, 500))
    const got = await sha256OfStream(readContent(reader.exchange.session(root) as unknown as BlockStore, root, { signal: AbortSignal.timeout(20_000) }))
    const floodWhenReadDone = floodBlocks
    flooding = false
    for (const c of clients) c.close()
    await flood
    assert.equal(got, await sha256OfStream(randomPieces(size, 3)), 'the other peer read the whole file while the flood ran')
    const stats = holder.exchange.stats()
    assert.ok(stats.requestsDelayed > 0, 'the flooder\'s requests waited')
    // at 8 MiB/s the flood got at most its burst plus what the rate allows: far from "as fast as it asks"
    assert.ok(floodBlocks * 256 * 1024 < 64 * MiB, `the flood got ${floodBlocks} blocks`)
    t.diagnostic(`flooder got ${floodWhenReadDone} blocks while the reader read ${size} bytes; ${stats.requestsDelayed} requests and ${stats.bytesDelayed} blocks waited`)
  })

  it('answers malformed requests with a typed error and closes the stream; resets an oversized one; nothing changes', async (t) => {
    const holder = await startNode(t, { putPolicy: new ExpectedPuts() })
    const peer = await startNode(t)
    await connect(peer, holder)
    await holder.blockstore.commit()
    const before = await folderBytes(holder.dir)
    // not dag-cbor
    const stream = await peer.libp2p.dialProtocol(holder.libp2p.peerId, BLOCKS_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    await lp.write(new TextEncoder().encode('not a request'))
    const answer = decodeResponse((await lp.read()).subarray())
    assert.equal(answer.type, 'error')
    assert.ok(answer.type === 'error' && answer.message.startsWith('invalid block exchange message'))
    await assert.rejects(lp.read(), 'the stream was closed')
    // a frame longer than the largest message: the stream is reset before it is read
    const big = await peer.libp2p.dialProtocol(holder.libp2p.peerId, BLOCKS_PROTOCOL)
    const bigLp = lpStream(big, { maxDataLength: 2 * MAX_MESSAGE_BYTES })
    await bigLp.write(new Uint8Array(MAX_MESSAGE_BYTES + 1)).catch(() => {})
    await assert.rejects(bigLp.read())
    // the holder still serves
    const client = await rawClient(peer, holder)
    const [haves] = await client.ask({ v: 1, type: 'have', id: 7, cids: [(await rawBlock(new Uint8Array(1))).cid] })
    assert.deepEqual(haves, { v: 1, type: 'haves', id: 7, haves: [false] })
    client.close()
    await holder.blockstore.commit()
    assert.equal(holder.exchange.stats().invalidRequests, 1)
    assert.equal(holder.exchange.stats().blocksStored, 0)
    assert.ok((await folderBytes(holder.dir)) - before < 64 * 1024)
  })
})
