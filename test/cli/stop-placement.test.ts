/**
 * A daemon stopped right after an add places the file first: `shoal add`
 * returns once the file is durable here and places it in the background,
 * so a user who adds a file and stops the daemon (a laptop shut down, a
 * service restarted) left it on that node only — unreadable on every other
 * node until the next start. The stop now waits for that placement, at most
 * half of the shutdown timeout, and says when it gives up (the next start
 * places what is left), or when files wait for holders (a holder gone).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { defer, tempDir, type CleanupContext } from '../helpers/temp.js'
import { forceUnmount, requireFuse } from '../node/fuse/helpers.js'
import { eventually, initSwarm, shoalJson, shoalOk, startDaemon, type TestDaemon } from '../helpers/cli.js'
import { childrenOf } from '../helpers/processes.js'

const TEST = { timeout: 120_000 }

/** Connect `a` to `b` and wait until `a` lists `b` among its peers. */
async function connect (a: TestDaemon, b: TestDaemon): Promise<void> {
  const id = await shoalJson<{ id: string, addresses: string[] }>(b.repo, ['id'])
  await shoalOk(a.repo, ['peers', 'connect', id.addresses[0]])
  await eventually('a lists b as a peer', async () => {
    const peers = await shoalJson<Array<{ id?: string, peer?: string }>>(a.repo, ['peers', 'ls'])
    return peers.some(p => (p.id ?? p.peer) === id.id)
  })
}

/** Two connected daemons of one private swarm in a fresh dir; `a` with `envA` added to its environment. */
async function twoNodes (t: CleanupContext, envA: Record<string, string>): Promise<{ dir: string, a: TestDaemon, b: TestDaemon }> {
  const dir = await tempDir(t, 'shoal-stop-placement-')
  const [repoA, repoB] = await initSwarm(dir, ['a', 'b'])
  const a = await startDaemon(t, repoA, { env: envA })
  const b = await startDaemon(t, repoB)
  await connect(a, b)
  return { dir, a, b }
}

/**
 * Add a random file of `mib` MiB to `a` as `/name`, `replicas:2` (its copy goes to `holder` in the
 * background, after the add returns); the pid of the holder's node process, for the test to signal.
 */
async function addWithHolder (dir: string, a: TestDaemon, holder: TestDaemon, file: { name: string, mib: number }): Promise<number> {
  const path = join(dir, file.name)
  await writeFile(path, randomBytes(file.mib * 1024 * 1024))
  const node = (await childrenOf(holder.child.pid ?? -1))[0] ?? holder.child.pid
  assert.ok(node !== undefined, 'the holder runs')
  await shoalOk(a.repo, ['add', path, '--to', `/${file.name}`, '--pin', 'replicas:2'])
  return node
}

function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

describe('a daemon stopped right after an add', () => {
  it('killed (SIGKILL of `shoal daemon`) while it places: a start at once waits for its stop, and its mount comes back', TEST, async t => {
    await requireFuse()
    // a shutdown timeout of 20 s: the placement is waited for 10 s, room for the new start to reach the lock
    const { dir, a, b } = await twoNodes(t, { SHOAL_SHUTDOWN_TIMEOUT: '20' })
    const mnt = join(dir, 'mnt')
    await mkdir(mnt)
    defer(t, async () => { await forceUnmount(mnt) })
    await shoalOk(a.repo, ['mount', mnt])
    const bNode = await addWithHolder(dir, a, b, { name: 'k.bin', mib: 96 })
    // b stops answering: a's node, once its parent is killed, waits for the placement (10 s) before it lets the repo go
    process.kill(bNode, 'SIGSTOP')
    try {
      assert.deepEqual(await a.stop('SIGKILL'), { code: null, signal: 'SIGKILL' })
      // its node has begun to stop (it removes `<repo>/api` first, which the start below waits for anew)
      await eventually('the node began its stop', async () => await access(join(a.repo, 'api')).then(() => false, () => true))
      // started again at once, as a supervisor does: before, RepoLockedError while the node still stopped
      const again = await startDaemon(t, a.repo, { env: { SHOAL_SHUTDOWN_TIMEOUT: '20' } })
      assert.match(again.output().stderr, /the daemon that ran on this repo is stopping: waiting for it to release the repo/)
      // killed, not asked to stop: its mount is mounted again, as after a crash
      const mounts = await shoalJson<Array<{ dir: string }>>(again.repo, ['mounts'])
      assert.deepEqual(mounts.map(m => m.dir), [mnt])
    } finally {
      process.kill(bNode, 'SIGCONT')
    }
  })

  it('places the file on its holders before it exits: another node reads it while the writer is away', TEST, async t => {
    const { dir, a, b } = await twoNodes(t, { SHOAL_LOG_LEVEL: 'info' })

    // large enough that its placement is still under way when the stop comes
    const bytes = randomBytes(64 * 1024 * 1024)
    const file = join(dir, 'f.bin')
    await writeFile(file, bytes)
    // replicas:2 on two nodes: b gets a whole copy, once placed (the add does not wait for it)
    await shoalOk(a.repo, ['add', file, '--to', '/f.bin', '--pin', 'replicas:2'])
    const exit = await a.stop()
    assert.deepEqual(exit, { code: 0, signal: null }, `a stops cleanly: ${a.output().stderr}`)
    assert.match(a.output().stderr, /placing the files added just before on their holders first/)
    assert.match(a.output().stderr, /the placement of the files added just before is done/)

    // a is gone: b reads the file from its own copy
    const read = await shoalOk(b.repo, ['cat', '/f.bin'], { timeoutMs: 60_000 })
    assert.equal(read.length, bytes.length)
    assert.equal(sha256(read), sha256(bytes))
  })

  it('says how many files wait for holders when a holder is gone before their placement ends (not that all is placed), and exits cleanly', TEST, async t => {
    const { dir, a, b } = await twoNodes(t, { SHOAL_LOG_LEVEL: 'info' })
    const bNode = await addWithHolder(dir, a, b, { name: 'h.bin', mib: 64 })
    // b is gone before a's placement to it can end: its process killed, its connections closed at once
    process.kill(bNode, 'SIGKILL')
    const exit = await a.stop()
    assert.deepEqual(exit, { code: 0, signal: null }, `a stops cleanly: ${a.output().stderr}`)
    assert.match(a.output().stderr, /the placement of the files added just before is done; 1 of them waits on this node for holders/)
    assert.doesNotMatch(a.output().stderr, /the placement of the files added just before is done \(/)
  })

  it('gives up after half the shutdown timeout when a holder does not answer, says so, and exits cleanly', TEST, async t => {
    // a shutdown timeout of 8 s: the placement is waited for 4 s
    const { dir, a, b } = await twoNodes(t, { SHOAL_SHUTDOWN_TIMEOUT: '8' })

    // large enough that its placement (a copy pushed to b) is under way when b stops answering
    const bNode = await addWithHolder(dir, a, b, { name: 'g.bin', mib: 96 })
    // b stops answering mid-placement (its node process is stopped, its connections stay open)
    process.kill(bNode, 'SIGSTOP')
    try {
      const started = Date.now()
      const exit = await a.stop()
      const took = Date.now() - started
      assert.deepEqual(exit, { code: 0, signal: null }, `a stops cleanly, not forced: ${a.output().stderr}`)
      assert.match(a.output().stderr, /stopping before the files added last were placed/)
      assert.ok(took < 8_000, `the stop ends within the shutdown timeout (took ${took} ms)`)
    } finally {
      process.kill(bNode, 'SIGCONT')
    }
  })
})
