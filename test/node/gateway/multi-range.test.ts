/**
 * A `Range` of several ranges on a deserialized file (RFC 9110 §14.6, the
 * gateway-conformance suite's multi-range test), against a gateway on
 * 127.0.0.1 over a real block store: a 206 `multipart/byteranges` whose body
 * is checked byte for byte (parts in the order asked, overlapping and
 * adjacent ranges coalesced, unsatisfiable ones left out), its
 * `Content-Length` exact, HEAD answering the same headers, `If-Range`
 * honoured, and a `Range` past the cap of parts answered whole.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { assertError, call, startLocalGateway, type Answer } from './helpers.js'
import type { CID } from 'multiformats/cid'

const TEST = { timeout: 60_000 }
const SIZE = 4000
/** Text of 4000 bytes, in leaves of 1024 bytes: ranges cross leaves. */
const TEXT = Buffer.from(Array.from({ length: SIZE }, (_, i) => String.fromCharCode(97 + (i * 7) % 26)).join(''))
const TEXT_TYPE = 'text/plain; charset=utf-8'

/** The boundary a multipart answer names. */
function boundaryOf (a: Answer): string {
  const m = /^multipart\/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]{1,70})$/.exec(a.headers.get('content-type') ?? '')
  assert.ok(m !== null, `a multipart/byteranges answer: ${a.headers.get('content-type') ?? ''}`)
  return m[1]
}

