/**
 * The cold tier of one node: its configured bucket (repo config `tier`),
 * pushing a file's DAG there, and readers of cold copies — of any bucket a
 * namespace record names, with this node's own credentials. See docs/tier.md.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { loadConfig, saveConfig } from '../repo/config.js'
import { InvalidArgumentError } from '../errors.js'
import { raceAbort } from '../abort.js'
import { createTierClient, type TierClient, type TierClientOptions, type TierConfig } from './s3-client.js'
import { hasDotSegment } from './config.js'
import { pushCold, verifyCold } from './archive.js'
import { checkColdCopy, type ColdCopyHealth } from './cold-health.js'
import { ColdReader, loadColdIndex } from './cold-reader.js'
import { probeTier, type TierProbe } from './probe.js'
import { COLD_LOCATION_VERSION, type ColdLocation } from './location.js'
import type { ColdIndex } from './format.js'
import type { BlockGetter } from '../reads/api.js'
import type { Logger } from '../logger.js'
import type { StoredColdCopy } from '../namespace/index.js'

// the SDK warns on every process under Node 20 (multi-line, on stderr); the CLI promises one-line errors
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

/** What the service is built from. */
export interface TierComponents {
  /** `<repo>/config.json`: where `configure` saves the tier. */
  configFile: string
  logger: Logger
}

/** No tier is configured on this node. */
export class NoTierError extends InvalidArgumentError {
  override name = 'NoTierError'
}

/** `shoal tier ls`: the configured tier, whether it answers, and what it holds. */
export interface TierStatus {
  configured: boolean
  tier?: TierConfig
  probe?: TierProbe
}

/** Cold copies whose checked index a {@link TierService} keeps. */
const MAX_INDEXES = 16

/** The cold tier of one node. */
export class TierService {
  private config?: TierConfig
  private readonly clients = new Map<string, TierClient>()
  /** Checked indexes of cold copies, least recently used first. */
  private readonly indexes = new Map<string, Promise<ColdIndex>>()

  /**
   * @param config the repo's `tier` setting, if any
   * @param clientOptions for tests (credentials, timeouts); Shoal itself passes none
   */
  constructor (private readonly components: TierComponents, config?: TierConfig, private readonly clientOptions: TierClientOptions = {}) {
    this.config = config
  }

  /**
   * Set this node's tier: the bucket must answer (with this node's
   * credentials) before anything is saved; on any failure nothing changes.
   *
   * @throws {TierError} unreachable endpoint, wrong credentials, missing bucket
   * @throws {InvalidArgumentError} a malformed endpoint, bucket, prefix or region
   */
  async configure (input: TierConfig, signal?: AbortSignal): Promise<TierConfig> {
    if (hasDotSegment(input.prefix)) throw new InvalidArgumentError('invalid tier prefix: must not hold "." or ".." segments')
    // the client validates and normalises the settings; it is only kept once the bucket answered
    const client = createTierClient(input, this.clientOptions)
    try {
      await client.checkBucket(signal)
    } finally {
      client.destroy()
    }
    const config: TierConfig = { endpoint: client.endpoint, bucket: client.bucket }
    if (client.prefix !== '') config.prefix = client.prefix
    if (input.region !== undefined) config.region = input.region
    const file = this.components.configFile
    const repoConfig = await loadConfig(file)
    repoConfig.tier = config
    await saveConfig(file, repoConfig)
    this.config = config
    this.components.logger.info({ endpoint: config.endpoint, bucket: config.bucket, prefix: config.prefix }, 'tier configured')
    return config
  }

  /** The configured tier and a probe of it (reachability, usage); never throws tier errors. */
  async status (signal?: AbortSignal): Promise<TierStatus> {
    if (this.config === undefined) return { configured: false }
    const probe = await probeTier(this.clientOf(this.config), { signal })
    return { configured: true, tier: this.config, probe }
  }

  /**
   * Push the DAG under `root` to the configured tier (CAR + index, streamed,
   * then verified by reading the whole CAR back) and return the cold copy
   * to record in the file's namespace record.
   *
   * @throws {NoTierError} when no tier is configured
   * @throws {TierError} when the tier fails or the copy does not verify (nothing is recorded then)
   */
  async push (root: CID, getter: BlockGetter, signal?: AbortSignal): Promise<StoredColdCopy> {
    if (this.config === undefined) throw new NoTierError('no cold tier is configured: set one with `shoal tier s3 --endpoint URL --bucket NAME`')
    const client = this.clientOf(this.config)
    const { location } = await pushCold(client, getter, root, { signal, verify: 'full' })
    const copy: StoredColdCopy = {
      endpoint: client.endpoint,
      bucket: location.bucket,
      carKey: location.carKey,
      carSize: location.carSize,
      indexKey: location.indexKey,
      indexSize: location.indexSize,
      indexCid: location.indexCid,
      blocks: location.blocks,
      blockBytes: location.blockBytes
    }
    if (this.config.region !== undefined) copy.region = this.config.region
    return copy
  }

