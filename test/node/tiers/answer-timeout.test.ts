/**
 * A tier endpoint that accepts connections and never answers (a hung S3
 * server, a black-holed load balancer): every read — HeadBucket,
 * HeadObject, a ranged and a whole GetObject — fails with
 * `TierUnreachableError` once `answerTimeoutMs` has passed, instead of
 * holding the reader for the two minutes of `requestTimeoutMs`. The
 * endpoint is a real TCP server on 127.0.0.1.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Socket } from 'node:net'
import { createTierClient } from '../../../node/tiers/index.js'
import { defer } from '../../helpers/temp.js'
import { S3RVER_CREDENTIALS } from './s3-server.js'

describe('tier reads against an endpoint that never answers', () => {
  it('fail with TierUnreachableError after answerTimeoutMs, not requestTimeoutMs', { timeout: 120_000 }, async t => {
    const sockets = new Set<Socket>()
    const server = createServer(socket => { sockets.add(socket); socket.on('error', () => {}); socket.resume() })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    defer(t, async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    })
    const { port } = server.address() as { port: number }
    const client = createTierClient({ endpoint: `http://127.0.0.1:${port}`, bucket: 'b' }, { credentials: S3RVER_CREDENTIALS, answerTimeoutMs: 400 })
    t.after(() => { client.destroy() })

    const reads: Array<[string, () => Promise<unknown>]> = [
      ['HeadBucket', async () => await client.checkBucket()],
      ['HeadObject', async () => await client.head('k')],
      ['GetObject (range)', async () => await client.getRange('k', 0, 100)],
      ['GetObject', async () => await client.getObject('k')]
    ]
    for (const [what, read] of reads) {
      const started = Date.now()
      await assert.rejects(read(), (err: any) => {
        assert.equal(err.name, 'TierUnreachableError', `${what}: ${String(err.message)}`)
        assert.match(err.message, /did not answer/)
        assert.doesNotMatch(err.message, /\n/)
        return true
      })
      // far below requestTimeoutMs (2 min), with room for a loaded machine (3.2 s seen under a load of 11)
      assert.ok(Date.now() - started < 20_000, `${what} failed after ${Date.now() - started} ms`)
    }

    // the caller's own abort is still an abort
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 100)
    await assert.rejects(client.head('k', controller.signal), { name: 'AbortedError' })
  })
})
