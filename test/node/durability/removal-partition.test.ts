/**
 * A striped file moved on a node cut off from the others while they removed
 * it, for longer than the grace period, with collections on their side:
 * three real nodes (libp2p on 127.0.0.1, LevelDB in temp repos). The
 * collections keep the shards while the cut-off member has not seen the
 * removal (node/durability/removal-clocks.ts); once it is back, its move
 * wins and the file reads whole everywhere. Removed for good once every
 * member has seen it, the shards go.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { createNamespace, signerFromKey } from '../../../node/namespace/index.js'
import { loadIdentity, repoLayout } from '../../../node/repo/index.js'
import { createLogger } from '../../../node/logger.js'
import { parseChunker } from '../../../node/content/index.js'
import type { ShoalNode } from '../../../node/node.js'
import { GRACE_MS, connectAll, live, once, readAll, startNode, stopNode, swarmOf, until } from '../../helpers/swarm.js'

const CHUNKER = parseChunker('size-262144')

/** Shards of `manifest` each node holds (its holdings records). */
async function heldBy (nodes: ShoalNode[], manifest: string): Promise<number[]> {
  return await Promise.all(nodes.map(async node => {
    let n = 0
    for await (const _ of node.components.holdings.held(manifest)) n++ // eslint-disable-line @typescript-eslint/no-unused-vars
    return n
  }))
}

/** The CIDs of the shards of `manifest` each node holds. */
async function shardsOf (nodes: ShoalNode[], manifest: string): Promise<CID[][]> {
  return await Promise.all(nodes.map(async node => {
    const cids: CID[] = []
    for await (const shard of node.components.holdings.held(manifest)) cids.push(CID.parse(shard.cid))
    return cids
  }))
}

/** How many of `shards` (per node) each node's block store has. */
async function storedOf (nodes: ShoalNode[], shards: CID[][]): Promise<number[]> {
  return await Promise.all(nodes.map(async (node, i) => (await Promise.all(shards[i].map(async cid => await node.components.blockstore.has(cid)))).filter(Boolean).length))
}

async function visibleOn (nodes: ShoalNode[], path: string, visible: boolean): Promise<void> {
  await until(`${path} ${visible ? 'visible' : 'gone'} on every node`, async () => (await Promise.all(nodes.map(async n => await n.components.namespace.lookup(path)))).every(e => (e !== undefined) === visible))
}

describe('a removal the whole swarm has not seen', () => {
  it('keeps the shards past the grace period while a member cut off has not seen it; that member\'s move, made meanwhile, brings the file back whole; removed for good, the shards go', { timeout: 120_000 }, async t => {
    const swarm = await swarmOf(t, 3)
    const [writer, , third] = live(swarm)
    const moverIndex = 1
    const mover = swarm.nodes[moverIndex]
    assert.ok(mover !== undefined)
    const moverId = mover.components.libp2p.peerId.toString()
    await until('every peer connected', async () => writer.components.libp2p.getPeers().length === 2)
    const data = randomBytes(2 * 1024 * 1024 + 7)
    await writer.components.files.add('/g/f.bin', once(data), { chunker: CHUNKER, pin: 'ec:2+1', wait: true })
    const entry = await writer.components.namespace.stat('/g/f.bin')
    assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined)
    const manifest = entry.pin.manifest
    await visibleOn(live(swarm), '/g/f.bin', true)
    const held = await heldBy(live(swarm), manifest)
    assert.ok(held.every(n => n > 0), `every node holds shards: ${held.join(', ')}`)
    const shards = await shardsOf(live(swarm), manifest)
    const othersShards = [shards[0], shards[2]]

    // the mover is cut off; the others remove the file and collect, before and after the grace period
    await stopNode(swarm, moverIndex)
    await writer.components.namespace.remove('/g/f.bin')
    const others = [writer, third]
    await visibleOn(others, '/g/f.bin', false)
    for (const node of others) assert.equal((await node.components.durability.collectGarbage()).keptUnreferenced, 1)
    await new Promise(resolve => setTimeout(resolve, GRACE_MS + 500))
    for (const node of others) {
      const r = await node.components.durability.collectGarbage()
      assert.equal(r.forgotten, 0, 'past the grace period, but the mover has not seen the removal')
      assert.equal(r.keptUnsettled, 1)
      assert.deepEqual(r.waitingOn, [moverId])
    }
    assert.deepEqual(await heldBy(others, manifest), [held[0], held[2]], 'every shard kept')
    assert.deepEqual(await storedOf(others, othersShards), [held[0], held[2]], 'every shard still in the block stores')

    // meanwhile, on the mover (its namespace opened alone, as the daemon would while cut off): the file moved
    const repo = swarm.repos[moverIndex]
    const replica = createNamespace({ path: repoLayout(repo).namespace, signer: signerFromKey(await loadIdentity(repo)), trust: mover.components.trust, logger: createLogger('silent') })
    await replica.open()
    await replica.putFile('/g/h.bin', { cid: entry.cid, size: entry.size, mode: entry.mode, mtime: entry.mtime, pin: entry.pin })
    await replica.remove('/g/f.bin')
    await replica.close()

    // the mover is back: its move wins, and the file reads whole on every node
    swarm.nodes[moverIndex] = await startNode(repo)
    await connectAll(live(swarm))
    await visibleOn(live(swarm), '/g/h.bin', true)
    for (const node of others) assert.equal((await node.components.durability.collectGarbage()).forgotten, 0, 'a manifest a file refers to again is kept')
    for (const node of live(swarm)) assert.ok((await readAll(node, '/g/h.bin')).equals(data), 'the moved file reads whole')
    const status = await writer.components.files.pinStatus('/g/h.bin')
    assert.deepEqual(status.summary, { healthy: status.stripes.length, atRisk: 0, degraded: 0, lost: 0 })

    // removed for good, with every member there: once each has seen it and its grace has run, the shards go
    await writer.components.namespace.remove('/g/h.bin')
    await visibleOn(live(swarm), '/g/h.bin', false)
    for (const node of live(swarm)) await node.components.durability.collectGarbage()
    await new Promise(resolve => setTimeout(resolve, GRACE_MS + 500))
    for (const node of live(swarm)) await until('the removal settled and the manifest forgotten', async () => (await node.components.durability.collectGarbage()).forgotten === 1, 20_000)
    assert.deepEqual(await heldBy(live(swarm), manifest), [0, 0, 0])
    assert.deepEqual(await storedOf(live(swarm), shards), [0, 0, 0], 'the shards left the block stores')
  })
})
