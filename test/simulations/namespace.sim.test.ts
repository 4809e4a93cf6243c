/**
 * Property tests of the namespace on a simulated swarm: many replicas on a
 * virtual network (seeded delays, drops, duplicates, partitions) with a
 * virtual clock, running the real Replica and NamespaceSync.
 *
 * Every property is seeded (fast-check seed + the scenario's own seed), so
 * a failure replays exactly; the report lists the steps and the end of the
 * simulation's trace.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { signerFromKey } from '../../node/namespace/identity.js'
import { Adversary } from '../../simulations/adversary.js'
import type { SimOp } from '../../simulations/namespace-ops.js'
import { simOpArb } from '../../simulations/lifecycle-steps.js'
import { NamespaceSim, type SimOptions } from '../../simulations/namespace-sim.js'
import { showView } from '../../simulations/namespace-view.js'
import { Prng } from '../../simulations/prng.js'
import { withSim } from './namespace-sim-helpers.js'
import { runSteps, showStep, type Step } from '../../simulations/scenario.js'

/**
 * Runner settings shared by every property: failures are reported with the
 * inner error, and not shrunk unless `SIM_SHRINK` is set (shrinking replays
 * whole simulations, which takes minutes); a failure prints the seed and
 * path to replay it with.
 */
const RUN = { includeErrorInReport: true, endOnFailure: process.env.SIM_SHRINK === undefined }

// ---------------------------------------------------------------------------
// arbitraries

const opArb = simOpArb

/** Steps: mostly writes, some waits, and (with weight `splits`) more partitions and heals. */
function stepArb (nodes: number, maxWait = 300, ops = opArb, splits = 1): fc.Arbitrary<Step> {
  const arbs: Array<fc.WeightedArbitrary<Step>> = [
    { weight: 6, arbitrary: fc.record({ t: fc.constant('op' as const), node: fc.nat(nodes - 1), op: ops }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: maxWait }) }) }
  ]
  if (splits > 0) {
    arbs.push({ weight: splits, arbitrary: fc.record({ t: fc.constant('split' as const), groups: fc.integer({ min: 2, max: 3 }), salt: fc.nat() }) })
    arbs.push({ weight: splits, arbitrary: fc.constant({ t: 'heal' as const }) })
  }
  return fc.oneof(...arbs)
}

/** Link conditions and a seed for the simulation's own randomness. */
interface Conditions { seed: number, drop: number, duplicate: number, maxDelay: number }

const conditionsArb: fc.Arbitrary<Conditions> = fc.record({
  seed: fc.nat(),
  drop: fc.integer({ min: 0, max: 30 }).map(p => p / 100),
  duplicate: fc.integer({ min: 0, max: 20 }).map(p => p / 100),
  maxDelay: fc.integer({ min: 1, max: 100 })
})

/**
 * Steps with at least one partition that is healed at the end: some steps,
 * a split, more steps (which may split and heal again), a heal.
 */
function scenarioArb (nodes: number, minSteps: number, maxSteps: number, step = stepArb(nodes)): fc.Arbitrary<{ conditions: Conditions, steps: Step[] }> {
  return fc.record({
    conditions: conditionsArb,
    before: fc.array(step, { minLength: Math.floor(minSteps / 3), maxLength: Math.floor(maxSteps / 3), size: 'max' }),
    split: fc.record({ t: fc.constant('split' as const), groups: fc.integer({ min: 2, max: 3 }), salt: fc.nat() }),
    during: fc.array(step, { minLength: minSteps - Math.floor(minSteps / 3), maxLength: maxSteps - Math.floor(maxSteps / 3), size: 'max' })
  }).map(({ conditions, before, split, during }) => ({ conditions, steps: [...before, split, ...during, { t: 'heal' as const }] }))
}

function simOptions (nodes: number, c: Conditions, extra: Partial<SimOptions> = {}): SimOptions {
  return { nodes, seed: c.seed, network: { drop: c.drop, duplicate: c.duplicate, maxDelay: c.maxDelay }, ...extra }
}

// ---------------------------------------------------------------------------
// checks

/** A failure report: what differs, the scenario, and the end of the trace. */
function report (sim: NamespaceSim, problems: string[], steps: readonly Step[] = []): string {
  return [
    ...problems.slice(0, 30),
    `conditions: ${JSON.stringify(sim.options.network ?? {})} seed ${sim.options.seed} nodes ${sim.nodes.length}`,
    'steps:', ...steps.map(s => '  ' + showStep(s)),
    'trace (last 80):', ...sim.trace.slice(-80).map(l => '  ' + l)
  ].join('\n')
}

