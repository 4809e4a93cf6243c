/**
 * Holds and pushes between real Shoal nodes (libp2p on 127.0.0.1, LevelDB
 * repos): a shard is stored only after its holder accepted a `hold` from
 * the pusher; a hold over the holder's quota for others gets a typed
 * refusal, records nothing, and placement leaves that peer out next time.
 * A `reserve` (a placement streamed during an add) counts against the
 * quota at once, admits pushes of exactly the stated sizes, and ends with
 * the hold that binds it, or with garbage collection once expired.
 * A hold naming a zero shard of a short last stripe is refused whole.
 * `add --wait` pushes shards while it imports; a peer over its quota gets
 * nothing and the shards go to the others.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { createShoalNode, type ShoalNode } from '../../../node/node.js'
import { initRepo } from '../../../node/repo/init.js'
import { formatSwarmKey } from '../../../protocol/swarm-key.js'
import { loadConfig, saveConfig } from '../../../node/repo/config.js'
import { parseChunker } from '../../../node/content/index.js'
import { createLogger } from '../../../node/logger.js'
import { loadManifestRoot, readStripes, shardCID } from '../../../node/durability/stripes.js'
import { collectGarbage, GcLock } from '../../../node/durability/index.js'
import { PUT_REFUSED } from '../../../node/exchange/index.js'
import { eventually } from '../../helpers/cli.js'
import { defer, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { encodeShardsRequest, MAX_SHARDS_MESSAGE_BYTES, SHARDS_PROTOCOL_1_0, type ShardRef } from '../../../protocol/shards.js'
import { lpStream } from '@libp2p/utils'
import * as dagCbor from '@ipld/dag-cbor'

const TEST = { timeout: 120_000 }
/** One private swarm for every node of this file. */
const SWARM_KEY = formatSwarmKey(randomBytes(32))

