/**
 * Read-only endpoints for the status page (`node/api/ui/`): what the page
 * shows and the older endpoints do not answer — the node's version and
 * disk, peers with connection age and traffic, the namespace's recent
 * changes, and every pin with the health of each stripe in one call. They
 * take the API token like every endpoint, change nothing, and are bounded
 * (a `limit` of at most {@link MAX_LIMIT} items, a deadline per pin), since
 * the page asks every few seconds.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { statfs } from 'node:fs/promises'
import { arch, platform } from 'node:os'
import { z } from 'zod'
import { decodeEntry, type Entry as LogEntry, type VectorClock } from '../../protocol/namespace.js'
import { parseQuery, schemas } from './schemas.js'
import { sendJson } from './http.js'
import { peerTrafficOf } from './peer-traffic.js'
import type { Route } from './routes.js'
import type { ShoalComponents } from '../node.js'
import type { PinInfo } from '../files/index.js'

/** Most items a `limit` may ask for. */
export const MAX_LIMIT = 200
/** Items answered when no `limit` is given. */
export const DEFAULT_LIMIT = 20
/** Ops listed per namespace change (the rest are counted). */
export const OPS_PER_CHANGE = 5
/** Stripes whose health is listed per pin (the summary counts all). */
export const MAX_STRIPES_LISTED = 1024
/** Authors whose recent entries are read for `status/changes`. */
export const MAX_AUTHORS_READ = 256
/** Deadline of one pin's health (it asks every live peer). */
const PIN_STATUS_TIMEOUT_MS = 10_000
/** Pins whose health is computed at once. */
const PIN_STATUS_CONCURRENCY = 4

const limitQuery = z.object({
  limit: z.string().regex(/^\d{1,4}$/, 'must be a whole number').transform(Number)
    .refine(n => n >= 1 && n <= MAX_LIMIT, `must be between 1 and ${MAX_LIMIT}`).optional()
}).strict()

/** `GET /api/v0/status/node`. */
export interface NodeInfo {
  id: string
  /** Shoal's version (package.json). */
  version: string
  /** Node.js version. */
  node: string
  /** `platform-arch`. */
  platform: string
  /** Seconds the daemon's process has run. */
  uptimeSeconds: number
  swarm: 'private' | 'open'
  addresses: string[]
  repo: string
  /** The file system of the repo (what this node uses of it: `blockstoreBytes` of `/api/v0/status`). */
  disk: {
    /** Bytes an unprivileged writer may still use. */
    free: number
    /** Size of the file system. */
    total: number
    /** Kept free for rm, gc and restarts (storage.reserve): writes stop there. */
    reserve: number
  }
}

/** One peer of `GET /api/v0/status/peers`. */
export interface PeerInfo {
  id: string
  addresses: string[]
  direction: 'inbound' | 'outbound'
  latencyMs?: number
  /** When the oldest open connection to it opened (ms). */
  connectedSince?: number
  /** Streams open on its connections now. */
  streams: number
  /** Bytes received from it since the API started (absent when unknown). */
  bytesIn?: number
  /** Bytes sent to it since the API started (absent when unknown). */
  bytesOut?: number
}

/** One namespace log entry of `GET /api/v0/status/changes`. */
export interface ChangeInfo {
  author: string
  seq: number
  /** The author's wall time of the write (ms). */
  time: number
  /** Ops in the entry. */
  ops: number
  /** The first {@link OPS_PER_CHANGE} ops. */
  changes: Array<{ op: 'put' | 'mkdir' | 'del', path: string, size?: number }>
}

/** One pin of `GET /api/v0/status/pins`. */
export interface PinHealthInfo extends PinInfo {
  /** `pin status`, stripes shortened to their health; absent when it failed (see `error`). */
  status?: {
    k?: number
    m?: number
    summary: { healthy: number, atRisk: number, degraded: number, lost: number }
    /** Stripes of the file. */
    stripeCount: number
    /** Health of the first {@link MAX_STRIPES_LISTED} stripes, in order. */
    stripes: string[]
    peersAsked: number
    pending?: boolean
    waiting?: string
    placing?: { pushed: number, total: number }
  }
  /** Why its health could not be read (a manifest nowhere to be found, a deadline). */
  error?: { name: string, message: string }
}

/** `GET /api/v0/status/pins`. */
export interface PinsAnswer {
  /** Pins in the namespace (only the first `limit`, by path, are listed). */
  total: number
  pins: PinHealthInfo[]
}

let version: string | undefined
/** Shoal's version, read once from package.json (dist/node/api → the package root). */
function shoalVersion (): string {
  version ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version
  return version
}

