/**
 * Namespace sync between real libp2p hosts on 127.0.0.1, each with its
 * replica in a real LevelDB: concurrent writers, a partition healed, a node
 * offline through 1,000 writes, a forged entry on the gossip topic, and a
 * trusted member serving a validly signed hostile snapshot.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { pino } from 'pino'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'
import { LevelKV, createNamespace, signerFromKey, type Replica } from '../../../node/namespace/index.js'
import { versionsKey, visibleKey } from '../../../node/namespace/tree.js'
import { createLibp2pSync } from '../../../node/namespace/libp2p-network.js'
import type { NamespaceSync } from '../../../node/namespace/sync.js'
import { sha256 } from '../../../node/blocks/verify.js'
import {
  NAMESPACE_TOPIC, decodeEntry, decodeSyncRequest, encodeEntry, encodeEntryBody, encodeHeadsMessage, encodeSnapshotRoot,
  encodeSnapshotRootBody, encodeSyncResponse, type SnapshotRoot
} from '../../../protocol/namespace.js'
import { Libp2pSyncNetwork } from '../../../node/namespace/libp2p-network.js'
import { cborCID } from '../../../node/blocks/verify.js'
import { encodeTreeNode } from '../../../protocol/snapshot-tree.js'
import { defer, tempDir, type CleanupContext } from '../../helpers/temp.js'
import type { PrivateKey } from '@libp2p/interface'

const logger = pino({ level: 'silent' })

interface TestNode {
  key: PrivateKey
  dir: string
  blocked: Set<string>
  libp2p: ShoalLibp2p
  replica: Replica
  sync: NamespaceSync
  stop: () => Promise<void>
}

/** A host + replica + sync; `blocked` peers can neither dial it nor be dialled. */
async function startNode (t: CleanupContext, init: { key?: PrivateKey, dir?: string, compactAfter?: number } = {}): Promise<TestNode> {
  const key = init.key ?? await generateKeyPair('Ed25519')
  const dir = init.dir ?? join(await tempDir(t), 'ns')
  const blocked = new Set<string>()
  const libp2p = await createHost({
    privateKey: key,
    connectionGater: {
      denyDialPeer: async (peer) => blocked.has(peer.toString()),
      denyInboundEncryptedConnection: async (peer) => blocked.has(peer.toString())
    }
  })
  const replica = createNamespace({ path: dir, signer: signerFromKey(key), logger, options: { compactAfter: init.compactAfter ?? 10_000 } })
  await replica.open()
  const sync = createLibp2pSync({ replica, libp2p, logger, options: { interval: 500, requestTimeout: 5_000 } })
  await sync.start()
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await sync.stop()
    await libp2p.stop()
    await replica.close()
  }
  defer(t, stop)
  return { key, dir, blocked, libp2p, replica, sync, stop }
}

/**
 * Connect `a` to `b`. A connection either side opened meanwhile (the DHT
 * dials peers it learns of) counts: libp2p's dial of an address can hang
 * until its timeout when the other side dialled at the same moment, with
 * the connection already open.
 */
