/**
 * One seeded run of the real-service durability simulation and its
 * invariants, judged from the nodes' disks (holdings records and blocks that
 * pass their hash), never from what any node believes:
 *
 * - no acknowledged file lost while at most m shards of any stripe are gone
 *   for good (checked after every fault and at the end);
 * - no repair storm: block bytes moved after placement ≤ 1.2 × k shards per
 *   rebuilt shard, and no more shards rebuilt than were lost;
 * - convergence: after the faults stop, every stripe is healthy again (k+m
 *   shards on k+m distinct live nodes) before a deadline;
 * - no extra copies: once whole, after a garbage collection on every live
 *   node, no node holds (in its holdings records) or stores (shard blocks)
 *   more shards of a stripe than placement gives it, ⌈(k+m) / live nodes⌉.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { parsePolicy, codingOf } from '../protocol/durability.js'
import { assessStripe, type ShardHolders } from '../node/durability/health.js'
import { readManifest, shardCID } from '../node/durability/stripes.js'
import { VirtualTime } from './virtual-time.js'
import { RealDurabilitySim, type RealSimNode, type RealSimOptions } from './durability-real.js'

/** Health of every stripe, counted. */
export interface Census { healthy: number, atRisk: number, degraded: number, lost: number, stripes: number }

/** What one run measured. */
export interface RealRunResult {
  seed: number
  nodes: number
  files: number
  stripes: number
  /** Faults injected, one line each. */
  faults: string[]
  /** Shards lost for good (on the departed node, or corrupt). */
  lostShards: number
  /** Shards rebuilt by repair or scrub, over every service. */
  rebuilt: number
  /** Block bytes moved after placement, and the bound 1.2 × k × shard size × rebuilt. */
  repairBytes: number
  repairBound: number
  /** Shards recorded or stored on a node beyond its share of their stripe, at the end (after gc). */
  extraShards: number
  /** Virtual ms from the last fault to full redundancy (undefined: not reached). */
  convergedAfterMs?: number
  virtualMs: number
  /** Violations of the invariants (empty: all hold). */
  violations: string[]
}

/** Where each shard of every stripe is, on live nodes' disks: per file, per stripe, per shard, the holders. */
async function whereShards (sim: RealDurabilitySim, shardsOf: Map<string, string[][]>): Promise<Map<string, ShardHolders[][]>> {
  const out = new Map<string, ShardHolders[][]>()
  for (const file of sim.files) {
    if (file.removed !== undefined) continue
    const stripes = (shardsOf.get(file.path) ?? []).map(s => s.map(cid => (cid === '' ? undefined : [] as string[])))
    for (const node of sim.mayHold()) {
      if (node.state !== 'up') continue
      for await (const held of node.holdings.held(file.manifest)) {
        const expected = shardsOf.get(file.path)?.[held.stripe]?.[held.shard]
        if (expected === undefined || expected !== held.cid) continue
        try {
          await node.side.store.getBytes(CIDof(held.cid))
          ;(stripes[held.stripe][held.shard] as string[] | undefined)?.push(node.id)
        } catch {}
      }
    }
    out.set(file.path, stripes)
  }
  return out
}

function CIDof (text: string): CID {
  return CID.parse(text)
}

/**
 * Shards of each stripe a live node holds beyond what placement gives one
 * node (⌈(k+m) / live nodes⌉), counted twice: in its holdings records and in
 * its store (distinct shard blocks present). One line per node and stripe
 * over the share.
 */
