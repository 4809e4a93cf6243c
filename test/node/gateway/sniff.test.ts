/**
 * The content type of a file named by its CID alone, sniffed from its first
 * bytes, when a request asks for a range that does not hold them: the
 * start is read once per file, not by every ranged request (a player
 * seeking through a video, a download resumed piece by piece: for a striped
 * or cold file each read of the first leaf is a fetch from a holder, a
 * Reed-Solomon rebuild or a cold-tier GET), and a range is served even when
 * the file's first bytes cannot be read (the gateway-conformance suite:
 * a range MUST succeed when bytes before it are not retrievable). Against a
 * gateway on 127.0.0.1 over a real block store whose reads are counted.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as dagPB from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { sha256 } from 'multiformats/hashes/sha2'
import { randomBytes } from '../../helpers/bytes.js'
import { assertError, call, startLocalGateway } from './helpers.js'
import type { PackBlockStore } from '../../../node/blocks/index.js'

const TEST = { timeout: 60_000 }
const LEAF = 1024

/** A file of four raw leaves of 1 KiB starting with the PNG signature; its root, leaves and bytes. */
async function pngFile (store: PackBlockStore): Promise<{ root: CID, leaves: CID[], bytes: Buffer }> {
  const bytes = Buffer.from(randomBytes(4 * LEAF, 91))
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  const leaves: CID[] = []
  for (let i = 0; i < 4; i++) {
    const leaf = bytes.subarray(i * LEAF, (i + 1) * LEAF)
    const cid = CID.createV1(raw.code, await sha256.digest(leaf))
    await store.put(cid, leaf)
    leaves.push(cid)
  }
  const node = dagPB.encode(dagPB.prepare({ Data: new UnixFS({ type: 'file', blockSizes: leaves.map(() => BigInt(LEAF)) }).marshal(), Links: leaves.map(cid => ({ Hash: cid, Tsize: LEAF })) }))
  const root = CID.createV1(dagPB.code, await sha256.digest(node))
  await store.put(root, node)
  return { root, leaves, bytes }
}

/** Count the store's reads of each block from now on. */
function countReads (store: PackBlockStore): Map<string, number> {
  const reads = new Map<string, number>()
  const getBytes = store.getBytes.bind(store)
  store.getBytes = async (cid, options) => {
    reads.set(cid.toString(), (reads.get(cid.toString()) ?? 0) + 1)
    return await getBytes(cid, options)
  }
  return reads
}

describe('the gateway: a sniffed content type and ranges past the file\'s start', { concurrency: true }, () => {
  it('ranged requests past the sniffed bytes read the file\'s first leaf once, not once each; every answer names the sniffed type', TEST, async t => {
    const { gw, store } = await startLocalGateway(t)
    const { root, leaves, bytes } = await pngFile(store)
    const reads = countReads(store)
    const url = `${gw}/ipfs/${root.toString()}`
    const ranges = ['bytes=2048-2100', 'bytes=3000-', 'bytes=-10', 'bytes=1024-1030,3000-3001', 'bytes=2500-2600']
    for (const range of ranges) {
      for (const method of ['GET', 'HEAD']) {
        const a = await call(url, { method, headers: { range } })
        assert.equal(a.status, 206, `${method} ${range}`)
        assert.match(a.headers.get('content-type') ?? '', range.includes(',') ? /^multipart\/byteranges/ : /^image\/png$/, range)
        if (method === 'GET' && !range.includes(',')) assert.deepEqual(a.body, bytes.subarray(Number(/\d+/.exec(a.headers.get('content-range') ?? '')?.[0]), Number(/-(\d+)\//.exec(a.headers.get('content-range') ?? '')?.[1]) + 1), range)
        if (method === 'GET' && range.includes(',')) assert.match(a.body.toString('latin1'), /Content-Type: image\/png\r\n/)
      }
    }
    assert.equal(reads.get(leaves[0].toString()) ?? 0, 1, `the first leaf is read for the first ranged request only, not for each of ${ranges.length * 2}`)
    // a whole read names the same type and reads the first leaf for its body, as it must
    const whole = await call(url)
    assert.equal(whole.headers.get('content-type'), 'image/png')
    assert.deepEqual(whole.body, bytes)
    assert.equal(reads.get(leaves[0].toString()), 2)
  })

  it('a whole read teaches the type: ranged requests after it do not read the start', TEST, async t => {
    const { gw, store } = await startLocalGateway(t)
    const { root, leaves } = await pngFile(store)
    const reads = countReads(store)
    const url = `${gw}/ipfs/${root.toString()}`
    assert.equal((await call(url)).headers.get('content-type'), 'image/png')
    for (const range of ['bytes=2048-2100', 'bytes=-10']) assert.equal((await call(url, { headers: { range } })).headers.get('content-type'), 'image/png', range)
    assert.equal(reads.get(leaves[0].toString()), 1, 'the whole read\'s own')
  })

  it('a range is served when the file\'s first leaf cannot be read: 206 with its bytes, typed application/octet-stream; a range holding the missing leaf fails', TEST, async t => {
    const { gw, store } = await startLocalGateway(t)
    const { root, leaves, bytes } = await pngFile(store)
    await store.delete(leaves[0])
    const url = `${gw}/ipfs/${root.toString()}`
    for (const method of ['GET', 'HEAD']) {
      const a = await call(url, { method, headers: { range: 'bytes=2200-2201' } })
      assert.equal(a.status, 206, `${method}: ${a.body.toString()}`)
      assert.equal(a.headers.get('content-range'), `bytes 2200-2201/${4 * LEAF}`)
      assert.equal(a.headers.get('content-length'), '2')
      assert.equal(a.headers.get('content-type'), 'application/octet-stream')
      if (method === 'GET') assert.deepEqual(a.body, bytes.subarray(2200, 2202))
    }
    assertError(await call(url, { headers: { range: 'bytes=10-20' } }), 404, 'NotFoundError')
  })
})
