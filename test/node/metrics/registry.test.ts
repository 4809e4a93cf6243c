/**
 * How libp2p's metrics land on a node's registry (node/metrics/libp2p.ts) and
 * what a failing scrape-time calculation does (collect-errors.ts): a name
 * registered twice with a calculation keeps both, a calculated counter is
 * its running total however often it is scraped, a calculation that throws
 * leaves its family out and the rest of the scrape is served, a name is one
 * kind for good, and bytes a stream hands back unread are counted once. Then
 * a real node listening on two loopback addresses: both TCP listeners'
 * series are scraped.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { byteStream, streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { Registry } from 'prom-client'
import { COLLECT_ERRORS_METRIC, TRANSFER_METRIC, createMetrics, libp2pMetrics, transferLabel } from '../../../node/metrics/index.js'
import { loadConfig, saveConfig } from '../../../node/repo/config.js'
import { defer, tempDir } from '../../helpers/temp.js'
import { makeRepo, startNode, until } from '../../helpers/swarm.js'
import { parseMetrics, serveMetrics } from './scrape.js'
import type { Metrics } from '@libp2p/interface'

const TEST = { timeout: 60_000 }

/** A libp2p `Metrics` on a fresh registry. */
function fresh (): { registry: Registry, metrics: Metrics } {
  const registry = new Registry()
  return { registry, metrics: libp2pMetrics({ registry })({}) }
}

