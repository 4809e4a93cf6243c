/**
 * `--log-level` is a global option: it sets the daemon's log level (over
 * `$SHOAL_LOG_LEVEL` and the config), reaches the relaunched node process
 * wherever it stands on the command line, and a bad value — from the
 * option or the variable — is a one-line usage error that runs nothing.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { commandOf } from '../../cli/relaunch.js'
import { tempDir } from '../helpers/temp.js'
import { exists, lines, runShoal, shoalOk } from '../helpers/cli.js'
import { launchShoal, until } from '../helpers/processes.js'

const TEST = { timeout: 60_000 }

/** pino's level numbers. */
const LEVEL = { info: 30, error: 50 }

/** The JSON log lines of a daemon's stderr (stderr is a pipe: JSON). */
function logLines (stderr: string): Array<{ level: number, msg: string }> {
  return lines(stderr).filter(l => l.startsWith('{')).map(l => JSON.parse(l) as { level: number, msg: string })
}

describe('--log-level', () => {
  it('a bad level is a usage error, from the option or from $SHOAL_LOG_LEVEL, and runs nothing', TEST, async t => {
    const repo = join(await tempDir(t, 'shoal-log-level-'), 'repo')
    const r = await runShoal(['--repo', repo, '--log-level', 'loud', 'init'])
    assert.equal(r.code, 2)
    // one line, as every error is said (it began `error:`, commander's own)
    assert.deepEqual(lines(r.stderr), ['shoal: option \'--log-level <level>\' argument \'loud\' is invalid. Allowed choices are trace, debug, info, warn, error, fatal, silent. (UsageError)'])
    assert.equal(await exists(repo), false, 'init did not run')

    const e = await runShoal(['--repo', repo, 'init'], { env: { SHOAL_LOG_LEVEL: 'chatty' } })
    assert.equal(e.code, 2)
    assert.match(e.stderr, /value 'chatty' from env 'SHOAL_LOG_LEVEL' is invalid\. Allowed choices are trace, debug, info, warn, error, fatal, silent\./)
    assert.equal(await exists(repo), false)

    const j = await runShoal(['--repo', repo, '--json', '--log-level', 'loud', 'init'])
    assert.equal(j.code, 2)
    assert.equal(JSON.parse(j.stderr).error.name, 'UsageError')
  })

  it('sets the daemon\'s level over $SHOAL_LOG_LEVEL, in the relaunched node process', TEST, async t => {
    const repo = join(await tempDir(t, 'shoal-log-level-'), 'repo')
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    const levels = { quiet: 'error', verbose: 'info' } as const
    for (const [name, level] of Object.entries(levels)) {
      // the environment says the opposite: the option wins
      const d = launchShoal(t, ['--log-level', level, '--repo', repo, 'daemon'], { SHOAL_LOG_LEVEL: name === 'quiet' ? 'debug' : 'error' })
      await until('<repo>/api', async () => await exists(join(repo, 'api')))
      d.process.kill('SIGTERM')
      assert.deepEqual(await d.exited, { code: 0, signal: null })
      const logged = logLines(d.stderr())
      if (name === 'quiet') {
        assert.deepEqual(logged.filter(l => l.level < LEVEL.error), [], 'nothing below error')
      } else {
        assert.ok(logged.some(l => l.msg === 'daemon ready' && l.level === LEVEL.info), `info lines: ${d.stderr().slice(0, 500)}`)
      }
    }
  })

  it('is a global option that takes a value: the command word comes after it', () => {
    assert.equal(commandOf(['node', 'shoal', '--log-level', 'debug', 'daemon']), 'daemon')
    assert.equal(commandOf(['node', 'shoal', '--log-level', 'daemon', 'status']), 'status')
  })
})
