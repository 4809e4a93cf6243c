/**
 * A node cut off from its swarm (every peer gone past the grace period, as
 * after the others changed the swarm key) does not rebuild the stripes it
 * knows onto itself: a second shard of a stripe on the one node left adds no
 * protection against the loss of that node. Real nodes on 127.0.0.1, real
 * LevelDB: a `replicas:3` file (one copy per node) and a one-leaf `ec:4+2`
 * file (three stored shards, one per node) on three nodes; two of them stop.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { GRACE_MS, live, once, readAll, sha, stopNode, swarmOf, until } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'

/** Shards of `manifest` recorded as held by `node`, per stripe. */
async function heldPerStripe (node: ShoalNode, manifest: CID): Promise<number[]> {
  const out: number[] = []
  for await (const h of node.components.holdings.held(manifest)) out[h.stripe] = (out[h.stripe] ?? 0) + 1
  return out
}

async function manifestOf (node: ShoalNode, path: string): Promise<CID> {
  const entry = await node.components.namespace.stat(path)
  assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined, `${path} is striped`)
  return CID.parse(entry.pin.manifest)
}

describe('repair on a node cut off from the swarm', () => {
  it('rebuilds nothing onto itself: the shards wait, unplaced, for peers to come back or join', { timeout: 120_000 }, async t => {
    // found by a probe on real daemons: once the grace period passed, the cut-off node logged
    // `shard repaired to:<itself>` for the stripes it knew, rebuilding from its own copy
    const swarm = await swarmOf(t, 3)
    const [lone] = swarm.nodes as ShoalNode[]
    const small = randomBytes(10_000)
    const leaf = randomBytes(100_000)
    await lone.components.files.add('/r.bin', once(small), { chunker: parseChunker('size-262144'), pin: 'replicas:3' })
    await lone.components.files.add('/e.bin', once(leaf), { chunker: parseChunker('size-262144'), pin: 'ec:4+2' })
    await lone.components.files.settled()
    const files = { r: await manifestOf(lone, '/r.bin'), e: await manifestOf(lone, '/e.bin') }
    for (const n of live(swarm)) {
      await until('the files on every node', async () => (await n.components.namespace.lookup('/e.bin')) !== undefined)
      assert.deepEqual((await n.components.files.pinStatus('/r.bin')).summary, { healthy: 1, atRisk: 0, degraded: 0, lost: 0 })
      assert.deepEqual((await n.components.files.pinStatus('/e.bin')).summary, { healthy: 1, atRisk: 0, degraded: 0, lost: 0 })
    }
    for (const manifest of Object.values(files)) assert.deepEqual(await heldPerStripe(lone, manifest), [1], 'one shard per node')
    // a first pass knows every holder (a shard never seen would count as away since start)
    assert.deepEqual((await lone.components.durability.repair()).errors, [])

    // the two others go away for good: the node is alone
    await stopNode(swarm, 1)
    await stopNode(swarm, 2)
    await until('no peer left', async () => lone.components.libp2p.getPeers().length === 0)
    await new Promise(resolve => setTimeout(resolve, GRACE_MS + 200))
    for (let pass = 0; pass < 2; pass++) {
      const report = await lone.components.durability.repair()
      assert.deepEqual(report.errors, [])
      assert.equal(report.repaired, 0, 'nothing rebuilt onto the node itself')
      assert.equal(report.unplaced, 4, 'two lost shards of each file wait for a node')
    }
    for (const manifest of Object.values(files)) assert.deepEqual(await heldPerStripe(lone, manifest), [1], 'still one shard per stripe here')
    // and it still reads both files from what it holds
    assert.equal(sha(await readAll(lone, '/r.bin')), sha(small))
    assert.equal(sha(await readAll(lone, '/e.bin')), sha(leaf))
  })
})