async function connect (a: TestNode, b: TestNode): Promise<void> {
  const connected = (): boolean => a.libp2p.getConnections(b.libp2p.peerId).length > 0
  if (connected()) return
  try {
    await a.libp2p.dial(b.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
  } catch (err) {
    if (!connected()) throw err
  }
}

function cidOf (text: string): string {
  return CID.createV1(0x55, Digest.create(0x12, sha256(new TextEncoder().encode(text)))).toString()
}

function file (text: string, mtime = Date.now()): { cid: string, size: number, mode: number, mtime: number } {
  return { cid: cidOf(text), size: text.length, mode: 0o644, mtime }
}

async function tree (r: Replica): Promise<string> {
  const out: string[] = []
  for await (const e of r.walk('/')) out.push(e.type === 'dir' ? `${e.path}/` : `${e.path} ${e.cid}`)
  return out.join('\n')
}

/** Poll until every replica has the same clock and tree, for at most `ms`. */
async function waitConverged (nodes: TestNode[], ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms
  for (;;) {
    const trees = await Promise.all(nodes.map(async n => await tree(n.replica)))
    const clocks = nodes.map(n => JSON.stringify(Object.entries(n.replica.state().clock).sort()))
    if (trees.every(x => x === trees[0]) && clocks.every(c => c === clocks[0])) return trees[0]
    if (Date.now() > deadline) assert.fail(`not converged after ${ms} ms:\n${trees.map((x, i) => `--- node ${i} ${clocks[i]}\n${x}`).join('\n')}`)
    await sleep(100)
  }
}

/** Cut the swarm between two groups (no connection survives or forms). */
async function partition (left: TestNode[], right: TestNode[]): Promise<void> {
  for (const a of left) {
    for (const b of right) {
      a.blocked.add(b.libp2p.peerId.toString())
      b.blocked.add(a.libp2p.peerId.toString())
      await a.libp2p.hangUp(b.libp2p.peerId).catch(() => {})
    }
  }
}

function heal (nodes: TestNode[]): void {
  for (const n of nodes) n.blocked.clear()
}

describe('namespace sync over libp2p', { timeout: 120_000 }, () => {
  it('5 nodes with concurrent writers converge, and concurrent writes to one path leave conflict copies', async (t) => {
    const nodes: TestNode[] = []
    for (let i = 0; i < 5; i++) nodes.push(await startNode(t))
    // written before the nodes meet: certainly concurrent
    for (const [i, n] of nodes.entries()) await n.replica.putFile('/shared.txt', file(`shared by ${i}`))
    for (let i = 1; i < 5; i++) await connect(nodes[i], nodes[0])
    await connect(nodes[1], nodes[2])
    await connect(nodes[3], nodes[4])
    await Promise.all(nodes.map(async (n, i) => {
      for (let j = 0; j < 20; j++) await n.replica.putFile(`/node${i}/file${j}`, file(`${i}-${j}`))
    }))
    const final = await waitConverged(nodes)
    assert.equal(final.split('\n').filter(l => l.startsWith('/node')).length, 5 * 21)
    for (const n of nodes) {
      const conflicts = await n.replica.conflicts()
      assert.equal(conflicts.length, 4, 'one winner and four conflict copies')
      assert.equal(new Set(conflicts.map(c => c.cid)).size, 4)
    }
    // converged replicas, each with the concurrent versions in the order it applied them: no state check finds a divergence
    for (const n of nodes) assert.equal(await n.sync.stateCheck.check(), 'agreed')
    for (const n of nodes) assert.equal(n.sync.stateCheck.stats.stateChecksDiverged + n.sync.stateCheck.stats.stateChecksRepaired, 0)
  })

  it('a partition with writes on both sides heals into one tree; nothing is lost and conflicts are visible', async (t) => {
    const nodes: TestNode[] = []
    for (let i = 0; i < 4; i++) nodes.push(await startNode(t))
    for (let i = 1; i < 4; i++) await connect(nodes[i], nodes[0])
    await connect(nodes[2], nodes[3])
    await nodes[0].replica.putFile('/doc.txt', file('original'))
    await nodes[0].replica.putFile('/other.txt', file('other'))
    await waitConverged(nodes)
    const [left, right] = [nodes.slice(0, 2), nodes.slice(2)]
    await partition(left, right)
    await nodes[0].replica.putFile('/doc.txt', file('left edit'))
    await nodes[1].replica.putFile('/left/only', file('left'))
    await nodes[2].replica.putFile('/doc.txt', file('right edit'))
    await nodes[1].replica.putFile('/other.txt', file('left other edit'))
    await nodes[3].replica.putFile('/right/only', file('right'))
    await waitConverged(right)
    await nodes[3].replica.remove('/other.txt')
    await waitConverged(left)
    await waitConverged(right)
    assert.equal(await nodes[0].replica.lookup('/right/only'), undefined, 'the partition held')
    heal(nodes)
    await connect(nodes[2], nodes[0])
    const final = await waitConverged(nodes)
    assert.match(final, /\/left\/only/)
    assert.match(final, /\/right\/only/)
    const cids = new Set([...(await nodes[3].replica.conflicts()).map(c => c.cid), ((await nodes[3].replica.stat('/doc.txt')) as any).cid])
    assert.ok(cids.has(cidOf('left edit')) && cids.has(cidOf('right edit')), 'both concurrent edits are readable')
    const other = await nodes[3].replica.stat('/other.txt')
    assert.equal(other.type === 'file' && other.cid, cidOf('left other edit'), 'a modification beats a concurrent delete')
  })

  it('a node offline through 1,000 writes catches up after restart', async (t) => {
    const [a, b] = [await startNode(t), await startNode(t)]
    await connect(b, a)
    await a.replica.putFile('/before', file('before'))
    await waitConverged([a, b])
    const { key, dir } = b
    await b.stop()
    for (let i = 0; i < 1000; i++) await a.replica.putFile(`/many/${i % 10}/f${i}`, file(`w${i}`))
    const b2 = await startNode(t, { key, dir })
    assert.equal(await b2.replica.lookup('/many'), undefined)
    await connect(b2, a)
    const final = await waitConverged([a, b2])
    assert.equal(final.split('\n').length, 1 + 1 + 10 + 1000)
    assert.ok(b2.sync.stats.pages >= 1)
  })

  it('a forged entry on the gossip topic is rejected by every node and changes nothing', async (t) => {
    const nodes: TestNode[] = []
    for (let i = 0; i < 3; i++) nodes.push(await startNode(t))
    for (let i = 1; i < 3; i++) await connect(nodes[i], nodes[0])
    const sent: Uint8Array[] = []
    nodes[0].replica.onLocalEntries(e => sent.push(...e))
    await nodes[0].replica.putFile('/real', file('real'))
    const before = await waitConverged(nodes)
    // mallory re-signs node 0's next entry with its own key
    const mallory = await generateKeyPair('Ed25519')
    const real = decodeEntry(sent[0])
    const body = { v: 2 as const, author: real.author, time: real.time, seq: 2, parents: [], deps: [], ops: [{ ...real.ops[0], path: '/forged' }] }
    const forged = encodeEntry({ ...body, sig: await mallory.sign(encodeEntryBody(body)) })
    const attacker = await createHost({ privateKey: mallory })
    defer(t, async () => { await attacker.stop() })
    attacker.services.pubsub.subscribe(NAMESPACE_TOPIC)
    for (const n of nodes) await attacker.dial(n.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
    const deadline = Date.now() + 15_000
    while (nodes.some(n => n.replica.rejected === 0) && Date.now() < deadline) {
      await attacker.services.pubsub.publish(NAMESPACE_TOPIC, encodeHeadsMessage({ v: 1, type: 'heads', clock: { [real.author]: 2 }, heads: [], entries: [forged] })).catch(() => {})
      await sleep(200)
    }
    for (const n of nodes) {
      assert.ok(n.replica.rejected >= 1, 'the forged entry was seen and rejected')
      assert.equal(await tree(n.replica), before)
      assert.equal(n.replica.state().clock[real.author], 1)
    }
    // a peer that keeps sending them is scored down until it is shunned: its gossip is then dropped unread
    const forger = attacker.peerId.toString()
    const until = Date.now() + 20_000
    while (nodes.some(n => n.sync.stats.shunned === 0) && Date.now() < until) {
      await attacker.services.pubsub.publish(NAMESPACE_TOPIC, encodeHeadsMessage({ v: 1, type: 'heads', clock: { [real.author]: 2 }, heads: [], entries: [forged] })).catch(() => {})
      await sleep(100)
    }
    for (const n of nodes) {
      assert.ok(n.sync.scores.shunned(forger), 'the forger is shunned')
      assert.ok(n.sync.stats.shunned > 0, 'its later gossip was dropped unread')
      assert.equal(n.sync.scores.shunned(nodes[0].libp2p.peerId.toString()), false, 'the honest author is not')
      assert.equal(await tree(n.replica), before)
    }
    // honest writes still flow
    await nodes[1].replica.putFile('/after', file('after'))
    const after = await waitConverged(nodes)
    assert.ok(after.includes('/after '), after)
  })

  it('a node whose store lost a path\'s rows gets them back from two peers with the same heads (state checks), and they change nothing', async (t) => {
    const nodes = [await startNode(t), await startNode(t), await startNode(t)]
    await connect(nodes[1], nodes[0])
    await connect(nodes[2], nodes[0])
    await connect(nodes[2], nodes[1])
    await nodes[0].replica.putFile('/kept/one.txt', file('one'))
    await nodes[0].replica.putFile('/kept/two.txt', file('two'))
    await nodes[1].replica.putFile('/b.txt', file('b'))
    const before = await waitConverged(nodes)
    // a's disk loses the rows of one path, heads and log intact: no clock says anything is missing
    const { key, dir } = nodes[0]
    await nodes[0].stop()
    const kv = new LevelKV(dir)
    await kv.open()
    await kv.batch([{ type: 'del', key: versionsKey('/kept/one.txt') }, { type: 'del', key: visibleKey('/kept/one.txt') }], true)
    await kv.close()
    const a = await startNode(t, { key, dir })
    assert.equal(await a.replica.lookup('/kept/one.txt'), undefined)
    await connect(a, nodes[1])
    await connect(a, nodes[2])
    const deadline = Date.now() + 30_000
    while (await tree(a.replica) !== before) {
      if (Date.now() > deadline) assert.fail(`a did not get its rows back in 30 s: ${JSON.stringify(a.sync.stateCheck.stats)}`)
      await sleep(100)
    }
    assert.ok(a.sync.stateCheck.stats.stateChecksRepaired >= 1)
    for (const n of nodes.slice(1)) {
      assert.equal(await tree(n.replica), before)
      assert.equal(n.sync.stateCheck.stats.stateChecksRepaired, 0, 'the intact nodes repaired nothing')
    }
  })

  it('a trusted member serving a signed empty snapshot with inflated counters changes nothing anywhere and hides no later write', async (t) => {
    const nodes: TestNode[] = []
    for (let i = 0; i < 3; i++) nodes.push(await startNode(t))
    for (let i = 1; i < 3; i++) await connect(nodes[i], nodes[0])
    await nodes[0].replica.putFile('/team/a', file('a'))
    await nodes[1].replica.putFile('/team/b', file('b'))
    const before = await waitConverged(nodes)
    // mallory (trusted: every node trusts every writer here) answers every pull with its own signed snapshot:
    // an empty namespace at counters far past everyone's
    const malloryKey = await generateKeyPair('Ed25519')
    const mallory = signerFromKey(malloryKey).id
    const claimed = Object.fromEntries(Object.keys(nodes[0].replica.state().clock).map(a => [a, 1000]))
    const leaf = encodeTreeNode({ v: 1, leaf: [] })
    const leafCid = cborCID(leaf)
    const body: Omit<SnapshotRoot, 'sig'> = { v: 1, author: mallory, time: Date.now(), clock: { ...claimed, [mallory]: 1 }, heads: [], headDots: [], count: 0, tree: leafCid, tips: [] }
    const rootBytes = encodeSnapshotRoot({ ...body, sig: await malloryKey.sign(encodeSnapshotRootBody(body)) })
    const root = cborCID(rootBytes)
    const host = await createHost({ privateKey: malloryKey })
    defer(t, async () => { await host.stop() })
    const network = new Libp2pSyncNetwork({ libp2p: host, logger })
    let served = 0
    await network.handle({
      message: () => {},
      connected: () => {},
      request: async (_from, data) => {
        const request = decodeSyncRequest(data)
        served++
        if (request.type === 'blocks') return encodeSyncResponse({ v: 1, type: 'blocks', id: request.id, blocks: prefix(request.cids, c => c.equals(root) ? rootBytes : c.equals(leafCid) ? leaf : undefined) })
        return encodeSyncResponse({ v: 1, type: 'snapshot', id: request.id, root, clock: body.clock })
      }
    })
    defer(t, async () => { await network.unhandle() })
    for (const n of nodes) await host.dial(n.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
    // every node pulls from a peer that connects, and from a random one each round
    const deadline = Date.now() + 20_000
    while (served < 6 && Date.now() < deadline) await sleep(100)
    assert.ok(served >= 6, `mallory was asked ${served} times`)
    // a snapshot a node cannot take is not asked for again and again within one pull
    await sleep(1000)
    assert.ok(served < 150, `mallory was asked ${served} times`)
    for (const n of nodes) {
      // no counter it claims is proven by its author's signed entry (mallory has written none): nothing to merge,
      // so no node took its state — not even as conflict copies of what it left out
      assert.equal(await tree(n.replica), before)
      for (const [author, n2] of Object.entries(n.replica.state().clock)) assert.ok(n2 < 1000, `${author} at ${n2}`)
      assert.equal(n.replica.state().clock[mallory], undefined)
    }
    // later writes still reach everyone
    await nodes[2].replica.putFile('/team/c', file('c'))
    const after = await waitConverged(nodes)
    assert.ok(after.includes('/team/c '), after)
  })
})

/** The blocks of `cids` that `get` has, up to the first it lacks (a `blocks` answer is a prefix of what was asked). */
function prefix (cids: CID[], get: (cid: CID) => Uint8Array | undefined): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const cid of cids) {
    const bytes = get(cid)
    if (bytes === undefined) break
    out.push(bytes)
  }
  return out
}
