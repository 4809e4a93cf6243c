import { readFile, writeFile, rename } from 'node:fs/promises'
import { z } from 'zod'
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidArgumentError, RepoNotFoundError } from '../errors.js'
import { TierConfigSchema } from '../tiers/config.js'
import { DEFAULT_GATEWAY } from '../gateway/address.js'

/** One day in ms: the bounds of the durability periods. */
const DAY_MS = 24 * 3600 * 1000

/** True for a libp2p peer id in its string form. */
export function isPeerId (text: string): boolean {
  try {
    peerIdFromString(text)
    return true
  } catch {
    return false
  }
}

/** Schema of `<repo>/config.json`. */
export const RepoConfigSchema = z.object({
  version: z.literal(1),
  /** Loopback HOST:PORT of the HTTP API; port 0 picks a free one. */
  api: z.string(),
  /** HOST:PORT of the read-only IPFS gateway (docs/gateway.md), or `off`; port 0 picks a free one. A config without it (made before the gateway) gets {@link defaultGatewayFor} its API when loaded. */
  gateway: z.string().default(DEFAULT_GATEWAY),
  /** libp2p listen multiaddrs (used by the swarm). */
  listen: z.array(z.string()),
  /** Default chunker for `add`. */
  chunker: z.string(),
  /** pino log level. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** True when `<repo>/swarm.key` restricts the node to a private swarm. */
  privateSwarm: z.boolean(),
  /** Multiaddrs announced to peers instead of the listen addresses. */
  announce: z.array(z.string()).default([]),
  /** Peers (multiaddrs with /p2p/ID) dialled at start and kept connected. */
  bootstrap: z.array(z.string()).default([]),
  /** Discover peers on the LAN with mDNS. */
  mdns: z.boolean().default(false),
  /** Shared namespace tuning. */
  namespace: z.object({
    /** Mean period of anti-entropy rounds and clock heartbeats (ms). */
    syncInterval: z.number().int().min(100).max(3_600_000).default(10_000),
    /** A member silent this long no longer holds back compaction (ms). */
    memberTimeout: z.number().int().min(1000).default(7 * 24 * 3600 * 1000),
    /** Compact once this many log entries are stable (seen by every member). */
    compactAfter: z.number().int().min(1).default(10_000),
    /** Whose entries are applied: every member of a private swarm (`swarm`), or only this node and `trusted` (`listed`; always so in an open swarm). */
    writers: z.enum(['swarm', 'listed']).default('swarm'),
    /** Peer ids whose namespace entries are applied besides this node's (`shoal trust add|rm|ls`). */
    trusted: z.array(z.string().max(128).refine(isPeerId, 'must be a peer id')).max(10_000).default([])
  }).strict().default({ syncInterval: 10_000, memberTimeout: 7 * 24 * 3600 * 1000, compactAfter: 10_000, writers: 'swarm', trusted: [] }),
  /** What this node stores for others. */
  storage: z.object({
    /** Most bytes of shards held for other nodes; absent: half of the repo disk's free space (measured at each hold) plus what is already held. */
    maxForOthers: z.number().int().min(0).optional(),
    /** Bytes kept free on the repo disk for rm, gc and restarts: adds that would eat into them are refused (DiskFullError); absent: 256 MiB. */
    reserve: z.number().int().min(0).optional()
  }).strict().default({}),
  /** Pins, placement and repair. */
  durability: z.object({
    /** Failure domain of this node (rack, site…); shards of a stripe are spread over zones. */
    zone: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1..64 characters of [A-Za-z0-9._-]').optional(),
    /** Policy of added files of `largeFrom` bytes and more. */
    largePolicy: z.string().default('ec:4+2'),
    /** Policy of smaller files. */
    smallPolicy: z.string().default('replicas:3'),
    largeFrom: z.number().int().min(0).default(1024 * 1024),
    /** A holder away this long has its shards rebuilt elsewhere (ms). */
    grace: z.number().int().min(1000, 'at least 1000 ms: a shorter grace period rebuilds the shards of a holder that merely restarts').max(DAY_MS * 365).default(10 * 60_000),
    /** Period of the repair check (ms); 0 = only `shoal repair`. At least 1 s otherwise (a pass every millisecond took a fifth of a core and loaded every peer). */
    checkInterval: z.number().int().min(0).max(DAY_MS).refine(v => v === 0 || v >= 1000, '0 (only `shoal repair`) or at least 1000 ms').default(60_000),
    /** Repair traffic budget, bytes per second. */
    repairRate: z.number().int().min(1024).default(32 * 1024 * 1024),
    /** Period of the scrub that re-hashes every stored block (ms); 0 = only `shoal repair --scrub`. */
    scrubInterval: z.number().int().min(0).max(DAY_MS * 365).refine(v => v === 0 || v >= 60_000, '0 (only `shoal repair --scrub`) or at least 60000 ms').default(7 * 24 * 3600_000),
    /** Scrub read budget, bytes per second. */
    scrubRate: z.number().int().min(1024).default(64 * 1024 * 1024)
  }).strict().default({ largePolicy: 'ec:4+2', smallPolicy: 'replicas:3', largeFrom: 1024 * 1024, grace: 10 * 60_000, checkInterval: 60_000, repairRate: 32 * 1024 * 1024, scrubInterval: 7 * 24 * 3600_000, scrubRate: 64 * 1024 * 1024 }),
  /** FUSE mounts (docs/fuse.md). */
  fuse: z.object({
    /** Seconds the kernel (and the mount) reuse a file's attributes. */
    attrTimeout: z.number().min(0).max(3600).default(1),
    /** Seconds the kernel reuses a name lookup. */
    entryTimeout: z.number().min(0).max(3600).default(1),
    /** Keep file pages cached across opens while the file's mtime and size are unchanged. */
    autoCache: z.boolean().default(true),
    /** Background commits of closed files running at once. */
    commitConcurrency: z.number().int().min(1).max(64).default(2),
    /** Closed files waiting for their commit before `close` waits for room. */
    maxPendingCommits: z.number().int().min(1).max(100_000).default(256),
    /** MiB of recently written files' content kept on local disk for reads through the mount; 0: none. */
    contentCacheMiB: z.number().int().min(0).max(1_048_576).default(2048),
    /** MiB of memory that files being written (of at most 1 MiB each) are staged in before their commit; 0: all staged on disk. */
    stagingMemoryMiB: z.number().int().min(0).max(65_536).default(64)
  }).strict().default({ attrTimeout: 1, entryTimeout: 1, autoCache: true, commitConcurrency: 2, maxPendingCommits: 256, contentCacheMiB: 2048, stagingMemoryMiB: 64 }),
  /** What `/metrics` serves besides Shoal's own metrics (docs/api.md, "Metrics"). */
  metrics: z.object({
    /** Process metrics: CPU, memory, heap, event loop, GC (`shoal_process_*`, `shoal_nodejs_*`). */
    process: z.boolean().default(true),
    /** libp2p's metrics: connections, streams, bytes per protocol (`libp2p_*`). */
    libp2p: z.boolean().default(true)
  }).strict().default({ process: true, libp2p: true }),
  /** The S3 cold tier this node pushes to (`shoal tier s3`); credentials come from the environment, never from here. */
  tier: TierConfigSchema.optional()
}).strict()

