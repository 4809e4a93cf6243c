import { forgetMember } from '../peers/forget-member.js'
import { parseChunker } from '../content/index.js'
import { schemas, parseQuery } from './schemas.js'
import { AbortedError, InvalidArgumentError, NotFoundError, UnsupportedMediaTypeError } from '../errors.js'
import { sendJson, sendStream } from './http.js'
import { OUTPUT_HEADER } from '../../protocol/cat-output.js'
import { openCallerPipe, writeToPipe } from './caller-pipe.js'
import { readBatchBody } from './batch-body.js'
import { BATCH_CONTENT_TYPE } from '../../protocol/add-batch.js'
import { parsePolicy } from '../../protocol/durability.js'
import { forgetDiskUsage, repoDiskUsage } from '../repo/disk-usage.js'
import { keptUncommitted } from '../repo/uncommitted.js'
import { readGatewayUrl } from '../gateway/index.js'
import { sendProgress, type ProgressUpdate } from './progress.js'
import { createInvite } from '../peers/invite.js'
import { statusRoutes } from './status-routes.js'
import { damageStatus } from './damage-status.js'
import type { TrustStatus } from '../peers/trust-admin.js'
import type { CarImportProgress } from '../files/car-import.js'
import type { ShoalComponents } from '../node.js'
import type { GcResult } from '../durability/index.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { StreamErrors } from './stream-errors.js'

/** What a handler gets. */
export interface RouteContext {
  req: IncomingMessage
  res: ServerResponse
  query: URLSearchParams
  /** Aborted when the client goes away before the response is complete. */
  signal: AbortSignal
  components: ShoalComponents
  /** The errors of this server's streamed answers that failed after their head (stream-errors.ts). */
  streams: StreamErrors
}

/** One API endpoint. */
export interface Route {
  method: 'GET' | 'POST'
  path: string
  /**
   * Set on the endpoints that read a request body (`add`, `car/import`).
   * The server refuses a body sent to any other, before its handler runs
   * (413 `TooLargeError`, server.ts): it would be dropped unread.
   */
  body?: true
  handle: (ctx: RouteContext) => Promise<void>
}

