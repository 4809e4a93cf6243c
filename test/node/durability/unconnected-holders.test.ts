/**
 * Holders this node is not connected to, on real nodes (seven Shoal nodes
 * in one process: real libp2p on 127.0.0.1, real LevelDB and packs in temp
 * repos). In a swarm larger than a connection manager keeps, a reader or a
 * repairing node is not connected to every holder of a file: the holder
 * view must still see their shards (found through the DHT providers of the
 * file root, then dialled), or a read rebuilds leaves that are alive and a
 * repair pass rebuilds shards whose holders are merely not connected.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { parseChunker, readContent } from '../../../node/content/index.js'
import { GRACE_MS, once, sha, swarmOf, untilOnEvery, type Swarm } from '../../helpers/swarm.js'
import type { BlockOrigin } from '../../../node/reads/api.js'
import type { HolderView } from '../../../node/durability/view.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 180_000 }
const MiB = 1024 * 1024

/** A 4 MiB file of 256 KiB leaves (16 leaves: four `ec:4+2` stripes) added on node 0 and placed; its manifest and its holders as node 0 sees them. */
async function placedFile (swarm: Swarm): Promise<{ data: Buffer, root: CID, manifest: CID, holders: Map<string, Array<[number, number]>> }> {
  const writer = swarm.nodes[0] as ShoalNode
  const data = randomBytes(4 * MiB)
  const info = await writer.components.files.add('/f.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'ec:4+2', wait: true })
  await writer.components.durability.collectGarbage()
  await untilOnEvery(swarm.nodes as ShoalNode[], '/f.bin')
  const entry = await writer.components.namespace.stat('/f.bin')
  assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined)
  const manifest = CID.parse(entry.pin.manifest)
  const view = await writer.components.durability.holderView(manifest, { stripes: 4, width: 6 })
  const holders = new Map<string, Array<[number, number]>>()
  for (let s = 0; s < 4; s++) {
    for (let i = 0; i < 6; i++) {
      for (const peer of view.holders(s, i)) holders.set(peer, [...(holders.get(peer) ?? []), [s, i]])
    }
  }
  return { data, root: CID.parse(info.cid), manifest, holders }
}

/** Close every connection between `a` and `b`. */
async function cut (a: ShoalNode, b: ShoalNode): Promise<void> {
  await a.components.libp2p.hangUp(b.components.libp2p.peerId).catch(() => {})
  await b.components.libp2p.hangUp(a.components.libp2p.peerId).catch(() => {})
}

function idOf (node: ShoalNode): string {
  return node.components.libp2p.peerId.toString()
}

describe('holders this node is not connected to', () => {
  it('a striped read fetches each leaf from its holder, connected or not, and rebuilds nothing', TEST, async t => {
    const swarm = await swarmOf(t, 7)
    const nodes = swarm.nodes as ShoalNode[]
    const { data, root, manifest, holders } = await placedFile(swarm)
    // the reader holds shards (so the file's skeleton is here), two other holders of data shards are cut off from it
    const reader = nodes.slice(1).find(n => holders.has(idOf(n))) as ShoalNode
    const far = nodes.slice(1).filter(n => n !== reader && (holders.get(idOf(n)) ?? []).some(([, i]) => i < 4)).slice(0, 2)
    assert.equal(far.length, 2, 'two holders of data shards besides the writer and the reader')
    // the reader is not connected to them when its read asks who holds what: in a swarm of seven any DHT
    // query dials every node, so they are cut again right before
    const service = reader.components.durability
    const holderView = service.holderView.bind(service)
    const views: HolderView[] = []
    service.holderView = async (...args: Parameters<typeof holderView>) => {
      for (const n of far) await cut(reader, n)
      for (const n of far) assert.equal(reader.components.libp2p.getConnections(n.components.libp2p.peerId).length, 0)
      const view = await holderView(...args)
      views.push(view)
      return view
    }
    const discovered = (): number => reader.components.exchange.stats().providersFromDht + reader.components.exchange.stats().providersFromPeers
    const providersBefore = discovered()
    const origins = new Map<BlockOrigin, number>()
    const chunks: Uint8Array[] = []
    const session = reader.components.blocks.session({ root, manifest }, { signal: AbortSignal.timeout(60_000), onProgress: e => { origins.set(e.from, (origins.get(e.from) ?? 0) + 1) } })
    try {
      for await (const chunk of readContent(session, root)) chunks.push(chunk)
    } finally {
      session.close()
    }
    assert.equal(sha(Buffer.concat(chunks)), sha(data))
    assert.equal(views.length, 1, 'one holder view for the read')
    // the unconnected holders were found and asked: the read's view names each of their shards
    for (const n of far) {
      for (const [s, i] of holders.get(idOf(n)) ?? []) assert.ok(views[0].holders(s, i).includes(idOf(n)), `shard ${s}:${i} seen on its holder`)
    }
    // every holder is alive: no leaf is rebuilt from parity
    assert.equal(origins.get('rebuilt') ?? 0, 0, `origins: ${JSON.stringify([...origins])}`)
    // and every leaf went to its holder: no search for the root's providers (a `have` to every connected
    // peer, then the DHT, for each leaf the view could not route)
    assert.equal(discovered() - providersBefore, 0, 'providers looked up during the read')
  })

  it('a repair pass on nodes not connected to a live holder rebuilds none of its shards', TEST, async t => {
    const swarm = await swarmOf(t, 7)
    const nodes = swarm.nodes as ShoalNode[]
    const { holders } = await placedFile(swarm)
    // a holder (not the writer) cut off from every other node, alive, for longer than the grace period
    const lonely = nodes.slice(1).find(n => (holders.get(idOf(n))?.length ?? 0) > 0)
    assert.ok(lonely !== undefined)
    const others = nodes.filter(n => n !== lonely)
    const cutUntil = Date.now() + GRACE_MS + 1_000
    while (Date.now() < cutUntil) {
      for (const n of others) await cut(n, lonely)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    for (const n of others) await cut(n, lonely)
    const repairedBefore = nodes.reduce((sum, n) => sum + n.components.durability.stats.shardsRepaired, 0)
    const reports = []
    for (const n of others) {
      await cut(n, lonely)
      reports.push(await n.components.durability.repair(AbortSignal.timeout(60_000)))
    }
    const repaired = nodes.reduce((sum, n) => sum + n.components.durability.stats.shardsRepaired, 0) - repairedBefore
    assert.equal(repaired, 0, `shards rebuilt: ${repaired}; reports: ${JSON.stringify(reports.map(r => ({ healthy: r.healthy, degraded: r.degraded, waiting: r.waiting, repaired: r.repaired })))}`)
    // and each node that knows the file sees every stripe whole
    for (const r of reports) {
      if (r.stripes === 0) continue
      assert.equal(r.degraded + r.lost, 0, `a pass saw missing shards: ${JSON.stringify(r)}`)
    }
  })
})