/** The repo's configuration. */
export type RepoConfig = z.infer<typeof RepoConfigSchema>

/** The API's default address. */
export const DEFAULT_API = '127.0.0.1:5747'

/**
 * The gateway address of a repo whose config names none: the default next
 * to the default API, else `127.0.0.1:0` (a free port), so a second repo on
 * the machine, whose API was moved off the default, does not take the first
 * repo's gateway port.
 */
export function defaultGatewayFor (api: string): string {
  return api === DEFAULT_API ? DEFAULT_GATEWAY : '127.0.0.1:0'
}

/** Embedded defaults: a node works with no configuration at all. */
export const DEFAULT_CONFIG: RepoConfig = {
  version: 1,
  api: DEFAULT_API,
  gateway: DEFAULT_GATEWAY,
  listen: ['/ip4/0.0.0.0/tcp/4747'],
  chunker: 'fastcdc',
  logLevel: 'info',
  privateSwarm: true,
  announce: [],
  bootstrap: [],
  mdns: false,
  namespace: { syncInterval: 10_000, memberTimeout: 7 * 24 * 3600 * 1000, compactAfter: 10_000, writers: 'swarm', trusted: [] },
  storage: {},
  durability: { largePolicy: 'ec:4+2', smallPolicy: 'replicas:3', largeFrom: 1024 * 1024, grace: 10 * 60_000, checkInterval: 60_000, repairRate: 32 * 1024 * 1024, scrubInterval: 7 * 24 * 3600_000, scrubRate: 64 * 1024 * 1024 },
  fuse: { attrTimeout: 1, entryTimeout: 1, autoCache: true, commitConcurrency: 2, maxPendingCommits: 256, contentCacheMiB: 2048, stagingMemoryMiB: 64 },
  metrics: { process: true, libp2p: true }
}

/** Floors of durability periods (ms) a config written before them may be under: [setting, floor, whether 0 (off) is allowed]. */
const DURATION_FLOORS: ReadonlyArray<[string, number, boolean]> = [['grace', 1000, false], ['checkInterval', 1000, true], ['scrubInterval', 60_000, true]]

/**
 * A config written before the periods had floors, with a value under one,
 * raised to it: refused as it stood, the daemon would not start and no
 * `config set` could mend it (each loads the whole config first). A value
 * set now is refused instead (`config set`).
 */
function raiseToFloors (json: unknown): unknown {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return json
  const durability = (json as { durability?: unknown }).durability
  if (typeof durability !== 'object' || durability === null || Array.isArray(durability)) return json
  const raised: Record<string, unknown> = { ...durability }
  for (const [key, floor, offAllowed] of DURATION_FLOORS) {
    const value = raised[key]
    if (typeof value === 'number' && value < floor && !(offAllowed && value === 0) && value >= 0) raised[key] = floor
  }
  return { ...json, durability: raised }
}

/**
 * Read and validate a repo's config.
 *
 * @throws {RepoNotFoundError} when there is none
 * @throws {InvalidArgumentError} when it does not validate
 */
export async function loadConfig (file: string): Promise<RepoConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      const repo = file.replace(/\/config\.json$/, '')
      // the folder named, as cli/client.ts names it: a `shoal init` alone makes ~/.shoal, not this repo
      throw new RepoNotFoundError(`no Shoal repo at ${repo}: create one with \`shoal init --repo ${repo}\``)
    }
    throw err
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new InvalidArgumentError(`${file} is not valid JSON`)
  }
  // a config from before the gateway: its address is derived from the API's, as `init` derives it
  if (typeof json === 'object' && json !== null && !Array.isArray(json) && !('gateway' in json) && typeof (json as { api?: unknown }).api === 'string') {
    json = { ...json, gateway: defaultGatewayFor((json as { api: string }).api) }
  }
  json = raiseToFloors(json)
  const parsed = RepoConfigSchema.safeParse(json)
  if (!parsed.success) throw new InvalidArgumentError(`${file}: ${parsed.error.issues.map(i => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  return parsed.data
}

/** Write a config atomically (temp file + rename). */
export async function saveConfig (file: string, config: RepoConfig): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 })
  await rename(tmp, file)
}
