/**
 * A command whose stdout reader went away before it printed (`shoal repair
 * --wait | head -1`, `shoal swarm key new | true`) ends quietly with its own
 * exit code. Before, Node threw an unhandled `error` event (EPIPE): a stack
 * trace on stderr and exit code 1.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { SHOAL_BIN } from '../helpers/cli.js'

/** Run the CLI with its stdout closed on our side before it writes; its exit code and stderr. */
async function withClosedStdout (args: string[]): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, [SHOAL_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.destroy()
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  try {
    return await new Promise(resolve => child.once('close', code => { resolve({ code, stderr }) }))
  } finally {
    clearTimeout(timer)
  }
}

describe('a closed stdout', () => {
  it('ends the command quietly with its exit code', { timeout: 60_000 }, async () => {
    const r = await withClosedStdout(['swarm', 'key', 'new'])
    assert.equal(r.stderr, '')
    assert.equal(r.code, 0)
  })
})
