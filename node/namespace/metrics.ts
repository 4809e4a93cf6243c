/**
 * Prometheus metrics of the namespace replica (and its sync, when given),
 * read at scrape time: gauges of its state, and counters (`_total`) of what
 * it refused since the process started.
 *
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import { scrapedCounter as counter } from '../metrics/scraped.js'
import { weight } from './clock.js'
import type { Replica } from './replica.js'
import type { NamespaceSync } from './sync.js'

/** What else {@link registerNamespaceMetrics} reports on. */
export interface NamespaceMetricsSources {
  /** The replica's sync: adds its counters of ignored gossip from untrusted peers, of heartbeats published and skipped, and of peers' bad input (penalties, shunned peers and their dropped gossip). */
  sync?: NamespaceSync
}

/** Register the namespace gauges of `replica` (and of `sources.sync`) on `registry`. */
export function registerNamespaceMetrics (registry: Registry, replica: Replica, sources: NamespaceMetricsSources = {}): void {
  const registers = [registry]
  new Gauge({ name: 'shoal_namespace_entries', help: 'Log entries applied (sum of the vector clock)', registers, collect () { this.set(weight(replica.state().clock)) } })
  new Gauge({ name: 'shoal_namespace_pruned_entries', help: 'Log entries compacted into a snapshot and pruned', registers, collect () { this.set(weight(replica.state().pruned)) } })
  new Gauge({ name: 'shoal_namespace_heads', help: 'Current heads of the log', registers, collect () { this.set(replica.state().heads.length) } })
  new Gauge({ name: 'shoal_namespace_recovering', help: '1 while the node recovers its own past writes before writing (its store is behind them), else 0', registers, collect () { this.set(replica.recovering ? 1 : 0) } })
  new Gauge({ name: 'shoal_namespace_retired_authors', help: 'Authors retired (they left): clocks this node sends leave them out where it holds their retired seq', registers, collect () { this.set(replica.retired) } })
  counter(registers, 'shoal_namespace_rejected_entries_total', 'Entries rejected (bad signature, shape, equivocation)', () => replica.rejected)
  counter(registers, 'shoal_namespace_untrusted_entries_total', 'Entries dropped because their author is not a trusted writer', () => replica.untrusted)
  const { sync } = sources
  if (sync !== undefined) {
    counter(registers, 'shoal_namespace_untrusted_messages_total', 'Namespace gossip messages ignored because their sender is not a trusted writer', () => sync.stats.untrusted)
    counter(registers, 'shoal_namespace_heartbeats_total', 'Namespace heartbeats published (the clock, when there was news or a liveness heartbeat was due)', () => sync.stats.heartbeats)
    counter(registers, 'shoal_namespace_heartbeats_skipped_total', 'Sync rounds that published no heartbeat (nothing new to announce, no liveness heartbeat due)', () => sync.stats.heartbeatsSkipped)
    counter(registers, 'shoal_namespace_peer_penalties_total', 'Bad input counted against peers (malformed gossip, requests or answers, rejected entries, snapshots that fail their checks)', () => sync.scores.stats.penalties)
    counter(registers, 'shoal_namespace_shunned_messages_total', 'Namespace gossip messages dropped unread because their sender is shunned for bad input', () => sync.stats.shunned)
    counter(registers, 'shoal_namespace_snapshots_declined_total', 'Snapshots this node, holding pruned history of its own, left because another peer still had the entries to give (docs/namespace.md, "A server\'s word that it pruned")', () => sync.stats.snapshotsDeclined)
    const checks = sync.stateCheck.stats
    counter(registers, 'shoal_namespace_state_checks_total', 'State checks run: this node\'s state compared with trusted peers whose heads are its own (docs/namespace.md, "State checks")', () => checks.stateChecks)
    counter(registers, 'shoal_namespace_state_checks_diverged_total', 'State checks that found this node\'s state different from a peer with the same heads and could not tell which is right (nothing changed)', () => checks.stateChecksDiverged)
    counter(registers, 'shoal_namespace_state_checks_repaired_total', 'State checks in which two peers with the same heads agreed against this node\'s rows, and the paths were repaired', () => checks.stateChecksRepaired)
    counter(registers, 'shoal_namespace_state_paths_repaired_total', 'Paths whose rows a state check repaired', () => checks.statePathsRepaired)
    counter(registers, 'shoal_namespace_state_stray_paths_total', 'Paths whose rows differed from this node\'s own snapshot where no write changed them (found by the pass over the rows that state checks run, then compared with peers)', () => checks.strayPaths)
    new Gauge({ name: 'shoal_namespace_divergent_paths', help: 'Paths that differed from a peer with the same heads in the latest state check that compared (0: it agreed)', registers, collect () { this.set(checks.divergentPaths) } })
    counter(registers, 'shoal_namespace_writer_notices_sent_total', 'Writer notices sent to connected peers whose writes this node refuses (it does not trust them as writers)', () => sync.noticeStats.sent)
    counter(registers, 'shoal_namespace_writer_notices_received_total', 'Writer notices taken from members: they refuse this node\'s writes', () => sync.refusals.stats.received)
    counter(registers, 'shoal_namespace_writer_notices_dropped_total', 'Writer notices dropped: from a peer this node does not trust as a writer, or malformed', () => sync.refusals.stats.ignored + sync.refusals.stats.malformed)
    new Gauge({ name: 'shoal_namespace_writes_refused_by', help: 'Connected members that said they refuse this node\'s writes (`shoal status`)', registers, collect () { this.set(sync.refusals.summary().refusedBy.length) } })
    new Gauge({ name: 'shoal_namespace_shunned_peers', help: 'Peers shunned now for bad input: their gossip is dropped and they are not pulled from until their score decays', registers, collect () { this.set(sync.scores.shunnedPeers().length) } })
  }
}
