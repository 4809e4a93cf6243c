/**
 * A file written through the mount when the repo's disk has no room for it
 * (less free than `storage.reserve`): `fsync` fails with ENOSPC, as on any
 * full file system, and the daemon's own message says what to do.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { defer, tempDir } from '../helpers/temp.js'
import { runShoal, shoalOk, startDaemon } from '../helpers/cli.js'
import { forceUnmount, python, requireFuse } from '../node/fuse/helpers.js'

const TEST = { timeout: 60_000 }

describe('a FUSE mount on a full repo disk', () => {
  it('fsync of a file the disk has no room for fails with ENOSPC, and nothing of it is committed', TEST, async t => {
    await requireFuse()
    const dir = await tempDir(t, 'shoal-fuse-full-')
    const repo = join(dir, 'repo')
    const mnt = join(dir, 'mnt')
    await mkdir(mnt)
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    // a reserve larger than any disk: every write that brings new data is refused, as on a disk filled up to it
    await shoalOk(repo, ['config', 'set', 'storage.reserve', String(2 ** 50)])
    await startDaemon(t, repo)
    // runs after the daemon stopped (cleanups run last in, first out)
    defer(t, async () => { await forceUnmount(mnt) })
    await shoalOk(repo, ['mount', mnt])
    const r = await python(`
import errno, os
fd = os.open(${JSON.stringify(join(mnt, 'f'))}, os.O_CREAT | os.O_WRONLY)
os.write(fd, b'no room for this')
try:
    os.fsync(fd)
    print('ok')
except OSError as e:
    print(errno.errorcode[e.errno])
os.close(fd)
`)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), 'ENOSPC')
    assert.notEqual((await runShoal(['--repo', repo, 'cat', '/f'])).code, 0, 'nothing was committed')
    await shoalOk(repo, ['unmount', mnt])
  })
})
