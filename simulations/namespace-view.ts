/**
 * What a replica looks like from outside, in a form that compares: its
 * clock, heads, visible tree and conflict list, each canonical (sorted).
 * Two replicas have converged when their views are equal.
 *
 * @module
 */
import { canonical } from '../node/namespace/clock.js'
import type { Replica } from '../node/namespace/replica.js'

/** One visible name. */
export interface ViewEntry {
  path: string
  type: 'file' | 'dir'
  cid?: string
  size?: number
  mode: number
  mtime: number
  conflictOf?: string
}

/** A replica's state, canonical. */
export interface ReplicaView {
  /** JSON of the clock with sorted authors. */
  clock: string
  /** Head CIDs, sorted. */
  heads: string[]
  /** Every visible name, sorted by path. */
  tree: ViewEntry[]
  /** Every conflict copy (`path → copy cid author time`), sorted. */
  conflicts: string[]
}

/** Read the view of a replica. */
export async function viewOf (replica: Replica): Promise<ReplicaView> {
  const { clock, heads } = replica.state()
  const tree: ViewEntry[] = []
  for await (const e of replica.walk('/')) {
    const v: ViewEntry = { path: e.path, type: e.type, mode: e.mode, mtime: e.mtime }
    if (e.type === 'file') { v.cid = e.cid; v.size = e.size }
    if (e.conflictOf !== undefined) v.conflictOf = e.conflictOf
    tree.push(v)
  }
  tree.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
  const conflicts = (await replica.conflicts()).map(c => `${c.path} → ${c.copy} ${c.cid} ${c.author} ${c.time} ${c.size}`).sort()
  return { clock: JSON.stringify(canonical(clock)), heads: heads.map(h => h.toString()).sort(), tree, conflicts }
}

/** The clock of a replica as a canonical string (cheap convergence checks). */
export function clockKey (replica: Replica): string {
  // the live clock, not state(): that copies it and parses every head's CID (thousands, with many authors), per node per poll
  return JSON.stringify(canonical(replica.clockNow()))
}

function line (e: ViewEntry): string {
  return `${e.path} ${e.type}${e.cid !== undefined ? ' ' + e.cid : ''}${e.size !== undefined ? ' ' + String(e.size) : ''} ${e.mode.toString(8)} ${e.mtime}${e.conflictOf !== undefined ? ' of ' + e.conflictOf : ''}`
}

/** Human-readable differences between two views (empty when equal). */
export function diffViews (a: ReplicaView, b: ReplicaView, nameA = 'a', nameB = 'b'): string[] {
  const out: string[] = []
  if (a.clock !== b.clock) out.push(`clock: ${nameA}=${a.clock} ${nameB}=${b.clock}`)
  if (a.heads.join() !== b.heads.join()) out.push(`heads: ${nameA}=[${a.heads.join(' ')}] ${nameB}=[${b.heads.join(' ')}]`)
  const ta = a.tree.map(line)
  const tb = b.tree.map(line)
  const sa = new Set(ta)
  const sb = new Set(tb)
  for (const l of ta) if (!sb.has(l)) out.push(`tree: only ${nameA}: ${l}`)
  for (const l of tb) if (!sa.has(l)) out.push(`tree: only ${nameB}: ${l}`)
  const ca = new Set(a.conflicts)
  const cb = new Set(b.conflicts)
  for (const l of a.conflicts) if (!cb.has(l)) out.push(`conflicts: only ${nameA}: ${l}`)
  for (const l of b.conflicts) if (!ca.has(l)) out.push(`conflicts: only ${nameB}: ${l}`)
  return out
}

/** A view as printable lines (failure reports). */
export function showView (v: ReplicaView): string {
  return [`clock ${v.clock}`, `heads ${v.heads.join(' ')}`, ...v.tree.map(e => '  ' + line(e)), ...v.conflicts.map(c => '  conflict ' + c)].join('\n')
}
