/**
 * The suite's preload (test/lean-harness.ts) keeps what the suite relies on
 * from node:test: tests nest in their suites and run, an error thrown in a
 * promise's continuation still fails the file, and the processes a test
 * starts do not inherit the preload.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from './helpers/temp.js'

const PRELOAD = `--import=${new URL('./lean-harness.js', import.meta.url).href}`

/** Run `source` as a test file with the preload in NODE_OPTIONS, as run.ts does: exit code and output. */
async function runFixture (dir: string, name: string, source: string): Promise<{ code: number | null, out: string }> {
  const file = join(dir, name)
  await writeFile(file, source)
  const child = spawn(process.execPath, [file], { env: { ...process.env, NODE_OPTIONS: PRELOAD, NODE_TEST_CONTEXT: undefined }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { out += s })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  clearTimeout(timer)
  return { code, out }
}

describe('the suite\'s lean harness', () => {
  it('tests nest in their suites and pass; the processes they start have no preload', async (t) => {
    const dir = await tempDir(t)
    const { code, out } = await runFixture(dir, 'nested.mjs', `
import { describe, it } from 'node:test'
import { execFileSync } from 'node:child_process'
describe('first', () => {
  it('one', async () => { await new Promise(resolve => setTimeout(resolve, 5)) })
  it('two', async () => { await Promise.all([1, 2].map(async n => n)) })
})
describe('second', () => {
  it('three', () => {
    const seen = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.env.NODE_OPTIONS))'], { encoding: 'utf8' })
    if (seen !== 'undefined') throw new Error('a child inherited NODE_OPTIONS ' + seen)
  })
})
`)
    assert.equal(code, 0, out)
    assert.match(out, /^ {4}ok 1 - one$/m)
    assert.match(out, /^ {4}ok 2 - two$/m)
    assert.match(out, /^ok 1 - first$/m)
    assert.match(out, /^ {4}ok 1 - three$/m)
    assert.match(out, /^ok 2 - second$/m)
    assert.match(out, /^# pass 3$/m)
  })

  it('an error thrown in a promise continuation a test started still fails the file', async (t) => {
    const dir = await tempDir(t)
    const { code, out } = await runFixture(dir, 'late-error.mjs', `
import { it } from 'node:test'
it('starts work it does not await', async () => {
  void Promise.resolve().then(() => { throw new Error('thrown late, unawaited') })
  await new Promise(resolve => setTimeout(resolve, 50))
})
`)
    assert.notEqual(code, 0, out)
    assert.match(out, /thrown late, unawaited/)
  })
})

