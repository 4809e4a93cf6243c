/**
 * `shoal tier ls` tells a failing S3 endpoint from an unreachable one, on a
 * real daemon and a real HTTP server on 127.0.0.1 that answers every
 * request with HTTP 500 once it is told to fail.
 *
 * Found by a probe: an endpoint answering HTTP 500 was listed as
 * "unreachable (… HTTP 500): UnknownError"; it answered, so it is reachable,
 * but failing.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { defer } from '../helpers/temp.js'
import { lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import { S3RVER_ENV } from '../node/tiers/s3-server.js'

describe('tier ls on a failing endpoint', () => {
  it('an endpoint answering HTTP 500 is reachable but failing, in words and in JSON', { timeout: 90_000 }, async t => {
    let failing = false
    const server = createServer((req, res) => {
      req.resume()
      // healthy: the bucket check (HEAD) answers; failing: every request gets a 500 without a body
      res.writeHead(failing ? 500 : 200, { 'content-length': '0' }).end()
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    defer(t, async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) })
    const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`

    const d = await startDaemon(t, undefined, { env: S3RVER_ENV })
    await shoalOk(d.repo, ['tier', 's3', '--endpoint', endpoint, '--bucket', 'b'])
    failing = true

    const r = await runShoal(['--repo', d.repo, 'tier', 'ls'])
    assert.equal(r.code, 0, r.stderr)
    const out = lines(r.stdout.toString())
    assert.equal(out.length, 1, r.stdout.toString())
    assert.match(out[0], /^http:\/\/127\.0\.0\.1:\d+ bucket b: reachable, but failing \(.*HTTP 500.*\)$/)
    assert.doesNotMatch(out[0], /unreachable/)

    const status = await shoalJson<{ probe: { state: string, reachable: boolean, error?: { name: string } } }>(d.repo, ['tier', 'ls'])
    assert.equal(status.probe.state, 'failing')
    assert.equal(status.probe.reachable, true)
    assert.equal(status.probe.error?.name, 'TierRequestError')
  })
})
