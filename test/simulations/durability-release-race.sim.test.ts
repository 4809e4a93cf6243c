/**
 * Extra copies released by several holders of one stripe at the same
 * moment, on the real DurabilityService in the durability simulation
 * (virtual time, so "the same moment" is exact): each holder checks the
 * stripe with the others right before its release, and without the
 * refusal of node/durability/stripe-releases.ts (a node under way with its
 * own releases in the stripe refuses a peer's check) each counted copies
 * that another was giving up at that very moment, leaving a stripe that
 * survived one lost node unable to. With it, passes at one moment or a few
 * milliseconds apart release nothing that would, and passes apart release
 * the extra copies one holder at a time. A holder that does not answer the
 * check (as a peer of an earlier version), or answers after half the hold,
 * keeps the stripe's extra copies waiting. (The hold a check leaves on its holder covers a releaser whose
 * view lacks the asker: every view here is whole, so its tests are those of
 * test/node/durability/stripe-releases.test.ts.)
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { stripeKey } from '../../protocol/durability.js'
import { readManifest, shardCID } from '../../node/durability/stripes.js'
import { releaseConfirmed, surplusCopies, worstLoss } from '../../node/durability/surplus.js'
import { FULL_VIEW_EVERY } from '../../node/durability/repairer.js'
import { InvalidMessageError } from '../../node/errors.js'
import { RELEASE_HOLD_MS } from '../../node/durability/stripe-releases.js'
import type { HoldingsRequest, ShardsResponse } from '../../protocol/shards.js'
import type { DurabilityService } from '../../node/durability/service.js'
import { RealDurabilitySim, type RealSimNode } from '../../simulations/durability-real.js'

const TEST = { timeout: 120_000 }
const K = 2
const M = 1
const GRACE_MS = 60_000

/** Holders of each shard of `stripe` of the file's manifest: live nodes whose holdings record it and whose store has its block. */
async function holdersOf (sim: RealDurabilitySim, manifest: CID, stripe: number): Promise<string[][]> {
  const out: string[][] = Array.from({ length: K + M }, () => [])
  for (const node of sim.nodes) {
    for await (const held of node.holdings.held(manifest)) {
      if (held.stripe === stripe && await node.side.store.has(CID.parse(held.cid))) out[held.shard].push(node.id)
    }
  }
  return out.map(list => list.sort())
}

/**
 * What every holder releases when all check `held` at the same moment, by
 * the rule the repair pass uses (`surplusCopies`, then `releaseConfirmed`
 * on the answers): the holders' copies that are left.
 */
function releasedAtOnce (held: string[][], key: Uint8Array, nodes: string[]): string[][] {
  const released = new Set<string>()
  for (const self of nodes) {
    const now = held.map(list => [...list])
    for (const copy of surplusCopies({ key, k: K, self, shards: K + M, holders: i => held[i], isAlive: () => true })) {
      if (!releaseConfirmed(now, K, self, copy)) continue
      now[copy.index] = now[copy.index].filter(p => p !== self)
      released.add(`${self}/${copy.index}`)
    }
  }
  return held.map((list, i) => list.filter(p => !released.has(`${p}/${i}`)))
}

/** Every assignment of the shards of a stripe to non-empty sets of `nodes`. */
function * assignments (nodes: string[]): Generator<string[][]> {
  const subsets = Array.from({ length: (1 << nodes.length) - 1 }, (_, mask) => nodes.filter((_, i) => ((mask + 1) & (1 << i)) !== 0))
  const pick = (shard: number, chosen: string[][]): Generator<string[][]> => (function * () {
    if (shard === K + M) { yield chosen; return }
    for (const s of subsets) yield * pick(shard + 1, [...chosen, s])
  })()
  yield * pick(0, [])
}

/** Make `node` hold exactly the shards of `stripe` that `want` gives it, copying blocks from wherever they are. */
async function setHoldings (sim: RealDurabilitySim, node: RealSimNode, manifest: CID, stripe: number, cids: string[], want: string[][]): Promise<void> {
  const has = new Set<number>()
  for await (const held of node.holdings.held(manifest)) if (held.stripe === stripe) has.add(held.shard)
  for (let i = 0; i < K + M; i++) {
    const wanted = want[i].includes(node.id)
    if (wanted && !has.has(i)) {
      const cid = CID.parse(cids[i])
      let source: RealSimNode | undefined
      for (const n of sim.nodes) if (source === undefined && await n.side.store.has(cid)) source = n
      assert.ok(source !== undefined, `some node has shard ${i}`)
      await node.side.store.put(cid, await source.side.store.getBytes(cid))
      await node.holdings.hold(manifest, [{ ref: [stripe, i], cid }], { now: sim.time.now() })
    }
    if (!wanted && has.has(i)) await node.holdings.releaseShards(manifest, [[stripe, i]])
  }
}

