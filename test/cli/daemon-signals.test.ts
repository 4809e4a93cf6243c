/**
 * The daemon's node process lives exactly as long as the `shoal daemon`
 * that launched it: a SIGKILL of that CLI process at any moment (right
 * after it spawned the node process, during start-up, once ready) leaves
 * no node process, no repo lock and no bound API port behind; SIGINT is a
 * clean stop; a stuck shutdown is forced after the shutdown timeout, or at
 * once by a second signal, with a non-zero exit — but the same signal
 * reaching the node process twice (directly and through the CLI) within the
 * duplicate window is one request; under npx, a SIGTERM to npx stops the
 * daemon too.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DUPLICATE_SIGNAL_MS, SignalForwarder } from '../../cli/relaunch.js'
import { shutdownTimeoutMs } from '../../cli/daemon-process.js'
import { defer, tempDir, type CleanupContext } from '../helpers/temp.js'
import { exists, lines, SHOAL_BIN, shoalOk, sleep, startDaemon, within, type DaemonExit } from '../helpers/cli.js'
import { alive, childrenOf, cliEnv, launchShoal, until, type Launched } from '../helpers/processes.js'
import { unusedPort } from '../helpers/ports.js'

const TEST = { timeout: 120_000 }
/** The daemon's notices (a signal received…) are info lines of its log: the tests' daemons log at warn otherwise. */
const INFO = { SHOAL_LOG_LEVEL: 'info' }

/** What the daemon said on stderr, line by line: a JSON log line's `msg`, another line as it is. */
function messages (stderr: string): string[] {
  return lines(stderr).map(l => l.startsWith('{') ? String((JSON.parse(l) as { msg?: unknown }).msg) : l)
}
/** Bound for a process to go away after what should end it. */
const GONE_MS = 30_000

/** A repo whose API has a fixed port: a daemon that leaves it bound makes the next start fail. */
async function repoWithFixedPort (t: CleanupContext): Promise<{ repo: string, port: number }> {
  const repo = join(await tempDir(t, 'shoal-signals-'), 'repo')
  const port = await unusedPort()
  await shoalOk(repo, ['init', '--api', `127.0.0.1:${port}`, '--listen', '/ip4/127.0.0.1/tcp/0'])
  return { repo, port }
}

/** `shoal daemon` on `repo`, not waited for. */
function launch (t: CleanupContext, repo: string, extra: Record<string, string> = {}): Launched {
  return launchShoal(t, ['--repo', repo, 'daemon'], { ...INFO, ...extra })
}

/** The node process a `shoal daemon` CLI process started (waits for it to exist). */
async function nodeProcessOf (cli: ChildProcess): Promise<number> {
  let pid: number | undefined
  await until('the daemon\'s node process', async () => {
    pid = (await childrenOf(cli.pid ?? -1))[0]
    return pid !== undefined
  })
  return pid as number
}

/** After the CLI process was killed: its node process goes, the lock is released, and a new daemon starts on the repo's API port. */
async function assertFreed (t: CleanupContext, repo: string, port: number, pid: number): Promise<void> {
  await until(`node process ${pid} to exit`, () => !alive(pid), GONE_MS)
  assert.equal(await exists(join(repo, 'daemon.lock')), false, 'the repo lock is released')
  assert.equal(await exists(join(repo, 'api')), false, '<repo>/api is removed')
  const again = await startDaemon(t, repo, { env: INFO })
  assert.equal(new URL(again.url).port, String(port), 'the API port was free again')
  assert.deepEqual(await again.stop('SIGTERM'), { code: 0, signal: null })
}

