/**
 * `holdings` answers for a wide code between real nodes (real libp2p on
 * 127.0.0.1, real LevelDB): a holder of every shard of 2,800 stripes of a
 * 16+8 code holds 67,200 shards, more than one answer names
 * (`MAX_SHARD_REFS`), all within one page of `MAX_HOLDINGS_STRIPES` (4,096)
 * stripes, the page an asker that ignores the width asks. The asker pages by as many stripes as a whole answer
 * can name and sees every shard; a request whose answer would have to be
 * cut is refused, never answered in part.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { createLogger } from '../../../node/logger.js'
import { loadManifestRoot, readStripes, shardCID } from '../../../node/durability/stripes.js'
import { gatherView } from '../../../node/durability/view.js'
import { MAX_HOLDINGS_STRIPES, MAX_SHARD_REFS } from '../../../protocol/shards.js'
import { once, swarmOf } from '../../helpers/swarm.js'
import type { ShardToHold } from '../../../node/durability/index.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 180_000 }
const K = 16
const M = 8
/** Past MAX_SHARD_REFS / (K + M) = 2,730 stripes, within one page of MAX_HOLDINGS_STRIPES. */
const STRIPES = 2_800

describe('holdings of a wide code', () => {
  it('a holder of all 67,200 shards of 2,800 stripes of a 16+8 code is seen holding every one, and a request whose answer would be cut is refused', TEST, async t => {
    const swarm = await swarmOf(t, 2)
    const [asker, holder] = swarm.nodes as ShoalNode[]
    // 44,800 leaves of one 64-byte chunk: 2,800 full stripes, every one of the same nine blocks
    const chunk = randomBytes(64)
    const data = Buffer.concat(Array.from({ length: K * STRIPES }, () => chunk))
    const info = await asker.components.files.add('/wide.bin', once(data), { chunker: parseChunker('size-64'), pin: 'none' })
    const pin = await asker.components.durability.encode(CID.parse(info.cid), data.length, `ec:${K}+${M}`)
    const manifest = CID.parse(pin.manifest as string)
    const mroot = await loadManifestRoot(asker.components.blockstore, manifest)
    assert.equal(mroot.stripes, STRIPES)

    // the holder holds every shard of every stripe, for the asker, with its blocks
    const shards: ShardToHold[] = []
    const blocks = new Map<string, CID>()
    for await (const { index, stripe } of readStripes(asker.components.blockstore, mroot)) {
      for (let i = 0; i < K + M; i++) {
        const cid = shardCID(stripe, K, i) as CID
        shards.push({ ref: [index, i], cid, size: i < K ? stripe.sizes[i] : stripe.shardSize })
        blocks.set(cid.toString(), cid)
      }
    }
    assert.ok(shards.length > MAX_SHARD_REFS, 'more shards than one answer names')
    for (const cid of blocks.values()) await holder.components.blockstore.put(cid, await asker.components.blockstore.getBytes(cid))
    await holder.components.blockstore.commit()
    await holder.components.holdings.noteManifest(manifest, { root: info.cid, k: K, m: M, role: 'holder', since: Date.now() })
    await holder.components.holdings.hold(manifest, shards, { now: Date.now(), from: asker.components.peerId })

    // the view asks the holder and sees every shard it holds
    const { network } = asker.components.durability
    const view = await gatherView({ network, holdings: asker.components.holdings, blockstore: asker.components.blockstore, logger: createLogger('silent') },
      manifest, STRIPES, { width: K + M })
    const holderId = holder.components.peerId
    assert.ok(view.asked.includes(holderId), 'the holder answered')
    const missing = shards.filter(({ ref: [s, i] }) => !view.holders(s, i).includes(holderId))
    assert.equal(missing.length, 0, `shards the holder holds seen missing: ${missing.length}, the first at stripe ${missing[0]?.ref[0]} shard ${missing[0]?.ref[1]}`)

    // a page of 4,096 stripes (2,800 of them here) of 24 shards: refused as a whole, not cut at 65,536 refs
    assert.ok(STRIPES <= MAX_HOLDINGS_STRIPES && STRIPES * (K + M) > MAX_SHARD_REFS)
    await assert.rejects(network.request(holderId, { v: 1, type: 'holdings', manifest, from: 0, count: MAX_HOLDINGS_STRIPES }),
      (err: Error) => err.name === 'RemoteError' && err.message.includes('ask fewer stripes'))
  })
})
