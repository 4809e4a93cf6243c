/**
 * Process metrics (CPU, memory, heap, event-loop lag, GC, file descriptors)
 * under the `shoal_` prefix: `shoal_process_cpu_seconds_total`,
 * `shoal_nodejs_heap_size_used_bytes`…
 *
 * Why shared: they describe the process, not a node, and prom-client's
 * collector starts an event-loop delay monitor and a GC observer each time
 * it is called, which nothing stops. Two nodes in one process (tests,
 * simulations) each calling it would start two of each, for ever.
 *
 * Mechanism: the collector runs once per process, on a registry of its own,
 * made on first use; each node that wants them registers the same metric
 * objects on its own registry too (a prom-client metric may sit in several
 * registries), so every node's `/metrics` shows the one process's figures
 * and no name is registered twice on one registry.
 *
 * When it applies: at node creation when the config's `metrics.process` is
 * true (the default).
 *
 * @module
 */
import { Registry, collectDefaultMetrics, type Metric } from 'prom-client'

/** Prefix of the process metrics: ours, so they read as Shoal's on a shared Prometheus. */
export const PROCESS_METRICS_PREFIX = 'shoal_'

/**
 * How often the event-loop delay is sampled (ms). prom-client's default, 10
 * ms, arms a libuv timer that woke an idle daemon ~200 times a second (2,214
 * `epoll_pwait` calls in 10 s, against ~35 reads): most of its wakeups and
 * ~11 % of its CPU (docs/benchmarks.md, "Metrics"). At 100 ms a 15-second
 * scrape still summarises ~150 samples, and any stall longer than 100 ms is
 * caught whole.
 */
export const EVENT_LOOP_SAMPLE_MS = 100

let shared: Registry | undefined

/** Register the process metrics on `registry` (one collector per process, whatever the number of nodes). */
export function registerProcessMetrics (registry: Registry): void {
  if (shared === undefined) {
    shared = new Registry()
    collectDefaultMetrics({ register: shared, prefix: PROCESS_METRICS_PREFIX, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS })
  }
  // getMetricsAsArray hands back the metric objects themselves, typed as their descriptions
  for (const metric of shared.getMetricsAsArray()) registry.registerMetric(metric as unknown as Metric)
}
