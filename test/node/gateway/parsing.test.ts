/**
 * The gateway's parsers on their own: the `gateway` setting, content
 * negotiation (`format`, `Accept` with q-values, CAR variants), `Range`
 * and `entity-bytes` resolved against a file's size, and request URLs.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseGatewaySetting } from '../../../node/gateway/address.js'
import { negotiate } from '../../../node/gateway/negotiate.js'
import { parseRangeHeader, resolveEntityBytes } from '../../../node/gateway/range.js'
import { parseGatewayRequest } from '../../../node/gateway/request.js'
import { parseEntityBytes } from '../../../node/gateway/negotiate.js'

const CID_TEXT = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const named = (name: string) => (err: any) => err?.name === name

describe('gateway parsers', () => {
  it('the gateway setting: IP:PORT, [IPv6]:PORT, localhost, off; anything else refused with InvalidArgumentError', () => {
    assert.deepEqual(parseGatewaySetting('127.0.0.1:5748'), { enabled: true, host: '127.0.0.1', port: 5748 })
    assert.deepEqual(parseGatewaySetting('[::1]:0'), { enabled: true, host: '::1', port: 0 })
    assert.deepEqual(parseGatewaySetting('off'), { enabled: false })
    for (const bad of ['', 'on', '127.0.0.1', ':80', 'example.com:80', '127.0.0.1:65536', '::1:80', '[127.0.0.1]:80', '127.0.0.1:80/x']) {
      assert.throws(() => parseGatewaySetting(bad), named('InvalidArgumentError'), bad)
    }
  })

  it('negotiation: format wins over Accept; the best q that is produced wins; unknown formats 400, unproduced types 406', () => {
    const q = (text: string): URLSearchParams => new URLSearchParams(text)
    assert.deepEqual(negotiate(q('format=raw'), 'application/vnd.ipld.car'), { kind: 'raw' })
    assert.deepEqual(negotiate(q(''), undefined), { kind: 'deserialized' })
    assert.deepEqual(negotiate(q(''), 'text/html,application/xhtml+xml,*/*;q=0.8'), { kind: 'deserialized' })
    assert.deepEqual(negotiate(q(''), 'application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car;q=0.9'), { kind: 'car', scope: 'all' })
    assert.deepEqual(negotiate(q(''), 'application/vnd.ipld.dag-json, application/vnd.ipld.raw;q=0.1'), { kind: 'raw' })
    assert.deepEqual(negotiate(q('format=car&dag-scope=block'), undefined), { kind: 'car', scope: 'block' })
    assert.deepEqual(negotiate(q('format=car&entity-bytes=-10:*'), undefined), { kind: 'car', scope: 'entity', entityBytes: { from: -10, to: undefined } })
    assert.throws(() => negotiate(q('format=nope'), undefined), named('InvalidArgumentError'))
    assert.throws(() => negotiate(q('format=dag-json'), undefined), named('NotAcceptableError'))
    assert.throws(() => negotiate(q(''), 'application/x-tar'), named('NotAcceptableError'))
    assert.throws(() => negotiate(q(''), 'application/vnd.ipld.car; version=2'), named('NotAcceptableError'))
    // a CAR entry whose variant is not written gives way to the next one it can write (the spec's example)
    assert.deepEqual(negotiate(q(''), 'application/vnd.ipld.car;order=foo, application/vnd.ipld.car;order=dfs;dups=n;q=0.5'), { kind: 'car', scope: 'all' })
    assert.deepEqual(negotiate(q(''), 'application/vnd.ipld.car;version=2, application/vnd.ipld.raw;q=0.2'), { kind: 'raw' })
    assert.deepEqual(negotiate(q(''), 'application/vnd.ipld.car;dups=y;q=0.9, text/html;q=0.1'), { kind: 'deserialized' })
    assert.deepEqual(negotiate(q(''), 'application/vnd.ipld.car;order=dfs;q=0.2, application/vnd.ipld.car;order=foo;q=0.8'), { kind: 'car', scope: 'all' }, 'q order, not text order')
    assert.throws(() => negotiate(q(''), 'application/vnd.ipld.car;order=foo, application/vnd.ipld.car;dups=y'), named('NotAcceptableError'))
    assert.throws(() => negotiate(q('format=car&car-order=random'), undefined), named('NotAcceptableError'))
    // format=car takes precedence over Accept: its CAR entries are tried in q order, then the default variant
    assert.deepEqual(negotiate(q('format=car'), 'application/vnd.ipld.car;order=foo, application/vnd.ipld.car;order=dfs;dups=n;q=0.5'), { kind: 'car', scope: 'all' })
    assert.deepEqual(negotiate(q('format=car&dag-scope=entity'), 'application/vnd.ipld.car; version=2'), { kind: 'car', scope: 'entity' })
    assert.throws(() => negotiate(q('format=car&dag-scope=all&entity-bytes=0:1'), undefined), named('InvalidArgumentError'))
  })

  it('Range and entity-bytes against a file of 1000 bytes', () => {
    assert.deepEqual(parseRangeHeader('bytes=0-99', { size: 1000 }), [{ first: 0, last: 99 }])
    assert.deepEqual(parseRangeHeader('bytes=990-', { size: 1000 }), [{ first: 990, last: 999 }])
    assert.deepEqual(parseRangeHeader('bytes=-5', { size: 1000 }), [{ first: 995, last: 999 }])
    // the unit is case-insensitive (RFC 9110 §14.1)
    assert.deepEqual(parseRangeHeader('BYTES=0-9', { size: 1000 }), [{ first: 0, last: 9 }])
    assert.deepEqual(parseRangeHeader('Bytes=-5', { size: 1000 }), [{ first: 995, last: 999 }])
    assert.deepEqual(parseRangeHeader('bytes=-5000', { size: 1000 }), [{ first: 0, last: 999 }])
    assert.deepEqual(parseRangeHeader('bytes=10-20000', { size: 1000 }), [{ first: 10, last: 999 }])
    // positions of any length (RFC 9110: 1*DIGIT): leading zeros, and numbers past any file
    assert.deepEqual(parseRangeHeader('bytes=0001-0002', { size: 1000 }), [{ first: 1, last: 2 }])
    assert.deepEqual(parseRangeHeader('bytes=10-99999999999999999999', { size: 1000 }), [{ first: 10, last: 999 }])
    assert.deepEqual(parseRangeHeader('bytes=-99999999999999999999', { size: 1000 }), [{ first: 0, last: 999 }])
    assert.throws(() => parseRangeHeader('bytes=99999999999999999999-', { size: 1000 }), named('RangeNotSatisfiableError'))
    for (const ignored of [undefined, 'bytes=0-1,5-3', 'bytes=0-1,x', 'bytes=,', 'items=0-1', 'bytes=9-3', 'bytes=-', 'nonsense']) assert.equal(parseRangeHeader(ignored, { size: 1000 }), undefined, ignored)
    for (const unsatisfiable of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) assert.throws(() => parseRangeHeader(unsatisfiable, { size: 1000 }), named('RangeNotSatisfiableError'), unsatisfiable)
    assert.throws(() => parseRangeHeader('bytes=0-', { size: 0 }), named('RangeNotSatisfiableError'), 'an empty file has no byte to send')
    // several ranges: in the order asked, overlapping and touching ones coalesced where the first was asked, unsatisfiable ones left out
    assert.deepEqual(parseRangeHeader('bytes=0-1,5-6', { size: 1000 }), [{ first: 0, last: 1 }, { first: 5, last: 6 }])
    assert.deepEqual(parseRangeHeader('bytes=6-16,0-4', { size: 1000 }), [{ first: 6, last: 16 }, { first: 0, last: 4 }])
    assert.deepEqual(parseRangeHeader('bytes=50-59,0-9,10-19,5-5,-1', { size: 1000 }), [{ first: 50, last: 59 }, { first: 0, last: 19 }, { first: 999, last: 999 }])
    assert.deepEqual(parseRangeHeader('bytes=5000-,0-9', { size: 1000 }), [{ first: 0, last: 9 }])
    assert.deepEqual(parseRangeHeader(' bytes= 1-2 ,\t, 4-5 ', { size: 1000 }), [{ first: 1, last: 2 }, { first: 4, last: 5 }])
    assert.throws(() => parseRangeHeader('bytes=1000-,-0', { size: 1000 }), named('RangeNotSatisfiableError'))
    // past the cap of parts (after coalescing) the header is ignored
    assert.equal(parseRangeHeader('bytes=0-0,2-2,4-4', { size: 1000, maxParts: 2 }), undefined)
    assert.equal(parseRangeHeader('bytes=0-0,2-2,1-1', { size: 1000, maxParts: 2 })?.length, 1)
    assert.deepEqual(resolveEntityBytes(parseEntityBytes('0:*'), 1000), { first: 0, last: 999 })
    assert.deepEqual(resolveEntityBytes(parseEntityBytes('-100:*'), 1000), { first: 900, last: 999 })
    assert.deepEqual(resolveEntityBytes(parseEntityBytes('499:-100'), 1000), { first: 499, last: 900 })
    assert.deepEqual(resolveEntityBytes(parseEntityBytes('10:99999'), 1000), { first: 10, last: 999 })
    assert.equal(resolveEntityBytes(parseEntityBytes('500:-600'), 1000), undefined, 'a zero-length range: the root block only')
    assert.throws(() => resolveEntityBytes(parseEntityBytes('1000:*'), 1000), named('InvalidArgumentError'))
    for (const bad of ['', '1', '1:2:3', 'a:b', '5:3', '0:-*']) assert.throws(() => parseEntityBytes(bad), named('InvalidArgumentError'), bad)
  })

  it('request URLs: /ipfs/{cid}[/path] with decoded segments; other methods, namespaces and malformed parts refused', () => {
    const r = parseGatewayRequest('GET', `/ipfs/${CID_TEXT}/a%20b/c.txt?format=raw`)
    assert.equal(r.path.root.toString(), CID_TEXT)
    assert.deepEqual(r.path.segments, ['a b', 'c.txt'])
    assert.equal(r.path.trailingSlash, false)
    assert.equal(r.query.get('format'), 'raw')
    assert.equal(parseGatewayRequest('HEAD', `/ipfs/${CID_TEXT}/dir/`).path.trailingSlash, true)
    assert.throws(() => parseGatewayRequest('POST', `/ipfs/${CID_TEXT}`), named('MethodNotAllowedError'))
    assert.throws(() => parseGatewayRequest('GET', '/ipns/example.com'), named('NotFoundError'))
    assert.throws(() => parseGatewayRequest('GET', '/'), named('NotFoundError'))
    assert.throws(() => parseGatewayRequest('GET', '/ipfs/'), named('InvalidCIDError'))
    assert.throws(() => parseGatewayRequest('GET', '/ipfs/xyz'), named('InvalidCIDError'))
    for (const bad of ['%zz', 'a//b', '%2e%2e', 'a%2Fb', 'nul%00', 'back%5C']) {
      assert.throws(() => parseGatewayRequest('GET', `/ipfs/${CID_TEXT}/${bad}`), named('InvalidPathError'), bad)
    }
  })
})