  /**
   * A reader of the cold copy of the file under `root` (each block
   * hash-checked); it closes when `options.signal` (its owner's lifetime) fires.
   */
  reader (root: CID, copy: StoredColdCopy, options: { signal?: AbortSignal } = {}): ColdReader {
    const client = this.clientOf({ endpoint: copy.endpoint, bucket: copy.bucket, region: copy.region })
    const location = locationOf(root, copy)
    return new ColdReader(client, location, { loadIndex: async () => await this.indexOf(client, location), signal: options.signal })
  }

  /**
   * Where the recorded cold copy of `root` stands (`pin status`): both
   * objects there at their sizes, the index matching its CID; with
   * `verify`, the whole CAR read back and checked against its index. Tier
   * failures are the result's state, not thrown.
   */
  async check (root: CID, copy: StoredColdCopy, options: { signal?: AbortSignal, verify?: boolean } = {}): Promise<ColdCopyHealth> {
    const client = this.clientOf({ endpoint: copy.endpoint, bucket: copy.bucket, region: copy.region })
    const location = locationOf(root, copy)
    if (options.verify === true) {
      const health = await checkColdCopy(client, location, { signal: options.signal, timeoutMs: Infinity, verify: async s => { await verifyCold(client, location, { mode: 'full', signal: s }) } })
      if (health.state === 'ok') health.verified = true
      return health
    }
    return await checkColdCopy(client, location, { signal: options.signal, verify: async s => { await raceAbort(this.indexOf(client, location), s, 'cold check aborted') } })
  }

  /**
   * Read the recorded cold copy of `root` back whole and check it against
   * its index (sizes, index CID, the CAR's sha-256), as a push does.
   *
   * @throws {TierCorruptObjectError} when an object is truncated, replaced or altered
   * @throws {TierError} subclasses for S3 failures (a missing object: {@link TierObjectNotFoundError})
   */
  async verify (root: CID, copy: StoredColdCopy, signal?: AbortSignal): Promise<void> {
    const client = this.clientOf({ endpoint: copy.endpoint, bucket: copy.bucket, region: copy.region })
    await verifyCold(client, locationOf(root, copy), { mode: 'full', signal })
  }

  /**
   * The checked index of a cold copy, loaded once for every reader of it
   * (a file read through the mount starts a reader at every open and seek);
   * the last {@link MAX_INDEXES} copies are kept, a failed load is not.
   */
  private indexOf (client: TierClient, location: ColdLocation): Promise<ColdIndex> {
    const key = `${client.endpoint}\n${location.bucket}\n${location.indexCid}`
    let index = this.indexes.get(key)
    if (index === undefined) {
      index = loadColdIndex(client, location)
      index.catch(() => { this.indexes.delete(key) })
      if (this.indexes.size >= MAX_INDEXES) this.indexes.delete(this.indexes.keys().next().value as string)
    } else {
      this.indexes.delete(key) // most recently used last
    }
    this.indexes.set(key, index)
    return index
  }

  /** Close every client. */
  stop (): void {
    for (const client of this.clients.values()) client.destroy()
    this.clients.clear()
    this.indexes.clear()
  }

  private clientOf (config: TierConfig): TierClient {
    const key = `${config.endpoint}\n${config.bucket}\n${config.region ?? ''}\n${config.prefix ?? ''}`
    let client = this.clients.get(key)
    if (client === undefined) {
      client = createTierClient(config, this.clientOptions)
      this.clients.set(key, client)
    }
    return client
  }
}


/** The location of a recorded cold copy of `root`. */
function locationOf (root: CID, copy: StoredColdCopy): ColdLocation {
  return {
    v: COLD_LOCATION_VERSION,
    root: root.toString(),
    bucket: copy.bucket,
    carKey: copy.carKey,
    carSize: copy.carSize,
    indexKey: copy.indexKey,
    indexSize: copy.indexSize,
    indexCid: copy.indexCid,
    blocks: copy.blocks,
    blockBytes: copy.blockBytes
  }
}
