/**
 * A snapshot replaces a replica's history only when no other peer still
 * holds it (node/namespace/pruned-claim.ts): real replicas on in-memory
 * stores, each with a real `NamespaceSync`, wired to each other by name.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryKV, type Replica } from '../../../node/namespace/index.js'
import { NamespaceSync, type SyncHandlers, type SyncNetwork, type SyncOptions } from '../../../node/namespace/sync.js'
import { DeclinedSnapshots, entriesElsewhere } from '../../../node/namespace/pruned-claim.js'
import { versionsKey, visibleKey } from '../../../node/namespace/tree.js'
import { VirtualTime } from '../../../simulations/virtual-time.js'
import { file, replica, silent, syncAll, tree, type Sim } from './helpers.js'

/** Replicas' syncs wired to each other by name. */
function mesh (): (self: string, peers: () => string[]) => SyncNetwork {
  const handlers = new Map<string, SyncHandlers>()
  return (self, peers) => ({
    handle: async h => { handlers.set(self, h) },
    unhandle: async () => { handlers.delete(self) },
    publish: async () => {},
    request: async (to, data) => {
      const h = handlers.get(to)
      if (h === undefined) throw new Error(`${to} is not reachable`)
      return await h.request(self, data)
    },
    peers
  })
}

interface Node { kv: MemoryKV, replica: Replica }

const OPTIONS = { compactAfter: 5, memberTimeout: 60_000 }

/**
 * Four replicas: `a` writes, `r` holds `/old` only in its own pruned
 * history and then goes away while `a` writes on; `x` and `b` get those
 * writes, then `x` loses `/old`'s rows (a damaged store, or a hostile
 * member) and prunes its history past `r`: its snapshot leaves `/old` out
 * though its clock covers `/old`'s entry. `b` prunes too when `bPrunes`.
 */
async function scene (): Promise<{ sim: Sim, a: Node, b: Node, x: Node, r: Node, prune: (n: Node) => Promise<void> }> {
  const sim: Sim = { now: 1_000 }
  const node = async (): Promise<Node> => {
    const kv = new MemoryKV()
    return { kv, replica: await replica(sim, OPTIONS, { kv }) }
  }
  const [a, b, x, r] = [await node(), await node(), await node(), await node()]
  await a.replica.putFile('/old', file('old'))
  for (let i = 0; i < 5; i++) await a.replica.putFile(`/base/${i}`, file(`base ${i}`))
  await syncAll([a, b, x, r].map(n => n.replica))
  const prune = async (n: Node): Promise<void> => {
    for (const o of [a, b, x]) if (o !== n) n.replica.noteMember(o.replica.id, o.replica.state().clock)
    assert.equal(await n.replica.compact(), true)
  }
  await prune(r)
  assert.ok(r.replica.hasPruned(), 'r holds /old as pruned history only')
  for (let i = 0; i < 20; i++) await a.replica.putFile(`/a/${i}`, file(`a ${i}`))
  await syncAll([a, b, x].map(n => n.replica))
  sim.now += 120_000
  await x.kv.batch([{ type: 'del', key: versionsKey('/old') }, { type: 'del', key: visibleKey('/old') }])
  await prune(x)
  assert.equal((await x.replica.pull(r.replica.state().clock, 100)).type, 'snapshot')
  assert.equal(await x.replica.lookup('/old'), undefined)
  return { sim, a, b, x, r, prune }
}

/** Start syncs for `b` and `x` (serving) and `r` (pulling from `x` first, `b` after), and wait until `r`'s pulls end. */
async function pullAsR (t: { after: (fn: () => Promise<void>) => void }, s: { sim: Sim, b: Node, x: Node, r: Node }, options: SyncOptions): Promise<NamespaceSync> {
  const endpoint = mesh()
  const syncs: NamespaceSync[] = []
  t.after(async () => { for (const sync of syncs) await sync.stop() })
  for (const n of [s.b, s.x]) {
    const sync = new NamespaceSync({ replica: n.replica, network: endpoint(n.replica.id, () => []), timers: new VirtualTime(), random: () => 0.5, logger: silent, clock: { now: () => s.sim.now } }, { interval: 1e9 })
    await sync.start()
    syncs.push(sync)
  }
  // one pull at a time: x's answer is handled before b is pulled from
  const sync = new NamespaceSync({ replica: s.r.replica, network: endpoint(s.r.replica.id, () => [s.x.replica.id, s.b.replica.id]), timers: new VirtualTime(), random: () => 0, logger: silent, clock: { now: () => s.sim.now } }, { interval: 1e9, maxPulls: 1, ...options })
  syncs.push(sync)
  await sync.start()
  await sync.idle()
  return sync
}

