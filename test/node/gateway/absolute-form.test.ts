/**
 * Requests whose target is in absolute form (`GET http://host:port/ipfs/…
 * HTTP/1.1`), as a client sends them to a proxy and a proxy may pass them
 * on (RFC 9112 §3.2.2), sent over a raw TCP connection to a gateway on
 * 127.0.0.1: answered as the same path in origin form, with the target's
 * authority checked as `Host` is (a foreign one is refused, whatever `Host`
 * says), and malformed targets refused with a named error.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { importer } from 'ipfs-unixfs-importer'
import { rawRequest, startLocalGateway, type RawAnswer } from './helpers.js'
import type { CID } from 'multiformats/cid'

const TEST = { timeout: 60_000 }

/** Assert an error answer read off a raw connection: its status and the error's name. */
function assertRawError (a: RawAnswer, status: number, name: string): void {
  assert.equal(a.status, status, a.body.subarray(0, 300).toString('utf8'))
  assert.equal(JSON.parse(a.body.toString('utf8')).error.name, name)
}

describe('the gateway: absolute-form request targets (RFC 9112 §3.2.2)', { concurrency: true }, () => {
  it('GET and HEAD of http://127.0.0.1:PORT/ipfs/{cid}[/path][?query] answer what the origin-form target answers; a foreign authority or Host is refused; userinfo and other schemes are a 400', TEST, async t => {
    const { gw, store } = await startLocalGateway(t)
    const content = new TextEncoder().encode('hello over a proxy\n')
    const cids = new Map<string, CID>()
    for await (const entry of importer([{ path: 'd/a.txt', content }], store, { cidVersion: 1, rawLeaves: true })) cids.set(entry.path ?? '', entry.cid)
    const dir = (cids.get('d') as CID).toString()
    const file = (cids.get('d/a.txt') as CID).toString()
    const authority = new URL(gw).host
    const host = `Host: ${authority}`

    const whole = await rawRequest(gw, `GET http://${authority}/ipfs/${dir}/a.txt HTTP/1.1\r\n${host}`)
    assert.equal(whole.status, 200, whole.body.toString())
    assert.deepEqual(whole.body, Buffer.from(content))
    assert.equal(whole.headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(whole.headers['content-length'], String(content.byteLength))
    assert.equal(whole.headers['x-ipfs-path'], `/ipfs/${dir}/a.txt`)
    assert.equal(whole.headers.etag, `"${file}"`)

    const head = await rawRequest(gw, `HEAD http://${authority}/ipfs/${file} HTTP/1.1\r\n${host}`)
    assert.equal(head.status, 200)
    assert.equal(head.headers['content-length'], String(content.byteLength))
    assert.equal(head.body.byteLength, 0)

    // the query of the absolute URL is the request's
    const raw = await rawRequest(gw, `GET http://${authority}/ipfs/${file}?format=raw HTTP/1.1\r\n${host}`)
    assert.equal(raw.status, 200)
    assert.equal(raw.headers['content-type'], 'application/vnd.ipld.raw')
    assert.deepEqual(raw.body, Buffer.from(content), 'a raw leaf is the file\'s bytes')

    // scheme and host are case-insensitive; a directory without its slash is redirected to a path, its query kept
    const redirect = await rawRequest(gw, `GET HTTP://${authority.toUpperCase()}/ipfs/${dir}?x=1 HTTP/1.1\r\n${host}`)
    assert.equal(redirect.status, 301)
    assert.equal(redirect.headers.location, `/ipfs/${dir}/?x=1`)

    // an authority naming another host is refused as that Host would be, whatever Host says (a client must send the same in both)
    assertRawError(await rawRequest(gw, `GET http://evil.example/ipfs/${file} HTTP/1.1\r\n${host}`), 403, 'ForbiddenHostError')
    assertRawError(await rawRequest(gw, `GET http://evil.example:${new URL(gw).port}/ipfs/${file} HTTP/1.1\r\nHost: evil.example`), 403, 'ForbiddenHostError')
    assertRawError(await rawRequest(gw, `GET http://${authority}/ipfs/${file} HTTP/1.1\r\nHost: evil.example`), 403, 'ForbiddenHostError')
    assertRawError(await rawRequest(gw, `GET http://10.1.2.3/ipfs/${file} HTTP/1.1\r\n${host}`), 403, 'ForbiddenHostError')

    // malformed absolute targets: named, not a 404
    for (const target of [`http://user@${authority}/ipfs/${file}`, `ftp://${authority}/ipfs/${file}`, `http:///ipfs/${file}`]) {
      assertRawError(await rawRequest(gw, `GET ${target} HTTP/1.1\r\n${host}`), 400, 'InvalidRequestTargetError')
    }
    // an absolute URL without a path is the root: outside /ipfs/
    assertRawError(await rawRequest(gw, `GET http://${authority} HTTP/1.1\r\n${host}`), 404, 'NotFoundError')
    // the origin form is unchanged
    const origin = await rawRequest(gw, `GET /ipfs/${dir}/a.txt HTTP/1.1\r\n${host}`)
    assert.equal(origin.status, 200)
    assert.deepEqual(origin.body, whole.body)
  })
})
