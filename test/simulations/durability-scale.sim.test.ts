/**
 * What keeps the real-service durability simulation linear in the number of
 * nodes, on the real DurabilityService over the virtual shard network:
 *
 * - the probe of a node's peers (the connection keep-alive) sends no call
 *   in a quiet swarm once every node has reached every other, yet every
 *   node still notices a crash and a return;
 * - a repair pass over a healthy file asks only the peers last seen holding
 *   its shards (not every peer of the swarm), and asks every peer again
 *   once a holder is missing, so the missing shard is still rebuilt.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { codingOf, parsePolicy } from '../../protocol/durability.js'
import { census, shardMap } from '../../simulations/durability-real-check.js'
import { RealDurabilitySim, type RealSimNode } from '../../simulations/durability-real.js'

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
    const sim = new RealDurabilitySim({ seed: 12, nodes: 40, files: 2 })
    await sim.setup()
    const { k, m } = codingOf(parsePolicy(sim.settings.policy)) as { k: number, m: number }
    const shardsOf = await shardMap(sim, k, m)
    await sim.place()
    await sim.time.advance(3 * sim.settings.checkIntervalMs)
    assert.deepEqual(await census(sim, shardsOf, k, m), { healthy: 4, atRisk: 0, degraded: 0, lost: 0, stripes: 4 })

    // two quiet passes: each node asks at most the k+m holders of each stripe of each file it knows (2 stripes a file)
    const quiet = countHoldings(sim)
    await sim.time.advance(2 * sim.settings.checkIntervalMs)
    let askers = 0
    for (const node of sim.nodes) {
      const known = await manifestsOf(sim, node)
      const sent = quiet.get(node.id) ?? 0
      if (known > 0) askers++
      assert.ok(sent <= 2 * known * 2 * (k + m), `${node.id} sent ${sent} holdings requests for ${known} files in two passes`)
      if (known > 0) assert.ok(sent < 2 * (sim.nodes.length - 1), `${node.id} asked fewer peers than every peer once a pass: ${sent}`)
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
})
