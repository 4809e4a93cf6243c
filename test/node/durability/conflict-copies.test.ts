/**
 * Conflict copies kept whole on several nodes (node/durability/conflict-copies.ts):
 * a losing version of a concurrent write whose coding was still to come is
 * never coded while it is a copy; the repair pass has the nodes picked for
 * it fetch it whole, so that it outlives its writer. Three real nodes
 * (libp2p on 127.0.0.1, LevelDB and packs in temp repos).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { parseChunker } from '../../../node/content/index.js'
import { localPresence } from '../../../node/content/index.js'
import { CopyKeeper, keepersOf, wholeCopiesOf } from '../../../node/durability/conflict-copies.js'
import { createLogger } from '../../../node/logger.js'
import type { Entry } from '../../../node/namespace/index.js'
import { connectAll, live, once, readAll, sha, startNode, stopNode, swarmOf, until } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'

const CHUNKER = parseChunker('size-262144')
const PEERS = ['12D3KooWEhKa5QJ5FsDmcHEE6UV5ApaLhCd6Q4SJ2TAyMtYzLdrF', '12D3KooWLo5ouxFU4dy9TutkQFwDZQpHYtddNDRmAzds1Q7RXisK', '12D3KooWMuMvrjFFqhTnv1UQBJrEyP3jwt5vyZCqqMRBPuNcA8Sj', '12D3KooWN9KSqpKG6Xhfy2Z8XWhjhgTiB8kLKooXYUc42Bhe1P2b']

describe('conflict copies kept whole', () => {
  it('as many nodes as the pin survives losses, plus one', () => {
    assert.equal(wholeCopiesOf({ policy: 'replicas:3' }), 3)
    assert.equal(wholeCopiesOf({ policy: 'ec:4+2' }), 3)
    assert.equal(wholeCopiesOf({ policy: 'replicas:1' }), 1)
    assert.equal(wholeCopiesOf({ policy: 'none' }), 1)
    assert.equal(wholeCopiesOf(undefined), 1)
    assert.equal(wholeCopiesOf({ policy: 'raid5' }), 1)
  })

  it('the same nodes are picked whatever the order they are listed in, and fewer when fewer are known', () => {
    const root = CID.parse('bafkreie2ipoqoj6knv23ejaoo277dgwuoj2or4cw3fa4jjeotlqiyfzk34')
    const picked = keepersOf(root, PEERS, 2)
    assert.equal(picked.length, 2)
    assert.deepEqual(keepersOf(root, [...PEERS].reverse(), 2), picked)
    assert.deepEqual(keepersOf(root, [...PEERS, PEERS[0]], 2), picked, 'a node listed twice counts once')
    assert.equal(keepersOf(root, PEERS.slice(0, 1), 3).length, 1)
    const other = CID.parse('bafkreigyaxw6vk3dzkgjt3k7vofsgqxs5k5ybxhjolhbrf6tow2kxzmylm')
    assert.ok([1, 2, 3, 4].some(n => keepersOf(other, PEERS, n).join() !== keepersOf(root, PEERS, n).join()), 'the pick follows the root')
  })

  it('a fetch under way ends when the service stops, and a copy that fails does not stop the others', async () => {
    const root = CID.parse('bafkreie2ipoqoj6knv23ejaoo277dgwuoj2or4cw3fa4jjeotlqiyfzk34')
    const copy = (path: string, cid: string): Entry => ({ type: 'file', path, name: path.slice(1), cid, size: 1, mode: 0o644, mtime: 0, pin: { policy: 'replicas:2' }, conflictOf: '/x' })
    let started = (): void => {}
    const fetching = new Promise<void>(resolve => { started = resolve })
    const keeper = new CopyKeeper({
      // a copy whose CID does not parse, then one whose fetch hangs (a peer that sends nothing) until it is aborted
      copies: async function * () { yield copy('/bad', 'not-a-cid'); yield copy('/slow', root.toString()) },
      livePeers: async () => [],
      network: { self: PEERS[0] },
      blockstore: { has: async () => false, getBytes: async () => { throw Object.assign(new Error('not here'), { name: 'NotFoundError' }) } },
      blocks: {
        session: (_target, options) => ({
          close: () => {},
          getBytes: async () => {
            started()
            return await new Promise<Uint8Array>((_resolve, reject) => { options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }) })
          }
        })
      },
      logger: createLogger('silent')
    })
    const pass = keeper.keep()
    await fetching
    keeper.stop()
    await assert.rejects(pass, (err: any) => err.name === 'AbortedError')
  })

  it('a losing version written while its node was alone is fetched by the nodes picked for it and outlives its writer', { timeout: 180_000 }, async t => {
    const swarm = await swarmOf(t, 3)
    const [a, b] = [0, 1]
    // a alone writes /x.bin: its coding waits for live nodes
    await stopNode(swarm, 1)
    await stopNode(swarm, 2)
    const ours = randomBytes(600 * 1024)
    await (swarm.nodes[a] as ShoalNode).components.files.add('/x.bin', once(ours), { chunker: CHUNKER, pin: 'replicas:3' })
    await stopNode(swarm, a)
    // then b alone writes /x.bin too, concurrently: neither saw the other's
    swarm.nodes[b] = await startNode(swarm.repos[b])
    const theirs = randomBytes(600 * 1024)
    await (swarm.nodes[b] as ShoalNode).components.files.add('/x.bin', once(theirs), { chunker: CHUNKER, pin: 'replicas:3' })
    // all three together: one version stays at /x.bin, the other is a conflict copy, uncoded
    swarm.nodes[a] = await startNode(swarm.repos[a])
    swarm.nodes[2] = await startNode(swarm.repos[2])
    await connectAll(live(swarm))
    await until('the conflict on every node', async () => (await Promise.all(live(swarm).map(async n => (await n.components.namespace.conflicts()).length))).every(n => n === 1))
    const [conflict] = await (swarm.nodes[a] as ShoalNode).components.namespace.conflicts()
    const copy = await (swarm.nodes[a] as ShoalNode).components.namespace.stat(conflict.copy)
    assert.ok(copy.type === 'file')
    assert.equal(copy.pin?.manifest, undefined, 'a copy is not coded')
    const root = CID.parse(copy.cid)
    const writerIndex = sha(await readAll(swarm.nodes[a] as ShoalNode, conflict.copy)) === sha(ours) ? a : b
    const others = live(swarm).filter(n => n !== swarm.nodes[writerIndex])
    const held = async (n: ShoalNode): Promise<boolean> => (await localPresence(n.components.blockstore, root)).missing === 0

    // replicas:3 over three nodes: every node keeps it whole, after a pass and a collection
    for (const n of live(swarm)) {
      const report = await n.components.durability.repair()
      assert.deepEqual(report.errors, [])
    }
    for (const n of live(swarm)) await n.components.durability.collectGarbage()
    for (const n of live(swarm)) assert.ok(await held(n), `${n.components.peerId} holds the copy whole`)

    // the writer's disk is lost: the copy still reads, with its bytes, on the others
    await stopNode(swarm, writerIndex)
    for (const n of others) {
      assert.equal(sha(await readAll(n, conflict.copy)), sha(writerIndex === a ? ours : theirs))
    }
  })
})
