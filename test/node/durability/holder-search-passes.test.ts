/**
 * The cost of the holder search across repair passes, on real nodes (six
 * Shoal nodes in one process: real libp2p on 127.0.0.1 with its DHT, real
 * LevelDB and packs in temp repos). A holder that is really down leaves
 * every file it held with a shard seen nowhere, pass after pass until the
 * grace period ends: each pass must not look every such file's providers up
 * in the DHT again.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { parseChunker } from '../../../node/content/index.js'
import { loadConfig, saveConfig } from '../../../node/repo/config.js'
import { connectAll, makeRepo, once, startNode, untilOnEvery } from '../../helpers/swarm.js'
import { defer, tempDir } from '../../helpers/temp.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 180_000 }
const FILES = 3

describe('holder search across repair passes', () => {
  it('passes over files a down holder held look each file root up in the DHT once, not once a pass', TEST, async t => {
    const dir = await tempDir(t, 'shoal-search-passes-')
    const nodes: Array<ShoalNode | undefined> = []
    defer(t, async () => { await Promise.all(nodes.map(async n => { await n?.stop().catch(() => {}) })) })
    for (let i = 0; i < 6; i++) {
      const repo = await makeRepo(dir, `n${i}`)
      // a grace period longer than the test: the down holder's shards stay waiting, pass after pass
      const config = await loadConfig(join(repo, 'config.json'))
      config.durability = { ...config.durability, grace: 600_000 }
      await saveConfig(join(repo, 'config.json'), config)
      nodes.push(await startNode(repo))
    }
    await connectAll(nodes as ShoalNode[])
    const writer = nodes[0] as ShoalNode
    for (let f = 0; f < FILES; f++) {
      await writer.components.files.add(`/f${f}.bin`, once(randomBytes(1024 * 1024)), { chunker: parseChunker('size-262144'), pin: 'ec:4+2', wait: true })
    }
    await untilOnEvery(nodes as ShoalNode[], `/f${FILES - 1}.bin`)
    // a holder of every file (each stripe has one shard on each of the six nodes) goes down for good
    const down = nodes[5] as ShoalNode
    await down.stop()
    nodes[5] = undefined
    const network = writer.components.durability.network
    const find = network.findProviders?.bind(network)
    assert.ok(find !== undefined, 'the network has a DHT')
    let queries = 0
    network.findProviders = (cid, options) => { queries++; return find(cid, options) }
    defer(t, async () => { network.findProviders = find })
    const first = await writer.components.durability.repair(AbortSignal.timeout(60_000))
    const afterFirst = queries
    assert.ok(first.waiting > 0, `the first pass sees the down holder's shards waiting: ${JSON.stringify(first)}`)
    assert.ok(afterFirst >= FILES, `the first pass looked the ${FILES} files up: ${afterFirst} queries`)
    const second = await writer.components.durability.repair(AbortSignal.timeout(60_000))
    assert.ok(second.waiting > 0, `the second pass still sees them waiting: ${JSON.stringify(second)}`)
    // before, each pass queried the DHT for every file again (3 more queries here; a DHT query per degraded file a minute)
    assert.equal(queries - afterFirst, 0, 'DHT queries of the second pass')
  })
})
