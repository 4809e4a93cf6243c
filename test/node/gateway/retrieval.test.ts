/**
 * A gateway whose block source stalls (a holder that never answers) on a
 * real HTTP listener: the request ends with 504 after the retrieval timeout
 * instead of hanging, a client that goes away aborts the read it left, and
 * requests past the cap of those answered at once get 503.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { createGatewayServer, gatewayUrl, type GatewayServerInit } from '../../../node/gateway/index.js'
import { createLogger } from '../../../node/logger.js'
import { defer } from '../../helpers/temp.js'
import { eventually } from '../../helpers/cli.js'
import { assertError, call } from './helpers.js'
import type { BlockGetter, BlockReader } from '../../../node/reads/api.js'
import type { CleanupContext } from '../../helpers/temp.js'

const TEST = { timeout: 60_000 }
const CID_TEXT = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

/** A block service whose every read waits until its signal aborts, telling `onRead` of each read. */
function stalledBlocks (onRead: (signal: AbortSignal) => void): BlockReader {
  const stalled: BlockGetter = {
    getBytes: async (_cid, options) => await new Promise<Uint8Array>((_resolve, reject) => {
      const signal = options?.signal
      assert.ok(signal !== undefined, 'every read carries the request\'s signal')
      onRead(signal)
      signal.addEventListener('abort', () => { reject(Object.assign(new Error('read aborted'), { name: 'AbortedError' })) }, { once: true })
    })
  }
  return { get: async (cid, o) => await stalled.getBytes(cid, o), getter: () => stalled, session: () => ({ ...stalled, close: () => {} }) }
}

async function startGateway (t: CleanupContext, blocks: BlockReader, retrievalTimeoutMs: number, init: Partial<GatewayServerInit> = {}): Promise<string> {
  const server = createGatewayServer({ blocks, namespace: { async * files () {} }, logger: createLogger('silent'), blockstore: { has: () => false } }, { host: '127.0.0.1', port: 0, retrievalTimeoutMs, ...init })
  const address = await server.start()
  defer(t, async () => { await server.stop() })
  return gatewayUrl(address.address, address.port)
}

describe('retrieval that stalls', () => {
  it('a block that never arrives ends the request with 504 GatewayTimeoutError after the retrieval timeout', TEST, async t => {
    const reads: AbortSignal[] = []
    const gw = await startGateway(t, stalledBlocks(signal => reads.push(signal)), 200)
    for (const query of ['format=raw', 'format=car', '']) {
      assertError(await call(`${gw}/ipfs/${CID_TEXT}?${query}`), 504, 'GatewayTimeoutError')
    }
    assert.equal(reads.length, 3)
    assert.ok(reads.every(s => s.aborted), 'every stalled read was aborted')
  })

  it('a client that goes away aborts the read it was waiting for', TEST, async t => {
    let entered: (signal: AbortSignal) => void = () => {}
    const reading = new Promise<AbortSignal>(resolve => { entered = resolve })
    // a timeout far beyond the test's: only the client's going away can end this read
    const gw = await startGateway(t, stalledBlocks(signal => { entered(signal) }), 10 * 60_000)
    const client = new AbortController()
    const request = fetch(`${gw}/ipfs/${CID.parse(CID_TEXT).toString()}?format=raw`, { signal: client.signal }).catch((err: any) => err)
    const signal = await reading
    assert.equal(signal.aborted, false)
    client.abort()
    await request
    await new Promise<void>(resolve => { if (signal.aborted) resolve(); else signal.addEventListener('abort', () => { resolve() }, { once: true }) })
    assert.equal(signal.aborted, true)
  })

  it('past the cap of requests answered at once: 503 GatewayBusyError with Retry-After; a slot freed by a client that left takes the next request', TEST, async t => {
    const reads: AbortSignal[] = []
    let onRead: () => void = () => {}
    const gw = await startGateway(t, stalledBlocks(signal => { reads.push(signal); onRead() }), 10 * 60_000, { maxConcurrentRequests: 2 })
    const readsReach = async (n: number): Promise<void> => await new Promise<void>(resolve => {
      onRead = () => { if (reads.length >= n) resolve() }
      onRead()
    })
    const clients = [new AbortController(), new AbortController()]
    const pending = clients.map(async c => await fetch(`${gw}/ipfs/${CID_TEXT}?format=raw`, { signal: c.signal }).catch((err: any) => err))
    await readsReach(2)
    const busy = await call(`${gw}/ipfs/${CID_TEXT}?format=raw`)
    assertError(busy, 503, 'GatewayBusyError')
    assert.match(busy.headers.get('retry-after') ?? '', /^\d+$/)
    assert.equal(reads.length, 2, 'the refused request read nothing')
    clients[0].abort()
    await pending[0]
    // the slot is freed once the first request has wound down: a new one is admitted and reads
    const third = new AbortController()
    defer(t, async () => { third.abort(); clients[1].abort(); await Promise.all(pending) })
    await eventually('a new request is admitted', async () => {
      const answered = fetch(`${gw}/ipfs/${CID_TEXT}?format=raw`, { signal: third.signal }).then(r => r.status, () => 0)
      const outcome = await Promise.race([answered, readsReach(3).then(() => 'admitted' as const)])
      if (outcome === 'admitted') return true
      assert.equal(outcome, 503, 'refused only for want of a slot')
      return false
    })
    assert.equal(reads.length, 3, 'the admitted request reached the block service')
  })
})
