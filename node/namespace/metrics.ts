/**
 * Prometheus gauges of the namespace replica (and its sync, when given),
 * read at scrape time.
 *
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import { weight } from './clock.js'
import type { Replica } from './replica.js'
import type { NamespaceSync } from './sync.js'

/** What else {@link registerNamespaceMetrics} reports on. */
export interface NamespaceMetricsSources {
  /** The replica's sync: adds its counter of ignored gossip from untrusted peers. */
  sync?: NamespaceSync
}

/** Register the namespace gauges of `replica` (and of `sources.sync`) on `registry`. */
export function registerNamespaceMetrics (registry: Registry, replica: Replica, sources: NamespaceMetricsSources = {}): void {
  const registers = [registry]
  new Gauge({ name: 'shoal_namespace_entries', help: 'Log entries applied (sum of the vector clock)', registers, collect () { this.set(weight(replica.state().clock)) } })
  new Gauge({ name: 'shoal_namespace_pruned_entries', help: 'Log entries compacted into a snapshot and pruned', registers, collect () { this.set(weight(replica.state().pruned)) } })
  new Gauge({ name: 'shoal_namespace_heads', help: 'Current heads of the log', registers, collect () { this.set(replica.state().heads.length) } })
  new Gauge({ name: 'shoal_namespace_rejected_entries', help: 'Entries rejected since start (bad signature, shape, equivocation)', registers, collect () { this.set(replica.rejected) } })
  new Gauge({ name: 'shoal_namespace_untrusted_entries', help: 'Entries dropped since start because their author is not a trusted writer', registers, collect () { this.set(replica.untrusted) } })
  const { sync } = sources
  if (sync !== undefined) {
    new Gauge({ name: 'shoal_namespace_untrusted_messages', help: 'Namespace gossip messages ignored since start because their sender is not a trusted writer', registers, collect () { this.set(sync.stats.untrusted) } })
  }
}
