/**
 * What keeps the real-service durability simulation linear in the number of
 * nodes, on the real DurabilityService over the virtual shard network:
 *
 * - the probe of a node's peers (the connection keep-alive) sends no call
 *   in a quiet swarm once every node has reached every other, yet every
 *   node still notices a crash and a return;
 * - a repair pass over a healthy file asks only the peers last seen holding
 *   its shards (not every peer of the swarm), and asks every peer again
 *   once a holder is missing, so the missing shard is still rebuilt;
 * - each node is connected to a bounded neighbourhood (not the whole swarm):
 *   placement (the production `Placer.livePeers`) picks holders among it,
 *   the holders of a stripe reach each other, and a holder gone for good is
 *   still rebuilt within the neighbourhood.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { census } from '../../simulations/durability-real-check.js'
import { placedSim } from '../helpers/durability-sim.js'
import { RealDurabilitySim, type RealSimNode } from '../../simulations/durability-real.js'
import { runRandomDurability } from '../../simulations/durability-faults.js'
import type { CID } from 'multiformats/cid'

const TEST = { timeout: 120_000 }

/** Count the `holdings` requests each node sends, by sender (the handlers of the nodes up now). */
function countHoldings (sim: RealDurabilitySim): Map<string, number> {
  const sent = new Map<string, number>()
  for (const node of sim.nodes) {
    const handler = node.side.handler
    if (handler === undefined) continue
    node.side.handler = async (from, request, signal) => {
      if (request.type === 'holdings') sent.set(from, (sent.get(from) ?? 0) + 1)
      return await handler(from, request, signal)
    }
  }
  return sent
}

/** Live manifests `node` records (as origin or holder). */
async function manifestsOf (sim: RealDurabilitySim, node: RealSimNode): Promise<number> {
  const live = new Set(sim.files.map(f => f.manifest.toString()))
  let n = 0
  for await (const [text] of node.holdings.manifests()) if (live.has(text)) n++
  return n
}

