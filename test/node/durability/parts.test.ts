/**
 * The durability service's parts on three real nodes (real libp2p on
 * 127.0.0.1, real LevelDB in temp repos): the real repair pass run on an
 * injected virtual clock and timers (a holder away less than the grace
 * period is waited for; once the clock passes it, the scheduled pass
 * rebuilds its shard), and the progress events of an encode and a place.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { createShoalNode, type ShoalNode } from '../../../node/node.js'
import { initRepo } from '../../../node/repo/init.js'
import { formatSwarmKey } from '../../../protocol/swarm-key.js'
import { loadConfig, saveConfig } from '../../../node/repo/config.js'
import { parseChunker } from '../../../node/content/index.js'
import { createLogger } from '../../../node/logger.js'
import { DurabilityService, type EncodeProgressEvents, type PlaceProgressEvents } from '../../../node/durability/index.js'
import type { BlockGetter } from '../../../node/reads/api.js'
import { VirtualTime } from '../../../simulations/virtual-time.js'
import { defer, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { untilOnEvery } from '../../helpers/swarm.js'

const TEST = { timeout: 120_000 }
const GRACE_MS = 10 * 60_000
const CHUNKER = parseChunker('size-262144')

/** Three started nodes of one private swarm, all connected, with no periodic repair or scrub of their own. */
async function threeNodes (t: CleanupContext, options: { graceMs?: number } = {}): Promise<ShoalNode[]> {
  const dir = await tempDir(t, 'shoal-parts-')
  const swarmKey = formatSwarmKey(randomBytes(32))
  const nodes: ShoalNode[] = []
  defer(t, async () => { await Promise.all(nodes.map(async node => { await node.stop().catch(() => {}) })) })
  for (let i = 0; i < 3; i++) {
    const repo = join(dir, `n${i}`)
    await initRepo(repo, { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', swarmKey })
    const file = join(repo, 'config.json')
    const config = await loadConfig(file)
    config.durability = { ...config.durability, checkInterval: 0, scrubInterval: 0, repairRate: 512 * 1024 * 1024, ...(options.graceMs === undefined ? {} : { grace: options.graceMs }) }
    config.namespace = { ...config.namespace, syncInterval: 500 }
    await saveConfig(file, config)
    const node = await createShoalNode({ repo, logger: createLogger('silent') })
    nodes.push(node)
    await node.start()
  }
  for (const [i, a] of nodes.entries()) {
    for (const b of nodes.slice(i + 1)) await a.components.libp2p.dial(multiaddr(b.components.libp2p.getMultiaddrs()[0].toString()))
  }
  return nodes
}

async function until (what: string, fn: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

/**
 * A second durability service over `node`'s store, holdings and shards
 * network (it does not serve: the node's own service does), on `time`.
 */
function serviceOn (node: ShoalNode, time: VirtualTime): DurabilityService {
  const { blockstore, exchange, blocks, holdings, namespace, gcLock, durability } = node.components
  const network = durability.network
  return new DurabilityService({
    blockstore,
    exchange,
    blocks,
    holdings,
    gcLock,
    files: () => namespace.files(),
    expected: { room: () => 0, expect: () => {}, cancel: () => {} },
    logger: createLogger('silent'),
    network: {
      self: network.self,
      start: async () => {},
      stop: async () => {},
      request: async (peer, request, signal) => await network.request(peer, request, signal),
      connected: () => network.connected(),
      downSince: peer => network.downSince(peer),
      now: () => time.now(),
      onDisconnect: fn => { network.onDisconnect(fn) }
    },
    clock: time,
    timers: time,
    // the middle of the schedule's jitter: each wait is the period itself
    random: () => 0.5
  }, { graceMs: GRACE_MS, checkIntervalMs: GRACE_MS + 60_000, scrubIntervalMs: 0, repairBytesPerSecond: 512 * 1024 * 1024 })
}

describe('durability parts', () => {
  it('the repair pass runs on the injected clock and timers: a holder away less than the grace period is waited for, then rebuilt by the scheduled pass once the clock passes it', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer] = nodes
    await writer.components.files.add('/r.bin', once(randomBytes(100_000)), { chunker: CHUNKER, pin: 'replicas:2', wait: true })
    await untilOnEvery(nodes, '/r.bin')
    const placed = await writer.components.files.pinStatus('/r.bin')
    assert.deepEqual(placed.summary, { healthy: 1, atRisk: 0, degraded: 0, lost: 0 })
    assert.equal(placed.state, 'healthy')
    const holders = placed.stripes[0].shards.map(s => s.holders[0])
    const byId = (id: string): ShoalNode => nodes.find(n => n.components.peerId === id) as ShoalNode
    // a holder that is not the writer goes away; the other holder coordinates the stripe's repair
    const gone = byId(holders.find(h => h !== writer.components.peerId) as string)
    const coordinator = byId(holders.find(h => h !== gone.components.peerId) as string)
    const third = nodes.find(n => !holders.includes(n.components.peerId)) as ShoalNode
    await gone.stop()
    nodes.splice(nodes.indexOf(gone), 1)
    await until('the holder seen away', () => coordinator.components.durability.network.downSince(gone.components.peerId) !== undefined)

    const time = new VirtualTime(Date.now())
    const service = serviceOn(coordinator, time)
    defer(t, async () => { await service.stop() })
    await service.start()
    assert.equal(time.pending, 1, 'the periodic pass is scheduled on the injected timers')

    const early = await service.repair()
    assert.equal(early.waiting, 1, 'the lost shard waits for its holder')
    assert.equal(early.repaired, 0)
    assert.equal(early.degraded, 1)
    assert.equal((await writer.components.files.pinStatus('/r.bin')).state, 'degraded', 'a shard is gone')

    // the scheduled pass runs past the grace period and rebuilds the shard onto the third node
    await time.advance(GRACE_MS + 60_000)
    await until('the scheduled pass repaired the shard', () => service.stats.shardsRepaired === 1)
    await until('the next pass scheduled', () => time.pending === 1)
    const healed = await writer.components.files.pinStatus('/r.bin')
    assert.deepEqual(healed.summary, { healthy: 1, atRisk: 0, degraded: 0, lost: 0 })
    assert.equal(healed.state, 'healthy')
    assert.ok(healed.stripes[0].shards.some(s => s.holders.includes(third.components.peerId)), 'the third node holds a shard now')
  })

  it('encode and place report their progress in order, with the right totals', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const data = randomBytes(3 * 1024 * 1024)
    const info = await writer.components.files.add('/p.bin', once(data), { chunker: CHUNKER, pin: 'none' })
    const { durability, blockstore } = writer.components

    // leaves whose bytes do not match their CIDs (a getter that lies: a fault that cannot be made real) are refused,
    // the 256 KiB leaves checked on the thread pool; nothing is left behind (the honest encode below codes from the start)
    const lying: BlockGetter = {
      getBytes: async (cid, options) => {
        const bytes = await blockstore.getBytes(cid, options)
        if (cid.code !== 0x55) return bytes
        const bad = new Uint8Array(bytes)
        bad[7] ^= 1
        return bad
      }
    }
    await assert.rejects(durability.encode(CID.parse(info.cid), data.byteLength, 'ec:2+1', { getter: lying }), { name: 'InvalidBlockError', message: /does not match its hash/ })

    const encoded: Array<EncodeProgressEvents['detail']> = []
    const pin = await durability.encode(CID.parse(info.cid), data.byteLength, 'ec:2+1', {
      onProgress: evt => { assert.equal(evt.type, 'shoal:durability:encode'); encoded.push(evt.detail) }
    })
    // 12 leaves of 256 KiB, two per stripe
    assert.deepEqual(encoded, Array.from({ length: 6 }, (_, i) => ({ stripes: i + 1, total: 6 })))

    const placedEvents: Array<PlaceProgressEvents['detail']> = []
    // what `pin status` shows as `placing` while it runs
    const seen: Array<{ pushed: number, total: number } | undefined> = []
    const result = await durability.place(CID.parse(pin.manifest as string), undefined, {
      onProgress: evt => {
        assert.equal(evt.type, 'shoal:durability:place')
        placedEvents.push(evt.detail)
        seen.push(durability.placing(pin.manifest as string))
      }
    })
    assert.equal(durability.placing(pin.manifest as string), undefined, 'nothing is placing once it resolved')
    assert.deepEqual(seen, placedEvents.map(e => ({ pushed: e.pushed, total: e.total })), 'placing follows every event, from 0 to the total')
    assert.deepEqual(result.failed, [])
    // each stripe's three shards on the three nodes: two pushed per stripe
    assert.equal(result.pushed, 12)
    assert.deepEqual(placedEvents[0], { pushed: 0, total: 12 }, 'the first event gives the total before any push')
    assert.equal(placedEvents.length, 3, 'then one per part acked by a peer')
    for (const [i, evt] of placedEvents.entries()) {
      assert.equal(evt.total, 12)
      if (i > 0) assert.ok(evt.pushed > placedEvents[i - 1].pushed, 'pushed grows')
    }
    assert.equal(placedEvents[placedEvents.length - 1].pushed, 12)
    assert.deepEqual(new Set(placedEvents.slice(1).map(e => e.peer)).size, 2, 'one part per peer')
  })

  it('an add --wait codes its stripes from the leaves in memory: no leaf is read back, and the manifest is the one coding the stored file gives', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const { blockstore, durability, files } = writer.components
    const data = randomBytes(5 * 1024 * 1024 + 12_345)
    // a spy on the real store: which raw leaves does the add read back?
    const reads: string[] = []
    let coding = true
    const getBytes = blockstore.getBytes.bind(blockstore)
    blockstore.getBytes = async (cid, options) => {
      if (cid.code === 0x55 && coding) reads.push(cid.toString())
      return await getBytes(cid, options)
    }
    // placement (which --wait runs next) reads the shards it pushes: the spy stops there
    const place = durability.place.bind(durability)
    durability.place = async (...args) => { coding = false; return await place(...args) }
    defer(t, async () => { blockstore.getBytes = getBytes; durability.place = place })
    // the default policy (size-dependent): decided once 1 MiB has gone by;
    // three nodes cannot carry ec:4+2 on six, so --wait ends in a PolicyNotMetError once it placed what it could
    await assert.rejects(files.add('/mem.bin', once(data), { chunker: CHUNKER, wait: true }), { name: 'PolicyNotMetError' })
    assert.deepEqual(reads, [], 'the add never read a leaf back')
    const info = { cid: (await writer.components.namespace.stat('/mem.bin') as { cid: string }).cid }
    const entry = await writer.components.namespace.stat('/mem.bin')
    assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined)
    assert.equal(entry.pin.policy, 'ec:4+2')
    // coding the stored file (leaves read back and checked) gives the same manifest
    coding = true
    const again = await durability.encode(CID.parse(info.cid), data.byteLength, 'ec:4+2')
    assert.ok(reads.length > 0, 'that path reads the leaves back')
    assert.equal(again.manifest, entry.pin.manifest)
    await files.settled()
    const status = await files.pinStatus('/mem.bin')
    assert.equal(status.summary.lost + status.summary.degraded, 0)
    assert.equal(status.stripes.length, Math.ceil(Math.ceil(data.byteLength / 262_144) / 4))
  })

  it('while an add --wait binds its streamed shards, its manifest shows as placing with its progress (what `pin status` reports); nothing once it returns', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const { durability, files } = writer.components
    const data = randomBytes(3 * 1024 * 1024 + 4_321)
    // the streamed placement binds each peer's shards with a `hold` once the manifest exists: what status says then
    const seen: Array<{ pushed: number, total: number } | undefined> = []
    const request = durability.network.request.bind(durability.network)
    durability.network.request = async (peer, message, signal) => {
      if (message.type === 'hold') seen.push(durability.placing(message.manifest))
      return await request(peer, message, signal)
    }
    defer(t, async () => { durability.network.request = request })
    await files.add('/w.bin', once(data), { chunker: CHUNKER, pin: 'ec:2+1', wait: true })
    // 13 leaves of 256 KiB: 7 stripes of 3 shards on three nodes (the last one short: its zero shard is not pushed)
    assert.equal(seen.length, 2, 'one hold per peer')
    for (const placing of seen) {
      assert.ok(placing !== undefined, 'the placement shows while it binds')
      assert.ok(placing.total > 0 && placing.pushed === placing.total, `every queued shard pushed before the holds: ${JSON.stringify(placing)}`)
    }
    const status = await files.pinStatus('/w.bin')
    assert.equal(status.placing, undefined, 'nothing is placing once the add returned')
    assert.equal(status.pending, undefined, 'placement is final')
    assert.deepEqual(status.summary, { healthy: status.stripes.length, atRisk: 0, degraded: 0, lost: 0 })
    assert.equal(status.state, 'healthy')
  })

  it('a plain add returns once the file is durable here; it is coded (the manifest --wait gives), bound and placed after', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const { durability, files, namespace } = writer.components
    const data = randomBytes(3 * 1024 * 1024 + 777)
    const info = await files.add('/bg.bin', once(data), { chunker: CHUNKER, pin: 'ec:2+1' })
    const root = CID.parse(info.cid)
    const added = await namespace.stat('/bg.bin')
    assert.ok(added.type === 'file')
    assert.equal(added.pin?.policy, 'ec:2+1', 'the entry carries its policy at once')
    const record = await writer.components.durability.status(root, added.pin)
    if (added.pin?.manifest === undefined) {
      // not coded yet (the usual case): the deferred record names the path, and status says why it is pending
      assert.equal(record.pending, true)
      assert.ok(record.waiting !== undefined && record.waiting.length > 0)
    }
    await files.settled()
    const coded = await namespace.stat('/bg.bin')
    assert.ok(coded.type === 'file' && coded.pin?.manifest !== undefined, 'coded and bound after the add')
    // the same manifest as coding the file in memory (deterministic), and every stripe placed on the three nodes
    const again = await durability.encode(root, data.byteLength, 'ec:2+1')
    assert.equal(again.manifest, coded.pin.manifest)
    const status = await files.pinStatus('/bg.bin')
    assert.equal(status.pending, undefined, 'placement is final')
    assert.equal(status.waiting, undefined)
    assert.deepEqual(status.summary, { healthy: status.stripes.length, atRisk: 0, degraded: 0, lost: 0 })
  })

  it('a file its writer cannot code yet is pending on every node, not only the writer; a file pinned none is not-coded everywhere', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer, other] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    // ec:10+4 needs 4 live nodes for its parity to survive a lost one: three leave it uncoded, waiting at the writer
    await writer.components.files.add('/wait.bin', once(randomBytes(2 * 1024 * 1024)), { chunker: CHUNKER, pin: 'ec:10+4' })
    await writer.components.files.add('/plain.bin', once(randomBytes(2 * 1024 * 1024)), { chunker: CHUNKER, pin: 'none' })
    await until('the files reach the other node', async () => {
      const seen = await Promise.all(['/wait.bin', '/plain.bin'].map(async path => await other.components.namespace.stat(path).then(() => true, () => false)))
      return seen.every(Boolean)
    })
    const atWriter = await writer.components.files.pinStatus('/wait.bin')
    assert.equal(atWriter.state, 'pending')
    assert.match(atWriter.waiting ?? '', /needs 4/, 'the writer says what it waits for')
    const elsewhere = await other.components.files.pinStatus('/wait.bin')
    assert.equal(elsewhere.state, 'pending', 'it said not-coded, as for a file pinned none')
    assert.equal(elsewhere.pending, true)
    assert.match(elsewhere.waiting ?? '', /the node that added it codes and places it/)
    for (const node of [writer, other]) {
      const plain = await node.components.files.pinStatus('/plain.bin')
      assert.equal(plain.state, 'not-coded')
      assert.equal(plain.waiting, undefined)
    }
  })

  it('the same content added again while a holder is away is bound to its placed manifest, not placed again over the live nodes', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer, holder, away] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const data = randomBytes(2 * 1024 * 1024 + 99)
    await writer.components.files.add('/first.bin', once(data), { chunker: CHUNKER, pin: 'replicas:3' })
    await writer.components.files.settled()
    const first = await writer.components.files.pinStatus('/first.bin')
    assert.ok(first.manifest !== undefined)
    assert.deepEqual(first.summary, { healthy: first.stripes.length, atRisk: 0, degraded: 0, lost: 0 }, 'placed on the three nodes')
    const manifest = first.manifest
    const heldBy = async (node: ShoalNode): Promise<number> => {
      let n = 0
      for await (const _ of node.components.holdings.held(manifest)) n++
      return n
    }
    const before = await Promise.all([writer, holder].map(heldBy))
    await until('the first file reaches the holder', async () => await holder.components.namespace.stat('/first.bin').then(() => true, () => false))
    // one node away (within the grace period): the same bytes added again, on the holder, then on the writer —
    // two live nodes carry replicas:3 (coded as 1+2: each keeps at most 2 shards), so each add codes at once
    await away.stop()
    await until('the away node is gone', () => writer.components.libp2p.getPeers().length === 1 && holder.components.libp2p.getPeers().length === 1)
    await holder.components.files.add('/again-on-holder.bin', once(data), { chunker: CHUNKER, pin: 'replicas:3' })
    await holder.components.files.settled()
    await writer.components.files.add('/again-on-writer.bin', once(data), { chunker: CHUNKER, pin: 'replicas:3' })
    await writer.components.files.settled()
    for (const [node, path] of [[holder, '/again-on-holder.bin'], [writer, '/again-on-writer.bin']] as const) {
      const entry = await node.components.namespace.stat(path)
      assert.ok(entry.type === 'file' && entry.pin?.manifest === manifest, `${path} is bound to the manifest placed before`)
    }
    assert.equal((await holder.components.holdings.manifest(manifest))?.role, 'holder', 'the holder did not make itself its origin')
    // placed again over the two live nodes, each took more shards of every stripe (and the stripes turned at-risk)
    assert.deepEqual(await Promise.all([writer, holder].map(heldBy)), before, 'no node took more shards')
  })

  it('the same content added again with wait pushes no shard its holders hold: each names them in its reserve answer, and the hold binds them', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer, a, b] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const data = randomBytes(3 * 1024 * 1024 + 17)
    const stats = writer.components.durability.stats
    await writer.components.files.add('/first.bin', once(data), { chunker: CHUNKER, pin: 'ec:2+1', wait: true })
    const pushed = stats.shardsPushed
    assert.ok(pushed > 0, 'the first add pushed shards to the two peers')
    assert.equal(stats.shardsHeldAlready, 0)
    const blocksOf = async (node: ShoalNode): Promise<number> => {
      let n = 0
      for await (const _ of node.components.blockstore.cids()) n++
      return n
    }
    const stored = await Promise.all([a, b].map(blocksOf))
    const reserves = [a, b].map(node => node.components.durability.stats.reservesAccepted)

    await writer.components.files.add('/again.bin', once(data), { chunker: CHUNKER, pin: 'ec:2+1', wait: true })
    assert.equal(stats.shardsPushed, pushed, 'no shard pushed again')
    assert.equal(stats.shardsHeldAlready, pushed, 'every shard named held by its holder')
    assert.deepEqual(await Promise.all([a, b].map(blocksOf)), stored, 'the holders stored no new block')
    assert.ok([a, b].every((node, i) => node.components.durability.stats.reservesAccepted > reserves[i]), 'the second add asked each holder')
    const again = await writer.components.files.pinStatus('/again.bin')
    assert.equal(again.manifest, (await writer.components.files.pinStatus('/first.bin')).manifest)
    assert.deepEqual(again.summary, { healthy: again.stripes.length, atRisk: 0, degraded: 0, lost: 0 }, 'placed: its holders hold every shard')
    // what the holders' reserve answers named is reserved until the hold, then bound: no reservation is left
    for (const node of [a, b]) {
      let left = 0
      for await (const _ of node.components.holdings.reservations()) left++
      assert.equal(left, 0)
    }
    // a placement made again after the import (as a failed streamed placement or the repair pass does): each hold's answer names what is there
    assert.ok(again.manifest !== undefined)
    const placed = await writer.components.durability.place(CID.parse(again.manifest))
    assert.equal(placed.failed.length, 0)
    assert.equal(stats.shardsPushed, pushed, 'no shard pushed by the placement made again')
    assert.equal(stats.shardsHeldAlready, 2 * pushed)
    assert.deepEqual(await Promise.all([a, b].map(blocksOf)), stored)
  })

  it('gc keeps the shards of a file removed after its grace period had run since it was placed: the grace runs from the removal (found by a gc or a repair pass), and a file that comes back (moved elsewhere meanwhile) keeps them', TEST, async t => {
    const graceMs = 3000
    const nodes = await threeNodes(t, { graceMs })
    const [writer, mover] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const data = randomBytes(2 * 1024 * 1024 + 7)
    await writer.components.files.add('/g/f.bin', once(data), { chunker: CHUNKER, pin: 'ec:2+1', wait: true })
    const entry = await writer.components.namespace.stat('/g/f.bin')
    assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined)
    const manifest = entry.pin.manifest
    const heldEverywhere = async (): Promise<number[]> => await Promise.all(nodes.map(async node => {
      let n = 0
      for await (const _ of node.components.holdings.held(manifest)) n++
      return n
    }))
    const held = await heldEverywhere()
    assert.ok(held.every(n => n > 0), `every node holds shards: ${held.join(', ')}`)
    const visibleEverywhere = async (path: string, visible: boolean): Promise<void> => {
      await until(`${path} ${visible ? 'visible' : 'gone'} on every node`, async () => (await Promise.all(nodes.map(async n => await n.components.namespace.lookup(path)))).every(e => (e !== undefined) === visible))
    }
    // the file has been placed for longer than the grace period when it is removed
    await new Promise(resolve => setTimeout(resolve, graceMs + 500))
    await writer.components.namespace.remove('/g/f.bin')
    await visibleEverywhere('/g/f.bin', false)
    for (const node of nodes) {
      const r = await node.components.durability.collectGarbage()
      assert.equal(r.forgotten, 0, 'the first gc after the removal forgets nothing')
      assert.equal(r.keptUnreferenced, 1)
    }
    assert.deepEqual(await heldEverywhere(), held, 'every shard kept')
    // the file comes back: a move of it on a node cut off meanwhile wins over the removal once that node is back
    await mover.components.namespace.putFile('/g/h.bin', { cid: entry.cid, size: entry.size, mode: entry.mode, mtime: entry.mtime, pin: entry.pin })
    await visibleEverywhere('/g/h.bin', true)
    await new Promise(resolve => setTimeout(resolve, graceMs + 500))
    for (const node of nodes) assert.equal((await node.components.durability.collectGarbage()).forgotten, 0, 'a manifest a file refers to again is kept')
    for (const node of nodes) {
      const chunks: Uint8Array[] = []
      for await (const chunk of node.components.files.cat('/g/h.bin')) chunks.push(chunk)
      assert.ok(Buffer.concat(chunks).equals(data), 'the file that came back reads whole on every node')
    }
    const status = await writer.components.files.pinStatus('/g/h.bin')
    assert.deepEqual(status.summary, { healthy: status.stripes.length, atRisk: 0, degraded: 0, lost: 0 })
    // removed for good: the repair pass (every minute by default) finds it so and starts its grace period; a gc
    // after it forgets it, the first gc since the removal
    await mover.components.namespace.remove('/g/h.bin')
    await visibleEverywhere('/g/h.bin', false)
    for (const node of nodes) {
      await node.components.durability.repair()
      assert.notEqual((await node.components.holdings.manifest(manifest))?.unreferencedSince, undefined, 'the pass recorded since when no file refers to it')
    }
    await new Promise(resolve => setTimeout(resolve, graceMs + 500))
    for (const node of nodes) assert.equal((await node.components.durability.collectGarbage()).forgotten, 1, 'forgotten once its grace period has run')
    assert.deepEqual(await heldEverywhere(), [0, 0, 0])
  })

  it('two plain adds of the same content at two paths are both coded and bound; a coding left undone (a crash) is finished by the repair pass', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const { files, namespace, durability } = writer.components
    const data = randomBytes(2 * 1024 * 1024 + 3)
    await Promise.all([
      files.add('/one.bin', once(data), { chunker: CHUNKER, pin: 'ec:2+1' }),
      files.add('/two.bin', once(data), { chunker: CHUNKER, pin: 'ec:2+1' })
    ])
    await files.settled()
    const one = await namespace.stat('/one.bin')
    const two = await namespace.stat('/two.bin')
    assert.ok(one.type === 'file' && one.pin?.manifest !== undefined, '/one.bin is coded')
    assert.ok(two.type === 'file' && two.pin?.manifest !== undefined, '/two.bin is coded')
    assert.equal(one.pin.manifest, two.pin.manifest)

    // a deferred record left by an add whose coding never ran (a crash): the repair pass codes and binds it
    const other = randomBytes(2 * 1024 * 1024 + 5)
    const plain = await files.add('/left.bin', once(other), { chunker: CHUNKER, pin: 'none' })
    const root = CID.parse(plain.cid)
    const entry = await namespace.stat('/left.bin')
    assert.ok(entry.type === 'file')
    await namespace.putFile('/left.bin', { cid: entry.cid, size: entry.size, mode: entry.mode, mtime: entry.mtime, pin: { policy: 'ec:2+1' } })
    await durability.defer(root, other.byteLength, 'ec:2+1', { paths: ['/left.bin'] })
    const report = await durability.repair()
    assert.equal(report.coded, 1)
    const left = await namespace.stat('/left.bin')
    assert.ok(left.type === 'file' && left.pin?.manifest !== undefined, 'the repair pass coded and bound it')
    assert.equal((await files.pinStatus('/left.bin')).pending, undefined)
  })

  it('a file moved before its coding, here or by a peer, is coded where it is now by the next repair pass; one removed stays removed', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer, peer] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const { files, namespace, durability, holdings } = writer.components
    // three files an add left to its background coding, which has not run yet
    const roots = new Map<string, CID>()
    for (const name of ['a', 'b', 'c']) {
      const data = randomBytes(1024 * 1024 + name.charCodeAt(0))
      const path = `/m/${name}.bin`
      const added = await files.add(path, once(data), { chunker: CHUNKER, pin: 'none' })
      const entry = await namespace.stat(path)
      assert.ok(entry.type === 'file')
      await namespace.putFile(path, { cid: entry.cid, size: entry.size, mode: entry.mode, mtime: entry.mtime, pin: { policy: 'ec:2+1' } })
      await durability.defer(CID.parse(added.cid), data.byteLength, 'ec:2+1', { paths: [path] })
      roots.set(name, CID.parse(added.cid))
    }
    await namespace.move('/m/a.bin', '/here.bin')
    await namespace.remove('/m/b.bin')
    // the version pinned ec:2+1 (a move of the add's first version, pinned none, would leave that one in place)
    await until('the peer sees c pinned', async () => { const c = await peer.components.namespace.lookup('/m/c.bin'); return c?.type === 'file' && c.pin?.policy === 'ec:2+1' })
    await peer.components.namespace.move('/m/c.bin', '/there.bin')
    await until('the writer sees the peer\'s move', async () => await namespace.lookup('/there.bin') !== undefined)

    // the codings at the paths their adds noted find nothing there: none is bound, and none of the records is dropped
    for (const name of ['a', 'b', 'c']) {
      const root = roots.get(name) as CID
      assert.equal((await durability.codeDeferred(root, 'ec:2+1')).kind, 'none', name)
      assert.notEqual(await holdings.deferredOf(root, 'ec:2+1'), undefined, `${name}: its record waits for the repair pass`)
    }
    assert.equal((await files.pinStatus('/here.bin')).pending, true)

    const report = await durability.repair()
    assert.equal(report.coded, 2, 'a and c coded; b, removed, is not')
    for (const path of ['/here.bin', '/there.bin']) {
      const entry = await namespace.stat(path)
      assert.ok(entry.type === 'file' && entry.pin?.policy === 'ec:2+1' && entry.pin.manifest !== undefined, `${path} is coded where it is now`)
      const status = await files.pinStatus(path)
      assert.equal(status.pending, undefined, `${path}: placed`)
      assert.deepEqual(status.summary, { healthy: status.stripes.length, atRisk: 0, degraded: 0, lost: 0 }, path)
    }
    for (const name of ['a', 'c']) assert.equal(await holdings.deferredOf(roots.get(name) as CID, 'ec:2+1'), undefined, `${name}: nothing waits any more`)
    assert.equal(await namespace.lookup('/m/b.bin'), undefined, 'the removed file stays removed')
    assert.equal(await namespace.lookup('/m/a.bin'), undefined, 'and the moved one is not back at its old path')
  })

  it('one content at two paths under two policies: each path is coded with its own policy, by the add and by the repair pass', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const { files, namespace, durability } = writer.components
    const data = randomBytes(1024 * 1024 + 11)
    // one batch: both deferred records are written before either coding runs (a plain add of each raced the same way)
    await files.addMany([
      { path: '/r/f.bin', source: once(data), pin: 'replicas:3' },
      { path: '/e/f.bin', source: once(data), pin: 'ec:2+1' }
    ], { chunker: CHUNKER })
    await files.settled()
    const r = await namespace.stat('/r/f.bin')
    const e = await namespace.stat('/e/f.bin')
    // the second add's record replaced the first's (one record per content): /r/f.bin was never coded, nor counted by repair
    assert.ok(r.type === 'file' && r.pin?.policy === 'replicas:3' && r.pin.manifest !== undefined, '/r/f.bin is coded replicas:3')
    assert.ok(e.type === 'file' && e.pin?.policy === 'ec:2+1' && e.pin.manifest !== undefined, '/e/f.bin is coded ec:2+1')
    assert.notEqual(r.pin.manifest, e.pin.manifest)
    for (const path of ['/r/f.bin', '/e/f.bin']) {
      const status = await files.pinStatus(path)
      assert.equal(status.pending, undefined, `${path}: placement is final`)
      assert.deepEqual(status.summary, { healthy: status.stripes.length, atRisk: 0, degraded: 0, lost: 0 }, path)
    }

    // two records of one content left by adds whose coding never ran (a crash): one repair pass codes both
    const other = randomBytes(1024 * 1024 + 13)
    const plain = await files.addMany([
      { path: '/r/g.bin', source: once(other), pin: 'none' },
      { path: '/e/g.bin', source: once(other), pin: 'none' }
    ], { chunker: CHUNKER })
    const root = CID.parse(plain[0].cid)
    for (const [path, policy] of [['/r/g.bin', 'replicas:3'], ['/e/g.bin', 'ec:2+1']]) {
      const entry = await namespace.stat(path)
      assert.ok(entry.type === 'file')
      await namespace.putFile(path, { cid: entry.cid, size: entry.size, mode: entry.mode, mtime: entry.mtime, pin: { policy } })
      await durability.defer(root, other.byteLength, policy, { paths: [path] })
    }
    for (const path of ['/r/g.bin', '/e/g.bin']) {
      const status = await files.pinStatus(path)
      assert.equal(status.pending, true, `${path} waits, and says so`)
    }
    const report = await durability.repair()
    assert.equal(report.coded, 2)
    for (const [path, policy] of [['/r/g.bin', 'replicas:3'], ['/e/g.bin', 'ec:2+1']]) {
      const entry = await namespace.stat(path)
      assert.ok(entry.type === 'file' && entry.pin?.policy === policy && entry.pin.manifest !== undefined, `the repair pass coded ${path} ${policy}`)
    }
  })

  it('a connected peer that does not answer its placement info is left out, not waited for; its answer, when it comes, counts from then on', TEST, async t => {
    const nodes = await threeNodes(t)
    const [writer, , silent] = nodes
    await until('every peer connected', () => writer.components.libp2p.getPeers().length === 2)
    const { durability } = writer.components
    const silentId = silent.components.peerId
    // the silent peer's info request is held (a frozen process keeps its connection open) until `answer` is called
    let answer: (() => void) | undefined
    let held = 0
    const request = durability.network.request.bind(durability.network)
    durability.network.request = async (peer, message, signal) => {
      if (message.type === 'info' && peer === silentId) {
        held++
        await new Promise<void>(resolve => { answer = resolve })
      }
      return await request(peer, message, signal)
    }
    defer(t, async () => { durability.network.request = request; answer?.() })
    // ec:2+1 needs three nodes: with the silent one left out, two
    const first = await durability.shortfall('ec:2+1')
    assert.match(first ?? '', /^2 live nodes, ec:2\+1 needs 3 /, `the silent peer is not counted: ${String(first)}`)
    // asked again while its request is under way: joined, not asked twice
    assert.match(await durability.shortfall('ec:2+1') ?? '', /^2 live nodes, ec:2\+1 needs 3 /)
    assert.equal(held, 1, 'one info request per peer at a time')
    // the peer answers (late): from then on it counts, with no new request
    answer?.()
    await until('the late answer kept', async () => await durability.shortfall('ec:2+1') === undefined)
    assert.equal(held, 1)
  })
})
