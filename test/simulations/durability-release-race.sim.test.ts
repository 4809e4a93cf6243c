/**
 * Extra copies released by several holders of one stripe at the same
 * moment, on the real DurabilityService in the durability simulation
 * (virtual time, so "the same moment" is exact): each holder checks the
 * stripe with the others right before its release, and without the holds of
 * node/durability/stripe-releases.ts each counted copies that another was
 * giving up at that very moment, leaving a stripe that survived one lost
 * node unable to. With them, the moment's passes release nothing that
 * would, and passes apart release the extra copies one holder at a time.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { stripeKey } from '../../protocol/durability.js'
import { readManifest, shardCID } from '../../node/durability/stripes.js'
import { noWorse, surplusCopies, worstLoss } from '../../node/durability/surplus.js'
import { FULL_VIEW_EVERY } from '../../node/durability/repairer.js'
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
 * What every holder releases when all check `held` at the same moment, as
 * the repair pass decides (node/durability/repairer.ts, `releaseSurplus`):
 * the holders' copies that are left.
 */
function releasedAtOnce (held: string[][], key: Uint8Array, nodes: string[]): string[][] {
  const released = new Set<string>()
  for (const self of nodes) {
    const now = held.map(list => [...list])
    const count = (p: string): number => now.filter(list => list.includes(p)).length
    for (const { index, keeper, keeperRanksFirst } of surplusCopies({ key, k: K, self, shards: K + M, holders: i => held[i], isAlive: () => true })) {
      if (!now[index].includes(keeper)) continue
      const theirs = count(keeper)
      const mine = count(self)
      if (!(theirs < mine || (theirs === mine && keeperRanksFirst))) continue
      if (!noWorse(now, K, self, new Set([index]))) continue
      now[index] = now[index].filter(p => p !== self)
      released.add(`${self}/${index}`)
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

describe('durability simulation: extra copies released at the same moment', () => {
  it('holders checking one stripe at once release nothing that leaves it unable to survive a lost node; apart, they release the extra copies', TEST, async () => {
    // three nodes, an ec:2+1 file: no node is free to move a shard to, so only releases change the stripe; repair
    // passes run only when the test starts them
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

    // a state of extra copies where releases made at the same moment leave the stripe worse against one lost node
    let state: string[][] | undefined
    for (const held of assignments(ids)) {
      const after = releasedAtOnce(held, key, ids)
      if (worstLoss(held) >= K && worstLoss(after) < K) { state = held; break }
    }
    assert.ok(state !== undefined, 'such a state exists for these nodes')
    for (const node of sim.nodes) await setHoldings(sim, node, file.manifest, 0, cids, state)
    assert.deepEqual(await holdersOf(sim, file.manifest, 0), state.map(list => [...list].sort()))

    // every node sees the copies (a copy is released only once held a grace period), then all pass at one moment. A
    // stripe whose shards sit on k+m distinct nodes is healthy, and a pass over healthy files asks the holders last
    // seen: the copies show in every FULL_VIEW_EVERY-th pass, which each node's passes here are brought to
    const passes = (node: RealSimNode): number => (node.services.at(-1) as DurabilityService).stats.repairPasses
    for (const node of sim.nodes) {
      while (passes(node) < FULL_VIEW_EVERY || passes(node) % FULL_VIEW_EVERY !== FULL_VIEW_EVERY - 1) await passesAtOnce(sim, [node])
    }
    await sim.time.advance(GRACE_MS + 1_000)
    await passesAtOnce(sim, sim.nodes)
    assert.ok(sim.nodes.every(n => passes(n) % FULL_VIEW_EVERY === 0), 'the passes at one moment each asked every peer')
    const atOnce = await holdersOf(sim, file.manifest, 0)
    const named = (held: string[][]): string => JSON.stringify(held.map(list => list.map(p => `n${ids.indexOf(p)}`)))
    assert.ok(atOnce.every(list => list.length > 0), `no shard's last copy released: ${named(atOnce)}`)
    assert.ok(worstLoss(atOnce) >= K, `the stripe still survives one lost node: ${named(atOnce)} from ${named(state)}`)

    // passes apart (one node at a time, a minute between): every extra copy goes, never below one lost node's worth
    for (let round = 0; round < 2 * FULL_VIEW_EVERY; round++) {
      for (const node of sim.nodes) {
        await passesAtOnce(sim, [node])
        await sim.time.advance(60_000)
        const now = await holdersOf(sim, file.manifest, 0)
        assert.ok(worstLoss(now) >= K, `round ${round}: ${named(now)}`)
      }
    }
    const settled = await holdersOf(sim, file.manifest, 0)
    assert.deepEqual(settled.map(list => list.length), [1, 1, 1], `one copy of each shard once released apart: ${named(settled)}`)
    assert.equal(new Set(settled.flat()).size, 3, 'on three distinct nodes')
    sim.time.clear()
  })
})