describe('a peer\'s claim to have pruned what a replica lacks', () => {
  it('a replica with pruned history takes entries from a peer that still has them, not a snapshot that leaves out what it pruned', async (t) => {
    const s = await scene()
    const sync = await pullAsR(t, s, {})
    assert.equal(sync.stats.snapshots, 1, 'x answered with a snapshot')
    assert.equal(sync.stats.snapshotsDeclined, 1, 'and it was left for b\'s entries')
    assert.equal((await s.r.replica.lookup('/old'))?.type, 'file', '/old is kept')
    assert.deepEqual(await tree(s.r.replica), await tree(s.b.replica))
    assert.deepEqual(s.r.replica.state().clock, s.b.replica.state().clock)
    // x's snapshot, asked for again, proves nothing this replica lacks: it is not merged
    const again = await s.x.replica.pull(s.r.replica.state().clock, 100)
    assert.equal(again.type, 'entries')
  })

  it('on the server\'s word alone (no checks), the same snapshot drops what the replica pruned', async (t) => {
    const s = await scene()
    const sync = await pullAsR(t, s, { prunedChecks: 0 })
    assert.equal(sync.stats.snapshotsDeclined, 0)
    assert.equal(await s.r.replica.lookup('/old'), undefined, 'the loss the checks prevent')
  })

  it('a replica behind every peer\'s pruned history takes the snapshot', async (t) => {
    const s = await scene()
    await s.prune(s.b)
    const sync = await pullAsR(t, s, {})
    assert.equal(sync.stats.snapshotsDeclined, 0, 'b had no entries to give: nothing to decline for')
    assert.ok(sync.stats.snapshots >= 1)
    // the swarm's state, b's included, is x's: /old is gone from every snapshot a peer can serve
    assert.deepEqual(s.r.replica.state().clock, s.b.replica.state().clock)
    for (let i = 0; i < 20; i++) assert.equal((await s.r.replica.lookup(`/a/${i}`))?.type, 'file')
  })
})

describe('pruned-claim parts', () => {
  it('the first peer that has entries wins; none, a failure or only the server: undefined', async () => {
    const answers: Record<string, boolean | Error> = { s: true, p1: false, p2: new Error('unreachable'), p3: true }
    const asked: string[] = []
    const components = (peers: string[]): Parameters<typeof entriesElsewhere>[0] => ({
      peers: () => peers,
      clockOf: () => undefined,
      hasEntries: async (peer) => {
        asked.push(peer)
        const a = answers[peer]
        if (a instanceof Error) throw a
        return a
      },
      random: () => 0
    })
    assert.equal(await entriesElsewhere(components(['s', 'p1', 'p2', 'p3']), { server: 's', clock: {}, max: 3 }), 'p3')
    assert.ok(!asked.includes('s'), 'the server itself is not asked')
    assert.equal(await entriesElsewhere(components(['s', 'p1', 'p2']), { server: 's', clock: {}, max: 3 }), undefined)
    assert.equal(await entriesElsewhere(components(['s']), { server: 's', clock: {}, max: 3 }), undefined)
    asked.length = 0
    assert.equal(await entriesElsewhere(components(['s', 'p1', 'p2', 'p3']), { server: 's', clock: {}, max: 2 }), undefined, 'at most two asked: p1 and p2')
    assert.deepEqual(asked, ['p1', 'p2'])
    assert.equal(await entriesElsewhere(components(['s', 'p3']), { server: 's', clock: {}, max: 0 }), undefined)
  })

  it('a server\'s snapshot is declined again only once the clock has moved', () => {
    const d = new DeclinedSnapshots()
    assert.equal(d.mayDecline('s', { a: 1 }), true)
    d.declined('s', { a: 1 })
    assert.equal(d.mayDecline('s', { a: 1 }), false)
    assert.equal(d.mayDecline('other', { a: 1 }), true)
    assert.equal(d.mayDecline('s', { a: 2 }), true)
    assert.equal(d.mayDecline('s', { a: 1, b: 1 }), true)
    d.forget('s')
    assert.equal(d.mayDecline('s', { a: 1 }), true)
  })
})
