/**
 * State checks (node/namespace/state-check.ts): replicas whose heads are
 * equal compare the roots of their states' trees, and a replica that lost
 * rows of its state gets them back when two peers agree against it. Real
 * replicas and NamespaceSync over an in-process network; the lost rows are
 * deleted from the replica's store, as a damaged disk would lose them.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { MemoryKV, type Replica } from '../../../node/namespace/index.js'
import { NamespaceSync, type SyncHandlers, type SyncNetwork, type SyncOptions } from '../../../node/namespace/sync.js'
import { versionsKey, visibleKey } from '../../../node/namespace/tree.js'
import { StateTrees } from '../../../node/namespace/state-tree.js'
import { sha256 } from '../../../node/blocks/verify.js'
import {
  HEADS_DIGEST_BYTES, decodeSyncRequest, encodeSyncRequest, encodeSyncResponse, headsDigest
} from '../../../protocol/namespace.js'
import { VirtualTime } from '../../../simulations/virtual-time.js'
import { file, replica, silent, syncAll, tree, type Sim } from './helpers.js'
import { pino } from 'pino'
const debug = process.env.STATE_CHECK_DEBUG === '1' ? pino({ level: 'debug' }) : silent

/** Replicas wired to each other by name; `override` answers a node's requests instead of its sync. */
function mesh (): {
  endpoint: (self: string, peers: () => string[]) => SyncNetwork
  override: Map<string, (from: string, data: Uint8Array) => Promise<Uint8Array>>
} {
  const handlers = new Map<string, SyncHandlers>()
  const override = new Map<string, (from: string, data: Uint8Array) => Promise<Uint8Array>>()
  const endpoint = (self: string, peers: () => string[]): SyncNetwork => ({
    handle: async h => { handlers.set(self, h) },
    unhandle: async () => { handlers.delete(self) },
    publish: async () => {},
    request: async (to, data, signal) => {
      const fake = override.get(to)
      if (fake !== undefined) {
        // as a real network does: an aborted request rejects at once
        return await new Promise<Uint8Array>((resolve, reject) => {
          const onAbort = (): void => { reject(new Error('aborted')) }
          if (signal.aborted) { onAbort(); return }
          signal.addEventListener('abort', onAbort, { once: true })
          fake(self, data).then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
        })
      }
      const h = handlers.get(to)
      if (h === undefined) throw new Error(`${to} is not reachable`)
      return await h.request(self, data)
    },
    peers
  })
  return { endpoint, override }
}

interface Node { kv: MemoryKV, replica: Replica, sync: NamespaceSync }

/** `n` replicas, converged on a few writes by each, with their syncs started (no rounds: checks are run by hand). */
async function swarm (n: number, t: { after: (fn: () => Promise<void>) => void }, options: SyncOptions = {}): Promise<{ nodes: Node[], net: ReturnType<typeof mesh> }> {
  const sim: Sim = { now: 1_000 }
  const net = mesh()
  const nodes: Node[] = []
  for (let i = 0; i < n; i++) {
    const kv = new MemoryKV()
    nodes.push({ kv, replica: await replica(sim, {}, { kv }), sync: undefined as unknown as NamespaceSync })
  }
  for (const [i, node] of nodes.entries()) {
    await node.replica.putFile(`/n${i}/a.txt`, file(`a${i}`))
    await node.replica.putFile(`/n${i}/b.txt`, file(`b${i}`))
  }
  await syncAll(nodes.map(x => x.replica))
  for (const node of nodes) {
    const others = (): string[] => nodes.filter(x => x !== node).map(x => x.replica.id)
    node.sync = new NamespaceSync({ replica: node.replica, network: net.endpoint(node.replica.id, others), timers: new VirtualTime(), random: () => 0.5, logger: debug, clock: { now: () => sim.now } }, { interval: 1e9, ...options })
    await node.sync.start()
  }
  t.after(async () => { for (const node of nodes) await node.sync.stop() })
  return { nodes, net }
}

/** Delete a path's rows (its versions and its visible name) from a replica's store: what a damaged disk loses. */
async function loseRows (node: Node, path: string): Promise<void> {
  await node.kv.batch([{ type: 'del', key: versionsKey(path) }, { type: 'del', key: visibleKey(path) }])
}

/** The content CID of the file at `path`, undefined when none is visible there. */
async function cidAt (node: Node, path: string): Promise<string | undefined> {
  const entry = await node.replica.lookup(path)
  return entry?.type === 'file' ? entry.cid : undefined
}

