/**
 * A mount detached by someone else — `fusermount -uz` or `umount -l` by an
 * administrator, a desktop's eject — before the node unmounts it: the
 * binding's own unmount then fails, as the mount is not there any more.
 * `shoal unmount` and the daemon's stop take it as unmounted, and what was
 * written through it before is committed. (Before, `shoal unmount` failed
 * and a stopping daemon skipped the commit: the file closed just before was
 * lost, and the process hung until the shutdown timeout forced it out,
 * exit 1.)
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'
import { q, shOk } from '../node/fuse/helpers.js'
import { mountedDaemon } from './fuse-daemon.js'

const TEST = { timeout: 60_000 }

describe('a FUSE mount detached by someone else', () => {
  it('shoal unmount says it is unmounted, and the file written before is in the namespace', TEST, async t => {
    const { repo, mnt } = await mountedDaemon(t)
    await writeFile(join(mnt, 'a.txt'), 'written, then the mount was detached\n')
    await shOk(`fusermount -uz ${q(mnt)}`)
    assert.deepEqual(await shoalJson(repo, ['unmount', mnt]), { unmounted: mnt })
    assert.deepEqual(await shoalJson(repo, ['mounts']), [])
    assert.equal((await shoalOk(repo, ['cat', '/a.txt'])).toString(), 'written, then the mount was detached\n')
  })

  it('a daemon stopped after it exits 0 at once, and the file written before is in the namespace after a restart', TEST, async t => {
    const { repo, mnt, daemon } = await mountedDaemon(t)
    await writeFile(join(mnt, 'b.txt'), 'written, then the mount was detached, then the node stopped\n')
    await shOk(`umount -l ${q(mnt)}`)
    const started = Date.now()
    // the shutdown timeout is the test's bound: a stop that hangs is forced out with exit 1
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null })
    assert.ok(Date.now() - started < 10_000, `stopped in ${Date.now() - started} ms`)
    assert.doesNotMatch(daemon.output().stderr, /commit failed|not open/, 'no commit ran after the stores closed')
    await startDaemon(t, repo)
    assert.equal((await shoalOk(repo, ['cat', '/b.txt'])).toString(), 'written, then the mount was detached, then the node stopped\n')
    assert.deepEqual(await shoalJson(repo, ['mounts']), [])
  })
})
