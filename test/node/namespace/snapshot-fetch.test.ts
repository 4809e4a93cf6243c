/**
 * A snapshot's tree fetched from several peers (snapshot-fetch.ts): the
 * routing rule on its own, then real replicas and NamespaceSync on the
 * virtual network of the simulations — a fresh node's load spread over the
 * serving peer and others, helpers that answer with errors, wrong bytes or
 * not at all, and an untrusted peer that holds the tree and is never asked.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { CID } from 'multiformats/cid'
import { MemoryKV, Replica, peerIdVerifier, signerFromKey, type TrustPolicy } from '../../../node/namespace/index.js'
import { NamespaceSync, type SyncHandlers, type SyncNetwork } from '../../../node/namespace/sync.js'
import { chooseHelpers, spreadFetch, type SnapshotFetchStats } from '../../../node/namespace/snapshot-fetch.js'
import { cborCID } from '../../../node/blocks/verify.js'
import { decodeSyncRequest, decodeSyncResponse, encodeSyncResponse } from '../../../protocol/namespace.js'
import { VirtualNetwork, type VirtualEndpoint } from '../../../simulations/virtual-network.js'
import { VirtualTime } from '../../../simulations/virtual-time.js'
import { Prng } from '../../../simulations/prng.js'
import { defer, type CleanupContext } from '../../helpers/temp.js'
import { file, pullInto, silent } from './helpers.js'

describe('snapshot fetch routing', () => {
  // any bytes: the routing checks a helper's answer against the CIDs by hash only
  const nodes = [0, 1, 2, 3, 4, 5].map(i => new TextEncoder().encode(`node ${i}`))
  const cids = nodes.map(bytes => cborCID(bytes))
  const byCid = new Map(cids.map((cid, i) => [cid.toString(), nodes[i]]))
  type Behaviour = 'serve' | 'error' | 'wrong' | 'none' | 'prefix'

  /** A fetch over peers that behave as told (default: serve), recording who was asked. */
  function routed (helpers: string[], behaviour: Record<string, Behaviour> = {}): { fetch: ReturnType<typeof spreadFetch>, asked: string[], stats: SnapshotFetchStats } {
    const asked: string[] = []
    const stats = { snapshotHelperRequests: 0, snapshotHelperFailures: 0 }
    const ask = async (peer: string, want: CID[]): Promise<Array<Uint8Array | undefined>> => {
      asked.push(peer)
      const blocks = want.map(cid => byCid.get(cid.toString()) as Uint8Array)
      switch (behaviour[peer] ?? 'serve') {
        case 'error': throw new Error(`${peer} is down`)
        case 'wrong': return blocks.map(b => Uint8Array.from(b, (x, i) => i === b.length - 1 ? x ^ 1 : x))
        case 'none': return []
        case 'prefix': return blocks.slice(0, 1)
        case 'serve': return blocks
      }
    }
    return { fetch: spreadFetch({ server: 'S', helpers, ask, stats }), asked, stats }
  }

  it('spreads first asks by request number, sends retries and unhinted requests to the server', async () => {
    const { fetch, asked, stats } = routed(['A', 'B', 'C'])
    for (let request = 0; request < 8; request++) assert.equal((await fetch(cids.slice(0, 2), { request, attempt: 0, level: 0 })).length, 2)
    await fetch(cids.slice(0, 1), { request: 9, attempt: 1, level: 0 })
    await fetch(cids.slice(0, 1))
    assert.deepEqual(asked, ['S', 'A', 'B', 'C', 'S', 'A', 'B', 'C', 'S', 'S'])
    assert.deepEqual(stats, { snapshotHelperRequests: 6, snapshotHelperFailures: 0 })
  })

  for (const fault of ['error', 'wrong', 'none'] as const) {
    it(`a helper that answers ${fault === 'wrong' ? 'wrong bytes' : fault === 'none' ? 'none of the nodes' : 'an error'} is replaced by the server for that request and asked no more`, async () => {
      const { fetch, asked, stats } = routed(['A', 'B'], { A: fault })
      const got = await fetch(cids.slice(0, 3), { request: 1, attempt: 0, level: 0 })
      assert.deepEqual(got.map(b => b === undefined ? undefined : cborCID(b).toString()), cids.slice(0, 3).map(c => c.toString()), 'the server answered')
      for (let request = 2; request < 6; request++) await fetch(cids.slice(0, 1), { request, attempt: 0, level: 0 })
      assert.deepEqual(asked, ['A', 'S', 'S', 'B', 'S', 'B'])
      assert.deepEqual(stats, { snapshotHelperRequests: 3, snapshotHelperFailures: 1 })
    })
  }

  it('keeps a helper that answers a prefix (the walker asks again for the rest)', async () => {
    const { fetch, asked } = routed(['A'], { A: 'prefix' })
    assert.equal((await fetch(cids.slice(0, 3), { request: 1, attempt: 0 })).length, 1)
    await fetch(cids.slice(1, 3), { request: 3, attempt: 0 })
    assert.deepEqual(asked, ['A', 'A'])
  })

  it('a failing server fails the request', async () => {
    const { fetch } = routed(['A'], { S: 'error' })
    await assert.rejects(fetch(cids.slice(0, 1), { request: 0, attempt: 0 }), /S is down/)
  })

  it('chooses trusted peers other than the server, at the snapshot clock first, then ahead of it, then the rest, at most max', () => {
    const clocks: Record<string, Record<string, number>> = { same: { w: 5 }, ahead: { w: 7 }, behind: { w: 2 }, server: { w: 5 }, stranger: { w: 5 } }
    const choice = {
      server: 'server',
      peers: ['unheard', 'behind', 'ahead', 'stranger', 'same', 'server'],
      trusts: (peer: string) => peer !== 'stranger',
      clockOf: (peer: string) => clocks[peer],
      clock: { w: 5 },
      random: new Prng(1).random
    }
    assert.deepEqual(chooseHelpers({ ...choice, max: 2 }), ['same', 'ahead'])
    assert.deepEqual(new Set(chooseHelpers({ ...choice, max: 9 }).slice(2)), new Set(['unheard', 'behind']))
    assert.equal(chooseHelpers({ ...choice, max: 9 }).length, 4)
    assert.deepEqual(chooseHelpers({ ...choice, max: 0 }), [])
  })
})

