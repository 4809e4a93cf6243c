/**
 * Prometheus gauges of stripe health, read at scrape time from the last
 * repair pass (every `durability.checkInterval`): what `status` shows.
 *
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import type { DurabilityService } from './service.js'

/** Register the durability health gauges of `service` on `registry`. */
export function registerDurabilityMetrics (registry: Registry, service: Pick<DurabilityService, 'health'>): void {
  const registers = [registry]
  new Gauge({
    name: 'shoal_durability_stripes',
    help: 'Stripes of pinned files by health, as the last repair pass found them (at_risk: all shards exist but some share a node)',
    labelNames: ['health'],
    registers,
    collect () {
      const h = service.health()
      if (h === undefined) return
      this.set({ health: 'healthy' }, h.healthy)
      this.set({ health: 'at_risk' }, h.atRisk)
      this.set({ health: 'degraded' }, h.degraded)
      this.set({ health: 'lost' }, h.lost)
    }
  })
  new Gauge({ name: 'shoal_durability_files_uncoded', help: 'Pinned files not coded yet: too few live nodes for their parity to survive a lost node', registers, collect () { const h = service.health(); if (h !== undefined) this.set(h.uncoded) } })
  new Gauge({ name: 'shoal_durability_shards_in_grace', help: 'Shards whose holder is away but within the grace period (rebuilt after it)', registers, collect () { const h = service.health(); if (h !== undefined) this.set(h.waiting) } })
  new Gauge({ name: 'shoal_durability_last_check_seconds', help: 'When the last repair pass finished (Unix time, seconds)', registers, collect () { const h = service.health(); if (h !== undefined) this.set(h.at / 1000) } })
}