/** The body RFC 9110 §14.6 gives for `parts` of `file` of type `type`, separated by `boundary`. */
function expectedBody (boundary: string, type: string, file: Buffer, parts: Array<[number, number]>): Buffer {
  const out: Buffer[] = []
  parts.forEach(([first, last], i) => {
    out.push(Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${type}\r\nContent-Range: bytes ${first}-${last}/${file.byteLength}\r\n\r\n`))
    out.push(file.subarray(first, last + 1))
  })
  out.push(Buffer.from(`\r\n--${boundary}--\r\n`))
  return Buffer.concat(out)
}

/** Assert a multipart answer holding exactly `parts`, in that order. */
function assertParts (a: Answer, type: string, file: Buffer, parts: Array<[number, number]>, what: string): void {
  assert.equal(a.status, 206, `${what}: ${a.body.subarray(0, 200).toString()}`)
  const body = expectedBody(boundaryOf(a), type, file, parts)
  assert.equal(a.body.toString('latin1'), body.toString('latin1'), what)
  assert.equal(a.headers.get('content-length'), String(body.byteLength), what)
  assert.equal(a.headers.get('content-range'), null, `${what}: Content-Range is in each part, not the answer`)
  assert.equal(a.headers.get('accept-ranges'), 'bytes', what)
}

/** A gateway holding `TEXT` as `d/f.txt`; the file's URL. */
async function textGateway (t: Parameters<typeof startLocalGateway>[0]): Promise<{ gw: string, url: string, file: CID }> {
  const { gw, store } = await startLocalGateway(t)
  const cids = new Map<string, CID>()
  for await (const entry of importer([{ path: 'd/f.txt', content: TEXT }], store, { cidVersion: 1, rawLeaves: true, chunker: fixedSize({ chunkSize: 1024 }) })) cids.set(entry.path ?? '', entry.cid)
  return { gw, url: `${gw}/ipfs/${(cids.get('d') as CID).toString()}/f.txt`, file: cids.get('d/f.txt') as CID }
}

describe('the gateway: multi-range requests (multipart/byteranges)', { concurrency: true }, () => {
  it('several ranges give a 206 multipart/byteranges: parts in the order asked, across leaves, suffix ranges, exact body and Content-Length, the Etag and cache headers of the file', TEST, async t => {
    const { url, file } = await textGateway(t)
    // the conformance suite's request: its ranges out of order
    const a = await call(url, { headers: { range: 'bytes=6-16,0-4' } })
    assertParts(a, TEXT_TYPE, TEXT, [[6, 16], [0, 4]], 'bytes=6-16,0-4')
    assert.equal(a.headers.get('etag'), `"${file.toString()}"`)
    assert.equal(a.headers.get('cache-control'), 'public, max-age=29030400, immutable')
    assert.equal(a.headers.get('x-ipfs-path'), new URL(url).pathname)
    // across leaf boundaries, an open range, a suffix range, optional whitespace and an empty list element
    const b = await call(url, { headers: { range: 'bytes=1000-1100, 3000-3001 ,, 2047-2048,-3' } })
    assertParts(b, TEXT_TYPE, TEXT, [[1000, 1100], [3000, 3001], [2047, 2048], [3997, 3999]], 'across leaves')
    const c = await call(url, { headers: { range: 'bytes=3990-,0-0' } })
    assertParts(c, TEXT_TYPE, TEXT, [[3990, 3999], [0, 0]], 'an open range')
  })

  it('overlapping and adjacent ranges are coalesced, each where its first range was asked; ranges that coalesce into one give a single-part 206; unsatisfiable ranges are left out, none satisfiable is a 416; an invalid range ignores the header', TEST, async t => {
    const { url } = await textGateway(t)
    assertParts(await call(url, { headers: { range: 'bytes=0-9,5-19,20-29,100-109' } }), TEXT_TYPE, TEXT, [[0, 29], [100, 109]], 'overlapping and adjacent')
    assertParts(await call(url, { headers: { range: 'bytes=100-109,10-19,0-9,50-50,200-' } }), TEXT_TYPE, TEXT, [[100, 109], [0, 19], [50, 50], [200, 3999]], 'coalesced where 10-19 was asked')
    assertParts(await call(url, { headers: { range: 'bytes=0-0,0-0,0-0,3000-3000' } }), TEXT_TYPE, TEXT, [[0, 0], [3000, 3000]], 'the same range thrice')
    for (const [range, first, last] of [['bytes=0-9,10-19', 0, 19], ['bytes=5-9,0-99,50-60', 0, 99], ['bytes=5000-6000,0-4', 0, 4], ['bytes=-5,3990-', 3990, 3999]] as const) {
      const one = await call(url, { headers: { range } })
      assert.equal(one.status, 206, range)
      assert.equal(one.headers.get('content-type'), TEXT_TYPE, range)
      assert.equal(one.headers.get('content-range'), `bytes ${first}-${last}/${SIZE}`, range)
      assert.deepEqual(one.body, TEXT.subarray(first, last + 1), range)
    }
    const none = await call(url, { headers: { range: 'bytes=4000-4100,5000-' } })
    assertError(none, 416, 'RangeNotSatisfiableError')
    assert.equal(none.headers.get('content-range'), `bytes */${SIZE}`)
    for (const range of ['bytes=0-4,9-3', 'bytes=0-4,x', 'bytes=0-4,-', 'bytes=,']) {
      const whole = await call(url, { headers: { range } })
      assert.equal(whole.status, 200, range)
      assert.deepEqual(whole.body, TEXT, range)
    }
  })

  it('HEAD answers the headers GET answers; If-Range naming the file gives the parts, another Etag the whole file; past 16 parts (after coalescing) the whole file is sent', TEST, async t => {
    const { url, file } = await textGateway(t)
    const range = 'bytes=10-19,30-39,3000-3099'
    const get = await call(url, { headers: { range } })
    const head = await call(url, { method: 'HEAD', headers: { range } })
    assert.equal(head.status, 206)
    assert.equal(head.body.byteLength, 0)
    assert.match(head.headers.get('content-type') ?? '', /^multipart\/byteranges; boundary=/)
    for (const name of ['content-length', 'etag', 'accept-ranges', 'cache-control', 'x-ipfs-path', 'x-ipfs-roots']) assert.equal(head.headers.get(name), get.headers.get(name), name)

    assertParts(await call(url, { headers: { range, 'if-range': `"${file.toString()}"` } }), TEXT_TYPE, TEXT, [[10, 19], [30, 39], [3000, 3099]], 'If-Range of the file')
    const other = await call(url, { headers: { range, 'if-range': `"${file.toString()}.raw"` } })
    assert.equal(other.status, 200)
    assert.deepEqual(other.body, TEXT)

    const disjoint = (n: number): string => `bytes=${Array.from({ length: n }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',')}`
    assertParts(await call(url, { headers: { range: disjoint(16) } }), TEXT_TYPE, TEXT, Array.from({ length: 16 }, (_, i) => [i * 10, i * 10 + 1]), '16 parts')
    for (const method of ['GET', 'HEAD']) {
      const whole = await call(url, { method, headers: { range: disjoint(17) } })
      assert.equal(whole.status, 200, `${method}: 17 parts`)
      assert.equal(whole.headers.get('content-length'), String(SIZE))
      assert.equal(whole.headers.get('content-type'), TEXT_TYPE)
      if (method === 'GET') assert.deepEqual(whole.body, TEXT)
    }
    // 17 ranges that coalesce into 16 parts are served
    assert.equal((await call(url, { headers: { range: `${disjoint(16)},0-5` } })).status, 206)
  })

  it('a file named by its CID alone: each part names the type sniffed from the file\'s first bytes', TEST, async t => {
    const { gw, store } = await startLocalGateway(t)
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(3000, 7)])
    let root: CID | undefined
    for await (const entry of importer([{ content: png }], store, { cidVersion: 1, rawLeaves: true, chunker: fixedSize({ chunkSize: 1024 }) })) root = entry.cid
    const a = await call(`${gw}/ipfs/${(root as CID).toString()}`, { headers: { range: 'bytes=2000-2009,1024-1030' } })
    assertParts(a, 'image/png', png, [[2000, 2009], [1024, 1030]], 'sniffed type')
  })
})
