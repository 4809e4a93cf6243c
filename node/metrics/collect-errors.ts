/**
 * Scrape-time calculations that fail: one family's failure must not fail the
 * whole `/metrics`. Each registry has one guard; a collector run through it
 * that throws has its family cleared (no stale value, no made-up zero: an
 * unlabelled family serves no sample), is counted in
 * `shoal_metrics_collect_errors_total{metric="<family>"}`, and is logged — at
 * warn the first time and then at most once a minute per family, at debug
 * in between.
 *
 * @module
 */
import { Counter, type Registry } from 'prom-client'
import type { Logger } from '../logger.js'

/** Name of the counter of failed scrape-time calculations. */
export const COLLECT_ERRORS_METRIC = 'shoal_metrics_collect_errors_total'

/** Shortest time between two warnings about the same family (ms). */
export const COLLECT_WARN_EVERY_MS = 60_000

/** What a guarded family is cleared through (every prom-client metric has both). */
export interface Clearable {
  reset: () => void
  remove: (labels: Record<string, string>) => void
}

/** Runs one registry's scrape-time calculations so that a failure stays in its family. */
export interface CollectGuard {
  /**
   * Run `fn` (a family's collect) for the family `name`; when it throws, clear
   * `metric`, count and log the failure, and resolve (the scrape goes on).
   */
  run: (name: string, metric: Clearable, fn: () => void | Promise<void>) => Promise<void>
}

const guards = new WeakMap<Registry, CollectGuard>()

/**
 * The guard of `registry`, made (with its counter) on first use. The logger
 * of the first call that gives one is kept (the node's `createMetrics`).
 */
export function collectGuard (registry: Registry, logger?: Logger): CollectGuard {
  const existing = guards.get(registry) as (CollectGuard & { logger?: Logger }) | undefined
  if (existing !== undefined) {
    if (existing.logger === undefined && logger !== undefined) existing.logger = logger
    return existing
  }
  /** Guarded collects running now: this scrape's failures are counted before the counter is read. */
  const running = new Set<Promise<void>>()
  const errors = new Counter({
    name: COLLECT_ERRORS_METRIC,
    help: 'Scrape-time calculations that failed, by metric family (that family is left out of the scrape)',
    labelNames: ['metric'],
    registers: [registry],
    async collect () {
      // a scrape starts every family's collect in one turn: one tick later, they all run
      await null
      await Promise.all([...running])
    }
  })
  const warned = new Map<string, number>()
  const failed = (name: string, metric: Clearable, err: any): void => {
    clear(metric)
    errors.inc({ metric: name })
    const now = Date.now()
    const last = warned.get(name)
    const fields = { metric: name, err: String(err?.message ?? err) }
    if (last === undefined || now - last >= COLLECT_WARN_EVERY_MS) {
      warned.set(name, now)
      guard.logger?.warn(fields, 'a metric could not be calculated; left out of this scrape')
    } else {
      guard.logger?.debug(fields, 'a metric could not be calculated; left out of this scrape')
    }
  }
  const guard: CollectGuard & { logger?: Logger } = {
    logger,
    async run (name, metric, fn) {
      const done = (async () => { await fn() })().catch(err => { failed(name, metric, err) })
      running.add(done)
      try { await done } finally { running.delete(done) }
    }
  }
  guards.set(registry, guard)
  return guard
}

/** Empty `metric`: a labelled one loses its series, an unlabelled one its sample (reset alone would serve 0). */
export function clear (metric: Clearable): void {
  metric.reset()
  metric.remove({})
}
