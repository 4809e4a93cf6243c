/**
 * `pin status` labels a stripe's placement explanation with when it was
 * true. The text is recorded when the stripe is placed ("6 shards on 3 of 3
 * live peers…"); shown bare once peers had gone, it read as a description
 * of now. Real nodes on 127.0.0.1, real LevelDB.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { parseChunker } from '../../../node/content/index.js'
import { placementWhy } from '../../../node/durability/pin-status.js'
import { stopNode, swarmOf, until, once } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'

describe('pin status placement explanation', () => {
  it('says when it was true: "at placement, <time>: …", not as if the peers live then were live now', { timeout: 120_000 }, async t => {
    // found by a probe on real daemons: with 2 peers answering, pin status still printed "(6 shards on 4 of 4 live peers…)"
    const swarm = await swarmOf(t, 3)
    const writer = swarm.nodes[0] as ShoalNode
    const before = Date.now()
    await writer.components.files.add('/f.bin', once(randomBytes(600_000)), { chunker: parseChunker('size-262144'), pin: 'ec:4+2' })
    await writer.components.files.settled()
    const after = Date.now()
    await stopNode(swarm, 2)
    await until('the writer sees one peer', async () => writer.components.libp2p.getPeers().length === 1)

    const status = await writer.components.files.pinStatus('/f.bin')
    assert.equal(status.peersAsked.length, 2, 'two nodes answer now')
    assert.ok(status.stripes.length > 0)
    for (const s of status.stripes) {
      const match = /^at placement, (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ): (.*)$/.exec(s.why ?? '')
      assert.ok(match !== null, `the explanation says when it was true: ${String(s.why)}`)
      const at = Date.parse(match[1])
      assert.ok(at >= Math.floor(before / 1000) * 1000 && at <= after, `placed between ${before} and ${after}, says ${match[1]}`)
      assert.match(match[2], /^6 shards on 3 of 3 live peers/, 'what was true at placement')
      assert.ok(s.placedAt !== undefined && s.placedAt >= before && s.placedAt <= after)
      assert.equal(Math.floor((s.placedAt ?? 0) / 1000) * 1000, at)
    }
  })

  it('shows the time to the second, and no date for a time it cannot show', () => {
    assert.equal(placementWhy({ why: '6 shards on 6 of 9 live peers, 6 zones', time: Date.UTC(2026, 10, 26, 13, 40, 5, 123) }), 'at placement, 2026-11-26T13:40:05Z: 6 shards on 6 of 9 live peers, 6 zones')
    assert.equal(placementWhy({ why: 'x', time: Number.NaN }), 'at placement: x')
    assert.equal(placementWhy({ why: 'x', time: 1e20 }), 'at placement: x')
  })
})
