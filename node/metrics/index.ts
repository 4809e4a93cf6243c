/**
 * Prometheus metrics of one node, on its own registry (two nodes in one
 * process never share counters): the block store's and the API's counters,
 * the durability service's counters (added to where the work happens), and
 * — unless the config's `metrics` section turns them off — the process
 * metrics and libp2p's own metrics. A scrape-time calculation that fails
 * leaves its family out of that scrape and is counted in
 * `shoal_metrics_collect_errors_total` (collect-errors.ts). The gauges read
 * at scrape time are registered by their modules: namespace/metrics.ts,
 * durability/metrics.ts, peers.ts, exchange.ts. Every metric is listed in docs/api.md,
 * "Metrics".
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { libp2pMetrics, type Libp2pMetricsFactory } from './libp2p.js'
import { collectGuard } from './collect-errors.js'
import { registerProcessMetrics } from './process.js'
import type { Logger } from '../logger.js'
import type { BlockStoreMetrics } from '../blocks/index.js'
import type { DurabilityMetrics } from '../durability/index.js'

export { libp2pMetrics, transferLabel, ALL_PROTOCOLS, TRANSFER_METRIC, type Libp2pMetricsFactory, type Libp2pMetricsInit } from './libp2p.js'
export { registerProcessMetrics, PROCESS_METRICS_PREFIX } from './process.js'
export { registerPeerMetrics, type PeerMetricsSources } from './peers.js'
export { registerExchangeMetrics } from './exchange.js'
export { collectGuard, COLLECT_ERRORS_METRIC, type CollectGuard } from './collect-errors.js'
export { MetricKindError } from './errors.js'

/** Every metric the node updates itself (gauges read at scrape time are registered by their modules). */
export interface NodeMetrics extends BlockStoreMetrics, DurabilityMetrics {
  /** The node's own registry: what `/metrics` serves. */
  registry: Registry
  /** `shoal_api_requests_total`: API requests answered, by method, route and status. */
  requests: Counter<'method' | 'route' | 'status'>
  /** `shoal_api_cat_outputs_total`: `cat` answers, by where the content went: the caller's pipe, or the HTTP body. */
  catOutputs: Counter<'output'>
  /** `shoal_api_request_duration_seconds`: API request latency, by method and route. */
  requestSeconds: Histogram<'method' | 'route'>
  /** `shoal_blockstore_bytes`: the block store's size on disk, read at scrape time. */
  storedBytes: Gauge
  /** The `metrics` option of the node's libp2p, when libp2p's metrics are on. */
  libp2p?: Libp2pMetricsFactory
}

/** What {@link createMetrics} needs. */
export interface MetricsInit {
  /** Bytes of the block store on disk, read at scrape time. */
  sizeOf: () => Promise<number>
  /** Process metrics (`shoal_process_*`, `shoal_nodejs_*`). @default true */
  processMetrics?: boolean
  /** libp2p's metrics (`libp2p_*`: connections, streams and bytes per protocol…). @default true */
  libp2pMetrics?: boolean
  /** Where failed scrape-time calculations are logged (rate-limited). */
  logger?: Logger
}

/** Create the node's metrics on a registry of its own. */
export function createMetrics (init: MetricsInit): NodeMetrics {
  const registry = new Registry()
  const guard = collectGuard(registry, init.logger)
  if (init.processMetrics !== false) registerProcessMetrics(registry)
  const registers = [registry]
  const { sizeOf } = init
  return {
    registry,
    ...(init.libp2pMetrics !== false ? { libp2p: libp2pMetrics({ registry }) } : {}),
    blocksWritten: new Counter({ name: 'shoal_blocks_written_total', help: 'Blocks written to the block store', registers }),
    bytesWritten: new Counter({ name: 'shoal_block_bytes_written_total', help: 'Bytes of blocks written to the block store', registers }),
    blocksRead: new Counter({ name: 'shoal_blocks_read_total', help: 'Blocks read (and hash-checked) from the block store', registers }),
    requests: new Counter({ name: 'shoal_api_requests_total', help: 'API requests', labelNames: ['method', 'route', 'status'], registers }),
    catOutputs: catOutputsCounter(registers),
    requestSeconds: new Histogram({
      name: 'shoal_api_request_duration_seconds',
      help: 'API request latency',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60],
      registers
    }),
    storedBytes: new Gauge({
      name: 'shoal_blockstore_bytes',
      help: 'Approximate bytes on disk in the block store',
      registers,
      async collect () { await guard.run('shoal_blockstore_bytes', this, async () => { this.set(await sizeOf()) }) }
    }),
    ...durabilityCounters(registers)
  }
}

function catOutputsCounter (registers: Registry[]): Counter<'output'> {
  const counter = new Counter({ name: 'shoal_api_cat_outputs_total', help: 'cat answers, by where the content went: written by the daemon into the caller\'s stdout pipe (output="pipe") or sent as the HTTP body ("body")', labelNames: ['output'], registers })
  for (const output of ['pipe', 'body']) counter.inc({ output }, 0)
  return counter
}

function durabilityCounters (registers: Registry[]): DurabilityMetrics {
  const counters: DurabilityMetrics = {
    shardsPlaced: new Counter({ name: 'shoal_durability_shards_placed_total', help: 'Shard blocks this node pushed to peers when placing stripes', registers }),
    shardsRepaired: new Counter({ name: 'shoal_durability_shards_repaired_total', help: 'Shards this node rebuilt from their stripe and gave to a holder (repair, or a scrub rebuilding a corrupt shard here)', registers }),
    repairBytes: new Counter({ name: 'shoal_durability_repair_bytes_total', help: 'Bytes of shards repair and scrub rebuilds fetched from peers over the network (direction="in"; shards read from this node\'s store are not counted) and sent to new holders ("out")', labelNames: ['direction'], registers }),
    scrubBlocks: new Counter({ name: 'shoal_durability_scrub_blocks_total', help: 'Blocks the scrub read back and re-hashed', registers }),
    scrubBytes: new Counter({ name: 'shoal_durability_scrub_bytes_total', help: 'Bytes the scrub read back and re-hashed', registers }),
    scrubCorrupt: new Counter({ name: 'shoal_durability_scrub_corrupt_blocks_total', help: 'Blocks the scrub found corrupt (their bytes do not match their hash)', registers }),
    scrubLost: new Counter({ name: 'shoal_durability_scrub_lost_blocks_total', help: 'Corrupt blocks the scrub could not rebuild from their stripe (and blocks the scrub before lost, looked for again): fetched again from a peer (outcome="refetched"), lost: a file or pin here needs them and no peer had them ("lost"), leftovers nothing here needs, not fetched again ("leftover"), or blocks a lost inner block may hide, not known to be of a file ("unknown")', labelNames: ['outcome'], registers })
  }
  // every label from the start: a rate over a series that appears late reads as a gap
  for (const direction of ['in', 'out']) counters.repairBytes.inc({ direction }, 0)
  for (const outcome of ['refetched', 'lost', 'leftover', 'unknown']) counters.scrubLost.inc({ outcome }, 0)
  return counters
}
