/**
 * Random fault schedules for the real-service durability simulation, drawn
 * from the seed as the run goes (each fault is chosen against the state the
 * swarm is in), and the invariants checked during and after the run. What
 * FoundationDB's simulation and TigerBeetle's VOPR do for their systems:
 * the faults find the bugs, the seed replays them.
 *
 * Faults (weights in {@link DEFAULT_RATES}, each configurable):
 * `crash` (restart with the disk kept, within the grace period),
 * `long-crash` (the same, back after the grace period: its shards are
 * rebuilt elsewhere meanwhile), `disk-lost` (restart with the same key and an
 * empty store), `restore` (a copy of a node's disk is taken; one to three
 * grace periods later the node crashes and comes back from that copy, same
 * key, up to twice the grace period later: without what it was given since,
 * with what it held then — perhaps rebuilt elsewhere or collected since), `leave` (for good), `join` (a new node), `partition`
 * (symmetric: a group apart), `one-way` (some legs cut in one direction),
 * `partial` (a group cut from part of the others), `liveness` (one node
 * believes a peer down while the others do not; up to twice the grace
 * period), `corrupt` (bit flips in stored shards, for scrub to find), `slow`
 * (every leg of a node slower), `skew` (a node's wall clock set off by up to
 * twice the grace period either way, for a while: its service dates what it
 * records, and reads dates others recorded, by that clock), and the work of the namespace and of an
 * operator: `remove` (a file leaves the namespace) and `gc` (`shoal gc` on one
 * node: its service's `collectGarbage`, as production runs it).
 *
 * The fault budget is exact, on the disks: a destructive fault (leave, disk
 * lost, restore of a backup, corruption) is drawn only when afterwards every stripe of a live
 * file still has at least k distinct shards recorded and intact on the disk
 * of some node that has not left (up or down) — never more than m of a
 * stripe's shards gone at once. So any stripe that falls below k was
 * destroyed by the nodes themselves (a collected live shard, a wrong
 * release), and is reported.
 *
 * Invariants (violations listed in {@link RandomRunResult.violations}):
 * - during the run, after every fault and every repair period: every live
 *   stripe keeps ≥ k distinct shards on disks (no data destroyed by the
 *   service);
 * - garbage collection never deletes a shard of a live file that its node
 *   still records as held;
 * - convergence: once the faults stop, every live stripe is healthy again
 *   (k+m shards on k+m distinct live nodes) before a deadline;
 * - no repair storm: shards rebuilt ≤ shards at risk (destroyed, or on a
 *   node some live node could not reach for longer than the grace period),
 *   shard pushes after placement ≤ shards rebuilt, and block bytes moved ≤
 *   1.2 × k shards per rebuilt shard;
 * - no extra copies: after the run settles (the grace period and two
 *   passes that ask every peer) and every node collects its garbage, no copy
 *   of a live stripe's shards beyond k+m is left — those of nodes back after
 *   the grace period or restored from an old backup are released
 *   (node/durability/surplus.ts) — and no node holds more than its share of
 *   a stripe;
 * - removed files released everywhere: no live node records or stores a
 *   shard of a removed file.
 *
 * @module
 */
import { codingOf, parsePolicy } from '../protocol/durability.js'
import { CID } from 'multiformats/cid'
import { census, extraShards, shardMap } from './durability-real-check.js'
import { RealDurabilitySim, type NodeBackup, type RealSimNode, type RealSimOptions, type SimFile } from './durability-real.js'
import { Holdings } from '../node/durability/holdings.js'
import { FULL_VIEW_EVERY } from '../node/durability/repairer.js'
import type { MemoryBlockStore } from './memory-blockstore.js'
import { VirtualTime } from './virtual-time.js'
import type { Prng } from './prng.js'

/** What a random schedule can inject. */
export type FaultKind = 'crash' | 'long-crash' | 'disk-lost' | 'restore' | 'leave' | 'join' | 'partition' | 'one-way' | 'partial' | 'liveness' | 'corrupt' | 'slow' | 'skew' | 'remove' | 'gc'

