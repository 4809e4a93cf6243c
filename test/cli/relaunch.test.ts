/**
 * `shoal daemon` runs in a child `node` with the daemon's heap flags; the
 * CLI process forwards signals, and the child stops cleanly when the CLI
 * process dies, even by SIGKILL. The child gets glibc's malloc settings for
 * the data path (cli/malloc-tunables.ts) unless the user chose some.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { commandOf, DAEMON_NODE_FLAGS, daemonChildArgs, daemonNodeFlags, shouldRelaunch } from '../../cli/relaunch.js'
import { DAEMON_MALLOC_TUNABLES, MMAP_THRESHOLD, withMallocTunables } from '../../cli/malloc-tunables.js'
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

  it('runs the child with the heap flag and V8\'s pool at the cores, never over the user\'s own', () => {
    const argv = ['/usr/bin/node', '/opt/shoal/bin.js', 'daemon', '--init']
    assert.deepEqual(daemonChildArgs({ execArgv: [], argv, env: {}, cores: 2 }), [...DAEMON_NODE_FLAGS, '--v8-pool-size=2', '/opt/shoal/bin.js', 'daemon', '--init'])
    assert.deepEqual(daemonNodeFlags(1), [...DAEMON_NODE_FLAGS, '--v8-pool-size=1'])
    assert.deepEqual(daemonNodeFlags(64), [...DAEMON_NODE_FLAGS, '--v8-pool-size=4'], 'never more than Node\'s own pool')
    // the user's own values, on node's command line or in NODE_OPTIONS, stay and are not doubled
    assert.deepEqual(daemonChildArgs({ execArgv: ['--v8-pool-size=8'], argv, env: {}, cores: 2 }), [...DAEMON_NODE_FLAGS, '--v8-pool-size=8', '/opt/shoal/bin.js', 'daemon', '--init'])
    assert.deepEqual(daemonChildArgs({ execArgv: [], argv, env: { NODE_OPTIONS: ' --max-old-space-size=512  --initial-old-space-size=64 ' }, cores: 2 }), ['--v8-pool-size=2', '/opt/shoal/bin.js', 'daemon', '--init'])
  })

  it('adds the malloc settings to the child\'s environment, never over the user\'s', () => {
    assert.equal(withMallocTunables({ PATH: '/bin' }).GLIBC_TUNABLES, DAEMON_MALLOC_TUNABLES)
    assert.match(DAEMON_MALLOC_TUNABLES, /^glibc\.malloc\.mmap_threshold=\d+:glibc\.malloc\.trim_threshold=\d+$/)
    // other tunables of the user's are kept, ours added after them
    assert.equal(withMallocTunables({ GLIBC_TUNABLES: 'glibc.pthread.rseq=0' }).GLIBC_TUNABLES, `glibc.pthread.rseq=0:${DAEMON_MALLOC_TUNABLES}`)
    // a malloc setting of the user's: nothing added
    const own = { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }
    assert.equal(withMallocTunables(own), own)
    assert.equal(withMallocTunables({ MALLOC_ARENA_MAX: '2' }).GLIBC_TUNABLES, undefined)
    assert.equal(withMallocTunables({ MALLOC_MMAP_THRESHOLD_: '1048576' }).GLIBC_TUNABLES, undefined)
    // the systemd unit, which runs the daemon in place, sets the same
    const unit = readFileSync(fileURLToPath(new URL('../../../contrib/shoal.service', import.meta.url)), 'utf8')
    assert.ok(unit.split('\n').includes(`Environment=GLIBC_TUNABLES=${DAEMON_MALLOC_TUNABLES}`), 'contrib/shoal.service sets the malloc settings')
    const env = { HOME: '/h' }
    withMallocTunables(env)
    assert.deepEqual(env, { HOME: '/h' }, 'the given environment is not changed')
  })

  it('runs the node in a child with the heap flags, which stops when the CLI process is killed', TEST, async t => {
    const d = await startDaemon(t)
    const pid = Number((await readFile(join(d.repo, 'daemon.lock'), 'utf8')).trim())
    assert.ok(Number.isSafeInteger(pid) && pid !== d.child.pid, 'the lock is held by a child process')
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    for (const flag of daemonNodeFlags()) assert.ok(cmdline.includes(flag), `child runs with ${flag}: ${cmdline.join(' ')}`)
    // glibc cuts the variable's text in place as it parses it: the first setting is what stays visible
    const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0')
    const ours = environ.some(e => DAEMON_MALLOC_TUNABLES.startsWith(e.slice('GLIBC_TUNABLES='.length)) && e.startsWith(`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=${MMAP_THRESHOLD}`))
    // a machine whose environment sets malloc parameters already keeps its own (withMallocTunables)
    const expected = withMallocTunables(process.env) !== process.env
    assert.equal(ours, expected, `the child runs with the malloc settings unless the environment has its own: ${environ.filter(e => e.startsWith('GLIBC') || e.startsWith('MALLOC')).join(' ')}`)

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