describe('namespace state checks', () => {
  it('replicas with the same heads and the same state agree in one request', async (t) => {
    const { nodes } = await swarm(3, t)
    assert.equal(await nodes[0].sync.stateCheck.check(), 'agreed')
    assert.equal(nodes[0].sync.stateCheck.stats.divergentPaths, 0)
  })

  it('a replica that lost a path\'s rows gets them back when two peers with its heads agree against it', async (t) => {
    const { nodes } = await swarm(3, t)
    const [a, b, c] = nodes
    const before = await tree(b.replica)
    await loseRows(a, '/n1/a.txt')
    assert.equal(await a.replica.lookup('/n1/a.txt'), undefined, 'the rows are gone')
    const headsBefore = a.replica.state().heads.map(String)
    let changed = 0
    a.replica.onRemoteChange(() => { changed++ })

    assert.equal(await a.sync.stateCheck.check(), 'repaired')
    assert.equal(await cidAt(a, '/n1/a.txt'), file('a1').cid)
    assert.deepEqual(await tree(a.replica), before, 'the whole tree is the peers\' again')
    assert.deepEqual(a.replica.state().heads.map(String), headsBefore, 'heads unchanged: only derived rows were written')
    assert.equal(a.sync.stateCheck.stats.statePathsRepaired, 1)
    assert.equal(changed, 1, 'readers were told the tree changed')
    assert.deepEqual(await tree(b.replica), before)
    assert.deepEqual(await tree(c.replica), before)
    // the repaired state is the peers' state: the next check agrees
    assert.equal(await a.sync.stateCheck.check(), 'agreed')
  })

  it('finds the lost rows of a path written after the last snapshot', async (t) => {
    const { nodes } = await swarm(3, t)
    const [a] = nodes
    for (const node of nodes) await node.replica.snapshot()
    await nodes[2].replica.putFile('/late.txt', file('late'))
    await syncAll(nodes.map(x => x.replica))
    await loseRows(a, '/late.txt')
    assert.equal(await a.sync.stateCheck.check(), 'repaired')
    assert.equal(await cidAt(a, '/late.txt'), file('late').cid)
  })

  it('finds the lost rows of a path not changed since the last snapshot: the rows are checked against the snapshot first', async (t) => {
    const { nodes } = await swarm(3, t)
    const [a] = nodes
    for (const node of nodes) await node.replica.snapshot()
    await loseRows(a, '/n1/a.txt')
    assert.equal(await a.sync.stateCheck.check(), 'repaired')
    assert.equal(await cidAt(a, '/n1/a.txt'), file('a1').cid)
    assert.equal(a.sync.stateCheck.stats.rowScrubs, 1)
    assert.equal(a.sync.stateCheck.stats.strayPaths, 1, 'the pass over the rows marked the one path')
    assert.equal(await a.sync.stateCheck.check(), 'agreed', 'and the next check, without a pass, agrees')
    assert.equal(a.sync.stateCheck.stats.rowScrubs, 1)
  })

  it('without the pass over the rows, such a loss is not seen (what the pass is for)', async (t) => {
    const { nodes } = await swarm(3, t, { stateCheck: { scrubEvery: 0 } })
    const [a] = nodes
    for (const node of nodes) await node.replica.snapshot()
    await loseRows(a, '/n1/a.txt')
    assert.equal(await a.sync.stateCheck.check(), 'agreed', 'the state\'s tree is the snapshot\'s, which still holds the path')
    assert.equal(await a.replica.lookup('/n1/a.txt'), undefined)
  })

  it('with one peer to compare with, a divergence is reported and nothing is changed', async (t) => {
    const { nodes } = await swarm(2, t)
    const [a, b] = nodes
    await loseRows(a, '/n1/b.txt')
    const treeA = await tree(a.replica)
    const treeB = await tree(b.replica)
    assert.equal(await a.sync.stateCheck.check(), 'diverged')
    assert.equal(a.sync.stateCheck.stats.divergentPaths, 1)
    assert.deepEqual(await tree(a.replica), treeA, 'a unchanged')
    assert.equal(await b.sync.stateCheck.check(), 'diverged', 'b sees the same divergence from its side')
    assert.deepEqual(await tree(b.replica), treeB, 'b unchanged: it does not take a\'s loss')
  })

  it('never removes a version whose signed entry the replica holds, whatever two peers say', async (t) => {
    const { nodes } = await swarm(3, t)
    const [a, b, c] = nodes
    await loseRows(b, '/n0/a.txt')
    await loseRows(c, '/n0/a.txt')
    assert.equal(await a.sync.stateCheck.check(), 'diverged')
    assert.equal(await cidAt(a, '/n0/a.txt'), file('a0').cid, 'a\'s own write stays')
    assert.equal(a.sync.stateCheck.stats.statePathsRepaired, 0)
  })

  it('replicas that applied concurrent versions of a path in different orders agree', async (t) => {
    const { nodes } = await swarm(3, t)
    const [a, b, c] = nodes
    await a.replica.putFile('/same.txt', file('from a'))
    await b.replica.putFile('/same.txt', file('from b'))
    await syncAll([a.replica, b.replica, c.replica])
    assert.deepEqual(a.replica.state().heads.map(String), b.replica.state().heads.map(String))
    const roots = await Promise.all([a, b].map(async n => (await n.replica.checkedState()).digest.root.toString()))
    assert.notEqual(roots[0], roots[1], 'a and b hold the two versions in the order each applied them: their roots differ')
    for (const node of nodes) assert.equal(await node.sync.stateCheck.check(), 'agreed')
  })

  it('replicas with different heads are not compared', async (t) => {
    const { nodes } = await swarm(2, t)
    await nodes[1].replica.putFile('/only-b.txt', file('only b'))
    assert.equal(await nodes[0].sync.stateCheck.check(), 'incomparable')
    assert.equal(await nodes[0].replica.lookup('/only-b.txt'), undefined, 'a state check pulls nothing')
  })

  it('a peer whose tree nodes do not verify is scored down and changes nothing', async (t) => {
    const { nodes, net } = await swarm(3, t)
    const [a, b, c] = nodes
    await loseRows(a, '/n2/a.txt')
    const treeA = await tree(a.replica)
    // b and c answer with the same forged root; its node's bytes do not hash to it
    const forged = CID.createV1(0x71, Digest.create(0x12, sha256(new TextEncoder().encode('forged'))))
    for (const liar of [b, c]) {
      net.override.set(liar.replica.id, async (_from, data) => {
        const request = decodeSyncRequest(data)
        if (request.type === 'state') return encodeSyncResponse({ v: 1, type: 'state', id: request.id, heads: request.heads, root: forged })
        if (request.type === 'blocks') return encodeSyncResponse({ v: 1, type: 'blocks', id: request.id, blocks: [new Uint8Array([0xa0])] })
        throw new Error('not served')
      })
    }
    assert.equal(await a.sync.stateCheck.check(), 'skipped')
    assert.deepEqual(await tree(a.replica), treeA, 'nothing changed')
    assert.ok(a.sync.scores.score(b.replica.id) >= 5 || a.sync.scores.score(c.replica.id) >= 5, 'the peer was scored as for a bad snapshot')
  })

  it('a check waiting on a peer that never answers ends when sync stops, changing nothing', async (t) => {
    const { nodes, net } = await swarm(2, t)
    const [a, b] = nodes
    net.override.set(b.replica.id, async () => await new Promise<Uint8Array>(() => {}))
    const treeA = await tree(a.replica)
    const check = a.sync.stateCheck.check()
    await new Promise(resolve => setImmediate(resolve))
    await a.sync.stop()
    assert.equal(await check, 'incomparable')
    assert.deepEqual(await tree(a.replica), treeA)
  })

  it('a pull waiting on a peer that never answers ends when sync stops (a daemon stop waited out its request timeout)', async (t) => {
    const { nodes, net } = await swarm(2, t)
    const [a, b] = nodes
    net.override.set(b.replica.id, async () => await new Promise<Uint8Array>(() => {}))
    // b has news a lacks: a's round pulls from it
    await b.replica.putFile('/n1/c.txt', file('c1'))
    const round = a.sync.round()
    await new Promise(resolve => setImmediate(resolve))
    const stop = a.sync.stop().then(() => 'stopped')
    assert.equal(await Promise.race([stop, new Promise(resolve => setTimeout(resolve, 5_000, 'still waiting'))]), 'stopped')
    await round.catch(() => {})
  })

  it('a state whose tree would pass the memory bound is refused with a typed error, and not built again until the next snapshot', async () => {
    let builds = 0
    let snapshot: string | undefined
    const trees = new StateTrees({
      digest: () => new Uint8Array(32),
      exclusive: async fn => await fn(),
      build: async put => {
        builds++
        for (let i = 0; i < 4; i++) await put(CID.createV1(0x71, Digest.create(0x12, sha256(new Uint8Array([i])))), new Uint8Array(600))
        return { root: CID.createV1(0x71, Digest.create(0x12, sha256(new Uint8Array([9])))), count: 4 }
      },
      snapshot: async () => snapshot
    }, { maxBytes: 1000 })
    await assert.rejects(trees.current(), { name: 'StateTooLargeError' })
    await assert.rejects(trees.current(), { name: 'StateTooLargeError' })
    assert.equal(builds, 1, 'the second call did not build')
    snapshot = 'after a compaction'
    await assert.rejects(trees.current(), { name: 'StateTooLargeError' })
    assert.equal(builds, 2, 'a new snapshot is tried again')
  })

  it('a state request that does not decode gets a typed error and changes nothing', async (t) => {
    const { nodes } = await swarm(2, t)
    assert.throws(() => encodeSyncRequest({ v: 1, type: 'state', id: 1, heads: new Uint8Array(5) }), { name: 'InvalidMessageError' })
    assert.throws(() => decodeSyncRequest(encodeSyncResponse({ v: 1, type: 'unlike', id: 1, heads: new Uint8Array(HEADS_DIGEST_BYTES) })), { name: 'InvalidMessageError' })
    const { heads, clock } = nodes[0].replica.state()
    const digest = headsDigest(heads, clock)
    assert.equal(digest.byteLength, HEADS_DIGEST_BYTES)
    assert.deepEqual(nodes[0].replica.headsDigest(), digest)
    assert.deepEqual(headsDigest([...heads].reverse(), Object.fromEntries(Object.entries(clock).reverse())), digest, 'the digest does not depend on the order of heads or authors')
    assert.notDeepEqual(headsDigest(heads, { ...clock, someone: 1 }), digest, 'a clock that applied other entries under the same heads is another state')
  })
})
