/**
 * Durability on real nodes: eight Shoal nodes (real libp2p on 127.0.0.1,
 * real LevelDB in temp repos) in one process. A file pinned `ec:4+2` is
 * placed on six peers, survives any two holders going away (degraded reads),
 * is repaired onto live peers after the grace period, survives two more, and
 * a holder that only restarts within the grace period causes no repair, a
 * scrub finds blocks corrupted on disk and rebuilds or re-fetches them, and
 * `pin status` gives each stripe its state as a file is placed, loses a
 * shard and is repaired.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { parseChunker } from '../../../node/content/index.js'
import { repoLayout } from '../../../node/repo/index.js'
import { PackBlockStore } from '../../../node/blocks/index.js'
import { flipEveryBlock } from '../blocks/fixtures.js'
import { CID } from 'multiformats/cid'
import { defer, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { GRACE_MS, connectAll, holdBackRequests, live, makeRepo, once, readAll, sha, startNode, stopNode, swarmOf, until, untilOnEvery, type Swarm } from '../../helpers/swarm.js'
import { HolderView } from '../../../node/durability/view.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 180_000 }
const K = 4
const M = 2

/** Six nodes, and a 2 MiB file `/f.bin` pinned ec:4+2 by node 0 whose record every node has. */
async function smallFileOnSix (t: CleanupContext): Promise<{ swarm: Swarm, writer: ShoalNode, data: Buffer }> {
  const swarm = await swarmOf(t, 6)
  const writer = swarm.nodes[0] as ShoalNode
  const data = randomBytes(2 * 1024 * 1024)
  await writer.components.files.add('/f.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:4+2', wait: true })
  await untilOnEvery(live(swarm), '/f.bin')
  return { swarm, writer, data }
}

function indexOfPeer (swarm: Swarm, peer: string): number {
  return swarm.nodes.findIndex(n => n?.components.peerId === peer)
}

