/**
 * The shared namespace through the CLI alone: three daemons of one private
 * swarm (so each trusts the others' writes) converge, a concurrent write to
 * one path leaves a visible conflict with both versions readable
 * everywhere, and moves, deletes and a resolution propagate.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { shoalJson, shoalOk, sleep, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'
import type { ConflictInfo } from '../../node/namespace/index.js'

const TEST = { timeout: 60_000 }

/** Poll `fn` until it returns true; fail after `ms`, showing the last value. */
async function eventually (what: string, fn: () => Promise<unknown>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  let last: unknown
  while (Date.now() < deadline) {
    last = await fn().catch(err => err)
    if (last === true) return
    await sleep(200)
  }
  assert.fail(`${what}: not true after ${ms} ms (last: ${String(last)})`)
}

async function names (d: TestDaemon, dir = '/'): Promise<string[]> {
  return (await shoalJson<Array<{ name: string }>>(d.repo, ['ls', dir])).map(e => e.name).sort()
}

describe('the shared namespace driven through the CLI', () => {
  const ctx = suiteContext()
  let a: TestDaemon, b: TestDaemon, c: TestDaemon
  let dir: string

  before(async () => {
    dir = await tempDir(ctx, 'shoal-ns-')
    const repos = ['a', 'b', 'c'].map(n => join(dir, n))
    // one private swarm: every holder of its key is a trusted writer (in an open swarm each node would apply only its own writes)
    const key = join(dir, 'swarm.key')
    await writeFile(key, await shoalOk(dir, ['swarm', 'key', 'new']))
    await Promise.all(repos.map(async r => await shoalOk(r, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--swarm-key', key])))
    ;[a, b, c] = await Promise.all(repos.map(async r => await startDaemon(ctx, r)))
  })

  it('concurrent writes to one path converge to one winner and a conflict copy, both readable on every node', TEST, async () => {
    await writeFile(join(dir, 'from-a.txt'), 'written on a\n')
    await writeFile(join(dir, 'from-b.txt'), 'written on b, a little later\n')
    await writeFile(join(dir, 'only-a.txt'), 'only on a\n')
    // a and b are not connected yet: their writes to /notes.txt are concurrent
    await shoalOk(a.repo, ['add', join(dir, 'from-a.txt'), '--to', '/notes.txt'])
    await shoalOk(b.repo, ['add', join(dir, 'from-b.txt'), '--to', '/notes.txt'])
    await shoalOk(a.repo, ['add', join(dir, 'only-a.txt'), '--to', '/docs/only-a.txt'])
    const aAddr = (await shoalJson(a.repo, ['id'])).addresses[0]
    await shoalOk(b.repo, ['peers', 'connect', aAddr])
    await shoalOk(c.repo, ['peers', 'connect', aAddr])

    for (const d of [a, b, c]) {
      await eventually(`conflict visible on ${d.repo}`, async () => (await shoalJson<ConflictInfo[]>(d.repo, ['conflicts'])).length === 1)
    }
    const [conflict] = await shoalJson<ConflictInfo[]>(c.repo, ['conflicts'])
    assert.equal(conflict.path, '/notes.txt')
    assert.match(conflict.copy, /^\/notes\.conflict-[^/]+-\d{8}-\d{6}\.txt$/)
    for (const d of [a, b, c]) {
      assert.deepEqual(await names(d), ['docs', 'notes.txt', conflict.copy.slice(1)].sort())
      const versions = [(await shoalOk(d.repo, ['cat', '/notes.txt'])).toString(), (await shoalOk(d.repo, ['cat', conflict.copy])).toString()].sort()
      assert.deepEqual(versions, ['written on a\n', 'written on b, a little later\n'])
    }
    const text = (await shoalOk(c.repo, ['conflicts'])).toString()
    assert.match(text, /conflicts with \/notes\.txt/)
  })

  it('moves and deletes on one node propagate; resolving the conflict is an ordinary write', TEST, async () => {
    await shoalOk(c.repo, ['mv', '/docs', '/archive'])
    await eventually('the move reached a', async () => JSON.stringify(await names(a, '/archive')) === '["only-a.txt"]')
    assert.equal((await shoalOk(a.repo, ['cat', '/archive/only-a.txt'])).toString(), 'only on a\n')
    const [conflict] = await shoalJson<ConflictInfo[]>(a.repo, ['conflicts'])
    await shoalOk(b.repo, ['rm', conflict.copy])
    for (const d of [a, b, c]) {
      await eventually(`resolved on ${d.repo}`, async () => (await shoalJson<ConflictInfo[]>(d.repo, ['conflicts'])).length === 0)
    }
    await shoalOk(a.repo, ['rm', '-r', '/archive'])
    await eventually('the delete reached c', async () => JSON.stringify(await names(c)) === '["notes.txt"]')
    const status = await shoalJson(c.repo, ['status'])
    assert.ok(status.namespace.entries >= 5, JSON.stringify(status.namespace))
  })
})
