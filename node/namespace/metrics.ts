/**
 * Prometheus gauges of the namespace replica, read at scrape time.
 *
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import { weight } from './clock.js'
import type { Replica } from './replica.js'

/** Register the namespace gauges of `replica` on `registry`. */
export function registerNamespaceMetrics (registry: Registry, replica: Replica): void {
  const registers = [registry]
  new Gauge({ name: 'shoal_namespace_entries', help: 'Log entries applied (sum of the vector clock)', registers, collect () { this.set(weight(replica.state().clock)) } })
  new Gauge({ name: 'shoal_namespace_pruned_entries', help: 'Log entries compacted into a snapshot and pruned', registers, collect () { this.set(weight(replica.state().pruned)) } })
  new Gauge({ name: 'shoal_namespace_heads', help: 'Current heads of the log', registers, collect () { this.set(replica.state().heads.length) } })
  new Gauge({ name: 'shoal_namespace_rejected_entries', help: 'Entries rejected since start (bad signature, shape, equivocation)', registers, collect () { this.set(replica.rejected) } })
}