describe('durability simulation at scale', () => {
  it('a quiet swarm probes nothing after the first round; a crash and a return are still seen by every node', TEST, async () => {
    const sim = new RealDurabilitySim({ seed: 11, nodes: 30, files: 0 })
    await sim.setup()
    await sim.time.advance(60_000)
    for (const a of sim.nodes) for (const b of sim.nodes) if (a !== b) assert.equal(a.side.network?.downSince(b.id), undefined, 'every node reached every other')
    const before = sim.fabric.counts.calls
    await sim.time.advance(10 * 60_000)
    // 30 nodes probing 29 peers every 30 s sent 17,400 calls here before
    assert.equal(sim.fabric.counts.calls - before, 0, 'no call in a quiet swarm')

    const gone = sim.nodes[7]
    sim.crash(gone)
    await sim.time.advance(60_000)
    for (const node of sim.nodes) if (node !== gone) assert.notEqual(node.side.network?.downSince(gone.id), undefined, 'the crash is seen by every node')
    await sim.restart(gone)
    await sim.time.advance(60_000)
    for (const node of sim.nodes) {
      if (node === gone) continue
      assert.equal(node.side.network?.downSince(gone.id), undefined, 'the return is seen by every node')
      assert.equal(gone.side.network?.downSince(node.id), undefined, 'the restarted node reaches every other')
    }
    sim.time.clear()
  })

  it('a repair pass over healthy files asks only their holders; a missing holder makes it ask every peer, and the shard is rebuilt', TEST, async () => {
    const { sim, k, m, shardsOf } = await placedSim({ seed: 12, nodes: 40, files: 2 })
    assert.deepEqual(await census(sim, shardsOf, k, m), { healthy: 4, atRisk: 0, degraded: 0, lost: 0, stripes: 4 })

    // quiet passes (one to three in two periods: each wait is the period ± 25 %): each node asks at most the k+m holders of each stripe of each file it knows (2 stripes a file)
    const quiet = countHoldings(sim)
    const passesBefore = new Map(sim.nodes.map(node => [node.id, node.service.stats.repairPasses]))
    await sim.time.advance(2 * sim.settings.checkIntervalMs)
    let askers = 0
    for (const node of sim.nodes) {
      const known = await manifestsOf(sim, node)
      const sent = quiet.get(node.id) ?? 0
      const passes = node.service.stats.repairPasses - (passesBefore.get(node.id) ?? 0)
      assert.ok(passes >= 1 && passes <= 3, `${node.id} ran ${passes} passes in two periods`)
      if (known > 0) askers++
      // the requests of a pass begun just before the count may fall in it too
      const counted = passes + 1
      assert.ok(sent <= counted * known * 2 * (k + m), `${node.id} sent ${sent} holdings requests for ${known} files in ${passes} passes (and maybe one begun before)`)
      if (known > 0) assert.ok(sent < counted * (sim.nodes.length - 1), `${node.id} asked fewer peers than every peer once a pass: ${sent} in ${passes} passes (and maybe one begun before)`)
    }
    assert.ok(askers >= k + m, 'the holders ran their passes')

    // a holder of the first file leaves: the writer's passes find its shard missing and ask every peer
    const file = sim.files[0]
    let holder: RealSimNode | undefined
    for (const node of sim.nodes) {
      if (node.id === file.writer || holder !== undefined) continue
      for await (const held of node.holdings.held(file.manifest)) { void held; holder = node }
    }
    assert.ok(holder !== undefined)
    sim.leave(holder)
    const after = countHoldings(sim)
    await sim.time.advance(2 * sim.settings.checkIntervalMs)
    assert.ok((after.get(file.writer) ?? 0) >= sim.nodes.length - 2, `the writer asked every peer: ${after.get(file.writer) ?? 0}`)
    await sim.time.advance(sim.settings.graceMs + 3 * sim.settings.checkIntervalMs)
    assert.deepEqual(await census(sim, shardsOf, k, m), { healthy: 4, atRisk: 0, degraded: 0, lost: 0, stripes: 4 })
    sim.time.clear()
  })

  it('bounded connections: each node knows only its neighbourhood, holders are placed in it and see each other, a lost holder is rebuilt there', TEST, async () => {
    const { sim, k, m, shardsOf } = await placedSim({ seed: 13, nodes: 240, files: 3, connections: 40 })
    assert.equal(sim.neighbourhoods.count, 6)
    assert.deepEqual(await census(sim, shardsOf, k, m), { healthy: 6, atRisk: 0, degraded: 0, lost: 0, stripes: 6 })
    for (const node of sim.nodes) {
      const connected = node.side.network?.connected() ?? []
      assert.ok(connected.length > 0 && connected.length < 80, `${node.id} is connected to ${connected.length} peers, not the swarm`)
      for (const peer of connected) assert.ok(node.peers.includes(peer), 'only to peers of its neighbourhood')
    }
    const holdersOf = async (file: { manifest: CID }): Promise<RealSimNode[]> => {
      const out: RealSimNode[] = []
      for (const node of sim.nodes) {
        if (node.state !== 'up') continue
        for await (const held of node.holdings.held(file.manifest)) { void held; out.push(node); break }
      }
      return out
    }
    for (const file of sim.files) {
      const holders = await holdersOf(file)
      assert.ok(holders.length >= k + m, `${file.path} on ${holders.length} nodes`)
      for (const a of holders) for (const b of holders) if (a !== b) assert.equal(a.side.network?.downSince(b.id), undefined, 'holders of a file reach each other')
    }
    const file = sim.files[0]
    const gone = (await holdersOf(file)).find(n => n.id !== file.writer) as RealSimNode
    sim.leave(gone)
    await sim.time.advance(sim.settings.graceMs + 4 * sim.settings.checkIntervalMs)
    assert.deepEqual(await census(sim, shardsOf, k, m), { healthy: 6, atRisk: 0, degraded: 0, lost: 0, stripes: 6 })
    for (const node of await holdersOf(file)) assert.ok(node.peers.includes(file.writer), 'rebuilt within the writer\'s neighbourhood')
    sim.time.clear()
  })

  it('random faults on 300 nodes in neighbourhoods of 60: every invariant holds', TEST, async () => {
    const r = await runRandomDurability({ seed: 21, nodes: 300, files: 6, connections: 60, faultMs: 20 * 60_000, meanGapMs: 80_000 })
    assert.deepEqual(r.violations, [], r.schedule.join('\n'))
    assert.ok(Object.values(r.injected).reduce((a, b) => a + b, 0) >= 10, JSON.stringify(r.injected))
    assert.notEqual(r.convergedAfterMs, undefined)
  })
})
