/**
 * Prometheus gauges of stripe and file health, read at scrape time from the
 * last repair pass (every `durability.checkInterval`): what `status` shows.
 * (The counters of placement, repair and scrub are added to where the work
 * happens: `DurabilityMetrics` in components.ts.)
 *
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import { collectGuard, type CollectGuard } from '../metrics/collect-errors.js'
import type { Holdings } from './holdings.js'
import type { DurabilityService } from './service.js'

/**
 * Register the durability health gauges of `service` on `registry`, and,
 * given `holdings`, when the scrub schedule last counted from.
 */
export function registerDurabilityMetrics (registry: Registry, service: Pick<DurabilityService, 'health' | 'fileStates'>, holdings?: Pick<Holdings, 'lastScrub'>): void {
  const registers = [registry]
  const guard = collectGuard(registry)
  labelled(registers, guard, 'shoal_durability_stripes', 'Stripes of pinned files by health, as the last repair pass found them (at_risk: all shards exist but some share a node)', 'health', () => {
    const h = service.health()
    return h === undefined ? undefined : { healthy: h.healthy, at_risk: h.atRisk, degraded: h.degraded, lost: h.lost }
  })
  labelled(registers, guard, 'shoal_durability_files', 'Pinned files (manifests) this node knows, by state: the worst health of their stripes as the last repair pass found it; pending: coding or placement not final yet; placing: this node pushes their shards now; unknown: the pass could not check it (its manifest or stripes could not be read). The states add up to the manifests the pass counted', 'state',
    () => service.fileStates())
  scalar(registers, guard, 'shoal_durability_files_uncoded', 'Pinned files not coded yet: too few live nodes for their parity to survive a lost node', () => service.health()?.uncoded)
  scalar(registers, guard, 'shoal_durability_shards_in_grace', 'Shards whose holder is away but within the grace period (rebuilt after it)', () => service.health()?.waiting)
  if (holdings !== undefined) {
    scalar(registers, guard, 'shoal_durability_last_scrub_timestamp_seconds', 'When the last scrub finished (Unix time, seconds); before the first, when the scrub schedule started', async () => {
      const at = await holdings.lastScrub()
      return at === undefined ? undefined : at / 1000
    })
  }
  scalar(registers, guard, 'shoal_durability_last_check_timestamp_seconds', 'When the last repair pass finished (Unix time, seconds)', () => {
    const h = service.health()
    return h === undefined ? undefined : h.at / 1000
  })
}

/** An unlabelled gauge set at scrape time to what `read` gives (no sample while it gives undefined). */
function scalar (registers: Registry[], guard: CollectGuard, name: string, help: string, read: () => number | undefined | Promise<number | undefined>): void {
  new Gauge({ // eslint-disable-line no-new
    name,
    help,
    registers,
    async collect () {
      await guard.run(name, this, async () => {
        const value = await read()
        if (value !== undefined) this.set(value)
      })
    }
  })
}

/** A gauge with one label, whose values `read` gives at scrape time (none before the first repair pass). */
function labelled (registers: Registry[], guard: CollectGuard, name: string, help: string, label: string, read: () => Record<string, number> | undefined): void {
  new Gauge({ // eslint-disable-line no-new
    name,
    help,
    labelNames: [label],
    registers,
    async collect () {
      await guard.run(name, this, () => {
        for (const [value, count] of Object.entries(read() ?? {})) this.set({ [label]: value }, count)
      })
    }
  })
}
