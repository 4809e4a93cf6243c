/**
 * The daemon's HTTP API, spoken to directly (no CLI): authentication, errors,
 * query validation, health and metrics, aborted uploads, loopback binding.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import { connect } from 'node:net'
import { networkInterfaces } from 'node:os'
import { readFile } from 'node:fs/promises'
import { routes } from '../../../node/api/routes.js'
import { BATCH_CONTENT_TYPE, encodeBatchHead } from '../../../protocol/add-batch.js'
import { ApiClient } from '../../../cli/client.js'
import { REFUSED_LINGER_MS } from '../../../node/api/server.js'
import { randomBytes } from '../../helpers/bytes.js'
import { sleep, startDaemon, suiteContext, type TestDaemon } from '../../helpers/cli.js'

const TEST = { timeout: 120_000 }

interface Answer { status: number, type: string, text: string, json: () => any }

describe('HTTP API', () => {
  const ctx = suiteContext()
  let d: TestDaemon

  before(async () => { d = await startDaemon(ctx) })

  /** Send a request with the right token unless `token` says otherwise (null: no header). */
  async function call (method: string, path: string, opts: { token?: string | null, body?: Uint8Array | string } = {}): Promise<Answer> {
    const token = opts.token === undefined ? d.token : opts.token
    const headers: Record<string, string> = {}
    if (token !== null) headers.authorization = `Bearer ${token}`
    const res = await fetch(new URL(path, d.url), { method, headers, body: opts.body, signal: AbortSignal.timeout(15_000) })
    const text = await res.text()
    return { status: res.status, type: res.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) }
  }

  function assertError (a: Answer, status: number, name: string): void {
    assert.equal(a.status, status, a.text)
    assert.match(a.type, /^application\/json/)
    const body = a.json()
    assert.deepEqual(Object.keys(body), ['error'])
    assert.equal(body.error.name, name)
    assert.equal(typeof body.error.message, 'string')
    assert.ok(body.error.message.length > 0)
  }

  it('every endpoint rejects a missing or wrong token with 401 JSON', TEST, async () => {
    const wrongSameLength = d.token.replace(/^./, c => c === 'a' ? 'b' : 'a')
    const endpoints = [...routes.map(r => ({ method: r.method, path: r.path })), { method: 'GET', path: '/no/such/endpoint' }]
    for (const { method, path } of endpoints) {
      for (const token of [null, '', 'wrong', wrongSameLength, `${d.token}x`]) {
        const a = await call(method, `${path}?arg=/`, { token, body: method === 'POST' ? 'x' : undefined })
        assert.equal(a.status, 401, `${method} ${path} with token ${JSON.stringify(token)}: ${a.text}`)
        assertError(a, 401, 'UnauthorizedError')
      }
    }
    // a wrong scheme with the right secret is no better
    const res = await fetch(new URL('/health', d.url), { headers: { authorization: `Basic ${d.token}` }, signal: AbortSignal.timeout(15_000) })
    assert.equal(res.status, 401)
    await res.body?.cancel()
  })

  it('unknown endpoint → 404, wrong method → 405', TEST, async () => {
    assertError(await call('GET', '/api/v0/nope'), 404, 'NotFoundError')
    assertError(await call('GET', '/index.html'), 404, 'NotFoundError')
    assertError(await call('GET', '/api/v0/add'), 405, 'MethodNotAllowedError')
    assertError(await call('POST', '/health'), 405, 'MethodNotAllowedError')
    assertError(await call('DELETE', '/api/v0/ls?arg=/'), 405, 'MethodNotAllowedError')
    assertError(await call('POST', '/api/v0/cat?arg=/'), 405, 'MethodNotAllowedError')
  })

  it('request targets URL parsing refuses (`//`, `//[`) → 400 without the token, and the daemon keeps serving', TEST, async () => {
    const { hostname, port } = new URL(d.url)
    // sent as raw bytes: fetch and http.request would normalise the target
    const raw = async (target: string): Promise<string> => await new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) })
      let text = ''
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer to ${target}`)) }, 15_000)
      socket.setEncoding('utf8').on('data', (s: string) => { text += s; if (text.includes('\r\n\r\n')) { clearTimeout(timer); socket.destroy(); resolve(text) } })
      socket.once('error', err => { clearTimeout(timer); reject(err) })
      socket.once('connect', () => { socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`) })
    })
    for (const target of ['//', '//[']) {
      const head = await raw(target)
      assert.match(head, /^HTTP\/1\.1 400 /, `${target}: ${head.split('\r\n')[0]}`)
      assert.match(head, /InvalidRequestError/)
    }
    // parsed as an authority `x` and the path `/`: the page (no node data), not a crash
    assert.match(await raw('//x'), /^HTTP\/1\.1 200 /)
    assert.equal((await call('GET', '/api/v0/id')).status, 200, 'still serving')
  })

  it('invalid queries → 400 InvalidArgumentError', TEST, async () => {
    const bad: Array<[string, string, string?]> = [
      ['GET', '/api/v0/ls?arg=/&bogus=1'],
      ['GET', '/api/v0/ls'],
      ['GET', '/api/v0/ls?arg='],
      ['GET', '/api/v0/ls?arg=/&arg=/'],
      ['GET', '/api/v0/cat?arg=/x&offset=-1'],
      ['GET', '/api/v0/cat?arg=/x&length=abc'],
      ['GET', '/api/v0/cat?arg=/x&offset=1&offset=2'],
      ['GET', '/health?verbose=1'],
      ['GET', '/metrics?x'],
      ['POST', '/api/v0/mkdir?arg=/q&parents=maybe'],
      ['POST', '/api/v0/mv?from=/a'],
      ['POST', '/api/v0/rm?arg=/q&recursive=yes'],
      ['POST', '/api/v0/add', 'body'],
      ['POST', '/api/v0/add?to=/q&mode=999', 'body'],
      ['POST', '/api/v0/add?to=/q&bogus=1', 'body'],
      ['POST', '/api/v0/add?to=/q&started=yesterday', 'body'],
      ['POST', '/api/v0/add?to=/q&started=-5', 'body'],
      ['GET', '/api/v0/stat?arg=/&started=yesterday'],
      ['GET', '/api/v0/stat?arg=/&started=1.5'],
      ['POST', '/api/v0/mkdir?arg=/q&started=soon'],
      ['POST', '/api/v0/car/import?x=1', 'body'],
      ['GET', '/api/v0/stream/error'],
      ['GET', '/api/v0/stream/error?id=x']
    ]
    for (const [method, path, body] of bad) {
      const a = await call(method, path, { body })
      assert.equal(a.status, 400, `${method} ${path}: ${a.text}`)
      assertError(a, 400, 'InvalidArgumentError')
    }
    // nothing was created by the rejected requests
    assertError(await call('GET', '/api/v0/stat?arg=/q'), 404, 'NotFoundError')
    // a stream that did not fail has no error to give
    assertError(await call('GET', '/api/v0/stream/error?id=123456'), 404, 'NotFoundError')
  })

  it('a multipart form (as Kubo clients post files) or any body not labelled raw bytes → 415, nothing stored', TEST, async () => {
    const form = new FormData()
    form.append('file', new Blob([new TextEncoder().encode('hello')]), 'hello.txt')
    for (const [path, body, type] of [
      ['/api/v0/add?to=/form.txt', form, undefined],
      ['/api/v0/add?to=/form.txt', new TextEncoder().encode('hello'), 'text/plain'],
      ['/api/v0/car/import', new Uint8Array(10), 'multipart/form-data; boundary=x']
    ] as const) {
      const headers: Record<string, string> = { authorization: `Bearer ${d.token}` }
      if (type !== undefined) headers['content-type'] = type
      const res = await fetch(new URL(path, d.url), { method: 'POST', headers, body, signal: AbortSignal.timeout(15_000) })
      const a: Answer = { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text(), json: () => JSON.parse(a.text) }
      assertError(a, 415, 'UnsupportedMediaTypeError')
      assert.match(a.json().error.message, /send the raw bytes/)
    }
    assertError(await call('GET', '/api/v0/stat?arg=/form.txt'), 404, 'NotFoundError')
    // raw bytes, labelled or not, are taken
    const res = await fetch(new URL('/api/v0/add?to=/raw.txt', d.url), { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/octet-stream' }, body: new TextEncoder().encode('raw'), signal: AbortSignal.timeout(15_000) })
    assert.equal(res.status, 200, await res.text())
    assert.equal((await call('GET', '/api/v0/cat?arg=/raw.txt')).text, 'raw')
  })

  /** Send a request through node:http: `chunks` are written one by one (chunked unless `headers` give a length), `end` last. */
  async function rawCall (method: string, path: string, opts: { headers?: Record<string, string>, chunks?: Array<string | Uint8Array>, end?: string } = {}): Promise<Answer> {
    return await new Promise((resolve, reject) => {
      const req = request(new URL(path, d.url), { method, headers: { authorization: `Bearer ${d.token}`, ...opts.headers }, timeout: 15_000 }, res => {
        const parts: Buffer[] = []
        res.on('data', (b: Buffer) => parts.push(b))
        res.once('error', reject)
        res.once('end', () => {
          const text = Buffer.concat(parts).toString('utf8')
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', text, json: () => JSON.parse(text) })
        })
      })
      req.once('error', reject)
      req.once('timeout', () => { req.destroy(new Error(`${method} ${path} timed out`)) })
      for (const chunk of opts.chunks ?? []) req.write(chunk)
      req.end(opts.end)
    })
  }

  it('only add, add-many and car/import take a request body', TEST, () => {
    assert.deepEqual(routes.filter(r => r.body === true).map(r => `${r.method} ${r.path}`), ['POST /api/v0/add', 'POST /api/v0/add-many', 'POST /api/v0/car/import'])
  })

  it('add-many binds a batch of files at once; a malformed batch is a 400 naming the fault and binds nothing', TEST, async () => {
    const batch = (files: Array<{ to: string, size: number, mode?: number, mtime?: number } | Record<string, unknown>>, contents: string[]): Uint8Array =>
      Buffer.concat([encodeBatchHead(files as any), ...contents.map(c => Buffer.from(c))])
    const post = async (body: Uint8Array, headers: Record<string, string> = {}): Promise<Answer> => {
      const res = await fetch(new URL('/api/v0/add-many', d.url), { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': BATCH_CONTENT_TYPE, ...headers }, body, signal: AbortSignal.timeout(15_000) })
      const text = await res.text()
      return { status: res.status, type: res.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) }
    }
    const ok = await post(batch([{ to: '/batch/a.txt', size: 5, mode: 0o600, mtime: 1_000_000 }, { to: '/batch/sub/b.txt', size: 0 }, { to: '/batch/c.txt', size: 3 }], ['alpha', '', 'cee']))
    assert.equal(ok.status, 200, ok.text)
    assert.deepEqual(ok.json().map((f: any) => [f.path, f.size]), [['/batch/a.txt', 5], ['/batch/sub/b.txt', 0], ['/batch/c.txt', 3]])
    assert.equal((await call('GET', '/api/v0/cat?arg=/batch/a.txt')).text, 'alpha')
    assert.equal((await call('GET', '/api/v0/cat?arg=/batch/c.txt')).text, 'cee')
    const a = (await call('GET', '/api/v0/stat?arg=/batch/a.txt')).json()
    assert.deepEqual([a.mode, a.mtime], [0o600, 1_000_000])

    const before = (await call('GET', '/api/v0/ls?arg=/batch')).text
    const refused: Array<[string, Uint8Array, RegExp, number?]> = [
      ['not JSON', Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{x}')]), /not JSON/],
      ['no files', batch([], []), /array of 1 to/],
      ['a path twice', batch([{ to: '/batch/n.txt', size: 1 }, { to: '/batch/n.txt', size: 1 }], ['1', '2']), /a second time/],
      ['a path twice once normalised', batch([{ to: '/batch/n.txt', size: 1 }, { to: '/batch//n.txt', size: 1 }], ['1', '2']), /path has an empty segment|names one path twice/],
      ['an unknown field', batch([{ to: '/batch/n.txt', size: 1, owner: 'x' }], ['1']), /unknown fields: owner/],
      ['a negative size', batch([{ to: '/batch/n.txt', size: -1 }], []), /no valid size/],
      ['bad mode', batch([{ to: '/batch/n.txt', size: 1, mode: 0o70000 }], ['1']), /invalid permission bits/],
      ['more bytes than the manifest says', batch([{ to: '/batch/n.txt', size: 1 }], ['12']), /the batch body is \d+ bytes, its manifest says/],
      ['fewer bytes', batch([{ to: '/batch/n.txt', size: 3 }, { to: '/batch/m.txt', size: 3 }], ['123', '45']), /the batch body is \d+ bytes, its manifest says/],
      ['a manifest length past the body', Buffer.from([0, 0, 1, 0, 0x5b]), /passes the body/],
      ['a relative path', batch([{ to: '/batch/ok.txt', size: 1 }, { to: 'rel.txt', size: 1 }], ['1', '2']), /must be absolute/],
      ['a file onto a directory', batch([{ to: '/batch/ok.txt', size: 1 }, { to: '/batch/sub', size: 1 }], ['1', '2']), /is a directory/, 409]
    ]
    for (const [what, body, message, status] of refused) {
      const answer = await post(body)
      assert.equal(answer.status, status ?? 400, `${what}: ${answer.text}`)
      assert.match(answer.json().error.message, message, what)
    }
    // a body cut short after its head: the connection's end fails the batch
    const cut = await rawCall('POST', '/api/v0/add-many', { headers: { 'content-type': BATCH_CONTENT_TYPE }, chunks: [batch([{ to: '/batch/cut.txt', size: 10 }], ['12345'])] })
    assert.equal(cut.status, 400, cut.text)
    assert.match(cut.json().error.message, /needs a Content-Length/)
    assertError(await post(batch([{ to: '/batch/t.txt', size: 1 }], ['1']), { 'content-type': 'text/plain' }), 415, 'UnsupportedMediaTypeError')
    assert.equal((await call('GET', '/api/v0/ls?arg=/batch')).text, before, 'nothing of a refused batch was bound')
  })

  it('a body sent to an endpoint that takes none → 413 TooLargeError before it runs; Content-Length: 0 is no body', TEST, async () => {
    // a body with a length: refused, the directory is not made
    const sized = await call('POST', '/api/v0/mkdir?arg=/bodied', { body: 'x'.repeat(1000) })
    assertError(sized, 413, 'TooLargeError')
    assert.equal(sized.json().error.message, 'POST /api/v0/mkdir takes no request body (got 1000 bytes)')
    assertError(await call('GET', '/api/v0/stat?arg=/bodied'), 404, 'NotFoundError')
    // a chunked body (no length), and an empty chunked one: refused alike
    const chunked = await rawCall('POST', '/api/v0/mkdir?arg=/chunked', { chunks: ['abc', 'def'] })
    assertError(chunked, 413, 'TooLargeError')
    assert.match(chunked.json().error.message, /^POST \/api\/v0\/mkdir takes no request body \(got a chunked body\)$/)
    assertError(await rawCall('POST', '/api/v0/mkdir?arg=/chunked', { headers: { 'transfer-encoding': 'chunked' } }), 413, 'TooLargeError')
    assertError(await call('GET', '/api/v0/stat?arg=/chunked'), 404, 'NotFoundError')
    // a larger body to rm, and a GET with a body: the same, and the file is kept
    assert.equal((await call('POST', '/api/v0/add?to=/keep.txt', { body: new TextEncoder().encode('kept') })).status, 200)
    assertError(await call('POST', '/api/v0/rm?arg=/keep.txt', { body: randomBytes(4 * 1024 * 1024, 43) }), 413, 'TooLargeError')
    assert.equal((await call('GET', '/api/v0/cat?arg=/keep.txt')).text, 'kept')
    const get = await rawCall('GET', '/api/v0/ls?arg=/', { headers: { 'content-length': '3' }, end: 'abc' })
    assertError(get, 413, 'TooLargeError')
    assert.match(get.json().error.message, /^GET \/api\/v0\/ls takes no request body \(got 3 bytes\)$/)
    // `Content-Length: 0` is no body; nor is a POST that sends none (what the CLI's client sends)
    const empty = await rawCall('POST', '/api/v0/mkdir?arg=/empty-body', { headers: { 'content-length': '0' } })
    assert.equal(empty.status, 200, empty.text)
    assert.equal((await call('GET', '/api/v0/stat?arg=/empty-body')).json().type, 'dir')
    const client = await ApiClient.connect(d.repo)
    assert.equal((await client.json('POST', '/api/v0/mkdir', { arg: '/client-dir' })).type, 'dir')
    // the endpoints that take a body still do
    const added = await call('POST', '/api/v0/add?to=/bodied.txt', { body: new TextEncoder().encode('a body is taken here') })
    assert.equal(added.status, 200, added.text)
    assert.equal((await call('GET', '/api/v0/cat?arg=/bodied.txt')).text, 'a body is taken here')
    const chunkedAdd = await rawCall('POST', '/api/v0/add?to=/chunked.txt', { chunks: ['chunked ', 'add'] })
    assert.equal(chunkedAdd.status, 200, chunkedAdd.text)
    assert.equal((await call('GET', '/api/v0/cat?arg=/chunked.txt')).text, 'chunked add')
    assertError(await call('POST', '/api/v0/car/import', { body: new TextEncoder().encode('not a car') }), 422, 'InvalidCARError')
    // and nothing the refused requests named was touched
    const root = (await call('GET', '/api/v0/ls?arg=/')).json().map((e: { name: string }) => e.name)
    assert.ok(!root.includes('bodied') && !root.includes('chunked'), JSON.stringify(root))
  })

  it('/health and /metrics work with the token', TEST, async () => {
    const health = await call('GET', '/health')
    assert.equal(health.status, 200)
    assert.equal(health.json().ok, true)
    const added = await call('POST', '/api/v0/add?to=/metrics/probe', { body: randomBytes(10_000, 41) })
    assert.equal(added.status, 200, added.text)
    const metrics = await call('GET', '/metrics')
    assert.equal(metrics.status, 200)
    assert.match(metrics.type, /^text\/plain/)
    assert.match(metrics.text, /^shoal_api_requests_total\{/m)
    const written = /^shoal_blocks_written_total (\d+)/m.exec(metrics.text)
    assert.ok(written !== null, 'shoal_blocks_written_total is exported')
    assert.ok(Number(written[1]) > 0, 'the add wrote blocks')
    assert.match(metrics.text, /^shoal_namespace_retired_authors 0$/m)
    const entries = /^shoal_namespace_entries (\d+)/m.exec(metrics.text)
    assert.ok(entries !== null && Number(entries[1]) >= 1, 'the add is a namespace entry')
    assert.match(metrics.text, /^shoal_namespace_rejected_entries_total 0$/m)
  })

  it('an upload the client aborts midway creates nothing and the daemon keeps working', TEST, async () => {
    const blocksWritten = async (): Promise<number> => {
      const m = /^shoal_blocks_written_total (\d+)/m.exec((await call('GET', '/metrics')).text)
      return Number(m?.[1] ?? NaN)
    }
    /** Finished add requests by status, from the request counter. */
    const addsDone = async (): Promise<Map<string, number>> => {
      const out = new Map<string, number>()
      const re = /^shoal_api_requests_total\{(?=[^}]*route="\/api\/v0\/add")[^}]*status="(\d+)"[^}]*\} (\d+)/gm
      for (const m of (await call('GET', '/metrics')).text.matchAll(re)) out.set(m[1], Number(m[2]))
      return out
    }
    const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0)
    const start = await blocksWritten()
    const addsBefore = await addsDone()
    const url = new URL('/api/v0/add?to=/aborted/dir/file.bin&chunker=size-65536', d.url)
    const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${d.token}` } })
    const failed = new Promise<Error | undefined>(resolve => {
      req.once('error', resolve)
      req.once('response', res => { res.resume(); resolve(undefined) })
    })
    // send 2 MiB of a body that never ends, wait until the daemon has stored some of it, then go away
    req.write(randomBytes(2 * 1024 * 1024, 42))
    const deadline = Date.now() + 10_000
    while (await blocksWritten() <= start && Date.now() < deadline) await sleep(50)
    assert.ok(await blocksWritten() > start, 'the daemon started importing the upload')
    req.destroy()
    assert.ok(await failed !== undefined, 'the upload got no answer')

    // wait (bounded) until the daemon has finished the aborted request: it did not succeed
    let addsAfter = await addsDone()
    const until = Date.now() + 10_000
    while (total(addsAfter) === total(addsBefore) && Date.now() < until) {
      await sleep(50)
      addsAfter = await addsDone()
    }
    assert.equal(total(addsAfter), total(addsBefore) + 1, 'the aborted add request finished')
    assert.equal(addsAfter.get('200') ?? 0, addsBefore.get('200') ?? 0, 'the aborted add did not succeed')

    // nothing is bound in the namespace
    for (const path of ['/aborted/dir/file.bin', '/aborted/dir', '/aborted']) {
      assertError(await call('GET', `/api/v0/stat?arg=${encodeURIComponent(path)}`), 404, 'NotFoundError')
    }
    const root = await call('GET', '/api/v0/ls?arg=/')
    assert.equal(root.status, 200)
    assert.ok(!root.json().some((e: { name: string }) => e.name === 'aborted'), root.text)

    // and it keeps working
    const after = await call('POST', '/api/v0/add?to=/after-abort.txt', { body: new TextEncoder().encode('still here') })
    assert.equal(after.status, 200, after.text)
    assert.equal((await call('GET', '/api/v0/cat?arg=/after-abort.txt')).text, 'still here')
    assert.equal((await call('GET', '/health')).status, 200)
  })

  it('listens on 127.0.0.1 only', TEST, async () => {
    const m = /^\/ip4\/127\.0\.0\.1\/tcp\/(\d+)$/.exec(d.api)
    assert.ok(m !== null, `api file: ${d.api}`)
    const port = Number(m[1])
    assert.equal(new URL(d.url).hostname, '127.0.0.1')
    // every other local address refuses connections on that port
    const others = Object.values(networkInterfaces()).flat()
      .filter(i => i !== undefined && !i.internal)
      .map(i => i?.address as string)
    for (const host of others) {
      const outcome = await new Promise<string>(resolve => {
        const socket = connect({ host, port, timeout: 5_000 })
        socket.once('connect', () => { socket.destroy(); resolve('connected') })
        socket.once('timeout', () => { socket.destroy(); resolve('timeout') })
        socket.once('error', (err: any) => resolve(String(err.code)))
      })
      assert.notEqual(outcome, 'connected', `the API answers on ${host}:${port}`)
    }
    // on Linux, the kernel's socket table says exactly where it listens
    const table = (await Promise.all(['/proc/net/tcp', '/proc/net/tcp6'].map(async f => await readFile(f, 'utf8').catch(() => '')))).join('\n')
    if (table !== '') {
      const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
      const listening = table.split('\n').map(l => l.trim().split(/\s+/))
        .filter(f => f[3] === '0A' && f[1]?.endsWith(`:${hexPort}`))
        .map(f => f[1])
      assert.deepEqual(listening, [`0100007F:${hexPort}`])
    }
  })

  it('a refused request whose small body arrived keeps its connection usable: the next requests on it are served, not cut by the refusal\'s linger timer', TEST, async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const send = async (method: string, path: string, body?: string): Promise<{ status: number, socket: unknown }> => await new Promise((resolve, reject) => {
        const req = request(new URL(path, d.url), { method, agent, headers: { authorization: `Bearer ${d.token}` }, timeout: 15_000 }, res => {
          res.resume()
          res.once('end', () => { resolve({ status: res.statusCode ?? 0, socket: req.socket }) })
          res.once('error', reject)
        })
        req.once('error', reject)
        req.once('timeout', () => { req.destroy(new Error(`${method} ${path} timed out`)) })
        req.end(body)
      })
      // refused (no `to`) before its body was read: the body is read and dropped after the answer
      const refused = await send('POST', '/api/v0/add', 'body')
      assert.equal(refused.status, 400)
      // the same connection carries requests for longer than the linger: none is cut, none needs a new connection
      const until = Date.now() + REFUSED_LINGER_MS + 1_000
      let served = 0
      for (let i = 0; i < 10_000 && Date.now() < until; i++) {
        const next = await send('GET', '/api/v0/id')
        assert.equal(next.status, 200)
        assert.equal(next.socket, refused.socket, `request ${i} came on a new connection: the refused one's was cut`)
        served++
        await sleep(50)
      }
      assert.ok(served > 0)
    } finally {
      agent.destroy()
    }
  })

  it('a client that never finishes its headers is cut off; a refused upload cannot hold the connection', TEST, async () => {
    const { hostname, port } = new URL(d.url)
    const closedWithin = async (send: (socket: ReturnType<typeof connect>) => void, ms: number): Promise<{ closed: boolean, text: string }> => {
      return await new Promise(resolve => {
        const socket = connect({ host: hostname, port: Number(port) })
        let text = ''
        const timer = setTimeout(() => { socket.destroy(); resolve({ closed: false, text }) }, ms)
        socket.setEncoding('utf8').on('data', (s: string) => { text += s })
        socket.once('close', () => { clearTimeout(timer); resolve({ closed: true, text }) })
        socket.once('error', () => {})
        socket.once('connect', () => { send(socket) })
      })
    }
    // half a request head, then silence: closed by the headers timeout (10 s), long before 75 s
    const slow = await closedWithin(s => { s.write('GET /api/v0/id HTTP/1.1\r\nHost: x\r\n') }, 30_000)
    assert.equal(slow.closed, true, 'the server closed the connection')
    // no token and a body that never ends: 401, then the connection is closed
    const endless = await closedWithin(s => {
      s.write('POST /api/v0/add?to=/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')
      const chunk = Buffer.alloc(64 * 1024, 1)
      const pump = setInterval(() => {
        if (s.destroyed) { clearInterval(pump); return }
        s.write(chunk.byteLength.toString(16) + '\r\n')
        s.write(chunk)
        s.write('\r\n')
      }, 5)
      s.once('close', () => { clearInterval(pump) })
    }, 30_000)
    assert.equal(endless.closed, true, 'the server closed the connection')
    assert.match(endless.text, /^HTTP\/1\.1 401/)
    assert.match(endless.text, /UnauthorizedError/)
    assert.equal((await call('GET', '/api/v0/stat?arg=/x')).status, 404, 'nothing was added')
  })
})
