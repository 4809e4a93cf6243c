/**
 * Trusted writers on a simulated swarm (real Replica and NamespaceSync on
 * the virtual network, each replica with the trust list of an open swarm):
 * a stranger's writes, gossiped or passed on by a trusted peer, never reach
 * the replicas that do not trust it; trusted writes built on them still
 * apply, and once the stranger is trusted everyone converges as if it always
 * had been; removing and re-adding a writer; a stranger's clock and
 * compaction.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { encodeHeadsMessage } from '../../protocol/namespace.js'
import { weight } from '../../node/namespace/clock.js'
import { simOpArb } from '../../simulations/lifecycle-steps.js'
import { withSim } from './namespace-sim-helpers.js'
import type { SimOp } from '../../simulations/namespace-ops.js'
import { NamespaceSim, SIM_INTERVAL, type SimOptions } from '../../simulations/namespace-sim.js'
import { showView, viewOf, type ReplicaView } from '../../simulations/namespace-view.js'
import type { Replica } from '../../node/namespace/replica.js'

/** Run `body` on a fresh simulation of replicas with trust lists, and always stop it. */
async function withListed (options: Omit<SimOptions, 'writers'>, body: (sim: NamespaceSim) => Promise<void>): Promise<void> {
  await withSim({ ...options, writers: 'listed' }, body)
}

/** Every entry `r` writes from now on. */
function record (r: Replica): Uint8Array[] {
  const out: Uint8Array[] = []
  r.onLocalEntries(entries => out.push(...entries))
  return out
}

/** The peers node `index` sends requests to from now on. */
function requestsOf (sim: NamespaceSim, index: number): string[] {
  const asked: string[] = []
  const endpoint = sim.nodes[index].endpoint
  const request = endpoint.request.bind(endpoint)
  endpoint.request = async (peer, data, signal) => {
    asked.push(peer)
    return await request(peer, data, signal)
  }
  return asked
}

/** The visible tree of node `index` as `path cid` lines. */
async function lines (sim: NamespaceSim, index: number): Promise<string[]> {
  return (await viewOf(sim.nodes[index].replica)).tree.map(e => `${e.path}${e.cid !== undefined ? ' ' + e.cid : ''}`)
}

/**
 * Trust lists of three replicas: node 0 trusts node 1; node 1 trusts nodes 0
 * and 2; node 2, a stranger to node 0, trusts nodes 0 and 1. Returns the
 * stranger's index.
 */
function trustedByOneOnly (sim: NamespaceSim): number {
  sim.trust(0, [1])
  sim.trust(1, [0, 2])
  sim.trust(2, [0, 1])
  return 2
}

/** Run until every replica has the same clock; fail with the differences if not. */
async function assertConverged (sim: NamespaceSim): Promise<void> {
  const converged = await sim.converge(60_000)
  const problems = await sim.differences()
  const lost = await sim.lostWrites()
  assert.ok(converged && problems.length === 0 && lost.length === 0, [...problems, ...lost, ...sim.trace.slice(-40)].join('\n'))
}

