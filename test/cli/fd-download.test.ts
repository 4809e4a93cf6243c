/**
 * The CLI's direct download (cli/fd-download.ts) and its response decoder
 * (cli/response-decoder.ts): a response split at every byte boundary
 * decodes to the same body (chunked, Content-Length, until close), bad
 * framing and a truncated body are typed errors; against a real HTTP server
 * on 127.0.0.1 a chunked body lands byte-identical in a file, an error
 * status gives its body back, and a server that cuts the connection
 * mid-body fails the download.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { InvalidResponseError, ResponseDecoder, TruncatedResponseError } from '../../cli/response-decoder.js'
import { downloadToFd } from '../../cli/fd-download.js'
import { randomBytes as seeded } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'

const randomBytes = (n: number, seed = 1): Buffer => Buffer.from(seeded(n, seed))

/** Decode `response` fed in pieces cut at `cuts`; the status and the body. */
function decode (response: Buffer, cuts: number[]): { status: number, body: Buffer } {
  let status = 0
  const body: Buffer[] = []
  const decoder = new ResponseDecoder({ onHead: s => { status = s }, onBody: b => { body.push(Buffer.from(b)) } })
  let at = 0
  for (const cut of [...cuts, response.byteLength]) {
    // a reused buffer, as the socket's: the decoder must not keep views of it
    const piece: Buffer = Buffer.from(response.subarray(at, cut))
    decoder.push(piece)
    piece.fill(0xee)
    at = cut
  }
  decoder.end()
  return { status, body: Buffer.concat(body) }
}

const chunked = (body: Buffer, sizes: number[]): Buffer => {
  const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n')]
  let at = 0
  for (const size of sizes) {
    parts.push(Buffer.from(`${size.toString(16)}${at === 0 ? ';ext=1' : ''}\r\n`), body.subarray(at, at + size), Buffer.from('\r\n'))
    at += size
  }
  parts.push(Buffer.from('0\r\nx-trailer: 1\r\n\r\n'))
  return Buffer.concat(parts)
}

describe('ResponseDecoder', () => {
  const body = randomBytes(300)
  const responses: Array<[string, Buffer]> = [
    ['chunked', chunked(body, [1, 100, 199])],
    ['content-length', Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.byteLength}\r\n\r\n`), body])],
    ['until close', Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\n\r\n'), body])]
  ]
  for (const [framing, response] of responses) {
    it(`decodes a ${framing} body split at every byte boundary, and in three pieces anywhere`, () => {
      for (let cut = 0; cut <= response.byteLength; cut++) {
        const got = decode(response, [cut])
        assert.equal(got.status, 200)
        assert.ok(got.body.equals(body), `cut at ${cut}`)
      }
      for (let a = 0; a < response.byteLength; a += 7) {
        for (let b = a; b < response.byteLength; b += 13) assert.ok(decode(response, [a, b]).body.equals(body))
      }
    })
  }

  it('refuses bad framing with a typed error', () => {
    const bad = [
      'HTTP/2 200 OK\r\n\r\n',
      'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\nab\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nab',
      `HTTP/1.1 200 OK\r\nx: ${'a'.repeat(70 * 1024)}`
    ]
    for (const text of bad) assert.throws(() => decode(Buffer.from(text), []), InvalidResponseError, JSON.stringify(text.slice(0, 60)))
  })

  it('a body cut short is a TruncatedResponseError', () => {
    const whole = chunked(randomBytes(100), [50, 50])
    for (const cut of [10, whole.byteLength - 40, whole.byteLength - 3]) {
      assert.throws(() => decode(whole.subarray(0, cut), []), TruncatedResponseError)
    }
    assert.throws(() => decode(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc'), []), TruncatedResponseError)
  })
})

describe('downloadToFd', () => {
  const serve = async (handler: Parameters<typeof createServer>[1]): Promise<{ server: Server, url: (path: string) => URL }> => {
    const server = createServer(handler)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    return { server, url: path => new URL(path, `http://127.0.0.1:${port}`) }
  }
  const body = randomBytes(5 * 1024 * 1024 + 17)

  it('writes a chunked body byte-identical into a file, with the request headers sent', async t => {
    let auth: string | undefined
    const { server, url } = await serve((req, res) => {
      auth = req.headers.authorization
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      // pieces of many sizes, as a read's leaves
      let at = 0
      for (const size of [1, 65536, 1024 * 1024, 3, 2 * 1024 * 1024]) { res.write(body.subarray(at, at + size)); at += size }
      res.end(body.subarray(at))
    })
    const dir = await tempDir(t)
    const file = await open(join(dir, 'out'), 'w')
    try {
      const result = await downloadToFd({ url: url('/cat?arg=x'), headers: { authorization: 'Bearer t' } }, { fd: file.fd, stream: () => new PassThrough() })
      assert.deepEqual(result, { ok: true })
    } finally {
      await file.close()
      server.close()
    }
    assert.equal(auth, 'Bearer t')
    assert.ok((await readFile(join(dir, 'out'))).equals(body))
  })

  it('gives an error status back with its body, writing nothing', async t => {
    const { server, url } = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { name: 'NotFoundError', message: 'no such file' } }))
    })
    const dir = await tempDir(t)
    const file = await open(join(dir, 'out'), 'w')
    try {
      const result = await downloadToFd({ url: url('/cat'), headers: {} }, { fd: file.fd, stream: () => new PassThrough() })
      assert.equal(result.ok, false)
      assert.ok(!result.ok && result.status === 404 && JSON.parse(result.body).error.name === 'NotFoundError')
    } finally {
      await file.close()
      server.close()
    }
    assert.equal((await readFile(join(dir, 'out'))).byteLength, 0)
  })

  it('fails with TruncatedResponseError when the server cuts the connection mid-body', async t => {
    const { server, url } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.write(body.subarray(0, 1024 * 1024), () => { res.socket?.destroy() })
    })
    const dir = await tempDir(t)
    const file = await open(join(dir, 'out'), 'w')
    try {
      await assert.rejects(downloadToFd({ url: url('/cat'), headers: {} }, { fd: file.fd, stream: () => new PassThrough() }), TruncatedResponseError)
    } finally {
      await file.close()
      server.close()
    }
  })
})
