/**
 * `/metrics` of real nodes doing real work: four Shoal nodes in one process
 * (real libp2p on 127.0.0.1, real LevelDB in temp repos, each node's API on
 * a loopback port). A file is added and placed `ec:2+1`, a holder stops, the
 * repair pass rebuilds its shards after the grace period, a node whose disk
 * was corrupted scrubs — and each node's scraped counters moved by what the
 * work itself reports (and what the nodes hold), its gauges say what the
 * swarm looks like, and no node's figures leak into another's.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { loadConfig } from '../../../node/repo/config.js'
import { repoLayout } from '../../../node/repo/index.js'
import { flipEveryBlock } from '../blocks/fixtures.js'
import { defer, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { GRACE_MS, connectAll, live, makeRepo, once, startNode, stopNode, swarmOf, until, type Swarm } from '../../helpers/swarm.js'
import { serveMetrics, type Scrape } from './scrape.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 180_000 }
const BLOCKS = '/shoal/blocks/1.0.0'
const TRANSFER = 'libp2p_data_transfer_bytes_total'

/** What one node holds of `manifest`: shard count and bytes. */
async function heldOf (node: ShoalNode, manifest: string): Promise<{ shards: number, bytes: number }> {
  let shards = 0
  let bytes = 0
  for await (const h of node.components.holdings.held(manifest)) {
    if (!await node.components.blockstore.has(CID.parse(h.cid))) continue
    shards++
    bytes += (await node.components.blockstore.getBytes(CID.parse(h.cid))).byteLength
  }
  return { shards, bytes }
}

async function scrapers (t: CleanupContext, swarm: Swarm): Promise<Map<ShoalNode, () => Promise<Scrape>>> {
  const out = new Map<ShoalNode, () => Promise<Scrape>>()
  for (const node of live(swarm)) out.set(node, await serveMetrics(t, node))
  return out
}

