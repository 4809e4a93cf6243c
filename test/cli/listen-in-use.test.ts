/**
 * A daemon whose swarm or API address another process holds: it stops at
 * start with one line naming the address and the `shoal config set` that
 * moves it, and leaves nothing behind (no `<repo>/api`, the lock released).
 * Before, a taken swarm port ended in libp2p's paragraph advising a libp2p
 * option, and a taken API port advised `shoal init`, which refuses an
 * existing repo.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { tempDir, defer, type CleanupContext } from '../helpers/temp.js'
import { exists, runShoal, shoalOk, startDaemon } from '../helpers/cli.js'

const TEST = { timeout: 120_000 }

/** A plain TCP server holding a free port of 127.0.0.1 until the test ends. */
async function holdPort (t: CleanupContext): Promise<number> {
  const server: Server = createServer(socket => socket.destroy())
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  defer(t, async () => { await new Promise<void>(resolve => server.close(() => resolve())) })
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  return address.port
}

/** Start `shoal daemon` on `repo`, expecting it to refuse: its result. */
async function refusedStart (t: CleanupContext, repo: string): Promise<{ code: number | null, lines: string[] }> {
  // should it start after all, it is stopped when the test ends (by the pid in its lock)
  defer(t, async () => {
    const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8').catch(() => '')).trim())
    if (pid > 0) { try { process.kill(pid, 'SIGKILL') } catch {} }
  })
  const r = await runShoal(['--repo', repo, 'daemon'], { env: { SHOAL_LOG_LEVEL: 'silent' }, timeoutMs: 60_000 })
  assert.equal(await exists(join(repo, 'api')), false, 'no <repo>/api: the daemon never said it was ready')
  assert.equal(await exists(join(repo, 'daemon.lock')), false, 'the lock is released')
  return { code: r.code, lines: r.stderr.trim().split('\n') }
}

describe('listen addresses held by another process', () => {
  it('a taken swarm port: one line naming it and `shoal config set listen`, exit 1', TEST, async t => {
    const repo = join(await tempDir(t, 'shoal-listen-'), 'repo')
    const port = await holdPort(t)
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', `/ip4/127.0.0.1/tcp/${port}`])
    const r = await refusedStart(t, repo)
    assert.equal(r.code, 1)
    assert.deepEqual(r.lines, [`shoal: swarm listen address /ip4/127.0.0.1/tcp/${port} is already in use (another Shoal or IPFS node on this machine?): set others with \`shoal config set listen /ip4/0.0.0.0/tcp/PORT\` (a JSON list for several) (SwarmAddressInUseError)`])
    // what it says works: the same repo starts once moved
    await shoalOk(repo, ['config', 'set', 'listen', '/ip4/127.0.0.1/tcp/0'])
    await startDaemon(t, repo)
  })

  it('a taken API port: one line naming it and `shoal config set api`, exit 1', TEST, async t => {
    const repo = join(await tempDir(t, 'shoal-listen-'), 'repo')
    const port = await holdPort(t)
    await shoalOk(repo, ['init', '--api', `127.0.0.1:${port}`, '--listen', '/ip4/127.0.0.1/tcp/0'])
    const r = await refusedStart(t, repo)
    assert.equal(r.code, 1)
    assert.deepEqual(r.lines, [`shoal: API address 127.0.0.1:${port} is already in use: set another with \`shoal config set api 127.0.0.1:PORT\` (ApiAddressInUseError)`])
    await shoalOk(repo, ['config', 'set', 'api', '127.0.0.1:0'])
    await startDaemon(t, repo)
  })
})