/** The status page's endpoints; registered in `routes`. */
export const statusRoutes: Route[] = [
  {
    method: 'GET',
    path: '/api/v0/status/node',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, await nodeInfo(components))
    }
  },
  {
    method: 'GET',
    path: '/api/v0/status/peers',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, await peerInfo(components))
    }
  },
  {
    method: 'GET',
    path: '/api/v0/status/changes',
    async handle ({ res, query, components }) {
      const q = parseQuery(limitQuery, query)
      sendJson(res, 200, await recentChanges(components, q.limit ?? DEFAULT_LIMIT))
    }
  },
  {
    method: 'GET',
    path: '/api/v0/status/pins',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(limitQuery, query)
      sendJson(res, 200, await pinsHealth(components, q.limit ?? DEFAULT_LIMIT, signal))
    }
  }
]

async function nodeInfo (components: ShoalComponents): Promise<NodeInfo> {
  const fs = await statfs(components.repo.root)
  return {
    id: components.peerId,
    version: shoalVersion(),
    node: process.version,
    platform: `${platform()}-${arch()}`,
    uptimeSeconds: Math.round(process.uptime()),
    swarm: components.config.privateSwarm ? 'private' : 'open',
    addresses: components.libp2p.getMultiaddrs().map(a => a.toString()),
    repo: components.repo.root,
    disk: { free: await components.disk.free(), total: fs.blocks * fs.bsize, reserve: components.disk.reserveBytes }
  }
}

async function peerInfo (components: ShoalComponents): Promise<PeerInfo[]> {
  const { libp2p, peers } = components
  const traffic = peerTrafficOf(libp2p)
  const list = await peers.list()
  return list.map(p => {
    const conns = libp2p.getConnections().filter(c => c.remotePeer.toString() === p.id)
    const opened = conns.map(c => c.timeline.open).filter(t => typeof t === 'number')
    const bytes = traffic.tracking ? traffic.get(p.id) ?? { bytesIn: 0, bytesOut: 0 } : undefined
    return {
      ...p,
      connectedSince: opened.length > 0 ? Math.min(...opened) : undefined,
      streams: conns.reduce((n, c) => n + c.streams.length, 0),
      bytesIn: bytes?.bytesIn,
      bytesOut: bytes?.bytesOut
    }
  }).sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

/**
 * The newest `limit` entries of the namespace log this node holds (history
 * compacted into a snapshot is gone), newest first by the author's time.
 * Each author's last entries are pulled from the replica as a peer would
 * pull them; a page cut short by its byte bound is asked again narrower,
 * so the newest entries are the ones kept.
 */
async function recentChanges (components: ShoalComponents, limit: number): Promise<ChangeInfo[]> {
  const { namespace } = components
  const { clock, pruned } = namespace.state()
  const authors = Object.entries(clock).sort((a, b) => b[1] - a[1]).slice(0, MAX_AUTHORS_READ)
  const entries: LogEntry[] = []
  for (const [author, seq] of authors) {
    let want = Math.min(limit, seq - (pruned[author] ?? 0))
    while (want > 0) {
      const remote: VectorClock = { ...clock, [author]: seq - want }
      const answer = await namespace.pull(remote, want)
      if (answer.type !== 'entries') break
      if (answer.entries.length >= want || want === 1) {
        entries.push(...answer.entries.map(bytes => decodeEntry(bytes)))
        break
      }
      want = Math.max(1, answer.entries.length)
    }
  }
  entries.sort((a, b) => b.time - a.time || (a.author < b.author ? -1 : 1))
  return entries.slice(0, limit).map(e => ({
    author: e.author,
    seq: e.seq,
    time: e.time,
    ops: e.ops.length,
    changes: e.ops.slice(0, OPS_PER_CHANGE).map(op => op.op === 'put' ? { op: op.op, path: op.path, size: op.size } : { op: op.op, path: op.path })
  }))
}

/** The first `limit` pins by path, each with its `pin status` (a failing one carries its error). */
async function pinsHealth (components: ShoalComponents, limit: number, signal: AbortSignal): Promise<PinsAnswer> {
  const all = (await components.files.pinLs()).sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
  const shown = all.slice(0, limit)
  const pins: PinHealthInfo[] = new Array(shown.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < shown.length && !signal.aborted) {
      const i = next++
      pins[i] = await pinHealth(components, shown[i], signal)
    }
  }
  await Promise.all(Array.from({ length: Math.min(PIN_STATUS_CONCURRENCY, shown.length) }, worker))
  return { total: all.length, pins: pins.filter(p => p !== undefined) }
}

async function pinHealth (components: ShoalComponents, pin: PinInfo, signal: AbortSignal): Promise<PinHealthInfo> {
  try {
    const s = await components.files.pinStatus(pin.path, AbortSignal.any([signal, AbortSignal.timeout(PIN_STATUS_TIMEOUT_MS)]))
    return {
      ...pin,
      status: {
        k: s.k,
        m: s.m,
        summary: s.summary,
        stripeCount: s.stripes.length,
        stripes: s.stripes.slice(0, MAX_STRIPES_LISTED).map(st => st.health),
        peersAsked: s.peersAsked.length,
        pending: s.pending,
        waiting: s.waiting,
        placing: s.placing
      }
    }
  } catch (err: any) {
    return { ...pin, error: { name: typeof err?.name === 'string' ? err.name : 'Error', message: String(err?.message ?? err) } }
  }
}
