/**
 * A node that lost blocks stops claiming them, and `pin status` says so.
 *
 * - A holder's packs deleted while it was stopped: at its next start the
 *   open marks the lost entries bad (node/blocks/index-audit.ts), so it no
 *   longer answers `holdings` with shards it cannot read; `pin status` on the
 *   writer sees the stripes degraded at once (it called them healthy until a
 *   scrub ran) and the repair pass puts the shards back.
 * - A file that is not coded (`pin none`) whose blocks are gone here:
 *   `pin status` counts the missing blocks and asks the connected peers
 *   about them (node/content/presence.ts; it said "kept where its blocks are").
 *
 * Real nodes (libp2p on 127.0.0.1, LevelDB and packs in temp repos).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPB from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { connectAll, live, once, readAll, sha, startNode, swarmOf, until, untilOnEvery } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'
import type { PackBlockStore } from '../../../node/blocks/index.js'

const TEST = { timeout: 120_000 }
const CHUNKER = parseChunker('size-262144')

describe('blocks lost on a node', () => {
  it('a holder whose packs were deleted while stopped no longer counts as holding its shards; repair puts them back', TEST, async t => {
    const swarm = await swarmOf(t, 3)
    const nodes = live(swarm)
    const writer = nodes[0]
    await until('every peer connected', async () => writer.components.libp2p.getPeers().length === 2)
    // 4 leaves of 256 KiB: 2 stripes of ec:2+1, each on the 3 nodes
    const data = randomBytes(1024 * 1024)
    await writer.components.files.add('/f.bin', once(data), { chunker: CHUNKER, pin: 'ec:2+1', wait: true })
    await untilOnEvery(nodes, '/f.bin')
    for (const n of nodes) await n.components.durability.collectGarbage()
    assert.equal((await writer.components.files.pinStatus('/f.bin')).state, 'healthy')

    // node 1 stopped, every pack of its block store deleted, started again
    const victim = 1
    const id = nodes[victim].components.peerId
    await nodes[victim].stop()
    swarm.nodes[victim] = undefined
    const packs = join(swarm.repos[victim], 'blocks', 'packs')
    for (const name of await readdir(packs)) if (name.endsWith('.pack')) await unlink(join(packs, name))
    const restarted = swarm.nodes[victim] = await startNode(swarm.repos[victim])
    await connectAll(live(swarm))
    await until('the restarted node connected', async () => writer.components.libp2p.getPeers().length === 2)

    const status = await writer.components.files.pinStatus('/f.bin')
    assert.notEqual(status.state, 'healthy', 'the shards node 1 lost are not counted')
    for (const s of status.stripes) {
      assert.equal(s.state, 'degraded')
      assert.ok(s.shards.every(sh => !sh.holders.includes(id)), 'node 1 holds none of its shards now')
    }

    assert.ok(((restarted.components.blockstore as PackBlockStore).audit?.markedUnreadable ?? 0) > 0, 'the open marked what the packs lost')

    await until('every stripe healthy again', async () => {
      for (const n of live(swarm)) await n.components.durability.repair()
      return (await writer.components.files.pinStatus('/f.bin')).state === 'healthy'
    }, 60_000)
    assert.equal(sha(await readAll(restarted, '/f.bin')), sha(data))
  })

  it('pin status of a file that is not coded counts the blocks missing here and asks the peers', TEST, async t => {
    const swarm = await swarmOf(t, 2)
    const [writer, other] = live(swarm) as [ShoalNode, ShoalNode]
    await until('the peer connected', async () => writer.components.libp2p.getPeers().length === 1)
    const data = randomBytes(1024 * 1024)
    const added = await writer.components.files.add('/plain.bin', once(data), { chunker: CHUNKER, pin: 'none' })
    const whole = await writer.components.files.pinStatus('/plain.bin')
    assert.equal(whole.state, 'not-coded')
    assert.deepEqual(whole.blocks, { checked: 5, missing: 0, unknownSubtrees: 0, complete: true, firstMissing: [] })

    // the other node has the same leaves (the same bytes at another path); two leaves gone here
    await other.components.files.add('/copy.bin', once(data), { chunker: CHUNKER, pin: 'none' })
    const leaves = dagPB.decode(await writer.components.blockstore.getBytes(CID.parse(added.cid))).Links.map(l => l.Hash)
    assert.equal(leaves.length, 4)
    for (const leaf of leaves.slice(1, 3)) await writer.components.blockstore.delete(leaf)

    const status = await writer.components.files.pinStatus('/plain.bin')
    assert.equal(status.state, 'not-coded')
    assert.ok(status.blocks !== undefined, 'pin status says what is here')
    assert.equal(status.blocks.checked, 5)
    assert.equal(status.blocks.missing, 2)
    assert.equal(status.blocks.complete, true)
    assert.deepEqual(new Set(status.blocks.firstMissing), new Set(leaves.slice(1, 3).map(c => c.toString())))
    assert.deepEqual(status.blocks.peers, [{ peer: other.components.peerId, have: 2, asked: 2 }])
    assert.equal(status.blocks.heldByNone, 0, 'every missing block is on a peer: the file reads')

    // one of them gone on the peer too: that block is held by no one who answered
    await other.components.blockstore.delete(leaves[1])
    const short = await writer.components.files.pinStatus('/plain.bin')
    assert.deepEqual(short.blocks?.peers, [{ peer: other.components.peerId, have: 1, asked: 2 }])
    assert.equal(short.blocks?.heldByNone, 1)
  })
})
