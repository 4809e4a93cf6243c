/**
 * A node restarted from an old copy of its disk (same key), on the real
 * DurabilityService in the durability simulation: it holds shards that were
 * rebuilt elsewhere since the copy (it was away longer than the grace
 * period, and its disk died) and shards of a file removed and collected since. Nothing is lost, repair does not
 * storm, the extra copies are released (each live shard ends on one node)
 * and the removed file's shards leave the restored node too.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { census } from '../../simulations/durability-real-check.js'
import { placedSim } from '../helpers/durability-sim.js'
import { RealDurabilitySim, type RealSimNode, type SimFile } from '../../simulations/durability-real.js'
import { runRandomDurability } from '../../simulations/durability-faults.js'
import { FULL_VIEW_EVERY, REPAIR_JITTER } from '../../node/durability/repairer.js'

const TEST = { timeout: 120_000 }

/** The live nodes recording and storing each shard of `file` (`stripe.shard` → node ids). */
async function copiesOf (sim: RealDurabilitySim, file: SimFile): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  for (const node of sim.nodes) {
    if (node.state !== 'up') continue
    for await (const held of node.holdings.held(file.manifest)) {
      if (!await node.side.store.has(CID.parse(held.cid))) continue
      const key = `${held.stripe}.${held.shard}`
      out.set(key, [...(out.get(key) ?? []), node.id])
    }
  }
  return out
}

/** Shards of `file` recorded by `node`. */
async function heldBy (node: RealSimNode, file: SimFile): Promise<number> {
  let n = 0
  for await (const held of node.holdings.held(file.manifest)) { void held; n++ }
  return n
}

/** Let every live node collect its garbage, as `shoal gc` does. */
async function collectAll (sim: RealDurabilitySim): Promise<void> {
  const up = sim.nodes.filter(n => n.state === 'up')
  let done = 0
  for (const node of up) void node.service.collectGarbage().catch(() => {}).finally(() => { done++ })
  await sim.time.runUntil(() => done === up.length)
}

describe('durability simulation: restore of an old backup', () => {
  it('a holder restarted from an old copy after its shards were rebuilt elsewhere and a file was removed: nothing lost, no storm, extra copies released', TEST, async () => {
    const { sim, k, m, shardsOf } = await placedSim({ seed: 31, nodes: 16, files: 3 })
    const whole = { healthy: 6, atRisk: 0, degraded: 0, lost: 0, stripes: 6 }
    assert.deepEqual(await census(sim, shardsOf, k, m), whole)
    const [kept, , removed] = sim.files
    // a node (not a writer) holding shards of both the file kept and the file to remove
    let node: RealSimNode | undefined
    for (const n of sim.nodes) {
      if (node === undefined && !sim.files.some(f => f.writer === n.id) && await heldBy(n, kept) > 0 && await heldBy(n, removed) > 0) node = n
    }
    assert.ok(node !== undefined, 'a node holds shards of both files')
    const stale = await heldBy(node, kept)
    await sim.backup(node)

    // then it goes down for longer than the grace period (its shards are rebuilt elsewhere), its disk dies,
    // and a file is removed and collected everywhere
    sim.crash(node)
    sim.remove(removed)
    await sim.time.advance(sim.settings.graceMs + 3 * sim.settings.checkIntervalMs)
    await collectAll(sim)
    // the removed file's stripes are not counted any more
    const left = { ...whole, healthy: 4, stripes: 4 }
    assert.deepEqual(await census(sim, shardsOf, k, m), left)
    for (const copies of (await copiesOf(sim, kept)).values()) assert.equal(copies.length, 1, 'one copy of each shard before the restore')

    // the node comes back from its old copy
    const repairedBefore = sim.nodes.flatMap(n => n.services).reduce((sum, s) => sum + s.stats.shardsRepaired, 0)
    const pushesBefore = sim.fabric.counts.pushes
    await sim.restoreBackup(node)
    await sim.restart(node)
    assert.equal(await heldBy(node, kept), stale, 'it holds again what it held when the copy was taken')
    assert.ok(await heldBy(node, removed) > 0, 'and shards of the removed file')
    await sim.time.advance(3 * sim.settings.checkIntervalMs)
    assert.deepEqual(await census(sim, shardsOf, k, m), left)

    // past the grace period and a pass that asks every peer (every FULL_VIEW_EVERY-th pass; each wait up to 1 + REPAIR_JITTER periods), then a collection everywhere
    await sim.time.advance(sim.settings.graceMs + (Math.ceil((1 + REPAIR_JITTER) * FULL_VIEW_EVERY) + 1) * sim.settings.checkIntervalMs)
    await collectAll(sim)
    assert.deepEqual(await census(sim, shardsOf, k, m), left)
    const extra = [...(await copiesOf(sim, kept)).entries()].filter(([, copies]) => copies.length > 1)
    assert.deepEqual(extra, [], 'every extra copy released')
    assert.equal(await heldBy(node, removed), 0, 'the removed file is forgotten on the restored node')
    for (const cid of (shardsOf.get(removed.path) ?? []).flat().filter(c => c !== '')) assert.equal(await node.side.store.has(CID.parse(cid)), false, 'and its shards collected')
    const repaired = sim.nodes.flatMap(n => n.services).reduce((sum, s) => sum + s.stats.shardsRepaired, 0) - repairedBefore
    // it lost nothing since the copy was taken: nothing is rebuilt, nothing pushed
    assert.equal(repaired, 0, `${repaired} shards rebuilt after the restore`)
    assert.ok(sim.fabric.counts.pushes - pushesBefore <= repaired, 'no push but rebuilt shards')
    sim.time.clear()
  })

  it('random schedules rich in restores of old backups: every invariant holds, extra copies released', TEST, async () => {
    for (const seed of [3, 6]) {
      const r = await runRandomDurability({ seed, nodes: 16, files: 4, faultMs: 60 * 60_000, rates: { restore: 4, 'long-crash': 2 } })
      assert.deepEqual(r.violations, [], `seed ${seed}:\n${r.schedule.join('\n')}`)
      assert.ok((r.injected.restore ?? 0) >= 3, `seed ${seed}: ${JSON.stringify(r.injected)}`)
      assert.ok(r.schedule.some(line => / from its backup of .*[1-9] held then and not now back/.test(line)) || seed !== 3, `seed ${seed} restores a stale copy:\n${r.schedule.join('\n')}`)
    }
  })
})