/** Relative weights of each fault (0: never). */
export const DEFAULT_RATES: Readonly<Record<FaultKind, number>> = {
  crash: 3, 'long-crash': 1, 'disk-lost': 1, restore: 1, leave: 1, join: 1, partition: 1, 'one-way': 1, partial: 1, liveness: 1, corrupt: 2, slow: 1, skew: 1, remove: 1, gc: 2
}

/** Settings of a random run. */
export interface RandomDurabilityOptions extends RealSimOptions {
  /** Virtual ms during which faults are drawn. @default 1 h */
  faultMs?: number
  /** Mean virtual ms between two faults (drawn uniformly in [¼, 1¾] of it). @default 3 min */
  meanGapMs?: number
  /** Fault weights, merged over {@link DEFAULT_RATES}. */
  rates?: Partial<Record<FaultKind, number>>
}

/** What a random run did and found. */
export interface RandomRunResult {
  seed: number
  /** Nodes started over the run (joins included) and nodes live at the end. */
  nodes: number
  live: number
  files: number
  removed: number
  stripes: number
  /** The schedule, one line per fault and per end of one (`t+` virtual minutes since the faults began). */
  schedule: string[]
  /** Faults injected, by kind. */
  injected: Partial<Record<FaultKind, number>>
  /** Destructive faults the budget refused (a stripe would have lost more than m shards). */
  refused: number
  /** Shard copies destroyed (left with a node, lost with a disk, corrupted). */
  destroyed: number
  /** Shards at risk: destroyed, or held by a node some live node could not reach for longer than the grace period. */
  atRisk: number
  /** Shards rebuilt by repair or scrub, over every service. */
  rebuilt: number
  /** Shard blocks pushed to peers after the initial placement. */
  pushes: number
  /** Block bytes moved after placement, and the bound 1.2 × k × shard size × rebuilt. */
  repairBytes: number
  repairBound: number
  /** Copies of live stripes' shards beyond k+m at the end (the bound is 0). */
  extraCopies: number
  /** Shard copies that could have been extra: of nodes back after the grace period. */
  extraBound: number
  /** Stale shard copies restored from old backups (held then, not just before the restore). */
  restoredCopies: number
  /** Garbage collections run, and blocks they deleted. */
  collections: number
  collected: number
  /** Virtual ms from the end of the last fault to full redundancy (undefined: not reached). */
  convergedAfterMs?: number
  virtualMs: number
  /** Invariant checks made: of the disks (after every fault and repair period), of convergence, and the final ones. */
  checks: number
  violations: string[]
}

/** A node's short name in a schedule. */
function short (id: string): string { return id.slice(-6) }

/** A fault's end, due at `at`. */
interface Pending { at: number, label: string, undo: () => Promise<void> }

