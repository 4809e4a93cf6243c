/**
 * Gauges of the node's peers, read at scrape time: connected now, known
 * (remembered and re-dialled), trusted as namespace writers; and the
 * re-dials that failed.
 *
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import { scrapedCounter } from './scraped.js'
import type { WriterTrust } from '../namespace/index.js'
import type { ShoalLibp2p } from '../net/host.js'
import type { PeerManager } from '../peers/index.js'

/** What {@link registerPeerMetrics} reads. */
export interface PeerMetricsSources {
  libp2p: Pick<ShoalLibp2p, 'getPeers'>
  peers: Pick<PeerManager, 'knownCount' | 'stats'>
  trust: Pick<WriterTrust, 'list'>
}

/** Register the peer gauges on `registry`. */
export function registerPeerMetrics (registry: Registry, sources: PeerMetricsSources): void {
  const registers = [registry]
  const { libp2p, peers, trust } = sources
  /* eslint-disable no-new */
  new Gauge({ name: 'shoal_peers_connected', help: 'Peers with an open connection', registers, collect () { this.set(libp2p.getPeers().length) } })
  new Gauge({ name: 'shoal_peers_known', help: 'Peers remembered and re-dialled after a disconnection or restart (peers.json and the bootstrap list)', registers, collect () { this.set(peers.knownCount) } })
  new Gauge({ name: 'shoal_peers_trusted', help: 'Peers listed as trusted namespace writers (shoal trust ls; in a private swarm with writers "swarm" every member writes besides them)', registers, collect () { this.set(trust.list().length) } })
  /* eslint-enable no-new */
  scrapedCounter(registers, 'shoal_peer_redials_failed_total', 'Re-dials of known peers that reached none of their addresses', () => peers.stats.redialsFailed)
}
