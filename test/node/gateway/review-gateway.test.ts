/**
 * The gateway over a real local block store on a real HTTP listener, for
 * answers the path-gateway spec and RFC 9110 fix: dag-pb data that is not
 * UnixFS asked for as content (406, as dag-cbor is, not a 500).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagPB from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Blocks } from '../../../node/reads/blocks.js'
import { createGatewayServer, gatewayUrl, type GatewayServerInit } from '../../../node/gateway/index.js'
import { createNamespace, signerFromKey } from '../../../node/namespace/index.js'
import { createLogger } from '../../../node/logger.js'
import { defer, openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { assertError, call } from './helpers.js'
import type { PackBlockStore } from '../../../node/blocks/index.js'

const TEST = { timeout: 60_000 }

/** A gateway on 127.0.0.1 over a fresh block store and namespace, stopped when the test ends. */
async function startLocal (t: CleanupContext, init: Partial<GatewayServerInit> = {}): Promise<{ gw: string, store: PackBlockStore }> {
  const store = await openBlockStore(t)
  const namespace = createNamespace({ path: await tempDir(t, 'shoal-gw-ns-'), signer: signerFromKey(await generateKeyPair('Ed25519')), logger: createLogger('silent') })
  await namespace.open()
  defer(t, async () => { await namespace.close() })
  const blocks = new Blocks({ blockstore: store, logger: createLogger('silent') })
  const server = createGatewayServer({ blocks, namespace, logger: createLogger('silent') }, { host: '127.0.0.1', port: 0, ...init })
  const address = await server.start()
  defer(t, async () => { await server.stop() })
  return { gw: gatewayUrl(address.address, address.port), store }
}

describe('the gateway: content negotiation and ranges, against the specs', { concurrency: true }, () => {
  it('a dag-pb node that is not UnixFS (no Data, or Data that is not a UnixFS message), asked for as content, is a 406 naming ?format=raw, as dag-cbor is: not a 500', TEST, async t => {
    const { gw, store } = await startLocal(t)
    const put = async (bytes: Uint8Array): Promise<CID> => { const cid = CID.createV1(dagPB.code, await sha256.digest(bytes)); await store.put(cid, bytes); return cid }
    const plain = await put(dagPB.encode(dagPB.prepare({ Links: [] })))
    const notUnixfs = await put(dagPB.encode(dagPB.prepare({ Data: Uint8Array.from([0xff, 0xff, 0xff]), Links: [] })))
    const dir = await put(dagPB.encode(dagPB.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'plain', Hash: plain, Tsize: 2 }] })))
    for (const path of [plain.toString(), notUnixfs.toString(), `${dir.toString()}/plain`]) {
      for (const method of ['GET', 'HEAD']) {
        const a = await call(`${gw}/ipfs/${path}`, { method })
        assert.equal(a.status, 406, `${method} ${path}`)
        if (method === 'GET') {
          assertError(a, 406, 'NotAcceptableError')
          assert.match(a.json().error.message, /format=raw/)
        }
      }
      // the block itself is served, as any block is
      assert.equal((await call(`${gw}/ipfs/${path}?format=raw`)).status, 200, path)
    }
  })
})
