/**
 * The namespace's recent changes for the status page
 * (`GET /api/v0/status/changes`), bounded in work and cached.
 *
 * Why: the page asks every 5 s; reading every author's log each time (an
 * open swarm has many authors) would keep the namespace store busy for a
 * view that rarely changes.
 *
 * How: the answer is kept until the namespace's clock changes (a write
 * here or an entry from a peer). To make one, the newest entry of each of
 * at most {@link MAX_AUTHORS_SCANNED} authors (those with the longest logs)
 * gives each author's last write time, remembered per author and read
 * again only when its counter moved; the entries of the
 * {@link MAX_AUTHORS_READ} most recent writers are then read, newest first,
 * and merged by their wall time. All reads are read-only and outside the
 * replica's lock (`Replica.newestEntries`). History compacted into a
 * snapshot is gone.
 *
 * @module
 */
import { decodeEntry, type LogEntry, type VectorClock } from '../../protocol/namespace.js'
import { OPS_PER_CHANGE, type ChangeInfo } from './status-types.js'
import { onePer } from './one-per.js'
import type { Replica } from '../namespace/index.js'

/** Authors whose last write time is looked at for one answer. */
export const MAX_AUTHORS_SCANNED = 256
/** Authors (the most recent writers) whose entries are read for one answer. */
export const MAX_AUTHORS_READ = 16

/** The part of the replica read. */
export type ChangesNamespace = Pick<Replica, 'state' | 'newestEntries'>

/** The recent changes of one node's namespace, cached until its clock changes. */
export class RecentChanges {
  /** author → its counter when its last write time was read, and that time. */
  private readonly lastWrite = new Map<string, { seq: number, time: number }>()
  private cached?: { clock: string, limit: number, answer: Promise<ChangeInfo[]> }

  constructor (private readonly namespace: ChangesNamespace) {}

  /** The newest `limit` changes, newest first by the writer's wall time (`time`). */
  async answer (limit: number): Promise<ChangeInfo[]> {
    const { clock } = this.namespace.state()
    const key = clockKey(clock)
    const cached = this.cached
    if (cached !== undefined && cached.clock === key && cached.limit >= limit) return (await cached.answer).slice(0, limit)
    const answer = this.read(clock, limit)
    const entry = { clock: key, limit, answer }
    this.cached = entry
    // a failure is not kept
    answer.catch(() => { if (this.cached === entry) this.cached = undefined })
    return await answer
  }

  private async read (clock: VectorClock, limit: number): Promise<ChangeInfo[]> {
    const scanned = Object.entries(clock).filter(([, seq]) => seq > 0).sort((a, b) => b[1] - a[1]).slice(0, MAX_AUTHORS_SCANNED)
    const kept = new Set(scanned.map(([author]) => author))
    for (const author of this.lastWrite.keys()) if (!kept.has(author)) this.lastWrite.delete(author)
    const times: Array<[string, number]> = []
    for (const [author, seq] of scanned) {
      let last = this.lastWrite.get(author)
      if (last?.seq !== seq) {
        last = undefined
        for await (const bytes of this.namespace.newestEntries(author, 1)) last = { seq, time: decodeEntry(bytes).time }
        if (last !== undefined) this.lastWrite.set(author, last)
      }
      if (last !== undefined) times.push([author, last.time])
    }
    times.sort((a, b) => b[1] - a[1])
    const entries: LogEntry[] = []
    for (const [author] of times.slice(0, MAX_AUTHORS_READ)) {
      for await (const bytes of this.namespace.newestEntries(author, limit)) entries.push(decodeEntry(bytes))
    }
    entries.sort((a, b) => b.time - a.time || (a.author < b.author ? -1 : a.author > b.author ? 1 : b.seq - a.seq))
    return entries.slice(0, limit).map(e => ({
      author: e.author,
      seq: e.seq,
      time: e.time,
      ops: e.ops.length,
      changes: e.ops.filter(op => op.op !== 'retire').slice(0, OPS_PER_CHANGE).map(op => op.op === 'put' ? { op: op.op, path: op.path, size: op.size } : { op: op.op, path: op.path })
    }))
  }
}

/** A clock as one comparable string. */
function clockKey (clock: VectorClock): string {
  return Object.entries(clock).sort((a, b) => a[0] < b[0] ? -1 : 1).map(([a, n]) => `${a}:${n}`).join(',')
}

/** The one recent-changes cache of a namespace (made on first use). */
export const recentChangesOf = onePer((namespace: ChangesNamespace) => new RecentChanges(namespace))