/** Run one random schedule from `options.seed` and check the invariants (see the module comment). */
export async function runRandomDurability (options: RandomDurabilityOptions): Promise<RandomRunResult> {
  const sim = new RealDurabilitySim(options)
  await sim.setup()
  const { k, m } = codingOf(parsePolicy(sim.settings.policy)) as { k: number, m: number }
  const shardsOf = await shardMap(sim, k, m)
  const shardIndex = new Map<string, { file: SimFile, stripe: number, shard: number }>()
  for (const file of sim.files) {
    for (const [s, shards] of (shardsOf.get(file.path) ?? []).entries()) {
      for (const [i, cid] of shards.entries()) if (cid !== '') shardIndex.set(cid, { file, stripe: s, shard: i })
    }
  }
  const rates = { ...DEFAULT_RATES, ...options.rates }
  const faultMs = options.faultMs ?? 3_600_000
  const meanGapMs = options.meanGapMs ?? 180_000
  const { graceMs, checkIntervalMs, probeIntervalMs } = sim.settings
  const violations: string[] = []
  const schedule: string[] = []
  const injected: Partial<Record<FaultKind, number>> = {}
  const corrupted = new Set<string>()
  let refused = 0
  let destroyed = 0
  let atRisk = 0
  let longAway = 0
  let collections = 0
  let collected = 0
  let checks = 0
  /** Shard copies a restored backup brought back that its node did not hold just before. */
  let restored = 0
  const maxEvents = 5_000_000

  await sim.place()
  await sim.time.advance(3 * checkIntervalMs, { maxEvents })
  const placed = await census(sim, shardsOf, k, m)
  if (placed.healthy !== placed.stripes) violations.push(`placement: ${JSON.stringify(placed)}`)
  sim.sabotaging = true
  const bytesBefore = sim.fabric.counts.blockBytes
  const pushesBefore = sim.fabric.counts.pushes
  const t0 = sim.time.now()
  const rng: Prng = sim.rng.fork()
  const log = (line: string): void => { schedule.push(`t+${((sim.time.now() - t0) / 60_000).toFixed(1)} min ${line}`) }
  const minutes = (ms: number): string => `${(ms / 60_000).toFixed(1)} min`
  const live = (): SimFile[] => sim.files.filter(f => f.removed === undefined)
  const upNodes = (): RealSimNode[] => sim.nodes.filter(n => n.state === 'up')
  const present = (): RealSimNode[] => sim.nodes.filter(n => n.state !== 'gone')

  /** Per live file and stripe, the shard indices intact and recorded on one disk. */
  const onDisk = async (holdings: Holdings, store: MemoryBlockStore): Promise<Map<string, Array<Set<number>>>> => {
    const mine = new Map<string, Array<Set<number>>>()
    // a node records shards only of the manifests it noted (as their writer or a holder): O(its files), not O(files)
    const noted = new Set<string>()
    for await (const [text] of holdings.manifests()) noted.add(text)
    for (const file of live()) {
      if (!noted.has(file.manifest.toString())) continue
      const stripes = (shardsOf.get(file.path) ?? []).map(() => new Set<number>())
      for await (const held of holdings.held(file.manifest)) {
        if (shardsOf.get(file.path)?.[held.stripe]?.[held.shard] !== held.cid) continue
        try {
          await store.getBytes(CID.parse(held.cid))
          stripes[held.stripe].add(held.shard)
        } catch {}
      }
      mine.set(file.path, stripes)
    }
    return mine
  }

  /** Per live file and stripe, the shard indices intact and recorded on each node that has not left. */
  const onDisks = async (): Promise<Map<string, Map<string, Array<Set<number>>>>> => {
    const out = new Map<string, Map<string, Array<Set<number>>>>()
    // a node that never accepted a hold (nor coded a file) has nothing on its disk
    for (const node of sim.mayHold()) if (node.state !== 'gone') out.set(node.id, await onDisk(node.holdings, node.side.store))
    return out
  }

  /** Live stripes with fewer than k distinct shards on disks once `minus` (node → shard indices per file and stripe, or the whole node) is taken away. */
  const shortStripes = (disks: Map<string, Map<string, Array<Set<number>>>>, minus: (node: string, path: string, stripe: number, shard: number) => boolean): string[] => {
    const out: string[] = []
    for (const file of live()) {
      const stripes = shardsOf.get(file.path) ?? []
      for (let s = 0; s < stripes.length; s++) {
        const present = new Set<number>()
        for (let i = 0; i < stripes[s].length; i++) if (stripes[s][i] === '') present.add(i)
        for (const [node, mine] of disks) for (const i of mine.get(file.path)?.[s] ?? []) if (!minus(node, file.path, s, i)) present.add(i)
        if (present.size < k) out.push(`${file.path} stripe ${s}: ${present.size} of ${k + m} shards left on any disk`)
      }
    }
    return out
  }

  /** Shard copies of live files on `node`'s disk. */
  const copiesOn = (disks: Map<string, Map<string, Array<Set<number>>>>, node: string): number => {
    let n = 0
    for (const stripes of disks.get(node)?.values() ?? []) for (const s of stripes) n += s.size
    return n
  }

  const checkDisks = async (when: string): Promise<void> => {
    checks++
    const short = shortStripes(await onDisks(), () => false)
    for (const line of short) violations.push(`${when}: data destroyed: ${line}`)
  }

  // who some live node cannot reach, since when (reachability only changes at faults and their ends)
  const awaySince = new Map<string, { since: number, shards: number }>()
  const noteAway = async (): Promise<void> => {
    const now = sim.time.now()
    const up = upNodes()
    let disks: Map<string, Map<string, Array<Set<number>>>> | undefined
    const cutOff = sim.fabric.cutOffAmong(up.map(n => n.id))
    for (const b of present()) {
      const away = b.state !== 'up' || cutOff.has(b.id)
      const was = awaySince.get(b.id)
      if (away && was === undefined) {
        disks ??= await onDisks()
        awaySince.set(b.id, { since: now, shards: copiesOn(disks, b.id) })
      } else if (!away && was !== undefined) {
        awaySince.delete(b.id)
        // a node notices an outage and a return at its next call: up to a probe period late
        if (now - was.since > graceMs - 2 * probeIntervalMs) { atRisk += was.shards; longAway += was.shards }
      }
    }
  }

  const collect = async (node: RealSimNode): Promise<void> => {
    const from = sim.deletions.length
    // the live shards it records as it starts: none may be deleted (one released meanwhile is not in the records after)
    const recorded = new Set<string>()
    for (const file of live()) for await (const held of node.holdings.held(file.manifest)) recorded.add(held.cid)
    collections++
    try {
      await sim.collect(node)
    } catch (err: any) {
      violations.push(`gc on ${short(node.id)}: ${String(err?.message ?? err)}`)
    }
    const deleted = sim.deletions.slice(from).filter(d => d.node === node.id)
    collected += deleted.length
    for (const d of deleted) {
      const shard = shardIndex.get(d.cid)
      if (shard === undefined || shard.file.removed !== undefined || corrupted.has(`${node.id} ${d.cid}`) || !recorded.has(d.cid)) continue
      // recorded as held when the gc started, of a file still visible: a gc never takes it (a placement releases before, not during)
      violations.push(`gc on ${short(node.id)} collected a shard it holds of live ${shard.file.path} (stripe ${shard.stripe}, shard ${shard.shard})`)
    }
  }

  /**
   * `node` crashes and its disk is replaced by a copy of `backup` (if it is
   * still its last one, the node is up and the budget allows: the shards
   * it gained since the copy are lost); it restarts 10 s to twice the
   * grace period later.
   */
  const restore = async (node: RealSimNode, backup: NodeBackup): Promise<void> => {
    if (node.backup !== backup || node.state !== 'up' || collecting.has(node.id) || !enoughUp()) { log(`no restore of ${short(node.id)} (not up, or collecting)`); return }
    const disks = await onDisks()
    const then = await onDisk(new Holdings(backup.kv), backup.store)
    const has = (path: string, s: number, i: number): boolean => then.get(path)?.[s]?.has(i) === true
    const gone = (n: string, path: string, s: number, i: number): boolean => n === node.id && !has(path, s, i)
    if (shortStripes(disks, gone).length > 0) { refused++; log(`no restore of ${short(node.id)} (the budget refuses it)`); return }
    let lost = 0
    let stale = 0
    const now = disks.get(node.id)
    for (const [path, stripes] of now ?? []) for (const [s, set] of stripes.entries()) for (const i of set) if (!has(path, s, i)) lost++
    for (const [path, stripes] of then) for (const [s, set] of stripes.entries()) for (const i of set) if (now?.get(path)?.[s]?.has(i) !== true) stale++
    destroyed += lost
    atRisk += lost
    restored += stale
    sim.crash(node)
    await sim.restoreBackup(node)
    // back within the grace period or after it (its shards rebuilt elsewhere meanwhile, the stale copies extra on its return)
    const d = rng.int(10_000, 2 * graceMs)
    log(`restore ${short(node.id)} from its backup of t+${minutes(backup.at - t0)}: ${lost} shard(s) given since lost, ${stale} held then and not now back; up in ${minutes(d)}`)
    later(d, `restart ${short(node.id)} from its backup`, async () => { await sim.restart(node) })
  }

  // the faults
  const pending: Pending[] = []
  const collecting = new Set<string>()
  const running: Array<Promise<void>> = []
  let partitioned = false
  const later = (delay: number, label: string, undo: () => Promise<void>): void => {
    pending.push({ at: sim.time.now() + delay, label, undo })
    pending.sort((a, b) => a.at - b.at)
  }
  const pickUp = (except: ReadonlySet<string> = new Set()): RealSimNode | undefined => {
    const nodes = upNodes().filter(n => !except.has(n.id) && !collecting.has(n.id))
    return nodes.length === 0 ? undefined : rng.pick(nodes)
  }
  const enoughUp = (): boolean => upNodes().length > k + m + 1
  const group = (max: number, among: RealSimNode[] = upNodes()): string[] => {
    const nodes = [...among].sort(() => rng.next() - 0.5)
    return nodes.slice(0, rng.int(1, Math.max(1, max))).map(n => n.id)
  }
  // nodes talk only within their neighbourhood (their connections): in a swarm of several, a fault between two nodes
  // takes them from one neighbourhood, else it would cut legs no call uses (one neighbourhood: the draws are as they always were)
  const several = sim.neighbourhoods.count > 1
  const upPeersOf = (node: RealSimNode): RealSimNode[] => node.peers.map(id => sim.node(id)).filter(n => n.state === 'up' && !collecting.has(n.id))
  /** An up node other than `a`: one of its neighbourhood in a swarm of several. */
  const pickOther = (a: RealSimNode | undefined): RealSimNode | undefined => {
    if (!several || a === undefined) return pickUp(new Set(a === undefined ? [] : [a.id]))
    const peers = upPeersOf(a).filter(n => n.id !== a.id)
    return peers.length === 0 ? undefined : rng.pick(peers)
  }
  const shortDuration = (): number => rng.int(30_000, Math.floor(0.8 * graceMs))

  /** Apply one fault of `kind`; false when the state does not allow it now. */
  const apply = async (kind: FaultKind): Promise<boolean> => {
    switch (kind) {
      case 'crash':
      case 'long-crash':
      case 'disk-lost': {
        if (!enoughUp()) return false
        const node = pickUp()
        if (node === undefined) return false
        if (kind === 'disk-lost') {
          const disks = await onDisks()
          if (shortStripes(disks, n => n === node.id).length > 0) { refused++; return false }
          destroyed += copiesOn(disks, node.id)
          atRisk += copiesOn(disks, node.id)
        }
        const d = kind === 'crash' ? shortDuration() : kind === 'long-crash' ? rng.int(Math.floor(1.2 * graceMs), 3 * graceMs) : rng.int(10_000, 300_000)
        sim.crash(node)
        log(`${kind} ${short(node.id)} for ${minutes(d)}`)
        later(d, `restart ${short(node.id)}${kind === 'disk-lost' ? ' with an empty disk' : ''}`, async () => { await sim.restart(node, kind === 'disk-lost' ? 'lost' : 'keep') })
        return true
      }
      case 'restore': {
        const node = pickUp()
        if (node === undefined) return false
        const backup = await sim.backup(node)
        const after = rng.int(graceMs, 3 * graceMs)
        log(`backup of ${short(node.id)}, to be restored in ${minutes(after)}`)
        later(after, `restore time of ${short(node.id)}`, async () => { await restore(node, backup) })
        return true
      }
      case 'leave': {
        if (present().length <= k + m + 2 || !enoughUp()) return false
        const node = pickUp()
        if (node === undefined) return false
        const disks = await onDisks()
        if (shortStripes(disks, n => n === node.id).length > 0) { refused++; return false }
        destroyed += copiesOn(disks, node.id)
        atRisk += copiesOn(disks, node.id)
        sim.leave(node)
        awaySince.delete(node.id)
        log(`leave ${short(node.id)} for good (${copiesOn(disks, node.id)} shards)`)
        return true
      }
      case 'join': {
        if (sim.nodes.length >= 2 * sim.settings.nodes) return false
        const node = await sim.join()
        log(`join ${short(node.id)}`)
        return true
      }
      case 'partition': {
        if (partitioned) return false
        const apart = group(Math.floor(upNodes().length / 3))
        const d = shortDuration()
        sim.fabric.partition([apart])
        partitioned = true
        log(`partition ${apart.map(short).join(',')} apart for ${minutes(d)}`)
        later(d, 'heal the partition', async () => { sim.fabric.heal(); partitioned = false })
        return true
      }
      case 'one-way':
      case 'partial': {
        const pairs: Array<[string, string]> = []
        if (kind === 'one-way') {
          for (let i = rng.int(1, 3); i > 0; i--) {
            const a = pickUp()
            const b = pickOther(a)
            if (a !== undefined && b !== undefined) pairs.push([a.id, b.id])
          }
        } else {
          // a group of one neighbourhood, cut from about half the rest of it (every node's when there is one)
          const first = several ? pickUp() : undefined
          const hood = first === undefined ? upNodes() : upPeersOf(first)
          const g = group(Math.max(1, Math.floor(hood.length / 4)), hood)
          const others = hood.filter(n => !g.includes(n.id) && rng.next() < 0.5)
          for (const a of g) for (const b of others) pairs.push([a, b.id], [b.id, a])
        }
        if (pairs.length === 0) return false
        const d = shortDuration()
        for (const [a, b] of pairs) sim.fabric.cut(a, b)
        log(`${kind} cut of ${pairs.length} leg direction(s) (${pairs.slice(0, 4).map(([a, b]) => `${short(a)}>${short(b)}`).join(' ')}${pairs.length > 4 ? ' …' : ''}) for ${minutes(d)}`)
        later(d, `restore the ${kind} cut`, async () => { for (const [a, b] of pairs) sim.fabric.restore(a, b) })
        return true
      }
      case 'liveness': {
        const a = pickUp()
        const b = pickOther(a)
        if (a === undefined || b === undefined || sim.fabric.refuses(a.id, b.id)) return false
        const d = rng.int(60_000, 2 * graceMs)
        sim.fabric.refuse(a.id, b.id, true)
        log(`liveness: ${short(a.id)} believes ${short(b.id)} down for ${minutes(d)}`)
        later(d, `${short(a.id)} reaches ${short(b.id)} again`, async () => { sim.fabric.refuse(a.id, b.id, false) })
        return true
      }
      case 'corrupt': {
        const node = pickUp()
        if (node === undefined) return false
        const disks = await onDisks()
        const mine: Array<{ path: string, stripe: number, shard: number }> = []
        for (const [path, stripes] of disks.get(node.id) ?? []) for (const [s, set] of stripes.entries()) for (const i of set) mine.push({ path, stripe: s, shard: i })
        if (mine.length === 0) return false
        const chosen = [...mine].sort(() => rng.next() - 0.5).slice(0, rng.int(1, 3))
        const hit = (n: string, path: string, s: number, i: number): boolean => n === node.id && chosen.some(c => c.path === path && c.stripe === s && c.shard === i)
        if (shortStripes(disks, hit).length > 0) { refused++; return false }
        for (const c of chosen) {
          const cid = shardsOf.get(c.path)?.[c.stripe]?.[c.shard] as string
          node.side.store.corrupt(CID.parse(cid))
          corrupted.add(`${node.id} ${cid}`)
        }
        destroyed += chosen.length
        atRisk += chosen.length
        log(`corrupt ${chosen.length} shard(s) on ${short(node.id)} (${chosen.map(c => `${c.path}#${c.stripe}.${c.shard}`).join(' ')})`)
        return true
      }
      case 'slow': {
        const node = pickUp()
        if (node === undefined) return false
        const factor = rng.int(5, 50)
        const d = shortDuration()
        sim.fabric.slow(node.id, factor)
        log(`slow ${short(node.id)} ×${factor} for ${minutes(d)}`)
        later(d, `${short(node.id)} at full speed`, async () => { sim.fabric.slow(node.id, 1) })
        return true
      }
      case 'skew': {
        const node = pickUp()
        if (node === undefined) return false
        const ms = rng.int(-2 * graceMs, 2 * graceMs)
        const d = rng.int(60_000, 2 * graceMs)
        node.skew = ms
        log(`skew ${short(node.id)} ${Math.round(ms / 1000)} s for ${minutes(d)}`)
        later(d, `${short(node.id)} clock right again`, async () => { node.skew = 0 })
        return true
      }
      case 'remove': {
        const files = live()
        if (files.length <= Math.ceil(sim.files.length / 2)) return false
        const file = rng.pick(files)
        sim.remove(file)
        log(`remove ${file.path}`)
        return true
      }
      case 'gc': {
        const node = pickUp()
        if (node === undefined) return false
        collecting.add(node.id)
        log(`gc on ${short(node.id)}`)
        running.push(collect(node).finally(() => { collecting.delete(node.id) }))
        return true
      }
    }
  }

  const kinds = (Object.keys(rates) as FaultKind[]).filter(kind => rates[kind] > 0)
  const totalWeight = kinds.reduce((sum, kind) => sum + rates[kind], 0)
  const draw = (): FaultKind => {
    let x = rng.next() * totalWeight
    for (const kind of kinds) { x -= rates[kind]; if (x < 0) return kind }
    return kinds[kinds.length - 1]
  }

  /** Run time to `until`, checking the disks once per repair period. */
  const runTo = async (until: number): Promise<void> => {
    while (sim.time.now() < until) {
      await sim.time.advance(Math.min(checkIntervalMs, until - sim.time.now()), { maxEvents })
      await checkDisks(`t+${minutes(sim.time.now() - t0)}`)
      if (violations.length > 20) return
    }
  }

  let nextFault = t0 + rng.int(Math.floor(meanGapMs / 4), Math.floor(7 * meanGapMs / 4))
  while (violations.length <= 20) {
    const faulting = totalWeight > 0 && nextFault < t0 + faultMs
    if (!faulting && pending.length === 0) break
    const next = Math.min(faulting ? nextFault : Infinity, pending[0]?.at ?? Infinity)
    await runTo(next)
    if (pending.length > 0 && pending[0].at <= sim.time.now()) {
      const due = pending.shift() as Pending
      await due.undo()
      log(due.label)
    } else {
      for (let tries = 0; tries < 4; tries++) {
        const kind = draw()
        if (await apply(kind)) { injected[kind] = (injected[kind] ?? 0) + 1; break }
      }
      nextFault = sim.time.now() + rng.int(Math.floor(meanGapMs / 4), Math.floor(7 * meanGapMs / 4))
    }
    await noteAway()
    await checkDisks(schedule[schedule.length - 1] ?? 'start')
  }
  await Promise.all(running)
  const lastFault = sim.time.now()

  // faults over: every live stripe healthy again before the deadline
  let convergedAfterMs: number | undefined
  const deadline = lastFault + graceMs + 2 * sim.settings.scrubIntervalMs + 15 * checkIntervalMs
  while (violations.length <= 20 && sim.time.now() < deadline) {
    await runTo(sim.time.now() + checkIntervalMs)
    const c = await census(sim, shardsOf, k, m)
    checks++
    if (c.healthy === c.stripes) { convergedAfterMs = sim.time.now() - lastFault; break }
  }
  if (convergedAfterMs === undefined) violations.push(`not whole again ${minutes(deadline - lastFault)} after the last fault: ${JSON.stringify(await census(sim, shardsOf, k, m))}`)

  const rebuilt = sim.nodes.flatMap(n => n.services).reduce((sum, s) => sum + s.stats.shardsRepaired, 0)
  // the storm bounds, whole after the last gc, shares, extra copies, removed files released
  checks += 8
  const pushes = sim.fabric.counts.pushes - pushesBefore
  const repairBytes = sim.fabric.counts.blockBytes - bytesBefore
  const repairBound = 1.2 * k * sim.settings.leafBytes * rebuilt
  if (rebuilt > atRisk) violations.push(`repair storm: ${rebuilt} shards rebuilt for ${atRisk} at risk`)
  if (pushes > rebuilt) violations.push(`repair storm: ${pushes} shard pushes for ${rebuilt} rebuilt shards`)
  if (repairBytes > repairBound) violations.push(`repair storm: ${repairBytes} bytes moved for ${rebuilt} rebuilt shards (bound ${repairBound})`)

  // settled: past the grace period of every removal and repair, and of every copy a node came back with (then
  // two passes that ask every peer: extra copies are released), each live node collects its garbage
  await runTo(sim.time.now() + graceMs + 2 * FULL_VIEW_EVERY * checkIntervalMs)
  for (const node of upNodes()) running.push(collect(node))
  let all = false
  void Promise.all(running).finally(() => { all = true })
  await sim.time.runUntil(() => all, { maxEvents })
  await checkDisks('after the last gc')
  const after = await census(sim, shardsOf, k, m)
  if (after.healthy !== after.stripes) violations.push(`after the last gc: ${JSON.stringify(after)}`)
  const overShare = await extraShards(sim, shardsOf, k, m)
  violations.push(...overShare.slice(0, 5))
  const disks = await onDisks()
  let extraCopies = 0
  for (const file of live()) {
    for (let s = 0; s < (shardsOf.get(file.path) ?? []).length; s++) {
      let copies = 0
      for (const node of upNodes()) copies += disks.get(node.id)?.get(file.path)?.[s]?.size ?? 0
      extraCopies += Math.max(0, copies - (k + m))
    }
  }
  if (extraCopies > 0) violations.push(`extra copies: ${extraCopies} shard copies beyond k+m not released (${longAway} shards of nodes back after the grace period, ${restored} stale ones restored from backups)`)
  for (const file of sim.files.filter(f => f.removed !== undefined)) {
    const cids = (shardsOf.get(file.path) ?? []).flat().filter(c => c !== '')
    for (const node of upNodes()) {
      let records = 0
      for await (const held of node.holdings.held(file.manifest)) { void held; records++ }
      let stored = 0
      for (const cid of new Set(cids)) if (await node.side.store.has(CID.parse(cid))) stored++
      if (records > 0 || stored > 0) violations.push(`removed ${file.path} not released on ${short(node.id)}: ${records} records, ${stored} shard blocks`)
    }
  }

  const virtualMs = sim.time.now() - VirtualTime.START
  let stopped = false
  void Promise.all(upNodes().map(async n => { await n.service.stop() })).finally(() => { stopped = true })
  await sim.time.runUntil(() => stopped, { maxEvents })
  sim.time.clear()
  return {
    seed: options.seed,
    nodes: sim.nodes.length,
    live: upNodes().length,
    files: sim.files.length,
    removed: sim.files.length - live().length,
    stripes: placed.stripes,
    schedule,
    injected,
    refused,
    destroyed,
    atRisk,
    rebuilt,
    pushes,
    repairBytes,
    repairBound,
    extraCopies,
    extraBound: longAway,
    restoredCopies: restored,
    collections,
    collected,
    convergedAfterMs,
    virtualMs,
    checks,
    violations
  }
}