describe('metrics of real nodes', () => {
  it('placement, repair and scrub move each node\'s counters by what they did; gauges follow the swarm; nodes do not share figures', TEST, async t => {
    const swarm = await swarmOf(t, 4)
    const nodes = live(swarm)
    const writer = nodes[0]
    let scrape = await scrapers(t, swarm)
    const first = await (scrape.get(writer) as () => Promise<Scrape>)()

    // peers: the writer dialled the three others (so it knows them); whom the
    // last node knows depends on who dialled it back (the DHT may), so it is not asserted
    assert.equal(first.must('shoal_peers_connected'), 3)
    assert.equal(first.must('shoal_peers_known'), 3)
    // the last node was dialled by the three others: its own gauge, not the writer's
    assert.equal((await (scrape.get(nodes[3]) as () => Promise<Scrape>)()).must('shoal_peers_connected'), 3)
    assert.equal(first.must('shoal_peers_trusted'), 0)
    writer.components.trust.add(nodes[1].components.peerId)
    assert.equal((await (scrape.get(writer) as () => Promise<Scrape>)()).must('shoal_peers_trusted'), 1)
    // process metrics: one process, every node shows them
    for (const s of [first, await (scrape.get(nodes[3]) as () => Promise<Scrape>)()]) {
      assert.ok(s.must('shoal_process_cpu_seconds_total') > 0)
      assert.ok(s.must('shoal_nodejs_heap_size_used_bytes') > 0)
    }
    assert.equal(first.value('shoal_durability_files', { state: 'healthy' }), undefined, 'no file states before the first repair pass')

    // add 1 MiB in four 256 KiB leaves, ec:2+1: two stripes of three shards, placed on three distinct nodes each
    const data = randomBytes(1024 * 1024)
    await writer.components.files.add('/f.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true })
    const status = await writer.components.files.pinStatus('/f.bin')
    const manifest = status.manifest as string
    assert.equal(status.stripes.length, 2)
    const held = new Map<ShoalNode, { shards: number, bytes: number }>()
    for (const n of nodes) held.set(n, await heldOf(n, manifest))
    const pushed = nodes.slice(1).reduce((sum, n) => sum + (held.get(n)?.shards ?? 0), 0)
    const pushedBytes = nodes.slice(1).reduce((sum, n) => sum + (held.get(n)?.bytes ?? 0), 0)
    assert.ok(pushed > 0)
    const afterAdd = new Map<ShoalNode, Scrape>()
    for (const n of nodes) afterAdd.set(n, await (scrape.get(n) as () => Promise<Scrape>)())
    const w = afterAdd.get(writer) as Scrape
    assert.equal(w.must('shoal_durability_shards_placed_total'), pushed, 'the writer counted every shard it pushed to a peer')
    for (const n of nodes.slice(1)) assert.equal(afterAdd.get(n)?.must('shoal_durability_shards_placed_total'), 0, 'placement is counted by the node that placed')
    // the block exchange's own counters: every pushed shard stored by its holder, none refused
    const stored = nodes.slice(1).reduce((sum, n) => sum + (afterAdd.get(n) as Scrape).must('shoal_exchange_blocks_stored_total'), 0)
    assert.equal(stored, pushed, 'the holders stored every shard pushed to them')
    for (const n of nodes) assert.equal((afterAdd.get(n) as Scrape).must('shoal_exchange_puts_refused_total'), 0)
    assert.equal(w.must('shoal_exchange_fetches_pending'), 0)
    const sent = w.must('libp2p_data_transfer_bytes_total', { protocol: `${BLOCKS} sent` })
    assert.ok(sent >= pushedBytes && sent <= pushedBytes * 1.05 + 64 * 1024, `the writer sent ${sent} bytes on ${BLOCKS} for ${pushedBytes} bytes of shards`)
    for (const n of nodes.slice(1)) {
      const got = (afterAdd.get(n) as Scrape).value('libp2p_data_transfer_bytes_total', { protocol: `${BLOCKS} received` }) ?? 0
      const mine = held.get(n)?.bytes ?? 0
      assert.ok(got >= mine && got <= mine * 1.05 + 64 * 1024, `a holder received ${got} bytes on ${BLOCKS} for ${mine} bytes of shards`)
    }
    assert.ok(w.must('libp2p_data_transfer_bytes_total', { protocol: 'global sent' }) > sent, 'the connections carried the blocks and more (encryption, framing, other protocols)')
    assert.ok(w.must('libp2p_data_transfer_bytes_total', { protocol: '/shoal/shards/1.1.0 sent' }) > 0, 'holds went out on the shards protocol')

    // a repair pass on every node: all healthy
    for (const n of nodes) await n.components.durability.repair()
    const healthy = await (scrape.get(writer) as () => Promise<Scrape>)()
    assert.equal(healthy.must('shoal_durability_stripes', { health: 'healthy' }), 2)
    assert.equal(healthy.must('shoal_durability_files', { state: 'healthy' }), 1)
    for (const state of ['pending', 'placing', 'at_risk', 'degraded', 'lost', 'unknown']) assert.equal(healthy.must('shoal_durability_files', { state }), 0, state)

    // a holder (not the writer) stops: within the grace period its stripes are degraded, nothing is rebuilt
    const victim = nodes.slice(1).find(n => (held.get(n)?.shards ?? 0) > 0) as ShoalNode
    const lost = held.get(victim)?.shards as number
    await stopNode(swarm, swarm.nodes.indexOf(victim))
    await until('the writer sees the holder gone', async () => writer.components.libp2p.getPeers().length === 2)
    for (const n of live(swarm)) await n.components.durability.repair()
    const down = await (scrape.get(writer) as () => Promise<Scrape>)()
    assert.equal(down.must('shoal_durability_stripes', { health: 'degraded' }), lost, 'each stripe lost one shard (one per stripe on a node)')
    assert.equal(down.must('shoal_durability_files', { state: 'degraded' }), 1)
    assert.equal(down.must('shoal_durability_shards_in_grace'), lost)
    assert.equal(down.must('shoal_peers_connected'), 2)

    // after the grace period the pass rebuilds each lost shard once; each node's counters say what its pass
    // reported, and the repair bytes are what crossed the network on the blocks protocol (framing aside)
    await new Promise(resolve => setTimeout(resolve, GRACE_MS + 200))
    const before = new Map<ShoalNode, Scrape>()
    for (const n of live(swarm)) before.set(n, await (scrape.get(n) as () => Promise<Scrape>)())
    let repaired = 0
    const received = `${BLOCKS} received`
    const moved = { repairBytes: 0, onTheWire: 0 }
    for (const n of live(swarm)) {
      const report = await n.components.durability.repair()
      repaired += report.repaired
      const s = await (scrape.get(n) as () => Promise<Scrape>)()
      const b = before.get(n) as Scrape
      const delta = (name: string, labels?: Record<string, string>): number => (s.value(name, labels) ?? 0) - (b.value(name, labels) ?? 0)
      assert.equal(delta('shoal_durability_shards_repaired_total'), report.repaired)
      const bytesIn = delta('shoal_durability_repair_bytes_total', { direction: 'in' })
      assert.ok(bytesIn <= delta(TRANSFER, { protocol: received }), `repair counted ${bytesIn} bytes in; the node received ${delta(TRANSFER, { protocol: received })} on ${BLOCKS}`)
      moved.repairBytes += bytesIn + delta('shoal_durability_repair_bytes_total', { direction: 'out' })
    }
    // every byte repair fetched or pushed was received by some node, on the blocks protocol, once
    for (const n of live(swarm)) moved.onTheWire += ((await (scrape.get(n) as () => Promise<Scrape>)()).value(TRANSFER, { protocol: received }) ?? 0) - ((before.get(n) as Scrape).value(TRANSFER, { protocol: received }) ?? 0)
    assert.ok(moved.repairBytes > 0, 'repair moved shards')
    assert.ok(moved.onTheWire >= moved.repairBytes && moved.onTheWire <= moved.repairBytes * 1.05 + 64 * 1024,
      `repair counted ${moved.repairBytes} bytes in and out; ${moved.onTheWire} crossed the network on ${BLOCKS}`)
    assert.equal(repaired, lost, 'every shard of the stopped holder was rebuilt, once')
    // the gauges say what the last pass found: the writer's next one finds every stripe whole
    await writer.components.durability.repair()
    const again = await (scrape.get(writer) as () => Promise<Scrape>)()
    assert.equal(again.must('shoal_durability_stripes', { health: 'healthy' }), 2)
    assert.equal(again.must('shoal_durability_files', { state: 'healthy' }), 1)
    assert.equal(again.must('shoal_durability_shards_in_grace'), 0)

    // a node whose every block was corrupted on disk restarts and scrubs: checked and corrupt count what the scrub read
    const other = live(swarm).find(n => n !== writer) as ShoalNode
    const index = swarm.nodes.indexOf(other)
    await stopNode(swarm, index)
    const flipped = await flipEveryBlock(repoLayout(swarm.repos[index]).blocks)
    swarm.nodes[index] = await startNode(swarm.repos[index])
    await connectAll(live(swarm))
    const restarted = swarm.nodes[index] as ShoalNode
    scrape = await scrapers(t, swarm)
    const writerBefore = await (scrape.get(writer) as () => Promise<Scrape>)()
    assert.equal(writerBefore.must('shoal_durability_shards_placed_total'), pushed, 'a node made in the same process left the writer\'s counters alone')
    const families = (s: Scrape): string[] => [...s.types.keys()].sort()
    assert.deepEqual(families(await (scrape.get(restarted) as () => Promise<Scrape>)()), families(writerBefore), 'a node made later has every family on its own registry')
    const scrubStart = Date.now()
    const report = await restarted.components.durability.scrub()
    assert.equal(report.blocks, flipped)
    assert.equal(report.corrupt, flipped)
    const scrubbed = await (scrape.get(restarted) as () => Promise<Scrape>)()
    assert.equal(scrubbed.must('shoal_durability_scrub_blocks_total'), report.blocks)
    assert.equal(scrubbed.must('shoal_durability_scrub_bytes_total'), report.bytes)
    assert.equal(scrubbed.must('shoal_durability_scrub_corrupt_blocks_total'), flipped)
    assert.equal(scrubbed.must('shoal_durability_shards_repaired_total'), report.rebuilt, 'shards rebuilt by the scrub count as repaired')
    assert.ok(scrubbed.must('shoal_durability_last_scrub_timestamp_seconds') >= scrubStart / 1000, 'the scrub\'s end is its last scrub')
    // every corrupt block was rebuilt from its stripe (counted by the rebuilder), fetched again or lost
    const outcomes = ['refetched', 'lost', 'leftover', 'unknown'].reduce((sum, outcome) => sum + scrubbed.must('shoal_durability_scrub_lost_blocks_total', { outcome }), 0)
    assert.equal(outcomes + scrubbed.must('shoal_durability_shards_repaired_total'), flipped, 'each corrupt block is rebuilt, re-fetched, lost or counted as not needed, once')
    assert.equal(scrubbed.must('shoal_durability_scrub_lost_blocks_total', { outcome: 'lost' }), report.lost.length)
    assert.equal(scrubbed.must('shoal_durability_scrub_lost_blocks_total', { outcome: 'leftover' }), report.leftovers)
    const writerAfter = await (scrape.get(writer) as () => Promise<Scrape>)()
    assert.equal(writerAfter.must('shoal_durability_scrub_blocks_total'), 0, 'another node\'s scrub is not counted here')
  })

  it('a file a lone node cannot code yet is pending in the file states', TEST, async t => {
    const swarm = await swarmOf(t, 1)
    const node = live(swarm)[0]
    const scrape = await serveMetrics(t, node)
    await node.components.files.add('/alone.bin', once(randomBytes(1024 * 1024)), { chunker: parseChunker('size-262144'), pin: 'ec:2+1' })
    await node.components.files.settled()
    await node.components.durability.repair()
    const s = await scrape()
    assert.equal(s.must('shoal_durability_files', { state: 'pending' }), 1, 'one node cannot carry ec:2+1: its coding waits')
    assert.equal(s.must('shoal_durability_files_uncoded'), 1)
    for (const state of ['placing', 'healthy', 'at_risk', 'degraded', 'lost', 'unknown']) assert.equal(s.must('shoal_durability_files', { state }), 0, state)
    assert.equal(s.must('shoal_durability_shards_placed_total'), 0)
  })

  it('process and libp2p metrics can be turned off in the config; a bad value is refused with a typed error', TEST, async t => {
    const dir = await tempDir(t, 'shoal-metrics-')
    const repo = await makeRepo(dir, 'quiet')
    const file = join(repo, 'config.json')
    const config = await loadConfig(file)
    await writeFile(file, JSON.stringify({ ...config, metrics: { process: 'no' } }))
    await assert.rejects(loadConfig(file), (err: any) => err.name === 'InvalidArgumentError' && /metrics\.process/.test(err.message))
    await writeFile(file, JSON.stringify({ ...config, metrics: { process: false, libp2p: false } }))
    const node = await startNode(repo)
    defer(t, async () => { await node.stop() })
    const s = await (await serveMetrics(t, node))()
    const names = [...s.types.keys()]
    assert.deepEqual(names.filter(n => n.startsWith('libp2p_') || n.startsWith('shoal_process_') || n.startsWith('shoal_nodejs_')), [])
    assert.ok(names.includes('shoal_blocks_written_total') && names.includes('shoal_peers_connected'), 'Shoal\'s own metrics stay')
  })
})