/** Converge, then check equal views and no lost write; throws a report on failure. */
async function assertConverged (sim: NamespaceSim, steps: readonly Step[] = [], maxTime = 60_000): Promise<void> {
  const converged = await sim.converge(maxTime)
  const problems: string[] = []
  if (!converged) problems.push(`clocks did not converge within ${maxTime} virtual ms`)
  problems.push(...await sim.differences())
  problems.push(...await sim.lostWrites())
  if (problems.length > 0) {
    const views = await sim.views()
    problems.push('view of node 0:', showView(views[0]))
    throw new assert.AssertionError({ message: report(sim, problems, steps) })
  }
}


// ---------------------------------------------------------------------------
// catching up from a snapshot

const MEMBER_TIMEOUT = 4000

const catchUpArb = fc.record({
  conditions: conditionsArb.map(c => ({ ...c, drop: c.drop / 3, duplicate: c.duplicate / 2 })),
  nodes: fc.integer({ min: 3, max: 6 }),
  away: fc.nat(),
  before: fc.array(fc.record({ node: fc.nat(), op: opArb }), { minLength: 2, maxLength: 8, size: 'max' }),
  others: fc.array(fc.record({ node: fc.nat(), op: opArb, wait: fc.integer({ min: 0, max: 400 }) }), { minLength: 4, maxLength: 16, size: 'max' }),
  own: fc.array(fc.record({ at: fc.nat(), overwrite: fc.boolean() }), { maxLength: 6, size: 'max' })
})

/**
 * Partition one replica away while the others write enough to compact past
 * it; it writes files of its own meanwhile. After the heal it must
 * bootstrap from a snapshot, converge, and its own writes must survive.
 * `awayCompacts`: the away replica also uses the short member timeout (so it
 * compacts its own history while alone).
 */
async function catchUp (c: typeof catchUpArb extends fc.Arbitrary<infer T> ? T : never, awayCompacts: boolean): Promise<void> {
  const { conditions, nodes, before, others, own } = c
  const away = c.away % nodes
  const replica = { compactAfter: 4, memberTimeout: MEMBER_TIMEOUT }
  const replicaFor = (i: number): { memberTimeout?: number } => i === away && !awayCompacts ? { memberTimeout: 7 * 24 * 3600 * 1000 } : {}
  await withSim(simOptions(nodes, conditions, { replica, replicaFor }), async (sim) => {
    for (const s of before) {
      await sim.apply(s.node % nodes, s.op)
      await sim.advance(50)
    }
    await assertConverged(sim)
    sim.isolate(away)
    const rest = sim.nodes.filter(n => n.index !== away).map(n => n.index)
    const ownPaths: string[] = []
    // the others write (random ops, plus enough puts that they compact); the away replica writes its own files
    for (let i = 0; i < others.length; i++) {
      const s = others[i]
      await sim.apply(rest[s.node % rest.length], s.op)
      await sim.apply(rest[(s.node + 1) % rest.length], { kind: 'put', path: `/o/${i}` })
      for (const o of own.filter(o => o.at % others.length === i)) {
        const p = o.overwrite && ownPaths.length > 0 ? ownPaths[ownPaths.length - 1] : `/x/${ownPaths.length}`
        const out = await sim.apply(away, { kind: 'put', path: p })
        assert.ok(out.ok)
        if (!ownPaths.includes(p)) ownPaths.push(p)
      }
      await sim.advance(s.wait)
    }
    await sim.advance(MEMBER_TIMEOUT + 4 * 1000)
    // precondition: the others pruned history the away replica has not seen
    const awayClock = sim.nodes[away].replica.state().clock
    const behind = rest.some(i => Object.entries(sim.nodes[i].replica.state().pruned).some(([a, k]) => (awayClock[a] ?? 0) < k))
    assert.ok(behind, report(sim, ['the others did not compact past the away replica (harness precondition)']))
    const snapshotsBefore = sim.nodes[away].sync.stats.snapshots
    sim.heal()
    await assertConverged(sim)
    assert.ok(sim.nodes[away].sync.stats.snapshots > snapshotsBefore, report(sim, ['the away replica did not bootstrap from a snapshot']))
    // its own writes made while away: the last version of each path is visible everywhere
    const lastByPath = new Map<string, string>()
    for (const w of sim.writes) if (w.node === away && ownPaths.includes(w.path)) lastByPath.set(w.path, w.cid)
    for (const node of sim.nodes) {
      for (const [p, cid] of lastByPath) {
        const entry = await node.replica.lookup(p)
        assert.equal(entry?.type === 'file' ? entry.cid : undefined, cid, report(sim, [`node ${node.index} lost ${p} (${cid}) written by the away node ${away}`]))
      }
    }
  })
}

// ---------------------------------------------------------------------------
// properties

