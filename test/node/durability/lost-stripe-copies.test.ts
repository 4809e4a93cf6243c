/**
 * A stripe lost on its holders (fewer than k shards left there) whose leaves
 * another node has (the same bytes added there unpinned; a writer's or a
 * released holder's copy before its gc): the repair pass finds them in the swarm,
 * keeps them as held shards and rebuilds the rest (node/durability/adopt.ts).
 * Before, the stripe stayed `lost` for good and repair said it could not be
 * rebuilt, while the copies sat a request away, until a gc dropped them. Until
 * the pass runs, `pin status` on the node with the copies says `degraded`
 * (the file reads there), on the others `lost`. Four real nodes (libp2p on 127.0.0.1,
 * LevelDB and packs in temp repos).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { live, once, readAll, sha, swarmOf, until, untilOnEvery } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 120_000 }

describe('a stripe lost on its holders', () => {
  it('is rebuilt from copies of its leaves that another node has', TEST, async t => {
    const swarm = await swarmOf(t, 4)
    const nodes = live(swarm)
    const writer = nodes[0]
    await until('every peer connected', async () => writer.components.libp2p.getPeers().length === 3)
    // 4 leaves of 256 KiB: 2 stripes of ec:2+1
    const data = randomBytes(1024 * 1024)
    await writer.components.files.add('/f.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true })
    await untilOnEvery(nodes, '/f.bin')
    for (const n of nodes) await n.components.durability.collectGarbage()
    const placed = await writer.components.files.pinStatus('/f.bin')
    assert.equal(placed.state, 'healthy')
    const stripe = placed.stripes[0]
    const holderIds = stripe.shards.map(sh => sh.holders[0])
    const byId = (id: string): ShoalNode => nodes.find(n => n.components.peerId === id) as ShoalNode
    // the one node holding no shard of stripe 0 has the same bytes, added unpinned at another path: the same leaves
    const other = nodes.find(n => !holderIds.includes(n.components.peerId)) as ShoalNode
    await other.components.files.add('/copy.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'none' })
    for (const sh of stripe.shards.slice(0, 2)) assert.ok(await other.components.blockstore.has(CID.parse(sh.cid as string)))
    // both data shards of stripe 0 gone from their holders' disks: one shard (parity) left, k = 2
    for (const sh of stripe.shards.slice(0, 2)) await byId(sh.holders[0]).components.blockstore.delete(CID.parse(sh.cid as string))
    // the parity shard's holder has no copy of the leaves: to it the stripe is lost
    const lost = await byId(holderIds[2]).components.files.pinStatus('/f.bin')
    assert.equal(lost.stripes[0].state, 'lost')
    assert.equal(lost.stripes[0].copiesHere, undefined)
    // the node with the copies reads the file: to its user the stripe is degraded, its copies named
    const there = await other.components.files.pinStatus('/f.bin')
    assert.equal(there.stripes[0].state, 'degraded')
    assert.equal(there.stripes[0].live, 1)
    assert.equal(there.stripes[0].copiesHere, 2)
    assert.deepEqual(there.stripes[0].shards.map(sh => sh.copyHere === true), [true, true, false])
    assert.equal(there.summary.lost, 0)
    assert.equal(sha(await readAll(other, '/f.bin')), sha(data))

    await until('stripe 0 is healthy again', async () => {
      for (const n of nodes) await n.components.durability.repair()
      return (await writer.components.files.pinStatus('/f.bin')).stripes.every(s => s.state === 'healthy')
    }, 30_000)
    // the leaves are held shards now: a gc on every node keeps them
    for (const n of nodes) await n.components.durability.collectGarbage()
    const after = await writer.components.files.pinStatus('/f.bin')
    assert.equal(after.state, 'healthy')
    assert.equal(sha(await readAll(writer, '/f.bin')), sha(data))
  })
})