/** Every API endpoint. Paths are exact; inputs are validated by `schemas`. */
export const routes: Route[] = [
  {
    method: 'GET',
    path: '/health',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, { ok: true, peerId: components.peerId })
    }
  },
  {
    method: 'GET',
    path: '/metrics',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      const text = await components.metrics.registry.metrics()
      res.writeHead(200, { 'content-type': components.metrics.registry.contentType })
      res.end(text)
    }
  },
  {
    method: 'GET',
    path: '/api/v0/id',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, { id: components.peerId, addresses: components.libp2p.getMultiaddrs().map(a => a.toString()), listen: components.config.listen })
    }
  },
  {
    method: 'GET',
    path: '/api/v0/status',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      const trust = components.trustAdmin.status()
      sendJson(res, 200, {
        id: components.peerId,
        addresses: components.libp2p.getMultiaddrs().map(a => a.toString()),
        swarm: components.config.privateSwarm ? 'private' : 'open',
        writers: writersSummary(trust),
        // this node's own writes as the connected members take them (writer notices, write-refusals.ts)
        ownWrites: trust.ownWrites,
        peers: components.libp2p.getPeers().length,
        // known peers re-dialled and not reached (a machine gone for good stays while kept: `peers disconnect`)
        unreachable: components.peers.unreachable(),
        blockstoreBytes: await components.blockstore.approximateSize(),
        // what the whole repo takes on disk, by part, and the room left on its disk
        disk: await repoDiskUsage(components.repo),
        // the quota for others (storage.maxForOthers, or its measured default) and what is held of it
        storage: await components.durability.storage(),
        // stripe health as the last repair pass found it (absent before the first pass)
        durability: components.durability.health(),
        repo: components.repo.root,
        // the read-only gateway's URL as the daemon bound it (`<repo>/gateway`), or null when it is off
        gateway: await readGatewayUrl(components.repo),
        namespace: namespaceStatus(components),
        // what is known missing of the files kept here, without a walk (damage-status.ts)
        damage: await damageStatus(components),
        // conflict copies in the namespace (`shoal conflicts` lists them)
        conflicts: (await components.namespace.conflicts()).length,
        // files written through a mount whose commit failed as it went, kept in the repo (docs/fuse.md)
        uncommitted: await keptUncommitted(components.repo)
      })
    }
  },
  {
    method: 'POST',
    path: '/api/v0/pin/add',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(schemas.pinAdd, query)
      sendJson(res, 200, await components.files.pinAdd(q.arg, { policy: q.policy, signal, tier: q.tier }))
    }
  },
  {
    method: 'POST',
    path: '/api/v0/tier/set',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(schemas.tierSet, query)
      sendJson(res, 200, await components.tiers.configure(q, signal))
    }
  },
  {
    method: 'GET',
    path: '/api/v0/tier/ls',
    async handle ({ res, query, signal, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, await components.tiers.status(signal))
    }
  },
  {
    method: 'POST',
    path: '/api/v0/pin/rm',
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.arg, query)
      await components.files.pinRm(q.arg)
      sendJson(res, 200, { ok: true })
    }
  },
  {
    method: 'GET',
    path: '/api/v0/pin/ls',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, await components.files.pinLs())
    }
  },
  {
    method: 'GET',
    path: '/api/v0/pin/status',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(schemas.pinStatus, query)
      sendJson(res, 200, await components.files.pinStatus(q.arg, { signal, verify: q.verify }))
    }
  },
  {
    method: 'POST',
    path: '/api/v0/repair',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(schemas.repair, query)
      const { blockstore, durability } = components
      if (q.reindex === true && blockstore.reindex === undefined) throw new InvalidArgumentError('this block store has no separate index to rebuild')
      // the index first (what the packs hold), a scrub next (it may drop
      // corrupt shards), then the repair pass that restores placement; each
      // part tells its start and its progress to `report` (progress=true).
      // A client that waits and goes away ends the reindex (before it writes
      // anything), the gc and the scrub (`until`
      // aborts); the repair pass, shared with the node's periodic check, goes
      // on (docs/api.md)
      const run = async (report: (update: ProgressUpdate) => void = () => {}, until?: AbortSignal): Promise<object> => {
        if (q.reindex === true) report({ phase: 'reindex' })
        const reindex = q.reindex === true ? await blockstore.reindex?.({ signal: until }) : undefined
        // records indexed again may be blocks deleted before: garbage collection takes back what nothing needs
        const gc = reindex !== undefined && reindex.indexed > 0 ? await durability.collectGarbage(until, { onProgress: e => { report({ phase: 'gc', ...e.detail }) } }) : undefined
        if (q.scrub === true) report({ phase: 'scrub', blocks: 0, bytes: 0, corrupt: 0 })
        const scrub = q.scrub === true ? await durability.scrub(until, { onProgress: e => { report({ phase: 'scrub', ...e.detail }) } }) : undefined
        if (until?.aborted === true) throw new AbortedError('client closed the request: no repair pass started')
        report({ phase: 'repair', manifests: 0, repaired: 0 })
        const repair = await durability.repair(undefined, { onProgress: e => { report({ phase: 'repair', ...e.detail }) } })
        // undefined parts are left out of the JSON
        return { ...repair, scrub, reindex, gc }
      }
      // progress implies waiting: it is told while the pass runs
      if (q.progress === true) { await sendProgress({ res, logger: components.logger }, async report => await run(report, signal)); return }
      if (q.wait === true) { sendJson(res, 200, await run(undefined, signal)); return }
      const pass = run()
      pass.catch(err => { components.logger.warn({ err: err?.message }, 'repair pass failed') })
      sendJson(res, 202, { started: true })
    }
  },
  {
    method: 'POST',
    path: '/api/v0/gc',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(schemas.gc, query)
      const { durability, logger, disk } = components
      // on a full disk the ballast is spent for it; made again once it gave space back
      const gc = async (report?: (update: ProgressUpdate) => void): Promise<GcResult> => {
        const result = await disk.freeing('gc', async () => await durability.collectGarbage(signal, { onProgress: report === undefined ? undefined : e => { report({ phase: 'gc', ...e.detail }) } }))
        await disk.keepBallast()
        // the next `status` measures what the collection gave back, not a measurement of before it
        forgetDiskUsage(components.repo.root)
        return result
      }
      if (q.progress === true) {
        await sendProgress({ res, logger }, gc)
        return
      }
      sendJson(res, 200, await gc())
    }
  },
  {
    method: 'GET',
    path: '/api/v0/conflicts',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, await components.namespace.conflicts())
    }
  },
  {
    method: 'GET',
    path: '/api/v0/peers/ls',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, await components.peers.list())
    }
  },
  {
    method: 'POST',
    path: '/api/v0/peers/connect',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(schemas.peersConnect, query)
      sendJson(res, 200, await components.peers.connect(q.addr, AbortSignal.any([signal, AbortSignal.timeout(15_000)])))
    }
  },
  {
    method: 'GET',
    path: '/api/v0/invite',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      const { config, repo, libp2p, peerId } = components
      // the peers connected now, with the addresses they listen on (what identify told)
      const members = await Promise.all(libp2p.getPeers().map(async peer => ({
        peerId: peer.toString(),
        addresses: (await libp2p.peerStore.get(peer).catch(() => undefined))?.addresses.map(a => a.multiaddr) ?? []
      })))
      sendJson(res, 200, await createInvite({ peerId, addresses: libp2p.getMultiaddrs(), swarmKeyFile: config.privateSwarm ? repo.swarmKey : undefined, members, writers: components.trustAdmin.status().writers }))
    }
  },
  {
    method: 'GET',
    path: '/api/v0/trust/ls',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, components.trustAdmin.status())
    }
  },
  ...(['add', 'rm'] as const).map((action): Route => ({
    method: 'POST',
    path: `/api/v0/trust/${action}`,
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.trustPeer, query)
      const { trustAdmin } = components
      sendJson(res, 200, action === 'add' ? await trustAdmin.add(q.peer) : await trustAdmin.remove(q.peer))
    }
  })),
  {
    method: 'POST',
    path: '/api/v0/trust/writers',
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.trustWriters, query)
      sendJson(res, 200, await components.trustAdmin.setWriters(q.mode))
    }
  },
  {
    method: 'POST',
    path: '/api/v0/peers/disconnect',
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.peersDisconnect, query)
      await components.peers.disconnect(q.peer)
      sendJson(res, 200, { disconnected: q.peer })
    }
  },
  {
    method: 'POST',
    path: '/api/v0/peers/forget',
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.peersForget, query)
      sendJson(res, 200, await forgetMember({ self: components.peerId, namespace: components.namespace, libp2p: components.libp2p }, q.peer))
    }
  },
  {
    method: 'POST',
    path: '/api/v0/add',
    body: true,
    async handle ({ req, res, query, signal, components }) {
      const q = parseQuery(schemas.add, query)
      requireBodyType(req, ['application/octet-stream'])
      const chunker = q.chunker === undefined ? components.chunker : parseChunker(q.chunker)
      const info = await components.files.add(q.to, req, { chunker, mode: q.mode, mtime: q.mtime, pin: q.pin, signal, expectedBytes: contentLength(req), wait: q.wait, startedAt: q.started })
      sendJson(res, 200, info)
    }
  },
  {
    method: 'POST',
    path: '/api/v0/add-many',
    body: true,
    async handle ({ req, res, query, signal, components }) {
      const q = parseQuery(schemas.addMany, query)
      requireBodyType(req, [BATCH_CONTENT_TYPE])
      const chunker = q.chunker === undefined ? components.chunker : parseChunker(q.chunker)
      if (q.pin !== undefined) parsePolicy(q.pin)
      const { files, sources } = await readBatchBody(req, contentLength(req))
      const items = files.map((f, i) => ({ path: f.to, source: sources[i], mode: f.mode, mtime: f.mtime, pin: q.pin, expectedBytes: f.size }))
      sendJson(res, 200, await components.files.addMany(items, { chunker, signal, tellPending: true, startedAt: q.started }))
    }
  },
  {
    method: 'GET',
    path: '/api/v0/cat',
    async handle ({ req, res, query, signal, components, streams }) {
      const q = parseQuery(schemas.cat, query)
      const source = components.files.cat(q.arg, { offset: q.offset, length: q.length, signal })
      const pid = q['pipe-pid']
      const ino = q['pipe-ino']
      if (pid !== undefined && ino !== undefined) {
        const pipe = await openCallerPipe(req, { pid, ino })
        if (pipe.ok) {
          components.metrics.catOutputs.inc({ output: 'pipe' })
          const written = await writeToPipe(source, pipe.socket, signal)
          sendJson(res, 200, written, { [OUTPUT_HEADER]: 'pipe' })
          return
        }
        components.logger.debug({ pid, reason: pipe.reason }, 'cat answered in the body, not into the caller\'s pipe')
      }
      components.metrics.catOutputs.inc({ output: 'body' })
      await sendStream(res, source, { errors: streams })
    }
  },
  {
    method: 'GET',
    path: '/api/v0/stream/error',
    async handle ({ res, query, streams }) {
      const q = parseQuery(schemas.streamError, query)
      const error = streams.get(q.id)
      if (error === undefined) throw new NotFoundError(`no error is recorded for stream ${q.id} (it did not fail, or failed over a minute ago)`)
      sendJson(res, 200, { error })
    }
  },
  {
    method: 'GET',
    path: '/api/v0/stat',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(schemas.stat, query)
      const info = await components.files.stat(q.arg, signal)
      if (q.started !== undefined && info.path !== undefined && await components.files.arrivedAfter(info.path, q.started)) info.arrivedAfterStart = true
      sendJson(res, 200, info)
    }
  },
  {
    method: 'GET',
    path: '/api/v0/ls',
    async handle ({ res, query, signal, components }) {
      const q = parseQuery(schemas.arg, query)
      sendJson(res, 200, await components.files.ls(q.arg, signal))
    }
  },
  {
    method: 'POST',
    path: '/api/v0/mkdir',
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.mkdir, query)
      sendJson(res, 200, await components.files.mkdir(q.arg, { parents: q.parents, mode: q.mode, startedAt: q.started }))
    }
  },
  {
    method: 'POST',
    path: '/api/v0/mv',
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.mv, query)
      sendJson(res, 200, await components.files.mv(q.from, q.to))
    }
  },
  {
    method: 'POST',
    path: '/api/v0/rm',
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.rm, query)
      const { kept, keptCount } = await components.files.rm(q.arg, { recursive: q.recursive, startedAt: q.started })
      sendJson(res, 200, kept === undefined ? { removed: q.arg } : { removed: q.arg, kept, keptCount })
    }
  },
  {
    method: 'GET',
    path: '/api/v0/car/export',
    async handle ({ res, query, signal, components, streams }) {
      const q = parseQuery(schemas.arg, query)
      // what this node does not hold is fetched, as `cat` does
      const { root, car } = await components.files.exportCar(q.arg, { signal })
      await sendStream(res, car, { headers: { 'content-type': 'application/vnd.ipld.car; version=1', 'x-shoal-root': root.toString() }, errors: streams })
    }
  },
  {
    method: 'POST',
    path: '/api/v0/car/import',
    body: true,
    async handle ({ req, res, query, signal, components }) {
      const q = parseQuery(schemas.carImport, query)
      requireBodyType(req, ['application/vnd.ipld.car', 'application/octet-stream'])
      // staged, then copied into the store: twice its size at most
      await components.disk.ensureRoom(2 * (contentLength(req) ?? 0), 'this CAR import')
      const run = async (report?: (update: ProgressUpdate) => void): Promise<object> => {
        const onProgress = report === undefined ? undefined : (e: { detail: CarImportProgress }): void => { report({ phase: 'car', ...e.detail }) }
        const result = await components.files.importCar(req, { tmpDir: components.repo.tmp, to: q.to, pinRoots: q['pin-roots'] !== 'false', signal, onProgress })
        components.logger.info({ roots: result.roots.map(String), blocks: result.blocks, paths: result.paths }, 'car imported')
        return { roots: result.roots.map(r => r.toString()), blocks: result.blocks, bytes: result.bytes, newBlocks: result.newBlocks, newBytes: result.newBytes, paths: result.paths, unbound: result.unbound }
      }
      // with progress, the first line goes out once the upload is in and checked (an invalid CAR is still a 422)
      if (q.progress === true) await sendProgress({ res, logger: components.logger }, run)
      else sendJson(res, 200, await run())
    }
  },
  {
    method: 'POST',
    path: '/api/v0/mount',
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.mount, query)
      sendJson(res, 200, await components.fuse.mount(q.path))
    }
  },
  {
    method: 'POST',
    path: '/api/v0/unmount',
    async handle ({ res, query, components }) {
      const q = parseQuery(schemas.unmount, query)
      sendJson(res, 200, { unmounted: await components.fuse.unmount(q.path, { force: q.force }) })
    }
  },
  {
    method: 'GET',
    path: '/api/v0/mounts',
    async handle ({ res, query, components }) {
      parseQuery(schemas.none, query)
      sendJson(res, 200, components.fuse.mounts())
    }
  },
  // read-only endpoints of the status page
  ...statusRoutes
]

