/**
 * `shoal daemon` runs in a child `node` with the daemon's heap flags; the
 * CLI process forwards signals, and the child stops cleanly when the CLI
 * process dies, even by SIGKILL.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { commandOf, DAEMON_NODE_FLAGS, shouldRelaunch } from '../../cli/relaunch.js'
import { exists, sleep, startDaemon } from '../helpers/cli.js'

const TEST = { timeout: 60_000 }

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

describe('daemon relaunch', () => {
  it('finds the command word after global options', () => {
    assert.equal(commandOf(['node', 'shoal', '--repo', '/r', 'daemon']), 'daemon')
    assert.equal(commandOf(['node', 'shoal', '--json', 'daemon', '--init']), 'daemon')
    assert.equal(commandOf(['node', 'shoal', '--repo', 'daemon', 'cat', 'daemon']), 'cat')
    assert.equal(commandOf(['node', 'shoal', 'cat', 'daemon']), 'cat')
    assert.equal(commandOf(['node', 'shoal']), undefined)
  })

  it('relaunches only `daemon`, once', () => {
    const argv = ['node', 'shoal', 'daemon']
    assert.equal(shouldRelaunch(argv, {}, []), true)
    assert.equal(shouldRelaunch(['node', 'shoal', 'add', 'f'], {}, []), false)
    assert.equal(shouldRelaunch(argv, { SHOAL_DAEMON_CHILD: '1' }, []), false)
    assert.equal(shouldRelaunch(argv, { SHOAL_NO_RELAUNCH: '1' }, []), false)
    assert.equal(shouldRelaunch(argv, {}, [...DAEMON_NODE_FLAGS]), false)
  })

  it('runs the node in a child with the heap flags, which stops when the CLI process is killed', TEST, async t => {
    const d = await startDaemon(t)
    const pid = Number((await readFile(join(d.repo, 'daemon.lock'), 'utf8')).trim())
    assert.ok(Number.isSafeInteger(pid) && pid !== d.child.pid, 'the lock is held by a child process')
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    for (const flag of DAEMON_NODE_FLAGS) assert.ok(cmdline.includes(flag), `child runs with ${flag}: ${cmdline.join(' ')}`)

    assert.deepEqual(await d.stop('SIGKILL'), { code: null, signal: 'SIGKILL' })
    const deadline = Date.now() + 20_000
    while (alive(pid) && Date.now() < deadline) await sleep(50)
    assert.equal(alive(pid), false, 'the daemon child exited after its parent was killed')
    assert.equal(await exists(join(d.repo, 'daemon.lock')), false, 'it released the repo lock on the way out')

    // and the repo opens again
    const again = await startDaemon(t, d.repo)
    assert.deepEqual(await again.stop('SIGTERM'), { code: 0, signal: null })
  })
})
