/**
 * The exchange's metrics read its stats once per scrape, not once per
 * metric (fourteen reads, each walking every peer channel), and still
 * report what the stats say.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { registerExchangeMetrics } from '../../../node/metrics/exchange.js'
import type { BlockExchangeStats } from '../../../node/exchange/index.js'

describe('exchange metrics', () => {
  it('read the exchange\'s stats once per scrape', async () => {
    let reads = 0
    let fetched = 7
    const exchange = {
      stats: (): BlockExchangeStats => {
        reads++
        return new Proxy({ blocksFetched: fetched } as unknown as BlockExchangeStats, { get: (target, key) => (target as any)[key] ?? 0 })
      }
    }
    const registry = new Registry()
    registerExchangeMetrics(registry, exchange)
    const first = await registry.metrics()
    assert.equal(reads, 1)
    assert.match(first, /^shoal_exchange_blocks_fetched_total 7$/m)
    await new Promise(resolve => setTimeout(resolve, 150))
    fetched = 9
    assert.match(await registry.metrics(), /^shoal_exchange_blocks_fetched_total 9$/m, 'a later scrape reads them again')
    assert.equal(reads, 2)
  })
})