/** The namespace part of `status`: how much history this node holds and has pruned. */
function namespaceStatus (components: ShoalComponents): { entries: number, pruned: number, heads: string[], rejected: number, untrusted: number, forgotten: Array<{ peer: string, at: number }> } {
  const { clock, heads, pruned } = components.namespace.state()
  const sum = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0)
  // members a user said are gone for good (`peers forget`) and not heard from since
  return { entries: sum(clock), pruned: sum(pruned), heads: heads.map(h => h.toString()), rejected: components.namespace.rejected, untrusted: components.namespace.untrusted, forgotten: components.namespace.forgottenMembers() }
}

/** Who writes the namespace, in a few words. */
function writersSummary (t: TrustStatus): string {
  return t.everyone ? 'every member' : `this node and ${t.trusted.length} trusted peer${t.trusted.length === 1 ? '' : 's'}`
}

/**
 * Refuse a body labelled as anything but raw bytes of one of `types` (none
 * is fine): a multipart form posted here (as Kubo's RPC clients post files)
 * would otherwise be stored with its envelope as the file's content.
 *
 * @throws {UnsupportedMediaTypeError} 415, nothing read or stored
 */
function requireBodyType (req: IncomingMessage, types: string[]): void {
  const type = req.headers['content-type']?.split(';')[0].trim().toLowerCase()
  if (type === undefined || type === '' || types.includes(type)) return
  throw new UnsupportedMediaTypeError(`a body of type ${type} is not taken here: send the raw bytes (Content-Type: ${types[0]})${type.startsWith('multipart/') ? '; multipart form uploads are not supported' : ''}`)
}

/** A request's Content-Length when it sent a valid one. */
function contentLength (req: IncomingMessage): number | undefined {
  const text = req.headers['content-length']
  return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : undefined
}
