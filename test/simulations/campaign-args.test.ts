/**
 * `npm run sim` arguments: what a user mistypes gets one line naming the
 * option and exit code 2, never a stack trace or a run with a nonsense value.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseSimArgs, SimArgsError } from '../../simulations/campaign-args.js'

const runner = fileURLToPath(new URL('../../simulations/scale-run.js', import.meta.url))

describe('npm run sim arguments', () => {
  it('refuses unknown options, malformed and out-of-range values with a SimArgsError naming the option', () => {
    const bad: Array<[string[], RegExp]> = [
      [['--nodse', '10'], /nodse/],
      [['--nodes', 'ten'], /--nodes must be a whole number, not 'ten'/],
      [['--nodes', ''], /--nodes must be a whole number/],
      [['--nodes', '1'], /--nodes must be at least 2, not 1/],
      [['--interval', '0'], /--interval must be at least 1/],
      [['--degree=-3'], /--degree must be at least 1/],
      [['--seeds', '0'], /--seeds must be 1\.\.1000000/],
      [['--kind', 'nope', '--seed', '1'], /--kind must be namespace, scale, durability or all, not nope/],
      [['--nodes'], /--nodes/]
    ]
    for (const [args, message] of bad) {
      assert.throws(() => parseSimArgs(args), (err: unknown) => err instanceof SimArgsError && err.name === 'SimArgsError' && message.test(err.message), args.join(' '))
    }
  })

  it('reads good arguments as before and --help as its own mode', () => {
    assert.deepEqual(parseSimArgs(['--help']), { mode: 'help' })
    const c = parseSimArgs(['--nodes', '300', '--seed', '3', '--duration', '5000', '--writers', '200', '--interval', '20000'])
    assert.equal(c.mode, 'scale')
    if (c.mode === 'scale') assert.deepEqual([c.nodes, c.seed, c.duration, c.writers, c.interval, c.crashes], [300, 3, 5000, 200, 20000, 0])
    assert.ok(c.mode === 'scale' && c.partitionWriters === 200, 'every writer writes during the partition by default')
    const some = parseSimArgs(['--nodes', '300', '--writers', '200', '--partition-writers', '100'])
    assert.ok(some.mode === 'scale' && some.partitionWriters === 100)
    assert.throws(() => parseSimArgs(['--nodes', '300', '--writers', '20', '--partition-writers', '21']),
      (err: Error) => err.name === 'SimArgsError' && err.message === '--partition-writers (21) must be at most --writers (20)')
    const crashes = parseSimArgs(['--nodes', '300', '--crashes', '30'])
    assert.ok(crashes.mode === 'scale' && crashes.crashes === 30)
    assert.throws(() => parseSimArgs(['--nodes', '300', '--crashes', '-1']), (err: Error) => err.name === 'SimArgsError' && /--crashes/.test(err.message))
    const life = parseSimArgs(['--nodes', '300', '--crashes', '30', '--disk-losses', '20', '--restores', '21', '--joins', '22', '--leaves', '23', '--losses-together', '--skip-recovery'])
    assert.ok(life.mode === 'scale')
    if (life.mode === 'scale') assert.deepEqual(life.lifecycle, { diskLosses: 20, restores: 21, joins: 22, leaves: 23, lossesTogether: true, skipRecovery: true })
    const none = parseSimArgs(['--nodes', '300'])
    if (none.mode === 'scale') assert.deepEqual(none.lifecycle, { diskLosses: 0, restores: 0, joins: 0, leaves: 0, lossesTogether: false, skipRecovery: false })
    for (const [arg, message] of [['--disk-losses=-2', /--disk-losses must be at least 0/], ['--restores=some', /--restores must be a whole number, not 'some'/], ['--joins=1.5', /--joins must be a whole number/], ['--leaves=', /--leaves must be a whole number/]] as const) {
      assert.throws(() => parseSimArgs(['--nodes', '300', arg]), (err: Error) => err.name === 'SimArgsError' && message.test(err.message), arg)
    }
    assert.throws(() => parseSimArgs(['--nodes', '100', '--crashes', '40', '--disk-losses', '30', '--leaves', '30']),
      (err: Error) => err.name === 'SimArgsError' && err.message === '--crashes, --disk-losses, --restores and --leaves together (100) must be fewer than --nodes (100)')
  })

  it('the runner prints one line and exits 2 on bad arguments, and the usage on --help', () => {
    const bad = spawnSync(process.execPath, [runner, '--nodes', 'many'], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(bad.status, 2, bad.stderr)
    assert.equal(bad.stdout, '')
    assert.deepEqual(bad.stderr.trim().split('\n'), ["npm run sim: --nodes must be a whole number, not 'many' (--help lists the options)"])
    const help = spawnSync(process.execPath, [runner, '--help'], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(help.status, 0, help.stderr)
    assert.match(help.stdout, /^usage: npm run sim -- \[options\]/)
  })
})
