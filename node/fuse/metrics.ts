/**
 * Prometheus counters of the node's FUSE mounts, read at scrape time: the
 * reads the libfuse3 binding's threads answer from pack records bypass the
 * block store, so `shoal_blocks_read_total` does not count them.
 *
 * @module
 */
import type { Registry } from 'prom-client'
import { scrapedCounter as counter } from '../metrics/scraped.js'
import type { FuseService } from './service.js'

/** Register the counters of `fuse`'s reads from pack records on `registry`. */
export function registerFuseMetrics (registry: Registry, fuse: Pick<FuseService, 'recordReads'>): void {
  const registers = [registry]
  counter(registers, 'shoal_fuse_records_read_total', 'Pack records the FUSE binding read from disk and checked for mounted reads (not in shoal_blocks_read_total)', () => fuse.recordReads().records)
  counter(registers, 'shoal_fuse_record_bytes_read_total', 'Block bytes of the pack records the FUSE binding read for mounted reads', () => fuse.recordReads().bytes)
  counter(registers, 'shoal_fuse_records_refused_total', 'Pack records that failed the FUSE binding\'s check (length, multihash or crc32c): never served, read again through the block store', () => fuse.recordReads().refused)
}