describe('libp2p metrics on a node registry', () => {
  it('a calculated metric registered twice runs both calculations, groups merged by key', async () => {
    const { registry, metrics } = fresh()
    metrics.registerMetricGroup('libp2p_test_listeners', { label: 'address', calculate: () => ({ '127.0.0.1:1': 2, shared: 1 }) })
    metrics.registerMetricGroup('libp2p_test_listeners', { label: 'address', calculate: () => ({ '127.0.0.2:1': 3, shared: 4 }) })
    metrics.registerMetric('libp2p_test_sockets', { calculate: () => 5 })
    metrics.registerMetric('libp2p_test_sockets', { calculate: async () => 7 })
    const s = parseMetrics(await registry.metrics())
    assert.equal(s.must('libp2p_test_listeners', { address: '127.0.0.1:1' }), 2)
    assert.equal(s.must('libp2p_test_listeners', { address: '127.0.0.2:1' }), 3, 'the second registration is read too')
    assert.equal(s.must('libp2p_test_listeners', { address: 'shared' }), 5, 'a key both return adds up')
    assert.equal(s.must('libp2p_test_sockets'), 12)
  })

  it('a calculated counter is the running total the calculation gives, however often it is scraped', async () => {
    const { registry, metrics } = fresh()
    let total = 40
    metrics.registerCounter('libp2p_test_dials_total', { calculate: () => total })
    metrics.registerCounterGroup('libp2p_test_errors_total', { label: 'kind', calculate: () => ({ timeout: 3 }) })
    for (let i = 0; i < 3; i++) {
      const s = parseMetrics(await registry.metrics())
      assert.equal(s.must('libp2p_test_dials_total'), 40, `scrape ${i + 1}`)
      assert.equal(s.must('libp2p_test_errors_total', { kind: 'timeout' }), 3, `scrape ${i + 1}`)
    }
    total = 41
    assert.equal(parseMetrics(await registry.metrics()).must('libp2p_test_dials_total'), 41)
  })

  it('a calculation that throws leaves its family out, is counted, and the rest of the scrape is served', async () => {
    const node = createMetrics({ sizeOf: async () => { throw new Error('store closed') }, processMetrics: false })
    // the node's own registry: its libp2p factory, and the block store's size gauge
    const metrics = (node.libp2p as (c: unknown) => Metrics)({})
    let fail = true
    metrics.registerMetricGroup('libp2p_test_flaky', { label: 'address', calculate: () => { if (fail) throw new Error('listener gone'); return { a: 1 } } })
    metrics.registerMetric('libp2p_test_fine', { calculate: () => 9 })
    node.blocksWritten.inc(2)
    for (let i = 1; i <= 2; i++) {
      const s = parseMetrics(await node.registry.metrics())
      assert.equal(s.must('libp2p_test_fine'), 9, 'a sound calculation is served')
      assert.equal(s.must('shoal_blocks_written_total'), 2, 'the node\'s counters are served')
      assert.equal(s.value('shoal_blockstore_bytes'), undefined, 'no made-up size when the store cannot say')
      assert.equal(s.value('libp2p_test_flaky', { address: 'a' }), undefined)
      assert.equal(s.must(COLLECT_ERRORS_METRIC, { metric: 'shoal_blockstore_bytes' }), i)
      assert.equal(s.must(COLLECT_ERRORS_METRIC, { metric: 'libp2p_test_flaky' }), i)
    }
    fail = false
    const s = parseMetrics(await node.registry.metrics())
    assert.equal(s.must('libp2p_test_flaky', { address: 'a' }), 1, 'the family comes back once its calculation does')
    assert.equal(s.must(COLLECT_ERRORS_METRIC, { metric: 'libp2p_test_flaky' }), 2)
  })

  it('a name registered again as another kind throws a typed error', () => {
    const { metrics } = fresh()
    const counter = metrics.registerCounter('libp2p_test_kind_total')
    assert.equal(metrics.registerCounter('libp2p_test_kind_total'), counter, 'the same kind hands back the same metric')
    assert.throws(() => metrics.registerMetric('libp2p_test_kind_total'), (err: any) => err.name === 'MetricKindError')
    assert.throws(() => metrics.registerCounterGroup('libp2p_test_kind_total'), (err: any) => err.name === 'MetricKindError', 'a group is not a metric')
    assert.throws(() => metrics.registerHistogram('libp2p_test_kind_total'), (err: any) => err.name === 'MetricKindError')
  })

  it('bytes a stream hands back unread (unshift) are counted once', async () => {
    const { registry, metrics } = fresh()
    const [outbound, inbound] = await streamPair({ protocol: '/test/1.0.0' })
    // libp2p names the inbound side's protocol once negotiated, then tracks it
    inbound.protocol = '/test/1.0.0'
    metrics.trackProtocolStream(inbound)
    const sent = new Uint8Array(10).fill(7)
    outbound.send(sent)
    // a reader takes 4 bytes through a byte stream, then unwraps it: the 6 it buffered go back to the stream
    const bytes = byteStream(inbound)
    assert.equal((await bytes.read({ bytes: 4, signal: AbortSignal.timeout(10_000) })).byteLength, 4)
    const raw = bytes.unwrap()
    const rest = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('the unread bytes never came out again')) }, 10_000)
      raw.addEventListener('message', evt => { clearTimeout(timer); resolve(evt.data.byteLength) }, { once: true })
    })
    assert.equal(rest, 6)
    const s = parseMetrics(await registry.metrics())
    assert.equal(s.must(TRANSFER_METRIC, { protocol: transferLabel('/test/1.0.0', 'received') }), sent.byteLength)
    await outbound.close().catch(() => {})
    await inbound.close().catch(() => {})
  })

  it('a real node listening on two loopback addresses shows both TCP listeners', TEST, async t => {
    const dir = await tempDir(t, 'shoal-metrics-listen-')
    const repo = await makeRepo(dir, 'two')
    const file = join(repo, 'config.json')
    const config = await loadConfig(file)
    await saveConfig(file, { ...config, listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.2/tcp/0'] })
    const node = await startNode(repo)
    defer(t, async () => { await node.stop() })
    const other = await startNode(await makeRepo(dir, 'dialler'))
    defer(t, async () => { await other.stop() })
    const addrs = node.components.libp2p.getMultiaddrs().map(a => a.toString())
    const second = addrs.find(a => a.startsWith('/ip4/127.0.0.2/'))
    assert.ok(second !== undefined && addrs.some(a => a.startsWith('/ip4/127.0.0.1/')), `listening on both: ${addrs.join(' ')}`)
    const port = (a: string): string => a.split('/')[4]
    const first = addrs.find(a => a.startsWith('/ip4/127.0.0.1/')) as string
    const scrape = await serveMetrics(t, node)
    const s = await scrape()
    assert.equal(s.must('libp2p_tcp_inbound_connections_total', { address: `127.0.0.1:${port(first)}` }), 0)
    assert.equal(s.must('libp2p_tcp_inbound_connections_total', { address: `127.0.0.2:${port(second)}` }), 0, 'the second listener\'s series is there')
    // a connection to the second address moves the second series only
    await other.components.libp2p.dial(multiaddr(second), { signal: AbortSignal.timeout(15_000) })
    await until('the second listener counts the connection', async () => (await scrape()).value('libp2p_tcp_inbound_connections_total', { address: `127.0.0.2:${port(second)}` }) === 1)
    assert.equal((await scrape()).must('libp2p_tcp_inbound_connections_total', { address: `127.0.0.1:${port(first)}` }), 0)
  })
})