describe('namespace simulation', () => {
  it('50 replicas converge (clock, heads, tree, conflicts) after random writes, delays, drops, duplicates and a healed partition', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb(50, 30, 50, stepArb(50, 500, opArb, 0)), async ({ conditions, steps }) => {
      await withSim(simOptions(50, conditions, { sync: { interval: 2000 } }), async (sim) => {
        await runSteps(sim, steps)
        await assertConverged(sim, steps)
      })
    }), { seed: 0x5a0a1, numRuns: 3, ...RUN })
  })

  it('no acknowledged write is lost: every version is visible everywhere or was knowingly superseded (3–8 replicas)', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 3, max: 8 }).chain(n => scenarioArb(n, 20, 50).map(s => ({ n, ...s }))), async ({ n, conditions, steps }) => {
      await withSim(simOptions(n, conditions), async (sim) => {
        await runSteps(sim, steps)
        await assertConverged(sim, steps)
      })
    }), { seed: 0x10575, numRuns: 40, ...RUN })
  })

  it('no acknowledged write is lost under repeated concurrent writes to one path across shifting partitions (3–4 replicas)', async () => {
    const hot: fc.Arbitrary<SimOp> = fc.oneof(
      { weight: 6, arbitrary: fc.constant({ kind: 'put' as const, path: '/p.txt' }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'remove' as const, path: '/p.txt', recursive: false }) }
    )
    const arb = fc.integer({ min: 3, max: 4 }).chain(n => scenarioArb(n, 10, 30, stepArb(n, 600, hot)).map(s => ({ n, ...s })))
    await fc.assert(fc.asyncProperty(arb, async ({ n, conditions, steps }) => {
      await withSim(simOptions(n, conditions), async (sim) => {
        await runSteps(sim, steps)
        await assertConverged(sim, steps)
      })
    }), { seed: 0x407, numRuns: 40, ...RUN })
  })

  it('concurrent writes to one path across a partition end with one winner and one conflict copy per loser', async () => {
    const arb = fc.record({
      conditions: conditionsArb,
      groups: fc.integer({ min: 2, max: 4 }),
      extra: fc.integer({ min: 0, max: 4 }),
      writes: fc.array(fc.record({ count: fc.integer({ min: 1, max: 3 }), wait: fc.integer({ min: 0, max: 1500 }) }), { minLength: 4, maxLength: 4 })
    })
    await fc.assert(fc.asyncProperty(arb, async ({ conditions, groups, extra, writes }) => {
      const nodes = groups + extra
      await withSim(simOptions(nodes, conditions), async (sim) => {
        await sim.advance(500)
        // node g writes for group g; the extra nodes spread over the groups
        sim.partition(Array.from({ length: groups }, (_, g) => Array.from({ length: nodes }, (_, i) => i).filter(i => i % groups === g)))
        const path = '/shared/f.txt'
        const last: Array<{ cid: string, time: number, author: string }> = []
        for (let g = 0; g < groups; g++) {
          for (let k = 0; k < writes[g].count; k++) {
            const out = await sim.apply(g, { kind: 'put', path })
            assert.ok(out.ok, `put on node ${g}: ${String(out.error)}`)
            await sim.advance(writes[g].wait)
          }
          const w = sim.writes[sim.writes.length - 1]
          last.push({ cid: w.cid, time: w.time, author: w.dot[0] })
        }
        sim.heal()
        await assertConverged(sim)
        // the winner: greatest (mtime = time here, then author)
        const sorted = [...last].sort((a, b) => a.time !== b.time ? a.time - b.time : a.author < b.author ? -1 : a.author > b.author ? 1 : 0)
        const winner = sorted[sorted.length - 1]
        const losers = new Set(sorted.slice(0, -1).map(l => l.cid))
        for (const node of sim.nodes) {
          const entry = await node.replica.stat(path)
          assert.equal(entry.type === 'file' ? entry.cid : undefined, winner.cid, report(sim, [`node ${node.index}: wrong winner at ${path}`]))
          const conflicts = (await node.replica.conflicts()).filter(c => c.path === path)
          assert.deepEqual(new Set(conflicts.map(c => c.cid)), losers, report(sim, [`node ${node.index}: conflicts ${JSON.stringify(conflicts)}`]))
          assert.equal(conflicts.length, losers.size)
          for (const c of conflicts) {
            const copy = await node.replica.stat(c.copy)
            assert.equal(copy.conflictOf, path)
          }
        }
      })
    }), { seed: 0xc0f1, numRuns: 25, ...RUN })
  })

  it('a replica partitioned away through many writes bootstraps from a snapshot, converges and keeps its own writes (the others compact while it is away)', async () => {
    // the away replica keeps the default member timeout: it does not count the others as gone
    await fc.assert(fc.asyncProperty(catchUpArb, async (c) => { await catchUp(c, false) }), { seed: 0x54a9, numRuns: 12, ...RUN })
  })

  it('a replica partitioned away catches up and keeps its writes when both sides compact while apart', async () => {
    // every replica, the away one included, drops silent members after MEMBER_TIMEOUT
    await fc.assert(fc.asyncProperty(catchUpArb, async (c) => { await catchUp(c, true) }), { seed: 0x54aa, numRuns: 12, ...RUN })
  })

  it('forged and corrupt entries, pages and snapshots are rejected by every replica and change nothing', async () => {
    const arb = fc.record({
      seed: fc.nat(),
      nodes: fc.integer({ min: 3, max: 6 }),
      ops: fc.array(fc.record({ node: fc.nat(), op: opArb }), { minLength: 3, maxLength: 12, size: 'max' }),
      forgeries: fc.integer({ min: 5, max: 25 }),
      garbage: fc.integer({ min: 1, max: 5 }),
      after: fc.array(fc.record({ node: fc.nat(), op: opArb }), { minLength: 1, maxLength: 6, size: 'max' })
    })
    await fc.assert(fc.asyncProperty(arb, async ({ seed, nodes, ops, forgeries, garbage, after }) => {
      await withSim({ nodes, seed }, async (sim) => {
        for (const s of ops) {
          await sim.apply(s.node % nodes, s.op)
          await sim.advance(30)
        }
        await sim.apply(0, { kind: 'put', path: '/always' })
        await assertConverged(sim)
        const before = await sim.views()
        const rejectedBefore = sim.nodes.map(n => n.replica.rejected)
        const invalidBefore = sim.nodes.map(n => n.sync.stats.invalidMessages)
        const failuresBefore = sim.nodes.map(n => n.sync.stats.pullFailures)
        const shunnedBefore = sim.nodes.map(n => n.sync.stats.shunned)

        // the adversary joins with honest entries to forge from
        const rng = new Prng(seed ^ 0x6d616c)
        const honest = await sim.nodes[0].replica.pull({}, 2048)
        assert.equal(honest.type, 'entries')
        const signer = signerFromKey(await generateKeyPairFromSeed('Ed25519', rng.bytes(32)))
        const mallory = new Adversary(rng, signer, honest.type === 'entries' ? honest.entries : [], () => sim.time.now())
        const endpoint = sim.net.endpoint(signer.id)
        await mallory.attach(endpoint, () => sim.nodes[0].replica.state().clock)
        const clock = sim.nodes[0].replica.state().clock
        for (let i = 0; i < forgeries; i++) {
          const forged = await mallory.forge()
          for (const n of sim.nodes) endpoint.sendTo(n.id, mallory.headsMessage([forged.bytes], clock))
          await sim.advance(rng.int(0, 100))
        }
        for (let i = 0; i < garbage; i++) for (const n of sim.nodes) endpoint.sendTo(n.id, rng.bytes(rng.int(0, 200)))
        await sim.advance(5000)

        const afterAttack = await sim.views()
        for (const node of sim.nodes) {
          const i = node.index
          assert.deepEqual(afterAttack[i], before[i], report(sim, [`node ${i} changed under attack`, showView(afterAttack[i]), 'was', showView(before[i])]))
          // each forgery and each garbage message is rejected, or dropped unread once the adversary is shunned for them
          const rejected = node.replica.rejected - rejectedBefore[i]
          const invalid = node.sync.stats.invalidMessages - invalidBefore[i]
          const dropped = node.sync.stats.shunned - shunnedBefore[i]
          assert.ok(rejected + invalid + dropped >= forgeries + garbage, `node ${i}: ${rejected} rejected + ${invalid} invalid + ${dropped} dropped unread < ${forgeries} forged + ${garbage} garbage messages`)
          assert.ok(rejected >= Math.min(forgeries, 5), `node ${i} rejected ${rejected} forged entries before shunning the adversary`)
          assert.ok(node.sync.scores.shunned(signer.id), `node ${i} does not shun the adversary after ${forgeries} forged entries`)
          assert.ok(node.sync.stats.pullFailures > failuresBefore[i] || mallory.answered === 0, `node ${i} never failed a pull from the adversary`)
        }
        assert.ok(mallory.answered > 0, 'nobody pulled from the adversary')

        // honest work goes on while the adversary stays
        for (const s of after) {
          await sim.apply(s.node % nodes, s.op)
          await sim.advance(30)
        }
        await assertConverged(sim)
        for (const view of await sim.views()) {
          for (const e of view.tree) assert.ok(e.cid === undefined || !mallory.forgedCIDs.has(e.cid), `forged ${e.cid ?? ''} visible at ${e.path}`)
        }
      })
    }), { seed: 0xbad5, numRuns: 10, ...RUN })
  })
})
