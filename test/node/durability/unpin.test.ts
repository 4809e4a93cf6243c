/**
 * A file unpinned from its stripes stays readable, on real nodes (real
 * libp2p on 127.0.0.1, real LevelDB): five nodes hold an `ec:2+1` file
 * spread as its placement put it (the writer keeps its share only), the
 * file is unpinned (`pin rm`: policy `none`), another file is removed, and
 * every node collects garbage — first while the old stripes are within the
 * grace period, then after it, once their manifest is forgotten. The file is
 * read byte-identical on every node each time, and no leaf loses its last
 * copy.
 *
 * Found on real daemons: after `pin rm`, a read (now of a plain DAG) stopped
 * looking in its own store once a leaf had to be fetched, so the leaves this
 * node held as its share — which no peer has — were asked of the peers only,
 * and the read failed ("not found here", every peer `dont-have`) on every
 * node until reads elsewhere had cached those leaves.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { readManifest, shardCID } from '../../../node/durability/stripes.js'
import { GRACE_MS, live, once, readAll, sha, swarmOf, until } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'

const K = 2

/** The leaves (data shards) of a manifest, read from `node`'s store. */
async function leavesOf (node: ShoalNode, manifest: CID): Promise<CID[]> {
  const out: CID[] = []
  for await (const { stripe } of readManifest(node.components.blockstore, manifest)) {
    for (let i = 0; i < K; i++) {
      const cid = shardCID(stripe, K, i)
      if (cid !== undefined) out.push(cid)
    }
  }
  return out
}

/** How many nodes store each leaf. */
async function copies (nodes: ShoalNode[], leaves: CID[]): Promise<number[]> {
  const counts: number[] = []
  for (const leaf of leaves) {
    let n = 0
    for (const node of nodes) if (await node.components.blockstore.has(leaf)) n++
    counts.push(n)
  }
  return counts
}

describe('a file unpinned from its stripes, on real nodes', () => {
  it('pin rm, rm of another file and gc on every node: the file stays readable on every node, before and after the grace period', { timeout: 180_000 }, async t => {
    const swarm = await swarmOf(t, 5)
    const nodes = live(swarm)
    const writer = nodes[0]
    // 96 leaves in 48 stripes: placement ranks the five nodes by a hash of
    // each stripe's key, so a node misses both leaves of a stripe with odds
    // 3/5 — over 12 stripes (24 MiB in 1 MiB leaves) some node of five held
    // no leaf about once in 90 runs; over 48 stripes, once in 10^10
    const data = randomBytes(12 * 1024 * 1024)
    const other = randomBytes(1024 * 1024)
    const chunker = parseChunker('size-131072')
    await writer.components.files.add('/f.bin', once(data), { chunker, pin: 'ec:2+1' })
    await writer.components.files.add('/g.bin', once(other), { chunker, pin: 'ec:2+1' })
    await writer.components.files.settled()
    const entry = await writer.components.namespace.stat('/f.bin')
    assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined, 'coded and placed')
    const manifest = CID.parse(entry.pin.manifest)
    const status = await writer.components.files.pinStatus('/f.bin')
    assert.equal(status.summary.healthy, status.stripes.length, 'every stripe on three distinct nodes')

    // the writer keeps its share only: every node holds some leaves and lacks others
    for (const node of nodes) await node.components.durability.collectGarbage()
    const leaves = await leavesOf(writer, manifest)
    assert.equal(leaves.length, 96)
    assert.ok((await copies(nodes, leaves)).every(n => n >= 1), 'every leaf is held somewhere')
    for (const [i, node] of nodes.entries()) {
      const here = (await copies([node], leaves)).filter(n => n > 0).length
      assert.ok(here > 0 && here < leaves.length, `node ${i} holds ${here} of ${leaves.length} leaves: the file is spread`)
    }

    await writer.components.files.pinRm('/f.bin')
    await writer.components.namespace.remove('/g.bin')
    await until('every node sees /f.bin unpinned and /g.bin gone', async () => {
      for (const node of nodes) {
        const f = await node.components.namespace.lookup('/f.bin')
        if (f?.type !== 'file' || f.pin?.manifest !== undefined) return false
        if (await node.components.namespace.lookup('/g.bin') !== undefined) return false
      }
      return true
    })

    // within the grace period: the old stripes are still kept
    for (const node of nodes) await node.components.durability.collectGarbage()
    assert.ok((await copies(nodes, leaves)).every(n => n >= 1), 'gc left every leaf somewhere')
    // every node at once, right after: each holds some leaves no other node has yet (a read caches what it fetches)
    const reads = await Promise.allSettled(nodes.map(async node => sha(await readAll(node, '/f.bin'))))
    for (const [i, read] of reads.entries()) {
      assert.equal(read.status === 'fulfilled' ? read.value : String(read.reason), sha(data), `node ${i} reads the unpinned file`)
    }

    // past the grace period: the manifest is forgotten and its parity goes; the leaves stay
    await new Promise(resolve => setTimeout(resolve, GRACE_MS + 200))
    let forgotten = 0
    for (const node of nodes) forgotten += (await node.components.durability.collectGarbage()).forgotten
    assert.ok(forgotten > 0, 'the old stripes were released')
    assert.ok((await copies(nodes, leaves)).every(n => n >= 1), 'gc past the grace period left every leaf somewhere')
    for (const [i, node] of nodes.entries()) {
      assert.equal(sha(await readAll(node, '/f.bin')), sha(data), `node ${i} reads the unpinned file after the grace period`)
    }
  })
})
