/**
 * The gateway over a real local block store on a real HTTP listener, for
 * answers the path-gateway spec and RFC 9110 fix: dag-pb data that is not
 * UnixFS asked for as content (406, as dag-cbor is, not a 500), a
 * `Range` whose `If-Range` names another representation (the whole file,
 * not a 206 the client would splice onto other bytes), and a UnixFS
 * symlink (its target as the body, not a 400).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagPB from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { importer } from 'ipfs-unixfs-importer'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { assertError, call, startLocalGateway } from './helpers.js'
import type { PackBlockStore } from '../../../node/blocks/index.js'

const TEST = { timeout: 60_000 }

/** Import `files` with raw leaves; the CID of each path. */
async function importOne (store: PackBlockStore, files: Array<{ path: string, content?: Uint8Array }>): Promise<Map<string, CID>> {
  const out = new Map<string, CID>()
  for await (const entry of importer(files, store, { cidVersion: 1, rawLeaves: true })) out.set(entry.path ?? '', entry.cid)
  return out
}

describe('the gateway: content negotiation and ranges, against the specs', { concurrency: true }, () => {
  it('a dag-pb node that is not UnixFS (no Data, or Data that is not a UnixFS message), asked for as content, is a 406 naming ?format=raw, as dag-cbor is: not a 500', TEST, async t => {
    const { gw, store } = await startLocalGateway(t)
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

  it('If-Range: a Range is honoured only when If-Range names the file\'s own Etag; another Etag (the raw block\'s), a weak one or a date gets the whole file with 200', TEST, async t => {
    const { gw, store } = await startLocalGateway(t)
    const m = await importOne(store, [{ path: 'd/five.txt', content: new TextEncoder().encode('hello') }])
    const url = `${gw}/ipfs/${(m.get('d') as CID).toString()}/five.txt`
    const whole = await call(url)
    assert.equal(whole.status, 200)
    const etag = whole.headers.get('etag') ?? ''
    assert.match(etag, /^"[^"]+"$/)
    const matching = await call(url, { headers: { range: 'bytes=1-2', 'if-range': etag } })
    assert.equal(matching.status, 206)
    assert.equal(matching.body.toString(), 'el')
    const raw = await call(url, { headers: { accept: 'application/vnd.ipld.raw' } })
    for (const ifRange of [raw.headers.get('etag') ?? '', `W/${etag}`, 'Wed, 21 Oct 2015 07:28:00 GMT']) {
      for (const method of ['GET', 'HEAD']) {
        const a = await call(url, { method, headers: { range: 'bytes=1-2', 'if-range': ifRange } })
        assert.equal(a.status, 200, `${method} If-Range: ${ifRange}`)
        assert.equal(a.headers.get('content-range'), null, ifRange)
        assert.equal(a.headers.get('content-length'), '5', ifRange)
        if (method === 'GET') assert.equal(a.body.toString(), 'hello', ifRange)
      }
    }
  })

  it('a UnixFS symlink is answered with its target as the body (the path gateway spec), whole, by range and to HEAD: not a 400', TEST, async t => {
    const { gw, store } = await startLocalGateway(t)
    const put = async (bytes: Uint8Array): Promise<CID> => { const cid = CID.createV1(dagPB.code, await sha256.digest(bytes)); await store.put(cid, bytes); return cid }
    const foo = (await importOne(store, [{ path: 'foo', content: new TextEncoder().encode('content\n') }])).get('foo') as CID
    const bar = await put(dagPB.encode(dagPB.prepare({ Data: new UnixFS({ type: 'symlink', data: new TextEncoder().encode('foo') }).marshal() })))
    const dir = await put(dagPB.encode(dagPB.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'bar', Hash: bar, Tsize: 10 }, { Name: 'foo', Hash: foo, Tsize: 8 }] })))
    const url = `${gw}/ipfs/${dir.toString()}/bar`
    const whole = await call(url)
    assert.equal(whole.status, 200, whole.body.toString())
    assert.equal(whole.body.toString(), 'foo')
    assert.equal(whole.headers.get('content-length'), '3')
    const head = await call(url, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('content-length'), '3')
    const part = await call(url, { headers: { range: 'bytes=1-' } })
    assert.equal(part.status, 206)
    assert.equal(part.body.toString(), 'oo')
    assert.equal(part.headers.get('content-range'), 'bytes 1-2/3')
    assert.equal((await call(url, { headers: { range: 'bytes=3-' } })).status, 416)
    const listing = await call(`${gw}/ipfs/${dir.toString()}/`)
    assert.match(listing.body.toString(), />bar</)
  })
})
