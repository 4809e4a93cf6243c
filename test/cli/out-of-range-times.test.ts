/**
 * A time no date can show (above 8.64e15 ms), as a daemon of an older build
 * may hold from a peer: `shoal stat` and `shoal conflicts` print the number
 * and say what it is. Before, `toISOString` threw a RangeError and the
 * command failed, so one bad value from a peer kept a user from seeing the
 * file or the conflicts at all. A stand-in daemon on 127.0.0.1 answers with
 * such times (a real daemon refuses them at the wire now).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { runShoal, suiteContext } from '../helpers/cli.js'

const TEST = { timeout: 30_000 }
/** The largest time the wire formats took before (2^53 - 1), past what a date holds. */
const LATE = Number.MAX_SAFE_INTEGER
const CID = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'

describe('times no date can show, through the CLI', () => {
  const ctx = suiteContext()
  let repo: string
  let server: Server

  before(async () => {
    server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json')
      if (req.url?.startsWith('/api/v0/stat') === true) {
        res.end(JSON.stringify({ path: '/late.txt', name: 'late.txt', type: 'file', cid: CID, size: 3, mode: 0o644, mtime: LATE }))
      } else if (req.url?.startsWith('/api/v0/conflicts') === true) {
        res.end(JSON.stringify([
          { path: '/a.txt', copy: '/a.conflict-x-1.txt', author: '12D3KooWLate', time: LATE, cid: CID, size: 3 },
          { path: '/b.txt', copy: '/b.conflict-y-2.txt', author: '12D3KooWSane', time: 0, cid: CID, size: 3 }
        ]))
      } else {
        res.statusCode = 404
        res.end(JSON.stringify({ error: { name: 'NotFoundError', message: 'no such route' } }))
      }
    })
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
    repo = join(await tempDir(ctx, 'shoal-late-times-'), 'repo')
    await mkdir(repo)
    await writeFile(join(repo, 'api'), `/ip4/127.0.0.1/tcp/${(server.address() as AddressInfo).port}`)
    await writeFile(join(repo, 'api.token'), 'token')
  })

  after(async () => {
    server.closeAllConnections()
    await new Promise(resolve => { server.close(resolve) })
  })

  it('stat prints the mtime as a number and says it is not a date', TEST, async () => {
    const r = await runShoal(['--repo', repo, 'stat', '/late.txt'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout.toString(), new RegExp(`^  mtime: ${LATE} ms since the epoch \\(not a date\\)$`, 'm'))
  })

  it('conflicts lists every copy, the late one with its number, the others with their date', TEST, async () => {
    const r = await runShoal(['--repo', repo, 'conflicts'])
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.toString().trimEnd().split('\n')
    assert.equal(lines.length, 2)
    assert.ok(lines[0].includes(`by 12D3KooWLate at ${LATE} ms since the epoch (not a date)\t`), lines[0])
    assert.ok(lines[1].includes('by 12D3KooWSane at 1970-01-01T00:00:00.000Z\t'), lines[1])
  })
})