export async function extraShards (sim: RealDurabilitySim, shardsOf: Map<string, string[][]>, k: number, m: number): Promise<string[]> {
  const up = sim.nodes.filter(n => n.state === 'up')
  const share = Math.ceil((k + m) / up.length)
  const out: string[] = []
  for (const file of sim.files) {
    if (file.removed !== undefined) continue
    const stripes = shardsOf.get(file.path) ?? []
    // the others record and store nothing
    for (const node of sim.mayHold().filter(n => n.state === 'up')) {
      const recorded = new Map<number, number>()
      for await (const held of node.holdings.held(file.manifest)) recorded.set(held.stripe, (recorded.get(held.stripe) ?? 0) + 1)
      for (let s = 0; s < stripes.length; s++) {
        let stored = 0
        for (const cid of new Set(stripes[s].filter(c => c !== ''))) if (await node.side.store.has(CIDof(cid))) stored++
        const held = recorded.get(s) ?? 0
        if (held > share || stored > share) out.push(`${file.path} stripe ${s}: node ${node.id.slice(-6)}${node.id === file.writer ? ' (writer)' : ''} holds ${held}, stores ${stored} shards (share ${share})`)
      }
    }
  }
  return out
}

/** Count stripe health over every file. */
export async function census (sim: RealDurabilitySim, shardsOf: Map<string, string[][]>, k: number, m: number): Promise<Census> {
  const where = await whereShards(sim, shardsOf)
  const c: Census = { healthy: 0, atRisk: 0, degraded: 0, lost: 0, stripes: 0 }
  for (const stripes of where.values()) {
    for (const shards of stripes) {
      c.stripes++
      const { health } = assessStripe(k, m, shards)
      if (health === 'healthy') c.healthy++
      else if (health === 'at-risk') c.atRisk++
      else if (health === 'degraded') c.degraded++
      else c.lost++
    }
  }
  return c
}

/** The shard CIDs of every file, per stripe ('' for a zero shard of a short last stripe), read from the writers' manifests. */
export async function shardMap (sim: RealDurabilitySim, k: number, m: number): Promise<Map<string, string[][]>> {
  const shardsOf = new Map<string, string[][]>()
  for (const file of sim.files) {
    const writer = sim.node(file.writer)
    const stripes: string[][] = []
    for await (const { stripe } of readManifest(writer.side.store, file.manifest)) {
      stripes.push(Array.from({ length: k + m }, (_, i) => shardCID(stripe, k, i)?.toString() ?? ''))
    }
    shardsOf.set(file.path, stripes)
  }
  return shardsOf
}