/** How a node answers `blocks` requests. */
type Fault = 'error' | 'wrong bytes' | 'no answer'

interface Node {
  id: string
  kv: MemoryKV
  replica: Replica
  sync: NamespaceSync
  /** Peers this node sent `blocks` requests to, and those whose answer held at least one block. */
  asked: Map<string, number>
  answered: Map<string, number>
  /** While false, the node sees no peers (it pulls from none when it starts). */
  visible: boolean
}

/** A swarm on virtual time; every replica and sync stops when the test ends. */
class Swarm {
  readonly time = new VirtualTime()
  readonly rng = new Prng(18)
  // a request with no answer rejects after 10 virtual seconds; the sync's own (real-time) timeout never comes first
  readonly net = new VirtualNetwork(this.time, this.rng.fork(), { minDelay: 1, maxDelay: 5, requestTimeout: 10_000 })

  constructor (private readonly t: CleanupContext) {
    defer(t, async () => { this.time.clear() })
  }

  /** A replica (not yet on the network). */
  async replica (trust?: TrustPolicy): Promise<{ id: string, kv: MemoryKV, replica: Replica }> {
    const signer = signerFromKey(await generateKeyPair('Ed25519'))
    const kv = new MemoryKV()
    const replica = new Replica({ kv, signer, verifier: peerIdVerifier(), clock: { now: () => this.time.now() }, timers: this.time, logger: silent, trust }, { compactAfter: 1_000_000 })
    await replica.open()
    defer(this.t, async () => { await replica.close() })
    return { id: signer.id, kv, replica }
  }

