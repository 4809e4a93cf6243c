/**
 * A download whose local write fails while the daemon is still sending
 * (`get -o` or `car export -o` onto a full device, a tree onto a full disk)
 * fails with the writer's error: one `LocalWriteError` line naming the
 * user's path, exit 1, nothing kept. Before, a write that failed before the
 * answer was complete was taken for a cut answer, and the daemon's reason
 * was asked for: it had seen only its reader go, so the user read
 * `client went away (InternalError)`; a file of a tree was named by its
 * staging path.

 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { lstat, mkdir, readdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import { ApiClient } from '../../cli/client.js'
import { STREAM_ID_HEADER } from '../../node/api/stream-errors.js'
import { randomBytes } from '../helpers/bytes.js'
import { mountTmpfs, tempDir } from '../helpers/temp.js'
import { lines, runShoal, shoalOk, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'

const TEST = { timeout: 60_000 }
const MiB = 1024 * 1024

/** The one `shoal:` line of a failed command, with its exit code checked (1, nothing on stdout). */
function failedWith (r: { code: number | null, stdout: Buffer, stderr: string }, what: string): string {
  assert.equal(r.code, 1, `${what}: ${r.stderr}`)
  const said = lines(r.stderr).filter(l => l.startsWith('shoal:'))
  assert.equal(said.length, 1, `${what}: one line: ${r.stderr}`)
  assert.equal(r.stdout.byteLength, 0, `${what}: nothing on stdout`)
  return said[0]
}

describe('a download whose local write fails mid-answer', () => {
  const ctx = suiteContext()
  let d: TestDaemon
  let dir: string

  before(async () => {
    dir = await tempDir(ctx, 'shoal-get-write-')
    const repo = join(dir, 'repo')
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    d = await startDaemon(ctx, repo)
    // larger than what the daemon sends before the first write fails
    await mkdir(join(dir, 'tree', 'sub'), { recursive: true })
    await writeFile(join(dir, 'tree', 'a.txt'), 'small\n')
    await writeFile(join(dir, 'tree', 'sub', 'big.bin'), randomBytes(4 * MiB, 1))
    await shoalOk(d.repo, ['add', join(dir, 'tree'), '--to', '/tree'])
  })

  it('get -o and car export -o onto a full device: a LocalWriteError, the device left as it is', TEST, async () => {
    const fullDev = join(dir, 'full')
    // a device node of our own, in the test's folder (CI runs as root): /dev itself is never touched
    execFileSync('mknod', ['-m', '666', fullDev, 'c', '1', '7'])
    for (const args of [['get', '/tree/sub/big.bin', '-o', fullDev], ['car', 'export', '/tree', '-o', fullDev]]) {
      const line = failedWith(await runShoal(['--repo', d.repo, ...args]), args.join(' '))
      assert.equal(line, `shoal: cannot write ${fullDev}: no space left on the device; nothing was kept (LocalWriteError)`, args.join(' '))
      assert.ok((await lstat(fullDev)).isCharacterDevice(), `${args.join(' ')}: still a device node`)
    }
  })

  it('get of a tree onto a full disk names the file as the user will find it, and keeps nothing', TEST, async () => {
    const disk = join(dir, 'disk')
    await mountTmpfs(ctx, disk, '1m')
    const out = join(disk, 'copy')
    const line = failedWith(await runShoal(['--repo', d.repo, 'get', '/tree', '-o', out]), 'get tree onto a full disk')
    assert.equal(line, `shoal: cannot write ${join(out, 'sub', 'big.bin')}: no space left on the device; nothing was kept (LocalWriteError)`)
    assert.deepEqual(await readdir(disk), [], 'no staging folder left')
  })

  it('the client gives the writer\'s error, not the reason a daemon gives for its reader going', TEST, async () => {
    // a daemon that streams until its reader goes, and then says only that it went
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/api/v0/stream/error') === true) {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ error: { name: 'InternalError', message: 'client went away' } }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', [STREAM_ID_HEADER]: 'one' })
      const chunk = Buffer.alloc(64 * 1024)
      const more = (): void => { while (!res.destroyed && res.write(chunk)); }
      res.on('drain', more)
      more()
    })
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
    try {
      const repo = join(dir, 'fake-repo')
      await mkdir(repo)
      await writeFile(join(repo, 'api'), `/ip4/127.0.0.1/tcp/${(server.address() as AddressInfo).port}`)
      await writeFile(join(repo, 'api.token'), 'token')
      const client = await ApiClient.connect(repo)
      const res = await client.send('GET', '/api/v0/cat', { arg: '/x' })
      const full = new Writable({
        write (_chunk, _encoding, done) { done(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' })) }
      })
      await assert.rejects(client.receive(res, new PassThrough(), full), (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, 'ENOSPC', `the writer's error, got ${err.name}: ${err.message}`)
        return true
      })
    } finally {
      server.closeAllConnections()
      await new Promise(resolve => { server.close(resolve) })
    }
  })
})
