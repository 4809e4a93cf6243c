/**
 * The repo's daemon lock (node/repo/lock.ts), on real files: a live holder
 * refuses a second daemon at once; one marked stopping is waited for,
 * bounded; a dead one's lock is taken over.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { acquireRepoLock, markStopping } from '../../../node/repo/index.js'
import { tempDir, type CleanupContext } from '../../helpers/temp.js'

const TEST = { timeout: 30_000 }

/** A lock taken by this process and marked stopping (released when the test ends): its file. */
async function heldStopping (t: CleanupContext): Promise<string> {
  const file = join(await tempDir(t), 'daemon.lock')
  const release = await acquireRepoLock(file)
  t.after(release)
  await markStopping(file)
  return file
}

describe('the repo lock', () => {
  it('a live daemon not stopping is refused at once, whatever the wait for a stopping one', TEST, async t => {
    const file = join(await tempDir(t), 'daemon.lock')
    const release = await acquireRepoLock(file)
    t.after(release)
    let waited = false
    // a wait of ten minutes would outlast the test's bound: the refusal is at once
    await assert.rejects(acquireRepoLock(file, { waitForStoppingMs: 600_000, onWait: () => { waited = true } }),
      (err: Error) => err.name === 'RepoLockedError' && /already running/.test(err.message))
    assert.equal(waited, false)
  })

  it('a daemon marked stopping is waited for, and the lock taken once it lets go', TEST, async t => {
    const file = join(await tempDir(t), 'daemon.lock')
    const release = await acquireRepoLock(file)
    await markStopping(file)
    let waitedFor: number | undefined
    const next = acquireRepoLock(file, { waitForStoppingMs: 20_000, onWait: pid => { waitedFor = pid } })
    // the stop ends a little later: the lock and the mark go
    setTimeout(() => { void release() }, 300)
    const releaseNext = await next
    t.after(releaseNext)
    assert.equal(waitedFor, process.pid)
    assert.equal((await readFile(file, 'utf8')).trim(), String(process.pid))
    await assert.rejects(readFile(`${file}.stopping`), { code: 'ENOENT' })
  })

  it('a stopping daemon that keeps the lock past the wait is refused, naming it', TEST, async t => {
    const file = await heldStopping(t)
    await assert.rejects(acquireRepoLock(file, { waitForStoppingMs: 300 }),
      (err: Error) => err.name === 'RepoLockedError' && /is stopping on repo .* and still holds it after 300 ms/.test(err.message))
  })

  it('the lock of a process that is gone is taken over; a stale stopping mark does not count', TEST, async t => {
    const file = join(await tempDir(t), 'daemon.lock')
    // a pid no process has (above the kernel's pid_max)
    await writeFile(file, '4194305')
    await writeFile(`${file}.stopping`, '4194305')
    const release = await acquireRepoLock(file)
    t.after(release)
    assert.equal((await readFile(file, 'utf8')).trim(), String(process.pid))
    // the mark is gone with the lock it named: a later daemon of that pid would not be taken for a stopping one
    await assert.rejects(readFile(`${file}.stopping`), { code: 'ENOENT' })
  })

  it('a wait for a stopping daemon ends when the start is no longer wanted', TEST, async t => {
    const file = await heldStopping(t)
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 200)
    await assert.rejects(acquireRepoLock(file, { waitForStoppingMs: 60_000, signal: controller.signal }), { name: 'AbortedError' })
  })
})
