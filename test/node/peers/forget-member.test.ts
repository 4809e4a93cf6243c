/**
 * `peers forget`: a member whose node is gone for good stops holding back
 * the collection of removed files' shards and namespace compaction on the
 * node that forgot it, at once instead of after the member timeout
 * (node/peers/forget-member.ts). Three real nodes (libp2p on 127.0.0.1,
 * LevelDB and packs in temp repos).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { parseChunker } from '../../../node/content/index.js'
import { forgetMember } from '../../../node/peers/forget-member.js'
import { GRACE_MS, connectAll, live, once, startNode, stopNode, swarmOf, until } from '../../helpers/swarm.js'
import type { ShoalNode } from '../../../node/node.js'

const TEST = { timeout: 120_000 }

/** `peers forget PEER` on `node`, as the API runs it. */
async function forget (node: ShoalNode, peer: string): ReturnType<typeof forgetMember> {
  const { components } = node
  return await forgetMember({ self: components.peerId, namespace: components.namespace, libp2p: components.libp2p }, peer)
}

/** Rejects with an error of `name`. */
async function rejectsNamed (promise: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(promise, (err: any) => { assert.equal(err?.name, name, String(err?.message)); return true })
}

describe('peers forget', () => {
  it('a member gone for good no longer holds back gc and compaction where it was forgotten; refused for a live, unknown or own id; a member that comes back counts again', TEST, async t => {
    const swarm = await swarmOf(t, 3)
    const [a, b] = live(swarm)
    const goneIndex = 2
    const goneId = swarm.nodes[goneIndex]?.components.peerId as string
    await until('every peer connected', async () => a.components.libp2p.getPeers().length === 2)
    await a.components.files.add('/f.bin', once(randomBytes(512 * 1024)), { chunker: parseChunker('size-262144'), pin: 'ec:2+1', wait: true })
    await until('/f.bin on every node', async () => (await Promise.all(live(swarm).map(async n => await n.components.namespace.lookup('/f.bin')))).every(e => e !== undefined))

    // refused: a connected peer, this node's own id, a malformed id, a peer no member here
    await rejectsNamed(forget(a, b.components.peerId), 'PeerConnectedError')
    await rejectsNamed(forget(a, a.components.peerId), 'InvalidArgumentError')
    await rejectsNamed(forget(a, 'not-a-peer-id'), 'InvalidArgumentError')
    await rejectsNamed(forget(a, '12D3KooWEhKa5QJ5FsDmcHEE6UV5ApaLhCd6Q4SJ2TAyMtYzLdrF'), 'NotFoundError')

    // the third node's disk is lost; the file is removed meanwhile
    await stopNode(swarm, goneIndex)
    await a.components.namespace.remove('/f.bin')
    await until('/f.bin gone on b', async () => await b.components.namespace.lookup('/f.bin') === undefined)
    for (const n of [a, b]) await n.components.durability.collectGarbage()
    await new Promise(resolve => setTimeout(resolve, GRACE_MS + 500))
    for (const n of [a, b]) {
      const r = await n.components.durability.collectGarbage()
      assert.equal(r.forgotten, 0, 'past the grace period, but a member has not seen the removal')
      assert.deepEqual(r.waitingOn, [goneId])
    }
    const own = a.components.namespace.clockNow()[a.components.peerId]
    assert.ok((a.components.namespace.stableClock()[a.components.peerId] ?? 0) < own, 'compaction waits for the gone member')

    // forgotten on a: a's collection and compaction go on; b, which was not told, still waits
    const result = await forget(a, goneId)
    assert.equal(result.peer, goneId)
    assert.equal(result.unapplied, 0)
    assert.ok(result.seen > 0)
    assert.deepEqual(a.components.namespace.forgottenMembers().map(m => m.peer), [goneId])
    assert.equal(a.components.namespace.stableClock()[a.components.peerId], own, 'compaction no longer waits for it')
    const collected = await a.components.durability.collectGarbage()
    assert.equal(collected.forgotten, 1, 'the removed file\'s manifest is forgotten on a')
    assert.deepEqual(collected.waitingOn, [])
    const kept = await b.components.durability.collectGarbage()
    assert.equal(kept.forgotten, 0)
    assert.deepEqual(kept.waitingOn, [goneId], 'each node forgets a member on its own')

    // the mark survives a restart of a
    await stopNode(swarm, 0)
    swarm.nodes[0] = await startNode(swarm.repos[0])
    const a2 = swarm.nodes[0]
    assert.deepEqual(a2.components.namespace.forgottenMembers().map(m => m.peer), [goneId])

    // the node comes back after all: heard from itself, it is a member again
    swarm.nodes[goneIndex] = await startNode(swarm.repos[goneIndex])
    await connectAll(live(swarm))
    await until('the member heard from again', async () => a2.components.namespace.forgottenMembers().length === 0)
  })
})