/** Run `node`'s repair pass for each of `nodes`, all started at this virtual instant; resolves when every one is done. */
async function passesAtOnce (sim: RealDurabilitySim, nodes: RealSimNode[]): Promise<void> {
  let done = 0
  for (const node of nodes) void node.service.repair().catch(() => {}).finally(() => { done++ })
  await sim.time.runUntil(() => done === nodes.length)
}

/** A three-node simulation whose file's stripe 0 is held as `pick` chooses, each node's next pass asking every peer. */
interface Stage {
  sim: RealDurabilitySim
  manifest: CID
  ids: string[]
  state: string[][]
  /** `held` with node indices for names, for messages. */
  named: (held: string[][]) => string
}

/**
 * Three nodes, an ec:2+1 file (no node is free to move a shard to, so only
 * releases change the stripe); repair passes run only when the test starts
 * them. Stripe 0 is then held as `pick` chooses from the stripe's key and
 * the node ids, every node has seen its copies a grace period ago, and each
 * node's next pass asks every peer: a stripe whose shards sit on k+m
 * distinct nodes is healthy, and a pass over healthy files asks the holders
 * last seen, so copies elsewhere show in every FULL_VIEW_EVERY-th pass,
 * which each node's passes are brought to.
 */
async function stage (pick: (key: Uint8Array, ids: string[]) => string[][] | undefined): Promise<Stage> {
  const sim = new RealDurabilitySim({ seed: 47, nodes: 3, files: 1, policy: `ec:${K}+${M}`, leavesPerFile: 2, graceMs: GRACE_MS, checkIntervalMs: 24 * 3_600_000 })
  await sim.setup()
  await sim.place()
  const [file] = sim.files
  const writer = sim.node(file.writer)
  let key: Uint8Array | undefined
  let cids: string[] = []
  for await (const { index, stripe } of readManifest(writer.side.store, file.manifest)) {
    if (index !== 0) continue
    key = stripeKey(stripe)
    cids = Array.from({ length: K + M }, (_, i) => shardCID(stripe, K, i)?.toString() ?? '')
  }
  assert.ok(key !== undefined && cids.every(c => c !== ''), 'stripe 0 has its k+m shards')
  const ids = sim.nodes.map(n => n.id)
  assert.deepEqual((await holdersOf(sim, file.manifest, 0)).map(list => list.length), [1, 1, 1], 'placed: one holder per shard')
  const state = pick(key, ids)
  assert.ok(state !== undefined, 'such a state exists for these nodes')
  for (const node of sim.nodes) await setHoldings(sim, node, file.manifest, 0, cids, state)
  assert.deepEqual(await holdersOf(sim, file.manifest, 0), state.map(list => [...list].sort()))
  for (const node of sim.nodes) {
    while (passes(node) < FULL_VIEW_EVERY || passes(node) % FULL_VIEW_EVERY !== FULL_VIEW_EVERY - 1) await passesAtOnce(sim, [node])
  }
  await sim.time.advance(GRACE_MS + 1_000)
  const named = (held: string[][]): string => JSON.stringify(held.map(list => list.map(p => `n${ids.indexOf(p)}`)))
  return { sim, manifest: file.manifest, ids, state, named }
}

/** Repair passes `node`'s service has run. */
function passes (node: RealSimNode): number {
  return (node.services.at(-1) as DurabilityService).stats.repairPasses
}

/** A state of extra copies where releases made at the same moment leave the stripe worse against one lost node. */
function racy (key: Uint8Array, ids: string[]): string[][] | undefined {
  for (const held of assignments(ids)) {
    if (worstLoss(held) >= K && worstLoss(releasedAtOnce(held, key, ids)) < K) return held
  }
  return undefined
}

/** Passes of every node one at a time, a minute apart, `rounds` times; the stripe never below one lost node's worth. */
async function passesApart (s: Stage, rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    for (const node of s.sim.nodes) {
      await passesAtOnce(s.sim, [node])
      await s.sim.time.advance(60_000)
      const now = await holdersOf(s.sim, s.manifest, 0)
      assert.ok(worstLoss(now) >= K, `round ${round}: ${s.named(now)}`)
    }
  }
}

/**
 * One extra copy of a shard of stripe 0, on a node holding another shard of
 * the stripe (released towards its other holder), and the third node:
 * neither that copy's holder nor its keeper.
 */
