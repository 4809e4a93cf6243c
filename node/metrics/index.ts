/**
 * Prometheus metrics of one node, on its own registry (two nodes in one
 * process never share counters).
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { BlockStoreMetrics } from '../blocks/index.js'

/** Every metric the node exposes at `/metrics`. */
export interface NodeMetrics extends BlockStoreMetrics {
  registry: Registry
  requests: Counter<'method' | 'route' | 'status'>
  requestSeconds: Histogram<'method' | 'route'>
  storedBytes: Gauge
}

/**
 * Create the node's metrics. `storedBytes` is computed at scrape time by
 * `sizeOf`.
 */
export function createMetrics (sizeOf: () => Promise<number>, options: { processMetrics?: boolean } = {}): NodeMetrics {
  const registry = new Registry()
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry, prefix: 'shoal_' })
  const registers = [registry]
  return {
    registry,
    blocksWritten: new Counter({ name: 'shoal_blocks_written_total', help: 'Blocks written to the block store', registers }),
    bytesWritten: new Counter({ name: 'shoal_block_bytes_written_total', help: 'Bytes of blocks written to the block store', registers }),
    blocksRead: new Counter({ name: 'shoal_blocks_read_total', help: 'Blocks read (and hash-checked) from the block store', registers }),
    requests: new Counter({ name: 'shoal_api_requests_total', help: 'API requests', labelNames: ['method', 'route', 'status'], registers }),
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
      async collect () { this.set(await sizeOf()) }
    })
  }
}