describe('namespace simulation: trusted writers', () => {
  it('a stranger\'s put, move and delete, gossiped or passed on in a trusted peer\'s gossip, never change the replicas that do not trust it; they never pull from it', async () => {
    await withListed({ nodes: 3, seed: 0x7a1 }, async (sim) => {
      const stranger = 2
      sim.trust(0, [1])
      sim.trust(1, [0])
      sim.trust(stranger, [0, 1])
      const asked = [requestsOf(sim, 0), requestsOf(sim, 1)]
      await sim.apply(0, { kind: 'put', path: '/docs/a.txt' })
      await sim.apply(0, { kind: 'put', path: '/docs/b.txt' })
      await sim.advance(3 * SIM_INTERVAL)
      // the stranger is served (reads are open): it sees the tree it then changes
      assert.equal(sim.nodes[stranger].replica.state().clock[sim.nodes[0].id], 2)
      const before: ReplicaView[] = [await viewOf(sim.nodes[0].replica), await viewOf(sim.nodes[1].replica)]

      const sent = record(sim.nodes[stranger].replica)
      const ops: SimOp[] = [
        { kind: 'put', path: '/docs/a.txt' },
        { kind: 'move', from: '/docs/b.txt', to: '/moved.txt' },
        { kind: 'remove', path: '/docs', recursive: true },
        { kind: 'put', path: '/new.txt' }
      ]
      for (const op of ops) assert.ok((await sim.apply(stranger, op)).ok, JSON.stringify(op))
      await sim.advance(5 * SIM_INTERVAL)
      for (const i of [0, 1]) {
        assert.deepEqual(await viewOf(sim.nodes[i].replica), before[i], `node ${i} changed`)
        assert.ok(sim.nodes[i].sync.stats.untrusted > 0, `node ${i} counted no ignored gossip`)
        assert.deepEqual(asked[i].filter(p => p === sim.nodes[stranger].id), [], `node ${i} pulled from the stranger`)
      }

      // a trusted peer passes the stranger's entries on in its gossip: the replica drops them
      const untrusted = sim.nodes[0].replica.untrusted
      sim.nodes[1].endpoint.sendTo(sim.nodes[0].id, encodeHeadsMessage({ v: 1, type: 'heads', clock: sim.nodes[1].replica.state().clock, heads: [], entries: sent }))
      await sim.advance(SIM_INTERVAL)
      assert.equal(sim.nodes[0].replica.untrusted - untrusted, sent.length)
      assert.deepEqual(await viewOf(sim.nodes[0].replica), before[0])
    })
  })

  it('trusted writes that causally follow a stranger\'s apply where it is not trusted; once it is, all replicas converge as if it always had been', async () => {
    await withListed({ nodes: 3, seed: 0x7a2 }, async (sim) => {
      const stranger = trustedByOneOnly(sim)
      await sim.apply(0, { kind: 'put', path: '/base.txt' })
      await sim.advance(2 * SIM_INTERVAL)
      for (const path of ['/s/only.txt', '/p.txt', '/s/gone.txt']) await sim.apply(stranger, { kind: 'put', path })
      await sim.advance(3 * SIM_INTERVAL)
      // node 1 builds on them: overwrites one, deletes another, writes after
      await sim.apply(1, { kind: 'put', path: '/p.txt' })
      await sim.apply(1, { kind: 'remove', path: '/s/gone.txt', recursive: false })
      await sim.apply(1, { kind: 'put', path: '/after.txt' })
      await sim.advance(5 * SIM_INTERVAL)

      const one = sim.nodes[1].id
      assert.equal(sim.nodes[0].replica.state().clock[one], sim.nodes[1].replica.state().clock[one], 'node 0 applied all of node 1\'s writes')
      assert.deepEqual(await lines(sim, 0), (await lines(sim, 1)).filter(l => !l.startsWith('/s')))
      assert.deepEqual(await sim.nodes[0].replica.conflicts(), [])

      sim.trust(0, [stranger])
      await assertConverged(sim)
      assert.deepEqual(await sim.nodes[0].replica.conflicts(), [])
    })
  })

  it('random writes of a stranger and of those who trust it: the others never show them, apply everything trusted, and converge with nothing lost once they trust it', async () => {
    const arb = fc.record({
      seed: fc.nat(),
      steps: fc.array(fc.record({ node: fc.nat(3), op: simOpArb, wait: fc.integer({ min: 0, max: 300 }) }), { minLength: 10, maxLength: 40, size: 'max' })
    })
    await fc.assert(fc.asyncProperty(arb, async ({ seed, steps }) => {
      // nodes 0 and 1 trust each other and node 2; nodes 2 and 3 trust everyone; node 3 is a stranger to 0 and 1
      await withListed({ nodes: 4, seed, network: { maxDelay: 60 } }, async (sim) => {
        const stranger = 3
        sim.trust(0, [1, 2])
        sim.trust(1, [0, 2])
        sim.trust(2, [0, 1, stranger])
        sim.trust(stranger, [0, 1, 2])
        for (const s of steps) {
          await sim.apply(s.node, s.op)
          await sim.advance(s.wait)
        }
        await sim.advance(10 * SIM_INTERVAL)
        const strangerWrites = new Set(sim.writes.filter(w => w.node === stranger).map(w => w.cid))
        for (const i of [0, 1]) {
          const view = await viewOf(sim.nodes[i].replica)
          for (const e of view.tree) assert.ok(e.cid === undefined || !strangerWrites.has(e.cid), `node ${i} shows the stranger's ${e.path}\n${showView(view)}`)
          for (const trusted of [0, 1, 2]) {
            const id = sim.nodes[trusted].id
            assert.equal(sim.nodes[i].replica.state().clock[id] ?? 0, sim.nodes[trusted].replica.state().clock[id] ?? 0, `node ${i} lacks writes of node ${trusted}`)
          }
        }
        sim.trust(0, [stranger])
        sim.trust(1, [stranger])
        await assertConverged(sim)
      })
    }), { seed: 0x7a57, numRuns: 12, includeErrorInReport: true, endOnFailure: true })
  })

  it('a replica behind a trusted peer\'s long run of a stranger\'s entries still pulls the trusted ones after them: its pulls skip the stranger', async () => {
    await withListed({ nodes: 3, seed: 0x7a5, sync: { pageSize: 2 } }, async (sim) => {
      const stranger = trustedByOneOnly(sim)
      await sim.apply(1, { kind: 'put', path: '/first.txt' })
      await sim.advance(3 * SIM_INTERVAL)
      sim.isolate(0)
      for (let i = 0; i < 7; i++) await sim.apply(stranger, { kind: 'put', path: `/s/${i}` })
      await sim.advance(3 * SIM_INTERVAL)
      for (let i = 0; i < 3; i++) await sim.apply(1, { kind: 'put', path: `/t/${i}` })
      await sim.advance(SIM_INTERVAL)
      sim.heal()
      await sim.advance(5 * SIM_INTERVAL)
      const one = sim.nodes[1].id
      assert.equal(sim.nodes[0].replica.state().clock[one], 4, 'node 0 pulled node 1\'s writes past the stranger\'s')
      assert.deepEqual(await lines(sim, 0), (await lines(sim, 1)).filter(l => !l.startsWith('/s')))
      assert.ok(sim.nodes[0].replica.untrusted <= 2, `the stranger's entries were sent ${sim.nodes[0].replica.untrusted} times`)
    })
  })

  it('a writer removed from trust: its later and concurrent writes are dropped, its earlier ones stay; trusted again, they are pulled and applied', async () => {
    await withListed({ nodes: 2, seed: 0x7a3 }, async (sim) => {
      sim.trust(0, [1])
      sim.trust(1, [0])
      await sim.apply(1, { kind: 'put', path: '/early.txt' })
      await sim.advance(3 * SIM_INTERVAL)
      assert.ok(await sim.nodes[0].replica.lookup('/early.txt') !== undefined)
      // written before node 0 stops trusting node 1, but reaching it after
      sim.partition([[0], [1]])
      await sim.apply(1, { kind: 'put', path: '/concurrent.txt' })
      sim.untrust(0, [1])
      sim.heal()
      await sim.apply(1, { kind: 'put', path: '/late.txt' })
      await sim.apply(1, { kind: 'remove', path: '/early.txt', recursive: false })
      await sim.apply(0, { kind: 'put', path: '/from0.txt' })
      await sim.advance(5 * SIM_INTERVAL)
      const paths = async (i: number): Promise<string[]> => (await lines(sim, i)).map(l => l.split(' ')[0])
      assert.deepEqual(await paths(0), ['/early.txt', '/from0.txt'])
      assert.deepEqual(await paths(1), ['/concurrent.txt', '/from0.txt', '/late.txt'], 'node 1 still takes node 0\'s writes')
      assert.ok(sim.nodes[0].sync.stats.untrusted > 0)

      sim.trust(0, [1])
      await assertConverged(sim)
      assert.deepEqual(await paths(0), ['/concurrent.txt', '/from0.txt', '/late.txt'])
    })
  })

  it('a member that has seen nothing holds back compaction while trusted, not once it is a stranger; a stranger\'s clock never does', async () => {
    await withListed({ nodes: 3, seed: 0x7a4, replica: { compactAfter: 2 } }, async (sim) => {
      const silent = 2 // trusts nobody: never pulls, heartbeats an empty clock
      sim.trust(0, [1, silent])
      sim.trust(1, [0, silent])
      for (let i = 0; i < 6; i++) await sim.apply(i % 2, { kind: 'put', path: `/f${i}` })
      await sim.advance(10 * SIM_INTERVAL)
      const pruned = (i: number): number => weight(sim.nodes[i].replica.state().pruned)
      assert.deepEqual([pruned(0), pruned(1)], [0, 0], 'held back by a trusted member')
      sim.untrust(0, [silent])
      sim.untrust(1, [silent])
      await sim.advance(10 * SIM_INTERVAL)
      assert.deepEqual([pruned(0), pruned(1)], [6, 6])
      for (let i = 0; i < 4; i++) await sim.apply(i % 2, { kind: 'put', path: `/g${i}` })
      await sim.advance(10 * SIM_INTERVAL)
      assert.deepEqual([pruned(0), pruned(1)], [10, 10], 'the stranger\'s empty clock does not hold it back')
      assert.ok(sim.nodes[0].sync.stats.untrusted > 0)
      assert.equal(sim.nodes[0].replica.memberClock(sim.nodes[silent].id), undefined)
    })
  })
})
