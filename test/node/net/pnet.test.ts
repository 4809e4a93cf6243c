import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { xsalsa20Fixed } from '../../../node/net/xsalsa20-fix.js'
import { xsalsa20Native } from '../../../node/net/xsalsa20-native.js'
import { xsalsa20 as nobleXSalsa20 } from '@noble/ciphers/salsa.js'
import { createHost } from '../../../node/net/host.js'
import { createBlockExchange } from '../../../node/exchange/index.js'
import { importContent, parseChunker, readContent } from '../../../node/content/index.js'
import { openBlockStore, defer, type CleanupContext } from '../../helpers/temp.js'
import { pino } from 'pino'

const require = createRequire(import.meta.url)
const XSalsa20 = require('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => { update: (input: Uint8Array) => Uint8Array }

describe('xsalsa20 (pnet cipher) on libsodium', () => {
  it('is applied', () => {
    assert.equal(xsalsa20Native, true)
  })

  it('gives the keystream of an independent XSalsa20 (@noble/ciphers) for pieces of any size: the wire format is unchanged', () => {
    for (let round = 0; round < 5; round++) {
      const key = randomBytes(32)
      const nonce = randomBytes(24)
      const plain = randomBytes(1024 * 1024 + round * 1000)
      const enc = XSalsa20(nonce, key)
      const parts: Uint8Array[] = []
      for (let off = 0, i = round; off < plain.length; i++) {
        const n = [1, 63, 64, 65, 4096, 100_000, 333][i % 7]
        parts.push(enc.update(plain.subarray(off, off + n)))
        off += n
      }
      const expected = nobleXSalsa20(key, nonce, plain)
      assert.equal(Buffer.compare(Buffer.concat(parts), Buffer.from(expected)), 0, `round ${round}`)
    }
  })

  it('keeps many ciphers apart, and a finalized one wipes its state', () => {
    const key = randomBytes(32)
    const nonces = Array.from({ length: 50 }, () => randomBytes(24))
    const ciphers = nonces.map(n => XSalsa20(n, key))
    const plain = randomBytes(10_000)
    for (const [i, c] of ciphers.entries()) assert.equal(Buffer.compare(Buffer.from(c.update(plain)), Buffer.from(nobleXSalsa20(key, nonces[i], plain))), 0)
    const one = XSalsa20(nonces[0], key) as unknown as { finalize: () => void, __sodium?: Buffer }
    const state = one.__sodium
    assert.ok(state !== undefined)
    one.finalize()
    assert.ok(state.every(b => b === 0), 'the libsodium state is zeroed')
  })
})

describe('xsalsa20 (pnet cipher) fix', () => {
  it('is applied', () => {
    assert.equal(xsalsa20Fixed, true)
  })

  it('two ciphers sharing the wasm memory survive a large update followed by many small ones', () => {
    const key = randomBytes(32)
    const a = XSalsa20(randomBytes(24), key)
    const b = XSalsa20(randomBytes(24), key)
    a.update(new Uint8Array(1 << 20))
    // unfixed, this throws "Maximum memory size exceeded" after a few hundred rounds
    for (let i = 0; i < 2000; i++) {
      a.update(new Uint8Array(100))
      b.update(new Uint8Array(100))
    }
  })

  it('still encrypts correctly: pieces of any size, interleaved with another cipher, decrypt to the input', () => {
    const key = randomBytes(32)
    const nonce = randomBytes(24)
    const plain = randomBytes(3 * 1024 * 1024)
    const enc = XSalsa20(nonce, key)
    const other = XSalsa20(randomBytes(24), key)
    const parts: Uint8Array[] = []
    for (let off = 0, i = 0; off < plain.length; i++) {
      const n = [1, 63, 64, 65, 4096, 700_000, 1 << 20][i % 7]
      parts.push(enc.update(plain.subarray(off, off + n)))
      other.update(randomBytes(1 + (i * 37) % 2000)) // moves the shared memory around
      off += n
    }
    const cipher = Buffer.concat(parts)
    assert.notDeepEqual(cipher.subarray(0, 64), plain.subarray(0, 64))
    const dec = XSalsa20(nonce, key).update(cipher)
    assert.equal(Buffer.compare(Buffer.from(dec), plain), 0)
  })
})

async function swarmNode (t: CleanupContext, swarmKey: Uint8Array): Promise<{ libp2p: Awaited<ReturnType<typeof createHost>>, exchange: ReturnType<typeof createBlockExchange>, blockstore: Awaited<ReturnType<typeof openBlockStore>> }> {
  const blockstore = await openBlockStore(t)
  const libp2p = await createHost({ privateKey: await generateKeyPair('Ed25519'), swarmKey })
  defer(t, async () => { await libp2p.stop() })
  const exchange = createBlockExchange({ libp2p, blockstore, logger: pino({ level: 'silent' }) })
  await exchange.start()
  defer(t, async () => { await exchange.stop() })
  return { libp2p, exchange, blockstore }
}

describe('a private swarm moves large blocks', () => {
  it('a 24 MiB file with 1–2 MiB blocks crosses a pnet connection byte-identical', { timeout: 60_000 }, async (t) => {
    const key = randomBytes(32)
    const holder = await swarmNode(t, key)
    const reader = await swarmNode(t, key)
    const bytes = randomBytes(24 * 1024 * 1024)
    const { cid } = await importContent(holder.blockstore, (async function * () { yield bytes })(), { chunker: parseChunker('fastcdc') })
    await reader.libp2p.dial(holder.libp2p.getMultiaddrs()[0])
    const parts: Uint8Array[] = []
    for await (const piece of readContent(reader.exchange.session(cid), cid)) parts.push(piece)
    assert.equal(Buffer.compare(Buffer.concat(parts), bytes), 0)
  })
})
