/**
 * The block exchange's counters and gauges, read at scrape time from its
 * own stats (node/exchange/index.ts `stats()`): what a user running a
 * cluster watches to see reads served by peers, bad peers caught, and
 * reads stuck in flight. Before, these lived in the process only.
 *
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import { scrapedCounter } from './scraped.js'
import type { BlockExchange, BlockExchangeStats } from '../exchange/index.js'

/** The counters exported, each `shoal_exchange_<name>_total`, with its help. */
const COUNTERS: Array<[keyof BlockExchangeStats, string, string]> = [
  ['blocksFetched', 'blocks_fetched', 'Blocks fetched from peers, verified against their CID'],
  ['blocksSent', 'blocks_sent', 'Blocks this node sent to peers that asked for them'],
  ['blocksStored', 'blocks_stored', 'Blocks peers pushed (placement, repair) that this node verified and stored'],
  ['putsRefused', 'puts_refused', 'Blocks peers pushed that this node had not agreed to hold (nothing written)'],
  ['corruptBlocks', 'corrupt_blocks', 'Blocks peers sent that did not match their CID (never served; the peer is hung up on)'],
  ['corruptLocal', 'corrupt_local', 'Local copies that failed their check when read, fetched again from a peer'],
  ['replacedLocal', 'replaced_local', 'Corrupt local copies replaced by a good one from a peer'],
  ['peersDisconnected', 'peers_disconnected', 'Peers hung up on for misbehaving (wrong bytes, malformed messages)'],
  ['localFallbacks', 'local_fallbacks', 'Blocks a read session had stopped looking up here, read here after the first peer asked did not give them at once'],
  ['hedgedWants', 'hedged_wants', 'Wants sent to another provider because the first had not answered within the hedge delay'],
  ['rediscoveries', 'rediscoveries', 'Searches for a root\'s providers made again by a read whose providers had all failed it'],
  ['streamsGivenUp', 'streams_given_up', 'Streams to peers reset because every request on them had been given up by its reader (a read closed while a peer was slow or stalled)'],
  ['wantsSent', 'wants_sent', 'want messages sent (each asks for 1 to 32 blocks)'],
  ['invalidRequests', 'invalid_requests', 'Streams closed because a peer\'s request was malformed']
]

/** How long one read of the exchange's stats serves a scrape (ms). */
const SCRAPE_MS = 100

/** Register the exchange's metrics on `registry`. */
export function registerExchangeMetrics (registry: Registry, exchange: Pick<BlockExchange, 'stats'>): void {
  const registers = [registry]
  // one read of the stats per scrape, not one per metric (a scrape collects every metric within a few ms)
  let read: { at: number, stats: BlockExchangeStats } | undefined
  const stats = (): BlockExchangeStats => {
    const now = performance.now()
    if (read === undefined || now - read.at > SCRAPE_MS) read = { at: now, stats: exchange.stats() }
    return read.stats
  }
  for (const [field, name, help] of COUNTERS) scrapedCounter(registers, `shoal_exchange_${name}_total`, help, () => stats()[field])
  /* eslint-disable no-new */
  new Gauge({ name: 'shoal_exchange_fetches_pending', help: 'Blocks being fetched from peers now (0 once every read has ended or been aborted)', registers, collect () { this.set(stats().fetchesPending) } })
  new Gauge({ name: 'shoal_exchange_requests_in_flight', help: 'Requests sent to peers and not yet answered, over every peer', registers, collect () { this.set(stats().requestsInFlight) } })
  /* eslint-enable no-new */
}
