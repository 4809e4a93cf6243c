/**
 * Prometheus gauges of stripe and file health, read at scrape time from the
 * last repair pass (every `durability.checkInterval`): what `status` shows.
 * (The counters of placement, repair and scrub are added to where the work
 * happens: `DurabilityMetrics` in components.ts.)
 *
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import type { Holdings } from './holdings.js'
import type { DurabilityService } from './service.js'

/**
 * Register the durability health gauges of `service` on `registry`, and,
 * given `holdings`, when the scrub schedule last counted from.
 */
export function registerDurabilityMetrics (registry: Registry, service: Pick<DurabilityService, 'health' | 'fileStates'>, holdings?: Pick<Holdings, 'lastScrub'>): void {
  const registers = [registry]
  labelled(registers, 'shoal_durability_stripes', 'Stripes of pinned files by health, as the last repair pass found them (at_risk: all shards exist but some share a node)', 'health', () => {
    const h = service.health()
    return h === undefined ? undefined : { healthy: h.healthy, at_risk: h.atRisk, degraded: h.degraded, lost: h.lost }
  })
  labelled(registers, 'shoal_durability_files', 'Pinned files (manifests) this node knows, by state: the worst health of their stripes as the last repair pass found it; pending: coding or placement not final yet; placing: this node pushes their shards now', 'state',
    () => service.fileStates())
  new Gauge({ name: 'shoal_durability_files_uncoded', help: 'Pinned files not coded yet: too few live nodes for their parity to survive a lost node', registers, collect () { const h = service.health(); if (h !== undefined) this.set(h.uncoded) } })
  new Gauge({ name: 'shoal_durability_shards_in_grace', help: 'Shards whose holder is away but within the grace period (rebuilt after it)', registers, collect () { const h = service.health(); if (h !== undefined) this.set(h.waiting) } })
  if (holdings !== undefined) {
    new Gauge({ name: 'shoal_durability_last_scrub_seconds', help: 'When the last scrub finished (Unix time, seconds); before the first, when the scrub schedule started', registers, async collect () { const at = await holdings.lastScrub(); if (at !== undefined) this.set(at / 1000) } })
  }
  new Gauge({ name: 'shoal_durability_last_check_seconds', help: 'When the last repair pass finished (Unix time, seconds)', registers, collect () { const h = service.health(); if (h !== undefined) this.set(h.at / 1000) } })
}

/** A gauge with one label, whose values `read` gives at scrape time (none before the first repair pass). */
function labelled (registers: Registry[], name: string, help: string, label: string, read: () => Record<string, number> | undefined): void {
  new Gauge({ // eslint-disable-line no-new
    name,
    help,
    labelNames: [label],
    registers,
    collect () {
      for (const [value, count] of Object.entries(read() ?? {})) this.set({ [label]: value }, count)
    }
  })
}