describe('durability on real nodes', () => {
  it('ec:4+2 survives any two holders down, repairs after the grace period, then survives two more', TEST, async t => {
    // eight nodes: with two down, six live peers can still take six distinct shards
    const swarm = await swarmOf(t, 8)
    const writer = swarm.nodes[0] as ShoalNode
    const data = randomBytes(6 * 1024 * 1024)
    const info = await writer.components.files.add('/big.bin', once(data), { chunker: parseChunker('size-262144'), pin: `ec:${K}+${M}`, wait: true })
    assert.equal(info.size, data.byteLength)

    // every stripe is on six distinct peers
    const status = await writer.components.files.pinStatus('/big.bin')
    assert.equal(status.policy, 'ec:4+2')
    assert.ok(status.stripes.length >= 6, `24 leaves make 6 stripes, got ${status.stripes.length}`)
    assert.deepEqual(status.summary, { healthy: status.stripes.length, atRisk: 0, degraded: 0, lost: 0 })
    for (const s of status.stripes) {
      const holders = s.shards.map(sh => sh.holders[0])
      assert.equal(new Set(holders).size, K + M, `stripe ${s.index} on ${K + M} distinct peers: ${holders.join(',')}`)
    }

    // everyone learns the pin through the namespace
    await untilOnEvery(live(swarm), '/big.bin')

    // the writer keeps only its own shards once placement is confirmed
    const before = await countBlocks(writer)
    const gc = await writer.components.durability.collectGarbage()
    assert.ok(gc.removed > 0 && (await countBlocks(writer)) < before, `the writer dropped shards it does not hold (${gc.removed} removed)`)
    assert.equal(sha(await readAll(writer, '/big.bin')), sha(data), 'the writer still reads it (from the holders)')

    // stop two holders of stripe 0 that are not the reader
    const reader = swarm.nodes[7] as ShoalNode
    const stripe0 = status.stripes[0].shards.map(sh => sh.holders[0])
    const victims = stripe0.map(p => indexOfPeer(swarm, p)).filter(i => i !== 7 && i !== 0).slice(0, 2)
    assert.equal(victims.length, 2)
    for (const v of victims) await stopNode(swarm, v)
    assert.equal(sha(await readAll(reader, '/big.bin')), sha(data), 'degraded read with two holders down is byte-identical')

    // after the grace period, repair rebuilds the missing shards on live peers
    await new Promise(resolve => setTimeout(resolve, GRACE_MS + 200))
    let repaired = 0
    let bytesMoved = 0
    for (const n of live(swarm)) {
      const r = await n.components.durability.repair()
      repaired += r.repaired
      bytesMoved += r.bytesIn + r.bytesOut
    }
    assert.ok(repaired > 0, 'shards were rebuilt')
    const shardBytes = 256 * 1024
    assert.ok(bytesMoved <= 1.2 * K * shardBytes * repaired, `repair moved ${bytesMoved} bytes for ${repaired} shards (≤ 1.2 × ${K} shards each)`)
    const after = await (live(swarm)[0]).components.files.pinStatus('/big.bin')
    assert.deepEqual(after.summary, { healthy: after.stripes.length, atRisk: 0, degraded: 0, lost: 0 }, 'every stripe has 6 live shards again')
    for (const s of after.stripes) for (const sh of s.shards) assert.ok(sh.holders.length > 0 && sh.holders.every(p => indexOfPeer(swarm, p) >= 0), 'on live peers')

    // two more holders go away: still readable
    const stripe0now = after.stripes[0].shards.map(sh => sh.holders[0])
    const more = stripe0now.map(p => indexOfPeer(swarm, p)).filter(i => i !== 7).slice(0, 2)
    for (const v of more) await stopNode(swarm, v)
    assert.equal(sha(await readAll(reader, '/big.bin')), sha(data), 'still byte-identical with two more holders down')
  })

  it('a read by CID of a striped file whose data-shard holder is gone rebuilds the leaf, as a read by path does', TEST, async t => {
    const { swarm, writer, data } = await smallFileOnSix(t)
    const cid = (await writer.components.files.stat('/f.bin')).cid
    // the writer keeps only its own shards: the victim's leaf is nowhere else
    await writer.components.durability.collectGarbage()
    const status = await writer.components.files.pinStatus('/f.bin')
    const readerIndex = 5
    const victim = status.stripes[0].shards.slice(0, K).map(sh => indexOfPeer(swarm, sh.holders[0])).find(i => i !== 0 && i !== readerIndex)
    assert.ok(victim !== undefined, 'a data-shard holder of stripe 0 that is neither the writer nor the reader')
    await stopNode(swarm, victim)
    const reader = swarm.nodes[readerIndex] as ShoalNode
    assert.equal(sha(await readAll(reader, cid)), sha(data), 'cat CID: byte-identical, its missing leaf rebuilt from the stripe')
    assert.equal(sha(await readAll(reader, '/f.bin')), sha(data), 'cat PATH: the same')
  })

  it('a stripe with just k shards left is read though the read\'s first view missed one of their holders (it answered late): the view is asked again', TEST, async t => {
    const { swarm, writer, data } = await smallFileOnSix(t)
    await writer.components.durability.collectGarbage()
    const status = await writer.components.files.pinStatus('/f.bin')
    const readerIndex = 5
    // two holders of stripe 0 go, one of them a data shard's: k = 4 shards are left, on four nodes; the late one holds
    // a parity shard (a data shard's holder would still give its leaf through the read's session: no rebuild would need it)
    const holders = status.stripes[0].shards.map(sh => indexOfPeer(swarm, sh.holders[0]))
    const late = holders.find((i, shard) => shard >= K && i !== readerIndex) as number
    const dataVictim = holders.slice(0, K).find(i => i !== 0 && i !== readerIndex) as number
    const other = holders.find(i => i !== 0 && i !== readerIndex && i !== dataVictim && i !== late) as number
    for (const v of [dataVictim, other]) await stopNode(swarm, v)
    const lateId = (swarm.nodes[late] as ShoalNode).components.peerId
    // the reader's first view leaves that holder out, as if its answer came after the view's wait
    const reader = swarm.nodes[readerIndex] as ShoalNode
    const service = reader.components.durability
    const holderView = service.holderView.bind(service)
    let calls = 0
    service.holderView = async (manifest, shape, options) => {
      const view = await holderView(manifest, shape, options)
      if (++calls > 1) return view
      const partial = new HolderView()
      for (let stripe = 0; stripe < shape.stripes; stripe++) {
        for (let shard = 0; shard < shape.width; shard++) for (const peer of view.holders(stripe, shard)) if (peer !== lateId) partial.add(stripe, shard, peer)
      }
      partial.asked.push(...view.asked.filter(peer => peer !== lateId))
      return partial
    }
    defer(t, async () => { service.holderView = holderView })
    assert.equal(sha(await readAll(reader, '/f.bin')), sha(data), 'byte-identical: the stripe rebuilt from the four shards once the view was asked again')
    assert.equal(calls, 2, 'the view was asked once more, not more')
  })

  it('a stripe with just k shards left, one of its leaves late and another lost: the lost leaf is rebuilt with the late one, not failed with the hedge that left it out', TEST, async t => {
    const { swarm, writer, data } = await smallFileOnSix(t)
    await writer.components.durability.collectGarbage()
    const status = await writer.components.files.pinStatus('/f.bin')
    const readerIndex = 5
    const shards = status.stripes[0].shards
    const holders = shards.map(sh => indexOfPeer(swarm, sh.holders[0]))
    // a data shard's holder goes (its leaf is lost), another holder goes too: four shards are left, one of them late
    const lostShard = holders.slice(0, K).findIndex(i => i !== 0 && i !== readerIndex)
    const lateShard = holders.slice(0, K).findIndex((i, shard) => shard !== lostShard && i !== readerIndex)
    const other = holders.find((i, shard) => shard !== lostShard && shard !== lateShard && i !== 0 && i !== readerIndex) as number
    for (const v of [holders[lostShard], other]) await stopNode(swarm, v)
    // the late holder answers for its leaf 3 s late: past the hedge's first second, so a rebuild without it starts and fails
    const late = (swarm.nodes[holders[lateShard]] as ShoalNode).components.blockstore
    const lateCid = shards[lateShard].cid as string
    const getBytes = late.getBytes.bind(late)
    late.getBytes = async (cid, options) => {
      if (cid.toString() === lateCid) await new Promise(resolve => setTimeout(resolve, 3_000))
      return await getBytes(cid, options)
    }
    defer(t, async () => { late.getBytes = getBytes })
    assert.equal(sha(await readAll(swarm.nodes[readerIndex] as ShoalNode, '/f.bin')), sha(data), 'byte-identical: the lost leaf rebuilt from the four shards, the late one awaited')
  })

  it('add --wait of a file of one short stripe (fewer leaves than k) succeeds once each of its shards is on a node of its own, and it is healthy', TEST, async t => {
    // five nodes: as many as the file's shards, fewer than k+m
    const swarm = await swarmOf(t, 5)
    const writer = swarm.nodes[0] as ShoalNode
    // three leaves: one stripe of 3 data shards and 2 parity shards, 5 shards in all
    const data = randomBytes(600 * 1024)
    await writer.components.files.add('/short.bin', once(data), { chunker: parseChunker('size-262144'), pin: `ec:${K}+${M}`, wait: true })
    const status = await writer.components.files.pinStatus('/short.bin')
    assert.equal(status.stripes.length, 1)
    assert.deepEqual(status.summary, { healthy: 1, atRisk: 0, degraded: 0, lost: 0 })
    assert.equal(status.state, 'healthy', 'placed for good, not waiting for a sixth node')
    const holders = status.stripes[0].shards.flatMap(sh => sh.holders)
    assert.equal(new Set(holders).size, holders.length, `each shard on a node of its own: ${holders.join(',')}`)
    assert.equal(sha(await readAll(writer, '/short.bin')), sha(data))
  })

  it('a holder that restarts within the grace period causes no repair traffic', TEST, async t => {
    const { swarm } = await smallFileOnSix(t)
    await stopNode(swarm, 3)
    for (const n of live(swarm)) {
      const r = await n.components.durability.repair()
      assert.equal(r.repaired, 0)
      assert.equal(r.bytesIn + r.bytesOut, 0)
    }
    const restarted = await startNode(swarm.repos[3])
    swarm.nodes[3] = restarted
    await connectAll(live(swarm))
    await new Promise(resolve => setTimeout(resolve, GRACE_MS + 200))
    let moved = 0
    for (const n of live(swarm)) {
      const r = await n.components.durability.repair()
      moved += r.repaired + r.bytesIn + r.bytesOut
      assert.equal(r.degraded + r.lost, 0, 'all stripes healthy again')
    }
    assert.equal(moved, 0, 'no shard was rebuilt or moved')
  })

  it('a scrub finds blocks corrupted on disk: held shards are rebuilt from their stripes, other blocks fetched again, unique ones reported lost', TEST, async t => {
    const { swarm, writer, data } = await smallFileOnSix(t)
    // a holder that is not the writer; it also keeps one block nobody else has
    const v = 1 + swarm.nodes.slice(1).findIndex(n => n !== undefined)
    const victim = swarm.nodes[v] as ShoalNode
    const unique = randomBytes(1000)
    const lone = await victim.components.files.add('/lone.bin', once(unique), { chunker: parseChunker('size-262144'), pin: 'none' })
    const held: string[] = []
    for await (const [manifest] of victim.components.holdings.manifests()) {
      for await (const h of victim.components.holdings.held(manifest)) held.push(h.cid)
    }
    assert.ok(held.length > 0, 'the victim holds shards')
    await stopNode(swarm, v)

    // flip one byte of every block on its disk (in its pack): shards, the file's skeleton and manifest, the lone block
    const corrupted = await flipEveryBlock(repoLayout(swarm.repos[v]).blocks)

    const restarted = await startNode(swarm.repos[v])
    swarm.nodes[v] = restarted
    await connectAll(live(swarm))
    const scanned: Array<{ blocks: number, bytes: number, corrupt: number }> = []
    const report = await restarted.components.durability.scrub(undefined, { onProgress: e => { scanned.push(e.detail) } })
    assert.equal(report.blocks, corrupted)
    assert.deepEqual(scanned.at(-1), { blocks: report.blocks, bytes: report.bytes, corrupt: report.corrupt }, 'the scan\'s progress ends at its totals')
    assert.equal(report.corrupt, corrupted, 'every flipped block was found')
    assert.equal(report.rebuilt, held.length, 'every held shard was rebuilt from its stripe')
    assert.deepEqual(report.lost, [{ cid: lone.cid, paths: ['/lone.bin'] }], 'the block nobody else has is reported lost, with its file')
    assert.equal(report.leftovers + report.unknown, 0, 'every corrupt block is of a file or pin here')
    assert.equal(report.refetched, corrupted - held.length - 1, 'the other blocks were fetched again from peers')
    assert.deepEqual(report.errors, [])
    assert.equal(await restarted.components.blockstore.has(CID.parse(lone.cid)), false, 'a corrupt block is not kept')

    // what is left verifies, a second scrub finds nothing, and the file is whole and healthy
    const again = await restarted.components.durability.scrub()
    assert.equal(again.corrupt, 0)
    for (const cid of held) assert.ok((await restarted.components.blockstore.getBytes(CID.parse(cid))).byteLength > 0)
    const status = await writer.components.files.pinStatus('/f.bin')
    assert.deepEqual(status.summary, { healthy: status.stripes.length, atRisk: 0, degraded: 0, lost: 0 })
    assert.equal(sha(await readAll(restarted, '/f.bin')), sha(data))

    // a shard gone from a holder that stays up is rebuilt by the next pass (a live peer never "comes back" with it)
    for (const n of live(swarm)) await n.components.durability.repair()
    await restarted.components.blockstore.delete(CID.parse(held[0]))
    let repaired = 0
    const progress: Array<{ manifests: number, total: number, repaired: number }> = []
    for (const n of live(swarm)) repaired += (await n.components.durability.repair(undefined, { onProgress: e => { progress.push(e.detail) } })).repaired
    assert.equal(repaired, 1, 'the lost shard was rebuilt once')
    assert.ok(progress.length > 0 && progress.every(p => p.manifests <= p.total), 'each pass told its progress, manifest by manifest')
    assert.equal(Math.max(...progress.map(p => p.repaired)), 1, 'and the shard it rebuilt')
    const healed = await writer.components.files.pinStatus('/f.bin')
    assert.deepEqual(healed.summary, { healthy: healed.stripes.length, atRisk: 0, degraded: 0, lost: 0 })
  })

  it('pin status gives each stripe its own state: pending before placement, placing with its shards acked while pushed, then healthy, degraded when it misses a shard, healthy once repaired', TEST, async t => {
    const swarm = await swarmOf(t, 3)
    const nodes = live(swarm)
    const [writer, first, second] = nodes
    await until('every peer connected', async () => writer.components.libp2p.getPeers().length === 2)
    const { durability, files, namespace, blockstore } = writer.components
    const self = writer.components.peerId
    // 13 leaves of 256 KiB: 7 stripes of ec:2+1, the last one short (its zero shard goes nowhere)
    const data = randomBytes(3 * 1024 * 1024 + 4_321)
    const info = await files.add('/s.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'none' })
    const pin = await durability.encode(CID.parse(info.cid), data.byteLength, 'ec:2+1')
    const entry = await namespace.stat('/s.bin')
    assert.ok(entry.type === 'file')
    await namespace.putFile('/s.bin', { cid: entry.cid, size: entry.size, mode: entry.mode, mtime: entry.mtime, pin })

    // coded, not placed: every shard here, every stripe waits for its placement, and says why
    const coded = await files.pinStatus('/s.bin')
    assert.equal(coded.stripes.length, 7)
    assert.equal(coded.state, 'pending')
    for (const s of coded.stripes) {
      assert.deepEqual([s.state, s.health], ['pending', 'at-risk'], `stripe ${s.index}`)
      assert.match(s.waiting ?? '', /^not confirmed on all its holders yet/)
      assert.equal(s.progress, undefined)
    }

    // place, holding back the second peer's `hold` until the first peer acknowledged its shards and pin status was read
    let release: () => void = () => {}
    const gate = new Promise<void>(resolve => { release = resolve })
    defer(t, async () => { release() })
    holdBackRequests(t, writer, (peer, message) => message.type === 'hold' && peer === second.components.peerId, gate)
    let firstAcked = false
    const placing = durability.place(CID.parse(pin.manifest as string), undefined, { onProgress: evt => { if (evt.detail.peer === first.components.peerId) firstAcked = true } })
    placing.catch(() => {})
    await until('the first peer acknowledged its shards', async () => firstAcked)
    const during = await files.pinStatus('/s.bin')
    release()
    assert.equal(during.state, 'placing')
    assert.ok(during.placing !== undefined && during.placing.pushed > 0 && during.placing.pushed < during.placing.total, JSON.stringify(during.placing))
    let placingStripes = 0
    for (const s of during.stripes) {
      // acked: the shards of this stripe on the first peer; to place: those on either peer (a zero shard goes nowhere)
      const toPlace = s.shards.filter(sh => sh.cid !== undefined && sh.placed !== self)
      const acked = toPlace.filter(sh => sh.placed === first.components.peerId).length
      // a short last stripe's zero shard goes nowhere: if it was this node's, the leaf here and the shards on peers are on distinct nodes already
      const short = s.shards.some(sh => sh.cid === undefined)
      if (!short) assert.equal(s.health, 'at-risk', `stripe ${s.index}: the second peer's shard is only here yet`)
      if (acked < toPlace.length) {
        placingStripes++
        assert.equal(s.state, 'placing', `stripe ${s.index}`)
        assert.deepEqual(s.progress, { acked, total: toPlace.length }, `stripe ${s.index}`)
      } else {
        assert.equal(s.state, 'pending', `stripe ${s.index}: its shards are acknowledged, the others' are not`)
        assert.match(s.waiting ?? '', /the file's other stripes are being placed/)
      }
    }
    assert.ok(placingStripes >= 6, 'every stripe with a shard for the second peer is placing')
    assert.deepEqual((await placing).failed, [])

    // placed: healthy, stripe by stripe, and nothing under way
    const placed = await files.pinStatus('/s.bin')
    assert.equal(placed.state, 'healthy')
    for (const s of placed.stripes) {
      assert.equal(s.state, 'healthy', `stripe ${s.index}`)
      assert.equal(s.progress, undefined)
      assert.equal(s.waiting, undefined)
    }

    // a shard of stripe 2 gone from its holder here: that stripe is degraded, the others stay healthy
    const gone = placed.stripes[2].shards.find(sh => sh.placed === self && sh.cid !== undefined)
    assert.ok(gone?.cid !== undefined)
    await blockstore.delete(CID.parse(gone.cid))
    const degraded = await files.pinStatus('/s.bin')
    assert.equal(degraded.state, 'degraded')
    assert.deepEqual(degraded.stripes.map(s => s.state), placed.stripes.map(s => s.index === 2 ? 'degraded' : 'healthy'))

    // the repair pass rebuilds it (once the grace period has passed): healthy again
    await until('the stripe is repaired', async () => {
      for (const node of nodes) await node.components.durability.repair()
      return (await files.pinStatus('/s.bin')).stripes.every(s => s.state === 'healthy')
    })
    assert.equal((await files.pinStatus('/s.bin')).state, 'healthy')
  })

  it('an add --wait counts each stripe\'s shards as its streamed placement pushes them: pin status shows them acknowledged while a holder\'s hold is held back', TEST, async t => {
    const swarm = await swarmOf(t, 3)
    const [writer, , second] = live(swarm)
    await until('every peer connected', async () => writer.components.libp2p.getPeers().length === 2)
    const { files } = writer.components
    let release: () => void = () => {}
    const gate = new Promise<void>(resolve => { release = resolve })
    defer(t, async () => { release() })
    let held = false
    holdBackRequests(t, writer, (peer, message) => {
      const pick = message.type === 'hold' && peer === second.components.peerId
      if (pick) held = true
      return pick
    }, gate)
    // 13 leaves of 256 KiB: 7 stripes of ec:2+1, pushed while the import runs, then bound by one hold per peer
    const data = randomBytes(3 * 1024 * 1024 + 4_321)
    const adding = files.add('/w.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true })
    adding.catch(() => {})
    await until('the second peer\'s hold is held back, the entry written', async () => held && (await writer.components.namespace.lookup('/w.bin')) !== undefined)
    const during = await files.pinStatus('/w.bin')
    release()
    assert.equal(during.stripes.length, 7)
    assert.ok(during.placing !== undefined && during.placing.pushed === during.placing.total, JSON.stringify(during.placing))
    for (const s of during.stripes) {
      // every shard for a peer is pushed and acknowledged; the placement is not final until the holds are answered
      assert.equal(s.state, 'pending', `stripe ${s.index}`)
      assert.equal(s.progress, undefined, `stripe ${s.index}: nothing left to push`)
    }
    assert.equal(during.state, 'pending')
    await adding
    const placed = await files.pinStatus('/w.bin')
    assert.deepEqual(placed.stripes.map(s => s.state), placed.stripes.map(() => 'healthy'))
  })

  it('a lone node writes no parity: its pins wait, visible, and are coded and placed by themselves once enough peers are live', TEST, async t => {
    const swarm = await swarmOf(t, 1)
    const writer = swarm.nodes[0] as ShoalNode
    const data = randomBytes(3 * 1024 * 1024)
    // a plain add returns once the file is durable here; --wait says the policy is not met, and why
    await writer.components.files.add('/alone.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:2+1' })
    const store = writer.components.blockstore
    assert.ok(store instanceof PackBlockStore)
    assert.equal(store.uncommitted, 0, 'every block is fsynced when the add returns')
    await writer.components.files.settled()
    await assert.rejects(writer.components.files.add('/alone2.bin', once(randomBytes(2 * 1024 * 1024)), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true }),
      (err: any) => err.name === 'PolicyNotMetError' && /policy is not met: 1 live node, ec:2\+1 needs 3 for its parity to survive a lost node/.test(err.message))
    // 12 + 8 leaves and two roots: not one parity or manifest block
    assert.equal(await countBlocks(writer), 22, 'only the files\' own blocks are stored')
    const alone = await writer.components.files.pinStatus('/alone.bin')
    assert.equal(alone.policy, 'ec:2+1')
    assert.equal(alone.manifest, undefined)
    assert.equal(alone.pending, true)
    assert.match(alone.waiting ?? '', /^1 live node, ec:2\+1 needs 3/)
    const pass = await writer.components.durability.repair()
    assert.equal(pass.uncoded, 2, 'the repair pass sees both files wait')
    assert.equal(pass.coded, 0)
    assert.equal(writer.components.durability.health()?.uncoded, 2, 'status shows it')
    assert.match(await writer.components.metrics.registry.metrics(), /^shoal_durability_files_uncoded 2$/m, 'and the metrics')

    // two peers join: the next pass codes both files, binds their pins and places every stripe on three distinct nodes
    const dir = await tempDir(t, 'shoal-spread-')
    for (const name of ['p1', 'p2']) swarm.nodes.push(await startNode(await makeRepo(dir, name)))
    await connectAll(live(swarm))
    await until('the peers are connected', async () => writer.components.libp2p.getPeers().length === 2)
    const again = await writer.components.durability.repair()
    assert.equal(again.coded, 2, 'both files coded by the repair pass')
    assert.equal(again.uncoded, 0)
    const health = writer.components.durability.health()
    assert.ok(health !== undefined && health.stripes > 0)
    assert.deepEqual([health.healthy, health.atRisk, health.degraded, health.lost, health.uncoded], [health.stripes, 0, 0, 0, 0])
    assert.match(await writer.components.metrics.registry.metrics(), new RegExp(`^shoal_durability_stripes\\{health="healthy"\\} ${health.stripes}$`, 'm'))
    const spread = await writer.components.files.pinStatus('/alone.bin')
    assert.ok(spread.manifest !== undefined, 'the pin names its manifest now')
    assert.equal(spread.waiting, undefined)
    assert.deepEqual(spread.summary, { healthy: spread.stripes.length, atRisk: 0, degraded: 0, lost: 0 })
    for (const s of spread.stripes) assert.equal(new Set(s.shards.map(sh => sh.placed)).size, 3, `stripe ${s.index} placed on three nodes`)
    assert.equal(sha(await readAll(swarm.nodes[2] as ShoalNode, '/alone.bin')), sha(data))

    // three nodes carry ec:4+2 (two shards each survive a lost node) but not healthily: coded at once, at risk
    await writer.components.files.add('/wide.bin', once(randomBytes(2 * 1024 * 1024)), { chunker: parseChunker('size-262144'), pin: 'ec:4+2' })
    assert.equal(store.uncommitted, 0, 'every block and its parity are fsynced when the add returns')
    await writer.components.files.settled()
    const wide = await writer.components.files.pinStatus('/wide.bin')
    assert.ok(wide.manifest !== undefined)
    assert.ok(wide.stripes.length > 0)
    assert.deepEqual(wide.summary, { healthy: 0, atRisk: wide.stripes.length, degraded: 0, lost: 0 }, 'six shards on three nodes are at risk')

    // re-pinning it to a policy three nodes cannot carry is refused: its stripes stay, never dropped for a wait
    await assert.rejects(writer.components.files.pinAdd('/wide.bin', { policy: 'ec:8+3' }),
      (err: any) => err.name === 'PolicyNotMetError' && /stays ec:4\+2: 3 live nodes, ec:8\+3 needs 4/.test(err.message))
    const kept = await writer.components.namespace.stat('/wide.bin')
    assert.ok(kept.type === 'file' && kept.pin?.policy === 'ec:4+2' && kept.pin.manifest === wide.manifest)
  })
})

async function countBlocks (node: ShoalNode): Promise<number> {
  let n = 0
  for await (const cid of node.components.blockstore.cids()) { void cid; n++ }
  return n
}