async function startNode (t: CleanupContext, dir: string, name: string, maxForOthers?: number): Promise<ShoalNode> {
  const repo = join(dir, name)
  await initRepo(repo, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', swarmKey: SWARM_KEY })
  const config = await loadConfig(join(repo, 'config.json'))
  config.durability = { ...config.durability, checkInterval: 0 }
  if (maxForOthers !== undefined) config.storage = { maxForOthers }
  await saveConfig(join(repo, 'config.json'), config)
  const node = await createShoalNode({ repo, logger: createLogger('silent') })
  await node.start()
  defer(t, async () => { await node.stop() })
  return node
}

async function connect (a: ShoalNode, b: ShoalNode): Promise<void> {
  await a.components.libp2p.dial(multiaddr(b.components.libp2p.getMultiaddrs()[0].toString()))
}

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

/** A file added on `node` without placement, then encoded `policy`: its manifest, root and shards. */
async function encodedFile (node: ShoalNode, policy: string, size: number): Promise<{ manifest: CID, root: CID, shards: Array<{ ref: ShardRef, cid: CID, size: number }> }> {
  const info = await node.components.files.add(`/f-${policy}.bin`, once(randomBytes(size)), { chunker: parseChunker('size-262144'), pin: 'none' })
  const root = CID.parse(info.cid)
  const pin = await node.components.durability.encode(root, size, policy)
  const manifest = CID.parse(pin.manifest as string)
  const { blockstore } = node.components
  const mroot = await loadManifestRoot(blockstore, manifest)
  const shards: Array<{ ref: ShardRef, cid: CID, size: number }> = []
  for await (const { index, stripe } of readStripes(blockstore, mroot)) {
    for (let i = 0; i < mroot.k + mroot.m; i++) {
      const cid = shardCID(stripe, mroot.k, i)
      if (cid !== undefined) shards.push({ ref: [index, i], cid, size: i < mroot.k ? stripe.sizes[i] : stripe.shardSize })
    }
  }
  return { manifest, root, shards }
}

async function shardRecords (node: ShoalNode, manifest: CID): Promise<number> {
  let n = 0
  for await (const held of node.components.holdings.held(manifest)) { void held; n++ }
  return n
}

describe('holds, pushes and the quota between real nodes', () => {
  it('stores a pushed shard only after a hold from the pusher; other peers and other blocks are refused', TEST, async t => {
    const dir = await tempDir(t, 'shoal-limits-')
    const [placer, holder, other] = await Promise.all([startNode(t, dir, 'placer'), startNode(t, dir, 'holder'), startNode(t, dir, 'other')])
    await connect(placer, holder)
    await connect(other, holder)
    const { manifest, root, shards } = await encodedFile(placer, 'ec:2+1', 1024 * 1024)
    const held = shards.filter(s => s.ref[1] === 0)
    const holderId = holder.components.peerId
    const before = await holder.components.durability.storage()
    // before any hold: refused
    const bytesOf = async (cid: CID): Promise<Uint8Array> => await placer.components.blockstore.getBytes(cid)
    await assert.rejects(placer.components.exchange.putBlocks(peerIdFromString(holderId), [{ cid: held[0].cid, bytes: await bytesOf(held[0].cid) }]), (err: Error) => err.message.includes(PUT_REFUSED))
    // the hold: shard 0 of every stripe
    await placer.components.durability.network.request(holderId, { v: 1, type: 'hold', manifest, root, shards: held.map(s => s.ref) })
    assert.equal(await shardRecords(holder, manifest), held.length)
    const after = await holder.components.durability.storage()
    assert.equal(after.heldForOthers - before.heldForOthers, held.reduce((a, s) => a + s.size, 0), 'the hold reserved the shards\' bytes')
    // another peer pushing a shard of that hold: refused
    const otherBytes = await bytesOf(held[0].cid)
    await assert.rejects(other.components.exchange.putBlocks(peerIdFromString(holderId), [{ cid: held[0].cid, bytes: otherBytes }]), (err: Error) => err.message.includes(PUT_REFUSED))
    // the placer pushing a shard not in its hold: refused
    const notHeld = shards.find(s => s.ref[1] === 1) as { cid: CID }
    await assert.rejects(placer.components.exchange.putBlocks(peerIdFromString(holderId), [{ cid: notHeld.cid, bytes: await bytesOf(notHeld.cid) }]), (err: Error) => err.message.includes(PUT_REFUSED))
    // a block nobody holds: refused
    const junk = randomBytes(1000)
    const junkCid = CID.createV1(0x55, await sha256.digest(junk))
    await assert.rejects(placer.components.exchange.putBlocks(peerIdFromString(holderId), [{ cid: junkCid, bytes: junk }]), { name: 'RemoteError' })
    // the placer's push of its hold: stored
    const result = await placer.components.exchange.putBlocks(peerIdFromString(holderId), (async function * () {
      for (const s of held) yield { cid: s.cid, bytes: await bytesOf(s.cid) }
    })())
    assert.equal(result.blocks, held.length)
    for (const s of held) assert.equal(await holder.components.blockstore.has(s.cid), true)
    for (const cid of [notHeld.cid, junkCid]) assert.equal(await holder.components.blockstore.has(cid), false)
    assert.equal(holder.components.exchange.stats().putsRefused, 4)
  })

  it('refuses a hold over the quota with a typed error, records nothing, and placement leaves the full peer out next time', TEST, async t => {
    const dir = await tempDir(t, 'shoal-quota-')
    const [placer, full, roomy] = await Promise.all([startNode(t, dir, 'placer'), startNode(t, dir, 'full', 100_000), startNode(t, dir, 'roomy')])
    await connect(placer, full)
    await connect(placer, roomy)
    const { manifest, root, shards } = await encodedFile(placer, 'ec:2+1', 1024 * 1024)
    const fullId = full.components.peerId
    // a direct hold: refused, typed on both sides
    await assert.rejects(
      placer.components.durability.network.request(fullId, { v: 1, type: 'hold', manifest, root, shards: shards.filter(s => s.ref[1] === 0).map(s => s.ref) }),
      (err: Error) => err.name === 'QuotaExceededError' && err.message.includes('quota exceeded')
    )
    assert.equal(await full.components.holdings.manifest(manifest), undefined, 'no manifest record')
    assert.equal(await shardRecords(full, manifest), 0, 'no shard record')
    assert.equal(full.components.durability.stats.holdsRefused, 1)
    assert.deepEqual(await full.components.durability.storage(), { maxForOthers: 100_000, heldForOthers: 0 })
    // placement over three peers: the full one refuses and is reported failed…
    const first = await placer.components.durability.place(manifest)
    assert.deepEqual(first.failed, [fullId])
    assert.equal(full.components.durability.stats.holdsRefused, 2)
    assert.equal(await shardRecords(full, manifest), 0)
    // …and the next placement (a repair pass retries it) goes to the others only
    const second = await placer.components.durability.place(manifest)
    assert.deepEqual(second.failed, [])
    assert.equal(full.components.durability.stats.holdsRefused, 2, 'the full peer was not asked again')
    assert.ok(await shardRecords(roomy, manifest) > 0)
    // a quota that is absent defaults to half the free disk plus what is held
    const roomyStorage = await roomy.components.durability.storage()
    assert.ok(roomyStorage.heldForOthers > 0 && roomyStorage.maxForOthers > roomyStorage.heldForOthers)
  })

  it('refuses a hold naming a zero shard of a short last stripe with a typed error, records nothing and admits no push of it', TEST, async t => {
    const dir = await tempDir(t, 'shoal-zero-')
    const [placer, holder] = await Promise.all([startNode(t, dir, 'placer'), startNode(t, dir, 'holder')])
    await connect(placer, holder)
    // five leaves at ec:4+2: stripe 1 holds one leaf, its shards 1..3 are zeros, never stored
    const { manifest, root, shards } = await encodedFile(placer, 'ec:4+2', 5 * 262_144)
    assert.deepEqual(shards.filter(s => s.ref[0] === 1).map(s => s.ref[1]), [0, 4, 5], 'stripe 1 stores shards 0, 4 and 5')
    const holderId = holder.components.peerId
    const before = await holder.components.durability.storage()
    // a zero shard alone, and one among stored shards: the whole hold is refused
    for (const refs of [[[1, 2]], [[0, 0], [1, 0], [1, 3]]] as ShardRef[][]) {
      await assert.rejects(placer.components.durability.network.request(holderId, { v: 1, type: 'hold', manifest, root, shards: refs }),
        (err: Error) => err.name === 'RemoteError' && err.message.includes('zero shard'), JSON.stringify(refs))
    }
    assert.equal(await holder.components.holdings.manifest(manifest), undefined, 'no manifest record')
    assert.equal(await shardRecords(holder, manifest), 0, 'no shard record')
    // the quota itself follows the free disk, which other tests move: what is held is the measure
    assert.equal((await holder.components.durability.storage()).heldForOthers, before.heldForOthers, 'nothing counted for others')
    assert.equal(holder.components.durability.stats.holdsAccepted, 0)
    const first = shards[0]
    await assert.rejects(placer.components.exchange.putBlocks(peerIdFromString(holderId), [{ cid: first.cid, bytes: await placer.components.blockstore.getBytes(first.cid) }]),
      (err: Error) => err.message.includes(PUT_REFUSED), 'no push of the refused hold is expected')
    // the stored shards of that stripe are held as ever
    await placer.components.durability.network.request(holderId, { v: 1, type: 'hold', manifest, root, shards: [[1, 0], [1, 4]] })
    assert.equal(await shardRecords(holder, manifest), 2)
  })

  it('a reserve counts against the quota, admits pushes of exactly the stated sizes, survives a restart, and gc ends it once expired', TEST, async t => {
    const dir = await tempDir(t, 'shoal-reserve-')
    const [placer, holder, small] = await Promise.all([startNode(t, dir, 'placer'), startNode(t, dir, 'holder'), startNode(t, dir, 'small', 100_000)])
    await connect(placer, holder)
    await connect(placer, small)
    const blocks = await Promise.all([randomBytes(40_000), randomBytes(50_000), randomBytes(60_000)].map(async bytes => ({ cid: CID.createV1(0x55, await sha256.digest(bytes)), bytes })))
    const holderId = holder.components.peerId
    const push = async (to: string, list: typeof blocks): Promise<unknown> => await placer.components.exchange.putBlocks(peerIdFromString(to), list)
    // over the quota for others: refused, typed, nothing recorded, nothing may be pushed
    await assert.rejects(placer.components.durability.network.request(small.components.peerId, { v: 1, type: 'reserve', blocks: blocks.map(b => ({ cid: b.cid, size: b.bytes.byteLength })) }),
      { name: 'QuotaExceededError' })
    assert.equal((await small.components.durability.storage()).heldForOthers, 0)
    await assert.rejects(push(small.components.peerId, blocks.slice(0, 1)), (err: Error) => err.message.includes(PUT_REFUSED))
    // within it: the stated bytes count at once; a block stated smaller than it is is refused when pushed
    const stated = [{ cid: blocks[0].cid, size: 40_000 }, { cid: blocks[1].cid, size: 50_000 }, { cid: blocks[2].cid, size: 1 }]
    await placer.components.durability.network.request(holderId, { v: 1, type: 'reserve', blocks: stated })
    assert.equal((await holder.components.durability.storage()).heldForOthers, 90_001)
    await push(holderId, blocks.slice(0, 2))
    await assert.rejects(push(holderId, blocks.slice(2)), (err: Error) => err.message.includes(PUT_REFUSED))
    assert.equal(await holder.components.blockstore.has(blocks[2].cid), false, 'the understated block is not stored')
    assert.equal(await holder.components.blockstore.has(blocks[0].cid), true)
    // the records are durable: a restart counts them again, and gc keeps the reserved blocks
    await holder.stop()
    const again = await createShoalNode({ repo: join(dir, 'holder'), logger: createLogger('silent') })
    await again.start()
    defer(t, async () => { await again.stop() })
    assert.equal((await again.components.durability.storage()).heldForOthers, 90_001)
    await again.components.durability.collectGarbage()
    assert.equal(await again.components.blockstore.has(blocks[0].cid), true, 'kept while reserved')
    // once expired, no hold having bound them: gc ends the reservations and drops their blocks
    const expire = []
    for await (const r of again.components.holdings.reservations()) expire.push({ cid: CID.parse(r.cid), size: r.size })
    assert.equal(expire.length, 3, 'the three reservations outlived the restart')
    await again.components.holdings.reserve(placer.components.peerId, expire, Date.now() - 1)
    await again.components.durability.collectGarbage()
    const left = []
    for await (const r of again.components.holdings.reservations()) left.push(r)
    assert.deepEqual(left, [])
    assert.equal((await again.components.durability.storage()).heldForOthers, 0)
    assert.equal(await again.components.blockstore.has(blocks[0].cid), false, 'an expired reservation\'s block is collected')
  })

  it('a reserve names the blocks the holder has already in its answer, counts none of them, and a collection before the hold keeps them', TEST, async t => {
    const dir = await tempDir(t, 'shoal-reserve-held-')
    const [placer, holder] = await Promise.all([startNode(t, dir, 'placer'), startNode(t, dir, 'holder')])
    await connect(placer, holder)
    const blocks = await Promise.all([randomBytes(30_000), randomBytes(40_000), randomBytes(50_000)].map(async bytes => ({ cid: CID.createV1(0x55, await sha256.digest(bytes)), bytes })))
    // the holder has the first and last already, as blocks nothing here keeps (a shard released as surplus, say)
    for (const b of [blocks[0], blocks[2]]) await holder.components.blockstore.put(b.cid, b.bytes)
    await holder.components.blockstore.commit()
    const answer = await placer.components.durability.network.request(holder.components.peerId, { v: 1, type: 'reserve', blocks: blocks.map(b => ({ cid: b.cid, size: b.bytes.byteLength })) })
    assert.deepEqual(answer, { v: 1, type: 'ok', held: [0, 2] })
    assert.equal((await holder.components.durability.storage()).heldForOthers, 40_000, 'only the missing block counts')
    await holder.components.durability.collectGarbage()
    for (const b of [blocks[0], blocks[2]]) assert.equal(await holder.components.blockstore.has(b.cid), true, 'kept until the hold, as a pushed block is')
    // the same reserve again: all three named once the missing one is pushed, and still nothing counted twice
    await placer.components.exchange.putBlocks(peerIdFromString(holder.components.peerId), [blocks[1]])
    assert.deepEqual(await placer.components.durability.network.request(holder.components.peerId, { v: 1, type: 'reserve', blocks: blocks.map(b => ({ cid: b.cid, size: b.bytes.byteLength })) }),
      { v: 1, type: 'ok', held: [0, 1, 2] })
    assert.equal((await holder.components.durability.storage()).heldForOthers, 40_000)
    // a node of an older version speaks /shoal/shards/1.0.0, whose `ok` has no `held` (its decoder refuses one), and pushes every block
    const stream = await placer.components.libp2p.dialProtocol(peerIdFromString(holder.components.peerId), SHARDS_PROTOCOL_1_0)
    const lp = lpStream(stream, { maxDataLength: MAX_SHARDS_MESSAGE_BYTES })
    await lp.write(encodeShardsRequest({ v: 1, type: 'reserve', blocks: blocks.map(b => ({ cid: b.cid, size: b.bytes.byteLength })) }))
    const bytes = (await lp.read()).subarray()
    assert.deepEqual(dagCbor.decode(bytes), { v: 1, type: 'ok' }, 'a bare ok on 1.0.0')
    await stream.close()
    assert.equal((await placer.components.exchange.putBlocks(peerIdFromString(holder.components.peerId), blocks)).blocks, 3, 'its pushes of blocks held already are acknowledged')
  })

  it('a hold of shards the holder has already, arriving while a collection runs past its marks, keeps them', TEST, async t => {
    const dir = await tempDir(t, 'shoal-hold-gc-')
    const [placer, holder] = await Promise.all([startNode(t, dir, 'placer'), startNode(t, dir, 'holder')])
    await connect(placer, holder)
    const { manifest, root, shards } = await encodedFile(placer, 'ec:2+1', 1024 * 1024)
    const held = shards.filter(s => s.ref[1] === 0)
    // the holder has them already (a read cached the file's leaves), as blocks no file or hold here needs yet
    for (const s of held) await holder.components.blockstore.put(s.cid, await placer.components.blockstore.getBytes(s.cid))
    await holder.components.blockstore.commit()
    // a collection on the holder: the hold comes once its marks have read the holdings
    const holdings = holder.components.holdings
    const late = new Proxy(holdings, {
      get: (target, prop) => {
        if (prop === 'reservations') {
          return async function * () {
            await placer.components.durability.network.request(holder.components.peerId, { v: 1, type: 'hold', manifest, root, shards: held.map(s => s.ref) })
            yield * target.reservations()
          }
        }
        const value = Reflect.get(target, prop, target)
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
    const result = await collectGarbage({ blockstore: holder.components.blockstore, holdings: late, files: async function * () {}, lock: new GcLock(), logger: createLogger('silent') }, 60_000)
    assert.equal(await shardRecords(holder, manifest), held.length, 'the hold was recorded during the collection')
    for (const s of held) assert.equal(await holder.components.blockstore.has(s.cid), true, `held shard ${s.cid.toString()} kept`)
    assert.ok(result.keptNew >= held.length, 'counted as in use since the collection began')
  })

  it('places copies that share a CID on one peer with one push (replicas:3 on two nodes)', TEST, async t => {
    const dir = await tempDir(t, 'shoal-copies-')
    const [writer, peer] = await Promise.all([startNode(t, dir, 'writer'), startNode(t, dir, 'peer')])
    await connect(writer, peer)
    const { manifest } = await encodedFile(writer, 'replicas:3', 600 * 1024)
    const placed = await writer.components.durability.place(manifest)
    assert.deepEqual(placed.failed, [])
    assert.equal(peer.components.exchange.stats().putsRefused, 0)
    assert.ok(await shardRecords(peer, manifest) > 0)
  })

  it('add --wait places its shards while it imports; a peer over its quota refuses them, gets nothing, and the add places them on the others', TEST, async t => {
    const dir = await tempDir(t, 'shoal-wait-')
    const [writer, a, b, full] = await Promise.all([startNode(t, dir, 'writer'), startNode(t, dir, 'a'), startNode(t, dir, 'b'), startNode(t, dir, 'full', 100_000)])
    for (const peer of [a, b]) await connect(writer, peer)
    const data = randomBytes(3 * 1024 * 1024)
    // three live nodes: ec:2+1 is met
    const info = await writer.components.files.add('/s.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true })
    const status = await writer.components.files.pinStatus('/s.bin')
    assert.equal(status.pending, undefined, 'the placement is final')
    assert.deepEqual(status.summary, { healthy: status.stripes.length, atRisk: 0, degraded: 0, lost: 0 })
    const held = async (node: ShoalNode): Promise<number> => (await node.components.durability.storage()).heldForOthers
    assert.ok(await held(a) > 0 && await held(b) > 0, 'the holders count what they hold for the writer')
    const read: Uint8Array[] = []
    for await (const chunk of a.components.files.cat(info.cid)) read.push(chunk)
    assert.deepEqual(Buffer.concat(read), Buffer.from(data))

    // the shards went out during the import: each holder accepted reservations, then one hold bound them
    assert.ok(a.components.durability.stats.reservesAccepted > 0 && b.components.durability.stats.reservesAccepted > 0, 'shards were reserved and pushed during the import')
    for (const holder of [a, b]) {
      const left = []
      for await (const r of holder.components.holdings.reservations()) left.push(r)
      assert.deepEqual(left, [], 'the hold ended every reservation')
      // what counts for others is exactly the shards held for the writer
      let shards = 0
      for await (const [manifest] of holder.components.holdings.manifests()) for await (const h of holder.components.holdings.held(manifest)) shards += h.size ?? 0
      assert.equal(await held(holder), shards)
    }

    // a fourth peer with a tiny quota refuses to take shards: nothing is stored there, the add leaves it out and places on the others
    await connect(writer, full)
    await eventually('the full peer is connected', async () => writer.components.libp2p.getPeers().length === 3)
    // 16 stripes: placement picks 3 of the 4 peers per stripe by a hash of its key, so with 8 stripes the full
    // peer was left out of every one (and asked nothing) once in 65,536 runs; with 16, once in 4·10^9.
    // 256 KiB leaves: shards larger than the full peer's quota
    await writer.components.files.add('/t.bin', once(randomBytes(8 * 1024 * 1024)), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true })
    assert.ok(full.components.durability.stats.holdsRefused > 0, 'refused over its quota')
    assert.equal(full.components.durability.stats.reservesAccepted, 0)
    assert.equal(await held(full), 0)
    assert.equal(await countBlocks(full), 0, 'no shard was pushed to it')
    const placed = await writer.components.files.pinStatus('/t.bin')
    assert.equal(placed.pending, undefined, 'the placement is final')
    assert.deepEqual(placed.summary, { healthy: placed.stripes.length, atRisk: 0, degraded: 0, lost: 0 })
    assert.ok(placed.stripes.every(s => s.shards.every(shard => !shard.holders.includes(full.components.peerId))), 'the full peer holds nothing')
  })
})

async function countBlocks (node: ShoalNode): Promise<number> {
  let n = 0
  for await (const cid of node.components.blockstore.cids()) { void cid; n++ }
  return n
}