describe('daemon signals', () => {
  for (const moment of ['right after it spawned the node process', 'during start-up (the lock is taken)', 'once ready'] as const) {
    it(`SIGKILL of the CLI process ${moment} leaves no node process, lock or API port`, TEST, async t => {
      const { repo, port } = await repoWithFixedPort(t)
      const d = launch(t, repo)
      const pid = await nodeProcessOf(d.process)
      if (moment === 'during start-up (the lock is taken)') await until('the repo lock', async () => await exists(join(repo, 'daemon.lock')))
      if (moment === 'once ready') await until('<repo>/api', async () => await exists(join(repo, 'api')))
      d.process.kill('SIGKILL')
      assert.deepEqual(await d.exited, { code: null, signal: 'SIGKILL' })
      await assertFreed(t, repo, port, pid)
    })
  }

  it('SIGINT stops the daemon cleanly: exit 0, one message, lock and api removed', TEST, async t => {
    const { repo } = await repoWithFixedPort(t)
    const d = await startDaemon(t, repo, { env: INFO })
    assert.deepEqual(await d.stop('SIGINT'), { code: 0, signal: null })
    // one format on stderr (not a terminal): the notice is a JSON log line like the rest
    assert.deepEqual(lines(d.output().stderr).filter(l => !l.startsWith('{')), [])
    assert.deepEqual(messages(d.output().stderr).filter(m => m.startsWith('received')), ['received SIGINT, shutting down'])
    assert.equal(await exists(join(repo, 'daemon.lock')), false)
    assert.equal(await exists(join(repo, 'api')), false)
  })

  it('SIGINT during start-up stops the daemon cleanly, and the repo opens again', TEST, async t => {
    const { repo, port } = await repoWithFixedPort(t)
    const d = launch(t, repo)
    const pid = await nodeProcessOf(d.process)
    await until('the repo lock', async () => await exists(join(repo, 'daemon.lock')))
    d.process.kill('SIGINT')
    assert.deepEqual(await d.exited, { code: 0, signal: null })
    assert.match(d.stderr(), /received SIGINT, shutting down/)
    await assertFreed(t, repo, port, pid)
  })

  it('a shutdown that hangs is forced after the shutdown timeout, exit 1, and the repo opens again', TEST, async t => {
    const { repo, port } = await repoWithFixedPort(t)
    const d = await startDaemon(t, repo, { env: { ...INFO, SHOAL_FAULT_HANG_SHUTDOWN: '1', SHOAL_SHUTDOWN_TIMEOUT: '2' } })
    const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
    assert.deepEqual(await d.stop('SIGTERM'), { code: 1, signal: null })
    assert.match(d.output().stderr, /^shoal: shutdown did not finish within 2 s; exiting without a clean shutdown \(ShutdownForcedError\)$/m)
    await assertFreed(t, repo, port, pid)
  })

  it('a second signal forces a hanging shutdown at once, exit 1', TEST, async t => {
    const { repo, port } = await repoWithFixedPort(t)
    // a timeout far beyond the test's bound: only the second signal can end it
    const d = await startDaemon(t, repo, { env: { ...INFO, SHOAL_FAULT_HANG_SHUTDOWN: '1', SHOAL_SHUTDOWN_TIMEOUT: '3600' } })
    const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
    d.child.kill('SIGTERM')
    await until('the shutdown to begin', () => d.output().stderr.includes('received SIGTERM, shutting down'))
    d.child.kill('SIGINT')
    const exit = await within(new Promise<DaemonExit>(resolve => d.child.once('exit', (code, signal) => resolve({ code, signal }))), GONE_MS)
    assert.deepEqual(exit, { code: 1, signal: null })
    assert.match(d.output().stderr, /received SIGINT again; exiting without a clean shutdown/)
    await assertFreed(t, repo, port, pid)
  })

  it('SIGTERM to the node process and to the CLI together (kill of both, a group signal) is one request: a clean exit 0', TEST, async t => {
    const { repo, port } = await repoWithFixedPort(t)
    // the shutdown waits for this file: both signals arrive while it is under way
    const gate = join(await tempDir(t, 'shoal-gate-'), 'release')
    const d = await startDaemon(t, repo, { env: { ...INFO, SHOAL_FAULT_HOLD_SHUTDOWN: gate } })
    const exited = new Promise<DaemonExit>(resolve => d.child.once('exit', (code, signal) => resolve({ code, signal })))
    const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
    process.kill(pid, 'SIGTERM')
    // the first one handled before the repeat is sent (two pending at once would be merged by the kernel)
    await until('the shutdown to begin', () => d.output().stderr.includes('received SIGTERM, shutting down'))
    d.child.kill('SIGTERM')
    await until('the forwarded repeat to arrive', () => d.output().stderr.includes(`received SIGTERM again within ${DUPLICATE_SIGNAL_MS} ms: the same request`), GONE_MS)
    await writeFile(gate, '')
    const exit = await within(exited, GONE_MS)
    assert.deepEqual(exit, { code: 0, signal: null }, d.output().stderr)
    assert.doesNotMatch(d.output().stderr, /ShutdownForcedError/)
    assert.equal(messages(d.output().stderr).filter(m => m === 'received SIGTERM, shutting down').length, 1)
    await assertFreed(t, repo, port, pid)
  })

  it('the same signal twice, further apart than the duplicate window, forces a hanging shutdown, exit 1', TEST, async t => {
    const { repo, port } = await repoWithFixedPort(t)
    const d = await startDaemon(t, repo, { env: { ...INFO, SHOAL_FAULT_HANG_SHUTDOWN: '1', SHOAL_SHUTDOWN_TIMEOUT: '3600' } })
    const exited = new Promise<DaemonExit>(resolve => d.child.once('exit', (code, signal) => resolve({ code, signal })))
    const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
    process.kill(pid, 'SIGTERM')
    await until('the shutdown to begin', () => d.output().stderr.includes('received SIGTERM, shutting down'))
    // past the window (a lower bound: any delay only makes the repeat later)
    await sleep(DUPLICATE_SIGNAL_MS + 100)
    process.kill(pid, 'SIGTERM')
    const exit = await within(exited, GONE_MS)
    assert.deepEqual(exit, { code: 1, signal: null })
    assert.match(d.output().stderr, /^shoal: received SIGTERM again; exiting without a clean shutdown \(ShutdownForcedError\)$/m)
    await assertFreed(t, repo, port, pid)
  })

  for (const [signal, why] of [
    ['SIGTERM', 'npm forwards it to a shell that does not pass it on'],
    ['SIGKILL', 'the shell npm ran us under lives on, re-parented']
  ] as const) {
  it(`under npx, ${signal} to npx alone stops the daemon (${why})`, TEST, async t => {
    const { repo, port } = await repoWithFixedPort(t)
    // a project with shoal installed as a dependency's bin, as `npx shoal` finds it
    const project = await tempDir(t, 'shoal-npx-')
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'npx-project', version: '1.0.0', private: true }))
    await mkdir(join(project, 'node_modules', '.bin'), { recursive: true })
    const bin = join(project, 'node_modules', '.bin', 'shoal')
    await writeFile(bin, `#!/bin/sh\nexec '${process.execPath}' '${SHOAL_BIN}' "$@"\n`)
    await chmod(bin, 0o755)
    const npx = spawn('npx', ['--no-install', 'shoal', '--repo', repo, 'daemon'], { cwd: project, env: cliEnv(), stdio: 'ignore', detached: true })
    const exited = new Promise<DaemonExit>(resolve => npx.once('exit', (code, signal) => resolve({ code, signal })))
    const pids: number[] = []
    defer(t, async () => {
      try { process.kill(-(npx.pid ?? 0), 'SIGKILL') } catch {}
      for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL')
    })
    await until('<repo>/api', async () => await exists(join(repo, 'api')))
    const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
    pids.push(pid)
    npx.kill(signal)
    await exited
    await assertFreed(t, repo, port, pid)
  })
  }

  it('a repeat of the same signal within the duplicate window is not forwarded again; another signal is', () => {
    let now = 0
    const f = new SignalForwarder(() => now)
    assert.equal(f.accept('SIGINT'), true)
    now += DUPLICATE_SIGNAL_MS - 1
    assert.equal(f.accept('SIGINT'), false, 'the same Ctrl-C from the terminal and from a launcher')
    assert.equal(f.accept('SIGTERM'), true)
    now += DUPLICATE_SIGNAL_MS
    assert.equal(f.accept('SIGTERM'), true, 'a later repeat is a second request')
  })

  it('SHOAL_SHUTDOWN_TIMEOUT is a positive number of seconds; anything else is refused', () => {
    assert.equal(shutdownTimeoutMs({}), 30_000)
    assert.equal(shutdownTimeoutMs({ SHOAL_SHUTDOWN_TIMEOUT: '2.5' }), 2500)
    for (const bad of ['0', '-1', 'soon', '1e3', ' ']) {
      assert.throws(() => shutdownTimeoutMs({ SHOAL_SHUTDOWN_TIMEOUT: bad }), { name: 'InvalidArgumentError' }, bad)
    }
  })
})