/** Run one seeded scenario and check the invariants. */
export async function runRealDurability (options: RealSimOptions): Promise<RealRunResult> {
  const sim = new RealDurabilitySim(options)
  await sim.setup()
  const { k, m } = codingOf(parsePolicy(sim.settings.policy)) as { k: number, m: number }
  const shardsOf = await shardMap(sim, k, m)
  const violations: string[] = []
  const faults: string[] = []
  const rng = sim.rng.fork()
  const { graceMs } = sim.settings

  await sim.place()
  await sim.time.advance(3 * sim.settings.checkIntervalMs, { maxEvents: 2_000_000 })
  const placed = await census(sim, shardsOf, k, m)
  if (placed.healthy !== placed.stripes) violations.push(`placement: ${JSON.stringify(placed)}`)
  const bytesBefore = sim.fabric.counts.blockBytes

  const check = async (when: string): Promise<void> => {
    const c = await census(sim, shardsOf, k, m)
    if (c.lost > 0) violations.push(`${when}: ${c.lost} stripe(s) lost ${JSON.stringify(c)}`)
  }
  const up = (): RealSimNode[] => sim.nodes.filter(n => n.state === 'up')

  // 1. a partition shorter than the grace period: a quarter of the nodes apart
  const shuffled = [...up()].sort(() => rng.next() - 0.5)
  const apart = shuffled.slice(0, Math.max(1, Math.floor(shuffled.length / 4))).map(n => n.id)
  sim.fabric.partition([apart])
  faults.push(`partition ${apart.length}/${sim.nodes.length} for ${graceMs / 2 / 60_000} min`)
  await sim.time.advance(graceMs / 2, { maxEvents: 5_000_000 })
  sim.fabric.heal()
  await check('after the partition')

  // 2. a crash and restart within the grace period (disk kept)
  const crashed = rng.pick(up())
  sim.crash(crashed)
  faults.push(`crash+restart after ${graceMs / 2 / 60_000} min`)
  await sim.time.advance(graceMs / 2, { maxEvents: 5_000_000 })
  await sim.restart(crashed)
  await check('after the restart')

  // 3. a departure for good, and corrupt shards in stripes the departed node held none of
  const gone = rng.pick(up())
  let lostShards = 0
  for (const file of sim.files) for await (const held of gone.holdings.held(file.manifest)) { void held; lostShards++ }
  sim.leave(gone)
  faults.push(`leave for good (${lostShards} shards)`)
  const where = await whereShards(sim, shardsOf)
  let corrupted = 0
  for (const [path, stripes] of where) {
    if (corrupted >= 2) break
    for (const shards of stripes) {
      if (corrupted >= 2) break
      if (shards.some(s => s !== undefined && s.length === 0)) continue
      const holder = shards.find((s): s is string[] => s !== undefined && s.length > 0)?.[0]
      const index = shards.findIndex(s => s !== undefined && s.length > 0 && s[0] === holder)
      const file = sim.files.find(f => f.path === path)
      const cid = shardsOf.get(path)?.[stripes.indexOf(shards)]?.[index]
      if (holder === undefined || file === undefined || cid === undefined || cid === '') continue
      if (sim.node(holder).side.store.corrupt(CIDof(cid))) { corrupted++; lostShards++ }
    }
  }
  faults.push(`${corrupted} corrupt shard(s)`)
  await check('after the departure')
  const lastFault = sim.time.now()

  // 4. run until every stripe is whole again, checking once per repair period
  let convergedAfterMs: number | undefined
  const deadline = lastFault + graceMs + 2 * sim.settings.scrubIntervalMs + 10 * sim.settings.checkIntervalMs
  for (let i = 0; i < 1000 && sim.time.now() < deadline; i++) {
    await sim.time.advance(sim.settings.checkIntervalMs, { maxEvents: 5_000_000 })
    const c = await census(sim, shardsOf, k, m)
    if (c.lost > 0) { violations.push(`while repairing: ${JSON.stringify(c)}`); break }
    if (c.healthy === c.stripes) { convergedAfterMs = sim.time.now() - lastFault; break }
  }
  if (convergedAfterMs === undefined) violations.push(`not whole again by the deadline: ${JSON.stringify(await census(sim, shardsOf, k, m))}`)

  const rebuilt = sim.nodes.flatMap(n => n.services).reduce((sum, s) => sum + s.stats.shardsRepaired, 0)
  const shardBytes = sim.settings.leafBytes
  const repairBytes = sim.fabric.counts.blockBytes - bytesBefore
  const repairBound = 1.2 * k * shardBytes * rebuilt
  if (rebuilt > lostShards) violations.push(`repair storm: ${rebuilt} shards rebuilt for ${lostShards} lost`)
  if (repairBytes > repairBound) violations.push(`repair storm: ${repairBytes} bytes moved for ${rebuilt} rebuilt shards (bound ${repairBound})`)

  // 5. no extra copies once whole: each live node collects its garbage, then holds and stores its share only
  let collected = 0
  const up0 = up()
  for (const node of up0) node.service.collectGarbage().finally(() => { collected++ }).catch(err => { violations.push(`gc on ${node.id}: ${String(err?.message ?? err)}`) })
  await sim.time.runUntil(() => collected === up0.length, { maxEvents: 1_000_000 })
  const extra = await extraShards(sim, shardsOf, k, m)
  violations.push(...extra.slice(0, 5))
  if (extra.length > 5) violations.push(`… ${extra.length - 5} more node-stripes over their share`)

  const virtualMs = sim.time.now() - VirtualTime.START
  let stopped = false
  void Promise.all(up().map(async n => { await n.service.stop() })).finally(() => { stopped = true })
  await sim.time.runUntil(() => stopped, { maxEvents: 1_000_000 })
  sim.time.clear()
  return {
    seed: options.seed,
    nodes: sim.nodes.length,
    files: sim.files.length,
    stripes: placed.stripes,
    faults,
    lostShards,
    rebuilt,
    repairBytes,
    repairBound,
    extraShards: extra.length,
    convergedAfterMs,
    virtualMs,
    violations
  }
}
