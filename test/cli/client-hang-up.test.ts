/**
 * A reader that stops reading mid-file — `shoal cat FILE | head -c 1000`, a
 * browser cancelling a gateway download — is the client's choice, not a
 * failure of the daemon: it is logged at debug, not as an error with a
 * stack. Before, the API logged each one as `request failed` (a plain
 * `Error('client went away')`, taken for an internal error) and the gateway
 * as `gateway request failed` (an AggregateError of the abort and the
 * stream's premature close): a soak of `cat | head` filled the log with
 * error-level stack traces. Real daemon, real CLI, real gateway.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { SHOAL_BIN, shoalJson, sleep, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'
import { gatewayOf } from '../node/gateway/helpers.js'

/** `shoal cat PATH` whose stdout we close after its first bytes; its exit code. */
async function catThenHangUp (repo: string, path: string): Promise<number | null> {
  const child = spawn(process.execPath, [SHOAL_BIN, '--repo', repo, 'cat', path], { stdio: ['ignore', 'pipe', 'ignore'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  try {
    child.stdout.once('data', () => { child.stdout.destroy() })
    return await new Promise(resolve => child.once('close', code => { resolve(code) }))
  } finally {
    clearTimeout(timer)
  }
}

/** GET `url` and destroy the connection after the first bytes of the body. */
async function getThenHangUp (url: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = request(url, res => {
      res.once('data', () => { req.destroy(); resolve() })
      res.once('end', () => { reject(new Error('the whole body arrived before the hang-up')) })
    })
    req.on('error', () => {})
    req.setTimeout(30_000, () => { req.destroy(); reject(new Error('no answer')) })
    req.end()
  })
}

/** The daemon's log lines at error level (pino level 50) or above. */
function errorLines (d: TestDaemon): string[] {
  const { stdout, stderr } = d.output()
  return `${stdout}\n${stderr}`.split('\n').filter(line => /"level":(50|60)/.test(line))
}

describe('a client that hangs up mid-file', () => {
  const ctx = suiteContext()
  const TEST = { timeout: 90_000 }
  let d: TestDaemon
  let cid: string
  before(async () => {
    d = await startDaemon(ctx)
    const dir = await tempDir(ctx)
    await writeFile(join(dir, 'big.bin'), randomBytes(16 * 1024 * 1024))
    cid = (await shoalJson<{ cid: string }>(d.repo, ['add', join(dir, 'big.bin'), '--to', '/big.bin', '--pin', 'none'])).cid
  })

  it('is no error in the log: shoal cat | head, and a gateway download cut off', TEST, async () => {
    for (let i = 0; i < 3; i++) await catThenHangUp(d.repo, '/big.bin')
    const gateway = await gatewayOf(d.repo)
    for (let i = 0; i < 3; i++) await getThenHangUp(`${gateway}/ipfs/${cid}`)
    // the daemon notices each hang-up at its next write: give it that moment
    await sleep(1000)
    assert.deepEqual(errorLines(d), [])
    // and it still serves whole reads
    const whole = await shoalJson<{ size: number }>(d.repo, ['stat', '/big.bin'])
    assert.equal(whole.size, 16 * 1024 * 1024)
  })
})
