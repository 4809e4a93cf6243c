/**
 * A gateway whose block source stalls (a holder that never answers) on a
 * real HTTP listener: the request ends with 504 after the retrieval timeout
 * instead of hanging, and a client that goes away aborts the read it left.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { createGatewayServer, gatewayUrl } from '../../../node/gateway/index.js'
import { createLogger } from '../../../node/logger.js'
import { defer } from '../../helpers/temp.js'
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
  return { get: async (cid, o) => await stalled.getBytes(cid, o), getter: () => stalled, session: () => stalled }
}

async function startGateway (t: CleanupContext, blocks: BlockReader, retrievalTimeoutMs: number): Promise<string> {
  const server = createGatewayServer({ blocks, namespace: { async * files () {} }, logger: createLogger('silent') }, { host: '127.0.0.1', port: 0, retrievalTimeoutMs })
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
})