  /** Put `r` on the network with a started sync; `fault` changes how it answers `blocks` requests. */
  async join (r: { id: string, kv: MemoryKV, replica: Replica }, options: { fault?: Fault, trust?: TrustPolicy, visible?: boolean } = {}): Promise<Node> {
    const endpoint = this.net.endpoint(r.id)
    const node: Node = { ...r, sync: undefined as unknown as NamespaceSync, asked: new Map(), answered: new Map(), visible: options.visible ?? true }
    const network: SyncNetwork = {
      handle: async (handlers) => { await endpoint.handle(options.fault === undefined ? handlers : faulty(handlers, options.fault)) },
      unhandle: async () => { await endpoint.unhandle() },
      publish: async (data) => { await endpoint.publish(data) },
      peers: () => node.visible ? endpoint.peers() : [],
      request: async (peer, data, signal) => await counted(endpoint, node, peer, data, signal)
    }
    node.sync = new NamespaceSync(
      { replica: r.replica, network, timers: this.time, random: this.rng.fork().random, logger: silent, trust: options.trust },
      { interval: 1e9, requestTimeout: 600_000 }
    )
    await node.sync.start()
    defer(this.t, async () => { await node.sync.stop() })
    await this.run(() => true)
    return node
  }

  /** Run virtual time until `done` holds (at most `ms` of it). */
  async run (done: () => boolean, ms = 120_000): Promise<void> {
    const end = this.time.now() + ms
    while (!done()) {
      if (this.time.now() > end) assert.fail(`not done after ${ms} virtual ms`)
      await this.time.advance(5)
    }
    await this.time.advance(5)
  }
}

/** A request from `node` to `peer`, counted when it is a `blocks` request. */
async function counted (endpoint: VirtualEndpoint, node: Node, peer: string, data: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
  if (decodeSyncRequest(data).type !== 'blocks') return await endpoint.request(peer, data, signal)
  node.asked.set(peer, (node.asked.get(peer) ?? 0) + 1)
  const response = await endpoint.request(peer, data, signal)
  const decoded = decodeSyncResponse(response)
  if (decoded.type === 'blocks' && decoded.blocks.length > 0) node.answered.set(peer, (node.answered.get(peer) ?? 0) + 1)
  return response
}

/** `handlers` with every `blocks` request answered by an error, with wrong bytes, or never. */
function faulty (handlers: SyncHandlers, fault: Fault): SyncHandlers {
  return {
    ...handlers,
    request: async (from, data) => {
      const request = decodeSyncRequest(data)
      if (request.type !== 'blocks') return await handlers.request(from, data)
      if (fault === 'no answer') return await new Promise<Uint8Array>(() => {})
      if (fault === 'error') return encodeSyncResponse({ v: 1, type: 'error', id: request.id, message: 'disk on fire' })
      const real = decodeSyncResponse(await handlers.request(from, data))
      assert.equal(real.type, 'blocks')
      const blocks = real.type === 'blocks' ? real.blocks.map(b => Uint8Array.from(b, (x, i) => i === b.length - 1 ? x ^ 1 : x)) : []
      return encodeSyncResponse({ v: 1, type: 'blocks', id: request.id, blocks })
    }
  }
}

/** The tree of `r` as `path cid` lines. */
async function tree (r: Replica): Promise<string[]> {
  const out: string[] = []
  for await (const e of r.walk('/')) out.push(e.type === 'dir' ? `${e.path}/` : `${e.path} ${e.cid}`)
  return out
}

/** A source replica holding `paths` files, compacted: a fresh node pulling from it gets a snapshot. */
async function source (swarm: Swarm, paths: number): Promise<Awaited<ReturnType<Swarm['replica']>>> {
  const r = await swarm.replica()
  for (let i = 0; i < paths; i += 1000) {
    await r.replica.putFiles(Array.from({ length: Math.min(1000, paths - i) }, (_, k) => ({ path: `/d${(i + k) % 7}/f${i + k}`, record: file(`f${i + k}`) })))
  }
  assert.equal(await r.replica.compact(true), true)
  return r
}

/** A replica that loaded the snapshot of `from` (so it holds the same tree) and pulled what followed. */
async function copyOf (swarm: Swarm, from: Replica, trust?: TrustPolicy): Promise<Awaited<ReturnType<Swarm['replica']>>> {
  const r = await swarm.replica(trust)
  await pullInto(r.replica, from)
  return r
}

