/**
 * GroupCommit (node/blocks/group-commit.ts): a writer's wait ends after a
 * commit that began after it asked; writers that ask while one waits to
 * begin share it; a failed commit fails exactly its writers. The commit is
 * a function that records when it began and ends when told (the real
 * store's commit is exercised by the exchange's push test).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { GroupCommit } from '../../../node/blocks/group-commit.js'

/** A commit function whose calls are listed and end when `finish` is called. */
function controlled (): { commit: () => Promise<void>, begun: number, finish: (err?: Error) => void } {
  const ends: Array<(err?: Error) => void> = []
  const c = {
    begun: 0,
    commit: async () => {
      c.begun++
      await new Promise<void>((resolve, reject) => { ends.push(err => { if (err === undefined) resolve(); else reject(err) }) })
    },
    finish: (err?: Error) => { const end = ends.shift(); assert.ok(end !== undefined, 'a commit is running'); end(err) }
  }
  return c
}

const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

describe('GroupCommit', () => {
  it('writers arriving while a commit runs share the next one, which begins after it', async () => {
    const c = controlled()
    const group = new GroupCommit(c.commit)
    const done: string[] = []
    const first = group.durable().then(() => done.push('first'))
    await tick()
    assert.equal(c.begun, 1)
    // three writes made while the first commit runs: not covered by it
    const later = [1, 2, 3].map(async i => { await group.durable(); done.push(`later${i}`) })
    await tick()
    assert.equal(c.begun, 1, 'the next commit waits for the running one')
    c.finish()
    await first
    await tick()
    assert.deepEqual(done, ['first'], 'the later writers wait for a commit of their own')
    assert.equal(c.begun, 2, 'one commit for the three')
    c.finish()
    await Promise.all(later)
    assert.deepEqual(done.sort(), ['first', 'later1', 'later2', 'later3'])
    assert.equal(c.begun, 2)
  })

  it('a failed commit fails its writers only; the next writers get a new commit', async () => {
    const c = controlled()
    const group = new GroupCommit(c.commit)
    const failing = [group.durable(), group.durable()]
    await tick()
    c.finish(new Error('disk full'))
    for (const p of failing) await assert.rejects(p, /disk full/)
    const next = group.durable()
    await tick()
    assert.equal(c.begun, 2)
    c.finish()
    await next
  })
})
