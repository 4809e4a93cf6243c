/**
 * Read-only endpoints for the status page (`node/api/ui/`): what the page
 * shows and the older endpoints do not answer — the node's version and
 * disk, peers with connection age and traffic, the namespace's recent
 * changes, and every pin with the health of each stripe in one call. They
 * take the API token like every endpoint, change nothing, and are bounded
 * (a `limit` of at most {@link MAX_LIMIT} items; pin health from a shared
 * job within a time budget, latency without a ping per poll, changes cached
 * until the namespace changes), since the page asks every few seconds.
 * What they answer: status-types.ts.
 *
 * @module
 */
import { statfs } from 'node:fs/promises'
import { arch, platform } from 'node:os'
import { z } from 'zod'
import { parseQuery, schemas } from './schemas.js'
import { sendJson } from './http.js'
import { shoalVersion } from '../package-files.js'
import { peerTrafficOf } from './peer-traffic.js'
import { peerLatencyOf } from './peer-latency.js'
import { pinHealthBoardOf } from './pin-health.js'
import { recentChangesOf } from './recent-changes.js'
import { DEFAULT_LIMIT, MAX_LIMIT, type NodeInfo, type PeerInfo } from './status-types.js'
import type { Route } from './routes.js'
import type { ShoalComponents } from '../node.js'

export type { ChangeInfo, NodeInfo, PeerInfo, PinHealthInfo, PinState, PinsAnswer } from './status-types.js'
export { DEFAULT_LIMIT, MAX_LIMIT, MAX_STRIPES_LISTED, OPS_PER_CHANGE } from './status-types.js'

const limitQuery = z.object({
  limit: z.string().regex(/^\d{1,4}$/, 'must be a whole number').transform(Number)
    .refine(n => n >= 1 && n <= MAX_LIMIT, `must be between 1 and ${MAX_LIMIT}`).optional()
}).strict()

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
      sendJson(res, 200, await recentChangesOf(components.namespace).answer(q.limit ?? DEFAULT_LIMIT))
    }
  },
  {
    method: 'GET',
    path: '/api/v0/status/pins',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(limitQuery, query)
      sendJson(res, 200, await pinHealthBoardOf(components).answer(q.limit ?? DEFAULT_LIMIT, signal))
    }
  }
]

async function nodeInfo (components: ShoalComponents): Promise<NodeInfo> {
  // one statfs of the repo disk answers both figures (the disk guard's `free` is this same bavail × bsize)
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
    disk: { free: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize, reserve: components.disk.reserveBytes }
  }
}

/** Connected peers, each from its own connections; latency without a ping per request (peer-latency.ts). */
async function peerInfo (components: ShoalComponents): Promise<PeerInfo[]> {
  const { libp2p } = components
  const traffic = peerTrafficOf(libp2p)
  const latency = peerLatencyOf(libp2p)
  const peers = libp2p.getPeers()
  latency.keepOnly(new Set(peers.map(p => p.toString())))
  const list = await Promise.all(peers.map(async (peer): Promise<PeerInfo> => {
    const id = peer.toString()
    const conns = libp2p.getConnections(peer)
    const opened = conns.map(c => c.timeline.open).filter(t => typeof t === 'number')
    const bytes = traffic.tracking ? traffic.get(id) ?? { bytesIn: 0, bytesOut: 0 } : undefined
    return {
      id,
      addresses: [...new Set(conns.map(c => c.remoteAddr.toString()))],
      direction: conns.some(c => c.direction === 'outbound') ? 'outbound' : 'inbound',
      latencyMs: await latency.of(peer, conns),
      connectedSince: opened.length > 0 ? Math.min(...opened) : undefined,
      streams: conns.reduce((n, c) => n + c.streams.length, 0),
      bytesIn: bytes?.bytesIn,
      bytesOut: bytes?.bytesOut
    }
  }))
  return list.sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}
