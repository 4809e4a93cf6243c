/**
 * Reading and rebuilding shards on real nodes (real libp2p on 127.0.0.1,
 * real LevelDB): what a scrub reports when one corrupt block is several
 * shards held here (a leaf that repeats in the file), that a shard held for
 * a peer and rebuilt by a scrub still counts in the quota for others, and
 * which node rebuilds a lost shard when another shard of its stripe has an
 * extra copy.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { repoLayout } from '../../../node/repo/index.js'
import { flipRecord, recordLocation } from '../blocks/fixtures.js'
import { fileSkeleton, loadManifestRoot, readManifest } from '../../../node/durability/stripes.js'
import { compareDistance, peerKadKey } from '../../../node/durability/placement.js'
import { stripeKey } from '../../../protocol/durability.js'
import { GRACE_MS, connectAll, live, once, readAll, sha, startNode, stopNode, swarmOf, until, untilOnEvery } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'
import type { HeldShard } from '../../../node/durability/index.js'

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

  it('a shard held for a peer and rebuilt here by a scrub still counts in the quota for others, and stays held for that peer', TEST, async t => {
    const swarm = await swarmOf(t, 3)
    const writer = swarm.nodes[0] as ShoalNode
    const data = randomBytes(1024 * 1024)
    await writer.components.files.add('/q.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true })
    await untilOnEvery(live(swarm), '/q.bin')
    const writerId = writer.components.peerId

    // a holder of shards the writer placed: each recorded for the writer, with its size
    const forWriter = async (node: ShoalNode): Promise<Array<{ manifest: string, held: HeldShard }>> => {
      const out: Array<{ manifest: string, held: HeldShard }> = []
      for await (const [manifest] of node.components.holdings.manifests()) {
        for await (const held of node.components.holdings.held(manifest)) if (held.from === writerId) out.push({ manifest, held })
      }
      return out
    }
    const v = 1 + (await Promise.all(swarm.nodes.slice(1).map(async n => (await forWriter(n as ShoalNode)).length))).findIndex(n => n > 0)
    assert.ok(v > 0, 'a holder holds shards for the writer')
    const before = await forWriter(swarm.nodes[v] as ShoalNode)
    const bytes = before.reduce((sum, { held }) => sum + (held.size ?? 0), 0)
    assert.equal((await (swarm.nodes[v] as ShoalNode).components.durability.storage()).heldForOthers, bytes)

    // one of them rots on its disk, and a scrub rebuilds it here from its stripe
    const { held: rotten } = before[0]
    await stopNode(swarm, v)
    const dir = repoLayout(swarm.repos[v]).blocks
    await flipRecord(dir, await recordLocation(dir, CID.parse(rotten.cid)))
    const restarted = await startNode(swarm.repos[v])
    swarm.nodes[v] = restarted
    await connectAll(live(swarm))
    const report = await restarted.components.durability.scrub()
    assert.deepEqual(report.errors, [])
    assert.equal(report.rebuilt, 1, 'the rotten shard is rebuilt here')
    assert.ok(await restarted.components.blockstore.has(CID.parse(rotten.cid)))

    // still held for the writer, and counted: now, and as a restart counts it again
    const after = await forWriter(restarted)
    assert.deepEqual(after.map(({ held }) => [held.stripe, held.shard, held.size]), before.map(({ held }) => [held.stripe, held.shard, held.size]), 'every shard is still recorded for the writer')
    assert.equal((await restarted.components.durability.storage()).heldForOthers, bytes, 'the rebuilt shard still counts for others')
    await stopNode(swarm, v)
    const again = await startNode(swarm.repos[v])
    swarm.nodes[v] = again
    assert.equal((await again.components.durability.storage()).heldForOthers, bytes, 'and is counted again after a restart')
  })

  it('a lost shard is rebuilt by one coordinator when another shard of its stripe has an extra copy on a peer closer to the stripe key', TEST, async t => {
    const swarm = await swarmOf(t, 6)
    const writer = swarm.nodes[0] as ShoalNode
    const ids = live(swarm).map(n => n.components.peerId)
    // a one-stripe ec:2+1 file whose holders leave a non-holder closer to the stripe key than the second closest holder
    let found: { manifest: CID, holders: string[], byDistance: string[], extra: string, path: string } | undefined
    for (let attempt = 0; attempt < 20 && found === undefined; attempt++) {
      const path = `/c${attempt}.bin`
      await writer.components.files.add(path, once(randomBytes(512 * 1024)), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true })
      const entry = await writer.components.namespace.stat(path)
      assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined)
      const manifest = CID.parse(entry.pin.manifest)
      const status = await writer.components.files.pinStatus(path)
      const holders = status.stripes[0].shards.map(sh => sh.holders)
      if (holders.some(h => h.length !== 1)) continue
      const flat = holders.map(h => h[0])
      let key: Uint8Array | undefined
      for await (const { stripe } of readManifest(writer.components.blocks.getter({}), manifest)) key = stripeKey(stripe)
      const near = (a: string, b: string): number => compareDistance(key as Uint8Array, peerKadKey(a), peerKadKey(b))
      const byDistance = [...flat].sort(near)
      const extra = ids.filter(p => !flat.includes(p)).sort(near)[0]
      if (near(extra, byDistance[1]) < 0) found = { manifest, holders: flat, byDistance, extra, path }
    }
    assert.ok(found !== undefined, 'a file whose stripe has a non-holder closer to its key than its second holder')
    const { manifest, holders, byDistance, extra, path } = found
    await untilOnEvery(live(swarm), path)
    // the files tried before are removed: only this one is repaired below
    const tried = Array.from({ length: Number(path.slice(2, -4)) }, (_, i) => `/c${i}.bin`)
    for (const p of tried) await writer.components.files.rm(p)
    await until('the files tried before gone on every node', async () => {
      for (const n of live(swarm)) for (const p of tried) if ((await n.components.namespace.lookup(p)) !== undefined) return false
      return true
    })
    const nodeOf = (peer: string): ShoalNode => live(swarm).find(n => n.components.peerId === peer) as ShoalNode
    // the closest holder goes away; the next closest (`keeper`) has its shard copied onto `extra`, closer to the key
    // (a holder restored from an old copy of its disk, or back after its shard was rebuilt elsewhere)
    const [gone, keeper] = byDistance
    const shard = holders.indexOf(keeper)
    const status = await writer.components.files.pinStatus(path)
    const cid = CID.parse(status.stripes[0].shards[shard].cid as string)
    const bytes = await nodeOf(keeper).components.blockstore.getBytes(cid)
    const copy = nodeOf(extra).components
    // as a holder keeps it: with the manifest and the file's skeleton
    const from = writer.components.blocks.getter({})
    const mroot = await loadManifestRoot(from, manifest)
    for (const block of [manifest, ...mroot.pages]) await copy.blockstore.put(block, await from.getBytes(block))
    for await (const block of fileSkeleton(from, mroot.root)) await copy.blockstore.put(block.cid, block.bytes)
    await copy.blockstore.put(cid, bytes)
    await copy.blockstore.commit()
    await copy.holdings.noteManifest(manifest, { root: status.root, k: 2, m: 1, role: 'holder', since: Date.now() })
    await copy.holdings.hold(manifest, [{ ref: [0, shard], cid, size: bytes.byteLength }], { now: Date.now() })
    // every node has seen every holder once
    for (const n of live(swarm)) await n.components.durability.repair()

    await stopNode(swarm, swarm.nodes.findIndex(n => n?.components.peerId === gone))
    await new Promise(resolve => setTimeout(resolve, GRACE_MS + 200))
    // passes run at once on every node, as scheduled passes do: one coordinator per stripe acts
    const reports = await Promise.all(live(swarm).map(async n => await n.components.durability.repair()))
    assert.ok(reports.every(r => r.manifests <= 1), 'one file to repair')
    const repaired = reports.reduce((sum, r) => sum + r.repaired, 0)
    assert.equal(repaired, 1, `the one lost shard is rebuilt once (by ${JSON.stringify(live(swarm).map((n, i) => [n.components.peerId === extra ? 'extra' : n.components.peerId === keeper ? 'keeper' : 'other', reports[i].repaired, reports[i].errors, reports[i].unplaced, reports[i].waiting]))})`)
  })
})
