/**
 * Reading and rebuilding shards on real nodes (real libp2p on 127.0.0.1,
 * real LevelDB): what a scrub reports when one corrupt block is several
 * shards held here (a leaf that repeats in the file).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { repoLayout } from '../../../node/repo/index.js'
import { flipRecord, recordLocation } from '../blocks/fixtures.js'
import { connectAll, live, once, readAll, sha, startNode, stopNode, swarmOf, untilOnEvery } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 180_000 }

describe('rebuilding shards (review)', () => {
  it('a scrub rebuilds a corrupt block held as several shards once, and its counts add up to the corrupt blocks', TEST, async t => {
    const swarm = await swarmOf(t, 3)
    const writer = swarm.nodes[0] as ShoalNode
    // one 256 KiB chunk eight times: eight leaves of one CID, four ec:2+1 stripes whose data shards are all that leaf
    const chunk = randomBytes(256 * 1024)
    const data = Buffer.concat(Array.from({ length: 8 }, () => chunk))
    await writer.components.files.add('/rep.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true })
    await untilOnEvery(live(swarm), '/rep.bin')

    // a holder (not the writer) that holds the repeated leaf as shards of two stripes or more
    let v = -1
    let leaf: string | undefined
    let refs = 0
    for (let i = 1; i < swarm.nodes.length && v < 0; i++) {
      const byCid = new Map<string, number>()
      const node = swarm.nodes[i] as ShoalNode
      for await (const [manifest] of node.components.holdings.manifests()) {
        for await (const h of node.components.holdings.held(manifest)) byCid.set(h.cid, (byCid.get(h.cid) ?? 0) + 1)
      }
      for (const [cid, n] of byCid) if (n >= 2) { v = i; leaf = cid; refs = n }
    }
    assert.ok(v > 0 && leaf !== undefined, 'a holder holds the repeated leaf as shards of two stripes')

    // its one copy of that leaf rots on disk
    await stopNode(swarm, v)
    const dir = repoLayout(swarm.repos[v]).blocks
    await flipRecord(dir, await recordLocation(dir, CID.parse(leaf)))
    const restarted = await startNode(swarm.repos[v])
    swarm.nodes[v] = restarted
    await connectAll(live(swarm))

    const report = await restarted.components.durability.scrub()
    assert.equal(report.corrupt, 1, 'one corrupt block')
    assert.deepEqual(report.errors, [])
    assert.equal(report.rebuilt + report.refetched + report.lost.length + report.leftovers + report.unknown, report.corrupt,
      `each corrupt block counted once (${refs} shards of it held here): ${JSON.stringify({ ...report, blocks: undefined, bytes: undefined })}`)
    assert.equal(report.rebuilt, 1, 'the block is rebuilt once')
    assert.ok(await restarted.components.blockstore.has(CID.parse(leaf)), 'and is here again')
    assert.equal(sha(await readAll(restarted, '/rep.bin')), sha(data))
  })
})
