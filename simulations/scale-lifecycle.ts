/**
 * Node lifecycle of the scale run ({@link runScale}): which nodes crash,
 * lose their disk, are restored from an old backup or leave for good, and
 * what each of these does to a node — as `NamespaceSim` does it for the
 * small full-mesh swarm (namespace-sim.ts), for thousands of nodes.
 *
 * Why a module of its own: the scale run's scenario (scale-sim.ts) says
 * *when* faults happen; this module says *who* and *how*, and which
 * acknowledged writes a fault may excuse ({@link exemptLost}): only those no
 * store holds any more, judged in O(nodes × writes).
 *
 * @module
 */
import type { Replica } from '../node/namespace/replica.js'
import type { NamespaceSync } from '../node/namespace/sync.js'
import { FaultyKV } from './faulty-kv.js'
import { copyStore } from './namespace-sim.js'
import type { Prng } from './prng.js'

/** One node of the scale run. */
export interface ScaleNode {
  /** Its number in the run (joined nodes come after the first ones). */
  index: number
  /** Its peer id (its author id too). */
  id: string
  /** Its store: survives a crash; replaced by a disk loss or a restore. */
  kv: FaultyKV
  /** 'up', 'down' (crashed, comes back) or 'gone' (left for good). */
  status: 'up' | 'down' | 'gone'
  /** A copy of its store taken by {@link backup}. */
  backup?: FaultyKV
  /** Its replica and sync of this life (rebuilt at each restart). */
  replica: Replica
  sync: NamespaceSync
  /** Gossip this node handed to sync (all its lives). */
  received: { messages: number, bytes: number }
  /** A new replica and sync over `kv` (its start, or a restart), with its key and random stream. */
  build: (kv: FaultyKV) => Promise<Pick<ScaleNode, 'replica' | 'sync'>>
}

/** How a node comes back: with its store, with an empty one (disk lost, same key), or with a copy of its backup. */
export type ScaleDisk = 'keep' | 'lost' | 'backup'

/** Crash `node`: sync stopped, replica closed, store kept. */
export async function crash (node: ScaleNode): Promise<void> {
  if (node.status !== 'up') return
  await node.sync.stop()
  await node.replica.close()
  node.status = 'down'
}

/**
 * Restart `node` as the daemon does (crashing it first when up): over its
 * store, an empty store, or a copy of its backup (an empty store when it
 * has none).
 */
export async function restart (node: ScaleNode, disk: ScaleDisk = 'keep'): Promise<void> {
  if (node.status === 'gone') return
  await crash(node)
  if (disk === 'lost') node.kv = new FaultyKV()
  if (disk === 'backup') node.kv = node.backup === undefined ? new FaultyKV() : await copyStore(node.backup)
  Object.assign(node, await node.build(node.kv))
  node.status = 'up'
  await node.sync.start()
}

/**
 * Take a copy of `node`'s store. None is taken of a store that holds no
 * other author's entry (restored, it would look like a lone node's, which
 * writes at once: docs/namespace.md, "A node that lost its store").
 *
 * @returns whether a backup was taken
 */
export async function backup (node: ScaleNode): Promise<boolean> {
  if (node.status !== 'up' || !node.replica.holdsOthersEntries) return false
  node.backup = await copyStore(node.kv)
  return true
}

/** `node` leaves for good: stopped, its store gone with it. */
export async function leave (node: ScaleNode): Promise<void> {
  await crash(node)
  node.status = 'gone'
}

/** How many nodes meet each lifecycle fault. */
export interface FaultCounts {
  /** Nodes that do not write, crashed during the partition and restarted with their store. */
  crashes: number
  /** Nodes restarted with their disk lost (same key, empty store). */
  diskLosses: number
  /** Nodes restarted from a backup taken early in the run. */
  restores: number
  /** Nodes that leave for good. */
  leaves: number
}

/** The nodes (indices) chosen for each fault; no node meets two. */
export interface FaultPlan {
  lost: number[]
  restored: number[]
  leaving: number[]
  /** Of those, the nodes that write. */
  writers: Set<number>
}

/**
 * Choose who loses a disk, is restored, or leaves: half of each (rounded
 * up) among the writers — a writer that comes back and writes again is the
 * case that diverged before recovery existed — the rest among the other
 * nodes, always leaving `counts.crashes` non-writers to crash. Fewer when
 * there are not enough nodes of a kind.
 *
 * @param rng the stream of these choices
 * @param writers the writers, in the run's random order
 */
export function planFaults (rng: Prng, options: { nodes: number, writers: readonly number[], counts: FaultCounts }): FaultPlan {
  const { counts } = options
  const writing = new Set(options.writers)
  const idle = shuffled(rng, Array.from({ length: options.nodes }, (_, i) => i).filter(i => !writing.has(i)))
  const busy = shuffled(rng, [...options.writers])
  let idleLeft = Math.max(0, idle.length - counts.crashes)
  const chosen: number[][] = []
  const writers = new Set<number>()
  for (const want of [counts.diskLosses, counts.restores, counts.leaves]) {
    const fromWriters = Math.min(Math.ceil(want / 2), busy.length)
    const fromIdle = Math.min(want - fromWriters, idleLeft)
    idleLeft -= fromIdle
    const picked = [...busy.splice(0, fromWriters), ...idle.splice(0, fromIdle)]
    for (const w of picked.slice(0, fromWriters)) writers.add(w)
    chosen.push(picked)
  }
  return { lost: chosen[0], restored: chosen[1], leaving: chosen[2], writers }
}

/** `list` in random order (no draw for an empty list). */
function shuffled (rng: Prng, list: number[]): number[] {
  for (let i = 0; i < list.length - 1; i++) {
    const j = rng.int(i, list.length - 1)
    ;[list[i], list[j]] = [list[j], list[i]]
  }
  return list
}

/** An acknowledged write of the scale run. */
export interface AckedWrite {
  path: string
  cid: string
  /** Its author and seq. */
  author: string
  seq: number
  /** Set once no store held it any more (its every holder lost or gone): not expected anywhere. */
  exempt?: boolean
}

/**
 * Mark the writes no store holds any more — none of the nodes that have not
 * left has a clock covering the write — as exempt; called right after
 * stores were lost or nodes left. O(nodes × writes).
 *
 * @returns the writes that became exempt
 */
export function exemptLost (acked: AckedWrite[], nodes: readonly ScaleNode[]): AckedWrite[] {
  const clocks = nodes.filter(n => n.status !== 'gone').map(n => n.replica.clockNow())
  const found: AckedWrite[] = []
  for (const w of acked) {
    if (w.exempt === true) continue
    if (clocks.some(c => (c[w.author] ?? 0) >= w.seq)) continue
    w.exempt = true
    found.push(w)
  }
  return found
}
