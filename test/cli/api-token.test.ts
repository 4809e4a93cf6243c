/**
 * The daemon never serves its API without a real token: an `api.token`
 * that is empty (truncated, made by hand) or too short to resist a guess
 * stops `shoal daemon` with one line, before it listens anywhere. Before,
 * an empty file gave the daemon an empty token, and a request without any
 * `Authorization` header was served.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { exists, lines, shoalOk, startDaemon } from '../helpers/cli.js'

const TEST = { timeout: 120_000 }

describe('shoal daemon: the API token file', () => {
  it('an empty, blank or short api.token stops the daemon with one line (ApiTokenError); nothing listens', TEST, async t => {
    const repo = join(await tempDir(t, 'shoal-token-'), 'repo')
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    for (const [content, said] of [['', /is empty/], [' \n\n', /is empty/], ['guessable\n', /is 9 characters long/]] as const) {
      await writeFile(join(repo, 'api.token'), content)
      let served: number | undefined
      try {
        const d = await startDaemon(t, repo)
        // the hole: a request carrying no token at all
        const res = await fetch(new URL('/api/v0/id', d.url), { signal: AbortSignal.timeout(15_000) })
        await res.body?.cancel()
        served = res.status
        await d.stop()
      } catch (err: any) {
        const m = /exited \((\d+)\) before it was ready: ([\s\S]*)$/.exec(String(err?.message))
        assert.ok(m !== null, String(err?.message))
        assert.equal(m[1], '1', m[2])
        assert.equal(lines(m[2]).length, 1, m[2])
        assert.match(m[2], /\(ApiTokenError\)$/m)
        assert.match(m[2], said)
        assert.match(m[2], /api\.token/)
        assert.equal(await exists(join(repo, 'api')), false, 'the daemon said it was ready')
      }
      assert.equal(served, undefined, `with api.token ${JSON.stringify(content)} the daemon started and answered a request without a token: ${String(served)}`)
    }
    // a real token again: the repo was left as it was
    await writeFile(join(repo, 'api.token'), 'a'.repeat(16) + '\n')
    const d = await startDaemon(t, repo)
    const res = await fetch(new URL('/api/v0/id', d.url), { signal: AbortSignal.timeout(15_000) })
    await res.body?.cancel()
    assert.equal(res.status, 401)
    const ok = await fetch(new URL('/api/v0/id', d.url), { headers: { authorization: `Bearer ${'a'.repeat(16)}` }, signal: AbortSignal.timeout(15_000) })
    await ok.body?.cancel()
    assert.equal(ok.status, 200)
  })
})