async function oneExtraCopy (): Promise<{ s: Stage, third: RealSimNode, copies: () => Promise<number> }> {
  let copyOf: { shard: number, node: string } | undefined
  const s = await stage((key, ids) => {
    const held = [[ids[0]], [ids[1]], [ids[2]]]
    for (let shard = 0; shard < K + M && copyOf === undefined; shard++) {
      for (const node of ids) {
        if (held[shard].includes(node) || copyOf !== undefined) continue
        const withCopy = held.map((list, i) => i === shard ? [...list, node] : list)
        if (surplusCopies({ key, k: K, self: node, shards: K + M, holders: i => withCopy[i], isAlive: () => true }).some(c => c.index === shard)) copyOf = { shard, node }
      }
    }
    return copyOf === undefined ? undefined : held.map((list, i) => i === copyOf?.shard ? [...list, copyOf.node] : list)
  })
  assert.ok(copyOf !== undefined)
  const { shard, node } = copyOf
  const third = s.sim.nodes.find(n => n.id !== node && !s.state[shard].includes(n.id)) as RealSimNode
  return { s, third, copies: async () => (await holdersOf(s.sim, s.manifest, 0))[shard].length }
}

/**
 * With the third node of {@link oneExtraCopy} answering `holdings` through
 * `fault`, passes apart keep the extra copy; answering as it should again,
 * they release it.
 */
async function extraCopyWaitsFor (fault: (answer: () => Promise<ShardsResponse>, request: HoldingsRequest, time: RealDurabilitySim['time']) => Promise<ShardsResponse>): Promise<void> {
  const { s, third, copies } = await oneExtraCopy()
  const handler = third.side.handler
  assert.ok(handler !== undefined)
  third.side.handler = async (from, request, signal) => {
    const answer = async (): Promise<ShardsResponse> => await handler(from, request, signal)
    return request.type === 'holdings' ? await fault(answer, request, s.sim.time) : await answer()
  }
  await passesApart(s, 2 * FULL_VIEW_EVERY)
  assert.equal(await copies(), 2, 'the extra copy stays while the holder answers so')
  third.side.handler = handler
  await passesApart(s, 2 * FULL_VIEW_EVERY)
  assert.equal(await copies(), 1, 'released once it answers as it should')
  s.sim.time.clear()
}

describe('durability simulation: extra copies released at the same moment', () => {
  it('holders checking one stripe at once release nothing that leaves it unable to survive a lost node; apart, they release the extra copies', TEST, async () => {
    const s = await stage(racy)
    await passesAtOnce(s.sim, s.sim.nodes)
    assert.ok(s.sim.nodes.every(n => passes(n) % FULL_VIEW_EVERY === 0), 'the passes at one moment each asked every peer')
    const atOnce = await holdersOf(s.sim, s.manifest, 0)
    assert.ok(atOnce.every(list => list.length > 0), `no shard's last copy released: ${s.named(atOnce)}`)
    assert.ok(worstLoss(atOnce) >= K, `the stripe still survives one lost node: ${s.named(atOnce)} from ${s.named(s.state)}`)

    // passes apart: every extra copy goes
    await passesApart(s, 2 * FULL_VIEW_EVERY)
    const settled = await holdersOf(s.sim, s.manifest, 0)
    assert.deepEqual(settled.map(list => list.length), [1, 1, 1], `one copy of each shard once released apart: ${s.named(settled)}`)
    assert.equal(new Set(settled.flat()).size, 3, 'on three distinct nodes')
    s.sim.time.clear()
  })

  it('holders starting their passes a few milliseconds apart: one check reaches the others first, and the stripe still survives a lost node', TEST, async () => {
    for (const apartMs of [1, 2, 3, 5, 8, 13, 21, 34]) {
      const s = await stage(racy)
      let done = 0
      s.sim.nodes.forEach((node, i) => {
        s.sim.time.setTimeout(() => { void node.service.repair().catch(() => {}).finally(() => { done++ }) }, i * apartMs)
      })
      await s.sim.time.runUntil(() => done === s.sim.nodes.length)
      const after = await holdersOf(s.sim, s.manifest, 0)
      assert.ok(worstLoss(after) >= K, `${apartMs} ms apart: ${s.named(after)} from ${s.named(s.state)}`)
      s.sim.time.clear()
    }
  })

  it('a holder that does not answer the check (as a peer of an earlier version): the stripe\'s extra copies wait for it', TEST, async () => {
    await extraCopyWaitsFor(async (answer, request) => {
      if (request.release === true) throw new InvalidMessageError('invalid shards message: holdings request has a key it does not know')
      return await answer()
    })
  })

  it('a check answered after half the hold: its releases wait for a pass whose answers come in time', TEST, async () => {
    // the third node answers checks 16 s late: the holds of the others, taken at their answers, may end before a
    // release made on them would
    await extraCopyWaitsFor(async (answer, request, time) => {
      if (request.release === true) await new Promise<void>(resolve => { time.setTimeout(resolve, RELEASE_HOLD_MS / 2 + 1_000) })
      return await answer()
    })
  })
})
