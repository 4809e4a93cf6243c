/**
 * Striped reads under faults, on real nodes (six Shoal nodes in one process:
 * real libp2p on 127.0.0.1, real LevelDB and packs in temp repos).
 *
 * A holder whose holdings store stalls cannot be made real between nodes of
 * one process: it is injected on the holder's side, below its shards server.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { parseChunker, readContent } from '../../../node/content/index.js'
import { once, sha, swarmOf, until } from '../../helpers/swarm.js'
import { defer } from '../../helpers/temp.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 120_000 }
const MiB = 1024 * 1024

describe('striped reads under faults', () => {
  it('a peer that stalls when asked which shards it holds costs a read a few seconds, not the shards request timeout', TEST, async t => {
    const swarm = await swarmOf(t, 6)
    const writer = swarm.nodes[0] as ShoalNode
    const data = randomBytes(4 * MiB)
    const info = await writer.components.files.add('/f.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:4+2', wait: true })
    await writer.components.durability.collectGarbage()
    const root = CID.parse(info.cid)
    const reader = swarm.nodes[5] as ShoalNode
    await until('the record on the reader', async () => (await reader.components.namespace.lookup('/f.bin')) !== undefined)
    const entry = await reader.components.namespace.stat('/f.bin')
    assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined)
    const manifest = CID.parse(entry.pin.manifest)
    // a holder whose holdings store hangs (a stalled disk): it never answers `holdings`, though it stays connected
    const slow = swarm.nodes[1] as ShoalNode
    const holdings = slow.components.holdings
    const held = holdings.held.bind(holdings)
    let release: (() => void) | undefined
    const stalled = new Promise<void>(resolve => { release = resolve })
    let asked = 0
    holdings.held = async function * (...args: Parameters<typeof held>) {
      asked++
      await stalled
      yield * held(...args)
    }
    defer(t, async () => { release?.() })
    const started = Date.now()
    const chunks: Uint8Array[] = []
    const session = reader.components.blocks.session({ root, manifest }, { signal: AbortSignal.timeout(60_000) })
    for await (const chunk of readContent(session, root)) chunks.push(chunk)
    const ms = Date.now() - started
    assert.equal(sha(Buffer.concat(chunks)), sha(data))
    assert.ok(asked >= 1, 'the stalled peer was asked for its holdings')
    // before, the read waited for the shards protocol's 30 s request timeout
    assert.ok(ms < 15_000, `the read took ${ms} ms`)
  })
})
