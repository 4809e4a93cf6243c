/**
 * Whom a node pulls from after gossip says it lacks something, and how many
 * pulls run at once: the author when it is a peer, else the peer that
 * relayed the message (a pull to an author several hops away is a new dial,
 * or waits out its timeout); and with `maxPulls` running, a pull wanted
 * meanwhile runs later only if its reason is still lacking. Real replicas
 * and real `NamespaceSync`, over an in-process network whose links the test
 * sets (a request to a peer that is not linked fails, as an unreachable
 * dial does).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { NamespaceSync, type SyncHandlers, type SyncNetwork } from '../../../node/namespace/sync.js'
import type { Replica } from '../../../node/namespace/index.js'
import { VirtualTime } from '../../../simulations/virtual-time.js'
import { file, replica, silent, type Sim } from './helpers.js'

/** In-process peers with explicit links; every request is logged as `from>to`. */
class Links {
  readonly handlers = new Map<string, SyncHandlers>()
  readonly published: Array<{ from: string, data: Uint8Array }> = []
  readonly requests: string[] = []
  private readonly linked = new Map<string, Set<string>>()

  link (a: string, b: string): void {
    for (const [x, y] of [[a, b], [b, a]]) {
      const set = this.linked.get(x) ?? new Set()
      set.add(y)
      this.linked.set(x, set)
    }
  }

  endpoint (self: string): SyncNetwork {
    return {
      handle: async h => { this.handlers.set(self, h) },
      unhandle: async () => { this.handlers.delete(self) },
      publish: async data => { this.published.push({ from: self, data }) },
      request: async (peer, data) => {
        this.requests.push(`${self}>${peer}`)
        const h = this.handlers.get(peer)
        if (h === undefined || this.linked.get(self)?.has(peer) !== true) throw new Error(`${peer} is not reachable from ${self}`)
        return await h.request(self, data)
      },
      peers: () => [...this.linked.get(self) ?? []]
    }
  }

  /** Hand a message published by `author` to `to`, relayed by `via`. */
  deliver (message: { from: string, data: Uint8Array }, to: string, via: string): void {
    this.handlers.get(to)?.message(message.from, message.data, via)
  }
}

async function syncOf (r: Replica, links: Links, maxPulls?: number): Promise<NamespaceSync> {
  // no timed rounds within the test: only the pulls gossip prompts
  const sync = new NamespaceSync({ replica: r, network: links.endpoint(r.id), timers: new VirtualTime(), random: () => 0.5, logger: silent }, { interval: 1e9, maxPulls })
  await sync.start()
  return sync
}

/** Author `a` writes twice; the second write's gossip (a push) cannot be applied without the first. */
async function twoWrites (sim: Sim, links: Links, a: Replica, syncA: NamespaceSync): Promise<{ first: Uint8Array[], push: { from: string, data: Uint8Array } }> {
  const first: Uint8Array[] = []
  const stop = a.onLocalEntries(entries => first.push(...entries))
  await a.putFile('/one.txt', file('one'))
  stop()
  await syncA.idle()
  sim.now += 1_000
  await a.putFile('/two.txt', file('two'))
  await syncA.idle()
  return { first, push: links.published[links.published.length - 1] }
}

describe('namespace pull source and pull limit', () => {
  it('a node missing an entry\'s past pulls from the relay when the author is not its peer, and from the author when it is', async () => {
    const sim: Sim = { now: 1_000 }
    const [a, r, c] = [await replica(sim), await replica(sim), await replica(sim)]
    const links = new Links()
    // linked after start: no pull on start
    const syncs = [await syncOf(a, links), await syncOf(r, links), await syncOf(c, links)]
    links.link(a.id, r.id)
    links.link(r.id, c.id)
    const { first, push } = await twoWrites(sim, links, a, syncs[0])
    assert.equal((await r.receive(first, a.id)).applied, 1, 'the relay has the first write')
    links.requests.length = 0

    links.deliver(push, c.id, r.id)
    await syncs[2].idle()
    assert.deepEqual(links.requests, [`${c.id}>${r.id}`], 'pulled from the relay, not from the unlinked author')
    assert.equal(syncs[2].stats.pullFailures, 0)
    assert.equal((await c.lookup('/one.txt'))?.type, 'file')
    assert.equal((await c.lookup('/two.txt'))?.type, 'file', 'the held entry applied once its past arrived')

    // a fourth node linked to the author as well as to the relay asks the author
    const d = await replica(sim)
    syncs.push(await syncOf(d, links))
    links.link(d.id, r.id)
    links.link(d.id, a.id)
    links.requests.length = 0
    links.deliver(push, d.id, r.id)
    await syncs[3].idle()
    assert.deepEqual(links.requests, [`${d.id}>${a.id}`], 'pulled from the author, a peer')
    assert.equal((await d.lookup('/two.txt'))?.type, 'file')
    for (const s of syncs) await s.stop()
  })

  it('with one pull at most, the same news relayed by three peers costs one pull; a relay that lacked it too is followed by the next', async () => {
    const sim: Sim = { now: 1_000 }
    const [a, r1, r2, r3] = [await replica(sim), await replica(sim), await replica(sim), await replica(sim)]
    const links = new Links()
    const syncs = [await syncOf(a, links), await syncOf(r1, links), await syncOf(r2, links), await syncOf(r3, links)]
    for (const r of [r1, r2, r3]) links.link(a.id, r.id)
    const { first, push } = await twoWrites(sim, links, a, syncs[0])
    for (const r of [r1, r2, r3]) await r.receive(first, a.id)

    const c = await replica(sim)
    const syncC = await syncOf(c, links, 1)
    for (const r of [r1, r2, r3]) links.link(c.id, r.id)
    links.requests.length = 0
    // the three copies arrive one after another, while the first pull runs
    for (const r of [r1, r2, r3]) links.deliver(push, c.id, r.id)
    await syncC.idle()
    assert.deepEqual(links.requests, [`${c.id}>${r1.id}`], 'the pulls waiting behind the first had nothing left to bring')
    assert.equal(syncC.stats.pulls, 1)
    assert.equal((await c.lookup('/two.txt'))?.type, 'file')

    // e has relays that hold nothing of the author's: the first pull brings nothing, so the next waiting one runs
    const e = await replica(sim)
    const empty = await replica(sim)
    const syncEmpty = await syncOf(empty, links)
    const syncE = await syncOf(e, links, 1)
    links.link(e.id, empty.id)
    links.link(e.id, r2.id)
    links.requests.length = 0
    links.deliver(push, e.id, empty.id)
    links.deliver(push, e.id, r2.id)
    await syncE.idle()
    assert.deepEqual(links.requests, [`${e.id}>${empty.id}`, `${e.id}>${r2.id}`])
    assert.equal((await e.lookup('/one.txt'))?.type, 'file')
    assert.equal((await e.lookup('/two.txt'))?.type, 'file')
    // pulls with no news behind them (a new connection) wait their turn and run in any case
    links.requests.length = 0
    links.handlers.get(c.id)?.connected(r2.id)
    links.handlers.get(c.id)?.connected(r3.id)
    await syncC.idle()
    assert.deepEqual(links.requests, [`${c.id}>${r2.id}`, `${c.id}>${r3.id}`])
    for (const s of [...syncs, syncC, syncEmpty, syncE]) await s.stop()
  })
})
