/**
 * The gossip of a local write (a push) names the dots of the entries it
 * carries, not the writer's whole clock, so its size and cost do not grow
 * with the number of authors; a receiver that lacks part of the entries'
 * causal past holds them back and pulls the rest from the sender. Real
 * replicas and real `NamespaceSync`, over a two-node in-process network.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { NamespaceSync, type SyncHandlers, type SyncNetwork } from '../../../node/namespace/sync.js'
import type { Replica } from '../../../node/namespace/index.js'
import { decodeHeadsMessage } from '../../../protocol/namespace.js'
import { VirtualTime } from '../../../simulations/virtual-time.js'
import { file, replica, silent, type Sim } from './helpers.js'

/** In-process peers: what each node publishes is kept (and handed on by `deliver`), requests reach the peer's handler. */
class Wire {
  readonly handlers = new Map<string, SyncHandlers>()
  readonly published: Array<{ from: string, data: Uint8Array }> = []

  endpoint (self: string): SyncNetwork {
    return {
      handle: async h => { this.handlers.set(self, h) },
      unhandle: async () => { this.handlers.delete(self) },
      publish: async data => { this.published.push({ from: self, data }) },
      request: async (peer, data) => {
        const h = this.handlers.get(peer)
        if (h === undefined) throw new Error(`${peer} is not listening`)
        return await h.request(self, data)
      },
      peers: () => [...this.handlers.keys()].filter(p => p !== self)
    }
  }

  /** Hand a published message to `to` as gossip. */
  deliver (message: { from: string, data: Uint8Array }, to: string): void {
    this.handlers.get(to)?.message(message.from, message.data)
  }
}

async function syncOf (r: Replica, wire: Wire, time: VirtualTime, gossipBytes?: number): Promise<NamespaceSync> {
  // no timed rounds within the test: only pushes and the pulls they prompt
  const sync = new NamespaceSync({ replica: r, network: wire.endpoint(r.id), timers: time, random: () => 0.5, logger: silent }, { interval: 1e9, gossipBytes })
  await sync.start()
  return sync
}

describe('namespace pushes', () => {
  it('a write\'s gossip names its own dot, not every author the writer has seen, and a receiver missing its past pulls it', async () => {
    const sim: Sim = { now: 1_000 }
    const [a, b, c] = [await replica(sim), await replica(sim), await replica(sim)]
    // a has heard b's write; c has heard nothing
    const fromB: Uint8Array[] = []
    b.onLocalEntries(entries => fromB.push(...entries))
    await b.putFile('/b.txt', file('b'))
    assert.equal((await a.receive(fromB, b.id)).applied, 1)
    const wire = new Wire()
    const time = new VirtualTime()
    const [syncA, syncC] = [await syncOf(a, wire, time), await syncOf(c, wire, time)]

    await a.putFile('/a.txt', file('a'))
    await syncA.idle()
    assert.equal(wire.published.length, 1)
    const push = decodeHeadsMessage(wire.published[0].data)
    assert.deepEqual(push.clock, { [a.id]: 1 }, 'the push names the dot it carries only')
    assert.deepEqual(push.heads, [])
    assert.equal(push.entries.length, 1)
    assert.deepEqual(a.state().clock, { [a.id]: 1, [b.id]: 1 }, 'the writer has seen two authors')

    // c cannot apply a's entry before b's: it holds it, pulls from a, and ends with both
    wire.deliver(wire.published[0], c.id)
    await syncC.idle()
    assert.equal(syncC.stats.pulls, 1)
    assert.deepEqual(c.state().clock, { [a.id]: 1, [b.id]: 1 })
    assert.equal((await c.lookup('/a.txt'))?.type, 'file')
    assert.equal((await c.lookup('/b.txt'))?.type, 'file')
    await syncA.stop()
    await syncC.stop()
  })

  it('entries too large to carry are announced with the writer\'s whole clock and heads', async () => {
    const sim: Sim = { now: 1_000 }
    const [a, b] = [await replica(sim), await replica(sim)]
    const fromB: Uint8Array[] = []
    b.onLocalEntries(entries => fromB.push(...entries))
    await b.putFile('/b.txt', file('b'))
    await a.receive(fromB, b.id)
    const wire = new Wire()
    const syncA = await syncOf(a, wire, new VirtualTime(), 16)
    await a.putFile('/a.txt', file('a'))
    await syncA.idle()
    const heads = decodeHeadsMessage(wire.published[0].data)
    assert.deepEqual(heads.entries, [])
    assert.deepEqual(heads.clock, { [a.id]: 1, [b.id]: 1 })
    assert.equal(heads.heads.length, 1)
    await syncA.stop()
  })
})