/** Every snapshot block `kv` holds matches its CID. */
async function assertBlocksIntact (kv: MemoryKV): Promise<number> {
  let n = 0
  for await (const [key, bytes] of kv.iterate({ gt: 'b!', lt: 'b"' })) {
    assert.equal(cborCID(bytes).toString(), key.slice(2), `block ${key} is corrupt`)
    n++
  }
  return n
}

/** A fresh node `fresh` (started unseeing) pulls from `server` and is run until the pull ends. */
async function bootstrap (swarm: Swarm, fresh: Node, server: Node): Promise<void> {
  fresh.visible = true
  fresh.sync.pullFrom(server.id)
  let done = false
  void fresh.sync.idle().then(() => { done = true })
  await swarm.run(() => done)
}

describe('snapshot fetched from several peers (virtual network)', { timeout: 120_000 }, () => {
  it('a fresh node loads a snapshot with tree requests answered by the serving peer and others, into the same state', async (t) => {
    const swarm = new Swarm(t)
    const p = await source(swarm, 3000)
    const server = await swarm.join(p)
    const helpers = [await swarm.join(await copyOf(swarm, p.replica)), await swarm.join(await copyOf(swarm, p.replica))]
    const fresh = await swarm.join(await swarm.replica(), { visible: false })
    await bootstrap(swarm, fresh, server)

    assert.equal(fresh.sync.stats.snapshots, 1)
    assert.equal(fresh.sync.stats.pullFailures, 0)
    assert.deepEqual(await tree(fresh.replica), await tree(p.replica))
    assert.deepEqual(fresh.replica.state().clock, p.replica.state().clock)
    const answered = [...fresh.answered.keys()]
    assert.ok(answered.includes(server.id), 'the serving peer answered (the root, the tips, the tree root)')
    assert.ok(answered.some(id => helpers.some(h => h.id === id)), `a helper answered too: ${JSON.stringify([...fresh.answered])}`)
    assert.ok(fresh.sync.stats.snapshotHelperRequests >= 1)
    assert.equal(fresh.sync.stats.snapshotHelperFailures, 0)
    assert.ok(await assertBlocksIntact(fresh.kv) > 1)
  })

  for (const fault of ['error', 'wrong bytes', 'no answer'] as const) {
    it(`a helper that answers every blocks request with ${fault === 'error' ? 'an error' : fault} does not stop the load, and nothing corrupt is stored`, async (t) => {
      const swarm = new Swarm(t)
      const p = await source(swarm, 3000)
      const server = await swarm.join(p)
      const bad = await swarm.join(await copyOf(swarm, p.replica), { fault })
      const fresh = await swarm.join(await swarm.replica(), { visible: false })
      await bootstrap(swarm, fresh, server)

      assert.ok((fresh.asked.get(bad.id) ?? 0) >= 1, 'the faulty helper was asked')
      assert.equal(fresh.sync.stats.snapshotHelperFailures, 1, 'asked no more after its first failure')
      assert.equal(fresh.sync.stats.pullFailures, 0)
      assert.deepEqual(await tree(fresh.replica), await tree(p.replica))
      assert.deepEqual(fresh.replica.state().clock, p.replica.state().clock)
      assert.ok(await assertBlocksIntact(fresh.kv) > 1)
    })
  }

  it('an untrusted peer holding the tree is never asked', async (t) => {
    const swarm = new Swarm(t)
    const p = await source(swarm, 3000)
    const server = await swarm.join(p)
    const stranger = await swarm.join(await copyOf(swarm, p.replica))
    const trust: TrustPolicy = { trusts: peer => peer !== stranger.id }
    const fresh = await swarm.join(await swarm.replica(trust), { visible: false, trust })
    await bootstrap(swarm, fresh, server)

    assert.equal(fresh.asked.get(stranger.id), undefined)
    assert.ok((fresh.asked.get(server.id) ?? 0) >= 2)
    assert.equal(fresh.sync.stats.snapshotHelperRequests, 0)
    assert.deepEqual(await tree(fresh.replica), await tree(p.replica))
  })
})
