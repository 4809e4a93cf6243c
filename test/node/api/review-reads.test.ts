/**
 * Reads served through the HTTP API: streamed answers whose client went
 * away, ranged reads and CAR exports. Real daemon on 127.0.0.1.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from '../../helpers/bytes.js'
import { tempDir } from '../../helpers/temp.js'
import { shoalJson, sleep, startDaemon, suiteContext, type TestDaemon } from '../../helpers/cli.js'

const TEST = { timeout: 120_000 }

/** GET `path`, read the body as fast as it comes, and destroy the connection after `after` bytes. */
async function readThenHangUp (d: TestDaemon, path: string, after: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = request(new URL(path, d.url), { headers: { authorization: `Bearer ${d.token}` } }, res => {
      let got = 0
      res.on('data', (b: Buffer) => {
        got += b.byteLength
        if (got >= after) { req.destroy(); resolve() }
      })
      res.once('end', () => { reject(new Error('the whole body arrived before the hang-up')) })
    })
    req.on('error', () => {})
    req.setTimeout(30_000, () => { req.destroy(); reject(new Error('no answer')) })
    req.end()
  })
}

/** Requests to `route` the daemon has finished (its counter of answered requests). */
async function finished (d: TestDaemon, route: string): Promise<number> {
  const res = await fetch(new URL('/metrics', d.url), { headers: { authorization: `Bearer ${d.token}` }, signal: AbortSignal.timeout(15_000) })
  const text = await res.text()
  let n = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('shoal_api_requests_total{') && line.includes(`route="${route}"`)) n += Number(line.split(' ').pop())
  }
  return n
}

describe('streamed reads whose client goes away', () => {
  const ctx = suiteContext()
  let d: TestDaemon
  before(async () => {
    d = await startDaemon(ctx)
    const dir = await tempDir(ctx)
    await writeFile(join(dir, 'big.bin'), randomBytes(32 * 1024 * 1024, 1))
    await shoalJson(d.repo, ['add', join(dir, 'big.bin'), '--to', '/big.bin', '--pin', 'none'])
  })

  for (const route of ['/api/v0/car/export', '/api/v0/cat']) {
    it(`${route}: every answer cut by its client ends on the daemon`, TEST, async () => {
      const before = await finished(d, route)
      const N = 12
      for (let i = 0; i < N; i++) await readThenHangUp(d, `${route}?arg=/big.bin`, (i + 1) * 300 * 1024)
      let done = 0
      for (let t = 0; t < 25; t++) {
        done = await finished(d, route) - before
        if (done === N) break
        await sleep(200)
      }
      assert.equal(done, N, `${N - done} of ${N} answers never ended`)
    })
  }
})
